// OTLP/gRPC receiver (4317): TraceService/Export and LogsService/Export plus grpc.health.v1.
// Requests arrive as raw bytes (identity deserializer) and go to the decode workers untouched;
// grpc-js handles gzip and enforces the size limit after decompression.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { REFUSALS, RETRY_AFTER_MS } from '../common/refusals.ts';
import type { Signal } from '../model/signal.ts';
import type { Ingest } from '../pipeline/ingest.ts';
import type { Logger } from '../telemetry/logger.ts';
import { HEALTH_PROTO, LOGS_SERVICE_PROTO, PROTO_DIR, TRACE_SERVICE_PROTO, encodeExportResponse, encodeStatus } from './otlp-messages.ts';

const identity = (b: Buffer): Buffer => b;

function loadService(file: string, name: string): grpc.ServiceDefinition {
  const def = protoLoader.loadSync(file, { includeDirs: [PROTO_DIR], keepCase: false, longs: String, enums: Number, defaults: false });
  const service = def[name] as grpc.ServiceDefinition;
  if (!service) throw new Error(`service ${name} not found in ${file}`);
  return service;
}

/** The export service with bytes in and bytes out: decoding happens in the workers, encoding here is of our own reply bytes. */
function rawExportService(file: string, name: string): grpc.ServiceDefinition {
  const svc = loadService(file, name);
  const exp = svc['Export']!;
  return { Export: { ...exp, requestDeserialize: identity, responseSerialize: identity } };
}

const SERVING = 1;
const SERVICE_UNKNOWN = 3;

/** The gRPC receiver's settings. */
export interface GrpcReceiverOptions {
  listen: string;
  /** Largest request accepted, after decompression. */
  maxMessageBytes: number;
}

/** The OTLP/gRPC server. */
export class GrpcReceiver {
  private server: grpc.Server | undefined;
  private readonly watchers = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  private readonly maxMessageBytes: number;
  private readonly ingest: Ingest;
  private readonly logger: Logger;
  private readonly listen: string;
  boundPort = 0;

  constructor(options: GrpcReceiverOptions, ingest: Ingest, logger: Logger) {
    this.maxMessageBytes = options.maxMessageBytes;
    this.listen = options.listen;
    this.ingest = ingest;
    this.logger = logger;
  }

  private exportHandler(signal: Signal): grpc.handleUnaryCall<Buffer, Buffer> {
    return (call, callback) => {
      this.ingest.handle({ transport: 'grpc', signal, format: 'protobuf', body: call.request }).then(
        (out) => {
          if (out.kind === 'ok') return callback(null, Buffer.from(encodeExportResponse(signal, out.rejected, out.errorMessage)));
          const refusal = REFUSALS[out.reason];
          if (!refusal.retryable) return callback({ code: refusal.grpc, details: out.message });
          // The retry delay travels as a google.rpc.RetryInfo detail, which OTLP exporters honour.
          const metadata = new grpc.Metadata();
          metadata.set('grpc-status-details-bin', Buffer.from(encodeStatus(refusal.grpc, out.message, RETRY_AFTER_MS)));
          return callback({ code: refusal.grpc, details: out.message, metadata });
        },
        (err: Error) => {
          this.logger.error({ err: err.message, signal }, 'grpc export failed unexpectedly');
          callback({ code: grpc.status.INTERNAL, details: REFUSALS.internal.message });
        },
      );
    };
  }

  private healthStatus(service: string): number {
    const known = service === '' || service.startsWith('opentelemetry.proto.collector.');
    if (!known) return SERVICE_UNKNOWN;
    return SERVING;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.maxMessageBytes,
      'grpc.max_send_message_length': 4 * 1024 * 1024,
    });
    server.addService(rawExportService(TRACE_SERVICE_PROTO, 'opentelemetry.proto.collector.trace.v1.TraceService'), {
      Export: this.exportHandler('traces'),
    });
    server.addService(rawExportService(LOGS_SERVICE_PROTO, 'opentelemetry.proto.collector.logs.v1.LogsService'), {
      Export: this.exportHandler('logs'),
    });
    server.addService(loadService(HEALTH_PROTO, 'grpc.health.v1.Health'), {
      Check: (call: grpc.ServerUnaryCall<{ service?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const status = this.healthStatus(call.request.service ?? '');
        if (status === SERVICE_UNKNOWN) return cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
        cb(null, { status });
      },
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, unknown>) => {
        call.write({ status: this.healthStatus(call.request.service ?? '') });
        this.watchers.add(call);
        call.on('cancelled', () => this.watchers.delete(call));
      },
    });
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.listen, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
    this.logger.info({ listen: this.listen, port: this.boundPort }, 'OTLP/gRPC receiver listening');
  }

  /** Stops accepting calls and waits for in-flight ones to finish. */
  async shutdown(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const w of this.watchers) w.end();
    this.watchers.clear();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => server.forceShutdown(), 10_000);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
