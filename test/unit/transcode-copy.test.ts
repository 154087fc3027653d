// The PostgreSQL COPY transcoder against the row path it replaces (decode to rows, then the
// binary COPY row encoder): on every fixture, on random requests encoded by protobufjs, and on
// random wire messages that repeat, reorder and corrupt fields, it must write the same chunks
// (row count, bytes), keep and reject the same items with the same message, and refuse the same
// requests with the same error. It must also take its own path (not the row path it falls back
// to) on ordinary requests, or it would be checked against itself.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixtureBytes } from '../helpers/fixtures.ts';
import { handOverCase, largeTracesRequest, largeValueCase, outcome, rowPathCases } from '../helpers/transcoder-cases.ts';
import type { Signal as RequestSignal } from '../../src/model/signal.ts';
import { fromRowEncoder, type RequestEncoder, type RequestFormat } from '../../src/pipeline/transcode/encoder.ts';
import { createEncoder } from '../../src/pipeline/transcode/copy/index.ts';
import * as proto from '../../src/pipeline/transcode/copy/proto.ts';
import { createEncoder as createRowEncoder } from '../../src/storage/postgres/encoder.ts';
import { attributeToken } from '../../src/storage/postgres/tokens.ts';
import { chunkDays } from '../../src/storage/postgres/days.ts';
import { loadRequestEncoder } from '../../src/pipeline/transcode/registry.ts';
import { WireWriter } from '../../src/pipeline/decode/index.ts';
import { arbTraces, encodeLogs, encodeTraces, LIMITS, logsOf, sampleLog, sampleSpan, tracesOf } from '../helpers/otlp-build.ts';

function pair(limits = LIMITS): { rows: RequestEncoder; transcoder: RequestEncoder } {
  return { rows: fromRowEncoder(createRowEncoder({ format: 'binary' }), limits), transcoder: createEncoder({ format: 'binary' }, limits) };
}

const PAIR = pair();

function expectSame(signal: RequestSignal, format: RequestFormat, body: Uint8Array, p = PAIR): void {
  expect(outcome(p.transcoder, signal, format, body)).toStrictEqual(outcome(p.rows, signal, format, body));
}

/** A traces request of one span (ids 1… and 2…) whose fields `fill` writes. */
function oneSpan(fill: (w: WireWriter) => void): Uint8Array {
  const w = new WireWriter().fork().fork().fork();
  w.bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2));
  fill(w);
  return w.join(2).join(2).join(1).finish();
}

describe('COPY transcoder: same tuples as the row path', () => {
  it('tells each chunk the days its rows fall on, in both formats and signals: the partitions its batch needs', () => {
    const DAY = 86_400_000_000_000n;
    // Either side of day boundaries, and days far apart.
    const times = [1n, DAY - 1n, DAY, 19_999n * DAY + 86_399_999_999_999n, 20_000n * DAY, 40_000n * DAY + 7n];
    const days = [0, 1, 19_999, 20_000, 40_000];
    const id = (i: number) => Buffer.from(String(i + 1).padStart(16, '0'), 'hex');
    const traces = encodeTraces(tracesOf(times.map((start, i) => sampleSpan({ start, end: start + 10n, spanId: id(i) }))));
    const logs = encodeLogs(logsOf(times.map((time) => sampleLog({ time }))));
    for (const format of ['binary', 'text'] as const) {
      const encoder = createEncoder({ format }, LIMITS);
      for (const [signal, body] of [['traces', traces], ['logs', logs]] as const) {
        const out = encoder.encode(signal, 'protobuf', body);
        expect(out.accepted).toBe(times.length);
        expect(out.chunks.every((c) => c.days !== undefined)).toBe(true);
        expect([...new Set(out.chunks.flatMap((c) => c.days!))].sort((a, b) => a - b)).toEqual(days);
      }
    }
  });

  it('tells only the days of the rows it wrote: a rejected span\'s day is left out, and random requests\' days are their tuples\'', () => {
    const DAY = 86_400_000_000_000n;
    const id = (i: number) => Buffer.from(String(i + 1).padStart(16, '0'), 'hex');
    // A span with a bad (short) id on day 5 is rejected; the others fall on days 3 and 6 (the last starts in day 6's last nanosecond).
    const spans = [sampleSpan({ start: 3n * DAY + 1n, end: 3n * DAY + 2n, spanId: id(0) }), sampleSpan({ start: 5n * DAY, end: 5n * DAY + 1n, spanId: new Uint8Array(3) }), sampleSpan({ start: 7n * DAY - 1n, end: 7n * DAY, spanId: id(2) })];
    const out = PAIR.transcoder.encode('traces', 'protobuf', encodeTraces(tracesOf(spans)));
    expect(out).toMatchObject({ accepted: 2, rejected: 1 });
    expect(out.chunks[0]!.days!.toSorted((a, b) => a - b)).toEqual([3, 6]);
    fc.assert(
      fc.property(arbTraces, (m) => {
        for (const c of PAIR.transcoder.encode('traces', 'protobuf', encodeTraces(m)).chunks) {
          expect(c.days!.toSorted((a, b) => a - b)).toEqual([...chunkDays([c.data], 'binary')].sort((a, b) => a - b));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('is the encoder the registry gives PostgreSQL stores in binary format', async () => {
    const enc = await loadRequestEncoder({ name: 'postgres', options: { format: 'binary' } }, LIMITS);
    const body = encodeTraces(fc.sample(arbTraces, { numRuns: 1, seed: 3 })[0]!);
    const before = proto.fallbacks;
    expect(outcome(enc, 'traces', 'protobuf', body)).toStrictEqual(outcome(PAIR.rows, 'traces', 'protobuf', body));
    expect(proto.fallbacks).toBe(before);
  });

  it('leaves the text format to the row path', () => {
    const body = encodeTraces(fc.sample(arbTraces, { numRuns: 1, seed: 4 })[0]!);
    const before = proto.fallbacks;
    const text = { rows: fromRowEncoder(createRowEncoder({ format: 'text' }), LIMITS), transcoder: createEncoder({ format: 'text' }, LIMITS) };
    expectSame('traces', 'protobuf', body, text);
    expect(proto.fallbacks).toBe(before);
  });

  rowPathCases(PAIR.transcoder, (signal, format, body, limits) => expectSame(signal, format, body, limits === undefined ? PAIR : pair(limits)), () => proto.fallbacks);
  handOverCase(PAIR.transcoder, (signal, format, body) => expectSame(signal, format, body));
  largeValueCase(PAIR.transcoder);

  it('a span whose attributes repeat a key takes the row path (its tokens follow the deduplicated list)', () => {
    const before = proto.fallbacks;
    expectSame('traces', 'protobuf', fixtureBytes('bad-keys.bin'));
    expect(proto.fallbacks).toBe(before + 1);
  });

  it('text that the row encoder escapes (U+0000, U+FFFF) or re-encodes (invalid UTF-8), in every text column', () => {
    const texts = [Buffer.from('a\u0000b'), Buffer.from('x\uffffy'), new Uint8Array([0x61, 0xff, 0x62]), Buffer.from('é✓'), new Uint8Array(0)];
    const before = proto.fallbacks;
    for (const t of texts) {
      // The resource's service name, then a span's trace state (3), name (5) and status message (15.2).
      const resource = (w: WireWriter) => w.fork().fork().stringField(1, 'service.name').fork().bytesField(1, t).join(2).join(1).join(1);
      const w = resource(new WireWriter().fork()).fork().fork();
      w.bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2)).bytesField(3, t).bytesField(5, t);
      w.fork().bytesField(2, t).join(15);
      expectSame('traces', 'protobuf', w.join(2).join(2).join(1).finish());
      // A log record's severity text (3), event name (12) and string body (5).
      const l = resource(new WireWriter().fork()).fork().fork();
      l.bytesField(3, t).bytesField(12, t).fork().bytesField(1, t).join(5);
      expectSame('logs', 'protobuf', l.join(2).join(2).join(1).finish());
    }
    expect(proto.fallbacks).toBe(before);
  });

  it('search tokens of every value type: the token a search for the rendered value looks up', () => {
    const body = oneSpan((w) => {
      w.fork().stringField(1, 's').fork().stringField(1, 'plain').join(2).join(9);
      w.fork().stringField(1, 'ü').fork().stringField(1, 'ñandú').join(2).join(9);
      w.fork().stringField(1, 'b').fork().varintField(2, 1).join(2).join(9);
      w.fork().stringField(1, 'i').fork().varintField(3, -42n).join(2).join(9);
      w.fork().stringField(1, 'd').fork().doubleField(4, 1.5).join(2).join(9);
      w.fork().stringField(1, 'y').fork().bytesField(7, new Uint8Array([1, 2, 3])).join(2).join(9);
      w.fork().stringField(1, 'a').fork().fork().fork().stringField(1, 'on').join(1).fork().varintField(3, 7).join(1).join(5).join(2).join(9);
      w.fork().stringField(1, 'e').join(9);
    });
    const before = proto.fallbacks;
    expectSame('traces', 'protobuf', body);
    expect(proto.fallbacks).toBe(before);
    const data = Buffer.from(PAIR.transcoder.encode('traces', 'protobuf', body).chunks[0]!.data);
    const int8s = (v: number) => {
      const b = Buffer.alloc(12);
      b.writeInt32BE(8, 0);
      b.writeInt32BE(Math.floor(v / 2 ** 32), 4);
      b.writeUInt32BE(v % 2 ** 32, 8);
      return b.toString('hex');
    };
    const expected: [string, string][] = [['s', 'plain'], ['ü', 'ñandú'], ['b', 'true'], ['i', '-42'], ['d', '1.5'], ['y', 'AQID'], ['a', '["on",7]'], ['e', '']];
    expect(data.toString('hex')).toContain(expected.map(([k, v]) => int8s(attributeToken(k, v))).join(''));
  });

  it('large requests: 3,000 spans, a span with 40 events, 40 links, 150 attributes and an array of 100 strings', () => {
    const body = largeTracesRequest();
    const before = proto.fallbacks;
    expectSame('traces', 'protobuf', body);
    expect(proto.fallbacks).toBe(before);
    expect(PAIR.transcoder.encode('traces', 'protobuf', body).accepted).toBe(3000);
  });
});
