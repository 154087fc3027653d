// A database whose encoding is not UTF-8 (LATIN1, WIN1252: what initdb picks under such a locale)
// refuses every string holding a character it has not (22P05, a permanent error): the collector
// started, and every span or log record with a Japanese name or an emoji was dropped, counted
// permanent_error, for as long as it ran. It now refuses to start on such a database, naming
// storage.postgres.url and the encoding, before it migrates anything into it; one it wrote to
// before is warned about. SQL_ASCII converts nothing and keeps the UTF-8 as sent: it is still taken.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { testPostgresUrl, withDatabase } from '../helpers/postgres.ts';
import { postgresBackend, spanBatch } from '../helpers/postgres-store.ts';
import { makeSpan } from '../helpers/rows.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { loadConfig } from '../../src/config/index.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { runMigrations } from '../../src/storage/postgres/migrations.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';

describe('postgres: the database encoding', () => {
  let server: string;
  let admin: pg.Client;

  beforeAll(async () => {
    server = await testPostgresUrl();
    admin = new pg.Client({ connectionString: server });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
  });

  async function database(encoding: string): Promise<string> {
    const name = `pgencoding_${encoding.toLowerCase()}_${process.pid}_${Date.now().toString(36)}`;
    await admin.query(`CREATE DATABASE ${name} ENCODING '${encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`);
    return withDatabase(server, name);
  }

  it('refuses to start on a LATIN1 database, naming storage.postgres.url and the encoding, and migrates nothing into it', { timeout: 30_000 }, async () => {
    const url = await database('LATIN1');
    for (const autoMigrate of ['true', 'false']) {
      const store = postgresBackend(url, { 'storage.postgres.autoMigrate': autoMigrate });
      try {
        await expect(store.start()).rejects.toThrow(/storage\.postgres\.url\) has encoding LATIN1.*ENCODING 'UTF8'/);
      } finally {
        await store.shutdown();
      }
    }
    // `tracehouse migrate` (the store's migrate()) refuses it the same way.
    const store = postgresBackend(url);
    try {
      await expect(store.migrate!()).rejects.toThrow(/storage\.postgres\.url\) has encoding LATIN1/);
    } finally {
      await store.shutdown();
    }
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const { rowCount } = await c.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'tracehouse'`);
      expect(rowCount).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('starts on a LATIN1 database an earlier version migrated, with a warning naming the key and the encoding', { timeout: 30_000 }, async () => {
    // Refused, every pod on it would stop taking any telemetry at the upgrade.
    const url = await database('LATIN1');
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    try {
      await runMigrations(pool, 'tracehouse');
    } finally {
      await pool.end();
    }
    const { logger, lines } = capturedLogger();
    const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.poolSize': '2' } });
    const store = createPostgresBackend(postgresOptions(config), { logger, metrics: createMetrics() });
    try {
      await store.start();
      expect(lines().filter((l) => l.level === 40).map((l) => l.msg)).toEqual([expect.stringMatching(/storage\.postgres\.url\) has encoding LATIN1.*started on it all the same/)]);
      // What the warning says: the characters LATIN1 has are stored, the others refused.
      expect((await store.write(spanBatch([makeSpan({ name: 'plain ascii', attributes: [] })]))).kind).toBe('success');
      expect((await store.write(spanBatch([makeSpan({ name: 'rocket 🚀', attributes: [] })]))).kind).toBe('permanent');
    } finally {
      await store.shutdown();
    }
  });

  it('stores any character on a SQL_ASCII database, as on a UTF8 one', { timeout: 30_000 }, async () => {
    const store = postgresBackend(await database('SQL_ASCII'));
    try {
      await store.start();
      const span = makeSpan({ name: '日本 ✓ 🚀', serviceName: 'svc-' + randomUUID() });
      expect((await store.write(spanBatch([span]))).kind).toBe('success');
      expect((await store.getTrace(TENANT, span.traceId)).map((s) => s.name)).toEqual([span.name]);
    } finally {
      await store.shutdown();
    }
  });
});
