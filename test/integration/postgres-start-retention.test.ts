// Start-up ran the first retention pass to its end before the store counted as started, and
// nothing listens until then (app.ts): a pass with much to delete (retentionDays lowered on a
// busy store: the trace index rows of every dropped day, 50,000 a slice; an old backup imported
// into the default partition) or one waiting on a lock kept every collector of the database from
// accepting data for as long, and past the chart's startup probe (5 minutes) the pods restarted
// in a loop. Start-up now waits a bounded time for it; the pass goes on behind.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend as backend, spanBatch } from '../helpers/postgres-store.ts';
import { makeSpan } from '../helpers/rows.ts';

const DAY_NS = 86_400_000_000_000n;
const today = (): number => Math.floor(Date.now() / 86_400_000);

describe('postgres: start-up and a long retention pass', () => {
  it('starts and stores while its first retention pass is still running', { timeout: 90_000 }, async () => {
    const url = await createTestDatabase('pgstartretention');
    const keeper = backend(url, { 'storage.postgres.retentionDays': '0' });
    await keeper.start();
    const old = makeSpan({ startTimeUnixNano: BigInt(today() - 400) * DAY_NS });
    expect((await keeper.write(spanBatch([old]))).kind).toBe('success');
    await keeper.shutdown();

    // The pass has old rows to delete and cannot be done soon: here a session holds one of them.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM tracehouse.spans_default FOR UPDATE');
    const store = backend(url, { 'storage.postgres.retentionDays': '7' });
    try {
      const t0 = Date.now();
      await Promise.race([store.start(), new Promise((_, reject) => setTimeout(() => reject(new Error('start-up still waiting for retention after 30 s')), 30_000))]);
      expect(Date.now() - t0).toBeLessThan(30_000);
      const fresh = makeSpan();
      expect((await store.write(spanBatch([fresh]))).kind).toBe('success');
      expect(await store.getTrace(TENANT, fresh.traceId)).toHaveLength(1);
      // Once the lock is gone the pass ends, and the old row with it.
      await holder.query('COMMIT');
      await store.shutdown();
      const { rows } = await holder.query<{ n: number }>('SELECT count(*)::int AS n FROM tracehouse.spans_default');
      expect(rows[0]!.n).toBe(0);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await store.shutdown();
      await holder.end();
    }
  });
});
