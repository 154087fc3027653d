// The PostgreSQL store when the server refuses the collector's connections with 53300 (too many
// connections: the role's CONNECTION LIMIT or the server's max_connections reached by other
// clients). A read that needs a new connection, and every read waiting behind it, is answered a
// retryable 503 at once (not a 500, not a wait of pg-pool's connect timeout per read), logged
// once with PostgreSQL's own words (the role); a write is retryable (the writer retries it); and
// once a connection slot frees up, reads and writes go on without a restart. With a read
// connection of its own still open, the store serves a burst of reads on it in turn: before, the
// read refused a second connection failed, and with it every read waiting at that moment (half a
// dashboard's panels answered 503, each read needing milliseconds of the connection it had).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { QueryServer } from '../../src/query/server.ts';
import { QueryTimeout, type StorageBackend } from '../../src/storage/backend.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import type { ReadConnection } from '../../src/storage/postgres/read-connections.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { eventually } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { createLoginRole, createTestDatabase, testPostgresUrl, withUser } from '../helpers/postgres.ts';
import { postgresReadServer } from '../helpers/abandon.ts';
import { spanBatch } from '../helpers/postgres-store.ts';
import { makeSpan } from '../helpers/rows.ts';

/** One of the store's pools (pg-pool's counts). */
function storePool(store: StorageBackend, name: 'pool' | 'readPool'): pg.Pool {
  return (store as unknown as Record<string, pg.Pool>)[name]!;
}

async function get(port: number, path: string): Promise<{ status: number; retryAfter: string | null; body: string; ms: number }> {
  const t = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(15_000) });
  const body = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body, ms: performance.now() - t };
}

describe('postgres: the server refuses new connections (53300, too many connections)', () => {
  const { logger, lines } = capturedLogger();
  const role = `th_toomany_${process.pid}_${Date.now().toString(36)}`;
  let dbUrl: string;
  let db: string;
  let store: StorageBackend;
  let server: QueryServer;
  let admin: pg.Client;
  const holders: pg.Client[] = [];

  const roleSessions = async (): Promise<number> => {
    await admin.query('SELECT pg_stat_clear_snapshot()');
    return (await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1', [role])).rows[0]!.n;
  };
  /** Opens a session as the role, held until the test ends it. */
  const hold = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: withUser(dbUrl, role), application_name: 'test-holder' });
    c.on('error', () => undefined);
    await c.connect();
    holders.push(c);
    return c;
  };

  beforeAll(async () => {
    dbUrl = await createTestDatabase('pgtoomany');
    db = new URL(dbUrl).pathname.slice(1);
    await createLoginRole(dbUrl, role, [`ALTER DATABASE ${db} OWNER TO ${role}`]);
    ({ store, server } = await postgresReadServer(withUser(dbUrl, role), logger));
    admin = new pg.Client({ connectionString: dbUrl, application_name: 'test-admin' });
    await admin.connect();
  });
  afterAll(async () => {
    await server?.shutdown();
    await store?.shutdown();
    for (const c of holders) await c.end().catch(() => undefined);
    await admin?.end();
    const root = new pg.Client({ connectionString: await testPostgresUrl() });
    await root.connect();
    try {
      await root.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await root.query(`DROP ROLE IF EXISTS ${role}`);
    } finally {
      await root.end();
    }
  });

  it('answers reads 503 at once, logged once; a write is retryable; both go on once a slot frees', async () => {
    const port = server.boundPort;
    // The store's sessions ended (the pools drop their idle clients), then the role may open one
    // session, which a client of its own takes: every connection the store makes is refused.
    await admin.query(`ALTER ROLE ${role} CONNECTION LIMIT 1`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
    await eventually(async () => ((await roleSessions()) === 0 && storePool(store, 'pool').totalCount === 0 && storePool(store, 'readPool').totalCount === 0 ? true : undefined), 10_000, 'the store holding no session');
    const holder = await hold();
    const refused = await new pg.Client({ connectionString: withUser(dbUrl, role) }).connect().then(() => undefined, (e: pg.DatabaseError) => e);
    expect(refused?.code).toBe('53300');
    const before = lines().length;

    // A burst of reads, more than the store's read connections (2): all answered 503, at once.
    const paths = ['/api/services', '/v1/traces?service=svc', '/v1/logs?service=svc', '/api/services', '/api/v3/services', '/v1/traces?service=svc'];
    const answers = await Promise.all(paths.map((p) => get(port, p)));
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.retryAfter).toBe('1');
      expect(a.ms).toBeLessThan(4000);
    }
    expect(answers[0]!.body).toContain('retry later');
    // Logged once for the burst, in PostgreSQL's words (the role the operator must look at).
    const failed = lines().slice(before).filter((l) => Number(l.level) >= 40);
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed.length).toBeLessThanOrEqual(2);
    expect(String(failed[0]!.err)).toContain(`too many connections for role "${role}"`);

    // A write: retryable (the writer retries it with backoff), with PostgreSQL's words.
    const w = await store.write(spanBatch([makeSpan({ serviceName: 'during' })]));
    expect(w.kind).toBe('retryable');
    expect(w.kind === 'retryable' && w.error.message).toContain('too many connections');

    // The slot frees: reads and writes go on, no restart.
    await holder.end();
    await eventually(async () => ((await roleSessions()) === 0 ? true : undefined), 10_000, 'the holder gone');
    await admin.query(`ALTER ROLE ${role} CONNECTION LIMIT 3`);
    const again = await Promise.all(paths.map((p) => get(port, p)));
    expect(again.map((a) => a.status)).toEqual(paths.map(() => 200));
    expect((await store.write(spanBatch([makeSpan({ serviceName: 'after' })]))).kind).toBe('success');
  }, 30_000);

  it('serves a burst of reads on the read connection it has when the server refuses a second', async () => {
    const port = server.boundPort;
    // The store's sessions ended, then the role may open one: the read pool makes one connection
    // (a first read), and the server refuses it any other.
    await admin.query(`ALTER ROLE ${role} CONNECTION LIMIT 1`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
    await eventually(async () => ((await roleSessions()) === 0 && storePool(store, 'pool').totalCount === 0 && storePool(store, 'readPool').totalCount === 0 ? true : undefined), 10_000, 'the store holding no session');
    expect((await get(port, '/api/services')).status).toBe(200);
    expect(storePool(store, 'readPool').totalCount).toBe(1);
    // A dashboard's burst: each read needs a few milliseconds of that one connection. Before, the
    // read refused a second connection failed, and with it every read waiting at that moment.
    const paths = ['/api/services', '/v1/traces?service=svc', '/v1/logs?service=svc', '/api/services', '/api/v3/services', '/v1/traces?service=svc'];
    const answers = await Promise.all(paths.map((p) => get(port, p)));
    expect(answers.map((a) => a.status)).toEqual(paths.map(() => 200));
    // Nothing left taken or waiting.
    const reads = (store as unknown as { readConnections: { waitingCount: number } }).readConnections;
    expect(reads.waitingCount).toBe(0);
    const pool = storePool(store, 'readPool');
    expect(pool.idleCount).toBe(pool.totalCount);
    // And with the one connection gone too, a read is answered 503 at once, as in the test above.
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
    await eventually(async () => ((await roleSessions()) === 0 && pool.totalCount === 0 ? true : undefined), 10_000, 'the read connection gone');
    await hold();
    const refused = await Promise.all(paths.map((p) => get(port, p)));
    expect(refused.map((a) => a.status)).toEqual(paths.map(() => 503));
    for (const a of refused) expect(a.ms).toBeLessThan(4000);
  }, 30_000);

  it('bounds a read refused again after its wait by its one budget from its arrival', async () => {
    // A store whose reads have 2 s (storage.postgres.statementTimeoutMs), both read connections
    // taken by reads that run on. A storage stats read (no budget signal of its own, as scans)
    // waits its turn; the first leaves with its connection dropped (an error), the stats read's
    // new connection is refused (53300: the role's limit reached) while the second still
    // holds one, and it waits again. Before, that wait had 2 s of its own: the read waited 3.2 s.
    await admin.query(`ALTER ROLE ${role} CONNECTION LIMIT -1`);
    const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': withUser(dbUrl, role), 'storage.postgres.poolSize': '2', 'storage.postgres.statementTimeoutMs': '2000' } });
    const budgeted = createPostgresBackend(postgresOptions(config), { logger, metrics: createMetrics() });
    await budgeted.start();
    try {
      const reads = (budgeted as unknown as { readConnections: { connect(): Promise<ReadConnection>; waitingCount: number } }).readConnections;
      const first = await reads.connect();
      const second = await reads.connect();
      await admin.query(`ALTER ROLE ${role} CONNECTION LIMIT 1`);
      const t = performance.now();
      const stats = budgeted.stats!().then(() => undefined, (e: unknown) => e);
      await eventually(async () => (reads.waitingCount === 1 ? true : undefined), 5000, 'the stats read waiting');
      await new Promise((r) => setTimeout(r, 1200));
      first.release(new Error('connection broken'));
      const err = await stats;
      const ms = performance.now() - t;
      second.release();
      expect(err).toBeInstanceOf(QueryTimeout);
      expect(String((err as Error).message)).toContain('storage.postgres.statementTimeoutMs (2000 ms)');
      expect(ms).toBeGreaterThan(1900);
      expect(ms).toBeLessThan(2600);
      expect(reads.waitingCount).toBe(0);
    } finally {
      await budgeted.shutdown();
    }
  }, 30_000);
});
