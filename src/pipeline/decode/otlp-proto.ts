// OTLP protobuf → rows, in one pass over the request bytes. This is the hot path: no message
// objects in between, no closures per field, fields dispatched on their whole tag (field number
// and wire type) so the common case is one switch, and repeated short strings (attribute keys,
// most values) come from a cache instead of being decoded again.
//
// Tags in the switches are written as numbers: (field << 3) | wire type, with 0 varint,
// 1 fixed64, 2 length-delimited, 5 fixed32.
import type { AnyValue, KeyValue, LogRow, ResourceInfo, ScopeInfo, SpanEvent, SpanLink, SpanRow } from '../../model/rows.ts';
import { dedupeAttributes, jsonDouble, REASON_LINK_ID, REASON_PARENT_SPAN_ID, REASON_SPAN_ID, MAX_TIME_NS, REASON_TIME, spanTimesStorable, REASON_TOO_DEEP, REASON_TRACE_ID, Rejections, serviceNameOf, type DecodeLimits, type DecodeResult } from './common.ts';
import { checkEnd, unknownField, WireReader } from './wire.ts';

// Known field numbers per message, as bit masks: a known field with an unexpected wire type is
// an error, an unknown field is skipped. The transcoders (transcode/wire-scan.ts) use them too.
export const KNOWN_REQUEST = 1 << 1;
export const KNOWN_RESOURCE_ITEMS = (1 << 1) | (1 << 2) | (1 << 3);
export const KNOWN_SCOPE_ITEMS = (1 << 1) | (1 << 2) | (1 << 3);
export const KNOWN_RESOURCE = (1 << 1) | (1 << 2) | (1 << 3);
export const KNOWN_SCOPE = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4);
export const KNOWN_SPAN = 0x1fffe; // fields 1..16
export const KNOWN_EVENT = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4);
export const KNOWN_LINK = 0x7e; // fields 1..6
export const KNOWN_STATUS = (1 << 2) | (1 << 3);
export const KNOWN_LOG = 0x1fee; // fields 1..12 except the reserved 4
export const KNOWN_KEYVALUE = (1 << 1) | (1 << 2);
export const KNOWN_ANYVALUE = 0xfe; // fields 1..7
export const KNOWN_LIST = 1 << 1;

// Per-call state. Decoding is synchronous and a worker runs one task at a time.
let maxDepth = 100;
/** Set when a value nested deeper than maxDepth was skipped; each item checks and clears it. */
let tooDeep = false;

// ---------------------------------------------------------------------------------------------
// Strings: a direct-mapped cache of short strings, keyed by their bytes. Attribute keys and most
// attribute values repeat across spans and requests; a hit costs a hash and a compare instead of
// a native call and a new string. It lives as long as the worker.

const CACHE_SLOTS = 4096;
const CACHE_MAX_LEN = 32;
const cacheBytes = new Uint8Array(CACHE_SLOTS * CACHE_MAX_LEN);
const cacheLen = new Int32Array(CACHE_SLOTS);
const cacheHead = new Int32Array(CACHE_SLOTS);
const cacheTail = new Int32Array(CACHE_SLOTS);
const cacheStr: string[] = Array.from({ length: CACHE_SLOTS }, () => '');

function readString(r: WireReader): string {
  const end = r.lenEnd();
  const start = r.pos;
  r.pos = end;
  const n = end - start;
  if (n === 0) return '';
  if (n > CACHE_MAX_LEN) return r.nb.utf8Slice(start, end);
  const buf = r.buf;
  // The slot comes from the length and the first and last four bytes (constant time); the full
  // byte compare below makes a collision a miss, never a wrong string.
  const head = buf[start] | (buf[start + (n > 1 ? 1 : 0)] << 8) | (buf[start + (n > 2 ? 2 : 0)] << 16) | (buf[start + (n > 3 ? 3 : 0)] << 24);
  const last = end - 1;
  const tail = buf[last] | (buf[last - (n > 1 ? 1 : 0)] << 8) | (buf[last - (n > 2 ? 2 : 0)] << 16) | (buf[last - (n > 3 ? 3 : 0)] << 24);
  let h = Math.imul(head ^ n, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16) ^ tail, 0x85ebca6b);
  const slot = (h ^ (h >>> 13)) & (CACHE_SLOTS - 1);
  const base = slot * CACHE_MAX_LEN;
  if (cacheLen[slot] === n && cacheHead[slot] === head && cacheTail[slot] === tail) {
    // Head and tail cover every byte of a string up to 8 bytes; longer ones compare the middle.
    if (n <= 8) return cacheStr[slot];
    const lim = n - 4;
    let j = 4;
    while (j < lim && cacheBytes[base + j] === buf[start + j]) j++;
    if (j === lim) return cacheStr[slot];
  }
  const s = r.nb.utf8Slice(start, end);
  for (let j = 0; j < n; j++) cacheBytes[base + j] = buf[start + j];
  cacheLen[slot] = n;
  cacheHead[slot] = head;
  cacheTail[slot] = tail;
  cacheStr[slot] = s;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Ids. Invalid ids come back as null; the caller decides what that means for its item.

// Hex digits of each byte value, as char codes. String.fromCharCode with the 16 or 32 codes as
// arguments builds a flat string about twice as fast as Buffer's hexSlice on short ids.
const HEX_HI = new Uint8Array(256);
const HEX_LO = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  HEX_HI[i] = '0123456789abcdef'.charCodeAt(i >>> 4);
  HEX_LO[i] = '0123456789abcdef'.charCodeAt(i & 15);
}

function hex8(b: Uint8Array, s: number): string {
  const b0 = b[s], b1 = b[s + 1], b2 = b[s + 2], b3 = b[s + 3], b4 = b[s + 4], b5 = b[s + 5], b6 = b[s + 6], b7 = b[s + 7];
  return String.fromCharCode(
    HEX_HI[b0], HEX_LO[b0], HEX_HI[b1], HEX_LO[b1], HEX_HI[b2], HEX_LO[b2], HEX_HI[b3], HEX_LO[b3],
    HEX_HI[b4], HEX_LO[b4], HEX_HI[b5], HEX_LO[b5], HEX_HI[b6], HEX_LO[b6], HEX_HI[b7], HEX_LO[b7],
  );
}

function hex16(b: Uint8Array, s: number): string {
  const b0 = b[s], b1 = b[s + 1], b2 = b[s + 2], b3 = b[s + 3], b4 = b[s + 4], b5 = b[s + 5], b6 = b[s + 6], b7 = b[s + 7];
  const b8 = b[s + 8], b9 = b[s + 9], b10 = b[s + 10], b11 = b[s + 11], b12 = b[s + 12], b13 = b[s + 13], b14 = b[s + 14], b15 = b[s + 15];
  return String.fromCharCode(
    HEX_HI[b0], HEX_LO[b0], HEX_HI[b1], HEX_LO[b1], HEX_HI[b2], HEX_LO[b2], HEX_HI[b3], HEX_LO[b3],
    HEX_HI[b4], HEX_LO[b4], HEX_HI[b5], HEX_LO[b5], HEX_HI[b6], HEX_LO[b6], HEX_HI[b7], HEX_LO[b7],
    HEX_HI[b8], HEX_LO[b8], HEX_HI[b9], HEX_LO[b9], HEX_HI[b10], HEX_LO[b10], HEX_HI[b11], HEX_LO[b11],
    HEX_HI[b12], HEX_LO[b12], HEX_HI[b13], HEX_LO[b13], HEX_HI[b14], HEX_LO[b14], HEX_HI[b15], HEX_LO[b15],
  );
}

/** The last trace id converted: spans of one trace usually arrive together. */
const lastTraceBytes = new Uint8Array(16);
let lastTraceHex = '';

/** The 16-byte trace id in buf[start, end) as hex; '' when empty or all zero; null when any other length. */
function traceIdAt(r: WireReader, start: number, end: number): string | null {
  if (end === start) return '';
  if (end - start !== 16) return null;
  const buf = r.buf;
  let any = 0;
  let same = lastTraceHex !== '';
  for (let i = 0; i < 16; i++) {
    const b = buf[start + i];
    any |= b;
    if (same && lastTraceBytes[i] !== b) same = false;
  }
  if (any === 0) return '';
  if (same) return lastTraceHex;
  for (let i = 0; i < 16; i++) lastTraceBytes[i] = buf[start + i];
  lastTraceHex = hex16(buf, start);
  return lastTraceHex;
}

/** The 8-byte span id in buf[start, end) as hex; '' when empty or all zero; null when any other length. */
function spanIdAt(r: WireReader, start: number, end: number): string | null {
  if (end === start) return '';
  if (end - start !== 8) return null;
  const buf = r.buf;
  let any = 0;
  for (let i = start; i < end; i++) any |= buf[i];
  if (any === 0) return '';
  return hex8(buf, start);
}

function readTraceId(r: WireReader): string | null {
  const end = r.lenEnd();
  const start = r.pos;
  r.pos = end;
  return traceIdAt(r, start, end);
}

function readSpanId(r: WireReader): string | null {
  const end = r.lenEnd();
  const start = r.pos;
  r.pos = end;
  return spanIdAt(r, start, end);
}

// ---------------------------------------------------------------------------------------------
// Common messages.

/**
 * The AnyValue r[pos, end). `prev`: the value an earlier field of the same KeyValue value or
 * LogRecord body gave. Protobuf merges a message field given twice, and so a oneof's message
 * member: an AnyValue that sets nothing (empty, unknown fields only) leaves `prev`, a scalar
 * replaces it, and an array_value or kvlist_value that follows one of its own kind (in this
 * AnyValue or in `prev`) adds its values to it.
 */
function readAnyValue(r: WireReader, end: number, depth: number, prev: AnyValue | null = null): AnyValue {
  let v: AnyValue | null = prev;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10: // string_value
        v = { stringValue: readString(r) };
        break;
      case 16: // bool_value
        v = { boolValue: r.bool() };
        break;
      case 24: // int_value
        v = { intValue: r.int64String() };
        break;
      case 33: // double_value
        v = { doubleValue: jsonDouble(r.double()) };
        break;
      case 42: // array_value
      case 50: {
        // kvlist_value
        const e = r.lenEnd();
        if (depth >= maxDepth) {
          tooDeep = true;
          r.pos = e;
          v = null;
        } else v = mergedList(v, nestedValue(r, e, depth + 1, tag));
        break;
      }
      case 58: {
        // bytes_value
        const e = r.lenEnd();
        v = { bytesValue: r.nb.base64Slice(r.pos, e) };
        r.pos = e;
        break;
      }
      default:
        unknownField(r, tag, KNOWN_ANYVALUE, 'AnyValue');
    }
  }
  checkEnd(r, end, 'AnyValue');
  return v ?? {};
}

/**
 * Counts the kvlists merged into another (mergedList). Their keys are deduplicated once the value
 * is complete (finishedValue), not at each merge: a kvlist given N times would cost N² (17 s of a
 * decode worker for a 330 KB request).
 */
let kvlistMerges = 0;

/** `next` (an array or kvlist value) merged into `v` when that is a value of the same kind, as protobuf merges it; else `next`. */
function mergedList(v: AnyValue | null, next: AnyValue): AnyValue {
  if (v !== null && 'arrayValue' in v && 'arrayValue' in next) {
    for (const x of next.arrayValue.values) v.arrayValue.values.push(x);
    return v;
  }
  if (v !== null && 'kvlistValue' in v && 'kvlistValue' in next) {
    const values = v.kvlistValue.values;
    for (const x of next.kvlistValue.values) values.push(x);
    kvlistMerges++;
    return v;
  }
  return next;
}

/** The complete value v: its kvlist's keys deduplicated when a kvlist was merged since `merges` (kvlistMerges then). */
function finishedValue(v: AnyValue, merges: number): AnyValue {
  if (merges !== kvlistMerges && 'kvlistValue' in v) v.kvlistValue.values = dedupeAttributes(v.kvlistValue.values);
  return v;
}

/** The array_value (tag 42) or kvlist_value (tag 50) body r[pos, end) at depth. */
function nestedValue(r: WireReader, end: number, depth: number, tag: number): AnyValue {
  return tag === 42 ? { arrayValue: { values: readArrayValue(r, end, depth) } } : { kvlistValue: { values: readKeyValueList(r, end, depth) } };
}

function readArrayValue(r: WireReader, end: number, depth: number): AnyValue[] {
  const values: AnyValue[] = [];
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === 10) {
      const e = r.lenEnd();
      const merges = kvlistMerges;
      values.push(finishedValue(readAnyValue(r, e, depth), merges));
    } else {
      unknownField(r, tag, KNOWN_LIST, 'ArrayValue');
    }
  }
  checkEnd(r, end, 'ArrayValue');
  return values;
}

function readKeyValueList(r: WireReader, end: number, depth: number): KeyValue[] {
  const values: KeyValue[] = [];
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === 10) {
      const e = r.lenEnd();
      values.push(readKeyValue(r, e, depth));
    } else {
      unknownField(r, tag, KNOWN_LIST, 'KeyValueList');
    }
  }
  checkEnd(r, end, 'KeyValueList');
  return dedupeAttributes(values);
}

function readKeyValue(r: WireReader, end: number, depth: number): KeyValue {
  let key = '';
  let value: AnyValue | null = null;
  const merges = kvlistMerges;
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === 10) {
      key = readString(r);
    } else if (tag === 18) {
      const e = r.lenEnd();
      value = readAnyValue(r, e, depth, value);
    } else {
      unknownField(r, tag, KNOWN_KEYVALUE, 'KeyValue');
    }
  }
  checkEnd(r, end, 'KeyValue');
  return { key, value: value === null ? {} : finishedValue(value, merges) };
}

/**
 * The row decoder's object for the array_value (tag 42) or kvlist_value (tag 50) body r[pos, end)
 * at depth, for a transcoder that renders such values from objects; null when a value in it lies
 * deeper than limit (the row decoder rejects the item).
 */
export function readNestedValue(r: WireReader, end: number, depth: number, limit: number, tag: number): AnyValue | null {
  maxDepth = limit;
  tooDeep = false;
  const v = nestedValue(r, end, depth, tag);
  return tooDeep ? null : v;
}

/** The row decoder's object for the KeyValue r[pos, end); null when a value in it lies deeper than limit. */
export function readKeyValueObject(r: WireReader, end: number, limit: number): KeyValue | null {
  maxDepth = limit;
  tooDeep = false;
  const kv = readKeyValue(r, end, 0);
  return tooDeep ? null : kv;
}

/** Reads one attribute (a KeyValue field) and appends it. */
function pushAttribute(r: WireReader, attrs: KeyValue[]): void {
  const e = r.lenEnd();
  attrs.push(readKeyValue(r, e, 0));
}

function readResource(r: WireReader, end: number, res: ResourceInfo): void {
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10:
        pushAttribute(r, res.attributes);
        break;
      case 16:
        res.droppedAttributesCount = r.uint32();
        break;
      case 26: // entity_refs: not stored
        r.skip(tag);
        break;
      default:
        unknownField(r, tag, KNOWN_RESOURCE, 'Resource');
    }
  }
  checkEnd(r, end, 'Resource');
}

function readScope(r: WireReader, end: number, scope: ScopeInfo): void {
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10:
        scope.name = readString(r);
        break;
      case 18:
        scope.version = readString(r);
        break;
      case 26:
        pushAttribute(r, scope.attributes);
        break;
      case 32:
        scope.droppedAttributesCount = r.uint32();
        break;
      default:
        unknownField(r, tag, KNOWN_SCOPE, 'InstrumentationScope');
    }
  }
  checkEnd(r, end, 'InstrumentationScope');
}

function newResource(): ResourceInfo {
  return { attributes: [], droppedAttributesCount: 0, schemaUrl: '' };
}

function newScope(): ScopeInfo {
  return { name: '', version: '', attributes: [], droppedAttributesCount: 0, schemaUrl: '' };
}

/**
 * Finishes the rows decoded under one resource or scope since `first`: drops them all when that
 * resource or scope had a value nested too deep.
 */
function dropFrom<T>(rows: T[], first: number, rej: Rejections): void {
  rej.add(REASON_TOO_DEEP, rows.length - first);
  rows.length = first;
}

// ---------------------------------------------------------------------------------------------
// The request levels both signals share.

/** What the resource/scope/request walk needs to know about one signal. */
interface SignalShape<T extends { serviceName: string }> {
  readItem: (r: WireReader, end: number, resource: ResourceInfo, scope: ScopeInfo, rows: T[], rej: Rejections) => void;
  scopeMessage: string;
  resourceMessage: string;
  requestMessage: string;
  singular: string;
  plural: string;
}

function readScopeItems<T extends { serviceName: string }>(r: WireReader, end: number, resource: ResourceInfo, rows: T[], rej: Rejections, sig: SignalShape<T>): void {
  const scope = newScope();
  const first = rows.length;
  let scopeTooDeep = false;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10: {
        const e = r.lenEnd();
        tooDeep = false;
        readScope(r, e, scope);
        if (tooDeep) scopeTooDeep = true;
        break;
      }
      case 18: {
        const e = r.lenEnd();
        sig.readItem(r, e, resource, scope, rows, rej);
        break;
      }
      case 26:
        scope.schemaUrl = readString(r);
        break;
      default:
        unknownField(r, tag, KNOWN_SCOPE_ITEMS, sig.scopeMessage);
    }
  }
  checkEnd(r, end, sig.scopeMessage);
  scope.attributes = dedupeAttributes(scope.attributes);
  if (scopeTooDeep) dropFrom(rows, first, rej);
}

function readResourceItems<T extends { serviceName: string }>(r: WireReader, end: number, rows: T[], rej: Rejections, sig: SignalShape<T>): void {
  const resource = newResource();
  const first = rows.length;
  let resourceTooDeep = false;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10: {
        const e = r.lenEnd();
        tooDeep = false;
        readResource(r, e, resource);
        if (tooDeep) resourceTooDeep = true;
        break;
      }
      case 18: {
        const e = r.lenEnd();
        readScopeItems(r, e, resource, rows, rej, sig);
        break;
      }
      case 26:
        resource.schemaUrl = readString(r);
        break;
      default:
        unknownField(r, tag, KNOWN_RESOURCE_ITEMS, sig.resourceMessage);
    }
  }
  checkEnd(r, end, sig.resourceMessage);
  if (resourceTooDeep) return dropFrom(rows, first, rej);
  resource.attributes = dedupeAttributes(resource.attributes);
  const serviceName = serviceNameOf(resource.attributes);
  for (let i = first; i < rows.length; i++) rows[i].serviceName = serviceName;
}

/** Walks an export request (resource → scope → item) and collects the items' rows. */
function decodeRequest<T extends { serviceName: string }>(bytes: Uint8Array, limits: DecodeLimits, sig: SignalShape<T>): DecodeResult<T> {
  const r = new WireReader(bytes);
  const rej = new Rejections(limits.maxNestingDepth);
  const rows: T[] = [];
  maxDepth = limits.maxNestingDepth;
  while (r.pos < r.len) {
    const tag = r.tag();
    if (tag === 10) {
      const e = r.lenEnd();
      readResourceItems(r, e, rows, rej, sig);
    } else {
      unknownField(r, tag, KNOWN_REQUEST, sig.requestMessage);
    }
  }
  return { rows, rejected: rej.total, errorMessage: rej.message(sig.singular, sig.plural) };
}

// ---------------------------------------------------------------------------------------------
// Traces.

function readEvent(r: WireReader, end: number): SpanEvent {
  let timeUnixNano = 0n;
  let name = '';
  let attributes: KeyValue[] = [];
  let droppedAttributesCount = 0;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 9:
        timeUnixNano = r.fixed64();
        break;
      case 18:
        name = readString(r);
        break;
      case 26:
        pushAttribute(r, attributes);
        break;
      case 32:
        droppedAttributesCount = r.uint32();
        break;
      default:
        unknownField(r, tag, KNOWN_EVENT, 'Span.Event');
    }
  }
  checkEnd(r, end, 'Span.Event');
  attributes = dedupeAttributes(attributes);
  return { timeUnixNano, name, attributes, droppedAttributesCount };
}

/** A link, or null when one of its ids has a wrong length. */
function readLink(r: WireReader, end: number): SpanLink | null {
  let traceId: string | null = '';
  let spanId: string | null = '';
  let traceState = '';
  let flags = 0;
  let attributes: KeyValue[] = [];
  let droppedAttributesCount = 0;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10:
        traceId = readTraceId(r);
        break;
      case 18:
        spanId = readSpanId(r);
        break;
      case 26:
        traceState = readString(r);
        break;
      case 34:
        pushAttribute(r, attributes);
        break;
      case 40:
        droppedAttributesCount = r.uint32();
        break;
      case 53:
        flags = r.fixed32();
        break;
      default:
        unknownField(r, tag, KNOWN_LINK, 'Span.Link');
    }
  }
  checkEnd(r, end, 'Span.Link');
  if (traceId === null || spanId === null) return null;
  attributes = dedupeAttributes(attributes);
  return { traceId, spanId, traceState, flags, attributes, droppedAttributesCount };
}

function readSpan(
  r: WireReader,
  end: number,
  resource: ResourceInfo,
  scope: ScopeInfo,
  rows: SpanRow[],
  rej: Rejections,
): void {
  let traceId: string | null = '';
  let spanId: string | null = '';
  let parentSpanId: string | null = '';
  let traceState = '';
  let flags = 0;
  let name = '';
  let kind = 0;
  let startTimeUnixNano = 0n;
  let endTimeUnixNano = 0n;
  let attributes: KeyValue[] = [];
  let droppedAttributesCount = 0;
  const events: SpanEvent[] = [];
  let droppedEventsCount = 0;
  const links: SpanLink[] = [];
  let droppedLinksCount = 0;
  let statusCode = 0;
  let statusMessage = '';
  let badLink = false;
  tooDeep = false;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10:
        traceId = readTraceId(r);
        break;
      case 18:
        spanId = readSpanId(r);
        break;
      case 26:
        traceState = readString(r);
        break;
      case 34:
        // parent_span_id: empty or all zero (the invalid-id sentinel some exporters write for a
        // root, which the OpenTelemetry Collector reads as none) means a root span
        parentSpanId = readSpanId(r);
        break;
      case 42:
        name = readString(r);
        break;
      case 48:
        kind = r.int32();
        break;
      case 57:
        startTimeUnixNano = r.fixed64();
        break;
      case 65:
        endTimeUnixNano = r.fixed64();
        break;
      case 74:
        pushAttribute(r, attributes);
        break;
      case 80:
        droppedAttributesCount = r.uint32();
        break;
      case 90: {
        const e = r.lenEnd();
        events.push(readEvent(r, e));
        break;
      }
      case 96:
        droppedEventsCount = r.uint32();
        break;
      case 106: {
        const e = r.lenEnd();
        const link = readLink(r, e);
        if (link === null) badLink = true;
        else links.push(link);
        break;
      }
      case 112:
        droppedLinksCount = r.uint32();
        break;
      case 122: {
        const e = r.lenEnd();
        while (r.pos < e) {
          const t = r.tag();
          if (t === 18) statusMessage = readString(r);
          else if (t === 24) statusCode = r.int32();
          else unknownField(r, t, KNOWN_STATUS, 'Status');
        }
        checkEnd(r, e, 'Status');
        break;
      }
      case 133:
        flags = r.fixed32();
        break;
      default:
        unknownField(r, tag, KNOWN_SPAN, 'Span');
    }
  }
  checkEnd(r, end, 'Span');
  if (traceId === null || traceId === '') return rej.add(REASON_TRACE_ID);
  if (spanId === null || spanId === '') return rej.add(REASON_SPAN_ID);
  if (parentSpanId === null) return rej.add(REASON_PARENT_SPAN_ID);
  if (badLink) return rej.add(REASON_LINK_ID);
  if (tooDeep) return rej.add(REASON_TOO_DEEP);
  if (!spanTimesStorable(startTimeUnixNano, endTimeUnixNano, events)) return rej.add(REASON_TIME);
  attributes = dedupeAttributes(attributes);
  rows.push({
    traceId,
    spanId,
    parentSpanId,
    traceState,
    flags,
    name,
    kind,
    startTimeUnixNano,
    endTimeUnixNano,
    durationNano: endTimeUnixNano > startTimeUnixNano ? endTimeUnixNano - startTimeUnixNano : 0n,
    statusCode,
    statusMessage,
    serviceName: '', // set once the whole resource is known
    resource,
    scope,
    attributes,
    droppedAttributesCount,
    events,
    droppedEventsCount,
    links,
    droppedLinksCount,
  });
}

const SPANS: SignalShape<SpanRow> = {
  readItem: readSpan,
  scopeMessage: 'ScopeSpans',
  resourceMessage: 'ResourceSpans',
  requestMessage: 'ExportTraceServiceRequest',
  singular: 'span',
  plural: 'spans',
};

/** Decodes an ExportTraceServiceRequest into span rows. Throws DecodeError for malformed bytes. */
export function decodeTracesProto(bytes: Uint8Array, limits: DecodeLimits): DecodeResult<SpanRow> {
  return decodeRequest(bytes, limits, SPANS);
}

// ---------------------------------------------------------------------------------------------
// Logs.

function readLogRecord(
  r: WireReader,
  end: number,
  resource: ResourceInfo,
  scope: ScopeInfo,
  rows: LogRow[],
  rej: Rejections,
): void {
  let timeUnixNano = 0n;
  let observedTimeUnixNano = 0n;
  let traceId: string | null = '';
  let spanId: string | null = '';
  let flags = 0;
  let severityNumber = 0;
  let severityText = '';
  let body: AnyValue | null = null;
  let eventName = '';
  let attributes: KeyValue[] = [];
  let droppedAttributesCount = 0;
  tooDeep = false;
  const merges = kvlistMerges;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 9:
        timeUnixNano = r.fixed64();
        break;
      case 16:
        severityNumber = r.int32();
        break;
      case 26:
        severityText = readString(r);
        break;
      case 42: {
        const e = r.lenEnd();
        body = readAnyValue(r, e, 0, body);
        break;
      }
      case 50:
        pushAttribute(r, attributes);
        break;
      case 56:
        droppedAttributesCount = r.uint32();
        break;
      case 69:
        flags = r.fixed32();
        break;
      case 74:
        traceId = readTraceId(r);
        break;
      case 82:
        spanId = readSpanId(r);
        break;
      case 89:
        observedTimeUnixNano = r.fixed64();
        break;
      case 98:
        eventName = readString(r);
        break;
      default:
        unknownField(r, tag, KNOWN_LOG, 'LogRecord');
    }
  }
  checkEnd(r, end, 'LogRecord');
  // Empty, all-zero or malformed ids mean "not linked" (OTLP: a log record with an invalid trace
  // id is treated as not linked to a trace): the record itself is good data and is kept.
  if (traceId === null) traceId = '';
  if (spanId === null) spanId = '';
  if (tooDeep) return rej.add(REASON_TOO_DEEP);
  if (timeUnixNano > MAX_TIME_NS || observedTimeUnixNano > MAX_TIME_NS) return rej.add(REASON_TIME);
  attributes = dedupeAttributes(attributes);
  rows.push({
    timeUnixNano,
    observedTimeUnixNano,
    traceId,
    spanId,
    flags,
    severityNumber,
    severityText,
    body: body === null ? {} : finishedValue(body, merges),
    eventName,
    serviceName: '', // set once the whole resource is known
    resource,
    scope,
    attributes,
    droppedAttributesCount,
  });
}

const LOGS: SignalShape<LogRow> = {
  readItem: readLogRecord,
  scopeMessage: 'ScopeLogs',
  resourceMessage: 'ResourceLogs',
  requestMessage: 'ExportLogsServiceRequest',
  singular: 'log record',
  plural: 'log records',
};

/** Decodes an ExportLogsServiceRequest into log rows. Throws DecodeError for malformed bytes. */
export function decodeLogsProto(bytes: Uint8Array, limits: DecodeLimits): DecodeResult<LogRow> {
  return decodeRequest(bytes, limits, LOGS);
}
