// What every protobuf transcoder shares: the known field numbers of each OTLP message (a known
// field with another wire type is an error, an unknown one is skipped, as otlp-proto.ts does),
// id validation on raw bytes, and fixed64 times read as two 32-bit halves (no BigInt).
import { MAX_TIME_NS } from '../decode/common.ts';
import { checkEnd, wrongWireType, type WireReader } from '../decode/wire.ts';

export const KNOWN_REQUEST = 1 << 1;
export const KNOWN_GROUP_ITEMS = (1 << 1) | (1 << 2) | (1 << 3);
export const KNOWN_RESOURCE = (1 << 1) | (1 << 2) | (1 << 3);
export const KNOWN_SCOPE = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4);
export const KNOWN_SPAN = 0x1fffe;
export const KNOWN_EVENT = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4);
export const KNOWN_LINK = 0x7e;
export const KNOWN_STATUS = (1 << 2) | (1 << 3);
export const KNOWN_LOG = 0x1fee;
export const KNOWN_KEYVALUE = (1 << 1) | (1 << 2);
export const KNOWN_ANYVALUE = 0xfe;
export const KNOWN_LIST = 1 << 1;

/** The latest storable time's high 32 bits + 1: a fixed64 time is storable when hi < this. */
export const MAX_TIME_HI = Number(MAX_TIME_NS >> 32n) + 1;

/** Skips an unknown field; throws the row decoder's error for a known field with the wrong wire type. */
export function unknownField(r: WireReader, tag: number, known: number, message: string): void {
  const field = tag >>> 3;
  if (field < 32 && ((known >>> field) & 1) !== 0) throw wrongWireType(message, tag);
  r.skip(tag);
}

export const ID_EMPTY = 0;
export const ID_OK = 1;
export const ID_BAD = 2;

/** '' (empty or all zero), ok, or bad (wrong length) for the id in buf[start, end). */
export function idState(buf: Uint8Array, start: number, end: number, size: number): number {
  if (end === start) return ID_EMPTY;
  if (end - start !== size) return ID_BAD;
  let any = 0;
  for (let i = start; i < end; i++) any |= buf[i]!;
  return any === 0 ? ID_EMPTY : ID_OK;
}

/** The halves of the last fixed64 read by fixed64(). */
export let fixedLo = 0;
export let fixedHi = 0;

/** Reads a fixed64 at r.pos into fixedLo / fixedHi. */
export function fixed64(r: WireReader): void {
  if (r.pos + 8 > r.len) r.fixed64(); // throws the reader's own truncation error
  fixedLo = r.view.getUint32(r.pos, true);
  fixedHi = r.view.getUint32(r.pos + 4, true);
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

/** Reads the scalar fields of span r[start, end) into SPAN; throws DecodeError where the row decoder would. */
export function scanSpan(r: WireReader, start: number, end: number): void {
  const buf = r.buf;
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
  r.pos = start;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10: {
        const e = r.lenEnd();
        traceStart = r.pos;
        traceState = idState(buf, traceStart, e, 16);
        r.pos = e;
        break;
      }
      case 18: {
        const e = r.lenEnd();
        spanStart = r.pos;
        spanState = idState(buf, spanStart, e, 8);
        r.pos = e;
        break;
      }
      case 26:
        tsEnd = r.lenEnd();
        tsStart = r.pos;
        r.pos = tsEnd;
        break;
      case 34: {
        // parent_span_id: empty means a root span; all zero is not a valid id
        const e = r.lenEnd();
        parentStart = r.pos;
        parentState = idState(buf, parentStart, e, 8);
        if (parentState === ID_EMPTY && e !== parentStart) parentState = ID_BAD;
        r.pos = e;
        break;
      }
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
        startLo = fixedLo;
        startHi = fixedHi;
        break;
      case 65:
        fixed64(r);
        endLo = fixedLo;
        endHi = fixedHi;
        break;
      case 74:
        r.pos = r.lenEnd();
        break;
      case 90:
        r.pos = r.lenEnd();
        hasEvents = true;
        break;
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

/** Reads the scalar fields of log record r[start, end) into LOG; throws DecodeError where the row decoder would. */
export function scanLog(r: WireReader, start: number, end: number): void {
  const buf = r.buf;
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
  r.pos = start;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 9:
        fixed64(r);
        timeLo = fixedLo;
        timeHi = fixedHi;
        break;
      case 16:
        severity = r.int32();
        break;
      case 26:
        stEnd = r.lenEnd();
        stStart = r.pos;
        r.pos = stEnd;
        break;
      case 42:
      case 50:
        r.pos = r.lenEnd();
        break;
      case 56:
        dropped = r.uint32();
        break;
      case 69:
        flags = r.fixed32();
        break;
      case 74: {
        const e = r.lenEnd();
        traceStart = r.pos;
        traceState = idState(buf, traceStart, e, 16);
        r.pos = e;
        break;
      }
      case 82: {
        const e = r.lenEnd();
        spanStart = r.pos;
        spanState = idState(buf, spanStart, e, 8);
        r.pos = e;
        break;
      }
      case 89:
        fixed64(r);
        obsLo = fixedLo;
        obsHi = fixedHi;
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
