// The exact-integer JSON parser against what it replaced (JSON.parse with a reviver that reads
// integer literals beyond 2^53 from their source text), on random documents, and on nesting no
// recursive parser survives.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseExactIntegers } from '../../src/pipeline/decode/json-exact.ts';

/** The integer a literal denotes when it is one (mantissa times a power of ten, by bigints), else undefined. */
function integerOf(source: string): bigint | undefined {
  const m = /^(-?\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(source);
  if (!m) return undefined;
  const mantissa = BigInt(m[1]! + (m[2] ?? ''));
  const exp = BigInt(m[3] ?? '0') - BigInt((m[2] ?? '').length);
  if (exp >= 0n) return mantissa * 10n ** exp;
  const div = 10n ** -exp;
  return mantissa % div === 0n ? mantissa / div : undefined;
}

function reviverParse(text: string): unknown {
  return JSON.parse(text, (_k, v: unknown, ctx?: { source?: string }) => {
    if (typeof v !== 'number' || Number.isSafeInteger(v) || ctx?.source === undefined) return v;
    // Integers beyond 2^53, also written with a zero fraction or an exponent (past 2^65 no int64 or uint64 field takes them).
    const exact = /^-?\d+$/.test(ctx.source) || Math.abs(v) <= 2 ** 65 ? integerOf(ctx.source) : undefined;
    return exact ?? v;
  });
}

const bigInteger = fc.oneof(fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }), fc.bigInt({ min: (1n << 53n) - 3n, max: (1n << 53n) + 3n }));
// As written, and with a zero fraction or an exponent (1234567890123456789.0, 1.234567890123456789e18).
const bigLiteral = fc.oneof(
  bigInteger.map((b) => b.toString()),
  bigInteger.map((b) => `${b}.000`),
  bigInteger.filter((b) => b > 9n || b < -9n).map((b) => {
    const digits = (b < 0n ? -b : b).toString();
    return `${b < 0n ? '-' : ''}${digits[0]}.${digits.slice(1)}e${digits.length - 1}`;
  }),
);

describe('parseExactIntegers', () => {
  it('gives what JSON.parse with the source-text reviver gives, on random documents', () => {
    // Integers are spliced in as raw literals (JSON.stringify cannot write a bigint).
    const doc = fc.tuple(fc.jsonValue(), fc.array(bigLiteral, { maxLength: 5 }), fc.boolean()).map(([v, bigs, pretty]) => {
      let text = JSON.stringify({ v, bigs: bigs.map((_, i) => `\u0000${i}`), e: [1e21, -0, 1.5e-7, 123456789012345680000] }, null, pretty ? 2 : undefined);
      bigs.forEach((b, i) => (text = text.replace(`"\\u0000${i}"`, b)));
      return text;
    });
    fc.assert(
      fc.property(doc, (text) => {
        expect(parseExactIntegers(text)).toStrictEqual(reviverParse(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps __proto__ as an own property and the last of duplicate keys at the first place', () => {
    const text = '{"a":1,"__proto__":{"x":1},"b":2,"a":3}';
    const v = parseExactIntegers(text) as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(v).toStrictEqual(JSON.parse(text));
    expect(Object.keys(v)).toEqual(['a', '__proto__', 'b']);
  });

  it('parses nesting a million levels deep', () => {
    const text = '['.repeat(1_000_000) + '9007199254740993' + ']'.repeat(1_000_000);
    let v = parseExactIntegers(text);
    for (let i = 0; i < 1_000_000; i++) v = (v as unknown[])[0];
    expect(v).toBe(9007199254740993n);
  });
});
