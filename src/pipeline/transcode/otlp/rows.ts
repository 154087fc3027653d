// Rows back to OTLP protobuf, for the memory store's format where what arrived was not protobuf:
// OTLP/JSON requests (decoded to rows by the row decoder) and rows written directly (tests,
// benchmarks). The request is then transcoded like any protobuf request, so the store keeps one
// format. Decoding the bytes written here gives the rows back, with one exception of the wire
// format itself: a lone UTF-16 surrogate in a string (possible in OTLP/JSON) becomes U+FFFD.
import type { AnyValue, KeyValue, LogRow, ResourceInfo, ScopeInfo, SpanRow } from '../../../model/rows.ts';
import type { EncodedChunk } from '../../../storage/backend.ts';
import type { RowEncoder } from '../../../storage/encoders.ts';
import { WireWriter } from '../../decode/wire.ts';
import { transcodeLogsProto, transcodeTracesProto } from './proto.ts';

/** Rows passed in were validated when decoded; deeper nesting than this never reaches a store. */
const LIMITS = { maxNestingDepth: 1000 };

function id(w: WireWriter, field: number, hex: string): void {
  if (hex !== '') w.bytesField(field, Buffer.from(hex, 'hex'));
}

function str(w: WireWriter, field: number, s: string): void {
  if (s !== '') w.stringField(field, s);
}

function uint(w: WireWriter, field: number, n: number): void {
  if (n !== 0) w.varintField(field, n);
}

function value(w: WireWriter, v: AnyValue): void {
  if ('stringValue' in v) w.stringField(1, v.stringValue);
  else if ('boolValue' in v) w.varintField(2, v.boolValue);
  else if ('intValue' in v) w.varintField(3, BigInt(v.intValue));
  else if ('doubleValue' in v) w.doubleField(4, Number(v.doubleValue));
  else if ('bytesValue' in v) w.bytesField(7, Buffer.from(v.bytesValue, 'base64'));
  else if ('arrayValue' in v) {
    w.fork();
    for (const x of v.arrayValue.values) {
      w.fork();
      value(w, x);
      w.join(1);
    }
    w.join(5);
  } else if ('kvlistValue' in v) {
    w.fork();
    keyValues(w, 1, v.kvlistValue.values);
    w.join(6);
  }
}

function keyValues(w: WireWriter, field: number, kvs: readonly KeyValue[]): void {
  for (const kv of kvs) {
    w.fork();
    w.stringField(1, kv.key);
    w.fork();
    value(w, kv.value);
    w.join(2);
    w.join(field);
  }
}

function resourceFields(w: WireWriter, r: ResourceInfo): void {
  w.fork();
  keyValues(w, 1, r.attributes);
  uint(w, 2, r.droppedAttributesCount);
  w.join(1);
}

function scopeFields(w: WireWriter, s: ScopeInfo): void {
  w.fork();
  str(w, 1, s.name);
  str(w, 2, s.version);
  keyValues(w, 3, s.attributes);
  uint(w, 4, s.droppedAttributesCount);
  w.join(1);
}

function span(w: WireWriter, s: SpanRow): void {
  id(w, 1, s.traceId);
  id(w, 2, s.spanId);
  str(w, 3, s.traceState);
  id(w, 4, s.parentSpanId);
  w.stringField(5, s.name);
  if (s.kind !== 0) w.varintField(6, s.kind);
  w.fixed64Field(7, s.startTimeUnixNano);
  w.fixed64Field(8, s.endTimeUnixNano);
  keyValues(w, 9, s.attributes);
  uint(w, 10, s.droppedAttributesCount);
  for (const e of s.events) {
    w.fork();
    w.fixed64Field(1, e.timeUnixNano);
    str(w, 2, e.name);
    keyValues(w, 3, e.attributes);
    uint(w, 4, e.droppedAttributesCount);
    w.join(11);
  }
  uint(w, 12, s.droppedEventsCount);
  for (const l of s.links) {
    w.fork();
    id(w, 1, l.traceId);
    id(w, 2, l.spanId);
    str(w, 3, l.traceState);
    keyValues(w, 4, l.attributes);
    uint(w, 5, l.droppedAttributesCount);
    if (l.flags !== 0) w.fixed32Field(6, l.flags);
    w.join(13);
  }
  uint(w, 14, s.droppedLinksCount);
  if (s.statusCode !== 0 || s.statusMessage !== '') {
    w.fork();
    str(w, 2, s.statusMessage);
    if (s.statusCode !== 0) w.varintField(3, s.statusCode);
    w.join(15);
  }
  if (s.flags !== 0) w.fixed32Field(16, s.flags);
}

function logRecord(w: WireWriter, l: LogRow): void {
  if (l.timeUnixNano !== 0n) w.fixed64Field(1, l.timeUnixNano);
  if (l.severityNumber !== 0) w.varintField(2, l.severityNumber);
  str(w, 3, l.severityText);
  if (Object.keys(l.body).length > 0) {
    w.fork();
    value(w, l.body);
    w.join(5);
  }
  keyValues(w, 6, l.attributes);
  uint(w, 7, l.droppedAttributesCount);
  if (l.flags !== 0) w.fixed32Field(8, l.flags);
  id(w, 9, l.traceId);
  id(w, 10, l.spanId);
  if (l.observedTimeUnixNano !== 0n) w.fixed64Field(11, l.observedTimeUnixNano);
  str(w, 12, l.eventName);
}

/** Rows as one export request, a group per run of rows sharing their resource and scope objects. */
function request<R extends { resource: ResourceInfo; scope: ScopeInfo }>(rows: readonly R[], item: (w: WireWriter, r: R) => void): Uint8Array {
  const w = new WireWriter();
  let i = 0;
  while (i < rows.length) {
    const { resource, scope } = rows[i]!;
    w.fork();
    resourceFields(w, resource);
    str(w, 3, resource.schemaUrl);
    w.fork();
    scopeFields(w, scope);
    str(w, 3, scope.schemaUrl);
    for (; i < rows.length && rows[i]!.resource === resource && rows[i]!.scope === scope; i++) {
      w.fork();
      item(w, rows[i]!);
      w.join(2);
    }
    w.join(2);
    w.join(1);
  }
  return w.finish();
}

/** Spans as an ExportTraceServiceRequest. */
export function tracesRequest(rows: readonly SpanRow[]): Uint8Array {
  return request(rows, span);
}

/** Log records as an ExportLogsServiceRequest. */
export function logsRequest(rows: readonly LogRow[]): Uint8Array {
  return request(rows, logRecord);
}

/** Transcodes re-encoded rows; every row was valid, so every row must come out. */
function chunksOf(n: number, body: Uint8Array, transcode: typeof transcodeTracesProto): EncodedChunk[] {
  if (n === 0) return [];
  const r = transcode(body, LIMITS);
  if (r.accepted !== n) throw new Error(`memory-store encoding kept ${r.accepted} of ${n} rows (${r.errorMessage})`);
  return r.chunks;
}

/** Spans as memory-store chunks. */
export function encodeSpanChunks(rows: readonly SpanRow[]): EncodedChunk[] {
  return chunksOf(rows.length, tracesRequest(rows), transcodeTracesProto);
}

/** Log records as memory-store chunks. */
export function encodeLogChunks(rows: readonly LogRow[]): EncodedChunk[] {
  return chunksOf(rows.length, logsRequest(rows), transcodeLogsProto);
}

/** The memory store's row encoder (rows → OTLP protobuf → its chunks). */
export function createEncoder(_options: Record<string, never>): RowEncoder {
  return { encodeSpans: encodeSpanChunks, encodeLogs: encodeLogChunks };
}
