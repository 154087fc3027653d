// JSON-lines row encoding of the SQLite backend. A chunk is UTF-8 text with one row per line, so
// chunks concatenate. Each line is a small JSON array of the columns the store indexes (the
// header), a tab, and the row's full document; a span's line then carries, after another tab,
// the attribute index's terms for its attributes (attributeTerms), so the store's single writer
// thread does not parse documents to build that index:
//
//   ["<traceId>","<spanId>","<parent>","<service>","<name>","<start>","<end>","<duration>",<status>,<kind>]\t{...}\t<terms>
//
// The store reads the header only (cheap) and keeps the document as text, parsing it when a read
// needs the whole row. JSON.stringify never emits a raw tab or newline, so both split safely.
// Rows of one request share their resource and scope objects; each is serialized once. Lines
// written before the terms were added (a write-ahead log of an older version) have none.
import type { KeyValue, LogRow, ResourceInfo, ScopeInfo, SpanRow } from '../model/rows.ts';
import type { RowEncoder } from './encoders.ts';
import type { EncodedChunk } from './backend.ts';

const textEncoder = new TextEncoder();

/** Longest attribute key or value the attribute index keeps; a longer one is indexed by its prefix and confirmed on the document. */
export const ATTR_VALUE_CHARS = 128;

/** ASCII codes of 0-9A-F. */
const HEX_UPPER = new Uint8Array(Array.from('0123456789ABCDEF', (c) => c.charCodeAt(0)));
/** Where terms are built: one string is made per span, not one per key or value. */
let scratch = new Uint8Array(1 << 16);
let sp = 0;

function room(n: number): void {
  if (sp + n <= scratch.length) return;
  const next = new Uint8Array(Math.max(scratch.length * 2, sp + n));
  next.set(scratch.subarray(0, sp));
  scratch = next;
}

/** Appends the hex of the UTF-8 of v's first ATTR_VALUE_CHARS code points, as SQLite's hex(substr(v, 1, 128)). */
function hexInto(v: string): void {
  const start = sp;
  const n = Math.min(v.length, ATTR_VALUE_CHARS);
  room(2 * n);
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c >= 0x80) {
      // Not ASCII: cut by code points (substr() counts characters), then hex the UTF-8.
      sp = start;
      const bytes = textEncoder.encode(Array.from(v).slice(0, ATTR_VALUE_CHARS).join(''));
      room(2 * bytes.length);
      for (const b of bytes) {
        scratch[sp++] = HEX_UPPER[b >> 4]!;
        scratch[sp++] = HEX_UPPER[b & 15]!;
      }
      return;
    }
    scratch[sp++] = HEX_UPPER[c >> 4]!;
    scratch[sp++] = HEX_UPPER[c & 15]!;
  }
}

function termInto(key: string, value: string): void {
  hexInto(key);
  room(1);
  scratch[sp++] = 0x78; // 'x'
  hexInto(value);
}

function scratchText(): string {
  return Buffer.from(scratch.buffer, 0, sp).toString('latin1');
}

/** The attribute index's term of a key and rendered value ('' value: the value-less term): hex of each, cut to ATTR_VALUE_CHARS code points. */
export function attributeTerm(key: string, value: string): string {
  sp = 0;
  termInto(key, value);
  return scratchText();
}

/** A span's attribute index terms, space-separated: strings, ints, booleans and bytes by value; other kinds by key alone (their rendering is JavaScript's, checked on the document). */
export function attributeTerms(attributes: readonly KeyValue[]): string {
  sp = 0;
  for (const { key, value: v } of attributes) {
    if (sp > 0) {
      room(1);
      scratch[sp++] = 0x20;
    }
    termInto(key, 'stringValue' in v ? v.stringValue : 'intValue' in v ? v.intValue : 'boolValue' in v ? (v.boolValue ? 'true' : 'false') : 'bytesValue' in v ? v.bytesValue : '');
  }
  return scratchText();
}

// Terms from an attribute list's JSON as this format writes it ({"key":"…","value":{"<kind>":…}}
// items, JSON.stringify's output): read in place, no objects. A string without escapes is the
// UTF-8 of its text, so its bytes are hexed as they lie; one with escapes is parsed first.

const Q = 0x22; // "
const BACKSLASH = 0x5c;

/** The end (index of the closing quote) of the JSON string whose opening quote is at buf[p]; sets `escaped`. */
function stringEnd(buf: Uint8Array, p: number): number {
  escaped = false;
  let i = p + 1;
  for (;;) {
    const c = buf[i]!;
    if (c === Q) return i;
    if (c === BACKSLASH) {
      escaped = true;
      i += 2;
    } else i++;
  }
}
let escaped = false;

/** Appends the term hex of the JSON string whose quotes are at buf[open] and buf[close]. */
function hexOfJsonString(buf: Uint8Array, open: number, close: number, hasEscapes: boolean): void {
  if (hasEscapes) {
    hexInto(JSON.parse(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8', open, close + 1)) as string);
    return;
  }
  room(2 * (close - open));
  let points = 0;
  for (let i = open + 1; i < close; i++) {
    const b = buf[i]!;
    // A byte that starts a code point (not 10xxxxxx): stop before the one past the cut.
    if ((b & 0xc0) !== 0x80 && ++points > ATTR_VALUE_CHARS) return;
    scratch[sp++] = HEX_UPPER[b >> 4]!;
    scratch[sp++] = HEX_UPPER[b & 15]!;
  }
}

/** The index just past the JSON value (a string, a literal or number, or a nested object/array) starting at buf[p]. */
function skipValue(buf: Uint8Array, p: number): number {
  const c = buf[p]!;
  if (c === Q) return stringEnd(buf, p) + 1;
  if (c !== 0x7b && c !== 0x5b) {
    let i = p;
    while (buf[i] !== 0x2c && buf[i] !== 0x7d && buf[i] !== 0x5d) i++;
    return i;
  }
  let depth = 0;
  let i = p;
  do {
    const d = buf[i]!;
    if (d === Q) i = stringEnd(buf, i) + 1;
    else {
      if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) depth--;
      i++;
    }
  } while (depth > 0);
  return i;
}

const KEY_PREFIX = 7; // {"key":
const VALUE_PREFIX = 9; // ,"value":

/** The terms of the attribute list whose items are the JSON text buf[start, end) (what a transcoder wrote). */
export function attributeTermsOfJson(buf: Uint8Array, start: number, end: number): string {
  sp = 0;
  let p = start;
  while (p < end) {
    if (sp > 0) {
      room(1);
      scratch[sp++] = 0x20;
    }
    const keyOpen = p + KEY_PREFIX;
    const keyClose = stringEnd(buf, keyOpen);
    hexOfJsonString(buf, keyOpen, keyClose, escaped);
    room(1);
    scratch[sp++] = 0x78; // 'x'
    let v = keyClose + 1 + VALUE_PREFIX; // at the value object's '{'
    if (buf[v + 1] !== 0x7d) {
      const nameOpen = v + 1;
      const nameClose = stringEnd(buf, nameOpen);
      const kind = buf[nameOpen + 1]!; // s(tring) i(nt) b(ool|ytes) d(ouble) a(rray) k(vlist)
      const at = nameClose + 2; // past '":'
      if (kind === 0x73 || kind === 0x69 || (kind === 0x62 && buf[nameOpen + 2] === 0x79)) {
        const close = stringEnd(buf, at);
        hexOfJsonString(buf, at, close, escaped);
        v = close + 1;
      } else if (kind === 0x62) {
        const t = buf[at] === 0x74;
        hexInto(t ? 'true' : 'false');
        v = at + (t ? 4 : 5);
      } else v = skipValue(buf, at);
    } else v += 1;
    // v is at the value object's '}'; then the item's '}' and a ',' or the end.
    p = v + 2;
    if (buf[p] === 0x2c) p++;
  }
  return scratchText();
}

/** The indexed columns of a span line. Times are decimal strings (exact int64/uint64). */
export type SpanHeader = [traceId: string, spanId: string, parentSpanId: string, serviceName: string, name: string, start: string, end: string, duration: string, statusCode: number, kind: number];
/** The indexed columns of a log line: time is the record's time, or its observed time when unset. */
export type LogHeader = [time: string, traceId: string, serviceName: string, severityNumber: number];

/** Serializes each distinct resource/scope object once per encode call. */
class SharedJson {
  private readonly cache = new Map<ResourceInfo | ScopeInfo, string>();
  of(o: ResourceInfo | ScopeInfo): string {
    let s = this.cache.get(o);
    if (s === undefined) {
      s = JSON.stringify(o);
      this.cache.set(o, s);
    }
    return s;
  }
}

function spanLine(r: SpanRow, shared: SharedJson): string {
  const start = r.startTimeUnixNano.toString();
  const end = r.endTimeUnixNano.toString();
  const duration = r.durationNano.toString();
  const header: SpanHeader = [r.traceId, r.spanId, r.parentSpanId, r.serviceName, r.name, start, end, duration, r.statusCode, r.kind];
  // Resource and scope are spliced in as text; the rest of the row goes through one stringify.
  const rest = JSON.stringify({
    traceId: r.traceId,
    spanId: r.spanId,
    parentSpanId: r.parentSpanId,
    traceState: r.traceState,
    flags: r.flags,
    name: r.name,
    kind: r.kind,
    startTimeUnixNano: start,
    endTimeUnixNano: end,
    durationNano: duration,
    statusCode: r.statusCode,
    statusMessage: r.statusMessage,
    serviceName: r.serviceName,
    attributes: r.attributes,
    droppedAttributesCount: r.droppedAttributesCount,
    events: r.events.length === 0 ? r.events : r.events.map((e) => ({ ...e, timeUnixNano: e.timeUnixNano.toString() })),
    droppedEventsCount: r.droppedEventsCount,
    links: r.links,
    droppedLinksCount: r.droppedLinksCount,
  });
  return JSON.stringify(header) + '\t{"resource":' + shared.of(r.resource) + ',"scope":' + shared.of(r.scope) + ',' + rest.slice(1) + '\t' + attributeTerms(r.attributes) + '\n';
}

function logLine(r: LogRow, shared: SharedJson): string {
  const time = r.timeUnixNano.toString();
  const observed = r.observedTimeUnixNano.toString();
  const header: LogHeader = [r.timeUnixNano !== 0n ? time : observed, r.traceId, r.serviceName, r.severityNumber];
  const rest = JSON.stringify({
    timeUnixNano: time,
    observedTimeUnixNano: observed,
    traceId: r.traceId,
    spanId: r.spanId,
    flags: r.flags,
    severityNumber: r.severityNumber,
    severityText: r.severityText,
    body: r.body,
    eventName: r.eventName,
    serviceName: r.serviceName,
    attributes: r.attributes,
    droppedAttributesCount: r.droppedAttributesCount,
  });
  return JSON.stringify(header) + '\t{"resource":' + shared.of(r.resource) + ',"scope":' + shared.of(r.scope) + ',' + rest.slice(1) + '\n';
}

/** Parses a span document (the text after the header) into a SpanRow. */
export function spanFromJson(doc: string): SpanRow {
  const o = JSON.parse(doc);
  o.startTimeUnixNano = BigInt(o.startTimeUnixNano);
  o.endTimeUnixNano = BigInt(o.endTimeUnixNano);
  o.durationNano = BigInt(o.durationNano);
  for (const e of o.events) e.timeUnixNano = BigInt(e.timeUnixNano);
  return o as SpanRow;
}

/** Parses a log document into a LogRow. */
export function logFromJson(doc: string): LogRow {
  const o = JSON.parse(doc);
  o.timeUnixNano = BigInt(o.timeUnixNano);
  o.observedTimeUnixNano = BigInt(o.observedTimeUnixNano);
  return o as LogRow;
}

/** One line of a chunk with its document left as bytes: buf[docStart, docEnd) is the UTF-8 document, buf[termsStart, termsEnd) a span's index terms (termsStart -1: none). */
export interface LineRef<H> {
  header: H;
  buf: Buffer;
  docStart: number;
  docEnd: number;
  termsStart: number;
  termsEnd: number;
}

/** A line's document as text. */
export function docText(ref: { buf: Buffer; docStart: number; docEnd: number }): string {
  return ref.buf.toString('utf8', ref.docStart, ref.docEnd);
}

/** Splits chunks into lines, parsing only the headers; documents stay bytes until docText(). */
export function* chunkLineRefs<H extends SpanHeader | LogHeader>(chunks: readonly Uint8Array[]): Generator<LineRef<H>> {
  for (const c of chunks) {
    const buf = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    let start = 0;
    while (start < buf.length) {
      const tab = buf.indexOf(9, start);
      const nl = buf.indexOf(10, tab);
      if (tab < 0 || nl < 0) break;
      const tab2 = buf.lastIndexOf(9, nl);
      const terms = tab2 > tab;
      yield { header: JSON.parse(buf.toString('utf8', start, tab)) as H, buf, docStart: tab + 1, docEnd: terms ? tab2 : nl, termsStart: terms ? tab2 + 1 : -1, termsEnd: nl };
      start = nl + 1;
    }
  }
}

function encodeLines<T>(rows: T[], toLine: (r: T, shared: SharedJson) => string): EncodedChunk[] {
  if (rows.length === 0) return [];
  const shared = new SharedJson();
  let text = '';
  for (const r of rows) text += toLine(r, shared);
  return [{ partition: 0, rows: rows.length, data: textEncoder.encode(text) }];
}

/** The worker-side row encoder of the SQLite backend. */
export function createEncoder(): RowEncoder {
  return {
    encodeSpans: (rows) => encodeLines(rows, spanLine),
    encodeLogs: (rows) => encodeLines(rows, logLine),
  };
}
