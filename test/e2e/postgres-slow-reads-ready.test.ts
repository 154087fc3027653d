// /readyz on PostgreSQL while the read API is busy: the health check ran its SELECT 1 on the pool
// the read API and the storage metrics share (max(2, poolSize / 4) connections, 2 by default).
// Two slow searches (a Grafana dashboard over a week of data, each up to
// storage.postgres.statementTimeoutMs) held every connection, the health check waited for one
// past its 3 s and failed, and the collector answered "storage postgres unhealthy": a healthy
// database and working writes, yet the pod left its Service and stopped taking exports because
// someone was reading.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startCollector, type TestCollector } from '../helpers/collector.ts';
import { createTestDatabase } from '../helpers/postgres.ts';

describe('postgres: readiness while slow reads hold the read connections', () => {
  let url: string;
  let c: TestCollector;
  beforeAll(async () => {
    url = await createTestDatabase('slow_reads_ready');
    c = await startCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': url, 'delivery.ack': 'queued' });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('stays ready while every read connection waits on a slow read', async () => {
    await eventually(async () => ((await fetch(`${c.opsUrl}/readyz`)).status === 200 ? true : undefined), 10_000, 'ready');
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    let reads: Promise<number>[] = [];
    try {
      // Reads of the service list wait on this lock, as long searches would run.
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE tracehouse.operations IN ACCESS EXCLUSIVE MODE');
      reads = Array.from({ length: 4 }, () => fetch(`${c.queryUrl}/api/services`).then((r) => r.status));
      await new Promise((r) => setTimeout(r, 500));
      const ready = await fetch(`${c.opsUrl}/readyz`);
      expect(await ready.json()).toEqual({ status: 'ready' });
      expect(ready.status).toBe(200);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
    // The reads go on once the lock is gone.
    expect(await Promise.all(reads)).toEqual([200, 200, 200, 200]);
  }, 30_000);
});
