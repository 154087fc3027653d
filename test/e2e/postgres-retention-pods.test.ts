// Two collectors on one database run retention on the same day partitions: every pod's
// maintenance drops what it finds older than retentionDays, one partition at a time under the
// schema's DDL lock, and checks first that the partition still exists. That check looked the name
// up through the connection's catalog cache (to_regclass), which a wait on the (advisory) lock
// does not refresh: a pod whose connection had met the partition before (it found it made by
// another pod when a late batch needed it) still saw it after the other pod dropped it, and its
// DROP failed. It logged "postgres retention failed: table … does not exist" at midnight and
// skipped the rest of that pass. The check now reads the catalog as of its own statement.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { advisoryKey } from '../../src/storage/postgres/sql.ts';
import { eventually } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { spawnCollector } from '../helpers/process.ts';

const DAY_MS = 86_400_000;
const DAY_NS = 86_400_000_000_000n;
const CLOCK = new URL('../helpers/clock-offset.ts', import.meta.url).pathname;
const dayName = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10).replace(/-/g, '');

describe('postgres: a partition another collector dropped first', () => {
  it('is passed over by retention, with no failure logged', async () => {
    const url = await createTestDatabase('pgretpods');
    // The collector's UTC midnight comes 4 s after it is spawned.
    const midnight = (Math.floor(Date.now() / DAY_MS) + 1) * DAY_MS;
    process.env['TRACEHOUSE_TEST_CLOCK_OFFSET_MS'] = String(midnight - 4000 - Date.now());
    const today = midnight / DAY_MS - 1;
    const c = await spawnCollector(
      {
        'storage.backend': 'postgres',
        'storage.postgres.url': url,
        // One write connection: the one that meets the partition is the one retention uses.
        'storage.postgres.poolSize': '1',
        'storage.postgres.retentionDays': '1',
        'storage.postgres.partitionsAheadDays': '0',
        'storage.postgres.maintenanceIntervalMs': '5000',
        'delivery.ack': 'stored',
      },
      20_000,
      ['--import', CLOCK],
    );
    delete process.env['TRACEHOUSE_TEST_CLOCK_OFFSET_MS'];
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const yesterday = `spans_p${dayName(today - 1)}`;
    try {
      // Another pod made yesterday's partition (a late batch of its own); tomorrow's are made
      // ahead, so that the collector's first maintenance after midnight goes straight to retention.
      for (const [table, day] of [['spans', today - 1], ['spans', today + 1], ['logs', today + 1]] as const) {
        await db.query(`CREATE TABLE tracehouse.${table}_p${dayName(day)} PARTITION OF tracehouse.${table} FOR VALUES FROM (${BigInt(day) * DAY_NS}) TO (${BigInt(day + 1) * DAY_NS})`);
      }
      // A late span of yesterday reaches this collector, which finds the partition made.
      const start = String(BigInt(today - 1) * DAY_NS + 5n);
      const body = encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'late' } }] }, scopeSpans: [{ spans: [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'late', startTimeUnixNano: start, endTimeUnixNano: start }] }] }] });
      const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
      expect(res.status).toBe(200);

      // After midnight both pods drop it: the other one first, while this one waits for the lock.
      await db.query('BEGIN');
      await db.query('SELECT pg_advisory_xact_lock($1::int8)', [advisoryKey('partitions', 'tracehouse')]);
      await eventually(async () => {
        const r = await db.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND datname = current_database()`);
        return r.rowCount ? true : undefined;
      }, 12_000, 'the collector waiting for the DDL lock');
      await db.query(`DROP TABLE tracehouse.${yesterday}`);
      await db.query('COMMIT');
      // Its pass goes on to the trace index: the late span's trace (older than retention) leaves it.
      await eventually(async () => {
        const r = await db.query('SELECT count(*)::int AS n FROM tracehouse.trace_index');
        return r.rows[0].n === 0 ? true : undefined;
      }, 3_000, 'the trace index emptied by the same pass').catch(() => undefined);
      expect(c.output()).not.toContain('postgres retention failed');
      const r = await db.query('SELECT count(*)::int AS n FROM tracehouse.trace_index');
      expect(r.rows[0].n).toBe(0);
    } finally {
      await db.end();
      c.child.kill('SIGTERM');
      await c.exited;
    }
  }, 30_000);
});
