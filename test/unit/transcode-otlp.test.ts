// The memory store's encoder (keep what arrived: each item's protobuf bytes behind an index
// header) against the row path: on every fixture, on random requests encoded by protobufjs, on
// random wire messages that repeat, reorder and corrupt fields, and on OTLP/JSON in every sender
// style, it must keep and reject the same items with the same message, refuse the same requests
// with the same error, index the same columns, and give back the rows the row decoder gives.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixtureBytes } from '../helpers/fixtures.ts';
import { fixtureCases, handOverCase } from '../helpers/transcoder-cases.ts';
import type { AnyValue, KeyValue, LogRow, SpanRow } from '../../src/model/rows.ts';
import type { Signal } from '../../src/model/signal.ts';
import { UNKNOWN_SERVICE } from '../../src/pipeline/decode/common.ts';
import { decodeLogsJson, decodeLogsProto, decodeTracesJson, decodeTracesProto, WireWriter } from '../../src/pipeline/decode/index.ts';
import type { RequestFormat } from '../../src/pipeline/transcode/encoder.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/index.ts';
import { createEncoder as createRowEncoder, tracesRequest } from '../../src/pipeline/transcode/otlp/rows.ts';
import { makeSpan } from '../helpers/rows.ts';
import { chunkRecordCount, logAt, logSeverity, logTime, logTraceId, readLogChunk, readSpanChunk, spanAt, spanEnd, spanId, spanKind, spanName, spanParentId, spanStart, spanStatus, spanTraceId } from '../../src/storage/otlp-chunks.ts';
import { arbWireRequest } from '../helpers/otlp-wire-arb.ts';
import { arbJsonStyle, arbLogs, arbTraces, encodeLogs, encodeTraces, JSON_BAD_REQUESTS, JSON_EDGE_SPANS, jsonEdgeRequest, jsonLogs, jsonTraces, LIMITS, toJsonText } from '../helpers/otlp-build.ts';

const encoder = createEncoder({}, LIMITS);

type Outcome = { accepted: number; rejected: number; errorMessage: string; rows: unknown[] } | { error: string };

/** The indexed columns a store keeps, as the row gives them. */
function spanIndex(r: SpanRow) {
  return { traceId: r.traceId, spanId: r.spanId, parentSpanId: r.parentSpanId, name: r.name, start: r.startTimeUnixNano, end: r.endTimeUnixNano, duration: r.durationNano, statusCode: r.statusCode, kind: r.kind, service: r.serviceName };
}

function logIndex(r: LogRow) {
  return { time: r.timeUnixNano !== 0n ? r.timeUnixNano : r.observedTimeUnixNano, traceId: r.traceId, severityNumber: r.severityNumber, service: r.serviceName };
}

function rowPath(signal: Signal, format: RequestFormat, body: Uint8Array, limits = LIMITS): Outcome {
  try {
    if (signal === 'traces') {
      const r = format === 'json' ? decodeTracesJson(body, limits) : decodeTracesProto(body, limits);
      return { accepted: r.rows.length, rejected: r.rejected, errorMessage: r.errorMessage, rows: r.rows.map((row) => ({ index: spanIndex(row), row })) };
    }
    const r = format === 'json' ? decodeLogsJson(body, limits) : decodeLogsProto(body, limits);
    return { accepted: r.rows.length, rejected: r.rejected, errorMessage: r.errorMessage, rows: r.rows.map((row) => ({ index: logIndex(row), row })) };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

/** What the store reads from the chunks: the index header of each item, and the row it decodes to. */
function readBack(signal: Signal, chunks: readonly { data: Uint8Array; rows: number }[]): unknown[] {
  const out: unknown[] = [];
  for (const c of chunks) {
    const before = out.length;
    if (signal === 'traces')
      readSpanChunk(c.data, (g, buf, r) => {
        const start = spanStart(buf, r);
        const end = spanEnd(buf, r);
        const index = { traceId: spanTraceId(buf, r), spanId: spanId(buf, r), parentSpanId: spanParentId(buf, r), name: spanName(buf, r), start, end, duration: end > start ? end - start : 0n, statusCode: spanStatus(buf, r), kind: spanKind(buf, r), service: g.service };
        out.push({ index, row: spanAt(buf, g.at, r) });
      });
    else
      readLogChunk(c.data, (g, buf, r) => {
        out.push({ index: { time: logTime(buf, r), traceId: logTraceId(buf, r), severityNumber: logSeverity(buf, r), service: g.service }, row: logAt(buf, g.at, r) });
      });
    expect(out.length - before).toBe(c.rows);
    // The chunk's head carries the same count: the memory store takes log records by it, unwalked.
    expect(chunkRecordCount(c.data)).toBe(c.rows);
  }
  return out;
}

function newPath(signal: Signal, format: RequestFormat, body: Uint8Array, enc = encoder): Outcome {
  try {
    const r = enc.encode(signal, format, body);
    return { accepted: r.accepted, rejected: r.rejected, errorMessage: r.errorMessage, rows: readBack(signal, r.chunks) };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

/** Strings as protobuf carries them: UTF-8, so a lone surrogate (only OTLP/JSON can send one) reads back as U+FFFD. */
function wellFormed<T>(x: T): T {
  if (typeof x === 'string') return x.toWellFormed() as T;
  if (Array.isArray(x)) return x.map(wellFormed) as T;
  if (x !== null && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, wellFormed(v)])) as T;
  return x;
}

function expectSame(signal: Signal, format: RequestFormat, body: Uint8Array): void {
  const want = rowPath(signal, format, body);
  expect(newPath(signal, format, body)).toStrictEqual(format === 'json' ? wellFormed(want) : want);
}

const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

describe('memory-store encoder: the arrived bytes give back the row path rows', () => {
  fixtureCases(expectSame);
  handOverCase(encoder, expectSame);

  it('keeps a quarter of the row lines: each span as its own protobuf bytes, the resource once', () => {
    const body = encodeTraces(fc.sample(arbTraces, { numRuns: 1, seed: 7 })[0]!);
    const r = encoder.encode('traces', 'protobuf', body);
    expect(r.accepted).toBeGreaterThan(0);
    // The chunk holds the request's items and one group per scope: about the request's own size.
    const stored = r.chunks.reduce((n, c) => n + c.data.byteLength, 0);
    expect(stored).toBeLessThan(body.byteLength + 80 * r.accepted + 64);
  });

  it('a fixture with bad ids keeps the good span, rejects the rest', () => {
    const body = fixtureBytes('bad-ids.bin');
    expect(newPath('traces', 'protobuf', body)).toMatchObject({ accepted: 1, rejected: 6 });
  });

  it('random trace requests (protobufjs encodings)', () => {
    fc.assert(
      fc.property(arbTraces, (m) => expectSame('traces', 'protobuf', encodeTraces(m))),
      { numRuns: 300 },
    );
  });

  it('random log requests (protobufjs encodings)', () => {
    fc.assert(
      fc.property(arbLogs, (m) => expectSame('logs', 'protobuf', encodeLogs(m))),
      { numRuns: 300 },
    );
  });

  it('random OTLP/JSON trace and log requests in every sender style', () => {
    fc.assert(
      fc.property(arbTraces, arbJsonStyle, (m, st) => expectSame('traces', 'json', utf8(toJsonText(jsonTraces(m, st))))),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(arbLogs, arbJsonStyle, (m, st) => expectSame('logs', 'json', utf8(toJsonText(jsonLogs(m, st))))),
      { numRuns: 200 },
    );
  });

  it('OTLP/JSON edge cases: duplicate keys, bad ids, deep values, big numbers, lone surrogates, refused requests', () => {
    for (const s of JSON_EDGE_SPANS) expectSame('traces', 'json', jsonEdgeRequest(s));
    for (const bad of JSON_BAD_REQUESTS) {
      expectSame('traces', 'json', utf8(bad));
      expectSame('logs', 'json', utf8(bad));
    }
    const out = newPath('traces', 'json', jsonEdgeRequest(JSON_EDGE_SPANS[0]!));
    expect('rows' in out && (out.rows[0] as { row: SpanRow }).row.name).toBe('a\ufffdb');
  });

  it('random wire messages: repeated, reordered, duplicated, malformed and unknown fields', () => {
    for (const signal of ['traces', 'logs'] as const)
      fc.assert(
        fc.property(arbWireRequest(signal), fc.integer({ min: 1, max: 4 }), (bytes, depth) => {
          const limits = { maxNestingDepth: depth };
          expect(newPath(signal, 'protobuf', bytes, createEncoder({}, limits))).toStrictEqual(rowPath(signal, 'protobuf', bytes, limits));
        }),
        { numRuns: 1000 },
      );
  });

  it('a resource whose service.name repeats takes the last value; a non-string one means unknown_service', () => {
    const request = (values: ((w: WireWriter) => void)[]) => {
      const w = new WireWriter().fork().fork();
      for (const v of values) {
        w.fork().stringField(1, 'service.name').fork();
        v(w);
        w.join(2).join(1);
      }
      w.join(1).fork().fork().bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2)).join(2).join(2);
      return w.join(1).finish();
    };
    for (const body of [request([(w) => w.stringField(1, 'a'), (w) => w.stringField(1, 'b')]), request([(w) => w.stringField(1, 'a'), (w) => w.varintField(3, 5)]), request([])]) expectSame('traces', 'protobuf', body);
    const out = newPath('traces', 'protobuf', request([(w) => w.stringField(1, 'a'), (w) => w.stringField(1, 'b')]));
    expect('rows' in out && (out.rows[0] as { index: { service: string } }).index.service).toBe('b');
  });

  it('service.name from its KeyValue alone: no value field means unknown_service, two value fields the last', () => {
    // Each attribute: its key, then AnyValues written by the functions given (none: no value field).
    const request = (attributes: [string, ...((w: WireWriter) => void)[]][]) => {
      const w = new WireWriter().fork().fork();
      for (const [key, ...values] of attributes) {
        w.fork().stringField(1, key);
        for (const v of values) {
          w.fork();
          v(w);
          w.join(2);
        }
        w.join(1);
      }
      w.join(1).fork().fork().bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2)).join(2).join(2);
      return w.join(1).finish();
    };
    const service = (body: Uint8Array) => {
      expectSame('traces', 'protobuf', body);
      const out = newPath('traces', 'protobuf', body);
      return 'rows' in out ? (out.rows[0] as { index: { service: string } }).index.service : undefined;
    };
    const str = (v: string) => (w: WireWriter) => void w.stringField(1, v);
    expect(service(request([['host.name', str('h')], ['service.name']]))).toBe(UNKNOWN_SERVICE);
    expect(service(request([['service.name', str('a'), str('b')]]))).toBe('b');
    expect(service(request([['service.name', str('a'), (w) => void w.varintField(3, 5)]]))).toBe(UNKNOWN_SERVICE);
    expect(service(request([['service.name', (w) => void w.varintField(3, 5), str('c')], ['host.name', str('h')]]))).toBe('c');
  });

  it('KeyValues at the edges of the one-field layout read in place: lengths of 127 and 128, long varints, values cut short or running over', () => {
    // A KeyValue's bytes as given, as a resource attribute and as a span attribute.
    const request = (kv: number[]) => {
      const w = new WireWriter().fork().fork().fork().raw(kv).join(1).join(1);
      w.fork().fork().bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2)).stringField(5, 'op');
      w.fork().raw(kv).join(9);
      return w.join(2).join(2).join(1).finish();
    };
    const bytes = (s: string) => [...Buffer.from(s)];
    const key = bytes('service.name');
    const kv = (k: number[], value: number[]) => [10, k.length, ...k, 18, value.length, ...value];
    const cases = [
      kv(key, [10, 127, ...bytes('s'.repeat(127))]),
      [10, key.length, ...key, 18, 131, 1, 10, 128, 1, ...bytes('s'.repeat(128))],
      [10, 128, 1, ...bytes('k'.repeat(128)), 18, 3, 10, 1, 120],
      kv(bytes('k'.repeat(127)), [10, 1, 120]),
      kv(key, [16, 1]),
      kv(key, [16, 0x81, 0]),
      kv(key, [24, 0x7f]),
      kv(key, [24, 0xff, 0x01]),
      kv(key, [24, 0x80]),
      kv(key, [33, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]),
      kv(key, [33, 0, 0, 0, 0, 0, 0, 0xf0]),
      kv(key, [33, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0]),
      kv(key, [10, 2, 120]),
      kv(key, [10, 1, 120, 0]),
      kv(key, [10, 1, 120, 10, 1, 121]),
      kv(key, [58, 1, 7]),
      kv(key, []),
      [10, key.length, ...key, 18, 4, 10, 2, 120, 121, 10, 1, 122],
      [18, 3, 10, 1, 120, 10, key.length, ...key],
      [10, key.length, ...key],
      [10, 0, 18, 3, 10, 1, 120],
      [10, key.length, ...key, 18, 3, 10, 1],
    ];
    for (const c of cases) expectSame('traces', 'protobuf', request(c));
  });
});

describe('memory-store row encoder: rows written directly read back the same', () => {
  const rowEncoder = createRowEncoder({});
  const value = (v: AnyValue): AnyValue => v;
  const kv = (key: string, v: AnyValue): KeyValue => ({ key, value: value(v) });

  it('every AnyValue kind, empty and zero values, negative ints, shared and separate groups', () => {
    const body = encodeTraces(fc.sample(arbTraces, { numRuns: 1, seed: 3 })[0]!);
    const rows = decodeTracesProto(body, LIMITS).rows.map((r, i) =>
      i === 0 ? { ...r, attributes: [kv('s', { stringValue: '' }), kv('b', { boolValue: false }), kv('i', { intValue: '-1' }), kv('d', { doubleValue: 'NaN' }), kv('z', { doubleValue: 0 }), kv('y', { bytesValue: 'AQI=' }), kv('e', {}), kv('a', { arrayValue: { values: [{}, { kvlistValue: { values: [] } }] } })] } : r,
    );
    const chunks = rowEncoder.encodeSpans(rows);
    expect(readBack('traces', chunks).map((x) => (x as { row: SpanRow }).row)).toStrictEqual(rows);
  });

  it('gives up the request buffer a large OTLP/JSON request grew, as the transcoders give up theirs', () => {
    // Rows whose request takes ~40 MiB of protobuf (a large OTLP/JSON request, say one carrying
    // payloads as bytesValue): the buffer they are written into grows to 64 MiB.
    const payload = Buffer.alloc(40 << 20, 7).toString('base64');
    rowEncoder.encodeSpans([makeSpan({ attributes: [kv('payload', { bytesValue: payload })] })]);
    // A worker that took one such request must not hold that much for good (resident, in RSS).
    expect(tracesRequest([makeSpan()]).buffer.byteLength).toBeLessThanOrEqual(32 << 20);
  });
});

describe('memory-store row encoder: ids', () => {
  it('writes each id as the bytes Buffer.from reads from its hex, whole pairs of digits or not', () => {
    const hex = fc.oneof(
      fc.stringMatching(/^[0-9a-fA-F]{0,40}$/),
      fc.string({ maxLength: 40 }),
      fc.constantFrom('', '0', 'abc', 'zz', '0g', 'ab\u0100c', 'AbCdEf0123456789aBcDeF0123456789'),
    );
    fc.assert(
      fc.property(hex, hex, hex, (traceId, spanId, parentSpanId) => {
        const body = tracesRequest([makeSpan({ traceId, spanId, parentSpanId, traceState: '' })]);
        // The span's first fields: trace id (1), span id (2), no trace state (3), the parent (4).
        const field = (n: number, h: string) => (h === '' ? [] : [(n << 3) | 2, Buffer.from(h, 'hex').length, ...Buffer.from(h, 'hex')]);
        const want = Buffer.from([...field(1, traceId), ...field(2, spanId), ...field(4, parentSpanId)]);
        expect(Buffer.from(body).includes(want)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
