// A PostgreSQL read is answered within storage.postgres.statementTimeoutMs from its arrival, as a
// SQLite read within query.timeoutMs: waiting for one of the store's read connections, making it,
// and its statements together. A read that waited its turn then ran its statement for the whole
// option again (the connections' statement_timeout), so it was answered after up to twice the
// option; and with a database that stopped answering, a read making a connection failed only at
// pg-pool's 5 s connect timeout, whatever the option. Reads queued behind a connection the
// database did not answer failed one pair per 5 s attempt, up to their budget; they now fail with
// that attempt's error.
import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend } from '../helpers/postgres-store.ts';

const BUDGET_MS = 2000;

/** The store's read pool (pg-pool's counts say whether a read left a connection taken). */
function readPool(store: StorageBackend): pg.Pool {
  return (store as unknown as { readPool: pg.Pool }).readPool;
}

/** Takes both read connections as slow reads would. */
async function holdReadConnections(store: StorageBackend): Promise<{ release(): void }[]> {
  const reads = (store as unknown as { readConnections: { connect(): Promise<{ release(): void }> } }).readConnections;
  return [await reads.connect(), await reads.connect()];
}

/** A read's outcome and how long it took. */
async function timed(read: Promise<unknown>): Promise<{ err: Error | undefined; ms: number }> {
  const t = performance.now();
  const err = await read.then(() => undefined, (e: unknown) => e as Error);
  return { err, ms: performance.now() - t };
}

describe('postgres: a read that waited for a read connection', () => {
  let url: string;
  let store: StorageBackend;
  beforeAll(async () => {
    url = await createTestDatabase('pgreadbudget');
    store = postgresBackend(url, { 'storage.postgres.statementTimeoutMs': String(BUDGET_MS) });
    await store.start();
  });
  afterAll(async () => {
    await store?.shutdown();
  });

  it('is stopped at the budget from its arrival, its statement included, and keeps its connection usable', async () => {
    const locker = new pg.Client({ connectionString: url, application_name: 'test-locker' });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE tracehouse.logs, tracehouse.operations IN ACCESS EXCLUSIVE MODE');
      const held = await holdReadConnections(store);
      // A log search with a client (cancellable) and a service listing (without) arrive together.
      const client = new AbortController();
      const reads = [timed(store.searchLogs(DEFAULT_TENANT, { service: 'svc', limit: 10 }, client.signal)), timed(store.getServices(DEFAULT_TENANT))];
      // They get their connections 90 % of their budget later; their statements then wait on the lock.
      await new Promise((r) => setTimeout(r, BUDGET_MS * 0.9));
      for (const c of held) c.release();
      for (const { err, ms } of await Promise.all(reads)) {
        expect(err?.name).toBe('QueryTimeout');
        expect(err?.message).toContain(`storage.postgres.statementTimeoutMs (${BUDGET_MS} ms)`);
        expect(ms).toBeGreaterThanOrEqual(BUDGET_MS * 0.95);
        // Before: the wait, then the whole statement timeout again (1.9 × the budget); the bound
        // leaves 0.65 × the budget for a loaded machine.
        expect(ms).toBeLessThan(BUDGET_MS * 1.65);
      }
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    // Their connections went back, usable (a statement cancelled leaves its connection ready).
    expect(await store.getServices(DEFAULT_TENANT)).toEqual([]);
    const pool = readPool(store);
    expect(pool.idleCount).toBe(pool.totalCount);
    expect(pool.waitingCount).toBe(0);
  }, 15_000);
});

/** Relays connections to url's server until blackHole(): then every connection is cut and new ones are taken and never answered. */
async function switchableServer(url: string): Promise<{ url: string; server: Server; blackHole(): void }> {
  const target = new URL(url);
  const sockets = new Set<Socket>();
  let silent = false;
  const server = createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => sockets.delete(client));
    if (silent) return;
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      a.on('close', () => b.destroy());
      a.on('error', () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const via = new URL(url);
  via.hostname = '127.0.0.1';
  via.port = String((server.address() as { port: number }).port);
  return {
    url: via.toString(),
    server,
    blackHole: () => {
      silent = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
}

/**
 * A store on a new database reached through switchableServer, with statementTimeoutMs as its
 * budget: started before the describe block's tests, stopped after them.
 */
function storeBehindSwitch(name: string, statementTimeoutMs: number): { proxy: Awaited<ReturnType<typeof switchableServer>>; store: StorageBackend } {
  const ctx = {} as { proxy: Awaited<ReturnType<typeof switchableServer>>; store: StorageBackend };
  beforeAll(async () => {
    ctx.proxy = await switchableServer(await createTestDatabase(name));
    ctx.store = postgresBackend(ctx.proxy.url, { 'storage.postgres.statementTimeoutMs': String(statementTimeoutMs) });
    await ctx.store.start();
  });
  afterAll(async () => {
    await ctx.store?.shutdown();
    ctx.proxy?.server.close();
  });
  return ctx;
}

describe('postgres: reads while the database does not answer', () => {
  const budget = 1500;
  const db = storeBehindSwitch('pgreadbudgetgone', budget);

  it('fail within the budget, more of them than read connections, not at the 5 s connect timeout', async () => {
    db.proxy.blackHole();
    const reads = await Promise.all([0, 1, 2, 3].map(() => timed(db.store.getServices(DEFAULT_TENANT))));
    for (const { err, ms } of reads) {
      expect(err?.name).toBe('QueryTimeout');
      expect(err?.message).toContain(`storage.postgres.statementTimeoutMs (${budget} ms)`);
      // Before: the first two failed at pg-pool's connect timeout, 5 s.
      expect(ms).toBeLessThan(budget * 2.5);
    }
  }, 20_000);
});

describe('postgres: reads queued behind a connection the database does not answer, with a budget past the connect timeout', () => {
  const db = storeBehindSwitch('pgreadbudgetqueued', 9000);

  it('fail together when the connection attempt ahead of them fails, not one after another to their budget', async () => {
    db.proxy.blackHole();
    const reads = await Promise.all([0, 1, 2, 3, 4, 5].map(() => timed(db.store.getServices(DEFAULT_TENANT))));
    for (const { err, ms } of reads) {
      expect(db.store.unreachable?.(err)).toBe(true);
      // pg-pool's connect timeout is 5 s; before, the reads behind the first two failed at 9 s
      // (their budget: one pair per 5 s attempt).
      expect(ms).toBeLessThan(7500);
    }
  }, 20_000);
});
