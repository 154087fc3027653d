// The ClickHouse RowBinary transcoder against the row path it replaces (decode to rows, then the
// RowBinary row encoder), with one shard and with several: on every fixture, on random requests
// encoded by protobufjs, and on random wire messages that repeat, reorder and corrupt fields, it
// must write the same chunks (shard, row count, bytes), keep and reject the same items with the
// same message, and refuse the same requests with the same error. It must also take its own path
// (not the row path it falls back to) on ordinary requests, or it would be checked against itself.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixtureBytes } from '../helpers/fixtures.ts';
import { copiesPastHandOver, handOverCase, largeTracesRequest, largeValueCase, outcome, rowPathCases } from '../helpers/transcoder-cases.ts';
import type { Signal as RequestSignal } from '../../src/model/signal.ts';
import { fromRowEncoder, type RequestEncoder, type RequestFormat } from '../../src/pipeline/transcode/encoder.ts';
import { createEncoder } from '../../src/pipeline/transcode/rowbinary/index.ts';
import * as proto from '../../src/pipeline/transcode/rowbinary/proto.ts';
import { createEncoder as createRowEncoder } from '../../src/storage/clickhouse/encoder.ts';
import { loadRequestEncoder } from '../../src/pipeline/transcode/registry.ts';
import { WireWriter } from '../../src/pipeline/decode/index.ts';
import { HAND_OVER_BYTES } from '../../src/pipeline/transcode/byte-out.ts';
import { soleUser } from '../../src/common/release.ts';
import { arbTraces, encodeTraces, LIMITS } from '../helpers/otlp-build.ts';

const SHARDS = [1, 3];

function pair(partitions: number, limits = LIMITS): { rows: RequestEncoder; transcoder: RequestEncoder } {
  return { rows: fromRowEncoder(createRowEncoder({ partitions }), limits), transcoder: createEncoder({ partitions }, limits) };
}

const PAIRS = new Map(SHARDS.map((n) => [n, pair(n)]));

function expectSame(signal: RequestSignal, format: RequestFormat, body: Uint8Array, encoders = [...PAIRS.values()]): void {
  for (const { rows, transcoder } of encoders) expect(outcome(transcoder, signal, format, body)).toStrictEqual(outcome(rows, signal, format, body));
}


describe('RowBinary transcoder: same chunks as the row path', () => {
  it('is the encoder the registry gives ClickHouse stores', async () => {
    const enc = await loadRequestEncoder({ name: 'clickhouse', options: { partitions: 2 } }, LIMITS);
    const body = encodeTraces(fc.sample(arbTraces, { numRuns: 1, seed: 3 })[0]!);
    const before = proto.fallbacks;
    expect(outcome(enc, 'traces', 'protobuf', body)).toStrictEqual(outcome(pair(2).rows, 'traces', 'protobuf', body));
    expect(proto.fallbacks).toBe(before);
  });

  // Shard counts take turns, one request each.
  let turn = 0;
  rowPathCases(PAIRS.get(3)!.transcoder, (signal, format, body, limits) => expectSame(signal, format, body, limits === undefined ? undefined : [pair(SHARDS[turn++ % SHARDS.length]!, limits)]), () => proto.fallbacks);
  // One shard writes one chunk, which takes the buffer (several shards: the case further down).
  handOverCase(PAIRS.get(1)!.transcoder, (signal, format, body) => expectSame(signal, format, body, [PAIRS.get(1)!]));
  largeValueCase(PAIRS.get(1)!.transcoder);

  it('repeated keys take the transcoder; deep nesting the row path', () => {
    const enc = PAIRS.get(3)!.transcoder;
    const before = proto.fallbacks;
    expect(enc.encode('traces', 'protobuf', fixtureBytes('bad-keys.bin'))).toMatchObject({ accepted: 1, rejected: 0 });
    expect(proto.fallbacks).toBe(before);
    enc.encode('traces', 'protobuf', fixtureBytes('bad-nesting-1000.bin'));
    expect(proto.fallbacks).toBe(before + 1);
  });

  it('long attribute lists (the Set path of the duplicate check), with and without a repeated key', () => {
    for (const keys of [150, 70]) {
      const w = new WireWriter().fork().fork().fork();
      w.bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2));
      for (let i = 0; i < 150; i++) w.fork().stringField(1, `k${i % keys}`).fork().varintField(3, i).join(2).join(9);
      expectSame('traces', 'protobuf', w.join(2).join(2).join(1).finish());
    }
  });

  it('times past 2106 (clamped key, exact time in the extra), end before start, unknown kind and status', () => {
    const w = new WireWriter().fork().fork().fork();
    w.bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2));
    w.fixed64Field(7, 5_000_000_000_000_000_000n).fixed64Field(8, 4_999_999_999_999_999_999n).varintField(6, 9);
    w.fork().varintField(3, 7).join(15);
    const body = w.join(2).join(2).join(1).finish();
    const before = proto.fallbacks;
    expectSame('traces', 'protobuf', body);
    expect(proto.fallbacks).toBe(before);
    const out = PAIRS.get(1)!.transcoder.encode('traces', 'protobuf', body);
    expect(Buffer.from(out.chunks[0]!.data).toString('latin1')).toContain('{"st":"5000000000000000000","k":9,"en":"4999999999999999999","c":7}');
  });
  it('array attributes: strings (escapes, invalid UTF-8, empty), mixed and nested, as span attributes and as a log body', () => {
    const str = (w: WireWriter, v: Uint8Array) => w.fork().bytesField(1, v).join(1);
    const arrays: ((w: WireWriter) => void)[] = [
      (w) => [Buffer.from('a"b\\\n'), Buffer.from('é✓'), new Uint8Array([0xff, 0x41]), new Uint8Array(0)].forEach((v) => str(w, v)),
      () => {},
      (w) => (str(w, Buffer.from('x')), w.fork().varintField(3, 5).join(1)),
      (w) => w.fork().fork().fork().bytesField(1, Buffer.from('deep')).join(1).join(5).join(1),
    ];
    for (const fill of arrays) {
      const t = new WireWriter().fork().fork().fork();
      t.bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2));
      for (const key of ['s', 'a', 'b']) {
        t.fork().stringField(1, key).fork();
        if (key === 's') t.stringField(1, 'plain');
        else {
          t.fork();
          fill(t);
          t.join(5);
        }
        t.join(2).join(9);
      }
      const traces = t.join(2).join(2).join(1).finish();
      const l = new WireWriter().fork().fork().fork().fork().fork();
      fill(l);
      const logs = l.join(5).join(5).join(2).join(2).join(1).finish();
      const before = proto.fallbacks;
      expectSame('traces', 'protobuf', traces);
      expectSame('logs', 'protobuf', logs);
      expect(proto.fallbacks).toBe(before);
    }
    const out = PAIRS.get(1)!.transcoder.encode('traces', 'protobuf', new WireWriter().fork().fork().fork().bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2)).fork().stringField(1, 'f').fork().fork().fork().stringField(1, 'on').join(1).join(5).join(2).join(9).join(2).join(2).join(1).finish());
    expect(Buffer.from(out.chunks[0]!.data).toString('latin1')).toContain('{"t":"j","j":[{"arrayValue":{"values":[{"stringValue":"on"}]}}]}');
  });
  it('long strings (two-byte lengths), valid, invalid and with NUL, as names, keys, values and bytes', () => {
    const longs = [Buffer.from('n'.repeat(300)), Buffer.concat([Buffer.from('é'.repeat(100)), Buffer.from([0xc3])]), Buffer.from('a\u0000b'.repeat(60)), new Uint8Array(200).fill(0xfe)];
    for (const v of longs) {
      const w = new WireWriter().fork().fork().fork();
      w.bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2)).bytesField(5, v).bytesField(3, v);
      w.fork().bytesField(1, v).fork().bytesField(1, v).join(2).join(9);
      w.fork().stringField(1, 'bytes').fork().bytesField(7, v).join(2).join(9);
      w.fork().bytesField(1, v).fork().varintField(3, 1).join(2).join(9);
      const before = proto.fallbacks;
      expectSame('traces', 'protobuf', w.join(2).join(2).join(1).finish());
      expect(proto.fallbacks).toBe(before);
    }
  });
  it('large requests: 3,000 spans, a span with 40 events, 40 links, 150 attributes and an array of 100 strings', () => {
    const body = largeTracesRequest();
    const before = proto.fallbacks;
    expectSame('traces', 'protobuf', body);
    expect(proto.fallbacks).toBe(before);
    const out = PAIRS.get(3)!.transcoder.encode('traces', 'protobuf', body);
    expect(out.accepted).toBe(3000);
    expect(out.chunks.map((c) => c.partition)).toStrictEqual([0, 1, 2]);
  });

  it(`several shards: one with ${HAND_OVER_BYTES >> 20} MiB or more takes the buffer, its rows moved down over the others'; the row path's chunks`, () => {
    // Five shards: the one trace's shard (3) is neither the first nor the last.
    const five = pair(5);
    const { transcoder } = five;
    // Spans spread over the shards around a run of requests whose spans share one trace (one shard).
    const spread = largeTracesRequest();
    const body = Buffer.concat([spread, ...copiesPastHandOver(transcoder, largeTracesRequest(true)), spread]);
    expectSame('traces', 'protobuf', body, [five]);
    const chunks = transcoder.encode('traces', 'protobuf', body).chunks;
    expect(chunks.map((c) => c.partition)).toStrictEqual([0, 1, 2, 3, 4]);
    const large = chunks.filter((c) => c.data.byteLength >= HAND_OVER_BYTES);
    expect(large).toHaveLength(1);
    // It has its buffer (with room left at its end); the others are copies of their own.
    expect(large[0]!.data.buffer.byteLength).toBeGreaterThan(large[0]!.data.byteLength);
    for (const c of chunks) expect(soleUser(c.data)).toBe(true);
    const kept = chunks.map((c) => Buffer.from(c.data));
    expect(transcoder.encode('traces', 'protobuf', spread).accepted).toBe(3000);
    chunks.forEach((c, i) => expect(Buffer.from(c.data).equals(kept[i]!)).toBe(true));
  });
});
