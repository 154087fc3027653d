// The stores' set of a trace's span ids (IdSet): open addressing whose deletes shift probe runs
// back. Checked against a JavaScript Set over random adds, deletes and lookups. Few ids
// (up to 28, so a table of 64 places stays at that size, and runs often wrap around its end), or
// any ids (so it grows), the all-zero id among them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addsAndDeletes } from '../helpers/table-ops.ts';
import { IdSet } from '../../src/storage/id-set.ts';

const few = fc.tuple(fc.integer({ min: -3, max: 24 }), fc.constant(0));
const any = fc.tuple(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));

describe('IdSet', () => {
  it.each([
    ['few ids', few],
    ['any ids', fc.oneof(few, any)],
  ])('answers as a Set over random adds and deletes: %s', (_, id) => {
    fc.assert(
      fc.property(addsAndDeletes(id), (ops) => {
        const set = new IdSet(64);
        const model = new Map<string, [number, number]>();
        for (const [kind, [id0, id1]] of ops) {
          if (kind === 'add') {
            set.add(id0, id1);
            model.set(`${id0},${id1}`, [id0, id1]);
          } else {
            set.delete(id0, id1);
            model.delete(`${id0},${id1}`);
            expect(set.has(id0, id1)).toBe(false);
            // What the delete moved back is still found.
            expect([...model].filter(([, [a, b]]) => !set.has(a, b)).map(([k]) => k)).toEqual([]);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
