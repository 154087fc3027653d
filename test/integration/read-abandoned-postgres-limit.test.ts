// The statement of a read whose client left is cancelled (read-abandoned-postgres.test.ts) also
// when the collector's role may open no more connections: a role's CONNECTION LIMIT or the
// server's max_connections reached (the read pool sized to what the database grants). A cancel
// that needed a connection of its own (pg_cancel_backend) was refused then, and the statement ran
// on until storage.postgres.statementTimeoutMs, holding its read connection. PostgreSQL's cancel
// request (what psql's Ctrl-C sends) takes no connection slot.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { eventually } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { createLoginRole, createTestDatabase, withUser } from '../helpers/postgres.ts';
import { getAndLeave, postgresReadServer, untilNone, withLogsLocked } from '../helpers/abandon.ts';

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
    ({ store, server } = await postgresReadServer(withUser(adminUrl, role), logger));
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
    await withLogsLocked(adminUrl, async () => {
      // The readers leave once both statements are active and the limit is set (not after a fixed
      // time: on a loaded machine the statements took past 300 ms to start).
      let leave!: () => void;
      const left = new Promise<void>((r) => (leave = r));
      const leaving = Promise.all([getAndLeave(port, '/v1/logs?service=svc', left), getAndLeave(port, '/v1/logs?service=svc', left)]);
      try {
        await eventually(async () => ((await activeReads()) === 2 ? true : undefined), 10_000, 'both reads active on the server');
        // The role may open no more connections than it has now.
        const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1', [role]);
        await admin.query(`ALTER ROLE ${role} CONNECTION LIMIT ${rows[0]!.n}`);
      } finally {
        leave();
      }
      await leaving;
      expect(await untilNone(activeReads, 3000)).toBe(0);
    });
  }, 20_000);
});
