// Encodes OTLP requests with protobufjs from our .proto files, and a raw gRPC client that sends
// bytes: for payloads the SDK cannot produce (int64 beyond 2^53, bytes, kvlists, invalid ids).
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { PROTO_DIR } from '../../src/receiver/otlp-messages.ts';

const root = new protobuf.Root();
root.resolvePath = (_o, target) => (target.startsWith('/') ? target : PROTO_DIR + target);
root.loadSync(
  [
    'opentelemetry/proto/collector/trace/v1/trace_service.proto',
    'opentelemetry/proto/collector/logs/v1/logs_service.proto',
    'google/rpc/status.proto',
    'google/rpc/error_details.proto',
  ],
  { keepCase: false },
);

export const TraceRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
export const LogsRequest = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
export const TraceResponse = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
export const LogsResponse = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse');
export const RpcStatus = root.lookupType('google.rpc.Status');
export const RetryInfo = root.lookupType('google.rpc.RetryInfo');

/** Protobuf bytes of an ExportTraceServiceRequest given as a protobufjs object (ids as Buffers). */
export function encodeTraces(obj: Record<string, unknown>): Uint8Array {
  return TraceRequest.encode(TraceRequest.fromObject(obj)).finish();
}

/** Protobuf bytes of an ExportLogsServiceRequest. */
export function encodeLogs(obj: Record<string, unknown>): Uint8Array {
  return LogsRequest.encode(LogsRequest.fromObject(obj)).finish();
}

const bytes = (b: Buffer | Uint8Array) => Buffer.from(b);
const RawClient = grpc.makeGenericClientConstructor(
  {
    Traces: { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false, responseStream: false, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes },
    Logs: { path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export', requestStream: false, responseStream: false, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes },
    // Not served (UNIMPLEMENTED): an SDK pointed at the collector for every signal calls it too.
    Metrics: { path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export', requestStream: false, responseStream: false, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes },
  },
  'RawOtlp',
);

export interface RawResult {
  error: grpc.ServiceError | null;
  response: Buffer | undefined;
}

/** A gRPC client that sends pre-encoded request bytes. */
export class RawOtlpClient {
  private readonly client: grpc.Client & Record<string, any>;
  constructor(address: string, options: grpc.ChannelOptions = {}, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    this.client = new RawClient(address, credentials, options) as never;
  }
  private call(method: 'Traces' | 'Logs' | 'Metrics', body: Uint8Array, metadata = new grpc.Metadata()): Promise<RawResult> {
    return new Promise((resolve) => this.client[method](Buffer.from(body), metadata, (error: grpc.ServiceError | null, response?: Buffer) => resolve({ error, response })));
  }
  traces(body: Uint8Array, metadata?: grpc.Metadata): Promise<RawResult> {
    return this.call('Traces', body, metadata);
  }
  logs(body: Uint8Array, metadata?: grpc.Metadata): Promise<RawResult> {
    return this.call('Logs', body, metadata);
  }
  metrics(body: Uint8Array, metadata?: grpc.Metadata): Promise<RawResult> {
    return this.call('Metrics', body, metadata);
  }
  close(): void {
    this.client.close();
  }
}
