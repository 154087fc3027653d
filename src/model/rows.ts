// The data model: what a stored span or log record is, independent of any store or transport.
// Decoders produce these rows (for reads and tests; ingest transcodes bytes), stores return them
// from reads, and the read API renders them.

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

/** Renders an AnyValue the way attribute search compares it (and as ClickHouse's Map(String) stores it). */
export function anyValueToString(v: AnyValue): string {
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue ? 'true' : 'false';
  if ('intValue' in v) return v.intValue;
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('bytesValue' in v) return v.bytesValue;
  if ('arrayValue' in v) return JSON.stringify(v.arrayValue.values.map(anyValueToJson));
  if ('kvlistValue' in v) return JSON.stringify(kvlistObject(v.kvlistValue.values));
  return '';
}

/** JSON.rawJSON (Node 22+), not yet in TypeScript's lib: a value JSON.stringify writes as this text. */
const rawJson = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

function anyValueToJson(v: AnyValue): unknown {
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  // Its exact digits, as Go's encoding/json writes an int64 (the ClickHouse exporter's maps): a
  // Number would round past 2^53.
  if ('intValue' in v) return rawJson(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('bytesValue' in v) return v.bytesValue;
  if ('arrayValue' in v) return v.arrayValue.values.map(anyValueToJson);
  if ('kvlistValue' in v) return kvlistObject(v.kvlistValue.values);
  return null;
}

/**
 * A kvlist as a JSON object. Without a prototype, so a `__proto__` key is a key like any other
 * (on a plain object its assignment sets the prototype and the entry vanished from the text).
 */
function kvlistObject(values: readonly KeyValue[]): Record<string, unknown> {
  const o = Object.create(null) as Record<string, unknown>;
  for (const kv of values) o[kv.key] = anyValueToJson(kv.value);
  return o;
}
