// A kvlist_value given again adds its entries to the list before it (protobuf merges a message
// field given again, 3ff114a), and the merged list keeps one entry per key. The keys must be
// deduplicated once the value is complete, not again at each merge: a request of a few hundred KB
// holding one value whose kvlist is given 20,000 times (in one AnyValue, across a KeyValue's value
// fields, or a log body's) cost a decode worker 17 s of CPU (83 s at 670 KB, quadratic in the
// number of merges), and the memory and SQLite stores pay it again at each read of the span.
import { describe, expect, it } from 'vitest';
import { decodeLogsProto, decodeTracesProto, WireWriter } from '../../src/pipeline/decode/index.ts';
import { LIMITS } from '../helpers/otlp-build.ts';

const N = 10_000;

/** A kvlist_value field (6) with one string entry k=v. */
function entry(w: WireWriter, k: string, v: string): void {
  w.fork().fork().stringField(1, k).fork().stringField(1, v).join(2).join(1).join(6);
}

/** Entries k0 … k(N-1), then k0 = last, each in an AnyValue field of its own (`field`: a KeyValue's value 2, a log body 5). */
function eachInAValueOfItsOwn(w: WireWriter, field: number): void {
  for (let i = 0; i < N; i++) {
    w.fork();
    entry(w, `k${i}`, 'v');
    w.join(field);
  }
  w.fork();
  entry(w, 'k0', 'last');
  w.join(field);
}

function span(attr: (w: WireWriter) => void): Uint8Array {
  const w = new WireWriter().fork().fork().fork();
  w.bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2)).stringField(5, 'op');
  w.fixed64Field(7, 1_700_000_000_000_000_000n).fixed64Field(8, 1_700_000_000_100_000_000n);
  w.fork().stringField(1, 'm');
  attr(w);
  w.join(9);
  return w.join(2).join(2).join(1).finish();
}

/** Keys k0 … k(N-1), then k0 again (its last value kept at its first place). */
function expectMerged(values: { key: string; value: unknown }[] | undefined): void {
  expect(values).toHaveLength(N);
  expect(values![0]).toEqual({ key: 'k0', value: { stringValue: 'last' } });
  expect(values![N - 1]).toEqual({ key: `k${N - 1}`, value: { stringValue: 'v' } });
}

describe('a kvlist value given many times', () => {
  it('is merged in time linear in its entries: in one AnyValue, across value fields, in a log body', () => {
    const t0 = performance.now();
    const inOne = decodeTracesProto(
      span((w) => {
        w.fork();
        for (let i = 0; i < N; i++) entry(w, `k${i}`, 'v');
        entry(w, 'k0', 'last');
        w.join(2);
      }),
      LIMITS,
    );
    const across = decodeTracesProto(
      span((w) => eachInAValueOfItsOwn(w, 2)),
      LIMITS,
    );
    const l = new WireWriter().fork().fork().fork().fixed64Field(1, 1_700_000_000_000_000_000n);
    eachInAValueOfItsOwn(l, 5);
    const logs = decodeLogsProto(l.join(2).join(2).join(1).finish(), LIMITS);
    const ms = performance.now() - t0;

    for (const r of [inOne, across]) {
      const v = r.rows[0]?.attributes[0]?.value;
      expectMerged(v && 'kvlistValue' in v ? v.kvlistValue.values : undefined);
    }
    const body = logs.rows[0]?.body;
    expectMerged(body && 'kvlistValue' in body ? body.kvlistValue.values : undefined);
    // Linear: tens of milliseconds; quadratic: tens of seconds.
    expect(ms).toBeLessThan(1500);
  }, 60_000);
});
