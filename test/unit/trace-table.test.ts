// The memory store's traces by id (TraceTable): open addressing over the id's four words, whose
// deletes shift probe runs back and move traces to new places. Checked against a Map over random
// adds and deletes in a table that starts at 8 places: ids from a pool of 36 (many adds of one id,
// long runs that wrap around the table's end), or any ids (so it grows and, as deletes empty it,
// shrinks back).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addsAndDeletes } from '../helpers/table-ops.ts';
import { newTrace, type TraceEntry } from '../../src/storage/memory/spans.ts';
import { TraceTable } from '../../src/storage/memory/trace-table.ts';

const few = fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 5 })).map(([a, b]) => [a, 0, b, 1] as const);
const any = fc.tuple(fc.integer(), fc.integer(), fc.integer(), fc.integer()).map(([a, b, c, d]) => [a, b, c, d] as const);

function idBytes(w: readonly [number, number, number, number]): Buffer {
  const b = Buffer.alloc(20);
  // At an offset, as a trace id sits in a span record.
  for (let i = 0; i < 4; i++) b.writeInt32LE(w[i]!, 4 + 4 * i);
  return b;
}

describe('TraceTable', () => {
  it.each([
    ['ids from a small pool', few],
    ['any ids', fc.oneof(few, any)],
  ])('finds what a Map holds over random adds and deletes: %s', (_, id) => {
    fc.assert(
      fc.property(addsAndDeletes(id), (ops) => {
        const table = new TraceTable(8);
        const model = new Map<string, TraceEntry>();
        for (const [kind, w] of ops) {
          const b = idBytes(w);
          const hex = b.toString('hex', 4, 20);
          const found = table.find(b, 4);
          expect(found).toBe(model.get(hex));
          if (kind === 'add' && found === undefined) {
            const t = newTrace();
            table.addMissed(t);
            model.set(hex, t);
          } else if (kind === 'delete' && found !== undefined) {
            table.delete(found);
            model.delete(hex);
            expect(table.find(b, 4)).toBeUndefined();
          }
          expect(table.size).toBe(model.size);
          // What a delete moved back, or a resize put elsewhere, is still found, and by its hex too
          // (one expect a step: one for each trace held took 16 million of them, 25 s).
          expect([...model].filter(([h, t]) => table.get(h) !== t).map(([h]) => h)).toEqual([]);
        }
        expect(new Set(table.values())).toEqual(new Set(model.values()));
      }),
      { numRuns: 200 },
    );
  });

  it('finds nothing for a read id that is not 32 lowercase hex digits', () => {
    const table = new TraceTable(8);
    const b = idBytes([0x0abcdef1, 2, 3, 4]);
    expect(table.find(b, 4)).toBeUndefined();
    table.addMissed(newTrace());
    const hex = b.toString('hex', 4, 20);
    expect(table.get(hex)).toBeDefined();
    expect(table.get(hex.toUpperCase())).toBeUndefined();
    expect(table.get(hex.slice(0, 30))).toBeUndefined();
  });
});
