// OTLP protobuf → ClickHouse RowBinary (the rows src/storage/clickhouse/encoder.ts writes, in the
// columns of its schema.ts) in one pass over the request: strings, ids and times are copied from
// the wire bytes into the output, resource and scope are rendered once per group, and each row's
// TracehouseExtra JSON is written as bytes. Rows go to one output buffer and are gathered into one
// chunk per shard at the end (by offsets, no object per row).
//
// Objects are still made where the row encoder's output depends on JS values: array and kvlist
// attribute values (their text is anyValueToString's and their whole form stringifyExact's) and
// a span's scope attributes (stringifyExact of the list, once per scope group). A repeated
// attribute key is resolved as dedupeAttributes does (the last value at the first key's place)
// by rewriting the map in place. What would need the row path's own code (a value nested deeper
// than the limit, a malformed request) sends the whole request down the row path, so its results
// and errors are exactly the row path's; `fallbacks` counts how often that happens.
import type { KeyValue } from '../../../model/rows.ts';
import { anyValueToString } from '../../../model/rows.ts';
import { hashTraceId, SPAN_KINDS, STATUS_CODES } from '../../../storage/clickhouse/encoder.ts';
import { stringifyExact } from '../../../storage/clickhouse/values.ts';
import { dedupeAttributes, REASON_TIME, Rejections, UNKNOWN_SERVICE, type DecodeLimits } from '../../decode/common.ts';
import { isUtf8 as isUtf8Bytes } from 'node:buffer';
import { KNOWN_ANYVALUE, readKeyValueObject, readNestedValue } from '../../decode/otlp-proto.ts';
import { checkEnd, DecodeError, unknownField, WireReader } from '../../decode/wire.ts';
import { ascii, ByteOut, HAND_OVER_BYTES, storeBytesBound } from '../byte-out.ts';
import { STORE_BYTES_PER_REQUEST_BYTE } from '../../../storage/encoders.ts';
import type { EncodedRequest, RequestEncoder } from '../encoder.ts';
import {
  EVENT,
  GROUP,
  grown,
  ID_BAD,
  ID_OK,
  KV,
  GROUP_ATTRS,
  LINK,
  LOG,
  MAX_TIME_HI,
  nextField,
  scanEvent,
  scanKeyValue,
  scanLink,
  scanLog,
  scanSpan,
  eachValueGivenAgain,
  SPAN,
  KeyStamps,
  sameRange,
  STRING_ELEMENTS,
  stringElements,
  walkRequest,
  type Walk,
  keepSpan,
  FieldRanges,
  LOG_ATTRS,
  LOG_BODIES,
  SPAN_ATTRS,
  SPAN_EVENTS,
} from '../wire-scan.ts';

/** Thrown when a request needs the row path (see the header); never escapes this module. */
const FALLBACK = new Error('row path');

/** Requests this worker sent down the row path (tests and the benchmark read it). */
export let fallbacks = 0;

// Key timestamps are clamped to 2106-02-07 (the row encoder's MAX_KEY_NS = 4294967295 s).
const MAX_KEY_NS = 4294967295n * 1_000_000_000n;
const KEY_LO = Number(MAX_KEY_NS & 0xffffffffn);
const KEY_HI = Number(MAX_KEY_NS >> 32n);

/** A RowBinary string of ASCII text: length byte, then the bytes. */
function rbAscii(s: string): Uint8Array {
  const a = ascii(s);
  const out = new Uint8Array(a.length + 1);
  out[0] = a.length;
  out.set(a, 1);
  return out;
}

const KIND_WORDS = SPAN_KINDS.map(rbAscii);
const STATUS_WORDS = STATUS_CODES.map(rbAscii);
const RB_UNSPECIFIED = rbAscii('Unspecified');
const RB_UNSET = rbAscii('Unset');
const RB_TRUE = rbAscii('true');
const RB_FALSE = rbAscii('false');
const RB_UNKNOWN_SERVICE = rbAscii(UNKNOWN_SERVICE);
const SERVICE_NAME = ascii('service.name');
const HEX = ascii('0123456789abcdef');

// TracehouseExtra keys, quoted with their colon.
const X_ST = ascii('"st":"');
const X_K = ascii('"k":');
const X_T = ascii('"t":"');
const X_J = ascii('"j":');
const X_D = ascii('"d":');
const X_EN = ascii('"en":"');
const X_C = ascii('"c":');
const X_EV = ascii('"ev":[');
const X_DE = ascii('"de":');
const X_LN = ascii('"ln":[');
const X_DL = ascii('"dl":');
const X_F = ascii('"f":');
const X_RT = ascii('"rt":"');
const X_RJ = ascii('"rj":');
const X_RD = ascii('"rd":');
const X_RU = ascii('"ru":');
const X_SA = ascii('"sa":');
const X_SD = ascii('"sd":');
const X_SU = ascii('"su":');
const X_STAGS = ascii('"st":"');
const X_SJ = ascii('"sj":');
const X_TS = ascii('"ts":"');
const X_TZ = ascii('"tz":1');
const X_SV = ascii('"sv":');
const X_BT = ascii('"bt":"');
const X_BJ = ascii('"bj":');

// Per-call state: encoding is synchronous and a worker runs one task at a time.
let maxDepth = 100;
const OUT_INITIAL_BYTES = 1 << 20;
/** The rows, in arrival order. */
const out = new ByteOut(OUT_INITIAL_BYTES);
/** The current resource's and scope's rendered pieces (see Group). */
const grp = new ByteOut(1 << 12);
/** The current row's TracehouseExtra fields (without the braces). */
const xb = new ByteOut(1 << 10);
/** Per-event / per-link extras of the current span. */
const nx = new ByteOut(1 << 10);
/** Type tags of the map being written. */
const tg = new ByteOut(256);
/** Where RowBinary is being written: `out`, or `grp` while a resource or scope is rendered. */
let o = out;

// ---------------------------------------------------------------------------------------------
// RowBinary and JSON pieces.

function varUInt(b: ByteOut, n: number): void {
  b.ensure(5);
  const buf = b.buf;
  let p = b.pos;
  while (n >= 0x80) {
    buf[p++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[p++] = n;
  b.pos = p;
}

/** A 64-bit value from its halves, little endian (Int64 / UInt64 below 2^63). */
function le64(b: ByteOut, lo: number, hi: number): void {
  b.ensure(8);
  const buf = b.buf;
  const p = b.pos;
  buf[p] = lo & 0xff;
  buf[p + 1] = (lo >>> 8) & 0xff;
  buf[p + 2] = (lo >>> 16) & 0xff;
  buf[p + 3] = lo >>> 24;
  buf[p + 4] = hi & 0xff;
  buf[p + 5] = (hi >>> 8) & 0xff;
  buf[p + 6] = (hi >>> 16) & 0xff;
  buf[p + 7] = hi >>> 24;
  b.pos = p + 8;
}

/** The wire string src[start, end) as a RowBinary string: UTF-8 as the row path re-encodes it (U+FFFD for invalid bytes). */
function str(b: ByteOut, src: Uint8Array, start: number, end: number): void {
  const n = end - start;
  if (n < 128) {
    const at = b.pos;
    b.byte(n);
    if (b.asciiBytes(src, start, end) || isUtf8(src, start, end)) {
      strInvalid = false;
      return;
    }
    b.pos = at;
  } else if (isUtf8(src, start, end)) {
    varUInt(b, n);
    b.bytes(src, start, end);
    strInvalid = false;
    return;
  }
  jsString(b, Buffer.from(src.buffer, src.byteOffset + start, n).toString('utf8'));
  strInvalid = true;
}

/** Whether the last str() met invalid UTF-8. */
let strInvalid = false;

function isUtf8(src: Uint8Array, start: number, end: number): boolean {
  return isUtf8Bytes(src.subarray(start, end));
}

/** A JS string as a RowBinary string. */
function jsString(b: ByteOut, s: string): void {
  const n = Buffer.byteLength(s, 'utf8');
  varUInt(b, n);
  b.utf8(s);
}

/** ASCII text (< 128 chars) as a RowBinary string. */
function asciiString(b: ByteOut, s: string): void {
  b.byte(s.length);
  b.asciiText(s);
}

/** Starts a TracehouseExtra field in x (comma when it is not the first). */
function xField(x: ByteOut, key: Uint8Array): void {
  if (x.pos > 0) x.byte(0x2c);
  x.bytes(key);
}

function countField(x: ByteOut, key: Uint8Array, n: number): void {
  if (n === 0) return;
  xField(x, key);
  x.uint(n);
}

/** Appends already rendered fields (another field list's text) to x. */
function appendFields(x: ByteOut, src: Uint8Array, start: number, end: number): void {
  if (start === end) return;
  if (x.pos > 0) x.byte(0x2c);
  x.bytes(src, start, end);
}

// ---------------------------------------------------------------------------------------------
// Attribute maps.

/** Key ranges of the entries written, for the duplicate check. */
let keyStarts = new Int32Array(64);
let keyEnds = new Int32Array(64);

/** What the map just written lost: type tags (in tg when typed) and its whole values' JSON, comma-separated, in wl. */
let typed = false;
const wl = new ByteOut(1 << 10);
/** Whole values' JSON (stringifyExact's text) of the map or body being written. */
const wj = new ByteOut(1 << 10);
/** Tag of the last value written, and its whole JSON's range in wj (-1: none). */
let vTag = 0x73;
let vWjStart = -1;
let vWjEnd = -1;
/** Scratch for an array of strings' text. */
const sc = new ByteOut(1 << 10);
/** Where the last string value's RowBinary bytes lie in o (for service.name). */
let vStart = 0;
let vEnd = 0;
/** Where service.name's string value was written in o by the last writeMap; -1 when it has none. */
let svcStart = -1;
let svcEnd = -1;

const T_S = 0x73;
const T_B = 0x62;
const T_I = 0x69;
const T_D = 0x64;
const T_BIG_D = 0x44;
const T_Z = 0x7a;
const T_Y = 0x79;
const T_E = 0x65;
const T_J = 0x6a;

/** Writes the AnyValue in r[pos, end) to o: the last of its oneof fields, every one validated. */
function writeValue(r: WireReader, end: number, depth: number): void {
  const mark = o.pos;
  let tag = T_E;
  let wjStart = -1;
  let wjEnd = -1;
  // The kind of the last list read: a list given again merges into one of its own kind (protobuf),
  // which the row path writes (also, needlessly, when a scalar came between them).
  let list = 0;
  while (r.pos < end) {
    const t = r.tag();
    switch (t) {
      case 10: {
        const e = r.lenEnd();
        o.pos = mark;
        str(o, r.buf, r.pos, e);
        r.pos = e;
        tag = T_S;
        break;
      }
      case 16:
        o.pos = mark;
        o.bytes(r.bool() ? RB_TRUE : RB_FALSE);
        tag = T_B;
        break;
      case 24: {
        r.varint64();
        o.pos = mark + 1;
        o.int64(r.lo, r.hi);
        o.buf[mark] = o.pos - mark - 1;
        tag = T_I;
        break;
      }
      case 33: {
        const d = r.double();
        o.pos = mark;
        if (d - d === 0) {
          o.pos = mark + 1;
          if (!o.shortDecimal(d)) o.asciiText(String(d));
          o.buf[mark] = o.pos - mark - 1;
          tag = Object.is(d, -0) ? T_Z : T_D;
        } else {
          asciiString(o, d !== d ? 'NaN' : d > 0 ? 'Infinity' : '-Infinity');
          tag = T_BIG_D;
        }
        break;
      }
      case 42:
      case 50: {
        if (list === t) throw FALLBACK;
        list = t;
        const e = r.lenEnd();
        if (depth >= maxDepth) throw FALLBACK;
        o.pos = mark;
        wjStart = wj.pos;
        if (t !== 42 || !stringArray(r, r.pos, e)) {
          const v = readNestedValue(r, e, depth + 1, maxDepth, t);
          if (v === null) throw FALLBACK;
          jsString(o, anyValueToString(v));
          wj.utf8(stringifyExact(v, true));
        }
        wjEnd = wj.pos;
        tag = T_J;
        break;
      }
      case 58: {
        const e = r.lenEnd();
        const s = r.nb.base64Slice(r.pos, e);
        r.pos = e;
        o.pos = mark;
        varUInt(o, s.length);
        o.asciiText(s);
        tag = T_Y;
        break;
      }
      default:
        unknownField(r, t, KNOWN_ANYVALUE, 'AnyValue');
    }
  }
  checkEnd(r, end, 'AnyValue');
  if (tag === T_E) {
    o.pos = mark;
    o.byte(0);
  }
  vTag = tag;
  vWjStart = tag === T_J ? wjStart : -1;
  vWjEnd = wjEnd;
  vStart = mark;
  vEnd = o.pos;
}

const T_ARRAY_WHOLE = ascii('{"arrayValue":{"values":[');
const T_STRING_WHOLE = ascii('{"stringValue":');
const T_ARRAY_WHOLE_END = ascii(']}}');

/**
 * An ArrayValue r[start, end) whose elements are each one string_value (the common array
 * attribute) written without objects: its text (anyValueToString's JSON array) to o, its whole
 * form (stringifyExact's) to wj. False, with nothing written, for any other shape.
 */
function stringArray(r: WireReader, start: number, end: number): boolean {
  if (!stringElements(r, start, end)) return false;
  const { starts, ends, n } = STRING_ELEMENTS;
  const buf = r.buf;
  sc.pos = 0;
  sc.byte(0x5b);
  wj.bytes(T_ARRAY_WHOLE);
  for (let i = 0; i < n; i++) {
    if (i > 0) {
      sc.byte(0x2c);
      wj.byte(0x2c);
    }
    const at = sc.pos;
    sc.jsonStringUtf8(buf, starts[i]!, ends[i]!);
    wj.bytes(T_STRING_WHOLE);
    wj.bytes(sc.buf, at, sc.pos);
    wj.byte(0x7d);
  }
  sc.byte(0x5d);
  wj.bytes(T_ARRAY_WHOLE_END);
  varUInt(o, sc.pos);
  o.bytes(sc.buf, 0, sc.pos);
  return true;
}

/** Reads the KeyValues at `places` as objects (a span's scope attributes), deduplicated as the row path does. */
function keyValueObjects(r: WireReader, places: FieldRanges): KeyValue[] {
  const list: KeyValue[] = [];
  for (let i = 0; i < places.n; i++) {
    r.pos = places.starts[i]!;
    const kv = readKeyValueObject(r, places.ends[i]!, maxDepth);
    if (kv === null) throw FALLBACK;
    list.push(kv);
  }
  return dedupeAttributes(list);
}

/** Per entry of the map being written: its bytes and value bytes in o, tag, whole value, whether it is service.name. */
let entStart = new Int32Array(64);
let entEnd = new Int32Array(64);
let entValStart = new Int32Array(64);
let entValEnd = new Int32Array(64);
let entTag = new Uint8Array(64);
let entSvc = new Uint8Array(64);
let entWjStart = new Int32Array(64);
let entWjEnd = new Int32Array(64);
/** For deduplication: each entry's first entry with the same key, and each first entry's last one. */
let first = new Int32Array(64);
let last = new Int32Array(64);
/** A copy of the map's bytes while it is rewritten without repeated keys. */
const dd = new ByteOut(1 << 12);

function growEntries(n: number): void {
  if (n < entStart.length) return;
  const size = entStart.length * 2;
  const i32 = (a: Int32Array<ArrayBuffer>) => {
    const b = new Int32Array(size);
    b.set(a);
    return b;
  };
  const u8 = (a: Uint8Array<ArrayBuffer>) => {
    const b = new Uint8Array(size);
    b.set(a);
    return b;
  };
  keyStarts = i32(keyStarts);
  keyEnds = i32(keyEnds);
  entStart = i32(entStart);
  entEnd = i32(entEnd);
  entValStart = i32(entValStart);
  entValEnd = i32(entValEnd);
  entWjStart = i32(entWjStart);
  entWjEnd = i32(entWjEnd);
  first = i32(first);
  last = i32(last);
  entTag = u8(entTag);
  entSvc = u8(entSvc);
}

/** Writes the KeyValues at `places` as a Map(String, String) to o; sets typed / tg / whole and svcStart. */
function writeMap(r: WireReader, places: FieldRanges): void {
  const n = places.n;
  const mapStart = o.pos;
  varUInt(o, n);
  wj.pos = 0;
  const buf = r.buf;
  let invalidKey = false;
  for (let i = 0; i < n; i++) {
    const start = places.starts[i]!;
    const end = places.ends[i]!;
    r.pos = start;
    scanKeyValue(r, end);
    const { keyStart: ks, keyEnd: ke, values, valueStart: vs, valueEnd: ve } = KV;
    growEntries(i);
    keyStarts[i] = ks;
    keyEnds[i] = ke;
    entStart[i] = o.pos;
    str(o, buf, ks, ke);
    if (strInvalid) invalidKey = true;
    if (values === 0) {
      vStart = o.pos;
      o.byte(0);
      vEnd = o.pos;
      vTag = T_E;
      vWjStart = -1;
    } else if (values === 1) {
      r.pos = vs;
      writeValue(r, ve, 0);
    } else {
      // A repeated value field: each is read (and validated) and merged into the one before it.
      const mark = o.pos;
      eachValueGivenAgain(r, start, end, undefined, (e) => {
        o.pos = mark;
        writeValue(r, e, 0);
      }, FALLBACK);
    }
    r.pos = end;
    entEnd[i] = o.pos;
    entValStart[i] = vStart;
    entValEnd[i] = vEnd;
    entTag[i] = vTag;
    entWjStart[i] = vWjStart;
    entWjEnd[i] = vWjEnd;
    entSvc[i] = vTag === T_S && ke - ks === SERVICE_NAME.length && sameBytes(buf, ks, SERVICE_NAME) ? 1 : 0;
  }
  let m = n;
  if (n > 1 && hasDuplicateKey(buf, n, invalidKey)) m = dedupe(mapStart, n);
  // What the map lost (type tags, whole values) and where service.name's string lies, over the entries kept.
  typed = false;
  wl.pos = 0;
  svcStart = -1;
  tg.pos = 0;
  for (let k = 0; k < m; k++) {
    const i = m === n ? k : last[kept[k]!]!;
    const t = entTag[i]!;
    tg.byte(t);
    if (t !== T_S) typed = true;
    if (entWjStart[i]! >= 0) {
      if (wl.pos > 0) wl.byte(0x2c);
      wl.bytes(wj.buf, entWjStart[i]!, entWjEnd[i]!);
    }
    if (entSvc[i] === 1) {
      svcStart = entValStart[i]!;
      svcEnd = entValEnd[i]!;
    }
  }
}

/** The entries that begin a key, in order (set by dedupe). */
let kept = new Int32Array(64);

/**
 * Rewrites the map at mapStart the way dedupeAttributes orders it: the last entry of each key at
 * the place of its first. Entries' recorded offsets are moved to their new places. Returns the
 * count of entries kept.
 */
function dedupe(mapStart: number, n: number): number {
  if (kept.length < n) kept = new Int32Array(first.length);
  let m = 0;
  for (let i = 0; i < n; i++) {
    const f = first[i]!;
    if (f === i) kept[m++] = i;
    last[f] = i;
  }
  dd.pos = 0;
  dd.bytes(o.buf, mapStart, o.pos);
  o.pos = mapStart;
  varUInt(o, m);
  for (let k = 0; k < m; k++) {
    const i = last[kept[k]!]!;
    const at = o.pos;
    o.bytes(dd.buf, entStart[i]! - mapStart, entEnd[i]! - mapStart);
    const shift = at - entStart[i]!;
    entValStart[i] = entValStart[i]! + shift;
    entValEnd[i] = entValEnd[i]! + shift;
    entStart[i] = at;
    entEnd[i] = o.pos;
  }
  return m;
}

function sameBytes(buf: Uint8Array, at: number, want: Uint8Array): boolean {
  for (let i = 0; i < want.length; i++) if (buf[at + i] !== want[i]) return false;
  return true;
}

/** The keys of the map being checked. */
const keyStamps = new KeyStamps();

/**
 * Fills first[] (each entry's first entry with an equal key) and tells whether any key repeats.
 * Keys compare as bytes, which for valid UTF-8 is comparing the decoded text the row path
 * compares; a list with an invalid key compares decoded text (two invalid sequences can decode
 * to the same U+FFFD text).
 */
function hasDuplicateKey(buf: Uint8Array, n: number, invalidKey: boolean): boolean {
  let dup = false;
  if (n > 32 || invalidKey) {
    const seen = new Map<string, number>();
    const nb = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    for (let i = 0; i < n; i++) {
      const k = nb.toString(invalidKey ? 'utf8' : 'latin1', keyStarts[i], keyEnds[i]);
      const f = seen.get(k);
      if (f === undefined) {
        seen.set(k, i);
        first[i] = i;
      } else {
        first[i] = f;
        dup = true;
      }
    }
    return dup;
  }
  keyStamps.begin();
  for (let i = 0; i < n; i++) {
    first[i] = i;
    const s = keyStarts[i]!;
    const len = keyEnds[i]! - s;
    if (!keyStamps.seen(buf, s, s + len)) continue;
    for (let j = 0; j < i; j++) {
      const os = keyStarts[j]!;
      if (keyEnds[j]! - os === len && sameRange(buf, os, s, len)) {
        first[i] = first[j]!;
        dup = true;
        break;
      }
    }
  }
  return dup;
}

/** The type information of the map just written, as extra fields under the given keys. */
function mapFields(x: ByteOut, tagsKey: Uint8Array, wholeKey: Uint8Array): void {
  if (!typed) return;
  xField(x, tagsKey);
  x.bytes(tg.buf, 0, tg.pos);
  x.byte(0x22);
  if (wl.pos > 0) {
    xField(x, wholeKey);
    x.byte(0x5b);
    x.bytes(wl.buf, 0, wl.pos);
    x.byte(0x5d);
  }
}

// ---------------------------------------------------------------------------------------------
// Resource and scope: rendered into `grp` once per group.

const G = {
  resMapStart: 0,
  resMapEnd: 0,
  /** The resource's extra fields for spans (with ru) and for logs (without). */
  resXEnd: 0,
  svcStart: 0,
  svcEnd: 0,
  resSchemaStart: 0,
  resSchemaEnd: 0,
  /** Where the scope's part of grp begins. */
  scopeBase: 0,
  scSchemaStart: 0,
  scNameStart: 0,
  scVersionEnd: 0,
  scMapEnd: 0,
  scXEnd: 0,
  /** FNV-1a of the service name (spreads logs without a trace id over shards). */
  svcHash: 0,
};

/** Renders the resource just scanned (GROUP and its attribute list) into grp. */
function renderResource(r: WireReader, logs: boolean): void {
  o = grp;
  grp.pos = 0;
  const { dropped, schemaStart, schemaEnd } = GROUP;
  G.resMapStart = 0;
  writeMap(r, GROUP_ATTRS);
  G.resMapEnd = grp.pos;
  const svc0 = svcStart;
  const svc1 = svcEnd;
  // The resource's extra fields are written to xb, then kept in grp.
  xb.pos = 0;
  mapFields(xb, X_RT, X_RJ);
  countField(xb, X_RD, dropped);
  const logX = xb.pos;
  if (schemaEnd > schemaStart) {
    xField(xb, X_RU);
    xb.jsonStringUtf8(r.buf, schemaStart, schemaEnd);
  }
  grp.bytes(xb.buf, 0, logs ? logX : xb.pos);
  G.resXEnd = grp.pos;
  G.svcStart = grp.pos;
  if (svc0 >= 0) grp.repeat(svc0, svc1);
  else grp.bytes(RB_UNKNOWN_SERVICE);
  G.svcEnd = grp.pos;
  G.resSchemaStart = grp.pos;
  str(grp, r.buf, schemaStart, schemaEnd);
  G.resSchemaEnd = grp.pos;
  G.scopeBase = grp.pos;
  if (logs && shards > 1) {
    const svc = grp.buf.subarray(G.svcStart, G.svcEnd);
    let p = 0;
    while (svc[p]! & 0x80) p++;
    G.svcHash = hashTraceId(Buffer.from(svc.buffer, svc.byteOffset + p + 1, svc.length - p - 1).toString('utf8'));
  }
  o = out;
}

/** Renders the scope just scanned into grp after the resource. */
function renderScope(r: WireReader, logs: boolean): void {
  o = grp;
  grp.pos = G.scopeBase;
  const { dropped, schemaStart, schemaEnd, nameStart, nameEnd, versionStart, versionEnd } = GROUP;
  G.scSchemaStart = grp.pos;
  str(grp, r.buf, schemaStart, schemaEnd);
  G.scNameStart = grp.pos;
  str(grp, r.buf, nameStart, nameEnd);
  str(grp, r.buf, versionStart, versionEnd);
  G.scVersionEnd = grp.pos;
  xb.pos = 0;
  if (logs) {
    writeMap(r, GROUP_ATTRS);
    mapFields(xb, X_STAGS, X_SJ);
  } else if (GROUP_ATTRS.n > 0) {
    xField(xb, X_SA);
    xb.utf8(stringifyExact(keyValueObjects(r, GROUP_ATTRS), true));
  }
  G.scMapEnd = grp.pos;
  countField(xb, X_SD, dropped);
  if (!logs && schemaEnd > schemaStart) {
    xField(xb, X_SU);
    xb.jsonStringUtf8(r.buf, schemaStart, schemaEnd);
  }
  grp.bytes(xb.buf, 0, xb.pos);
  G.scXEnd = grp.pos;
  o = out;
}

// ---------------------------------------------------------------------------------------------
// Rows and shards.

/** Each accepted row's end offset in `out` and shard. */
let rowEnds = new Int32Array(1024);
let rowShards = new Int32Array(1024);
let accepted = 0;
let shards = 1;

function pushRow(end: number, shard: number): void {
  rowEnds = grown(rowEnds, accepted);
  rowShards = grown(rowShards, accepted);
  rowEnds[accepted] = end;
  rowShards[accepted] = shard;
  accepted++;
}

/** FNV-1a over the hex text of the 16-byte trace id at buf[start] (hashTraceId without the string). */
function traceHash(buf: Uint8Array, start: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < start + 16; i++) {
    const b = buf[i]!;
    h ^= HEX[b >>> 4]!;
    h = Math.imul(h, 0x01000193);
    h ^= HEX[b & 15]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A row's end: its TracehouseExtra column from xb. */
function writeExtra(): void {
  if (xb.pos === 0) {
    out.byte(0);
    return;
  }
  varUInt(out, xb.pos + 2);
  out.byte(0x7b);
  out.bytes(xb.buf, 0, xb.pos);
  out.byte(0x7d);
}

/** A 16- or 8-byte id as a hex RowBinary string, '' unless it is a good id. */
function idString(buf: Uint8Array, start: number, state: number, size: number): void {
  if (state !== ID_OK) {
    out.byte(0);
    return;
  }
  out.byte(size * 2);
  out.hex(buf, start, size);
}

/** A time text "…" in the extra. */
function timeField(key: Uint8Array, lo: number, hi: number): void {
  xField(xb, key);
  xb.uint64(lo, hi);
  xb.byte(0x22);
}

function keyTime(lo: number, hi: number, key: Uint8Array): void {
  if (hi > KEY_HI || (hi === KEY_HI && lo > KEY_LO)) {
    le64(out, KEY_LO, KEY_HI);
    timeField(key, lo, hi);
  } else le64(out, lo, hi);
}

// Scratch for a span's events and links (read once, written column by column).
let evStart = new Int32Array(16);
let evEnd = new Int32Array(16);
let evLo = new Int32Array(16);
let evHi = new Int32Array(16);
let evNameStart = new Int32Array(16);
let evNameEnd = new Int32Array(16);
let evDropped = new Int32Array(16);
let lnTrace = new Int32Array(16);
let lnTraceState = new Int32Array(16);
let lnSpan = new Int32Array(16);
let lnSpanState = new Int32Array(16);
let lnTsStart = new Int32Array(16);
let lnTsEnd = new Int32Array(16);
let lnFlags = new Int32Array(16);

/** Makes room for event / link n in every scratch array. */
function ensureScratch(n: number): void {
  if (n < evStart.length && n < lnTrace.length) return;
  evStart = grown(evStart, n);
  evEnd = grown(evEnd, n);
  evLo = grown(evLo, n);
  evHi = grown(evHi, n);
  evNameStart = grown(evNameStart, n);
  evNameEnd = grown(evNameEnd, n);
  evDropped = grown(evDropped, n);
  lnTrace = grown(lnTrace, n);
  lnTraceState = grown(lnTraceState, n);
  lnSpan = grown(lnSpan, n);
  lnSpanState = grown(lnSpanState, n);
  lnTsStart = grown(lnTsStart, n);
  lnTsEnd = grown(lnTsEnd, n);
  lnFlags = grown(lnFlags, n);
}

/** Writes the Events.* columns of the span just scanned; false when an event time is not storable. */
function events(r: WireReader, has: boolean): boolean {
  if (!has) {
    out.byte(0);
    out.byte(0);
    out.byte(0);
    return true;
  }
  // Where each event lies stays in SPAN_EVENTS; the scratch arrays take what its scan read.
  const n = SPAN_EVENTS.n;
  let storable = true;
  for (let i = 0; i < n; i++) {
    ensureScratch(i);
    r.pos = SPAN_EVENTS.starts[i]!;
    scanEvent(r, SPAN_EVENTS.ends[i]!);
    if (EVENT.hi >= MAX_TIME_HI) storable = false;
    evLo[i] = EVENT.lo;
    evHi[i] = EVENT.hi;
    evNameStart[i] = EVENT.nameStart;
    evNameEnd[i] = EVENT.nameEnd;
    evDropped[i] = EVENT.dropped;
  }
  varUInt(out, n);
  for (let i = 0; i < n; i++) le64(out, evLo[i]!, evHi[i]!);
  varUInt(out, n);
  for (let i = 0; i < n; i++) str(out, r.buf, evNameStart[i]!, evNameEnd[i]!);
  varUInt(out, n);
  nx.pos = 0;
  let any = false;
  for (let i = 0; i < n; i++) {
    writeMap(r, nestedAttrs.collect(r, SPAN_EVENTS.starts[i]!, SPAN_EVENTS.ends[i]!, 26));
    if (nested(i, evDropped[i]! >>> 0, 0)) any = true;
  }
  if (any) {
    xField(xb, X_EV);
    xb.bytes(nx.buf, 0, nx.pos);
    xb.byte(0x5d);
  }
  return storable;
}

/** Appends event / link i's extra to nx: {t, j, d, f} or 0 when nothing differs; true when something did. */
function nested(i: number, dropped: number, flags: number): boolean {
  const x = nxFields;
  x.pos = 0;
  mapFields(x, X_T, X_J);
  countField(x, X_D, dropped);
  countField(x, X_F, flags);
  if (i > 0) nx.byte(0x2c);
  if (x.pos === 0) {
    nx.byte(0x30);
    return false;
  }
  nx.byte(0x7b);
  nx.bytes(x.buf, 0, x.pos);
  nx.byte(0x7d);
  return true;
}
const nxFields = new ByteOut(256);

/** Writes the Links.* columns of span r[start, end); false when a link has a bad id. */
function links(r: WireReader, start: number, end: number, has: boolean): boolean {
  if (!has) {
    out.byte(0);
    out.byte(0);
    out.byte(0);
    out.byte(0);
    return true;
  }
  const buf = r.buf;
  let n = 0;
  let good = true;
  r.pos = start;
  for (let e = nextField(r, end, 106); e >= 0; e = nextField(r, end, 106)) {
    ensureScratch(n);
    evStart[n] = r.pos;
    evEnd[n] = e;
    scanLink(r, e);
    if (LINK.traceState === ID_BAD || LINK.spanState === ID_BAD) good = false;
    lnTrace[n] = LINK.traceStart;
    lnTraceState[n] = LINK.traceState;
    lnSpan[n] = LINK.spanStart;
    lnSpanState[n] = LINK.spanState;
    lnTsStart[n] = LINK.tsStart;
    lnTsEnd[n] = LINK.tsEnd;
    lnFlags[n] = LINK.flags;
    evDropped[n] = LINK.dropped;
    n++;
  }
  // A span with a bad link is rejected: its row is discarded, so its columns need not be right.
  varUInt(out, n);
  for (let i = 0; i < n; i++) idString(buf, lnTrace[i]!, lnTraceState[i]!, 16);
  varUInt(out, n);
  for (let i = 0; i < n; i++) idString(buf, lnSpan[i]!, lnSpanState[i]!, 8);
  varUInt(out, n);
  for (let i = 0; i < n; i++) str(out, buf, lnTsStart[i]!, lnTsEnd[i]!);
  varUInt(out, n);
  nx.pos = 0;
  let any = false;
  for (let i = 0; i < n; i++) {
    writeMap(r, nestedAttrs.collect(r, evStart[i]!, evEnd[i]!, 34));
    if (nested(i, evDropped[i]! >>> 0, lnFlags[i]! >>> 0)) any = true;
  }
  if (any) {
    xField(xb, X_LN);
    xb.bytes(nx.buf, 0, nx.pos);
    xb.byte(0x5d);
  }
  return good;
}

/** The resource's attribute map column, and its extra fields. */
function resourceMap(): void {
  out.bytes(grp.buf, G.resMapStart, G.resMapEnd);
  appendFields(xb, grp.buf, G.resMapEnd, G.resXEnd);
}

/** The attribute places of an event or link being written (attribute lists do not nest). */
const nestedAttrs = new FieldRanges();

/** The attribute map column of an item whose attributes are at `places`, and its extra fields. */
function itemAttributes(r: WireReader, places: FieldRanges, dropped: number): void {
  writeMap(r, places);
  mapFields(xb, X_T, X_J);
  countField(xb, X_D, dropped);
}

/** Writes the row of span r[start, end); false (row to be discarded) when the span is rejected. */
function span(r: WireReader, start: number, end: number, rej: Rejections): boolean {
  const buf = r.buf;
  scanSpan(r, start, end);
  const { traceStart, traceState, spanStart, spanState, parentStart, parentState, tsStart, tsEnd, nameStart, nameEnd, kind, startLo, startHi, endLo, endHi, droppedAttrs, droppedEvents, droppedLinks, statusCode, smStart, smEnd, flags, hasEvents, hasLinks } = SPAN;

  xb.pos = 0;
  keyTime(startLo, startHi, X_ST);
  idString(buf, traceStart, traceState, 16);
  idString(buf, spanStart, spanState, 8);
  idString(buf, parentStart, parentState, 8);
  str(out, buf, tsStart, tsEnd);
  str(out, buf, nameStart, nameEnd);
  if (kind >= 0 && kind < KIND_WORDS.length) out.bytes(KIND_WORDS[kind]!);
  else {
    out.bytes(RB_UNSPECIFIED);
    xField(xb, X_K);
    xb.int(kind);
  }
  const g = grp.buf;
  out.bytes(g, G.svcStart, G.svcEnd);
  resourceMap();
  out.bytes(g, G.scNameStart, G.scVersionEnd);
  appendFields(xb, g, G.scMapEnd, G.scXEnd);
  itemAttributes(r, SPAN_ATTRS, droppedAttrs);

  if (endHi > startHi || (endHi === startHi && endLo > startLo)) {
    const lo = endLo - startLo;
    le64(out, lo >>> 0, endHi - startHi - (lo < 0 ? 1 : 0));
  } else {
    le64(out, 0, 0);
    if (endHi !== startHi || endLo !== startLo) timeField(X_EN, endLo, endHi);
  }
  if (statusCode >= 0 && statusCode < STATUS_WORDS.length) out.bytes(STATUS_WORDS[statusCode]!);
  else {
    out.bytes(RB_UNSET);
    xField(xb, X_C);
    xb.int(statusCode);
  }
  str(out, buf, smStart, smEnd);

  const eventTimesStorable = events(r, hasEvents);
  countField(xb, X_DE, droppedEvents);
  const linksGood = links(r, start, end, hasLinks);
  countField(xb, X_DL, droppedLinks);
  countField(xb, X_F, flags);
  writeExtra();

  // A value nested too deep took the row path before this point.
  if (!keepSpan(rej, linksGood, false, eventTimesStorable)) return false;
  itemShard = shards <= 1 ? 0 : traceHash(buf, traceStart) % shards;
  return true;
}

/** The shard of the item just accepted. */
let itemShard = 0;

function reject(rej: Rejections, reason: number): false {
  rej.add(reason);
  return false;
}

/** Writes the row of log record r[start, end); false (row to be discarded) when it is rejected. */
function logRecord(r: WireReader, start: number, end: number, rej: Rejections): boolean {
  const buf = r.buf;
  scanLog(r, start, end);
  const { timeLo, timeHi, obsLo, obsHi, traceStart, traceState, spanStart, spanState, flags, severity, stStart, stEnd, enStart, enEnd, dropped } = LOG;

  xb.pos = 0;
  // Like the exporter: a record without a timestamp is filed under its observed time.
  const untimed = timeLo === 0 && timeHi === 0;
  if (untimed) keyTime(obsLo, obsHi, X_TS);
  else keyTime(timeLo, timeHi, X_TS);
  if (untimed && (obsLo !== 0 || obsHi !== 0)) xField(xb, X_TZ);
  // Empty, all-zero or malformed ids mean "not linked": the record is kept.
  idString(buf, traceStart, traceState, 16);
  idString(buf, spanStart, spanState, 8);
  out.byte(flags & 0xff);
  if (flags > 0xff) {
    xField(xb, X_F);
    xb.uint(flags);
  }
  str(out, buf, stStart, stEnd);
  out.byte(severity & 0xff);
  if (severity > 0xff || severity < 0) {
    xField(xb, X_SV);
    xb.int(severity);
  }
  const g = grp.buf;
  out.bytes(g, G.svcStart, G.svcEnd);

  const mark = out.pos;
  let body = false;
  wj.pos = 0;
  if (LOG_BODIES.n === 1) {
    r.pos = LOG_BODIES.starts[0]!;
    writeValue(r, LOG_BODIES.ends[0]!, 0);
    body = true;
  } else if (LOG_BODIES.n > 1) {
    // The body given again: its fields merged (the first is always written).
    eachValueGivenAgain(r, 0, 0, LOG_BODIES, (e) => {
      out.pos = mark;
      writeValue(r, e, 0);
    }, FALLBACK);
    body = true;
  }
  if (!body) {
    out.byte(0);
    vTag = T_E;
    vWjStart = -1;
  }
  if (vTag !== T_S) {
    xField(xb, X_BT);
    xb.byte(vTag);
    xb.byte(0x22);
    if (vWjStart >= 0) {
      xField(xb, X_BJ);
      xb.bytes(wj.buf, vWjStart, vWjEnd);
    }
  }

  out.bytes(g, G.resSchemaStart, G.resSchemaEnd);
  resourceMap();
  out.bytes(g, G.scSchemaStart, G.scMapEnd);
  appendFields(xb, g, G.scMapEnd, G.scXEnd);
  itemAttributes(r, LOG_ATTRS, dropped);
  str(out, buf, enStart, enEnd);
  le64(out, obsLo, obsHi);
  writeExtra();

  if (timeHi >= MAX_TIME_HI || obsHi >= MAX_TIME_HI) return reject(rej, REASON_TIME);
  if (shards <= 1) itemShard = 0;
  else if (traceState === ID_OK) itemShard = traceHash(buf, traceStart) % shards;
  // Unlinked records: spread by service and time, as the row encoder does.
  else itemShard = ((G.svcHash ^ timeLo) >>> 0) % shards;
  return true;
}

// ---------------------------------------------------------------------------------------------

/** The request walk for items written by `item` (false: rejected, its row discarded). */
function walkOf(item: (r: WireReader, start: number, end: number, rej: Rejections) => boolean, logs: boolean, requestMessage: string, resourceMessage: string, scopeMessage: string): Walk {
  return {
    requestMessage,
    resourceMessage,
    scopeMessage,
    resource: (r) => renderResource(r, logs),
    scope: (r) => renderScope(r, logs),
    item(r, start, end, rej) {
      const rowStart = out.pos;
      if (item(r, start, end, rej)) pushRow(out.pos, itemShard);
      else out.pos = rowStart;
    },
  };
}

const SPANS = walkOf(span, false, 'ExportTraceServiceRequest', 'ResourceSpans', 'ScopeSpans');
const LOGS = walkOf(logRecord, true, 'ExportLogsServiceRequest', 'ResourceLogs', 'ScopeLogs');

/**
 * The accepted rows as one chunk per non-empty shard, in shard order (what the row encoder
 * returns). Each shard's rows are copied out of the output buffer, except a shard with
 * HAND_OVER_BYTES or more: its rows are moved down over the others' once those are copied, and the
 * buffer goes with them (take), so a large request's output is not held twice.
 */
function chunks(): EncodedRequest['chunks'] {
  if (accepted === 0) return [];
  if (shards <= 1) return [{ partition: 0, rows: accepted, data: out.take() }];
  const rows = new Int32Array(shards);
  const bytes = new Float64Array(shards);
  let prev = 0;
  for (let i = 0; i < accepted; i++) {
    const s = rowShards[i]!;
    rows[s]!++;
    bytes[s]! += rowEnds[i]! - prev;
    prev = rowEnds[i]!;
  }
  let largest = 0;
  for (let s = 1; s < shards; s++) if (bytes[s]! > bytes[largest]!) largest = s;
  const kept = bytes[largest]! >= HAND_OVER_BYTES ? largest : -1;
  const result: EncodedRequest['chunks'] = [];
  let keptAt = 0;
  for (let s = 0; s < shards; s++) {
    if (rows[s] === 0) continue;
    if (s === kept) {
      keptAt = result.length;
      continue;
    }
    const copy = Buffer.allocUnsafeSlow(bytes[s]!);
    const data = new Uint8Array(copy.buffer, 0, copy.length);
    gatherShard(s, data);
    result.push({ partition: s, rows: rows[s]!, data });
  }
  if (kept < 0) return result;
  out.pos = gatherShard(kept, out.buf);
  result.splice(keptAt, 0, { partition: kept, rows: rows[kept]!, data: out.take() });
  return result;
}

/**
 * Writes shard s's rows, in order, from the start of dest; returns their bytes. dest may be the
 * output buffer itself: each row then moves to where the rows before it end, never past where it
 * starts.
 */
function gatherShard(s: number, dest: Uint8Array): number {
  const inPlace = dest === out.buf;
  let p = 0;
  let from = 0;
  for (let i = 0; i < accepted; i++) {
    const to = rowEnds[i]!;
    if (rowShards[i] === s) {
      if (!inPlace) dest.set(out.buf.subarray(from, to), p);
      else if (p !== from) dest.copyWithin(p, from, to);
      p += to - from;
    }
    from = to;
  }
  return p;
}

function transcode(bytes: Uint8Array, limits: DecodeLimits, shardCount: number, walk: Walk, singular: string, plural: string): EncodedRequest {
  maxDepth = limits.maxNestingDepth;
  shards = shardCount;
  const rej = new Rejections(limits.maxNestingDepth);
  accepted = 0;
  out.start(bytes.byteLength * STORE_BYTES_PER_REQUEST_BYTE.clickhouse, storeBytesBound(bytes.byteLength, limits.maxStoreBytes));
  o = out;
  walkRequest(new WireReader(bytes), walk, rej);
  const result = { accepted, rejected: rej.total, errorMessage: rej.message(singular, plural), chunks: chunks() };
  out.shrink();
  return result;
}

/** The scratch outputs a request writes values into: one huge value grows them as it grows `out`. */
const SCRATCH = [grp, xb, nx, tg, wl, wj, sc, dd, nxFields];

/** OTLP protobuf requests as ClickHouse RowBinary chunks, the bytes and results the row path (`rowPath`) gives; rare shapes go through rowPath itself. */
export function transcodeProto(signal: 'traces' | 'logs', bytes: Uint8Array, limits: DecodeLimits, shardCount: number, rowPath: RequestEncoder): EncodedRequest {
  try {
    return signal === 'traces' ? transcode(bytes, limits, shardCount, SPANS, 'span', 'spans') : transcode(bytes, limits, shardCount, LOGS, 'log record', 'log records');
  } catch (err) {
    o = out;
    if (err !== FALLBACK && !(err instanceof DecodeError)) throw err;
    // The row path gives the exact results, or throws the row decoder's own error for a malformed request.
    fallbacks++;
    return rowPath.encode(signal, 'protobuf', bytes);
  } finally {
    // As `out`: a buffer one huge request grew is not held by the worker for good (each use starts at 0).
    for (const b of SCRATCH) b.shrink();
  }
}
