// JSON-lines row encoding shared by the memory and sqlite backends. A chunk is UTF-8 text with
// one row per line (JSON.stringify never emits a raw newline), so chunks concatenate. Times
// travel as decimal strings and come back as bigint.
import type { EncodedChunk, LogRow, RowEncoder, SpanRow } from './backend.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function spanToJson(r: SpanRow): string {
  return JSON.stringify({
    ...r,
    startTimeUnixNano: r.startTimeUnixNano.toString(),
    endTimeUnixNano: r.endTimeUnixNano.toString(),
    durationNano: r.durationNano.toString(),
    events: r.events.map((e) => ({ ...e, timeUnixNano: e.timeUnixNano.toString() })),
  });
}

function logToJson(r: LogRow): string {
  return JSON.stringify({
    ...r,
    timeUnixNano: r.timeUnixNano.toString(),
    observedTimeUnixNano: r.observedTimeUnixNano.toString(),
  });
}

/** Parses one line written by the encoder back into a SpanRow. */
export function spanFromJson(line: string): SpanRow {
  const o = JSON.parse(line);
  o.startTimeUnixNano = BigInt(o.startTimeUnixNano);
  o.endTimeUnixNano = BigInt(o.endTimeUnixNano);
  o.durationNano = BigInt(o.durationNano);
  for (const e of o.events) e.timeUnixNano = BigInt(e.timeUnixNano);
  return o as SpanRow;
}

/** Parses one line written by the encoder back into a LogRow. */
export function logFromJson(line: string): LogRow {
  const o = JSON.parse(line);
  o.timeUnixNano = BigInt(o.timeUnixNano);
  o.observedTimeUnixNano = BigInt(o.observedTimeUnixNano);
  return o as LogRow;
}

/** Splits a batch's chunks into row lines. */
export function* chunkLines(chunks: readonly Uint8Array[]): Generator<string> {
  for (const c of chunks) {
    const text = decoder.decode(c);
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      yield text.slice(start, nl);
      start = nl + 1;
    }
  }
}

function encodeLines<T>(rows: T[], toJson: (r: T) => string): EncodedChunk[] {
  if (rows.length === 0) return [];
  let text = '';
  for (const r of rows) text += toJson(r) + '\n';
  return [{ partition: 0, rows: rows.length, data: encoder.encode(text) }];
}

/** The worker-side encoder of the memory and sqlite backends. */
export function createEncoder(): RowEncoder {
  return {
    encodeSpans: (rows) => encodeLines(rows, spanToJson),
    encodeLogs: (rows) => encodeLines(rows, logToJson),
  };
}

/** EncoderSpec.module value for backends using this encoder. */
export const ROWJSON_ENCODER_MODULE = import.meta.url;
