// A PostgreSQL read stopped at its time budget (storage.postgres.statementTimeoutMs) is the reader's
// to narrow, as a SQLite read stopped at query.timeoutMs is: it was answered 503 "storage
// unavailable; retry later" (the same search then failed again) and logged as the store failing
// ('read API request failed'), so an operator read a heavy search as an outage. It is now answered
// 503 naming the option, and not logged, as SQLite's QueryTimeout.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { createTestDatabase } from '../helpers/postgres.ts';

/** Runs body while a session of its own holds tracehouse.<table> in ACCESS EXCLUSIVE mode: a read of it waits. */
async function withLocked(url: string, table: string, body: () => Promise<void>): Promise<void> {
  const locker = new pg.Client({ connectionString: url, application_name: 'test-locker' });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE tracehouse.${table} IN ACCESS EXCLUSIVE MODE`);
    await body();
  } finally {
    await locker.query('COMMIT');
    await locker.end();
  }
}

describe('postgres: a read past storage.postgres.statementTimeoutMs', () => {
  const { logger, lines } = capturedLogger();
  let url: string;
  let store: StorageBackend;
  let server: QueryServer;
  beforeAll(async () => {
    url = await createTestDatabase('pgreadtimeout');
    const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.statementTimeoutMs': '300' } });
    store = createPostgresBackend(postgresOptions(config), { logger, metrics: createMetrics() });
    await store.start();
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 100, maxSpansPerTrace: 1000, maxSpansPerSearch: 10_000 }, store, logger);
    await server.start();
  });
  afterAll(async () => {
    await server?.shutdown();
    await store?.shutdown();
  });

  for (const path of ['/v1/logs?service=svc', '/api/v3/traces?query.service_name=svc&query.start_time_min=2020-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z'] as const) {
    it(`${path.split('?')[0]}: 503 naming the option, not logged as a store failure`, async () => {
      const before = lines().length;
      const table = path.startsWith('/v1/logs') ? 'logs' : 'spans';
      await withLocked(url, table, async () => {
        const res = await fetch(`http://127.0.0.1:${server.boundPort}${path}`, { signal: AbortSignal.timeout(5000) });
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(await res.text()).toContain('storage.postgres.statementTimeoutMs (300 ms)');
      });
      expect(lines().slice(before).filter((l) => (l['level'] as number) >= 50)).toEqual([]);
    }, 20_000);
  }
});
