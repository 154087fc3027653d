// Rows back to OTLP protobuf, for the memory store's format where what arrived was not protobuf:
// OTLP/JSON requests (decoded to rows by the row decoder) and rows written directly (tests,
// benchmarks). The request is then transcoded like any protobuf request, so the store keeps one
// format. Decoding the bytes written here gives the rows back, with one exception of the wire
// format itself: a lone UTF-16 surrogate in a string (possible in OTLP/JSON) becomes U+FFFD.
import type { AnyValue, KeyValue, LogRow, ResourceInfo, ScopeInfo, SpanRow } from '../../../model/rows.ts';
import type { EncodedChunk } from '../../../storage/backend.ts';
import type { RowEncoder } from '../../../storage/encoders.ts';
import { ByteOut } from '../byte-out.ts';
import { transcodeLogsProto, transcodeTracesProto } from './proto.ts';

/** Rows passed in were validated when decoded; deeper nesting than this never reaches a store. */
const LIMITS = { maxNestingDepth: 1000 };

const LEN = 2;
const FIXED64 = 1;
const FIXED32 = 5;
const VARINT = 0;

/** The request being written; reused (the transcoder copies what it keeps). */
const w = new ByteOut(1 << 16);
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

function varint(n: number): void {
  w.ensure(10);
  const out = w.buf;
  let p = w.pos;
  while (n >= 0x80) {
    out[p++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[p++] = n;
  w.pos = p;
}

/** A varint of any int64 / uint64 (a negative int32 too: ten bytes of two's complement). */
function varint64(v: bigint): void {
  let u = BigInt.asUintN(64, v);
  w.ensure(10);
  while (u >= 0x80n) {
    w.buf[w.pos++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  w.buf[w.pos++] = Number(u);
}

function tag(field: number, wireType: number): void {
  varint(field * 8 + wireType);
}

function int32Field(field: number, n: number): void {
  tag(field, VARINT);
  if (n >= 0) varint(n);
  else varint64(BigInt(n));
}

function uintField(field: number, n: number): void {
  if (n === 0) return;
  tag(field, VARINT);
  varint(n);
}

function fixed32Field(field: number, n: number): void {
  tag(field, FIXED32);
  w.uint32le(n >>> 0);
}

function fixed64Field(field: number, v: bigint): void {
  tag(field, FIXED64);
  w.uint64le(v);
}

/** Starts a length-delimited field; its length is written by end(). */
function begin(field: number): number {
  tag(field, LEN);
  w.byte(0);
  return w.pos;
}

/** Writes the length of the field begun at `start`, moving its bytes when the length needs more than one byte. */
function end(start: number): void {
  const len = w.pos - start;
  if (len < 0x80) {
    w.buf[start - 1] = len;
    return;
  }
  let extra = 0;
  for (let n = len; n >= 0x80; n = Math.floor(n / 0x80)) extra++;
  w.ensure(extra);
  w.buf.copyWithin(start + extra, start, w.pos);
  w.pos = start - 1;
  varint(len);
  w.pos = start + extra + len;
}

function bytesField(field: number, b: Uint8Array): void {
  tag(field, LEN);
  varint(b.length);
  w.bytes(b);
}

function stringField(field: number, s: string): void {
  const start = begin(field);
  w.utf8(s);
  end(start);
}

function str(field: number, s: string): void {
  if (s !== '') stringField(field, s);
}

/** Each ASCII character's hex digit value, -1 for the others. */
const HEX_DIGIT = new Int8Array(128).fill(-1);
for (let c = 0; c < 128; c++) {
  const d = '0123456789abcdef'.indexOf(String.fromCharCode(c).toLowerCase());
  if (d >= 0) HEX_DIGIT[c] = d;
}

function hexDigit(c: number): number {
  return c < 128 ? HEX_DIGIT[c]! : -1;
}

/** An id's bytes from its hex: decoded in place, or as Buffer.from reads hex when it is not whole pairs of hex digits. */
function id(field: number, hex: string): void {
  if (hex === '') return;
  const n = hex.length >>> 1;
  if ((hex.length & 1) === 0 && n < 0x80) {
    const at = w.pos;
    tag(field, LEN);
    w.ensure(n + 1);
    const out = w.buf;
    let p = w.pos;
    out[p++] = n;
    for (let i = 0; i < hex.length; i += 2) {
      const hi = hexDigit(hex.charCodeAt(i));
      const lo = hexDigit(hex.charCodeAt(i + 1));
      if ((hi | lo) < 0) {
        w.pos = at;
        bytesField(field, Buffer.from(hex, 'hex'));
        return;
      }
      out[p++] = (hi << 4) | lo;
    }
    w.pos = p;
    return;
  }
  bytesField(field, Buffer.from(hex, 'hex'));
}

function value(v: AnyValue): void {
  if ('stringValue' in v) stringField(1, v.stringValue);
  else if ('boolValue' in v) {
    tag(2, VARINT);
    w.byte(v.boolValue ? 1 : 0);
  } else if ('intValue' in v) {
    tag(3, VARINT);
    const n = Number(v.intValue);
    if (n >= 0 && Number.isSafeInteger(n)) varint(n);
    else varint64(BigInt(v.intValue));
  } else if ('doubleValue' in v) {
    tag(4, FIXED64);
    f64[0] = Number(v.doubleValue);
    w.bytes(f64Bytes);
  } else if ('bytesValue' in v) bytesField(7, Buffer.from(v.bytesValue, 'base64'));
  else if ('arrayValue' in v) {
    const list = begin(5);
    for (const x of v.arrayValue.values) {
      const item = begin(1);
      value(x);
      end(item);
    }
    end(list);
  } else if ('kvlistValue' in v) {
    const list = begin(6);
    keyValues(1, v.kvlistValue.values);
    end(list);
  }
}

function keyValues(field: number, kvs: readonly KeyValue[]): void {
  for (const kv of kvs) {
    const item = begin(field);
    stringField(1, kv.key);
    const v = begin(2);
    value(kv.value);
    end(v);
    end(item);
  }
}

function resourceFields(r: ResourceInfo): void {
  const m = begin(1);
  keyValues(1, r.attributes);
  uintField(2, r.droppedAttributesCount);
  end(m);
}

function scopeFields(s: ScopeInfo): void {
  const m = begin(1);
  str(1, s.name);
  str(2, s.version);
  keyValues(3, s.attributes);
  uintField(4, s.droppedAttributesCount);
  end(m);
}

function span(s: SpanRow): void {
  id(1, s.traceId);
  id(2, s.spanId);
  str(3, s.traceState);
  id(4, s.parentSpanId);
  stringField(5, s.name);
  if (s.kind !== 0) int32Field(6, s.kind);
  fixed64Field(7, s.startTimeUnixNano);
  fixed64Field(8, s.endTimeUnixNano);
  keyValues(9, s.attributes);
  uintField(10, s.droppedAttributesCount);
  for (const e of s.events) {
    const m = begin(11);
    fixed64Field(1, e.timeUnixNano);
    str(2, e.name);
    keyValues(3, e.attributes);
    uintField(4, e.droppedAttributesCount);
    end(m);
  }
  uintField(12, s.droppedEventsCount);
  for (const l of s.links) {
    const m = begin(13);
    id(1, l.traceId);
    id(2, l.spanId);
    str(3, l.traceState);
    keyValues(4, l.attributes);
    uintField(5, l.droppedAttributesCount);
    if (l.flags !== 0) fixed32Field(6, l.flags);
    end(m);
  }
  uintField(14, s.droppedLinksCount);
  if (s.statusCode !== 0 || s.statusMessage !== '') {
    const m = begin(15);
    str(2, s.statusMessage);
    if (s.statusCode !== 0) int32Field(3, s.statusCode);
    end(m);
  }
  if (s.flags !== 0) fixed32Field(16, s.flags);
}

function logRecord(l: LogRow): void {
  if (l.timeUnixNano !== 0n) fixed64Field(1, l.timeUnixNano);
  if (l.severityNumber !== 0) int32Field(2, l.severityNumber);
  str(3, l.severityText);
  if (Object.keys(l.body).length > 0) {
    const m = begin(5);
    value(l.body);
    end(m);
  }
  keyValues(6, l.attributes);
  uintField(7, l.droppedAttributesCount);
  if (l.flags !== 0) fixed32Field(8, l.flags);
  id(9, l.traceId);
  id(10, l.spanId);
  if (l.observedTimeUnixNano !== 0n) fixed64Field(11, l.observedTimeUnixNano);
  str(12, l.eventName);
}

/** Rows as one export request, a group per run of rows sharing their resource and scope objects; valid until the next call. */
function request<R extends { resource: ResourceInfo; scope: ScopeInfo }>(rows: readonly R[], item: (r: R) => void): Uint8Array {
  w.pos = 0;
  let i = 0;
  while (i < rows.length) {
    const { resource, scope } = rows[i]!;
    const group = begin(1);
    resourceFields(resource);
    str(3, resource.schemaUrl);
    const scoped = begin(2);
    scopeFields(scope);
    str(3, scope.schemaUrl);
    for (; i < rows.length && rows[i]!.resource === resource && rows[i]!.scope === scope; i++) {
      const m = begin(2);
      item(rows[i]!);
      end(m);
    }
    end(scoped);
    end(group);
  }
  return w.buf.subarray(0, w.pos);
}

/** Spans as an ExportTraceServiceRequest (a view of a reused buffer: valid until the next call). */
export function tracesRequest(rows: readonly SpanRow[]): Uint8Array {
  return request(rows, span);
}

/** Log records as an ExportLogsServiceRequest (a view of a reused buffer: valid until the next call). */
export function logsRequest(rows: readonly LogRow[]): Uint8Array {
  return request(rows, logRecord);
}

/** Transcodes re-encoded rows; every row was valid, so every row must come out. */
function chunksOf(n: number, body: Uint8Array, transcode: typeof transcodeTracesProto): EncodedChunk[] {
  if (n === 0) return [];
  const r = transcode(body, LIMITS);
  // The transcoder copied what it keeps: a buffer one huge request grew is not held for good.
  w.shrink();
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
