// OTLP protobuf → JSON lines (the memory and SQLite row format, src/storage/rowjson.ts) in one
// pass over the request, with no object per span, attribute or value: fields are read where
// they lie in the wire bytes and their JSON is written straight into the output buffer.
// Resource and scope are rendered once per group and copied into each line.
//
// The bytes are those the row path (decodeTracesProto + rowjson encoder) writes, and validation
// is the same: the same items are rejected for the same reasons. Protobuf lets fields come in
// any order and repeat, so each message is read in short passes (its scalars first, then the
// repeated parts in the order the document lists them); re-reading tags is cheap next to
// writing. A request refused whole is re-decoded by the row decoder so that the error message is
// exactly the one it gives, whichever malformation a pass happened to meet first.
import { decodeLogsProto, decodeTracesProto, KNOWN_ANYVALUE, KNOWN_LIST } from '../../decode/otlp-proto.ts';
import { REASON_LINK_ID, REASON_PARENT_SPAN_ID, REASON_SPAN_ID, REASON_TIME, REASON_TOO_DEEP, REASON_TRACE_ID, Rejections, UNKNOWN_SERVICE, type DecodeLimits } from '../../decode/common.ts';
import { checkEnd, unknownField, type WireReader } from '../../decode/wire.ts';
import { EVENT, GROUP, ID_BAD, ID_OK, KV, kvEnds, kvN, kvStarts, LINK, LOG, MAX_TIME_HI, nextField, scanEvent, scanKeyValue, scanLink, scanLog, scanSpan, SPAN, walkOrRowPathError, type Walk } from '../wire-scan.ts';
import { ascii, ByteOut } from '../byte-out.ts';
import type { EncodedRequest } from '../encoder.ts';

// The fixed text of the format.
const T_STRING = ascii('{"stringValue":');
const T_TRUE = ascii('{"boolValue":true}');
const T_FALSE = ascii('{"boolValue":false}');
const T_INT = ascii('{"intValue":"');
const T_DOUBLE = ascii('{"doubleValue":');
const T_BYTES = ascii('{"bytesValue":"');
const T_ARRAY = ascii('{"arrayValue":{"values":[');
const T_KVLIST = ascii('{"kvlistValue":{"values":[');
const T_LIST_END = ascii(']}}');
const T_QEND = ascii('"}');
const T_EMPTY = ascii('{}');
const T_KEY = ascii('{"key":');
const T_VALUE = ascii(',"value":');
const T_RES_START = ascii('{"attributes":[');
const T_DROPPED_ATTRS = ascii('],"droppedAttributesCount":');
const T_SCHEMA = ascii(',"schemaUrl":');
const T_SCOPE_START = ascii('{"name":');
const T_VERSION = ascii(',"version":');
const T_ATTRS = ascii(',"attributes":[');
const T_UNKNOWN_SERVICE = ascii(JSON.stringify(UNKNOWN_SERVICE));
const T_HEAD_START = ascii('["');
const T_QCQ = ascii('","');
const T_QC = ascii('",');
const T_CQ = ascii(',"');
const T_DOC_RESOURCE = ascii(']\t{"resource":');
const T_DOC_SCOPE = ascii(',"scope":');
const T_TRACE_ID = ascii(',"traceId":"');
const T_SPAN_ID = ascii('","spanId":"');
const T_PARENT = ascii('","parentSpanId":"');
const T_TRACE_STATE = ascii('","traceState":');
const T_FLAGS = ascii(',"flags":');
const T_NAME = ascii(',"name":');
const T_KIND = ascii(',"kind":');
const T_START = ascii(',"startTimeUnixNano":"');
const T_END = ascii('","endTimeUnixNano":"');
const T_DURATION = ascii('","durationNano":"');
const T_STATUS = ascii('","statusCode":');
const T_STATUS_MESSAGE = ascii(',"statusMessage":');
const T_SERVICE = ascii(',"serviceName":');
const T_EVENTS = ascii(',"events":[');
const T_DROPPED_EVENTS = ascii('],"droppedEventsCount":');
const T_LINKS = ascii(',"links":[');
const T_DROPPED_LINKS = ascii('],"droppedLinksCount":');
const T_LINE_END = ascii('}\n');
const T_EVENT_TIME = ascii('{"timeUnixNano":"');
const T_EVENT_NAME = ascii('","name":');
const T_LINK_TRACE = ascii('{"traceId":"');
const T_LOG_TRACE = ascii('","traceId":"');
const T_OBSERVED = ascii('","observedTimeUnixNano":"');
const T_SEVERITY = ascii(',"severityNumber":');
const T_SEVERITY_TEXT = ascii(',"severityText":');
const T_BODY = ascii(',"body":');
const T_EVENT_NAME_LOG = ascii(',"eventName":');
const T_TIME = ascii(',"timeUnixNano":"');
const T_SPAN_ID_LOG = ascii('","spanId":"');
const T_FLAGS_LOG = ascii('","flags":');

// Per-call state: decoding is synchronous and a worker runs one task at a time.
let maxDepth = 100;
/** Set when a value nested deeper than maxDepth was met; each item clears and checks it. */
let tooDeep = false;
const LINES_INITIAL_BYTES = 1 << 20;
/** The lines. */
const lines = new ByteOut(LINES_INITIAL_BYTES);
/** The current group's resource JSON, service name JSON and scope JSON, in that order. */
const group = new ByteOut(1 << 12);
/** Where JSON is being written: `lines`, or `group` while a resource or scope is rendered. */
let w = lines;

// Kind of the last AnyValue written, and a string value's bytes (for service.name).
const K_EMPTY = 0;
const K_STRING = 1;
const K_OTHER = 2;
let vKind = K_EMPTY;
let vStart = 0;
let vEnd = 0;

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
  n = 0;
  listStart = 0;
  dup = false;
  invalidKey = false;
  seen: Set<string> | null = null;
  /** Keys of this list by a small hash, stamped with `gen`: most keys meet no candidate to compare. */
  private readonly stamps = new Int32Array(256);
  private gen = 0;

  begin(at: number): void {
    this.n = 0;
    this.listStart = at;
    this.dup = false;
    this.invalidKey = false;
    this.seen = null;
    this.gen++;
  }

  private grow(): void {
    const n = this.n * 2;
    for (const k of ['keyStarts', 'keyEnds', 'starts', 'ends'] as const) {
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
    const h = len === 0 ? 0 : (len * 131 + src[ks]! * 31 + src[ke - 1]! * 7 + src[ks + (len >>> 1)]!) & 255;
    if (this.stamps[h] !== this.gen) {
      this.stamps[h] = this.gen;
      return;
    }
    for (let j = 0; j < n; j++) {
      const os = this.keyStarts[j]!;
      if (this.keyEnds[j]! - os !== len) continue;
      let i = 0;
      while (i < len && src[os + i] === src[ks + i]) i++;
      if (i === len) {
        this.dup = true;
        return;
      }
    }
  }

  /** Rewrites the list in w when a key repeated. */
  finish(): void {
    if (!this.dup && !this.invalidKey) return;
    const index = new Map<string, number>();
    const order: number[] = [];
    for (let i = 0; i < this.n; i++) {
      const k = this.invalidKey ? this.textKey(i) : this.byteKey(i);
      const at = index.get(k);
      if (at === undefined) {
        index.set(k, order.length);
        order.push(i);
      } else order[at] = i;
    }
    if (order.length === this.n) return;
    const base = this.listStart;
    const copy = w.buf.slice(base, w.pos);
    w.pos = base;
    for (let k = 0; k < order.length; k++) {
      if (k > 0) w.byte(0x2c);
      const i = order[k]!;
      w.bytes(copy, this.starts[i]! - base, this.ends[i]! - base);
    }
  }
}

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

// ---------------------------------------------------------------------------------------------
// Values.

/** Writes the AnyValue in r[pos, end): the last of its oneof fields, every one validated. */
function anyValue(r: WireReader, end: number, depth: number): void {
  const mark = w.pos;
  let kind = K_EMPTY;
  let ks = 0;
  let ke = 0;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10: {
        const e = r.lenEnd();
        ks = r.pos;
        ke = e;
        r.pos = e;
        w.pos = mark;
        w.bytes(T_STRING);
        w.jsonStringUtf8(r.buf, ks, ke);
        w.byte(0x7d);
        kind = K_STRING;
        break;
      }
      case 16: {
        const b = r.bool();
        w.pos = mark;
        w.bytes(b ? T_TRUE : T_FALSE);
        kind = K_OTHER;
        break;
      }
      case 24:
        r.varint64();
        w.pos = mark;
        w.bytes(T_INT);
        w.int64(r.lo, r.hi);
        w.bytes(T_QEND);
        kind = K_OTHER;
        break;
      case 33: {
        const d = r.double();
        w.pos = mark;
        w.bytes(T_DOUBLE);
        w.asciiText(d - d === 0 ? String(d) : d !== d ? '"NaN"' : d > 0 ? '"Infinity"' : '"-Infinity"');
        w.byte(0x7d);
        kind = K_OTHER;
        break;
      }
      case 42:
      case 50: {
        const e = r.lenEnd();
        w.pos = mark;
        if (depth >= maxDepth) {
          tooDeep = true;
          r.pos = e;
          kind = K_EMPTY;
          break;
        }
        if (tag === 42) arrayValue(r, e, depth + 1);
        else kvlistValue(r, e, depth + 1);
        w.bytes(T_LIST_END);
        kind = K_OTHER;
        break;
      }
      case 58: {
        const e = r.lenEnd();
        const s = r.pos;
        r.pos = e;
        w.pos = mark;
        w.bytes(T_BYTES);
        w.asciiText(r.nb.base64Slice(s, e));
        w.bytes(T_QEND);
        kind = K_OTHER;
        break;
      }
      default:
        unknownField(r, tag, KNOWN_ANYVALUE, 'AnyValue');
    }
  }
  checkEnd(r, end, 'AnyValue');
  if (kind === K_EMPTY) {
    w.pos = mark;
    w.bytes(T_EMPTY);
  }
  vKind = kind;
  vStart = ks;
  vEnd = ke;
}

/** Writes the ArrayValue r[pos, end) whose values lie at depth, up to its closing brackets. */
function arrayValue(r: WireReader, end: number, depth: number): void {
  w.bytes(T_ARRAY);
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
  w.bytes(T_KVLIST);
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
  w.bytes(T_KEY);
  w.jsonStringUtf8(r.buf, ks, ke);
  const invalidKey = w.invalidUtf8;
  w.bytes(T_VALUE);
  if (values === 1) {
    r.pos = vs;
    anyValue(r, ve, depth);
  } else if (values === 0) {
    w.bytes(T_EMPTY);
    vKind = K_EMPTY;
  } else {
    // A repeated value field: each is read (and validated); the last one stays.
    r.pos = start;
    const mark = w.pos;
    for (let e = nextField(r, end, 18); e >= 0; e = nextField(r, end, 18)) {
      w.pos = mark;
      anyValue(r, e, depth);
    }
  }
  r.pos = end;
  w.byte(0x7d);
  l.push(r.buf, ks, ke, itemStart, w.pos, invalidKey);
  keyStart = ks;
  keyEnd = ke;
}

const SERVICE_NAME = ascii('service.name');

/** True when the last KeyValue written has the key service.name. */
function lastKeyIsServiceName(buf: Uint8Array): boolean {
  if (keyEnd - keyStart !== SERVICE_NAME.length) return false;
  for (let i = 0; i < SERVICE_NAME.length; i++) if (buf[keyStart + i] !== SERVICE_NAME[i]) return false;
  return true;
}

/** Writes the attributes (fields with `tag`) of the message r[start, end) as list items, deduplicated. */
function attributes(r: WireReader, start: number, end: number, tag: number): void {
  const l = beginList(0);
  r.pos = start;
  for (let e = nextField(r, end, tag); e >= 0; e = nextField(r, end, tag)) keyValue(r, e, l, 0);
  l.finish();
}

// ---------------------------------------------------------------------------------------------
// Resource and scope: rendered into `group` once per ResourceSpans / ScopeSpans.

interface Group {
  /** group.buf[0, resourceEnd) is the resource JSON; [resourceEnd, serviceEnd) the service name JSON. */
  resourceEnd: number;
  serviceEnd: number;
  scopeEnd: number;
  /** The resource or the scope had a value nested too deep: their items are rejected. */
  resourceDeep: boolean;
  scopeDeep: boolean;
}

const G: Group = { resourceEnd: 0, serviceEnd: 0, scopeEnd: 0, resourceDeep: false, scopeDeep: false };

/** Renders the resource just scanned (all its occurrences merged) and its service name. */
function renderResource(r: WireReader): void {
  w = group;
  group.pos = 0;
  tooDeep = false;
  let svcKind = -1;
  let svcStart = 0;
  let svcEnd = 0;
  group.bytes(T_RES_START);
  const l = beginList(0);
  for (let i = 0; i < kvN; i++) {
    r.pos = kvStarts[i]!;
    keyValue(r, kvEnds[i]!, l, 0);
    if (lastKeyIsServiceName(r.buf)) {
      svcKind = vKind;
      svcStart = vStart;
      svcEnd = vEnd;
    }
  }
  l.finish();
  group.bytes(T_DROPPED_ATTRS);
  group.uint(GROUP.dropped);
  group.bytes(T_SCHEMA);
  group.jsonStringUtf8(r.buf, GROUP.schemaStart, GROUP.schemaEnd);
  group.byte(0x7d);
  G.resourceEnd = group.pos;
  if (svcKind === K_STRING) group.jsonStringUtf8(r.buf, svcStart, svcEnd);
  else group.bytes(T_UNKNOWN_SERVICE);
  G.serviceEnd = group.pos;
  G.resourceDeep = tooDeep;
  w = lines;
}

/** Renders the scope just scanned (all its occurrences merged) after the resource. */
function renderScope(r: WireReader): void {
  w = group;
  group.pos = G.serviceEnd;
  tooDeep = false;
  group.bytes(T_SCOPE_START);
  group.jsonStringUtf8(r.buf, GROUP.nameStart, GROUP.nameEnd);
  group.bytes(T_VERSION);
  group.jsonStringUtf8(r.buf, GROUP.versionStart, GROUP.versionEnd);
  group.bytes(T_ATTRS);
  const l = beginList(0);
  for (let i = 0; i < kvN; i++) {
    r.pos = kvStarts[i]!;
    keyValue(r, kvEnds[i]!, l, 0);
  }
  l.finish();
  group.bytes(T_DROPPED_ATTRS);
  group.uint(GROUP.dropped);
  group.bytes(T_SCHEMA);
  group.jsonStringUtf8(r.buf, GROUP.schemaStart, GROUP.schemaEnd);
  group.byte(0x7d);
  G.scopeEnd = group.pos;
  G.scopeDeep = tooDeep;
  w = lines;
}

let accepted = 0;

/** The request walk for items written by `item` (false: rejected, its line discarded). */
function walkOf(item: (r: WireReader, start: number, end: number, rej: Rejections) => boolean, requestMessage: string, resourceMessage: string, scopeMessage: string): Walk {
  return {
    requestMessage,
    resourceMessage,
    scopeMessage,
    resource: renderResource,
    scope: renderScope,
    item(r, start, end, rej) {
      const lineStart = lines.pos;
      if (item(r, start, end, rej)) {
        if (G.resourceDeep || G.scopeDeep) {
          // The resource or scope cannot be stored faithfully, so neither can its items.
          lines.pos = lineStart;
          rej.add(REASON_TOO_DEEP);
        } else accepted++;
      } else lines.pos = lineStart;
    },
  };
}

/** Copies the current resource, service name and scope JSON into the line. */
function resourceAndScope(): void {
  lines.bytes(T_DOC_RESOURCE);
  lines.bytes(group.buf, 0, G.resourceEnd);
  lines.bytes(T_DOC_SCOPE);
  lines.bytes(group.buf, G.serviceEnd, G.scopeEnd);
}

// ---------------------------------------------------------------------------------------------
// Traces.

/** Writes the events of span r[start, end) as list items; false when an event time is not storable. */
function events(r: WireReader, start: number, end: number): boolean {
  let n = 0;
  let storable = true;
  r.pos = start;
  for (let e = nextField(r, end, 90); e >= 0; e = nextField(r, end, 90)) {
    const s = r.pos;
    scanEvent(r, e);
    if (EVENT.hi >= MAX_TIME_HI) storable = false;
    if (n++ > 0) w.byte(0x2c);
    w.bytes(T_EVENT_TIME);
    w.uint64(EVENT.lo, EVENT.hi);
    w.bytes(T_EVENT_NAME);
    w.jsonStringUtf8(r.buf, EVENT.nameStart, EVENT.nameEnd);
    const dropped = EVENT.dropped;
    w.bytes(T_ATTRS);
    attributes(r, s, e, 26);
    w.bytes(T_DROPPED_ATTRS);
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
    w.bytes(T_LINK_TRACE);
    if (traceState === ID_OK) w.hex(buf, traceStart, 16);
    w.bytes(T_SPAN_ID);
    if (spanState === ID_OK) w.hex(buf, spanStart, 8);
    w.bytes(T_TRACE_STATE);
    w.jsonStringUtf8(buf, tsStart, tsEnd);
    w.bytes(T_FLAGS);
    w.uint(flags);
    w.bytes(T_ATTRS);
    attributes(r, s, e, 34);
    w.bytes(T_DROPPED_ATTRS);
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

/** Writes the line of span r[start, end); false (line to be discarded) when the span is rejected. */
function span(r: WireReader, start: number, end: number, rej: Rejections): boolean {
  const buf = r.buf;
  tooDeep = false;
  scanSpan(r, start, end);
  const { traceStart, traceState, spanStart, spanState, parentStart, parentState, tsStart, tsEnd, nameStart, nameEnd, kind, startLo, startHi, endLo, endHi, droppedAttrs, droppedEvents, droppedLinks, statusCode, smStart, smEnd, flags, hasEvents, hasLinks } = SPAN;

  // The header, whose pieces the document repeats.
  const out = lines;
  out.bytes(T_HEAD_START);
  const traceHex = out.pos;
  if (traceState === ID_OK) out.hex(buf, traceStart, 16);
  const traceHexEnd = out.pos;
  out.bytes(T_QCQ);
  const spanHex = out.pos;
  if (spanState === ID_OK) out.hex(buf, spanStart, 8);
  const spanHexEnd = out.pos;
  out.bytes(T_QCQ);
  const parentHex = out.pos;
  if (parentState === ID_OK) out.hex(buf, parentStart, 8);
  const parentHexEnd = out.pos;
  out.bytes(T_QC);
  out.bytes(group.buf, G.resourceEnd, G.serviceEnd);
  out.byte(0x2c);
  const nameJson = out.pos;
  out.jsonStringUtf8(buf, nameStart, nameEnd);
  const nameJsonEnd = out.pos;
  out.bytes(T_CQ);
  const startText = out.pos;
  out.uint64(startLo, startHi);
  const startTextEnd = out.pos;
  out.bytes(T_QCQ);
  const endText = out.pos;
  out.uint64(endLo, endHi);
  const endTextEnd = out.pos;
  out.bytes(T_QCQ);
  const durText = out.pos;
  if (endHi > startHi || (endHi === startHi && endLo > startLo)) {
    const lo = endLo - startLo;
    out.uint64(lo >>> 0, endHi - startHi - (lo < 0 ? 1 : 0));
  } else out.byte(48);
  const durTextEnd = out.pos;
  out.bytes(T_QC);
  out.int(statusCode);
  out.byte(0x2c);
  out.int(kind);

  resourceAndScope();
  out.bytes(T_TRACE_ID);
  out.repeat(traceHex, traceHexEnd);
  out.bytes(T_SPAN_ID);
  out.repeat(spanHex, spanHexEnd);
  out.bytes(T_PARENT);
  out.repeat(parentHex, parentHexEnd);
  out.bytes(T_TRACE_STATE);
  out.jsonStringUtf8(buf, tsStart, tsEnd);
  out.bytes(T_FLAGS);
  out.uint(flags);
  out.bytes(T_NAME);
  out.repeat(nameJson, nameJsonEnd);
  out.bytes(T_KIND);
  out.int(kind);
  out.bytes(T_START);
  out.repeat(startText, startTextEnd);
  out.bytes(T_END);
  out.repeat(endText, endTextEnd);
  out.bytes(T_DURATION);
  out.repeat(durText, durTextEnd);
  out.bytes(T_STATUS);
  out.int(statusCode);
  out.bytes(T_STATUS_MESSAGE);
  out.jsonStringUtf8(buf, smStart, smEnd);
  out.bytes(T_SERVICE);
  out.bytes(group.buf, G.resourceEnd, G.serviceEnd);
  out.bytes(T_ATTRS);
  attributes(r, start, end, 74);
  out.bytes(T_DROPPED_ATTRS);
  out.uint(droppedAttrs);
  out.bytes(T_EVENTS);
  const eventTimesStorable = hasEvents ? events(r, start, end) : true;
  out.bytes(T_DROPPED_EVENTS);
  out.uint(droppedEvents);
  out.bytes(T_LINKS);
  const linksGood = hasLinks ? links(r, start, end) : true;
  out.bytes(T_DROPPED_LINKS);
  out.uint(droppedLinks);
  out.bytes(T_LINE_END);

  // The row path's checks, in its order.
  if (traceState !== ID_OK) return reject(rej, REASON_TRACE_ID);
  if (spanState !== ID_OK) return reject(rej, REASON_SPAN_ID);
  if (parentState === ID_BAD) return reject(rej, REASON_PARENT_SPAN_ID);
  if (!linksGood) return reject(rej, REASON_LINK_ID);
  if (tooDeep) return reject(rej, REASON_TOO_DEEP);
  if (startHi >= MAX_TIME_HI || endHi >= MAX_TIME_HI || !eventTimesStorable) return reject(rej, REASON_TIME);
  return true;
}

function reject(rej: Rejections, reason: number): false {
  rej.add(reason);
  return false;
}

const SPANS = walkOf(span, 'ExportTraceServiceRequest', 'ResourceSpans', 'ScopeSpans');

// ---------------------------------------------------------------------------------------------
// Logs.

/** Writes the line of log record r[start, end); false (line to be discarded) when it is rejected. */
function logRecord(r: WireReader, start: number, end: number, rej: Rejections): boolean {
  const buf = r.buf;
  tooDeep = false;
  scanLog(r, start, end);
  const { timeLo, timeHi, obsLo, obsHi, traceStart, traceState, spanStart, spanState, flags, severity, stStart, stEnd, enStart, enEnd, dropped } = LOG;

  const out = lines;
  // Header: the record's time, or its observed time when unset.
  out.bytes(T_HEAD_START);
  if (timeLo !== 0 || timeHi !== 0) out.uint64(timeLo, timeHi);
  else out.uint64(obsLo, obsHi);
  out.bytes(T_QCQ);
  // Empty, all-zero or malformed ids mean "not linked": the record is kept.
  const traceHex = out.pos;
  if (traceState === ID_OK) out.hex(buf, traceStart, 16);
  const traceHexEnd = out.pos;
  out.bytes(T_QC);
  out.bytes(group.buf, G.resourceEnd, G.serviceEnd);
  out.byte(0x2c);
  out.int(severity);
  out.bytes(T_DOC_RESOURCE);
  out.bytes(group.buf, 0, G.resourceEnd);
  out.bytes(T_DOC_SCOPE);
  out.bytes(group.buf, G.serviceEnd, G.scopeEnd);
  out.bytes(T_TIME);
  out.uint64(timeLo, timeHi);
  out.bytes(T_OBSERVED);
  out.uint64(obsLo, obsHi);
  out.bytes(T_LOG_TRACE);
  out.repeat(traceHex, traceHexEnd);
  out.bytes(T_SPAN_ID_LOG);
  if (spanState === ID_OK) out.hex(buf, spanStart, 8);
  out.bytes(T_FLAGS_LOG);
  out.uint(flags);
  out.bytes(T_SEVERITY);
  out.int(severity);
  out.bytes(T_SEVERITY_TEXT);
  out.jsonStringUtf8(buf, stStart, stEnd);
  out.bytes(T_BODY);
  const mark = out.pos;
  let body = false;
  r.pos = start;
  for (let e = nextField(r, end, 42); e >= 0; e = nextField(r, end, 42)) {
    out.pos = mark;
    anyValue(r, e, 0);
    body = true;
  }
  if (!body) out.bytes(T_EMPTY);
  out.bytes(T_EVENT_NAME_LOG);
  out.jsonStringUtf8(buf, enStart, enEnd);
  out.bytes(T_SERVICE);
  out.bytes(group.buf, G.resourceEnd, G.serviceEnd);
  out.bytes(T_ATTRS);
  attributes(r, start, end, 50);
  out.bytes(T_DROPPED_ATTRS);
  out.uint(dropped);
  out.bytes(T_LINE_END);

  if (tooDeep) return reject(rej, REASON_TOO_DEEP);
  if (timeHi >= MAX_TIME_HI || obsHi >= MAX_TIME_HI) return reject(rej, REASON_TIME);
  return true;
}

const LOGS = walkOf(logRecord, 'ExportLogsServiceRequest', 'ResourceLogs', 'ScopeLogs');

// ---------------------------------------------------------------------------------------------

function transcode(bytes: Uint8Array, limits: DecodeLimits, walk: Walk, singular: string, plural: string, rowPath: (b: Uint8Array, l: DecodeLimits) => unknown): EncodedRequest {
  maxDepth = limits.maxNestingDepth;
  const rej = new Rejections(limits.maxNestingDepth);
  accepted = 0;
  lines.pos = 0;
  w = lines;
  try {
    walkOrRowPathError(bytes, limits, walk, rej, rowPath);
  } finally {
    w = lines;
  }
  const chunks = accepted === 0 ? [] : [{ partition: 0, rows: accepted, data: lines.take() }];
  lines.shrink();
  return { accepted, rejected: rej.total, errorMessage: rej.message(singular, plural), chunks };
}

/** An ExportTraceServiceRequest as memory/SQLite row lines, the bytes the row path writes. Throws DecodeError as decodeTracesProto does. */
export function transcodeTracesProto(bytes: Uint8Array, limits: DecodeLimits): EncodedRequest {
  return transcode(bytes, limits, SPANS, 'span', 'spans', decodeTracesProto);
}

/** An ExportLogsServiceRequest as memory/SQLite row lines, the bytes the row path writes. Throws DecodeError as decodeLogsProto does. */
export function transcodeLogsProto(bytes: Uint8Array, limits: DecodeLimits): EncodedRequest {
  return transcode(bytes, limits, LOGS, 'log record', 'log records', decodeLogsProto);
}
