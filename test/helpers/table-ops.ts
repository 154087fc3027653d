// Random operations for the property tests of the stores' open-addressed tables (IdSet,
// TraceTable), checked against a JavaScript Set or Map.
import fc from 'fast-check';

/**
 * 100 to 400 adds and deletes of ids from `id`, two adds to a delete. `size: 'max'` matters: with
 * fast-check's default sizes the arrays stay short and the tables seldom fill or wrap; IdSet's
 * first test, written so, passed with its delete's shift removed (docs/performance.md, phase AN).
 */
export function addsAndDeletes<Id>(id: fc.Arbitrary<Id>): fc.Arbitrary<(readonly ['add' | 'delete', Id])[]> {
  const op = fc.tuple(fc.constantFrom<'add' | 'delete'>('add', 'add', 'delete'), id);
  return fc.array(op, { minLength: 100, maxLength: 400, size: 'max' });
}
