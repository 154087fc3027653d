// The statement of a read whose client left is cancelled (read-abandoned-postgres.test.ts) also
// when the collector's role may open no more connections: a role's CONNECTION LIMIT or the
// server's max_connections reached (the read pool sized to what the database grants). A cancel
// that needed a connection of its own (pg_cancel_backend) was refused then, and the statement ran
// on until storage.postgres.statementTimeoutMs, holding its read connection. PostgreSQL's cancel
// request (what psql's Ctrl-C sends) takes no connection slot.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { createLoginRole, createTestDatabase, withUser } from '../helpers/postgres.ts';
import { spanBatch } from '../helpers/postgres-store.ts';
import { makeSpan } from '../helpers/rows.ts';
import { getAndLeave } from '../helpers/abandon.ts';

describe('postgres: a read whose client is gone, with no connection left for the role', () => {
  const { logger } = capturedLogger();
  const role = `th_limited_${process.pid}`;
  let adminUrl: string;
  let store: StorageBackend;
  let server: QueryServer;
  let admin: pg.Client;

  const activeReads = async (): Promise<number> =>
    (await admin.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND usename = $1 AND state = 'active'", [role])).rows.length;

  beforeAll(async () => {
    adminUrl = await createTestDatabase('pgcancellimit');
    const db = new URL(adminUrl).pathname.slice(1);
    // A plain role that owns its database and nothing else (no superuser, no pg_signal_backend).
    await createLoginRole(adminUrl, role, [`ALTER DATABASE ${db} OWNER TO ${role}`]);
    const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': withUser(adminUrl, role), 'storage.postgres.poolSize': '2' } });
    store = createPostgresBackend(postgresOptions(config), { logger, metrics: createMetrics() });
    await store.start();
    expect((await store.write(spanBatch([makeSpan({ serviceName: 'svc' })]))).kind).toBe('success');
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 100, maxSpansPerTrace: 1000, maxSpansPerSearch: 10_000 }, store, logger);
    await server.start();
    admin = new pg.Client({ connectionString: adminUrl, application_name: 'test-admin' });
    await admin.connect();
  });
  afterAll(async () => {
    await server?.shutdown();
    await store?.shutdown();
    await admin?.query(`ALTER ROLE ${role} CONNECTION LIMIT -1`).catch(() => undefined);
    await admin?.end();
  });

  it('cancels the statement all the same', async () => {
    const port = server.boundPort;
    const locker = new pg.Client({ connectionString: adminUrl, application_name: 'test-locker' });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE tracehouse.logs IN ACCESS EXCLUSIVE MODE');
      const leaving = Promise.all([getAndLeave(port, '/v1/logs?service=svc', 600), getAndLeave(port, '/v1/logs?service=svc', 600)]);
      await new Promise((r) => setTimeout(r, 300));
      expect(await activeReads()).toBe(2);
      // The role may open no more connections than it has now.
      const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1', [role]);
      await admin.query(`ALTER ROLE ${role} CONNECTION LIMIT ${rows[0]!.n}`);
      await leaving;
      const t = performance.now();
      let active = await activeReads();
      while (active > 0 && performance.now() - t < 3000) {
        await new Promise((r) => setTimeout(r, 50));
        active = await activeReads();
      }
      expect(active).toBe(0);
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
  }, 20_000);
});
