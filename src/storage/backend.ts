// The StorageBackend port: the one interface between the pipeline and every store.
//
// Rows are normalized in the decode workers and, for each backend, encoded there into the bytes
// that backend writes (JSON lines for memory/sqlite, COPY for PostgreSQL, RowBinary for
// ClickHouse). Encoded chunks of the same signal and partition are concatenable, so the writer
// can batch many requests into one write without knowing the format.

/** OTLP AnyValue in its OTLP/JSON shape: int64 as a decimal string, bytes as base64. */
export type AnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number | 'NaN' | 'Infinity' | '-Infinity' }
  | { bytesValue: string }
  | { arrayValue: { values: AnyValue[] } }
  | { kvlistValue: { values: KeyValue[] } }
  | Record<string, never>;

export interface KeyValue {
  key: string;
  value: AnyValue;
}

export interface ResourceInfo {
  attributes: KeyValue[];
  droppedAttributesCount: number;
  schemaUrl: string;
}

export interface ScopeInfo {
  name: string;
  version: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
  schemaUrl: string;
}

export interface SpanEvent {
  timeUnixNano: bigint;
  name: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

export interface SpanLink {
  traceId: string;
  spanId: string;
  traceState: string;
  flags: number;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

/** One stored span. Ids are lowercase hex; times are exact nanoseconds since the epoch. */
export interface SpanRow {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  traceState: string;
  flags: number;
  name: string;
  /** OTLP SpanKind number: 0 unspecified … 5 consumer. */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  /** end − start, clamped at 0 when end precedes start. */
  durationNano: bigint;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  statusMessage: string;
  /** Resource attribute service.name, or 'unknown_service' when absent. */
  serviceName: string;
  resource: ResourceInfo;
  scope: ScopeInfo;
  attributes: KeyValue[];
  droppedAttributesCount: number;
  events: SpanEvent[];
  droppedEventsCount: number;
  links: SpanLink[];
  droppedLinksCount: number;
}

/** One stored log record. traceId/spanId are '' when the record is not linked to a span. */
export interface LogRow {
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  traceId: string;
  spanId: string;
  flags: number;
  severityNumber: number;
  severityText: string;
  /** Absent body is stored as {}. */
  body: AnyValue;
  eventName: string;
  serviceName: string;
  resource: ResourceInfo;
  scope: ScopeInfo;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

export type Signal = 'spans' | 'logs';

/**
 * Rows of one signal encoded by the backend's encoder. Chunks with the same signal and
 * partition can be concatenated in any order (the writer batches them that way).
 */
export interface EncodedChunk {
  /** Writer pipeline this chunk belongs to (a ClickHouse shard, say); 0 for single-pipeline backends. */
  partition: number;
  rows: number;
  data: Uint8Array;
}

/** A batch the writer hands to the backend: chunks of one signal and one partition. */
export interface WriteBatch {
  signal: Signal;
  partition: number;
  rows: number;
  bytes: number;
  chunks: Uint8Array[];
  /** Stable across retries of the same batch: backends use it to make writes idempotent. */
  batchId: string;
}

/** What a write tells the writer to do next (opentelemetry-js ExportResponse style). */
export type WriteResult =
  | { kind: 'success' }
  | { kind: 'retryable'; error: Error; retryAfterMs?: number }
  | { kind: 'permanent'; error: Error };

/**
 * Encodes normalized rows in a decode worker. A backend names the module that exports an
 * `encoder` of this shape and the JSON-safe options it is created with; the worker pool loads
 * it once per thread.
 */
export interface RowEncoder {
  encodeSpans(rows: SpanRow[]): EncodedChunk[];
  encodeLogs(rows: LogRow[]): EncodedChunk[];
}

export interface EncoderSpec {
  /** Absolute file URL of a module exporting `createEncoder(options): RowEncoder`. */
  module: string;
  options: Record<string, unknown>;
}

export interface TraceQuery {
  service?: string;
  /** Span name: a trace matches when any of its spans has it. */
  name?: string;
  /** Inclusive range on span start time, nanoseconds. */
  startNano?: bigint;
  endNano?: bigint;
  minDurationNano?: bigint;
  maxDurationNano?: bigint;
  /** A trace matches when one span carries an attribute with this key whose value renders to this string. */
  attributes?: { key: string; value: string }[];
  limit: number;
}

export interface TraceSummary {
  traceId: string;
  /** Service and name of the root span (earliest span when no root was stored). */
  rootServiceName: string;
  rootSpanName: string;
  startTimeUnixNano: bigint;
  durationNano: bigint;
  spanCount: number;
  hasError: boolean;
}

export interface LogQuery {
  traceId?: string;
  service?: string;
  startNano?: bigint;
  endNano?: bigint;
  minSeverity?: number;
  limit: number;
}

/** A span name seen for a service, with the OTLP SpanKind number it was sent with. */
export interface Operation {
  name: string;
  kind: number;
}

export interface OperationQuery {
  service: string;
  /** OTLP SpanKind number; all kinds when absent. */
  kind?: number;
}

export interface DependencyQuery {
  /** Inclusive range on the child span's start time, nanoseconds. */
  startNano: bigint;
  endNano: bigint;
}

/** Calls from one service to another: spans of `child` whose parent span belongs to `parent`. */
export interface DependencyLink {
  parent: string;
  child: string;
  callCount: number;
}

export interface BackendHealth {
  ok: boolean;
  detail?: string;
}

/** A store behind the pipeline. Lifecycle: start() once; shutdown() is idempotent and safe before start. */
export interface StorageBackend {
  readonly name: string;
  /** Writer pipelines this backend wants (ClickHouse: one per shard). */
  readonly partitions: number;
  /** How the decode workers encode rows for this backend. */
  readonly encoder: EncoderSpec;
  start(): Promise<void>;
  /** Applies schema migrations and returns (the `tracehouse migrate` command); absent where there is no schema. */
  migrate?(): Promise<void>;
  writeSpans(batch: WriteBatch): Promise<WriteResult>;
  writeLogs(batch: WriteBatch): Promise<WriteResult>;
  /** All spans of a trace (any order), or [] when unknown. */
  getTrace(traceId: string): Promise<SpanRow[]>;
  /**
   * Matching traces: the `limit` traces whose newest matching span starts latest, returned
   * newest trace start first.
   */
  searchTraces(query: TraceQuery): Promise<TraceSummary[]>;
  /** Matching log records, newest first. */
  searchLogs(query: LogQuery): Promise<LogRow[]>;

  // Listings for the Jaeger query API and the web UI (reader side; one block so it moves as one).
  /** Names of the services with stored spans, sorted (may include services whose spans aged out since the last retention pass). */
  getServices(): Promise<string[]>;
  /** Distinct span names and kinds of one service's spans, sorted by name then kind. */
  getOperations(query: OperationQuery): Promise<Operation[]>;
  /** Service-to-service calls (a span whose parent span has another service), counted over child spans starting in the range, sorted by parent then child. */
  getDependencies(query: DependencyQuery): Promise<DependencyLink[]>;

  health(): Promise<BackendHealth>;
  shutdown(): Promise<void>;
}

/** Renders an AnyValue the way attribute search compares it (and as ClickHouse's Map(String) stores it). */
export function anyValueToString(v: AnyValue): string {
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue ? 'true' : 'false';
  if ('intValue' in v) return v.intValue;
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('bytesValue' in v) return v.bytesValue;
  if ('arrayValue' in v) return JSON.stringify(v.arrayValue.values.map(anyValueToJson));
  if ('kvlistValue' in v) {
    const o: Record<string, unknown> = {};
    for (const kv of v.kvlistValue.values) o[kv.key] = anyValueToJson(kv.value);
    return JSON.stringify(o);
  }
  return '';
}

function anyValueToJson(v: AnyValue): unknown {
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('bytesValue' in v) return v.bytesValue;
  if ('arrayValue' in v) return v.arrayValue.values.map(anyValueToJson);
  if ('kvlistValue' in v) {
    const o: Record<string, unknown> = {};
    for (const kv of v.kvlistValue.values) o[kv.key] = anyValueToJson(kv.value);
    return o;
  }
  return null;
}
