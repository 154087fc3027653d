// Migrations, partition DDL and retention run with statement_timeout = 0 on purpose: migration 3
// rebuilds every index of a large database (README: "writes wait while it runs"), and each waits
// for the locks it needs (a long report, a pg_dump holding the tables). The client-side bound the
// pool sets for writes and reads (query_timeout, statementTimeoutMs + 10 s) cut them short all the
// same: past it the client gave up ('Query read timeout'), rolled back and dropped the connection,
// so `tracehouse migrate` of a database whose migration took longer than that never succeeded.
import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { MIGRATIONS } from '../../src/storage/postgres/migrations.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createTestDatabase } from '../helpers/postgres.ts';

describe('postgres: migrations outlast statementTimeoutMs', () => {
  it('applies a migration that waits longer than statementTimeoutMs + 10 s for its lock', { timeout: 60_000 }, async () => {
    const url = await createTestDatabase('pgmigratewait');
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const reader = new pg.Client({ connectionString: url });
    await reader.connect();
    const store = createPostgresBackend(
      postgresOptions(loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.statementTimeoutMs': '50' } })),
      { logger: pino({ level: 'silent' }), metrics: createMetrics() },
    );
    try {
      // A database of an earlier version (migrations 1 and 2 applied) ...
      await admin.query('CREATE SCHEMA tracehouse');
      await admin.query('CREATE TABLE tracehouse.schema_migrations (version int4 PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
      for (const m of MIGRATIONS.slice(0, 2)) {
        await admin.query(m.sql('tracehouse'));
        await admin.query('INSERT INTO tracehouse.schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
      // ... read by a long transaction (a report, a dump) that ends 12 s from now.
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM tracehouse.spans');
      const release = setTimeout(() => void reader.query('COMMIT'), 12_000);
      try {
        await store.migrate!();
      } finally {
        clearTimeout(release);
        await reader.query('COMMIT').catch(() => undefined);
      }
      const { rows } = await admin.query<{ v: number }>('SELECT max(version) AS v FROM tracehouse.schema_migrations');
      expect(rows[0]!.v).toBe(3);
    } finally {
      await store.shutdown();
      await reader.end();
      await admin.end();
    }
  });
});
