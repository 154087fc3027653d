// The few protobuf messages the receivers write on the main thread: export responses and
// google.rpc.Status error bodies. Encoding these small messages is cheap; requests are never
// decoded here (that happens in the workers).
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { Signal } from '../model/signal.ts';

export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

export const TRACE_SERVICE_PROTO = 'opentelemetry/proto/collector/trace/v1/trace_service.proto';
export const LOGS_SERVICE_PROTO = 'opentelemetry/proto/collector/logs/v1/logs_service.proto';
const STATUS_PROTO = 'google/rpc/status.proto';
const ERROR_DETAILS_PROTO = 'google/rpc/error_details.proto';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : PROTO_DIR + target);
root.loadSync([TRACE_SERVICE_PROTO, LOGS_SERVICE_PROTO, STATUS_PROTO, ERROR_DETAILS_PROTO], { keepCase: false });

const TraceResponse = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const LogsResponse = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse');
const Status = root.lookupType('google.rpc.Status');
const RetryInfo = root.lookupType('google.rpc.RetryInfo');

/** The export response as a plain object in OTLP/JSON field names; partialSuccess only when something was rejected or said. */
export function exportResponse(signal: Signal, rejected: number, errorMessage: string): Record<string, unknown> {
  if (rejected === 0 && errorMessage === '') return {};
  const key = signal === 'traces' ? 'rejectedSpans' : 'rejectedLogRecords';
  return { partialSuccess: { [key]: String(rejected), errorMessage } };
}

/** Protobuf bytes of ExportTraceServiceResponse / ExportLogsServiceResponse. */
export function encodeExportResponse(signal: Signal, rejected: number, errorMessage: string): Uint8Array {
  const type = signal === 'traces' ? TraceResponse : LogsResponse;
  return type.encode(type.fromObject(exportResponse(signal, rejected, errorMessage))).finish();
}

/** google.rpc.Status in its proto3 JSON form, with a RetryInfo detail when a delay is given. */
export function statusObject(code: number, message: string, retryDelayMs?: number): Record<string, unknown> {
  if (retryDelayMs === undefined) return { code, message };
  return { code, message, details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryDelayMs / 1000}s` }] };
}

/** Protobuf bytes of google.rpc.RetryInfo with this delay. */
export function encodeRetryInfo(retryDelayMs: number): Uint8Array {
  const delay = { seconds: Math.floor(retryDelayMs / 1000), nanos: (retryDelayMs % 1000) * 1_000_000 };
  return RetryInfo.encode(RetryInfo.fromObject({ retryDelay: delay })).finish();
}

/** Protobuf bytes of google.rpc.Status, with a RetryInfo detail when a delay is given. */
export function encodeStatus(code: number, message: string, retryDelayMs?: number): Uint8Array {
  const details = [];
  if (retryDelayMs !== undefined) details.push({ type_url: 'type.googleapis.com/google.rpc.RetryInfo', value: encodeRetryInfo(retryDelayMs) });
  // protobufjs's bundled google.protobuf.Any keeps the proto field name type_url.
  return Status.encode(Status.fromObject({ code, message, details })).finish();
}
