// storage.postgres.statementTimeoutMs=0 promises no statement timeout. A database or role default
// (ALTER DATABASE … SET statement_timeout, common on managed servers) must not cut the
// collector's statements short then: a write waiting on a lock longer than that default failed.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend as backend, spanBatch } from '../helpers/postgres-store.ts';
import { makeSpan } from '../helpers/rows.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

describe('postgres: statementTimeoutMs 0', () => {
  let url: string;
  let store: StorageBackend;

  beforeAll(async () => {
    url = await createTestDatabase('pgstmtnone');
    const db = new URL(url).pathname.slice(1);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`ALTER DATABASE "${db}" SET statement_timeout = '300ms'`);
    await admin.end();
    store = backend(url, { 'storage.postgres.statementTimeoutMs': '0' });
    await store.start();
  });
  afterAll(async () => {
    await store?.shutdown();
  });

  it('lets a write wait on a lock longer than the database default statement_timeout', async () => {
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE tracehouse.spans IN ACCESS EXCLUSIVE MODE');
      const span = makeSpan();
      const pending = store.write(spanBatch([span]));
      await new Promise((r) => setTimeout(r, 1_000));
      await locker.query('COMMIT');
      const r = await pending;
      expect(r.kind === 'success' ? 'success' : `${r.kind}: ${r.error.message}`).toBe('success');
      expect(await store.getTrace(TENANT, span.traceId)).toHaveLength(1);
    } finally {
      await locker.end();
    }
  });

  it('still applies a timeout that is set (shorter than the database default here)', async () => {
    const short = backend(url, { 'storage.postgres.statementTimeoutMs': '100' });
    await short.start();
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE tracehouse.spans IN ACCESS EXCLUSIVE MODE');
      const r = await short.write(spanBatch([makeSpan()]));
      expect(r.kind === 'success' ? 'success' : `${r.kind}: ${r.error.message}`).toBe('retryable: canceling statement due to statement timeout');
    } finally {
      await locker.query('COMMIT');
      await locker.end();
      await short.shutdown();
    }
  });
});

// The largest statementTimeoutMs the configuration accepts (2^31 - 1, the longest timer) must
// work: pg's client-side query_timeout, statementTimeoutMs + 10 s, went past Node's longest
// timer, which Node fires after 1 ms, so every statement failed with "Query read timeout".
describe('postgres: statementTimeoutMs at its largest', () => {
  let url: string;

  beforeAll(async () => {
    url = await createTestDatabase('pgstmtmax');
  });

  it('starts, writes and reads with storage.postgres.statementTimeoutMs = 2147483647', async () => {
    const store = backend(url, { 'storage.postgres.statementTimeoutMs': String(2 ** 31 - 1) });
    try {
      await store.start();
      const span = makeSpan();
      const r = await store.write(spanBatch([span]));
      expect(r.kind === 'success' ? 'success' : `${r.kind}: ${r.error.message}`).toBe('success');
      expect(await store.getTrace(TENANT, span.traceId)).toHaveLength(1);
    } finally {
      await store.shutdown();
    }
  });
});
