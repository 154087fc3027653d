// The memory store's row queue against a plain array: the same items in the same order through
// pushes and shifts that cross its segment boundaries, and the same answers to every read.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Queue } from '../../src/storage/memory/queue.ts';

type Op = { push: number } | { shift: number };

function check(q: Queue<number>, model: number[]): void {
  expect(q.length).toBe(model.length);
  expect(q.first()).toBe(model[0]);
  expect(q.last()).toBe(model[model.length - 1]);
  expect(q.at(-1)).toBeUndefined();
  expect(q.at(model.length)).toBeUndefined();
  for (const i of [0, 1, 4095, 4096, 4097, model.length >> 1, model.length - 1]) if (i >= 0 && i < model.length) expect(q.at(i)).toBe(model[i]);
  // Items are numbered in insertion order, so "item < x" holds for a prefix.
  for (const x of [-1, model[0] ?? 0, model[model.length >> 1] ?? 0, (model[model.length - 1] ?? 0) + 1]) {
    const want = model.findIndex((v) => !(v < x));
    expect(q.search((v) => v < x)).toBe(want === -1 ? model.length : want);
  }
}

describe('memory store row queue', () => {
  it('keeps insertion order through pushes and shifts across segments, and reads as an array would', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.record({ push: fc.integer({ min: 1, max: 9000 }) }), fc.record({ shift: fc.integer({ min: 1, max: 9000 }) })), { maxLength: 12 }), (ops: Op[]) => {
        const q = new Queue<number>();
        const model: number[] = [];
        let next = 0;
        for (const op of ops) {
          if ('push' in op) {
            for (let k = 0; k < op.push; k++) {
              q.push(next);
              model.push(next++);
            }
          } else {
            for (let k = 0; k < op.shift; k++) expect(q.shift()).toBe(model.shift());
          }
          check(q, model);
        }
        expect([...q.from(0)]).toEqual(model);
        expect([...q.from(model.length >> 1)]).toEqual(model.slice(model.length >> 1));
        expect([...q.from(-3)]).toEqual(model);
      }),
      { numRuns: 60 },
    );
  });

  it('is empty again after its last item is shifted, and takes items after that', () => {
    const q = new Queue<string>();
    expect(q.shift()).toBeUndefined();
    for (let i = 0; i < 4096; i++) q.push(`r${i}`);
    for (let i = 0; i < 4096; i++) expect(q.shift()).toBe(`r${i}`);
    expect(q.length).toBe(0);
    expect(q.first()).toBeUndefined();
    expect(q.shift()).toBeUndefined();
    q.push('again');
    expect([...q.from(0)]).toEqual(['again']);
  });
});
