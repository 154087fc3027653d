// The transcoders' output writer: decimal digits without BigInt, JSON strings from UTF-8 bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteOut } from '../../src/pipeline/transcode/byte-out.ts';

const text = (o: ByteOut) => Buffer.from(o.buf.subarray(0, o.pos)).toString('utf8');
const halves = (v: bigint): [number, number] => [Number(BigInt.asUintN(64, v) & 0xffffffffn), Number(BigInt.asUintN(64, v) >> 32n)];

describe('ByteOut', () => {
  it('writes every uint64 and int64 as its exact decimal text', () => {
    const edges = [0n, 9n, 10n, (1n << 31n) - 1n, 1n << 31n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 17n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n];
    const u64 = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.constantFrom(...edges), fc.bigInt({ min: (1n << 53n) - 50n, max: (1n << 53n) + 50n }));
    fc.assert(
      fc.property(u64, (v) => {
        const o = new ByteOut(8);
        o.uint64(...halves(v));
        expect(text(o)).toBe(v.toString());
        o.pos = 0;
        o.int64(...halves(v));
        expect(text(o)).toBe(BigInt.asIntN(64, v).toString());
      }),
      { numRuns: 3000 },
    );
  });

  it('writes UTF-8 bytes as the JSON string JSON.stringify gives for their decoded text', () => {
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))));
    fc.assert(
      fc.property(bytes, (b) => {
        const o = new ByteOut(4);
        o.jsonStringUtf8(b, 0, b.length);
        expect(Buffer.from(o.buf.subarray(0, o.pos))).toStrictEqual(Buffer.from(JSON.stringify(Buffer.from(b).toString('utf8')), 'utf8'));
      }),
      { numRuns: 3000 },
    );
  });

  it('gives back a buffer one huge request grew past 32 MiB, and keeps a smaller one for reuse', () => {
    const o = new ByteOut(1024);
    o.ensure(8 << 20);
    o.shrink();
    expect(o.buf.length).toBeGreaterThanOrEqual(8 << 20);
    o.ensure(40 << 20);
    o.shrink();
    expect(o.buf.length).toBe(1024);
  });
});
