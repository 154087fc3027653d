// A PostgreSQL read waits for one of the store's read connections up to its own time budget
// (storage.postgres.statementTimeoutMs), not pg-pool's 5 s connect timeout: with both read
// connections held by slow reads (two log searches waiting on a lock here, two 7-day dependency
// reads in production), a quick /api/services behind them was answered 503 after 5.0 s. A read
// whose client left stops waiting at once and takes no connection; one whose budget runs out
// while it waits is answered 503 naming the option.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { createTestDatabase, untilWaitingOnLock } from '../helpers/postgres.ts';
import { postgresBackend } from '../helpers/postgres-store.ts';
import { postgresReadServer, timedGet, withLogsLocked } from '../helpers/abandon.ts';

/** The store's read pool (pg-pool's counts say whether a read left a connection taken). */
function readPool(store: StorageBackend): pg.Pool {
  return (store as unknown as { readPool: pg.Pool }).readPool;
}

describe('postgres: a read waiting for a read connection', () => {
  const { logger } = capturedLogger();
  let url: string;
  let store: StorageBackend;
  let server: QueryServer;
  let admin: pg.Client;
  beforeAll(async () => {
    url = await createTestDatabase('pgreadwait');
    // storage.postgres.poolSize 2: two read connections; statementTimeoutMs the default 60 s.
    ({ store, server } = await postgresReadServer(url, logger));
    admin = new pg.Client({ connectionString: url, application_name: 'test-admin' });
    await admin.connect();
  });
  afterAll(async () => {
    await server?.shutdown();
    await store?.shutdown();
    await admin?.end();
  });

  it('waits its turn past 5 s within its budget; one whose client left stops waiting and takes nothing', async () => {
    const port = server.boundPort;
    let services!: Promise<{ status: number; ms: number }>;
    let slow!: Promise<{ status: number; ms: number }[]>;
    await withLogsLocked(url, async () => {
      // Two slow reads hold both read connections.
      slow = Promise.all([timedGet(port, '/v1/logs?service=svc', 30_000), timedGet(port, '/v1/logs?service=svc', 30_000)]);
      await untilWaitingOnLock(admin, 'both slow reads waiting on the lock', undefined, 10_000, 2);
      services = timedGet(port, '/api/services', 30_000);
      // A read whose client leaves while it waits for a connection.
      const gone = new AbortController();
      const abandoned = store.searchLogs(DEFAULT_TENANT, { service: 'svc', limit: 10 }, gone.signal);
      abandoned.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
      const t = performance.now();
      gone.abort(new Error('client gone'));
      await expect(abandoned).rejects.toThrow('client gone');
      expect(performance.now() - t).toBeLessThan(1000);
      // The slow reads go on past pg-pool's 5 s connect timeout.
      await new Promise((r) => setTimeout(r, 5500));
    });
    const answered = await services;
    expect(answered.status).toBe(200);
    expect(answered.ms).toBeGreaterThan(5000);
    expect((await slow).map((r) => r.status)).toEqual([200, 200]);
    // Nothing left taken: every connection of the pool idle, and both usable at once.
    const pool = readPool(store);
    expect(pool.waitingCount).toBe(0);
    expect(pool.totalCount).toBeLessThanOrEqual(2);
    expect(pool.idleCount).toBe(pool.totalCount);
    const again = await Promise.all([0, 1, 2].map(() => timedGet(port, '/api/services', 5000)));
    expect(again.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(pool.idleCount).toBe(pool.totalCount);
  }, 30_000);
});

describe('postgres: a read whose budget runs out while it waits for a read connection', () => {
  let store: StorageBackend;
  beforeAll(async () => {
    const url = await createTestDatabase('pgreadwaitbudget');
    store = postgresBackend(url, { 'storage.postgres.statementTimeoutMs': '1000' });
    await store.start();
  });
  afterAll(async () => {
    await store?.shutdown();
  });

  it('fails at storage.postgres.statementTimeoutMs, naming it, and takes nothing', async () => {
    // Both read connections taken as slow reads take them (held past the statement timeout, which
    // would end a slow statement at the same moment the wait ends).
    const reads = (store as unknown as { readConnections: { connect(): Promise<{ release(): void }> } }).readConnections;
    const held = [await reads.connect(), await reads.connect()];
    const t = performance.now();
    try {
      const err = await store.getServices(DEFAULT_TENANT).then(() => undefined, (e: unknown) => e as Error);
      expect(err?.name).toBe('QueryTimeout');
      expect(err?.message).toContain('storage.postgres.statementTimeoutMs (1000 ms)');
      expect(performance.now() - t).toBeGreaterThanOrEqual(950);
      expect(performance.now() - t).toBeLessThan(4000);
    } finally {
      for (const c of held) c.release();
    }
    expect(await store.getServices(DEFAULT_TENANT)).toEqual([]);
    const pool = readPool(store);
    expect(pool.idleCount).toBe(pool.totalCount);
  }, 15_000);
});
