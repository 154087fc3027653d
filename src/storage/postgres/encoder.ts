// Encodes normalized rows into COPY tuples (binary or text) in the decode workers. Chunks carry
// tuples only, no header or trailer, so the writer can concatenate them; the adapter frames a
// batch when it streams it. Column order is columns.ts.
import type { LogRow, SpanEvent, SpanRow } from '../../model/rows.ts';
import type { RowEncoder } from '../encoders.ts';
import type { EncodedChunk } from '../backend.ts';
import { LOG_COLUMNS, SPAN_COLUMNS, type CopyFormat } from './columns.ts';
import { escapeText } from './escape.ts';
import { pushTokens } from './tokens.ts';

const TWO_32 = 2 ** 32;
const COPY_TEXT_SPECIAL = /[\\\n\r\t]/g;
const COPY_TEXT_REPLACE: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const HEX = /^(?:[0-9a-f]{2})*$/;

/** Builds one tuple at a time into a growing scratch buffer (reused across calls in a worker). */
interface TupleSink {
  begin(fields: number): void;
  end(): void;
  int8(v: bigint): void;
  /** An integer that fits a JS number (uint32 counters and flags) into int8. */
  int8n(v: number): void;
  int4(v: number): void;
  text(s: string): void;
  bytea(hex: string, what: string): void;
  /** JSON text from JSON.stringify, stored verbatim in a json column. */
  json(json: string): void;
  /** Integers below 2^53 into int8[]. */
  int8array(values: number[]): void;
  take(): Uint8Array;
  /** Forgets anything written since the last take() (an encode that threw partway). */
  reset(): void;
}

function invalidId(what: string, hex: string): Error {
  return new Error(`postgres encoder: ${what} is not lowercase hex: ${JSON.stringify(hex.slice(0, 64))}`);
}

class BinarySink implements TupleSink {
  private buf = Buffer.allocUnsafe(1 << 20);
  private off = 0;

  reset(): void {
    this.off = 0;
  }

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  begin(fields: number): void {
    this.ensure(2);
    this.off = this.buf.writeInt16BE(fields, this.off);
  }

  end(): void {}

  int8(v: bigint): void {
    this.ensure(12);
    this.off = this.buf.writeInt32BE(8, this.off);
    // uint64 values past 2^63 (year 2262+) wrap to negative and are unwrapped on read: exact, but
    // they sort before 1970 and land in the default partition.
    this.off = this.buf.writeBigInt64BE(BigInt.asIntN(64, v), this.off);
  }

  int8n(v: number): void {
    this.ensure(12);
    const hi = Math.floor(v / TWO_32);
    this.off = this.buf.writeInt32BE(8, this.off);
    this.off = this.buf.writeInt32BE(hi, this.off);
    this.off = this.buf.writeUInt32BE(v - hi * TWO_32, this.off);
  }

  int4(v: number): void {
    this.ensure(8);
    this.off = this.buf.writeInt32BE(4, this.off);
    this.off = this.buf.writeInt32BE(v, this.off);
  }

  text(s: string): void {
    s = escapeText(s);
    this.ensure(4 + s.length * 3);
    const n = this.buf.write(s, this.off + 4, 'utf8');
    this.buf.writeInt32BE(n, this.off);
    this.off += 4 + n;
  }

  bytea(hex: string, what: string): void {
    this.ensure(4 + (hex.length >> 1));
    const n = this.buf.write(hex, this.off + 4, 'hex');
    if (n * 2 !== hex.length || !HEX.test(hex)) throw invalidId(what, hex);
    this.buf.writeInt32BE(n, this.off);
    this.off += 4 + n;
  }

  json(json: string): void {
    this.ensure(4 + json.length * 3);
    const n = this.buf.write(json, this.off + 4, 'utf8');
    this.buf.writeInt32BE(n, this.off);
    this.off += 4 + n;
  }

  int8array(values: number[]): void {
    const n = values.length;
    this.ensure(24 + n * 12);
    const b = this.buf;
    let o = b.writeInt32BE(n === 0 ? 12 : 20 + n * 12, this.off);
    o = b.writeInt32BE(n === 0 ? 0 : 1, o); // dimensions
    o = b.writeInt32BE(0, o); // no nulls
    o = b.writeInt32BE(20, o); // element type int8
    if (n > 0) {
      o = b.writeInt32BE(n, o);
      o = b.writeInt32BE(1, o); // lower bound
      for (const v of values) {
        const hi = Math.floor(v / TWO_32);
        o = b.writeInt32BE(8, o);
        o = b.writeInt32BE(hi, o);
        o = b.writeUInt32BE(v - hi * TWO_32, o);
      }
    }
    this.off = o;
  }

  take(): Uint8Array {
    // A copy in its own ArrayBuffer, so the worker can transfer it and keep its scratch buffer.
    const out = new Uint8Array(this.off);
    out.set(this.buf.subarray(0, this.off));
    this.off = 0;
    return out;
  }
}

function copyText(s: string): string {
  return s.replace(COPY_TEXT_SPECIAL, (c) => COPY_TEXT_REPLACE[c]!);
}

class TextSink implements TupleSink {
  private parts: string[] = [];
  private row: string[] = [];

  reset(): void {
    this.parts = [];
    this.row = [];
  }

  begin(): void {
    this.row = [];
  }

  end(): void {
    this.parts.push(this.row.join('\t'), '\n');
  }

  int8(v: bigint): void {
    this.row.push(BigInt.asIntN(64, v).toString());
  }

  int8n(v: number): void {
    this.row.push(String(v));
  }

  int4(v: number): void {
    this.row.push(String(v));
  }

  text(s: string): void {
    this.row.push(copyText(escapeText(s)));
  }

  bytea(hex: string, what: string): void {
    if (!HEX.test(hex)) throw invalidId(what, hex);
    this.row.push('\\\\x' + hex);
  }

  json(json: string): void {
    // JSON.stringify never emits raw tabs or newlines; only its backslashes need doubling.
    this.row.push(json.includes('\\') ? json.replace(/\\/g, '\\\\') : json);
  }

  int8array(values: number[]): void {
    this.row.push('{' + values.join(',') + '}');
  }

  take(): Uint8Array {
    const out = Buffer.from(this.parts.join(''), 'utf8');
    this.parts = [];
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  }
}

function eventsJson(events: SpanEvent[]): string {
  if (events.length === 0) return '[]';
  return JSON.stringify(
    events.map((e) => ({
      timeUnixNano: e.timeUnixNano.toString(),
      name: e.name,
      attributes: e.attributes,
      droppedAttributesCount: e.droppedAttributesCount,
    })),
  );
}


/** JSON of objects that many rows of one request share (resource, scope), stringified once. */
function memoJson(): (o: object) => string {
  const cache = new Map<object, string>();
  return (o) => {
    let s = cache.get(o);
    if (s === undefined) {
      s = JSON.stringify(o);
      cache.set(o, s);
    }
    return s;
  };
}

export interface PostgresEncoderOptions {
  format: CopyFormat;
}

class PostgresEncoder implements RowEncoder {
  private readonly sink: TupleSink;

  constructor(format: CopyFormat) {
    this.sink = format === 'text' ? new TextSink() : new BinarySink();
  }

  encodeSpans(rows: SpanRow[]): EncodedChunk[] {
    if (rows.length === 0) return [];
    const w = this.sink;
    w.reset();
    const json = memoJson();
    const tokens: number[] = [];
    for (const r of rows) {
      w.begin(SPAN_COLUMNS.length);
      w.int8(r.startTimeUnixNano);
      w.bytea(r.traceId, 'traceId');
      w.bytea(r.spanId, 'spanId');
      w.bytea(r.parentSpanId, 'parentSpanId');
      w.text(r.traceState);
      w.int8n(r.flags);
      w.text(r.name);
      w.int4(r.kind);
      w.int8(r.endTimeUnixNano);
      w.int8(r.durationNano);
      w.int4(r.statusCode);
      w.text(r.statusMessage);
      w.text(r.serviceName);
      w.json(json(r.resource));
      w.json(json(r.scope));
      w.json(r.attributes.length === 0 ? '[]' : JSON.stringify(r.attributes));
      // Span attributes only: the port's attribute search is about what one span carries.
      tokens.length = 0;
      pushTokens(r.attributes, tokens);
      w.int8array(tokens);
      w.int8n(r.droppedAttributesCount);
      w.json(eventsJson(r.events));
      w.int8n(r.droppedEventsCount);
      w.json(r.links.length === 0 ? '[]' : JSON.stringify(r.links));
      w.int8n(r.droppedLinksCount);
      w.end();
    }
    return [{ partition: 0, rows: rows.length, data: w.take() }];
  }

  encodeLogs(rows: LogRow[]): EncodedChunk[] {
    if (rows.length === 0) return [];
    const w = this.sink;
    w.reset();
    const json = memoJson();
    for (const r of rows) {
      w.begin(LOG_COLUMNS.length);
      w.int8(r.timeUnixNano !== 0n ? r.timeUnixNano : r.observedTimeUnixNano);
      w.int8(r.timeUnixNano);
      w.int8(r.observedTimeUnixNano);
      w.bytea(r.traceId, 'traceId');
      w.bytea(r.spanId, 'spanId');
      w.int8n(r.flags);
      w.int4(r.severityNumber);
      w.text(r.severityText);
      w.json(JSON.stringify(r.body));
      w.text(r.eventName);
      w.text(r.serviceName);
      w.json(json(r.resource));
      w.json(json(r.scope));
      w.json(r.attributes.length === 0 ? '[]' : JSON.stringify(r.attributes));
      w.int8n(r.droppedAttributesCount);
      w.end();
    }
    return [{ partition: 0, rows: rows.length, data: w.take() }];
  }
}

/** Creates the COPY encoder of the PostgreSQL backend (loaded by each decode worker). */
export function createEncoder(options: PostgresEncoderOptions): RowEncoder {
  return new PostgresEncoder(options.format);
}
