// Retention deletes a trace's index row while a write extends that trace: the new span is stored
// but the trace can no longer be read by id.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { SPAN_COLUMNS } from '../../src/storage/postgres/columns.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend, spanBatch } from '../helpers/postgres-store.ts';
import { makeSpan } from '../helpers/rows.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

const DAY_NS = 86_400_000_000_000n;
const today = (): number => Math.floor(Date.now() / 86_400_000);
const dayStart = (day: number): bigint => BigInt(day) * DAY_NS;

const backend = (url: string, flags: Record<string, string> = {}): StorageBackend => postgresBackend(url, { 'storage.postgres.poolSize': '4', ...flags });
async function waitUntilBlocked(c: pg.Client, like: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = await c.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [like]);
    if (r.rows[0].n > 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  const all = await c.query(`SELECT state, wait_event_type, wait_event, left(query, 80) AS q FROM pg_stat_activity WHERE datname = current_database()`);
  throw new Error(`no session blocked on ${like}: ${JSON.stringify(all.rows)}`);
}

describe('postgres retention vs a concurrent write of the same trace', () => {
  it('keeps the trace readable by id when a write extends it while retention deletes its old index row', async () => {
    const url = await createTestDatabase('pgretrace');
    const writer = backend(url, { 'storage.postgres.retentionDays': '0' });
    await writer.start();
    const x = new pg.Client({ connectionString: url });
    await x.connect();
    const mon = new pg.Client({ connectionString: url });
    await mon.connect();
    const retention = backend(url, { 'storage.postgres.retentionDays': '3' });
    try {
      // An old span of the trace (older than retention: default partition) ...
      const old = makeSpan({ serviceName: 'svc-' + randomUUID(), startTimeUnixNano: dayStart(today() - 400), endTimeUnixNano: dayStart(today() - 400) + 5n });
      expect((await writer.write(spanBatch([old]))).kind).toBe('success');
      // ... and a new span of the trace arriving now, from another pod: its write transaction has
      // upserted the trace index row (the statement backend.write runs) and not yet committed.
      const fresh = makeSpan({ traceId: old.traceId, serviceName: old.serviceName, startTimeUnixNano: dayStart(today()) + 1n, endTimeUnixNano: dayStart(today()) + 9n });
      await x.query('BEGIN');
      await x.query(
        `INSERT INTO tracehouse.trace_index AS t (tenant, trace_id, first_start_unix_nano, last_start_unix_nano) VALUES ($1, $2, $3, $3)
         ON CONFLICT (tenant, trace_id) DO UPDATE
           SET first_start_unix_nano = least(t.first_start_unix_nano, excluded.first_start_unix_nano),
               last_start_unix_nano = greatest(t.last_start_unix_nano, excluded.last_start_unix_nano)
           WHERE excluded.first_start_unix_nano < t.first_start_unix_nano OR excluded.last_start_unix_nano > t.last_start_unix_nano`,
        [TENANT, Buffer.from(old.traceId, 'hex'), fresh.startTimeUnixNano.toString()],
      );
      const cols = ['tenant', ...SPAN_COLUMNS.map(([n]) => n)];
      const values = cols.map((c) => (c === 'span_id' ? '$2::bytea' : c === 'start_time_unix_nano' ? '$3::int8' : c === 'end_time_unix_nano' ? '$3::int8 + 8' : c));
      await x.query(`INSERT INTO tracehouse.spans (${cols.join(', ')}) SELECT ${values.join(', ')} FROM tracehouse.spans WHERE span_id = $1`, [
        Buffer.from(old.spanId, 'hex'), Buffer.from(fresh.spanId, 'hex'), fresh.startTimeUnixNano.toString(),
      ]);
      // Retention runs meanwhile (this or another pod's maintenance) and waits for that row.
      const started = retention.start();
      await waitUntilBlocked(mon, '%DELETE FROM "tracehouse".trace_index%');
      await x.query('COMMIT');
      await started;
      expect(await mon.query(`SELECT count(*)::int AS n FROM tracehouse.spans WHERE trace_id = $1`, [Buffer.from(old.traceId, 'hex')]).then((r) => r.rows[0].n)).toBe(1);
      const got = await writer.getTrace(TENANT, old.traceId);
      expect(got.map((s) => s.spanId)).toEqual([fresh.spanId]);
    } finally {
      await x.end();
      await mon.end();
      await retention.shutdown();
      await writer.shutdown();
    }
  });
});
