// The span runs' attribute filters (src/storage/sqlite/terms.ts): a filter never lacks a term its
// run was given (a search would miss the run's spans), however many terms the run has, and at the
// sizes runs get it passes over most runs without a wanted term (else searches decode documents
// for nothing).
import { describe, expect, it } from 'vitest';
import type { KeyValue } from '../../src/model/rows.ts';
import { WireReader } from '../../src/pipeline/decode/wire.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { readSpanChunk, spanBytes } from '../../src/storage/otlp-chunks.ts';
import { attributeTerm, bloomHas, RunTerms } from '../../src/storage/sqlite/terms.ts';
import { makeSpan } from '../helpers/rows.ts';

const str = (key: string, v: string): KeyValue => ({ key, value: { stringValue: v } });

function filterOf(attributes: KeyValue[]): Uint8Array {
  const terms = new RunTerms();
  terms.begin();
  terms.addAttributes(attributes);
  return Uint8Array.from(terms.filter());
}

/** The filter of one span with these attributes, from the span's protobuf bytes as the store keeps them. */
function filterOfStored(attributes: KeyValue[]): Uint8Array {
  const terms = new RunTerms();
  terms.begin();
  for (const c of createEncoder({}).encodeSpans([makeSpan({ attributes })])) {
    readSpanChunk(c.data, (_g, buf, r) => {
      const span = spanBytes(buf, r);
      terms.add(new WireReader(span), 0, span.length);
    });
  }
  return Uint8Array.from(terms.filter());
}

const has = (filter: Uint8Array, key: string, value: string) => {
  const [h1, h2] = attributeTerm(key, value);
  return bloomHas(filter, h1, h2);
};

describe('span run attribute filters', () => {
  it('hold every term of their run, from one term to past the largest filter', () => {
    for (const n of [0, 1, 7, 200, 5_000, 100_000]) {
      const attributes = Array.from({ length: n }, (_, i) => str(`k${i % 40}`, `value-${i}`));
      const filter = filterOf(attributes);
      expect(attributes.filter((a) => !has(filter, a.key, (a.value as { stringValue: string }).stringValue))).toEqual([]);
    }
  });

  it.each([
    ['decoded attributes', filterOf],
    ['a stored span\'s bytes', filterOfStored],
  ])('hold the value-less term of doubles, arrays and maps, and the rendering of integers, booleans and bytes (%s)', (_from, filterOf) => {
    const filter = filterOf([
      { key: 'ratio', value: { doubleValue: 0.5 } },
      { key: 'tags', value: { arrayValue: { values: [{ stringValue: 'a' }] } } },
      { key: 'n', value: { intValue: '-9223372036854775808' } },
      { key: 'ok', value: { boolValue: false } },
      { key: 'raw', value: { bytesValue: 'AAEC' } },
      ...['0', '7', '4294967295', '4294967296', '-1'].map((v, i) => ({ key: `i${i}`, value: { intValue: v } })),
    ]);
    for (const [k, v] of [['ratio', ''], ['tags', ''], ['n', '-9223372036854775808'], ['ok', 'false'], ['raw', 'AAEC'], ['i0', '0'], ['i1', '7'], ['i2', '4294967295'], ['i3', '4294967296'], ['i4', '-1']] as const) expect(has(filter, k, v)).toBe(true);
  });

  it('hold the term of an AnyValue\'s last field when it has several, as protobuf reads a oneof (a stored span\'s bytes)', () => {
    // A span's bytes holding one attribute `k` whose AnyValue is a string field, then an int field
    // (and the reverse): only the last counts, whatever the first one's layout.
    const filterOfValue = (anyValue: number[]) => {
      const kv = [10, 1, 0x6b, 18, anyValue.length, ...anyValue];
      const span = Uint8Array.from([74, kv.length, ...kv]);
      const terms = new RunTerms();
      terms.begin();
      terms.add(new WireReader(span), 0, span.length);
      return Uint8Array.from(terms.filter());
    };
    const stringThenInt = filterOfValue([10, 3, 0x61, 0x62, 0x63, 24, 7]);
    expect(has(stringThenInt, 'k', '7')).toBe(true);
    expect(has(stringThenInt, 'k', 'abc')).toBe(false);
    const intThenString = filterOfValue([24, 7, 10, 3, 0x61, 0x62, 0x63]);
    expect(has(intThenString, 'k', 'abc')).toBe(true);
    expect(has(intThenString, 'k', '7')).toBe(false);
  });

  it('pass over runs without a term: at most a few percent of absent terms pass a run of 200', () => {
    const filter = filterOf(Array.from({ length: 200 }, (_, i) => str(`key.${i % 20}`, `present-${i}`)));
    let passed = 0;
    for (let i = 0; i < 10_000; i++) if (has(filter, `key.${i % 20}`, `absent-${i}`)) passed++;
    // 8 to 16 bits and 4 bits set per term: 0.2–2.4 % expected.
    expect(passed / 10_000).toBeLessThan(0.03);
  });

  it('are empty for a run without attributes: no term passes', () => {
    const filter = filterOf([]);
    expect(filter.length).toBeGreaterThan(0);
    expect(has(filter, 'any', 'thing') || has(filter, 'any', '')).toBe(false);
  });
});
