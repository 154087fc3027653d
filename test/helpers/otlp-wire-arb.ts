// Random OTLP wire messages for the transcoders' safety nets: each message is written field by
// field, so fields repeat, come in any order, carry ids of every length, invalid UTF-8, times
// beyond int64, unknown fields and, rarely, corrupt bytes (see arbWireRequest).
import fc from 'fast-check';
import { WireWriter } from '../../src/pipeline/decode/index.ts';
import type { Signal as RequestSignal } from '../../src/model/signal.ts';

// ---------------------------------------------------------------------------------------------
// Random wire messages, written field by field: each message is a random sequence of its fields
// (any order, any repetition), with ids of every length, strings with invalid UTF-8 and control
// characters, keys from a small pool (so they repeat), times beyond int64, unknown fields, and,
// rarely, a corrupt byte sequence.

type Piece = (w: WireWriter) => void;

const idBytes = (n: number) =>
  fc.oneof(
    { arbitrary: fc.uint8Array({ minLength: n, maxLength: n }), weight: 6 },
    { arbitrary: fc.constant(new Uint8Array(n)), weight: 1 },
    { arbitrary: fc.uint8Array({ maxLength: 20 }), weight: 1 },
  );
const strBytes = fc.oneof(
  fc.string({ maxLength: 10 }).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))),
  fc.constantFrom('service.name', 'k', 'a"b\\c\n\t\u0001', '€✓', 'x'.repeat(40)).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))),
  fc.uint8Array({ maxLength: 12 }),
);
const keyBytes = fc.oneof(
  { arbitrary: fc.constantFrom('service.name', 'a', 'b', 'c', '__proto__', '', 'k\u0000').map((s) => new Uint8Array(Buffer.from(s, 'utf8'))), weight: 5 },
  { arbitrary: fc.constantFrom(new Uint8Array([0xff]), new Uint8Array([0xfe])), weight: 1 },
);
const u64 = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: (1n << 63n) - 2n, max: (1n << 63n) + 2n }), fc.constantFrom(0n, 1n, 1700000000000000000n));
const varint = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.nat({ max: 300 }).map(BigInt), fc.constantFrom(-1n, -5n, 1n << 31n));

function fields(menu: fc.Arbitrary<Piece>[], maxLength: number, minLength = 0): fc.Arbitrary<Piece> {
  return fc.array(fc.oneof(...menu), { minLength, maxLength }).map((ps) => (w: WireWriter) => ps.forEach((p) => p(w)));
}
const msg = (field: number, body: fc.Arbitrary<Piece>): fc.Arbitrary<Piece> => body.map((b) => (w: WireWriter) => (b(w.fork()), w.join(field)));
const str = (field: number) => strBytes.map((v) => (w: WireWriter) => void w.bytesField(field, v));
const id = (field: number, n: number) => idBytes(n).map((v) => (w: WireWriter) => void w.bytesField(field, v));
const num = (field: number) => varint.map((v) => (w: WireWriter) => void w.varintField(field, v));
const fx64 = (field: number) => u64.map((v) => (w: WireWriter) => void w.fixed64Field(field, v));
const fx32 = (field: number) => fc.nat({ max: 0xffffffff }).map((v) => (w: WireWriter) => void w.fixed32Field(field, v));
const unknown = fc.oneof(
  fc.nat({ max: 1000 }).map((v) => (w: WireWriter) => void w.varintField(20, v)),
  strBytes.map((v) => (w: WireWriter) => void w.bytesField(21, v)),
  fc.constant((w: WireWriter) => void w.fixed32Field(22, 7)),
);
const corrupt = fc.constantFrom<Piece>(
  (w) => void w.raw([0x0a, 0x05, 0x01]),
  (w) => void w.raw([0x00]),
  (w) => void w.raw([0x0b]),
  (w) => void w.varintField(1, 5),
);

const anyValue: fc.Memo<Piece> = fc.memo((n) => {
  const scalars = [
    str(1),
    fc.boolean().map((b) => (w: WireWriter) => void w.varintField(2, b)),
    fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map((v) => (w: WireWriter) => void w.varintField(3, v)),
    fc.oneof(fc.double(), fc.constantFrom(NaN, -0, Infinity)).map((d) => (w: WireWriter) => void w.doubleField(4, d)),
    fc.uint8Array({ maxLength: 8 }).map((v) => (w: WireWriter) => void w.bytesField(7, v)),
  ];
  if (n <= 1) return fields(scalars, 2);
  return fields([...scalars, msg(5, fields([msg(1, anyValue(n - 1))], 3)), msg(6, fields([msg(1, keyValue(n - 1))], 3))], 2);
});
const keyValue = (n: number): fc.Arbitrary<Piece> =>
  fc.oneof(
    { arbitrary: fc.tuple(keyBytes, anyValue(n)).map(([k, v]) => (w: WireWriter) => (w.bytesField(1, k), v(w.fork()), w.join(2))), weight: 6 },
    { arbitrary: fields([keyBytes.map((k) => (w: WireWriter) => void w.bytesField(1, k)), msg(2, anyValue(n)), unknown], 4), weight: 1 },
  );
const attr = (field: number) => msg(field, keyValue(4));

const resource = fields([attr(1), num(2), str(3), unknown], 5);
const scope = fields([str(1), str(2), attr(3), num(4), unknown], 5);
const event = fields([fx64(1), str(2), attr(3), num(4), unknown], 5);
const link = fields([id(1, 16), id(2, 8), str(3), attr(4), num(5), fx32(6), unknown], 6);
const status = fields([str(2), num(3), unknown], 3);
const spanItem = fc.oneof(
  { arbitrary: fields([id(1, 16), id(2, 8), str(3), id(4, 8), str(5), num(6), fx64(7), fx64(8), attr(9), num(10), msg(11, event), num(12), msg(13, link), num(14), msg(15, status), fx32(16), unknown], 14), weight: 20 },
  { arbitrary: fields([id(1, 16), id(2, 8), attr(9), corrupt], 4), weight: 1 },
);
const logItem = fc.oneof(
  { arbitrary: fields([fx64(1), num(2), str(3), msg(5, anyValue(4)), attr(6), num(7), fx32(8), id(9, 16), id(10, 8), fx64(11), str(12), unknown], 12), weight: 20 },
  { arbitrary: fields([fx64(1), attr(6), corrupt], 4), weight: 1 },
);

/** A random export request of the signal, as wire bytes. */
export function arbWireRequest(signal: RequestSignal): fc.Arbitrary<Uint8Array> {
  const item = signal === 'traces' ? spanItem : logItem;
  // A well-formed item gets its ids most of the time so that most items are kept.
  const goodIds: Piece = (w) => void (signal === 'traces' ? w.bytesField(1, new Uint8Array(16).fill(7)).bytesField(2, new Uint8Array(8).fill(9)) : w);
  const itemMsg = fc.tuple(fc.boolean(), item).map(([ids, body]) => (w: WireWriter) => {
    w.fork();
    if (ids) goodIds(w);
    body(w);
    w.join(2);
  });
  const scopeItems = fields([msg(1, scope), itemMsg, itemMsg, itemMsg, str(3), unknown], 8, 2);
  const resourceItems = fields([msg(1, resource), msg(2, scopeItems), msg(2, scopeItems), str(3), unknown], 5, 2);
  return fields([msg(1, resourceItems), msg(1, resourceItems), unknown], 3, 1).map((p) => {
    const w = new WireWriter();
    p(w);
    return w.finish();
  });
}
