// OTLP protobuf → the chunks of the memory and SQLite stores (src/storage/otlp-chunks.ts): each
// accepted span or log record is copied as the bytes it arrived in, behind a fixed header of its
// indexed columns; its resource and scope are copied once per group. Nothing is rendered: the pass validates
// every field the row decoder validates (the same items are rejected for the same reasons, the
// same requests refused with the same error) and copies bytes.
import { decodeLogsProto, decodeTracesProto, KNOWN_ANYVALUE, KNOWN_KEYVALUE, KNOWN_LIST } from '../../decode/otlp-proto.ts';
import { REASON_TIME, REASON_TOO_DEEP, Rejections, UNKNOWN_SERVICE, type DecodeLimits } from '../../decode/common.ts';
import { checkEnd, unknownField, type WireReader } from '../../decode/wire.ts';
import { CHUNK_MAGIC, REC_GROUP, REC_LOG, REC_SPAN } from '../../../storage/otlp-chunks.ts';
import { EVENT, ID_BAD, ID_OK, GROUP_ATTRS, keyValueInPlace, KV, LINK, LOG, MAX_TIME_HI, nextField, scanEvent, scanLink, scanLog, scanSpan, SPAN, SPAN_ATTRS, SPAN_EVENTS, LOG_ATTRS, LOG_BODIES, walkOrRowPathError, type Walk, keepSpan, type FieldRanges } from '../wire-scan.ts';
import { ascii, ByteOut, storeBytesBound } from '../byte-out.ts';
import { STORE_BYTES_PER_REQUEST_BYTE } from '../../../storage/encoders.ts';
import type { EncodedRequest } from '../encoder.ts';

const UNKNOWN_SERVICE_BYTES = ascii(UNKNOWN_SERVICE);
const SERVICE_NAME = ascii('service.name');
const OUT_INITIAL_BYTES = 1 << 20;
/** The chunk being written; one per worker, reused (its result is copied out). */
const out = new ByteOut(OUT_INITIAL_BYTES);

// Per-call state: decoding is synchronous and a worker runs one task at a time.
let maxDepth = 100;
/** Set when a value nested deeper than maxDepth was met; each item clears and checks it. */
let tooDeep = false;
let accepted = 0;

// The last AnyValue validated: whether it was a string, and the string's bytes (for service.name).
let lastIsString = false;
let lastStringStart = 0;
let lastStringEnd = 0;
/** The key bytes of the last KeyValue validated. */
let keyStart = 0;
let keyEnd = 0;

// ---------------------------------------------------------------------------------------------
// Values: read and validated exactly as the row decoder reads them, nothing written.

function anyValue(r: WireReader, end: number, depth: number): void {
  let isString = false;
  let ks = 0;
  let ke = 0;
  // Whether it sets a value: one that does not leaves an earlier one of its KeyValue (valueGivenAgain).
  let sets = false;
  while (r.pos < end) {
    const tag = r.tag();
    // Fields 1–7 are the oneof's (one with another wire type throws below).
    if (tag >>> 3 <= 7) sets = true;
    switch (tag) {
      case 10: {
        ke = r.lenEnd();
        ks = r.pos;
        r.pos = ke;
        isString = true;
        break;
      }
      case 16:
        r.bool();
        isString = false;
        break;
      case 24:
        r.varint64();
        isString = false;
        break;
      case 33:
        r.double();
        isString = false;
        break;
      case 42:
      case 50: {
        const e = r.lenEnd();
        isString = false;
        if (depth >= maxDepth) {
          tooDeep = true;
          r.pos = e;
          break;
        }
        if (tag === 42) listValue(r, e, depth + 1, 'ArrayValue');
        else listValue(r, e, depth + 1, 'KeyValueList');
        break;
      }
      case 58:
        r.pos = r.lenEnd();
        isString = false;
        break;
      default:
        unknownField(r, tag, KNOWN_ANYVALUE, 'AnyValue');
    }
  }
  checkEnd(r, end, 'AnyValue');
  if (!sets) return;
  lastIsString = isString;
  lastStringStart = ks;
  lastStringEnd = ke;
}

/** An ArrayValue (AnyValues) or a KeyValueList (KeyValues) r[pos, end) whose values lie at depth. */
function listValue(r: WireReader, end: number, depth: number, message: 'ArrayValue' | 'KeyValueList'): void {
  while (r.pos < end) {
    const t = r.tag();
    if (t !== 10) {
      unknownField(r, t, KNOWN_LIST, message);
      continue;
    }
    const e = r.lenEnd();
    if (message === 'ArrayValue') anyValue(r, e, depth);
    else keyValue(r, e, depth);
  }
  checkEnd(r, end, message);
}

/**
 * The KeyValue in r[pos, end), in one pass as the row decoder reads it: every value field read
 * where it lies, the last one kept.
 */
function keyValue(r: WireReader, end: number, depth: number): void {
  if (scalarKeyValue(r, end)) return;
  let ks = 0;
  let ke = 0;
  lastIsString = false;
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === 10) {
      ke = r.lenEnd();
      ks = r.pos;
      r.pos = ke;
    } else if (tag === 18) anyValue(r, r.lenEnd(), depth);
    else unknownField(r, tag, KNOWN_KEYVALUE, 'KeyValue');
  }
  checkEnd(r, end, 'KeyValue');
  keyStart = ks;
  keyEnd = ke;
}

/**
 * The KeyValue r[pos, end) in the layout SDKs write for most attributes, read in place: a key
 * shorter than 128 bytes, then a value whose AnyValue is one field, a string shorter than 128
 * bytes, a one-byte bool or int, or a double, each filling the message to its end (the bytes a
 * general read would find valid and read the same way). Returns false, having read nothing, for
 * any other layout (keyValue then reads it field by field).
 */
function scalarKeyValue(r: WireReader, end: number): boolean {
  const buf = r.buf;
  if (!keyValueInPlace(buf, r.pos, end)) return false;
  // The layout of wire-scan.ts's scalarValueInPlace, checked inline: a call to it here cost the
  // transcoder ~3 % (bench/ab.ts --transcoder=otlp, 11 pairs). An empty value (v = end) fails
  // every check below: bytes past `end` may be read.
  const v = KV.valueStart;
  const t = buf[v];
  if (t === 10) {
    if (buf[v + 1]! >= 0x80 || v + 2 + buf[v + 1]! !== end) return false;
    lastIsString = true;
    lastStringStart = v + 2;
    lastStringEnd = end;
  } else if (t === 16 || t === 24) {
    if (v + 2 !== end || buf[v + 1]! >= 0x80) return false;
    lastIsString = false;
  } else if (t === 33) {
    if (v + 9 !== end) return false;
    lastIsString = false;
  } else return false;
  keyStart = KV.keyStart;
  keyEnd = KV.keyEnd;
  r.pos = end;
  return true;
}

/** The KeyValues at `places`. */
function keyValues(r: WireReader, places: FieldRanges): void {
  for (let i = 0; i < places.n; i++) {
    r.pos = places.starts[i]!;
    keyValue(r, places.ends[i]!, 0);
  }
}

/** The attributes (fields with `tag`) of the message r[start, end). */
function attributes(r: WireReader, start: number, end: number, tag: number): void {
  r.pos = start;
  for (let e = nextField(r, end, tag); e >= 0; e = nextField(r, end, tag)) keyValue(r, e, 0);
}

function lastKeyIsServiceName(buf: Uint8Array): boolean {
  if (keyEnd - keyStart !== SERVICE_NAME.length) return false;
  for (let i = 0; i < SERVICE_NAME.length; i++) if (buf[keyStart + i] !== SERVICE_NAME[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Groups: validated when met, written before their first accepted item.

const G = {
  resourceStart: 0,
  resourceEnd: 0,
  scopeStart: 0,
  scopeEnd: 0,
  serviceStart: 0,
  serviceEnd: 0,
  /** No service.name string: UNKNOWN_SERVICE. */
  serviceUnknown: true,
  /** The resource or the scope had a value nested too deep: their items are rejected. */
  resourceDeep: false,
  scopeDeep: false,
  /** The group record of the current scope is in the chunk. */
  written: false,
};

function resource(r: WireReader, start: number, end: number): void {
  tooDeep = false;
  let unknown = true;
  for (let i = 0; i < GROUP_ATTRS.n; i++) {
    r.pos = GROUP_ATTRS.starts[i]!;
    keyValue(r, GROUP_ATTRS.ends[i]!, 0);
    if (lastKeyIsServiceName(r.buf)) {
      // The last service.name wins, as attribute deduplication keeps the last value.
      unknown = !lastIsString;
      G.serviceStart = lastStringStart;
      G.serviceEnd = lastStringEnd;
    }
  }
  G.serviceUnknown = unknown;
  G.resourceDeep = tooDeep;
  G.resourceStart = start;
  G.resourceEnd = end;
}

function scope(r: WireReader, start: number, end: number): void {
  tooDeep = false;
  keyValues(r, GROUP_ATTRS);
  G.scopeDeep = tooDeep;
  G.scopeStart = start;
  G.scopeEnd = end;
  G.written = false;
}

/** Copies the fields of message r[start, end) other than field 2 (the group's scopes or items), with a length prefix. */
function fieldsButItems(r: WireReader, start: number, end: number): void {
  const lenAt = out.pos;
  out.uint32le(0);
  r.pos = start;
  while (r.pos < end) {
    const fieldStart = r.pos;
    const tag = r.tag();
    r.skip(tag);
    if (tag !== 18) out.bytes(r.buf, fieldStart, r.pos);
  }
  const n = out.pos - lenAt - 4;
  out.pos = lenAt;
  out.uint32le(n);
  out.pos += n;
}

function writeGroup(r: WireReader): void {
  out.byte(REC_GROUP);
  if (G.serviceUnknown) {
    out.uint32le(UNKNOWN_SERVICE_BYTES.length);
    out.bytes(UNKNOWN_SERVICE_BYTES);
  } else {
    out.uint32le(G.serviceEnd - G.serviceStart);
    out.bytes(r.buf, G.serviceStart, G.serviceEnd);
  }
  fieldsButItems(r, G.resourceStart, G.resourceEnd);
  fieldsButItems(r, G.scopeStart, G.scopeEnd);
  G.written = true;
}

/** The request walk for items checked by `check` (false: rejected) and written by `write`. */
function walkOf(check: (r: WireReader, start: number, end: number, rej: Rejections) => boolean, write: (r: WireReader, start: number, end: number) => void, requestMessage: string, resourceMessage: string, scopeMessage: string): Walk {
  return {
    requestMessage,
    resourceMessage,
    scopeMessage,
    resource,
    scope,
    item(r, start, end, rej) {
      if (!check(r, start, end, rej)) return;
      if (G.resourceDeep || G.scopeDeep) {
        // The resource or scope cannot be stored faithfully, so neither can its items.
        rej.add(REASON_TOO_DEEP);
        return;
      }
      if (!G.written) writeGroup(r);
      write(r, start, end);
      accepted++;
    },
  };
}

function reject(rej: Rejections, reason: number): false {
  rej.add(reason);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Traces.

/** Checks span r[start, end) as the row decoder does; SPAN holds its scalars afterwards. */
function checkSpan(r: WireReader, start: number, end: number, rej: Rejections): boolean {
  tooDeep = false;
  scanSpan(r, start, end);
  const { hasEvents, hasLinks } = SPAN;
  // Attributes and events where the scan found them, without walking the span's fields again.
  keyValues(r, SPAN_ATTRS);
  let eventTimesStorable = true;
  if (hasEvents) {
    const events = SPAN_EVENTS;
    for (let i = 0; i < events.n; i++) {
      const s = events.starts[i]!;
      const e = events.ends[i]!;
      r.pos = s;
      scanEvent(r, e);
      if (EVENT.hi >= MAX_TIME_HI) eventTimesStorable = false;
      attributes(r, s, e, 26);
    }
  }
  let linksGood = true;
  if (hasLinks) {
    r.pos = start;
    for (let e = nextField(r, end, 106); e >= 0; e = nextField(r, end, 106)) {
      const s = r.pos;
      scanLink(r, e);
      // The row path drops a link with a malformed id (and then the span); its attributes are still read.
      if (LINK.traceState === ID_BAD || LINK.spanState === ID_BAD) linksGood = false;
      attributes(r, s, e, 34);
      r.pos = e;
    }
  }
  return keepSpan(rej, linksGood, tooDeep, eventTimesStorable);
}

/**
 * The nine words of a span record's header after its ids, gathered here and written in one call:
 * as arguments of calls the compiler does not inline, a time's low half past 2^30 would be a new
 * heap number each.
 */
const SPAN_WORDS = new Uint32Array(9);

/** Writes the record of the span just checked. */
function writeSpan(r: WireReader, start: number, end: number): void {
  const buf = r.buf;
  const { traceStart, spanStart, parentStart, parentState, nameStart, nameEnd, kind, startLo, startHi, endLo, endHi, statusCode } = SPAN;
  out.byte(REC_SPAN);
  out.bytes(buf, traceStart, traceStart + 16);
  out.bytes(buf, spanStart, spanStart + 8);
  if (parentState === ID_OK) {
    out.byte(8);
    out.bytes(buf, parentStart, parentStart + 8);
  } else {
    out.byte(0);
    out.uint32le(0);
    out.uint32le(0);
  }
  const w = SPAN_WORDS;
  w[0] = startLo;
  w[1] = startHi;
  w[2] = endLo;
  w[3] = endHi;
  w[4] = statusCode;
  w[5] = kind;
  w[6] = nameEnd > nameStart ? nameStart - start : 0;
  w[7] = nameEnd - nameStart;
  w[8] = end - start;
  out.uint32les(w);
  out.bytes(buf, start, end);
}

const SPANS = walkOf(checkSpan, writeSpan, 'ExportTraceServiceRequest', 'ResourceSpans', 'ScopeSpans');

// ---------------------------------------------------------------------------------------------
// Logs.

/** Checks log record r[start, end) as the row decoder does; LOG holds its scalars afterwards. */
function checkLog(r: WireReader, start: number, end: number, rej: Rejections): boolean {
  tooDeep = false;
  scanLog(r, start, end);
  // Bodies and attributes where the scan found them.
  for (let i = 0; i < LOG_BODIES.n; i++) {
    r.pos = LOG_BODIES.starts[i]!;
    anyValue(r, LOG_BODIES.ends[i]!, 0);
  }
  keyValues(r, LOG_ATTRS);
  if (tooDeep) return reject(rej, REASON_TOO_DEEP);
  if (LOG.timeHi >= MAX_TIME_HI || LOG.obsHi >= MAX_TIME_HI) return reject(rej, REASON_TIME);
  return true;
}

/** A log record's indexed time and its last two header words, written as SPAN_WORDS is. */
const LOG_TIME = new Uint32Array(2);
const LOG_TAIL = new Uint32Array(2);

/** Writes the record of the log record just checked. */
function writeLog(r: WireReader, start: number, end: number): void {
  const { timeLo, timeHi, obsLo, obsHi, traceStart, traceState } = LOG;
  out.byte(REC_LOG);
  // The indexed time: the record's time, or its observed time when unset.
  const unset = timeLo === 0 && timeHi === 0;
  LOG_TIME[0] = unset ? obsLo : timeLo;
  LOG_TIME[1] = unset ? obsHi : timeHi;
  out.uint32les(LOG_TIME);
  // Empty, all-zero or malformed ids mean "not linked".
  if (traceState === ID_OK) {
    out.byte(16);
    out.bytes(r.buf, traceStart, traceStart + 16);
  } else {
    out.byte(0);
    for (let i = 0; i < 4; i++) out.uint32le(0);
  }
  LOG_TAIL[0] = LOG.severity;
  LOG_TAIL[1] = end - start;
  out.uint32les(LOG_TAIL);
  out.bytes(r.buf, start, end);
}

const LOGS = walkOf(checkLog, writeLog, 'ExportLogsServiceRequest', 'ResourceLogs', 'ScopeLogs');

// ---------------------------------------------------------------------------------------------

function transcode(bytes: Uint8Array, limits: DecodeLimits, walk: Walk, singular: string, plural: string, rowPath: (b: Uint8Array, l: DecodeLimits) => unknown): EncodedRequest {
  maxDepth = limits.maxNestingDepth;
  const rej = new Rejections(limits.maxNestingDepth);
  accepted = 0;
  // Room for the chunk up front: a record is an item's bytes behind a header of tens of bytes.
  out.start(bytes.byteLength * STORE_BYTES_PER_REQUEST_BYTE.otlp, storeBytesBound(bytes.byteLength, limits.maxStoreBytes));
  out.byte(CHUNK_MAGIC);
  // The record count, known at the end: a store can take the chunk's records without walking them.
  out.uint32le(0);
  walkOrRowPathError(bytes, limits, walk, rej, rowPath);
  out.uint32leAt(1, accepted);
  const chunks = accepted === 0 ? [] : [{ partition: 0, rows: accepted, data: out.take() }];
  out.shrink();
  return { accepted, rejected: rej.total, errorMessage: rej.message(singular, plural), chunks };
}

/** An ExportTraceServiceRequest as a memory-store chunk; accepts, rejects and throws as decodeTracesProto does. */
export function transcodeTracesProto(bytes: Uint8Array, limits: DecodeLimits): EncodedRequest {
  return transcode(bytes, limits, SPANS, 'span', 'spans', decodeTracesProto);
}

/** An ExportLogsServiceRequest as a memory-store chunk; accepts, rejects and throws as decodeLogsProto does. */
export function transcodeLogsProto(bytes: Uint8Array, limits: DecodeLimits): EncodedRequest {
  return transcode(bytes, limits, LOGS, 'log record', 'log records', decodeLogsProto);
}
