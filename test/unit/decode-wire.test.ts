// The wire reader and writer on their own, cross-checked against protobufjs's Reader and Writer.
import fc from 'fast-check';
import Long from 'long';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { DecodeError, WireReader, WireWriter } from '../../src/pipeline/decode/index.ts';

const reader = (bytes: number[] | Uint8Array) => new WireReader(Uint8Array.from(bytes));

describe('WireReader', () => {
  it('reads varints of 1 to 10 bytes', () => {
    const cases: [number[], bigint][] = [
      [[0x00], 0n],
      [[0x7f], 127n],
      [[0x80, 0x01], 128n],
      [[0xff, 0xff, 0xff, 0xff, 0x0f], 0xffffffffn],
      [[0x80, 0x80, 0x80, 0x80, 0x10], 1n << 32n],
      [[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], (1n << 64n) - 1n],
      [[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 1n << 63n],
    ];
    for (const [bytes, value] of cases) {
      const r = reader(bytes);
      expect(r.uint64()).toBe(value);
      expect(r.pos).toBe(bytes.length);
    }
  });

  it('refuses varints longer than 10 bytes and 10-byte varints beyond 64 bits', () => {
    expect(() => reader([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x01]).uint64()).toThrow(/longer than 10 bytes/);
    expect(() => reader([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).uint32()).toThrow(DecodeError);
    expect(() => reader([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).uint64()).toThrow(/overflows 64 bits/);
  });

  it('refuses truncated varints and fixed-width values', () => {
    expect(() => reader([0x80]).uint32()).toThrow(/truncated/);
    expect(() => reader([0xff, 0xff, 0xff, 0xff, 0xff]).uint64()).toThrow(/truncated/);
    expect(() => reader([1, 2, 3]).fixed32()).toThrow(/truncated/);
    expect(() => reader([1, 2, 3, 4, 5, 6, 7]).fixed64()).toThrow(/truncated/);
    expect(() => reader([1, 2, 3, 4, 5, 6, 7]).double()).toThrow(/truncated/);
  });

  it('truncates uint32/int32 to the low 32 bits the way protobuf does (negative enums are 10 bytes)', () => {
    const bytes = new protobuf.Writer().int32(-2).uint32(0xfffffffe).finish();
    const r = new WireReader(bytes);
    expect(r.int32()).toBe(-2);
    expect(r.uint32()).toBe(0xfffffffe);
  });

  it('renders int64 varints exactly as decimal text', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), (v) => {
        const bytes = new protobuf.Writer().int64(Long.fromString(v.toString())).finish();
        expect(new WireReader(bytes).int64String()).toBe(v.toString());
      }),
      { numRuns: 2000 },
    );
    for (const v of [0n, -1n, 1023n, 1024n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, -(2n ** 53n) + 1n, 2n ** 63n - 1n, -(2n ** 63n), -(2n ** 32n)]) {
      const bytes = new protobuf.Writer().int64(Long.fromString(v.toString())).finish();
      expect(new WireReader(bytes).int64String()).toBe(v.toString());
    }
  });

  it('reads fixed64 as an exact bigint and doubles bit for bit', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.double(), (u, d) => {
        const bytes = new protobuf.Writer().fixed64(Long.fromString(u.toString(), true)).double(d).finish();
        const r = new WireReader(bytes);
        expect(r.fixed64()).toBe(u);
        expect(Object.is(r.double(), d)).toBe(true);
      }),
    );
  });

  it('checks length prefixes against the end of the input', () => {
    expect(() => reader([0x05, 1, 2, 3]).bytes()).toThrow(/length prefix 5 at offset 0 runs beyond the end/);
    expect(() => reader([0xff, 0xff, 0xff, 0xff, 0x0f]).bytes()).toThrow(/beyond the end/);
    expect(() => reader([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).bytes()).toThrow(/beyond the end/);
    expect(reader([0x03, 0x61, 0x62, 0x63]).string()).toBe('abc');
  });

  it('skips fields of wire types 0, 1, 2 and 5 and refuses groups and undefined wire types', () => {
    const bytes = new WireWriter().varintField(1, 2n ** 63n).fixed64Field(2, 5n).stringField(3, 'skip me').fixed32Field(4, 9).varintField(5, 42).finish();
    const r = new WireReader(bytes);
    for (let i = 0; i < 4; i++) r.skip(r.tag());
    expect(r.tag()).toBe((5 << 3) | 0);
    expect(r.uint32()).toBe(42);

    expect(() => reader([0x0b]).skip(reader([0x0b]).tag())).toThrow(/group/); // field 1, wire type 3
    expect(() => reader([0x0c]).skip(reader([0x0c]).tag())).toThrow(/group/); // wire type 4
    expect(() => reader([0x0e]).tag()).toThrow(/invalid wire type 6/);
    expect(() => reader([0x0f]).tag()).toThrow(/invalid wire type 7/);
    expect(() => reader([0x02, 0x00]).tag()).toThrow(/field number 0/);
  });
});

describe('WireWriter', () => {
  it('writes what protobufjs reads back', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
        fc.nat({ max: 0xffffffff }),
        fc.double(),
        fc.string({ unit: 'binary' }),
        fc.uint8Array({ maxLength: 300 }),
        (u64, i64, u32, d, s, b) => {
          const w = new WireWriter()
            .varintField(1, u64)
            .varintField(2, i64)
            .fixed32Field(3, u32)
            .fixed64Field(4, u64)
            .doubleField(5, d)
            .stringField(6, s)
            .fork()
            .bytesField(1, b)
            .join(7);
          const r = new protobuf.Reader(w.finish());
          expect(r.uint32()).toBe((1 << 3) | 0);
          expect(BigInt(r.uint64().toString())).toBe(u64);
          expect(r.uint32()).toBe((2 << 3) | 0);
          expect(BigInt(r.int64().toString())).toBe(i64);
          expect(r.uint32()).toBe((3 << 3) | 5);
          expect(r.fixed32()).toBe(u32);
          expect(r.uint32()).toBe((4 << 3) | 1);
          expect(BigInt(r.fixed64().toString())).toBe(u64);
          expect(r.uint32()).toBe((5 << 3) | 1);
          expect(Object.is(r.double(), d)).toBe(true);
          expect(r.uint32()).toBe((6 << 3) | 2);
          expect(r.string()).toBe(s);
          expect(r.uint32()).toBe((7 << 3) | 2);
          const inner = new protobuf.Reader(r.bytes());
          expect(inner.uint32()).toBe((1 << 3) | 2);
          expect(Uint8Array.from(inner.bytes())).toStrictEqual(b);
          expect(r.pos).toBe(r.len);
        },
      ),
    );
  });

  it('refuses unbalanced fork/join', () => {
    expect(() => new WireWriter().join(1)).toThrow();
    expect(() => new WireWriter().fork().finish()).toThrow();
  });
});
