// Ids crafted to share a hash slot. The memory store finds a trace by its id's four words in an
// open-addressed table (trace-table.ts) and, past 32 spans, a trace's span ids in another (IdSet,
// shared with SQLite). Both placed an id by a fixed, public mix of its words, so a client could
// choose one word from the others to put every id on one slot: each add then probed the whole run
// (three requests of 20,000 such traces took 3.6 s of the main thread against 0.3 s for random
// ids, growing with the square of the ids). Under the process's key the crafted ids spread as
// random ones do.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { idHome, traceHome } from '../../src/storage/id-set.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';

const word = () => randomBytes(4).readInt32LE(0);
const N = 10_000;
const MASK = 0xffff;

/** Distinct slots of a table of 65,536 the homes take; N random ids take about 9,280. */
function slots(homes: number[]): number {
  return new Set(homes.map((h) => h & MASK)).size;
}

describe('id mixes', () => {
  it('spread span ids whose first word was chosen from the second to collide under the former mix', () => {
    const homes = Array.from({ length: N }, () => {
      const w1 = word();
      return idHome(0x1234567 ^ Math.imul(w1, 0x85ebca6b), w1);
    });
    expect(slots(homes)).toBeGreaterThan(8_500);
  });

  it('spread trace ids whose first word was chosen from the other three to collide under the former mix', () => {
    const homes = Array.from({ length: N }, () => {
      const [w1, w2, w3] = [word(), word(), word()];
      return traceHome(0x1234567 ^ Math.imul(w1, 0x85ebca6b) ^ Math.imul(w2, 0xc2b2ae35) ^ Math.imul(w3, 0x27d4eb2f), w1, w2, w3);
    });
    expect(slots(homes)).toBeGreaterThan(8_500);
  });
});

describe("the SQLite store's table of recent traces", () => {
  it('spreads trace ids whose last word was chosen from the others to collide under a fixed mix', () => {
    // RecentTraces (sqlite/store.ts) finds a trace by tenant and id in an open-addressed table of
    // 131,072 slots, as the memory store's trace table does: under its fixed FNV-1a mix, w3 chosen
    // from the words before it put every trace on one slot, and each new trace probed the whole
    // run on the write thread (up to 65,536 long) while every tenant's writes waited.
    const store = new SqliteStore(openDatabase(':memory:'));
    const recent = (store as unknown as { recordRuns: { recent: { tenant(t: string): number; slot(tenant: number, buf: Buffer, at: number): number } } }).recordRuns.recent;
    const tenant = recent.tenant('default');
    const fnv = (h: number, w: number) => Math.imul(h ^ w, 0x01000193);
    const homes = Array.from({ length: N }, () => {
      const [w0, w1, w2] = [word(), word(), word()];
      const h = fnv(fnv(fnv(Math.imul(tenant ^ 0x811c9dc5, 0x01000193), w0), w1), w2);
      const id = Buffer.alloc(16);
      [w0, w1, w2, h ^ 0x1234567].forEach((w, i) => id.writeInt32LE(w, 4 * i));
      // The table is empty: the slot given is the id's home.
      return recent.slot(tenant, id, 0);
    });
    expect(new Set(homes).size).toBeGreaterThan(8_500);
  });
});
