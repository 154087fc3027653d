// JSON-lines row encoding: the memory and SQLite stores' format before they kept what arrived
// (src/storage/otlp-chunks.ts). SQLite still reads the JSON documents of rows written then and
// still writes JSON-line chunks met in an older write-ahead log. A chunk is UTF-8 text with
// one row per line, so chunks concatenate. Each line is a small JSON array of the columns that
// stores index on (the header), a tab, and the row's full document:
//
//   ["<traceId>","<spanId>","<parent>","<service>","<name>","<start>","<end>","<duration>",<status>,<kind>]\t{...}
//
// Stores read the header only (cheap) and keep the document as bytes or text, parsing it when a
// read needs the whole row. JSON.stringify never emits a raw tab or newline, so both split safely.
// Rows of one request share their resource and scope objects; each is serialized once.
import type { LogRow, ResourceInfo, ScopeInfo, SpanRow } from '../model/rows.ts';
import type { RowEncoder } from './encoders.ts';
import type { EncodedChunk } from './backend.ts';

const textEncoder = new TextEncoder();

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
  return JSON.stringify(header) + '\t{"resource":' + shared.of(r.resource) + ',"scope":' + shared.of(r.scope) + ',' + rest.slice(1) + '\n';
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

/** One line of a chunk with its document left as bytes: buf[docStart, docEnd) is the UTF-8 document. */
export interface LineRef<H> {
  header: H;
  buf: Buffer;
  docStart: number;
  docEnd: number;
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
      yield { header: JSON.parse(buf.toString('utf8', start, tab)) as H, buf, docStart: tab + 1, docEnd: nl };
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

/** The worker-side encoder of the memory and sqlite backends. */
export function createEncoder(): RowEncoder {
  return {
    encodeSpans: (rows) => encodeLines(rows, spanLine),
    encodeLogs: (rows) => encodeLines(rows, logLine),
  };
}
