// A read API client that goes away (Grafana cancels a query, a tab closes) must not keep a
// PostgreSQL read connection and its backend on a statement until storage.postgres.statementTimeoutMs
// (60 s by default): the read pool has max(2, poolSize / 4) connections, and the readers after
// two such reads waited for one. The statement is cancelled on the server, the connection goes
// back to the pool ready for the next read, and nothing is logged as a store failure.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { eventually } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { getAndLeave, postgresReadServer, timedGet, untilNone, withLogsLocked } from '../helpers/abandon.ts';

describe('postgres: a read whose client is gone', () => {
  const { logger, lines } = capturedLogger();
  let url: string;
  let store: StorageBackend;
  let server: QueryServer;
  let admin: pg.Client;

  /** The collector's statements running on the server now. */
  const activeReads = async (): Promise<{ pid: number; query: string }[]> =>
    (await admin.query<{ pid: number; query: string }>("SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tracehouse' AND state = 'active'")).rows;

  beforeAll(async () => {
    url = await createTestDatabase('pgabandoned');
    // Two read connections (max(2, poolSize / 4)).
    ({ store, server } = await postgresReadServer(url, logger));
    admin = new pg.Client({ connectionString: url, application_name: 'test-admin' });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await server?.shutdown();
    await store?.shutdown();
  });

  it('cancels the statement, frees its connection for the next reader, and keeps the connection', async () => {
    const port = server.boundPort;
    // A log search that takes long: it waits on a lock another session holds (as behind a
    // migration or a slow partition drop), a statement active on the server all the while.
    let waiting: number[] = [];
    await withLogsLocked(url, async () => {
      // Two readers take both read connections, and leave once both statements are seen active
      // (not after a fixed time: on a loaded machine they took past 250 ms to start).
      let leave!: () => void;
      const left = new Promise<void>((r) => (leave = r));
      const leaving = Promise.all([getAndLeave(port, '/v1/logs?service=svc', left), getAndLeave(port, '/v1/logs?service=svc', left)]);
      try {
        waiting = await eventually(async () => {
          const pids = (await activeReads()).map((r) => r.pid);
          return pids.length === 2 ? pids : undefined;
        }, 10_000, 'both reads active on the server');
      } finally {
        leave();
      }
      expect(waiting).toHaveLength(2);
      await leaving;
      const t = performance.now();
      const active = await untilNone(async () => (await activeReads()).length, 3000);
      console.log(`the abandoned reads' statements ended ${(performance.now() - t).toFixed(0)} ms after their clients left`);
      expect(active).toBe(0);
      expect(performance.now() - t).toBeLessThan(1000);
      // The next reader gets a connection at once (its read does not touch the locked table).
      const t2 = performance.now();
      const next = await fetch(`http://127.0.0.1:${port}/v1/traces?service=svc`, { signal: AbortSignal.timeout(5_000) });
      expect(next.status).toBe(200);
      expect(((await next.json()) as { traces: unknown[] }).traces).toHaveLength(1);
      expect(performance.now() - t2).toBeLessThan(1000);
    });
    // The connections the cancelled statements ran on are kept, and serve reads again.
    expect((await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int4[])', [waiting])).rows).toHaveLength(2);
    for (let i = 0; i < 3; i++) expect((await timedGet(port, '/v1/logs?service=svc', 5_000)).status).toBe(200);
    expect(lines().filter((l) => (l['level'] as number) >= 40)).toEqual([]);
  }, 20_000);
});
