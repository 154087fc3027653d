// A batch a store refused for good because of some of its rows (a trigger raising on one row, a
// CONSTRAINT of the user's) holds several requests' rows, one chunk each: written whole again it
// is refused again, and dropped whole it took other requests' acknowledged rows with it. The
// stores write such a batch again in parts, halving each part refused down to single chunks, so
// that only the chunks refused are left out and named (WriteResult dropped): the writer counts and
// logs their rows alone and, with delivery.ack = stored, refuses their requests alone.
import type { WriteResult } from './backend.ts';

/**
 * Writes chunks [from, to) of the batch (`before`: the batch's rows before them, `rows`: theirs);
 * resolves to the store's refusal when it refused them for good for their rows, undefined once
 * stored, and throws any other failure (which fails the whole pass, for the writer to retry).
 */
export type PartWriter = (from: number, to: number, before: number, rows: number) => Promise<Error | undefined>;

/**
 * Writes again, in halves, a batch of chunks holding `rows` rows each that the store refused
 * whole (`first`): a part refused is halved down to single chunks, those refused are left out;
 * after `maxRefused` refused parts the rest is left out untried. All left out, the batch is
 * refused for good (permanent), as one refused whole is.
 *
 * Each request at fault costs about log2(chunks / requests at fault) + 1 refused parts: one in 41
 * of 3,000 one-record requests (73), some 560. Unbounded, a batch whose every row is refused (a
 * constraint no row meets) is tried in some 2·chunks parts, each a savepoint on PostgreSQL (90 s
 * at 4,000 chunks, past writer.writeTimeoutMs, which wrote it again) and an insert, so a part in
 * the table, on ClickHouse: each store bounds it by what its parts cost.
 */
export async function writeInHalves(rows: readonly number[], first: Error, write: PartWriter, maxRefused: number): Promise<WriteResult> {
  const leftOut: number[] = [];
  let leftRows = 0;
  let error = first;
  let refusedParts = 0;
  let untried = 0;
  const before = [0];
  for (const r of rows) before.push(before[before.length - 1]! + r);
  const leave = (from: number, to: number): void => {
    for (let i = from; i < to; i++) leftOut.push(i);
    leftRows += before[to]! - before[from]!;
  };
  // The whole batch (refused: halved without being written again), then each half.
  const part = async (from: number, to: number, refused: boolean): Promise<void> => {
    if (refusedParts >= maxRefused) {
      leave(from, to);
      untried += to - from;
      return;
    }
    if (!refused) {
      const refusal = await write(from, to, before[from]!, before[to]! - before[from]!);
      if (refusal === undefined) return;
      error = refusal;
      refusedParts++;
    }
    if (to - from === 1) return leave(from, to);
    const mid = (from + to) >>> 1;
    await part(from, mid, false);
    await part(mid, to, false);
  };
  await part(0, rows.length, true);
  if (untried > 0) error = new Error(`${error.message} (and the rows of ${untried} requests in the batch not tried again once ${maxRefused} parts of it were refused)`);
  if (leftOut.length === rows.length) return { kind: 'permanent', error };
  return leftOut.length === 0 ? { kind: 'success' } : { kind: 'success', dropped: { rows: leftRows, error, chunks: leftOut } };
}
