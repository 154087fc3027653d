// OTLP protobuf → PostgreSQL binary COPY tuples (the rows src/storage/postgres/encoder.ts writes,
// in the columns of columns.ts) in one pass over the request, with no object per span, attribute
// or value: ids, times and strings are copied from the wire bytes, the json columns' text is
// written straight into the output (JSON.stringify's text of the row's values), resource and
// scope are rendered once per group, and each span's attribute search tokens are hashed from the
// bytes where they lie.
//
// Protobuf lets fields come in any order and repeat, so each message is read in short passes
// (its scalars first, then the repeated parts in the order the row lists them). Objects are
// still made where the row encoder's output depends on JS values: text that needs the row
// encoder's escaping (U+0000, U+FFFF, invalid UTF-8) and the search token of a kvlist or array
// attribute value (but an array of strings, the common one). A span whose attribute list repeats
// a key (the token order follows the deduplicated list) sends the whole request down the row
// path, so its results are exactly the row path's; `fallbacks` counts how often that happens.
// A request refused whole is decoded again by the row decoder, so the error is the one it gives.
import { isUtf8 } from 'node:buffer';
import { anyValueToString } from '../../../model/rows.ts';
import { escapeText } from '../../../storage/postgres/escape.ts';
import { tokenAscii, tokenEnd, tokenSeparator, tokenStart, tokenString } from '../../../storage/postgres/tokens.ts';
import { LOG_COLUMNS, SPAN_COLUMNS } from '../../../storage/postgres/columns.ts';
import { KNOWN_ANYVALUE, KNOWN_LIST, readNestedValue } from '../../decode/otlp-proto.ts';
import { REASON_TIME, REASON_TOO_DEEP, Rejections, UNKNOWN_SERVICE, type DecodeLimits } from '../../decode/common.ts';
import { checkEnd, DecodeError, unknownField, WireReader } from '../../decode/wire.ts';
import { EVENT, GROUP, ID_BAD, ID_OK, GROUP_ATTRS, KV, LINK, LOG, MAX_TIME_HI, nextField, scanEvent, scanKeyValue, scanLink, scanLog, scanSpan, eachValueGivenAgain, SPAN, SPAN_ATTRS, SPAN_EVENTS, LOG_ATTRS, LOG_BODIES, FieldRanges, KeyStamps, sameRange, STRING_ELEMENTS, stringElements, walkRequest, type Walk, keepSpan } from '../wire-scan.ts';
import { ascii, ByteOut, piece, storeBytesBound } from '../byte-out.ts';
import { STORE_BYTES_PER_REQUEST_BYTE } from '../../../storage/encoders.ts';
import type { EncodedRequest, RequestEncoder } from '../encoder.ts';

/** Thrown when a request needs the row path (see the header); never escapes this module. */
const FALLBACK = new Error('row path');

/** Requests this worker sent down the row path (tests and the benchmark read it). */
export let fallbacks = 0;

// The fixed JSON text of the json columns.
const T_STRING = piece('{"stringValue":');
const T_TRUE = piece('{"boolValue":true}');
const T_FALSE = piece('{"boolValue":false}');
const T_INT = piece('{"intValue":"');
const T_DOUBLE = piece('{"doubleValue":');
const T_BYTES = piece('{"bytesValue":"');
const T_ARRAY = piece('{"arrayValue":{"values":[');
const T_KVLIST = piece('{"kvlistValue":{"values":[');
const T_LIST_END = piece(']}}');
const T_QEND = piece('"}');
const T_EMPTY = piece('{}');
const T_KEY = piece('{"key":');
const T_VALUE = piece(',"value":');
const T_RES_START = piece('{"attributes":[');
const T_DROPPED_ATTRS = piece('],"droppedAttributesCount":');
const T_SCHEMA = piece(',"schemaUrl":');
const T_SCOPE_START = piece('{"name":');
const T_VERSION = piece(',"version":');
const T_ATTRS = piece(',"attributes":[');
const T_EVENT_TIME = piece('{"timeUnixNano":"');
const T_EVENT_NAME = piece('","name":');
const T_LINK_TRACE = piece('{"traceId":"');
const T_SPAN_ID = piece('","spanId":"');
const T_TRACE_STATE = piece('","traceState":');
const T_FLAGS = piece(',"flags":');
const T_UNKNOWN_SERVICE = ascii(UNKNOWN_SERVICE);
const T_TRUE_TEXT = 'true';
const T_FALSE_TEXT = 'false';
const SERVICE_NAME = ascii('service.name');

// Per-call state: encoding is synchronous and a worker runs one task at a time.
let maxDepth = 100;
/** Set when a value nested deeper than maxDepth was met; each item clears and checks it. */
let tooDeep = false;
const OUT_INITIAL_BYTES = 1 << 20;
/** The tuples. */
const out = new ByteOut(OUT_INITIAL_BYTES);
/** The current group's resource JSON and scope JSON, in that order. */
const group = new ByteOut(1 << 12);
/** The current resource's service name as a text column (length and bytes). */
const service = new ByteOut(256);
/** Where JSON is being written: `out`, or `group` while a resource or scope is rendered. */
let w = out;

// ---------------------------------------------------------------------------------------------
// Binary COPY fields: a big-endian int32 length, then the value.

function be32(b: ByteOut, n: number): void {
  b.ensure(4);
  const buf = b.buf;
  const p = b.pos;
  buf[p] = n >>> 24;
  buf[p + 1] = (n >>> 16) & 255;
  buf[p + 2] = (n >>> 8) & 255;
  buf[p + 3] = n & 255;
  b.pos = p + 4;
}

/** A tuple's field count. */
function be16(b: ByteOut, n: number): void {
  b.byte(n >>> 8);
  b.byte(n & 255);
}

/** An int8 field from its halves (values below 2^63: times and counters). */
function int8(lo: number, hi: number): void {
  be32(out, 8);
  be32(out, hi);
  be32(out, lo);
}

function int4(v: number): void {
  be32(out, 4);
  be32(out, v);
}

/** A bytea field of n bytes at src[start] (n = 0: empty). */
function bytea(src: Uint8Array, start: number, n: number): void {
  be32(out, n);
  out.bytes(src, start, start + n);
}

/** A text field of the wire string src[start, end), as the row encoder writes the string it decodes to. */
function text(b: ByteOut, src: Uint8Array, start: number, end: number): void {
  let plain = true;
  let high = 0;
  for (let i = start; i < end; i++) {
    const c = src[i]!;
    if (c === 0) plain = false;
    high |= c;
  }
  // U+FFFF is EF BF BF in UTF-8; escapeText rewrites it, and invalid UTF-8 decodes to U+FFFD.
  if (plain && high >= 0x80) plain = isUtf8(src.subarray(start, end)) && !hasNoncharFFFF(src, start, end);
  if (plain) {
    be32(b, end - start);
    b.bytes(src, start, end);
    return;
  }
  const s = escapeText(Buffer.from(src.buffer, src.byteOffset + start, end - start).toString('utf8'));
  const at = b.pos;
  be32(b, 0);
  b.utf8(s);
  patchLength(b, at);
}

function hasNoncharFFFF(src: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i + 2 < end; i++) if (src[i] === 0xef && src[i + 1] === 0xbf && src[i + 2] === 0xbf) return true;
  return false;
}

/** Starts a json (or any variable-length) field: its length is patched in by patchLength. */
function fieldStart(): number {
  const at = out.pos;
  be32(out, 0);
  return at;
}

/** Writes the length of the field whose length word is at `at`. */
function patchLength(b: ByteOut, at: number): void {
  const n = b.pos - at - 4;
  const buf = b.buf;
  buf[at] = n >>> 24;
  buf[at + 1] = (n >>> 16) & 255;
  buf[at + 2] = (n >>> 8) & 255;
  buf[at + 3] = n & 255;
}

/** Starts a json field holding a list: its '[' (listEnd closes it); returns where its length goes. */
function listStart(): number {
  const at = fieldStart();
  out.byte(0x5b);
  return at;
}

function listEnd(at: number): void {
  out.byte(0x5d);
  patchLength(out, at);
}

/** A json field holding src[start, end) (already rendered JSON). */
function jsonCopy(src: Uint8Array, start: number, end: number): void {
  be32(out, end - start);
  out.bytes(src, start, end);
}

// ---------------------------------------------------------------------------------------------
// Attribute lists (JSON), with each span attribute's search token.

/**
 * The KeyValues of one list being written: each is rendered in arrival order; when a key repeats
 * (rare), the list is rewritten from the rendered items the way dedupeAttributes orders them
 * (the last value at the first key's place). Keys are compared as wire bytes, which for valid
 * UTF-8 is comparing the decoded text; a list with an invalid key is compared as decoded text
 * (two different invalid sequences can decode to the same U+FFFD text).
 */
class KvList {
  src: Uint8Array = new Uint8Array(0);
  keyStarts = new Int32Array(16);
  keyEnds = new Int32Array(16);
  starts = new Int32Array(16);
  ends = new Int32Array(16);
  /** Set by finish when a key repeated: the item written at each key's place, and each key's first item. */
  order = new Int32Array(16);
  firsts = new Int32Array(16);
  n = 0;
  listStart = 0;
  dup = false;
  invalidKey = false;
  seen: Set<string> | null = null;
  /** Keys of this list by a small hash: most keys meet no candidate to compare. */
  private readonly stamps = new KeyStamps();

  begin(at: number): void {
    this.n = 0;
    this.listStart = at;
    this.dup = false;
    this.invalidKey = false;
    this.seen = null;
    this.stamps.begin();
  }

  private grow(): void {
    const n = this.n * 2;
    for (const k of ['keyStarts', 'keyEnds', 'starts', 'ends', 'order', 'firsts'] as const) {
      const a = new Int32Array(n);
      a.set(this[k]);
      this[k] = a;
    }
  }

  /** The key bytes as a string that is equal exactly when the bytes are (for Set and Map keys). */
  private byteKey(i: number): string {
    return Buffer.from(this.src.buffer, this.src.byteOffset, this.src.byteLength).toString('latin1', this.keyStarts[i], this.keyEnds[i]);
  }

  private textKey(i: number): string {
    return Buffer.from(this.src.buffer, this.src.byteOffset, this.src.byteLength).toString('utf8', this.keyStarts[i], this.keyEnds[i]);
  }

  push(src: Uint8Array, ks: number, ke: number, start: number, end: number, invalidUtf8: boolean): void {
    const n = this.n;
    if (invalidUtf8) this.invalidKey = true;
    if (n === this.starts.length) this.grow();
    this.src = src;
    this.keyStarts[n] = ks;
    this.keyEnds[n] = ke;
    this.starts[n] = start;
    this.ends[n] = end;
    this.n = n + 1;
    if (this.dup) return;
    const len = ke - ks;
    if (n >= 64) {
      // Long lists: a Set, so the check stays linear however many attributes an item has.
      if (this.seen === null) {
        this.seen = new Set();
        for (let i = 0; i < n; i++) this.seen.add(this.byteKey(i));
      }
      const k = this.byteKey(n);
      if (this.seen.has(k)) this.dup = true;
      else this.seen.add(k);
      return;
    }
    if (!this.stamps.seen(src, ks, ke)) return;
    for (let j = 0; j < n; j++) {
      const os = this.keyStarts[j]!;
      if (this.keyEnds[j]! - os === len && sameRange(src, os, ks, len)) {
        this.dup = true;
        return;
      }
    }
  }

  /** Rewrites the list in w when a key repeated; returns false when nothing had to change. */
  finish(): boolean {
    if (!this.dup && !this.invalidKey) return false;
    const m = this.invalidKey || this.seen !== null ? this.keysByText() : this.keysByBytes();
    if (m === this.n) return false;
    const base = this.listStart;
    listCopy.pos = 0;
    listCopy.bytes(w.buf, base, w.pos);
    w.pos = base;
    for (let k = 0; k < m; k++) {
      if (k > 0) w.byte(0x2c);
      const i = this.order[k]!;
      w.bytes(listCopy.buf, this.starts[i]! - base, this.ends[i]! - base);
    }
    return true;
  }

  /** Fills order[] comparing keys as bytes (a short list); returns the number of distinct keys. */
  private keysByBytes(): number {
    const { src, keyStarts, keyEnds, order, firsts } = this;
    let m = 0;
    for (let i = 0; i < this.n; i++) {
      const ks = keyStarts[i]!;
      const len = keyEnds[i]! - ks;
      let at = -1;
      for (let k = 0; k < m && at < 0; k++) {
        const os = keyStarts[firsts[k]!]!;
        if (keyEnds[firsts[k]!]! - os === len && sameRange(src, os, ks, len)) at = k;
      }
      if (at >= 0) order[at] = i;
      else {
        firsts[m] = i;
        order[m++] = i;
      }
    }
    return m;
  }

  /** Fills order[] comparing keys as strings (decoded text when a key is invalid UTF-8); returns the number of distinct keys. */
  private keysByText(): number {
    const index = new Map<string, number>();
    let m = 0;
    for (let i = 0; i < this.n; i++) {
      const k = this.invalidKey ? this.textKey(i) : this.byteKey(i);
      const at = index.get(k);
      if (at === undefined) {
        index.set(k, m);
        this.order[m++] = i;
      } else this.order[at] = i;
    }
    return m;
  }
}

/** A list's rendered items while finish() rewrites it. */
const listCopy = new ByteOut(1 << 12);

/** One list per nesting depth: attributes use 0, a kvlist value at depth d uses d + 1. */
const kvLists: KvList[] = [];

function beginList(depth: number): KvList {
  let l = kvLists[depth];
  if (l === undefined) {
    l = new KvList();
    kvLists[depth] = l;
  }
  l.begin(w.pos);
  return l;
}

/** Whether the span attributes being written get search tokens (depth-0 KeyValues only). */
let tokensOn = false;
let tokens = new Float64Array(64);
let tokenN = 0;

// What anyValueToString renders the last depth-0 AnyValue as: a wire string, a range of w, a JS
// string, or the text in sc.
const V_EMPTY = 0;
const V_WIRE = 1;
const V_OUT = 2;
const V_TEXT = 3;
const V_SCRATCH = 4;
let vText = V_EMPTY;
let vStart = 0;
let vEnd = 0;
/** Whether a V_WIRE string (or V_SCRATCH text) was all ASCII. */
let vAscii = false;
let vString = '';
/** The text of an array of strings, as anyValueToString renders it (for its token). */
const sc = new ByteOut(1 << 10);

/** Writes anyValueToString's text of the array of strings in STRING_ELEMENTS (places in buf) to sc; returns whether it is all ASCII. */
function stringArrayText(buf: Uint8Array): boolean {
  const { starts, ends, n } = STRING_ELEMENTS;
  let allAscii = true;
  sc.pos = 0;
  sc.byte(0x5b);
  for (let i = 0; i < n; i++) {
    if (i > 0) sc.byte(0x2c);
    sc.jsonStringUtf8(buf, starts[i]!, ends[i]!);
    if (!sc.ascii) allAscii = false;
  }
  sc.byte(0x5d);
  return allAscii;
}

/** Feeds text src[start, end) to the token: its bytes where they are all ASCII (jsonStringUtf8 found so), else its decoded string. */
function hashText(src: Uint8Array, start: number, end: number, allAscii: boolean): void {
  if (allAscii) tokenAscii(src, start, end);
  else tokenString(Buffer.from(src.buffer, src.byteOffset + start, end - start).toString('utf8'));
}

/** The search token of the attribute just written: key src[ks, ke) (keyAscii: all ASCII), value as anyValue left it. */
function pushToken(src: Uint8Array, ks: number, ke: number, keyAscii: boolean): void {
  tokenStart();
  hashText(src, ks, ke, keyAscii);
  tokenSeparator();
  if (vText === V_WIRE) hashText(src, vStart, vEnd, vAscii);
  else if (vText === V_OUT) tokenAscii(w.buf, vStart, vEnd);
  else if (vText === V_TEXT) tokenString(vString);
  else if (vText === V_SCRATCH) hashText(sc.buf, 0, sc.pos, vAscii);
  if (tokenN === tokens.length) {
    const t = new Float64Array(tokenN * 2);
    t.set(tokens);
    tokens = t;
  }
  tokens[tokenN++] = tokenEnd();
}

// ---------------------------------------------------------------------------------------------
// Values.

/** Writes the AnyValue in r[pos, end): the last of its oneof fields, every one validated. */
function anyValue(r: WireReader, end: number, depth: number): void {
  const mark = w.pos;
  let kind = V_EMPTY;
  let ks = 0;
  let ke = 0;
  let stringAscii = false;
  let s = '';
  // The kind of the last list read: a list given again merges into one of its own kind (protobuf),
  // which the row path writes (also, needlessly, when a scalar came between them).
  let list = 0;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10: {
        const e = r.lenEnd();
        ks = r.pos;
        ke = e;
        r.pos = e;
        w.pos = mark;
        w.piece(T_STRING);
        w.jsonStringUtf8(r.buf, ks, ke);
        stringAscii = w.ascii;
        w.byte(0x7d);
        kind = V_WIRE;
        break;
      }
      case 16: {
        const b = r.bool();
        w.pos = mark;
        w.piece(b ? T_TRUE : T_FALSE);
        kind = V_TEXT;
        s = b ? T_TRUE_TEXT : T_FALSE_TEXT;
        break;
      }
      case 24:
        r.varint64();
        w.pos = mark;
        w.piece(T_INT);
        ks = w.pos;
        w.int64(r.lo, r.hi);
        ke = w.pos;
        w.piece(T_QEND);
        kind = V_OUT;
        break;
      case 33: {
        const d = r.double();
        w.pos = mark;
        w.piece(T_DOUBLE);
        ks = w.pos;
        if (w.shortDecimal(d)) {
          ke = w.pos;
          kind = V_OUT;
        } else {
          s = String(d);
          w.asciiText(d - d === 0 ? s : d !== d ? '"NaN"' : d > 0 ? '"Infinity"' : '"-Infinity"');
          kind = V_TEXT;
        }
        w.byte(0x7d);
        break;
      }
      case 42:
      case 50: {
        if (list === tag) throw FALLBACK;
        list = tag;
        const e = r.lenEnd();
        w.pos = mark;
        if (depth >= maxDepth) {
          tooDeep = true;
          r.pos = e;
          kind = V_EMPTY;
          break;
        }
        const valueStart = r.pos;
        if (tag === 42) arrayValue(r, e, depth + 1);
        else kvlistValue(r, e, depth + 1);
        w.piece(T_LIST_END);
        kind = V_TEXT;
        if (tokensOn && depth === 0) {
          // The token renders the value as anyValueToString does: an array of strings from its
          // bytes, any other value from the row decoder's object.
          const after = r.pos;
          if (tag === 42 && stringElements(r, valueStart, e)) {
            stringAscii = stringArrayText(r.buf);
            kind = V_SCRATCH;
          } else {
            r.pos = valueStart;
            const v = readNestedValue(r, e, depth + 1, maxDepth, tag);
            s = v === null ? '' : anyValueToString(v);
          }
          r.pos = after;
        }
        break;
      }
      case 58: {
        const e = r.lenEnd();
        const b64 = r.nb.base64Slice(r.pos, e);
        r.pos = e;
        w.pos = mark;
        w.piece(T_BYTES);
        w.asciiText(b64);
        w.piece(T_QEND);
        kind = V_TEXT;
        s = b64;
        break;
      }
      default:
        unknownField(r, tag, KNOWN_ANYVALUE, 'AnyValue');
    }
  }
  checkEnd(r, end, 'AnyValue');
  if (kind === V_EMPTY) {
    w.pos = mark;
    w.piece(T_EMPTY);
  }
  vText = kind;
  vStart = ks;
  vEnd = ke;
  vAscii = stringAscii;
  vString = s;
}

/** Writes the ArrayValue r[pos, end) whose values lie at depth, up to its closing brackets. */
function arrayValue(r: WireReader, end: number, depth: number): void {
  w.piece(T_ARRAY);
  let n = 0;
  while (r.pos < end) {
    const t = r.tag();
    if (t === 10) {
      const ve = r.lenEnd();
      if (n++ > 0) w.byte(0x2c);
      anyValue(r, ve, depth);
    } else unknownField(r, t, KNOWN_LIST, 'ArrayValue');
  }
  checkEnd(r, end, 'ArrayValue');
}

/** Writes the KeyValueList r[pos, end) whose values lie at depth, up to its closing brackets. */
function kvlistValue(r: WireReader, end: number, depth: number): void {
  w.piece(T_KVLIST);
  const l = beginList(depth);
  while (r.pos < end) {
    const t = r.tag();
    if (t === 10) {
      const ve = r.lenEnd();
      keyValue(r, ve, l, depth);
    } else unknownField(r, t, KNOWN_LIST, 'KeyValueList');
  }
  checkEnd(r, end, 'KeyValueList');
  l.finish();
}

/** The key bytes of the last KeyValue written. */
let keyStart = 0;
let keyEnd = 0;

/** Writes the KeyValue in r[pos, end) as an item of list l (comma included). */
function keyValue(r: WireReader, end: number, l: KvList, depth: number): void {
  const start = r.pos;
  scanKeyValue(r, end);
  const { keyStart: ks, keyEnd: ke, values, valueStart: vs, valueEnd: ve } = KV;
  if (l.n > 0) w.byte(0x2c);
  const itemStart = w.pos;
  w.piece(T_KEY);
  w.jsonStringUtf8(r.buf, ks, ke);
  const invalidKey = w.invalidUtf8;
  const keyAscii = w.ascii;
  w.piece(T_VALUE);
  if (values === 1) {
    r.pos = vs;
    anyValue(r, ve, depth);
  } else if (values === 0) {
    w.piece(T_EMPTY);
    vText = V_EMPTY;
  } else {
    // A repeated value field: each is read (and validated) and merged into the one before it.
    const mark = w.pos;
    eachValueGivenAgain(r, start, end, undefined, (e) => {
      w.pos = mark;
      anyValue(r, e, depth);
    }, FALLBACK);
  }
  r.pos = end;
  w.byte(0x7d);
  if (tokensOn && depth === 0) pushToken(r.buf, ks, ke, keyAscii);
  l.push(r.buf, ks, ke, itemStart, w.pos, invalidKey);
  keyStart = ks;
  keyEnd = ke;
}

/** True when the last KeyValue written has the key service.name. */
function lastKeyIsServiceName(buf: Uint8Array): boolean {
  if (keyEnd - keyStart !== SERVICE_NAME.length) return false;
  for (let i = 0; i < SERVICE_NAME.length; i++) if (buf[keyStart + i] !== SERVICE_NAME[i]) return false;
  return true;
}

/** The attribute places of an event or link being written (attribute lists do not nest). */
const nestedAttrs = new FieldRanges();

/** Writes the attributes (fields with `tag`) of the message r[start, end) as list items, deduplicated. */
function attributes(r: WireReader, start: number, end: number, tag: number): void {
  attributeList(r, nestedAttrs.collect(r, start, end, tag));
}

/** Writes the KeyValues at `places` as list items, deduplicated. */
function attributeList(r: WireReader, places: FieldRanges): void {
  const l = beginList(0);
  for (let i = 0; i < places.n; i++) {
    r.pos = places.starts[i]!;
    keyValue(r, places.ends[i]!, l, 0);
  }
  // Tokens follow the deduplicated list's order: a list that changed takes the row path.
  if (l.finish() && tokensOn) throw FALLBACK;
}

// ---------------------------------------------------------------------------------------------
// Resource and scope: rendered into `group` once per ResourceSpans / ScopeSpans.

/** group.buf[0, resourceEnd) is the resource JSON, [resourceEnd, scopeEnd) the scope's. */
let resourceEnd = 0;
let scopeEnd = 0;
/** The resource or the scope had a value nested too deep: their items are rejected. */
let resourceDeep = false;
let scopeDeep = false;

/** Writes the rest of the resource or scope after its attribute list: dropped count, schema URL. */
function groupEnd(r: WireReader): void {
  group.piece(T_DROPPED_ATTRS);
  group.uint(GROUP.dropped);
  group.piece(T_SCHEMA);
  group.jsonStringUtf8(r.buf, GROUP.schemaStart, GROUP.schemaEnd);
  group.byte(0x7d);
}

/** Renders the resource just scanned (all its occurrences merged) and its service name. */
function renderResource(r: WireReader): void {
  w = group;
  group.pos = 0;
  groupColumnsStart = -1;
  tooDeep = false;
  let svcKind = -1;
  let svcStart = 0;
  let svcEnd = 0;
  group.piece(T_RES_START);
  const l = beginList(0);
  for (let i = 0; i < GROUP_ATTRS.n; i++) {
    r.pos = GROUP_ATTRS.starts[i]!;
    keyValue(r, GROUP_ATTRS.ends[i]!, l, 0);
    if (lastKeyIsServiceName(r.buf)) {
      svcKind = vText;
      svcStart = vStart;
      svcEnd = vEnd;
    }
  }
  l.finish();
  groupEnd(r);
  resourceEnd = group.pos;
  service.pos = 0;
  if (svcKind === V_WIRE) text(service, r.buf, svcStart, svcEnd);
  else text(service, T_UNKNOWN_SERVICE, 0, T_UNKNOWN_SERVICE.length);
  resourceDeep = tooDeep;
  w = out;
}

/** Renders the scope just scanned (all its occurrences merged) after the resource. */
function renderScope(r: WireReader): void {
  w = group;
  group.pos = resourceEnd;
  groupColumnsStart = -1;
  tooDeep = false;
  group.piece(T_SCOPE_START);
  group.jsonStringUtf8(r.buf, GROUP.nameStart, GROUP.nameEnd);
  group.piece(T_VERSION);
  group.jsonStringUtf8(r.buf, GROUP.versionStart, GROUP.versionEnd);
  group.piece(T_ATTRS);
  attributeList(r, GROUP_ATTRS);
  groupEnd(r);
  scopeEnd = group.pos;
  scopeDeep = tooDeep;
  w = out;
}

/**
 * Where a kept tuple of the current group has its service name, resource and scope columns in
 * out, [groupColumnsStart, groupColumnsEnd); -1 when none has (a new request or group, or the
 * tuple that wrote them was discarded).
 */
let groupColumnsStart = -1;
let groupColumnsEnd = -1;

/** The service name, resource and scope columns of the current group: the group's first tuple copies them from their renderings, the next ones from it. */
function serviceResourceScope(): void {
  if (groupColumnsStart >= 0) {
    out.repeat(groupColumnsStart, groupColumnsEnd);
    return;
  }
  groupColumnsStart = out.pos;
  out.bytes(service.buf, 0, service.pos);
  jsonCopy(group.buf, 0, resourceEnd);
  jsonCopy(group.buf, resourceEnd, scopeEnd);
  groupColumnsEnd = out.pos;
}

/** Discards the tuple being written, from tupleStart on. */
function discardTuple(tupleStart: number): void {
  out.pos = tupleStart;
  if (groupColumnsStart >= tupleStart) groupColumnsStart = -1;
}

let accepted = 0;

// The days (since 1970-01-01 UTC) of the accepted tuples' partition keys, for their chunk
// (EncodedChunk.days), so that the main thread need not walk the tuples for them. A key is
// below 2^63 (later times are rejected), so its nanoseconds shifted right by 16 bits are exact
// in a double, and NS_PER_DAY is 2^16 times DAY_ODD: a day is that over DAY_ODD, floored.
const DAY_ODD = 1_318_359_375;
/** The partition key of the tuple being written, shifted right by 16 bits. */
let keyShifted = 0;
/** In the order first met (a Set: a request of spans each on another day must not scan a list per span). */
const days = new Set<number>();
/** The last day added, as [dayFrom, dayTo) of shifted keys: consecutive tuples mostly fall in it. */
let dayFrom = 0;
let dayTo = 0;

/** Writes the tuple's partition key (its first column), the time with halves lo, hi. */
function partitionKey(lo: number, hi: number): void {
  int8(lo, hi);
  keyShifted = hi * 65536 + (lo >>> 16);
}

/** Adds the day of the tuple just accepted. */
function addDay(): void {
  if (keyShifted >= dayFrom && keyShifted < dayTo) return;
  const day = Math.floor(keyShifted / DAY_ODD);
  dayFrom = day * DAY_ODD;
  dayTo = dayFrom + DAY_ODD;
  days.add(day);
}

/** The request walk for items written by `item` (false: rejected, its tuple discarded). */
function walkOf(item: (r: WireReader, start: number, end: number, rej: Rejections) => boolean, requestMessage: string, resourceMessage: string, scopeMessage: string): Walk {
  return {
    requestMessage,
    resourceMessage,
    scopeMessage,
    resource: renderResource,
    scope: renderScope,
    item(r, start, end, rej) {
      const tupleStart = out.pos;
      if (item(r, start, end, rej)) {
        if (resourceDeep || scopeDeep) {
          // The resource or scope cannot be stored faithfully, so neither can its items.
          discardTuple(tupleStart);
          rej.add(REASON_TOO_DEEP);
        } else {
          accepted++;
          addDay();
        }
      } else discardTuple(tupleStart);
    },
  };
}

function reject(rej: Rejections, reason: number): false {
  rej.add(reason);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Traces.

/** Writes the events of the span just scanned as list items; false when an event time is not storable. */
function events(r: WireReader): boolean {
  let n = 0;
  let storable = true;
  for (let i = 0; i < SPAN_EVENTS.n; i++) {
    const s = SPAN_EVENTS.starts[i]!;
    const e = SPAN_EVENTS.ends[i]!;
    r.pos = s;
    scanEvent(r, e);
    if (EVENT.hi >= MAX_TIME_HI) storable = false;
    if (n++ > 0) w.byte(0x2c);
    w.piece(T_EVENT_TIME);
    w.uint64(EVENT.lo, EVENT.hi);
    w.piece(T_EVENT_NAME);
    w.jsonStringUtf8(r.buf, EVENT.nameStart, EVENT.nameEnd);
    const dropped = EVENT.dropped;
    w.piece(T_ATTRS);
    attributes(r, s, e, 26);
    w.piece(T_DROPPED_ATTRS);
    w.uint(dropped);
    w.byte(0x7d);
    r.pos = e;
  }
  return storable;
}

/** Writes the links of span r[start, end) with good ids as list items; false when one had a bad id. */
function links(r: WireReader, start: number, end: number): boolean {
  let n = 0;
  let good = true;
  const buf = r.buf;
  r.pos = start;
  for (let e = nextField(r, end, 106); e >= 0; e = nextField(r, end, 106)) {
    const s = r.pos;
    scanLink(r, e);
    const { traceStart, traceState, spanStart, spanState, tsStart, tsEnd, flags, dropped } = LINK;
    const mark = w.pos;
    if (n > 0) w.byte(0x2c);
    w.piece(T_LINK_TRACE);
    if (traceState === ID_OK) w.hex(buf, traceStart, 16);
    w.piece(T_SPAN_ID);
    if (spanState === ID_OK) w.hex(buf, spanStart, 8);
    w.piece(T_TRACE_STATE);
    w.jsonStringUtf8(buf, tsStart, tsEnd);
    w.piece(T_FLAGS);
    w.uint(flags);
    w.piece(T_ATTRS);
    attributes(r, s, e, 34);
    w.piece(T_DROPPED_ATTRS);
    w.uint(dropped);
    w.byte(0x7d);
    if (traceState === ID_BAD || spanState === ID_BAD) {
      // The row path drops such a link (and then the span): its attributes were still read.
      good = false;
      w.pos = mark;
    } else n++;
    r.pos = e;
  }
  return good;
}

/** Writes the tuple of span r[start, end); false (tuple to be discarded) when the span is rejected. */
function span(r: WireReader, start: number, end: number, rej: Rejections): boolean {
  const buf = r.buf;
  tooDeep = false;
  scanSpan(r, start, end);
  const { traceStart, traceState, spanStart, spanState, parentStart, parentState, tsStart, tsEnd, nameStart, nameEnd, kind, startLo, startHi, endLo, endHi, droppedAttrs, droppedEvents, droppedLinks, statusCode, smStart, smEnd, flags, hasEvents, hasLinks } = SPAN;
  // The whole span is read (and the tuple written) before the checks: a malformation anywhere in
  // it refuses the request, as in the row decoder, whatever else is wrong with the span.
  be16(out, SPAN_COLUMNS.length);
  partitionKey(startLo, startHi);
  bytea(buf, traceStart, traceState === ID_OK ? 16 : 0);
  bytea(buf, spanStart, spanState === ID_OK ? 8 : 0);
  bytea(buf, parentStart, parentState === ID_OK ? 8 : 0);
  text(out, buf, tsStart, tsEnd);
  int8(flags, 0);
  text(out, buf, nameStart, nameEnd);
  int4(kind);
  int8(endLo, endHi);
  if (endHi > startHi || (endHi === startHi && endLo > startLo)) {
    const lo = endLo - startLo;
    int8(lo >>> 0, endHi - startHi - (lo < 0 ? 1 : 0));
  } else int8(0, 0);
  int4(statusCode);
  text(out, buf, smStart, smEnd);
  serviceResourceScope();

  let at = listStart();
  tokensOn = true;
  tokenN = 0;
  try {
    attributeList(r, SPAN_ATTRS);
  } finally {
    tokensOn = false;
  }
  listEnd(at);
  tokenArray();
  int8(droppedAttrs, 0);
  at = listStart();
  const eventTimesStorable = hasEvents ? events(r) : true;
  listEnd(at);
  int8(droppedEvents, 0);
  at = listStart();
  const linksGood = hasLinks ? links(r, start, end) : true;
  listEnd(at);
  int8(droppedLinks, 0);

  return keepSpan(rej, linksGood, tooDeep, eventTimesStorable);
}

/** The span's tokens as an int8[] field (one dimension, no nulls, element type int8). */
function tokenArray(): void {
  const n = tokenN;
  be32(out, n === 0 ? 12 : 20 + n * 12);
  be32(out, n === 0 ? 0 : 1);
  be32(out, 0);
  be32(out, 20);
  if (n === 0) return;
  be32(out, n);
  be32(out, 1);
  for (let i = 0; i < n; i++) {
    const v = tokens[i]!;
    const hi = Math.floor(v / 4294967296);
    int8(v - hi * 4294967296, hi);
  }
}

const SPANS = walkOf(span, 'ExportTraceServiceRequest', 'ResourceSpans', 'ScopeSpans');

// ---------------------------------------------------------------------------------------------
// Logs.

/** Writes the tuple of log record r[start, end); false (tuple to be discarded) when it is rejected. */
function logRecord(r: WireReader, start: number, end: number, rej: Rejections): boolean {
  const buf = r.buf;
  tooDeep = false;
  scanLog(r, start, end);
  const { timeLo, timeHi, obsLo, obsHi, traceStart, traceState, spanStart, spanState, flags, severity, stStart, stEnd, enStart, enEnd, dropped } = LOG;
  be16(out, LOG_COLUMNS.length);
  // The partition key: the record's time, or its observed time when unset.
  if (timeLo !== 0 || timeHi !== 0) partitionKey(timeLo, timeHi);
  else partitionKey(obsLo, obsHi);
  int8(timeLo, timeHi);
  int8(obsLo, obsHi);
  // Empty, all-zero or malformed ids mean "not linked": the record is kept.
  bytea(buf, traceStart, traceState === ID_OK ? 16 : 0);
  bytea(buf, spanStart, spanState === ID_OK ? 8 : 0);
  int8(flags, 0);
  int4(severity);
  text(out, buf, stStart, stEnd);
  const at = fieldStart();
  body(r);
  patchLength(out, at);
  text(out, buf, enStart, enEnd);
  serviceResourceScope();
  const attrsAt = listStart();
  attributeList(r, LOG_ATTRS);
  listEnd(attrsAt);
  int8(dropped, 0);

  if (tooDeep) return reject(rej, REASON_TOO_DEEP);
  if (timeHi >= MAX_TIME_HI || obsHi >= MAX_TIME_HI) return reject(rej, REASON_TIME);
  return true;
}

/** Writes the body of the log record just scanned: its body fields merged (valueGivenAgain), '{}' when it has none. */
function body(r: WireReader): void {
  if (LOG_BODIES.n === 0) out.piece(T_EMPTY);
  else if (LOG_BODIES.n === 1) {
    r.pos = LOG_BODIES.starts[0]!;
    anyValue(r, LOG_BODIES.ends[0]!, 0);
  } else {
    // The body given again: its fields merged.
    const mark = out.pos;
    eachValueGivenAgain(r, 0, 0, LOG_BODIES, (e) => {
      out.pos = mark;
      anyValue(r, e, 0);
    }, FALLBACK);
  }
}

const LOGS = walkOf(logRecord, 'ExportLogsServiceRequest', 'ResourceLogs', 'ScopeLogs');

// ---------------------------------------------------------------------------------------------

function transcode(bytes: Uint8Array, limits: DecodeLimits, walk: Walk, singular: string, plural: string): EncodedRequest {
  maxDepth = limits.maxNestingDepth;
  const rej = new Rejections(limits.maxNestingDepth);
  accepted = 0;
  days.clear();
  dayTo = 0;
  out.start(bytes.byteLength * STORE_BYTES_PER_REQUEST_BYTE.postgres, storeBytesBound(bytes.byteLength, limits.maxStoreBytes));
  w = out;
  groupColumnsStart = -1;
  walkRequest(new WireReader(bytes), walk, rej);
  const chunks = accepted === 0 ? [] : [{ partition: 0, rows: accepted, data: out.take(), days: [...days] }];
  out.shrink();
  return { accepted, rejected: rej.total, errorMessage: rej.message(singular, plural), chunks };
}

/** The scratch outputs a request writes values into: one huge value grows them as it grows `out`. */
const SCRATCH = [group, service, listCopy, sc];

/** OTLP protobuf requests as binary COPY tuples, the bytes and results the row path (`rowPath`) gives; rare shapes go through rowPath itself. */
export function transcodeProto(signal: 'traces' | 'logs', bytes: Uint8Array, limits: DecodeLimits, rowPath: RequestEncoder): EncodedRequest {
  try {
    return signal === 'traces' ? transcode(bytes, limits, SPANS, 'span', 'spans') : transcode(bytes, limits, LOGS, 'log record', 'log records');
  } catch (err) {
    w = out;
    tokensOn = false;
    if (err !== FALLBACK && !(err instanceof DecodeError)) throw err;
    // The row path gives the exact results, or throws the row decoder's own error for a malformed request.
    fallbacks++;
    return rowPath.encode(signal, 'protobuf', bytes);
  } finally {
    // As `out`: a buffer one huge request grew is not held by the worker for good (each use starts at 0).
    for (const b of SCRATCH) b.shrink();
  }
}
