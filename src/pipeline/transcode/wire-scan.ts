// What every protobuf transcoder shares: the walk over the request, the scans of each message's
// scalar fields (ranges, id states, times, counts) into one result object per message kind, with
// otlp-proto.ts's known field masks (a known field with another wire type is an error, an unknown
// one is skipped), id validation on raw bytes, and fixed64 times read as two 32-bit halves (no
// BigInt). The transcoders only write their format.
import { MAX_TIME_NS, REASON_LINK_ID, REASON_PARENT_SPAN_ID, REASON_SPAN_ID, REASON_TIME, REASON_TOO_DEEP, REASON_TRACE_ID, type DecodeLimits, type Rejections } from '../decode/common.ts';
import { KNOWN_ANYVALUE, KNOWN_EVENT, KNOWN_KEYVALUE, KNOWN_LINK, KNOWN_LOG, KNOWN_REQUEST, KNOWN_RESOURCE, KNOWN_RESOURCE_ITEMS, KNOWN_SCOPE, KNOWN_SCOPE_ITEMS, KNOWN_SPAN, KNOWN_STATUS } from '../decode/otlp-proto.ts';
import { checkEnd, DecodeError, unknownField, WireReader } from '../decode/wire.ts';

/** The latest storable time's high 32 bits + 1: a fixed64 time is storable when hi < this. */
export const MAX_TIME_HI = Number(MAX_TIME_NS >> 32n) + 1;

const ID_EMPTY = 0;
export const ID_OK = 1;
export const ID_BAD = 2;

/** '' (empty or all zero), ok, or bad (wrong length) for the id in buf[start, end). */
function idState(buf: Uint8Array, start: number, end: number, size: number): number {
  if (end === start) return ID_EMPTY;
  if (end - start !== size) return ID_BAD;
  let any = 0;
  for (let i = start; i < end; i++) any |= buf[i]!;
  return any === 0 ? ID_EMPTY : ID_OK;
}

/** Where the id read by the last idField lies: r.buf[idStart, idEnd). */
let idStart = 0;
let idEnd = 0;

/** Reads the length-delimited id at r.pos (its tag already read) into idStart / idEnd; returns its idState. */
function idField(r: WireReader, size: number): number {
  idEnd = r.lenEnd();
  idStart = r.pos;
  r.pos = idEnd;
  return idState(r.buf, idStart, idEnd, size);
}

/**
 * The halves of the last fixed64 read by fixed64(): [lo, hi]. A typed array, not two module
 * variables: a low half past 2^30 stored into a variable is a new heap number on every read.
 */
const FIXED = new Uint32Array(2);

/** Reads a fixed64 at r.pos into FIXED. */
export function fixed64(r: WireReader): void {
  if (r.pos + 8 > r.len) r.fixed64(); // throws the reader's own truncation error
  FIXED[0] = r.view.getUint32(r.pos, true);
  FIXED[1] = r.view.getUint32(r.pos + 4, true);
  r.pos += 8;
}

// ---------------------------------------------------------------------------------------------
// The scalar pass over a span or a log record: every field read (and validated) in wire order,
// the last occurrence kept, repeated parts only skipped (each transcoder writes them in its own
// passes). Results go to one object per worker, not one per item: scans are synchronous.

/** The span fields read by the last scanSpan: wire ranges, id states, times as halves, counts. */
export const SPAN = {
  traceStart: 0,
  traceState: ID_EMPTY,
  spanStart: 0,
  spanState: ID_EMPTY,
  parentStart: 0,
  parentState: ID_EMPTY,
  tsStart: 0,
  tsEnd: 0,
  nameStart: 0,
  nameEnd: 0,
  kind: 0,
  startLo: 0,
  startHi: 0,
  endLo: 0,
  endHi: 0,
  droppedAttrs: 0,
  droppedEvents: 0,
  droppedLinks: 0,
  statusCode: 0,
  smStart: 0,
  smEnd: 0,
  flags: 0,
  hasEvents: false,
  hasLinks: false,
};

/** Places of fields in the request, in wire order: r.buf[starts[i], ends[i]) for i < n. */
export class FieldRanges {
  starts = new Int32Array(64);
  ends = new Int32Array(64);
  n = 0;

  /** Takes the places of the fields with `tag` of message r[start, end) (leaves r at end). */
  collect(r: WireReader, start: number, end: number, tag: number): this {
    this.n = 0;
    r.pos = start;
    for (let e = nextField(r, end, tag); e >= 0; e = nextField(r, end, tag)) {
      this.push(r.pos, e);
      r.pos = e;
    }
    return this;
  }

  push(start: number, end: number): void {
    const n = this.n;
    if (n === this.starts.length) {
      this.starts = grown(this.starts, n);
      this.ends = grown(this.ends, n);
    }
    this.starts[n] = start;
    this.ends[n] = end;
    this.n = n + 1;
  }
}

/** The attributes (KeyValue fields) and the events of the span scanSpan last read. */
export const SPAN_ATTRS = new FieldRanges();
export const SPAN_EVENTS = new FieldRanges();

/** Reads the scalar fields of span r[start, end) into SPAN, its attributes' and events' places into SPAN_ATTRS and SPAN_EVENTS; throws DecodeError where the row decoder would. */
export function scanSpan(r: WireReader, start: number, end: number): void {
  let traceStart = 0;
  let traceState = ID_EMPTY;
  let spanStart = 0;
  let spanState = ID_EMPTY;
  let parentStart = 0;
  let parentState = ID_EMPTY;
  let tsStart = 0;
  let tsEnd = 0;
  let nameStart = 0;
  let nameEnd = 0;
  let kind = 0;
  let startLo = 0;
  let startHi = 0;
  let endLo = 0;
  let endHi = 0;
  let droppedAttrs = 0;
  let droppedEvents = 0;
  let droppedLinks = 0;
  let statusCode = 0;
  let smStart = 0;
  let smEnd = 0;
  let flags = 0;
  // Most spans have no links and many no events: their passes are skipped.
  let hasEvents = false;
  let hasLinks = false;
  SPAN_ATTRS.n = 0;
  SPAN_EVENTS.n = 0;
  r.pos = start;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10:
        traceState = idField(r, 16);
        traceStart = idStart;
        break;
      case 18:
        spanState = idField(r, 8);
        spanStart = idStart;
        break;
      case 26:
        tsEnd = r.lenEnd();
        tsStart = r.pos;
        r.pos = tsEnd;
        break;
      case 34:
        // parent_span_id: empty or all zero means a root span, as in the row decoder
        parentState = idField(r, 8);
        parentStart = idStart;
        break;
      case 42:
        nameEnd = r.lenEnd();
        nameStart = r.pos;
        r.pos = nameEnd;
        break;
      case 48:
        kind = r.int32();
        break;
      case 57:
        fixed64(r);
        startLo = FIXED[0]!;
        startHi = FIXED[1]!;
        break;
      case 65:
        fixed64(r);
        endLo = FIXED[0]!;
        endHi = FIXED[1]!;
        break;
      case 74: {
        const e = r.lenEnd();
        SPAN_ATTRS.push(r.pos, e);
        r.pos = e;
        break;
      }
      case 90: {
        const e = r.lenEnd();
        SPAN_EVENTS.push(r.pos, e);
        r.pos = e;
        hasEvents = true;
        break;
      }
      case 106:
        r.pos = r.lenEnd();
        hasLinks = true;
        break;
      case 80:
        droppedAttrs = r.uint32();
        break;
      case 96:
        droppedEvents = r.uint32();
        break;
      case 112:
        droppedLinks = r.uint32();
        break;
      case 122: {
        const e = r.lenEnd();
        while (r.pos < e) {
          const t = r.tag();
          if (t === 18) {
            smEnd = r.lenEnd();
            smStart = r.pos;
            r.pos = smEnd;
          } else if (t === 24) statusCode = r.int32();
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
  SPAN.traceStart = traceStart;
  SPAN.traceState = traceState;
  SPAN.spanStart = spanStart;
  SPAN.spanState = spanState;
  SPAN.parentStart = parentStart;
  SPAN.parentState = parentState;
  SPAN.tsStart = tsStart;
  SPAN.tsEnd = tsEnd;
  SPAN.nameStart = nameStart;
  SPAN.nameEnd = nameEnd;
  SPAN.kind = kind;
  SPAN.startLo = startLo;
  SPAN.startHi = startHi;
  SPAN.endLo = endLo;
  SPAN.endHi = endHi;
  SPAN.droppedAttrs = droppedAttrs;
  SPAN.droppedEvents = droppedEvents;
  SPAN.droppedLinks = droppedLinks;
  SPAN.statusCode = statusCode;
  SPAN.smStart = smStart;
  SPAN.smEnd = smEnd;
  SPAN.flags = flags;
  SPAN.hasEvents = hasEvents;
  SPAN.hasLinks = hasLinks;
}

/** The log record fields read by the last scanLog. */
export const LOG = {
  timeLo: 0,
  timeHi: 0,
  obsLo: 0,
  obsHi: 0,
  traceStart: 0,
  traceState: ID_EMPTY,
  spanStart: 0,
  spanState: ID_EMPTY,
  flags: 0,
  severity: 0,
  stStart: 0,
  stEnd: 0,
  enStart: 0,
  enEnd: 0,
  dropped: 0,
};

/** The bodies (AnyValue fields; the last one counts) and attributes of the log record scanLog last read. */
export const LOG_BODIES = new FieldRanges();
export const LOG_ATTRS = new FieldRanges();

/** Reads the scalar fields of log record r[start, end) into LOG, its bodies' and attributes' places into LOG_BODIES and LOG_ATTRS; throws DecodeError where the row decoder would. */
export function scanLog(r: WireReader, start: number, end: number): void {
  let timeLo = 0;
  let timeHi = 0;
  let obsLo = 0;
  let obsHi = 0;
  let traceStart = 0;
  let traceState = ID_EMPTY;
  let spanStart = 0;
  let spanState = ID_EMPTY;
  let flags = 0;
  let severity = 0;
  let stStart = 0;
  let stEnd = 0;
  let enStart = 0;
  let enEnd = 0;
  let dropped = 0;
  LOG_BODIES.n = 0;
  LOG_ATTRS.n = 0;
  r.pos = start;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 9:
        fixed64(r);
        timeLo = FIXED[0]!;
        timeHi = FIXED[1]!;
        break;
      case 16:
        severity = r.int32();
        break;
      case 26:
        stEnd = r.lenEnd();
        stStart = r.pos;
        r.pos = stEnd;
        break;
      case 42: {
        const e = r.lenEnd();
        LOG_BODIES.push(r.pos, e);
        r.pos = e;
        break;
      }
      case 50: {
        const e = r.lenEnd();
        LOG_ATTRS.push(r.pos, e);
        r.pos = e;
        break;
      }
      case 56:
        dropped = r.uint32();
        break;
      case 69:
        flags = r.fixed32();
        break;
      case 74:
        traceState = idField(r, 16);
        traceStart = idStart;
        break;
      case 82:
        spanState = idField(r, 8);
        spanStart = idStart;
        break;
      case 89:
        fixed64(r);
        obsLo = FIXED[0]!;
        obsHi = FIXED[1]!;
        break;
      case 98:
        enEnd = r.lenEnd();
        enStart = r.pos;
        r.pos = enEnd;
        break;
      default:
        unknownField(r, tag, KNOWN_LOG, 'LogRecord');
    }
  }
  checkEnd(r, end, 'LogRecord');
  LOG.timeLo = timeLo;
  LOG.timeHi = timeHi;
  LOG.obsLo = obsLo;
  LOG.obsHi = obsHi;
  LOG.traceStart = traceStart;
  LOG.traceState = traceState;
  LOG.spanStart = spanStart;
  LOG.spanState = spanState;
  LOG.flags = flags;
  LOG.severity = severity;
  LOG.stStart = stStart;
  LOG.stEnd = stEnd;
  LOG.enStart = enStart;
  LOG.enEnd = enEnd;
  LOG.dropped = dropped;
}

/** Moves r to the next field `tag` before end and returns that field's end; -1 (r at end) when there is none. */
export function nextField(r: WireReader, end: number, tag: number): number {
  while (r.pos < end) {
    const t = r.tag();
    if (t === tag) return r.lenEnd();
    r.skip(t);
  }
  return -1;
}

/** The event fields read by the last scanEvent. */
export const EVENT = { lo: 0, hi: 0, nameStart: 0, nameEnd: 0, dropped: 0 };

/** Reads the scalar fields of the Span.Event at r.pos (ending at end) into EVENT; attributes are skipped. */
export function scanEvent(r: WireReader, end: number): void {
  let lo = 0;
  let hi = 0;
  let nameStart = 0;
  let nameEnd = 0;
  let dropped = 0;
  while (r.pos < end) {
    const t = r.tag();
    switch (t) {
      case 9:
        fixed64(r);
        lo = FIXED[0]!;
        hi = FIXED[1]!;
        break;
      case 18:
        nameEnd = r.lenEnd();
        nameStart = r.pos;
        r.pos = nameEnd;
        break;
      case 26:
        r.pos = r.lenEnd();
        break;
      case 32:
        dropped = r.uint32();
        break;
      default:
        unknownField(r, t, KNOWN_EVENT, 'Span.Event');
    }
  }
  checkEnd(r, end, 'Span.Event');
  EVENT.lo = lo;
  EVENT.hi = hi;
  EVENT.nameStart = nameStart;
  EVENT.nameEnd = nameEnd;
  EVENT.dropped = dropped;
}

/** The link fields read by the last scanLink. */
export const LINK = { traceStart: 0, traceState: ID_EMPTY, spanStart: 0, spanState: ID_EMPTY, tsStart: 0, tsEnd: 0, flags: 0, dropped: 0 };

/** Reads the scalar fields of the Span.Link at r.pos (ending at end) into LINK; attributes are skipped. */
export function scanLink(r: WireReader, end: number): void {
  let traceStart = 0;
  let traceState = ID_EMPTY;
  let spanStart = 0;
  let spanState = ID_EMPTY;
  let tsStart = 0;
  let tsEnd = 0;
  let flags = 0;
  let dropped = 0;
  while (r.pos < end) {
    const t = r.tag();
    switch (t) {
      case 10:
        traceState = idField(r, 16);
        traceStart = idStart;
        break;
      case 18:
        spanState = idField(r, 8);
        spanStart = idStart;
        break;
      case 26:
        tsEnd = r.lenEnd();
        tsStart = r.pos;
        r.pos = tsEnd;
        break;
      case 34:
        r.pos = r.lenEnd();
        break;
      case 40:
        dropped = r.uint32();
        break;
      case 53:
        flags = r.fixed32();
        break;
      default:
        unknownField(r, t, KNOWN_LINK, 'Span.Link');
    }
  }
  checkEnd(r, end, 'Span.Link');
  LINK.traceStart = traceStart;
  LINK.traceState = traceState;
  LINK.spanStart = spanStart;
  LINK.spanState = spanState;
  LINK.tsStart = tsStart;
  LINK.tsEnd = tsEnd;
  LINK.flags = flags;
  LINK.dropped = dropped;
}

// ---------------------------------------------------------------------------------------------
// Attribute lists as wire ranges: KeyValue messages found by a scan, rendered afterwards.

/** a, or a copy at least twice as long when index n does not fit in it (scratch arrays grow, never shrink). */
export function grown(a: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  if (n < a.length) return a;
  const b = new Int32Array(Math.max(a.length * 2, n + 1));
  b.set(a);
  return b;
}

/** The attributes (KeyValue messages) of the resource or scope the last scanGroup read. */
export const GROUP_ATTRS = new FieldRanges();

/**
 * The keys of one list at a time by a small hash (their length and three of their bytes), for a
 * duplicate check: keys of different stamps differ, so only a key whose stamp an earlier key of
 * the list set needs comparing.
 */
export class KeyStamps {
  private readonly stamps = new Int32Array(256);
  /**
   * The list's generation: a stamp holding it is the list's. It wraps in 32 bits (as the stamps
   * store it), where a stamp left from 2^32 lists before only costs a comparison.
   */
  private gen: number;

  constructor(generation = 0) {
    this.gen = generation;
  }

  /** Starts a list. */
  begin(): void {
    this.gen = (this.gen + 1) | 0;
  }

  /** Stamps the key buf[start, end); returns whether a key of this list had the same stamp. */
  seen(buf: Uint8Array, start: number, end: number): boolean {
    const len = end - start;
    const h = len === 0 ? 0 : (len * 131 + buf[start]! * 31 + buf[end - 1]! * 7 + buf[start + (len >>> 1)]!) & 255;
    if (this.stamps[h] === this.gen) return true;
    this.stamps[h] = this.gen;
    return false;
  }
}

/** Whether buf[a, a + len) and buf[b, b + len) hold the same bytes (two keys of one message). */
export function sameRange(buf: Uint8Array, a: number, b: number, len: number): boolean {
  let i = 0;
  while (i < len && buf[a + i] === buf[b + i]) i++;
  return i === len;
}

/** The strings of the array stringElements last accepted, in order. */
export const STRING_ELEMENTS = new FieldRanges();

/**
 * Whether the ArrayValue r.buf[start, end) is an array of strings, each element one string_value
 * field and nothing else (the common array attribute), its strings' places then in
 * STRING_ELEMENTS; false for any other shape, to be read by the general path. Leaves r at end
 * (true) or start (false).
 */
export function stringElements(r: WireReader, start: number, end: number): boolean {
  const els = STRING_ELEMENTS;
  els.n = 0;
  r.pos = start;
  while (r.pos < end) {
    if (r.tag() !== 10) return rewound(r, start);
    const ee = r.lenEnd();
    if (r.pos >= ee || r.tag() !== 10) return rewound(r, start);
    const se = r.lenEnd();
    if (se !== ee) return rewound(r, start);
    els.push(r.pos, se);
    r.pos = se;
  }
  // An element that runs past the array's end is the general path's to refuse.
  return r.pos === end || rewound(r, start);
}

/** Rewinds r to start for the general path (which reads, and validates, the array again). */
function rewound(r: WireReader, start: number): false {
  r.pos = start;
  return false;
}

/** The KeyValue fields read by the last scanKeyValue: the key, how many value fields, the last one. */
export const KV = { keyStart: 0, keyEnd: 0, values: 0, valueStart: 0, valueEnd: 0 };

/**
 * Whether the KeyValue buf[p, end) is in the layout SDKs write: the key, then the value, each with
 * a one-byte length, filling it; if so its places are in KV (nothing else is read: bytes past
 * `end` may be, and the checks then fail).
 */
export function keyValueInPlace(buf: Uint8Array, p: number, end: number): boolean {
  if (buf[p] !== 10 || buf[p + 1]! >= 0x80) return false;
  const ke = p + 2 + buf[p + 1]!;
  if (buf[ke] !== 18 || buf[ke + 1]! >= 0x80 || ke + 2 + buf[ke + 1]! !== end) return false;
  KV.keyStart = p + 2;
  KV.keyEnd = ke;
  KV.values = 1;
  KV.valueStart = ke + 2;
  KV.valueEnd = end;
  return true;
}

/**
 * The field of the AnyValue buf[v, end) when it is in the layout SDKs write: one field filling it,
 * a string (10) with a one-byte length, a bool (16) or int (24) of one byte, or a double (33);
 * otherwise 0, having read nothing past what fails (an empty value, v = end, fails every check:
 * bytes past `end` may be read).
 */
export function scalarValueInPlace(buf: Uint8Array, v: number, end: number): number {
  const t = buf[v];
  if (t === 10) return buf[v + 1]! < 0x80 && v + 2 + buf[v + 1]! === end ? t : 0;
  if (t === 16 || t === 24) return v + 2 === end && buf[v + 1]! < 0x80 ? t : 0;
  if (t === 33) return v + 9 === end ? t : 0;
  return 0;
}

/** Reads the KeyValue at r.pos (ending at end) into KV, leaving r at end; its values are only located. */
export function scanKeyValue(r: WireReader, end: number): void {
  if (keyValueInPlace(r.buf, r.pos, end)) {
    r.pos = end;
    return;
  }
  let keyStart = 0;
  let keyEnd = 0;
  let values = 0;
  let valueStart = 0;
  let valueEnd = 0;
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === 10) {
      keyEnd = r.lenEnd();
      keyStart = r.pos;
      r.pos = keyEnd;
    } else if (tag === 18) {
      valueEnd = r.lenEnd();
      valueStart = r.pos;
      r.pos = valueEnd;
      values++;
    } else unknownField(r, tag, KNOWN_KEYVALUE, 'KeyValue');
  }
  checkEnd(r, end, 'KeyValue');
  KV.keyStart = keyStart;
  KV.keyEnd = keyEnd;
  KV.values = values;
  KV.valueStart = valueStart;
  KV.valueEnd = valueEnd;
}

/** How an AnyValue given again merges into the one before it (valueGivenAgain). */
const VALUE_KEPT = 0;
const VALUE_REPLACED = 1;
const VALUE_MERGED = 2;

/**
 * What the AnyValue r.buf[start, end), given again after the one at r.buf[prevStart, prevEnd) (a
 * KeyValue's value field or a LogRecord's body given twice), does to it. Protobuf merges a
 * message field given twice, and so a oneof's message member: one that sets no field of the
 * oneof (empty, or unknown fields only) leaves the earlier value (VALUE_KEPT: r is left at end),
 * a list (array_value, kvlist_value) that follows a list of its own kind adds to it
 * (VALUE_MERGED: the row path writes that), anything else replaces it (VALUE_REPLACED: r is left
 * anywhere, the caller reads the value again). Its unknown fields are skipped (and so validated);
 * the earlier value was validated when it was read.
 */
function valueGivenAgain(r: WireReader, start: number, end: number, prevStart: number, prevEnd: number): number {
  const first = oneofTag(r, start, end, true);
  if (first === 0) {
    checkEnd(r, end, 'AnyValue');
    return VALUE_KEPT;
  }
  if (first !== 42 && first !== 50) return VALUE_REPLACED;
  return oneofTag(r, prevStart, prevEnd, false) === first ? VALUE_MERGED : VALUE_REPLACED;
}

/**
 * Reads the AnyValues of a field given more than once, in order, merged as protobuf merges them
 * (valueGivenAgain): the KeyValue value fields (18) in r.buf[start, end) when `ranges` is
 * undefined, else the ranges (a log record's bodies). `write(end)` is called at each one that
 * replaces the value before it, with r at its start (the caller rewinds its output and writes it,
 * leaving r at end); one that sets nothing is skipped; a list that adds to a list before it throws
 * `merged` (the row path writes that).
 */
export function eachValueGivenAgain(r: WireReader, start: number, end: number, ranges: FieldRanges | undefined, write: (end: number) => void, merged: unknown): void {
  let prevStart = -1;
  let prevEnd = -1;
  let i = 0;
  r.pos = start;
  for (;;) {
    let s: number;
    let e: number;
    if (ranges) {
      if (i === ranges.n) return;
      s = ranges.starts[i]!;
      e = ranges.ends[i++]!;
    } else {
      e = nextField(r, end, 18);
      if (e < 0) return;
      s = r.pos;
    }
    if (prevStart >= 0) {
      const how = valueGivenAgain(r, s, e, prevStart, prevEnd);
      if (how === VALUE_KEPT) continue;
      if (how === VALUE_MERGED) throw merged;
    }
    prevStart = s;
    prevEnd = e;
    r.pos = s;
    write(e);
  }
}

/** The tag of the first (`first`) or last oneof field of the AnyValue r.buf[start, end): a known field, whatever its wire type; 0 when it has none. */
function oneofTag(r: WireReader, start: number, end: number, first: boolean): number {
  r.pos = start;
  let last = 0;
  while (r.pos < end) {
    const tag = r.tag();
    const field = tag >>> 3;
    if (field < 32 && ((KNOWN_ANYVALUE >>> field) & 1) !== 0) {
      if (first) return tag;
      last = tag;
    }
    r.skip(tag);
  }
  return last;
}

/** The resource or scope fields read by the last scanGroup (name and version for a scope only). */
export const GROUP = { dropped: 0, schemaStart: 0, schemaEnd: 0, nameStart: 0, nameEnd: 0, versionStart: 0, versionEnd: 0 };

/**
 * Reads a ResourceSpans / ResourceLogs (scope false) or ScopeSpans / ScopeLogs (scope true)
 * r[start, end): its Resource or InstrumentationScope (all occurrences merged) into GROUP, their
 * attributes into the KeyValue list; the items are skipped.
 */
export function scanGroup(r: WireReader, start: number, end: number, groupMessage: string, scope: boolean): void {
  let dropped = 0;
  let schemaStart = 0;
  let schemaEnd = 0;
  let nameStart = 0;
  let nameEnd = 0;
  let versionStart = 0;
  let versionEnd = 0;
  // Resource.attributes is field 1, InstrumentationScope.attributes field 3.
  const attrTag = scope ? 26 : 10;
  const droppedTag = scope ? 32 : 16;
  const known = scope ? KNOWN_SCOPE : KNOWN_RESOURCE;
  const message = scope ? 'InstrumentationScope' : 'Resource';
  GROUP_ATTRS.n = 0;
  r.pos = start;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10: {
        const e = r.lenEnd();
        while (r.pos < e) {
          const t = r.tag();
          if (t === attrTag) {
            const ve = r.lenEnd();
            GROUP_ATTRS.push(r.pos, ve);
            r.pos = ve;
          } else if (t === droppedTag) dropped = r.uint32();
          else if (scope && t === 10) {
            nameEnd = r.lenEnd();
            nameStart = r.pos;
            r.pos = nameEnd;
          } else if (scope && t === 18) {
            versionEnd = r.lenEnd();
            versionStart = r.pos;
            r.pos = versionEnd;
          } else if (!scope && t === 26) r.skip(t);
          else unknownField(r, t, known, message);
        }
        checkEnd(r, e, message);
        break;
      }
      case 18:
        r.pos = r.lenEnd();
        break;
      case 26:
        schemaEnd = r.lenEnd();
        schemaStart = r.pos;
        r.pos = schemaEnd;
        break;
      default:
        unknownField(r, tag, scope ? KNOWN_SCOPE_ITEMS : KNOWN_RESOURCE_ITEMS, groupMessage);
    }
  }
  checkEnd(r, end, groupMessage);
  GROUP.dropped = dropped;
  GROUP.schemaStart = schemaStart;
  GROUP.schemaEnd = schemaEnd;
  GROUP.nameStart = nameStart;
  GROUP.nameEnd = nameEnd;
  GROUP.versionStart = versionStart;
  GROUP.versionEnd = versionEnd;
}

/**
 * Whether the span scanSpan just read is kept, as the row decoder decides; if not, its reason is
 * counted in rej (the first that applies, in the row decoder's order). The caller's own passes
 * say whether every link had good ids, whether a value lay deeper than the limit, and whether
 * every event's time is storable.
 */
export function keepSpan(rej: Rejections, linksGood: boolean, tooDeep: boolean, eventTimesStorable: boolean): boolean {
  const reason =
    SPAN.traceState !== ID_OK ? REASON_TRACE_ID
    : SPAN.spanState !== ID_OK ? REASON_SPAN_ID
    : SPAN.parentState === ID_BAD ? REASON_PARENT_SPAN_ID
    : !linksGood ? REASON_LINK_ID
    : tooDeep ? REASON_TOO_DEEP
    : SPAN.startHi >= MAX_TIME_HI || SPAN.endHi >= MAX_TIME_HI || !eventTimesStorable ? REASON_TIME
    : -1;
  if (reason < 0) return true;
  rej.add(reason);
  return false;
}

// ---------------------------------------------------------------------------------------------
// The request walk: resource groups, scope groups, items; each transcoder writes its format.

/** What a transcoder does at each level of an export request. */
export interface Walk {
  requestMessage: string;
  resourceMessage: string;
  scopeMessage: string;
  /** Renders the resource scanGroup just read (GROUP and the KeyValue list) of ResourceSpans / ResourceLogs r[start, end). */
  resource(r: WireReader, start: number, end: number): void;
  /** Renders the scope scanGroup just read, of ScopeSpans / ScopeLogs r[start, end). */
  scope(r: WireReader, start: number, end: number): void;
  /** Writes item r[start, end) (a span or a log record), or counts it in rej. */
  item(r: WireReader, start: number, end: number, rej: Rejections): void;
}

/** Walks the export request in r: each resource and scope scanned and rendered once, then its items. */
export function walkRequest(r: WireReader, walk: Walk, rej: Rejections): void {
  while (r.pos < r.len) {
    const tag = r.tag();
    if (tag !== 10) {
      unknownField(r, tag, KNOWN_REQUEST, walk.requestMessage);
      continue;
    }
    const rsEnd = r.lenEnd();
    const rsStart = r.pos;
    scanGroup(r, rsStart, rsEnd, walk.resourceMessage, false);
    walk.resource(r, rsStart, rsEnd);
    r.pos = rsStart;
    for (let ssEnd = nextField(r, rsEnd, 18); ssEnd >= 0; ssEnd = nextField(r, rsEnd, 18)) {
      const ssStart = r.pos;
      scanGroup(r, ssStart, ssEnd, walk.scopeMessage, true);
      walk.scope(r, ssStart, ssEnd);
      r.pos = ssStart;
      for (let itemEnd = nextField(r, ssEnd, 18); itemEnd >= 0; itemEnd = nextField(r, ssEnd, 18)) {
        walk.item(r, r.pos, itemEnd, rej);
        r.pos = itemEnd;
      }
      r.pos = ssEnd;
    }
    r.pos = rsEnd;
  }
}

/**
 * Walks the export request in bytes. A request refused whole is decoded again by the row decoder
 * (rowPath), which reads in wire order, so the DecodeError thrown is the one it gives, naming the
 * first malformation, whichever one a transcoder's pass happened to meet first.
 */
export function walkOrRowPathError(bytes: Uint8Array, limits: DecodeLimits, walk: Walk, rej: Rejections, rowPath: (b: Uint8Array, l: DecodeLimits) => unknown): void {
  try {
    walkRequest(new WireReader(bytes), walk, rej);
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    rowPath(bytes, limits);
    throw err;
  }
}
