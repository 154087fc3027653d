// OTLP/gRPC receiver (4317): TraceService/Export and LogsService/Export, grpc.health.v1 (from
// grpc-health-check, following the collector's readiness) and server reflection (grpcurl list).
// Requests arrive as raw bytes (identity deserializer) and go to the decode workers untouched;
// grpc-js handles gzip and deflate and enforces the size limit after decompression.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as HEALTH_PROTO_PATH, type ServingStatus } from 'grpc-health-check';
import { REFUSALS, RETRY_AFTER_MS, type RefusalReason } from '../common/refusals.ts';
import type { Signal } from '../model/signal.ts';
import type { Ingest } from '../pipeline/ingest.ts';
import { OPEN, type Authenticator } from '../security/auth.ts';
import type { TlsCertificates } from '../security/tls.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Readiness } from '../telemetry/ops.ts';
import { tuneGrpcSessions, type FlowControlWindows } from './http2-sessions.ts';
import { LOGS_SERVICE_PROTO, PROTO_DIR, TRACE_SERVICE_PROTO, encodeExportResponse, encodeStatus } from './otlp-messages.ts';

const identity = (b: Buffer): Buffer => b;

/**
 * Metadata key through which admission hands the authenticated tenant to the Export handler; set
 * (overwriting anything a client sent under that name) on every admitted call.
 */
const TENANT_METADATA = 'x-tracehouse-tenant';

const TRACE_SERVICE = 'opentelemetry.proto.collector.trace.v1.TraceService';
const LOGS_SERVICE = 'opentelemetry.proto.collector.logs.v1.LogsService';
/** Health is reported for the whole server ("") and for each service it serves; others are NOT_FOUND. */
const HEALTH_SERVICES = ['', TRACE_SERVICE, LOGS_SERVICE] as const;

/** Everything the server serves, in one package definition: the export services and what reflection describes. */
const PACKAGE = protoLoader.loadSync([TRACE_SERVICE_PROTO, LOGS_SERVICE_PROTO, HEALTH_PROTO_PATH], {
  includeDirs: [PROTO_DIR],
  keepCase: false,
  longs: String,
  enums: Number,
  defaults: false,
});

/** The export service with bytes in and bytes out: decoding happens in the workers, encoding here is of our own reply bytes. */
function rawExportService(name: string): grpc.ServiceDefinition {
  const svc = PACKAGE[name] as grpc.ServiceDefinition | undefined;
  const exp = svc?.['Export'];
  if (!exp) throw new Error(`service ${name} not found in the OTLP protos`);
  return { Export: { ...exp, requestDeserialize: identity, responseSerialize: identity } };
}

/** The gRPC receiver's settings. */
export interface GrpcReceiverOptions {
  listen: string;
  /** Largest request accepted, after decompression. */
  maxMessageBytes: number;
  maxConcurrentStreams: number;
  /** Export calls still receiving their message, over all connections. */
  maxReceivingCalls: number;
  maxConnectionIdleMs: number;
  /** 0: connections are never aged out. */
  maxConnectionAgeMs: number;
  keepaliveTimeMs: number;
  /** HTTP/2 receive windows of its connections (grpc-js alone keeps 64 KiB). */
  windows: FlowControlWindows;
  /** Where health status comes from; polled every readinessPollMs while serving. */
  readiness?: Readiness;
  readinessPollMs?: number;
  /** TLS (or mTLS) with these certificates; plain when absent. */
  tls?: TlsCertificates | undefined;
  /** Who may send, and as which tenant; everyone as the default tenant when absent. */
  auth?: Authenticator;
}

/** The OTLP/gRPC server. */
export class GrpcReceiver {
  private server: grpc.Server | undefined;
  private health: HealthImplementation | undefined;
  private poll: NodeJS.Timeout | undefined;
  private stopTuning: (() => void) | undefined;
  /** Open Watch streams: ended at shutdown, or the graceful close would wait for them. */
  private readonly watchers = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  /** Export calls admitted whose message has not been handed over yet (grpc-js buffers each whole). */
  private receiving = 0;
  private readonly opts: GrpcReceiverOptions;
  private readonly ingest: Ingest;
  private readonly logger: Logger;
  boundPort = 0;

  constructor(options: GrpcReceiverOptions, ingest: Ingest, logger: Logger) {
    this.opts = options;
    this.ingest = ingest;
    this.logger = logger;
  }

  private exportHandler(signal: Signal): grpc.handleUnaryCall<Buffer, Buffer> {
    return (call, callback) => {
      const tenant = call.metadata.get(TENANT_METADATA)[0];
      // Admission sets it on every Export call; without it, refuse rather than guess a tenant.
      if (typeof tenant !== 'string') return callback({ code: grpc.status.INTERNAL, details: REFUSALS.internal.message });
      // grpc-js hands over a message it no longer reads: one assembled from several frames has an
      // ArrayBuffer of its own and moves to the worker without a copy (pool.decode copies anything else).
      this.ingest.handle({ transport: 'grpc', signal, format: 'protobuf', body: call.request, owned: true, tenant }).then(
        (out) => {
          if (out.kind === 'ok') return callback(null, Buffer.from(encodeExportResponse(signal, out.rejected, out.errorMessage)));
          return callback(this.refusalStatus(out.reason, out.message));
        },
        (err: Error) => {
          this.logger.error({ err: err.message, signal }, 'grpc export failed unexpectedly');
          callback({ code: grpc.status.INTERNAL, details: REFUSALS.internal.message });
        },
      );
    };
  }

  /**
   * Admission before a call's message is buffered: grpc-js reads each message whole before the
   * handler runs, so an overloaded collector, or one already receiving maxReceivingCalls
   * messages, refuses at the headers, and the bytes are never read. The bearer token is checked
   * here too, so an unauthenticated client cannot make the server buffer a message either.
   */
  private admission(): grpc.ServerInterceptor {
    const auth = this.opts.auth ?? OPEN;
    return (method, call) => {
      if (!method.path.endsWith('/Export')) return new grpc.ServerInterceptingCall(call);
      let holding = false;
      const letGo = (): void => {
        if (holding) this.receiving--;
        holding = false;
      };
      const listener = new grpc.ServerListenerBuilder()
        .withOnReceiveMetadata((metadata, next) => {
          const header = metadata.get('authorization')[0];
          const who = auth.check(typeof header === 'string' ? header : undefined, 'ingest');
          if (who.kind !== 'allowed') {
            const out = this.ingest.refuse('grpc', who.kind === 'forbidden' ? 'forbidden' : 'unauthenticated');
            if (out.kind === 'refused') call.sendStatus(this.refusalStatus(out.reason, out.message));
            return;
          }
          metadata.set(TENANT_METADATA, who.tenant);
          const reason = this.ingest.admissionRefusal() ?? (this.receiving >= this.opts.maxReceivingCalls ? 'receivers_busy' : undefined);
          if (reason === undefined) {
            holding = true;
            this.receiving++;
            return next(metadata);
          }
          const out = this.ingest.refuse('grpc', reason);
          if (out.kind === 'refused') call.sendStatus(this.refusalStatus(out.reason, out.message));
        })
        .withOnReceiveMessage((message, next) => {
          letGo();
          next(message);
        })
        .withOnCancel(letGo)
        .build();
      const responder = new grpc.ResponderBuilder()
        .withStart((next) => next(listener))
        .withSendStatus((status, next) => {
          letGo();
          next(status);
        })
        .build();
      return new grpc.ServerInterceptingCall(call, responder);
    };
  }

  /** A refusal as a gRPC status; retryable ones carry a google.rpc.RetryInfo detail, which OTLP exporters honour. */
  private refusalStatus(reason: RefusalReason, message: string): { code: grpc.status; details: string; metadata?: grpc.Metadata } {
    const refusal = REFUSALS[reason];
    if (!refusal.retryable) return { code: refusal.grpc, details: message };
    const metadata = new grpc.Metadata();
    metadata.set('grpc-status-details-bin', Buffer.from(encodeStatus(refusal.grpc, message, RETRY_AFTER_MS)));
    return { code: refusal.grpc, details: message, metadata };
  }

  private setHealth(status: ServingStatus): void {
    for (const name of HEALTH_SERVICES) this.health?.setStatus(name, status);
  }

  /** Follows the collector's readiness: SERVING when ready, NOT_SERVING otherwise (Watch streams see each change). */
  async refreshHealth(): Promise<void> {
    const readiness = this.opts.readiness;
    if (!readiness) return;
    const reason = await readiness.notReadyReason().catch((err: unknown) => String(err));
    if (this.server) this.setHealth(reason === null ? 'SERVING' : 'NOT_SERVING');
  }

  async start(): Promise<void> {
    if (this.server) return;
    const o = this.opts;
    const server = new grpc.Server({
      'grpc.max_receive_message_length': o.maxMessageBytes,
      'grpc.max_send_message_length': 4 * 1024 * 1024,
      'grpc.max_concurrent_streams': o.maxConcurrentStreams,
      'grpc.max_connection_idle_ms': o.maxConnectionIdleMs,
      ...(o.maxConnectionAgeMs > 0 ? { 'grpc.max_connection_age_ms': o.maxConnectionAgeMs, 'grpc.max_connection_age_grace_ms': 30_000 } : {}),
      'grpc.keepalive_time_ms': o.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': 20_000,
      interceptors: [this.admission()],
    });
    server.addService(rawExportService(TRACE_SERVICE), { Export: this.exportHandler('traces') });
    server.addService(rawExportService(LOGS_SERVICE), { Export: this.exportHandler('logs') });
    const health = new HealthImplementation();
    health.addToServer({
      addService: (service, impl) => {
        const watch = impl['watch'] as grpc.handleServerStreamingCall<unknown, unknown>;
        server.addService(service, {
          ...impl,
          watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
            this.watchers.add(call);
            call.on('cancelled', () => this.watchers.delete(call));
            watch(call);
          },
        });
      },
    });
    new ReflectionService(PACKAGE).addToServer(server);
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.opts.listen, this.opts.tls?.grpcCredentials() ?? grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
    this.stopTuning = tuneGrpcSessions(() => this.boundPort, o.windows);
    this.health = health;
    // Serving until the first readiness answer says otherwise; without a readiness source, always.
    this.setHealth('SERVING');
    if (this.opts.readiness) {
      this.poll = setInterval(() => void this.refreshHealth(), this.opts.readinessPollMs ?? 1000);
      this.poll.unref();
    }
    const tls = this.opts.tls;
    this.logger.info({ listen: this.opts.listen, tls: tls ? (tls.mutual ? 'mtls' : 'tls') : 'off', port: this.boundPort }, 'OTLP/gRPC receiver listening');
  }

  /** Stops accepting calls and waits for in-flight ones to finish. */
  async shutdown(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    clearInterval(this.poll);
    this.stopTuning?.();
    // Watchers hear NOT_SERVING before their streams end, so clients move on at once.
    this.setHealth('NOT_SERVING');
    this.health = undefined;
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
