// The cases every wire transcoder is checked on against the row path it replaces: the protobuf
// fixtures (as traces and as logs), the OTLP/JSON fixtures (which take the row path), random
// requests encoded by protobufjs (all on the transcoder itself), and random wire messages that
// repeat, reorder, duplicate and corrupt fields, under nesting limits of 1–4 (all but refusals and
// the transcoder's own rare shapes on the transcoder itself).
import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';
import type { Signal } from '../../src/model/signal.ts';
import type { DecodeLimits } from '../../src/pipeline/decode/common.ts';
import type { RequestEncoder, RequestFormat } from '../../src/pipeline/transcode/encoder.ts';
import { fixtureBytes, jsonFixtures, protobufFixtures } from './fixtures.ts';
import { arbLogs, arbTraces, encodeLogs, encodeTraces } from './otlp-build.ts';
import { arbWireRequest } from './otlp-wire-arb.ts';
import { WireWriter } from '../../src/pipeline/decode/index.ts';
import { HAND_OVER_BYTES } from '../../src/pipeline/transcode/byte-out.ts';
import { soleUser } from '../../src/common/release.ts';

/** What an encoder made of a request, chunk bytes as hex (text decoding would hide a difference in invalid sequences), or the error it threw. */
export type Outcome = { accepted: number; rejected: number; errorMessage: string; chunks: { partition: number; rows: number; data: string }[] } | { error: string };

export function outcome(enc: RequestEncoder, signal: Signal, format: RequestFormat, body: Uint8Array): Outcome {
  try {
    const r = enc.encode(signal, format, body);
    return { accepted: r.accepted, rejected: r.rejected, errorMessage: r.errorMessage, chunks: r.chunks.map((c) => ({ partition: c.partition, rows: c.rows, data: Buffer.from(c.data).toString('hex') })) };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

/** Asserts that the transcoder and the row path give the same outcome for one request (under limits, when given). */
export type ExpectSame = (signal: Signal, format: RequestFormat, body: Uint8Array, limits?: DecodeLimits) => void;

/** One case per fixture (inside a describe): each protobuf fixture read as traces and as logs, each OTLP/JSON one as traces; `jsonNote` follows the JSON cases' names. */
export function fixtureCases(expectSame: ExpectSame, jsonNote = ''): void {
  for (const name of protobufFixtures()) {
    it(`fixture ${name}, read as traces and as logs`, () => {
      const body = fixtureBytes(name);
      expectSame('traces', 'protobuf', body);
      expectSame('logs', 'protobuf', body);
    });
  }

  for (const name of jsonFixtures()) {
    it(`fixture ${name}${jsonNote}`, () => {
      expectSame('traces', 'json', fixtureBytes(name));
    });
  }
}

/** Declares the shared cases (inside a describe); `fallbacks` reads the transcoder's row-path count. */
export function rowPathCases(transcoder: RequestEncoder, expectSame: ExpectSame, fallbacks: () => number): void {
  fixtureCases(expectSame, ' (OTLP/JSON: the row path)');

  it('partial rejections and invalid UTF-8 take the transcoder', () => {
    const before = fallbacks();
    expect(transcoder.encode('traces', 'protobuf', fixtureBytes('bad-ids.bin'))).toMatchObject({ accepted: 1, rejected: 6 });
    expect(transcoder.encode('traces', 'protobuf', fixtureBytes('bad-timestamps.bin'))).toMatchObject({ accepted: 2, rejected: 1 });
    expect(transcoder.encode('traces', 'protobuf', fixtureBytes('bad-utf8.bin'))).toMatchObject({ accepted: 1, rejected: 0 });
    expect(transcoder.encode('logs', 'protobuf', fixtureBytes('bad-logs-ids.bin'))).toMatchObject({ accepted: 4, rejected: 0 });
    expect(fallbacks()).toBe(before);
  });

  it('arrays of strings (rendered from their bytes), and arrays that only begin like one', () => {
    const field = (tag: number, ...parts: (string | ArrayLike<number>)[]) => {
      const payload = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(Array.from(p)))));
      return Buffer.concat([Buffer.from([tag, payload.length]), payload]);
    };
    const array = (...elements: Buffer[]) => field(0x2a, ...elements.map((e) => field(0x0a, e)));
    const text = (s: string | ArrayLike<number>) => field(0x0a, s);
    const strings = [
      array(text('a'), text('bc')),
      array(text('é✓'), text('q"b\\s\n'), text('')),
      array(text([0x61, 0xff, 0x62]), text('x')),
      array(),
    ];
    const lookalikes = [
      array(text('a'), Buffer.alloc(0)),
      array(text('a'), Buffer.concat([text('b'), Buffer.from([0x10, 1])])),
      array(Buffer.concat([text('a'), text('b')])),
      array(text('a'), Buffer.from([0x18, 7])),
      // The element claims two bytes more than the array holds: a refusal, as in the row path.
      Buffer.concat([Buffer.from([0x2a, 5, 0x0a, 5, 0x0a, 3]), Buffer.from('xyz')]),
    ];
    const kv = (value: Buffer) => Buffer.concat([field(0x0a, 'k'), field(0x12, value)]);
    const request = (signal: Signal, value: Buffer) => {
      const w = new WireWriter().fork().fork().fork();
      if (signal === 'traces') w.bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2)).bytesField(9, kv(value)).bytesField(9, Buffer.concat([field(0x0a, 'n'), field(0x12, text('v'))]));
      else w.fixed64Field(1, 1n).bytesField(5, value).bytesField(6, kv(value));
      return w.join(2).join(2).join(1).finish();
    };
    for (const signal of ['traces', 'logs'] as const) {
      for (const value of [...strings, ...lookalikes]) expectSame(signal, 'protobuf', request(signal, value));
      // Arrays of strings are the transcoder's own (the refusal is decoded again by the row path).
      const before = fallbacks();
      for (const value of strings) expect(transcoder.encode(signal, 'protobuf', request(signal, value)).accepted).toBe(1);
      expect(fallbacks()).toBe(before);
    }
  });

  it('random trace requests (protobufjs encodings), all on the transcoder', () => {
    const before = fallbacks();
    fc.assert(
      fc.property(arbTraces, (m) => expectSame('traces', 'protobuf', encodeTraces(m))),
      { numRuns: 300 },
    );
    // The generator writes no value nested past the limit and no repeated key.
    expect(fallbacks()).toBe(before);
  });

  it('random log requests (protobufjs encodings), all on the transcoder', () => {
    const before = fallbacks();
    fc.assert(
      fc.property(arbLogs, (m) => expectSame('logs', 'protobuf', encodeLogs(m))),
      { numRuns: 300 },
    );
    expect(fallbacks()).toBe(before);
  });

  for (const signal of ['traces', 'logs'] as const) {
    it(`random wire ${signal} messages: repeated, reordered, duplicated, malformed and unknown fields`, () => {
      const before = fallbacks();
      fc.assert(
        fc.property(arbWireRequest(signal), fc.integer({ min: 1, max: 4 }), (bytes, depth) => {
          expectSame(signal, 'protobuf', bytes, { maxNestingDepth: depth });
        }),
        { numRuns: 1500 },
      );
      // All but refusals (~7%) and the row path's shapes (values nested past limits of 1–4, ~11%) are checked on the transcoder itself.
      expect(fallbacks() - before).toBeLessThan(1500 * 0.3);
    });
  }
}

/**
 * 3,000 spans, the eighth with 40 events, 40 links, 150 attributes and an array of 100 strings:
 * every scratch array of a transcoder grows. Each span in a trace of its own, or all in one.
 */
export function largeTracesRequest(oneTrace = false): Uint8Array {
  const w = new WireWriter().fork().fork();
  for (let i = 0; i < 3000; i++) {
    const id = new Uint8Array(16);
    new DataView(id.buffer).setUint32(0, oneTrace ? 1 : i + 1);
    w.fork().bytesField(1, id).bytesField(2, new Uint8Array(8).fill(2)).stringField(5, `op ${i}`);
    if (i === 7) {
      for (let k = 0; k < 40; k++) w.fork().fixed64Field(1, BigInt(k)).stringField(2, `e${k}`).fork().stringField(1, 'k').fork().varintField(3, k).join(2).join(3).join(11);
      for (let k = 0; k < 40; k++) w.fork().bytesField(1, id).bytesField(2, new Uint8Array(8).fill(k + 1)).fixed32Field(6, k).join(13);
      for (let k = 0; k < 150; k++) w.fork().stringField(1, `k${k}`).fork().varintField(3, k).join(2).join(9);
      w.fork().stringField(1, 'list').fork().fork();
      for (let k = 0; k < 100; k++) w.fork().stringField(1, `v${k}`).join(1);
      w.join(5).join(2).join(9);
    }
    w.join(2);
  }
  return w.join(2).join(1).finish();
}

/**
 * Copies of a traces request that make one chunk of 5 % over HAND_OVER_BYTES together: just past
 * the mark (a buffer grown far past it would be given up after the request anyway).
 */
export function copiesPastHandOver(transcoder: RequestEncoder, request: Uint8Array): Uint8Array[] {
  const bytes = transcoder.encode('traces', 'protobuf', request).chunks[0]!.data.byteLength;
  return Array.from({ length: Math.ceil((HAND_OVER_BYTES * 1.05) / bytes) }, () => request);
}

/**
 * A request whose output passes HAND_OVER_BYTES (inside a describe), for a transcoder that writes
 * one chunk: the same outcome as the row path, a chunk that may move with its buffer, and bytes no
 * later request writes over (the output buffer went with them).
 */
export function handOverCase(transcoder: RequestEncoder, expectSame: ExpectSame): void {
  it(`an output of ${HAND_OVER_BYTES >> 20} MiB or more: the row path's outcome, taken with their buffer, and left alone by the next request`, () => {
    const body = Buffer.concat(copiesPastHandOver(transcoder, largeTracesRequest()));
    expectSame('traces', 'protobuf', body);
    const [chunk, ...more] = transcoder.encode('traces', 'protobuf', body).chunks;
    expect(more).toHaveLength(0);
    expect(chunk!.data.byteLength).toBeGreaterThanOrEqual(HAND_OVER_BYTES);
    expect(soleUser(chunk!.data)).toBe(true);
    const kept = Buffer.from(chunk!.data);
    expect(transcoder.encode('traces', 'protobuf', encodeTraces(fc.sample(arbTraces, { numRuns: 1, seed: 5 })[0]!)).accepted).toBeGreaterThan(0);
    expect(Buffer.from(chunk!.data).equals(kept)).toBe(true);
  });
}

/**
 * One span with a 40 MiB string value (inside `where`: the resource, a kvlist attribute, an array
 * attribute) through the transcoder (inside a describe): each scratch buffer it wrote the value
 * into grew past 32 MiB, and a decode worker that took one such request must not hold them for
 * good. ArrayBuffer bytes the encoder still holds once the request and its chunks are gone are
 * measured after a collection.
 */
export function largeValueCase(transcoder: RequestEncoder): void {
  it('gives up the scratch buffers a request with a 40 MiB value grew (resource, kvlist and array values)', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const request = (value: string, where: 'resource' | 'kvlist' | 'array'): Uint8Array => {
      const w = new WireWriter().fork().fork();
      w.fork().stringField(1, 'service.name').fork().stringField(1, 'svc').join(2).join(1);
      if (where === 'resource') w.fork().stringField(1, 'big').fork().stringField(1, value).join(2).join(1);
      w.join(1).fork().fork();
      w.bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2)).stringField(5, 'op');
      w.fixed64Field(7, 1_700_000_000_000_000_000n).fixed64Field(8, 1_700_000_000_000_000_001n);
      if (where === 'kvlist') w.fork().stringField(1, 'big').fork().fork().fork().stringField(1, 'k').fork().stringField(1, value).join(2).join(1).join(6).join(2).join(9);
      if (where === 'array') w.fork().stringField(1, 'big').fork().fork().fork().stringField(1, value).join(1).join(5).join(2).join(9);
      return w.join(2).join(2).join(1).finish();
    };
    for (const where of ['resource', 'kvlist', 'array'] as const) {
      const small = request('x', where);
      expect(transcoder.encode('traces', 'protobuf', small).accepted).toBe(1);
      gc();
      gc();
      const before = process.memoryUsage().arrayBuffers;
      expect(transcoder.encode('traces', 'protobuf', request('y'.repeat(40 << 20), where)).accepted).toBe(1);
      expect(transcoder.encode('traces', 'protobuf', small).accepted).toBe(1);
      gc();
      gc();
      expect(process.memoryUsage().arrayBuffers - before, where).toBeLessThan(8 << 20);
    }
  });
}
