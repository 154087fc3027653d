// Data stored before tenants existed: after the upgrade it belongs to the default tenant (what
// every request is without auth.tokensFile), and other tenants' rows with the same ids can be
// added beside it. SQLite migrates the file when it opens it; PostgreSQL runs migration 3.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { MIGRATIONS } from '../../src/storage/postgres/migrations.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { getServices, getTrace, searchLogs } from '../../src/storage/sqlite/reads.ts';
import { traceIndexPath } from '../../src/common/sqlite-path.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { createEncoder } from '../../src/storage/rowjson.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { canonical, makeLog, makeSpan, writeSpansAs } from '../helpers/rows.ts';
import { indexNames } from '../helpers/sqlite-rows.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('tenants added to an existing SQLite file', () => {
  it('gives the rows already stored to the default tenant and keeps a new tenant apart', () => {
    const path = join(tempDir(), 'old.db');
    const span = makeSpan();
    const log = makeLog({ traceId: span.traceId, serviceName: span.serviceName });
    const enc = createEncoder();
    // A file as the previous version left it: write with today's code, then take the tenant away
    // the way the old schema had it (no tenant columns, keys without it, no operations table).
    {
      const db = openDatabase(path);
      const store = new SqliteStore(db);
      expect(store.writeSpans(enc.encodeSpans([span]).map((c) => c.data)).kind).toBe('success');
      expect(store.writeLogs(enc.encodeLogs([log]).map((c) => c.data), 'old-batch').kind).toBe('success');
      for (const idx of ['spans_tenant_trace_span', 'logs_tenant_service_bucket', 'logs_tenant_bucket']) db.exec(`DROP INDEX ${idx}`);
      db.exec(`ALTER TABLE spans DROP COLUMN tenant; ALTER TABLE logs DROP COLUMN tenant; DROP TABLE operations; DROP TABLE span_runs;
               CREATE UNIQUE INDEX spans_trace_span ON spans (trace_id, span_id);
               CREATE INDEX spans_service_start ON spans (service_name, start_ns);
               CREATE INDEX logs_trace ON logs (trace_id); CREATE INDEX logs_time ON logs (time_ns);`);
      db.close();
      // Nor was there a trace index file beside it.
      for (const suffix of ['', '-wal', '-shm']) rmSync(traceIndexPath(path) + suffix, { force: true });
    }
    const db = openDatabase(path);
    const store = new SqliteStore(db);
    expect(canonical(getTrace(db, DEFAULT_TENANT, span.traceId))).toEqual(canonical([span]));
    expect(getServices(db, DEFAULT_TENANT)).toEqual([span.serviceName]);
    expect(canonical(searchLogs(db, DEFAULT_TENANT, { traceId: span.traceId, limit: 5 }))).toEqual(canonical([log]));
    // The same ids under another tenant: stored beside the default tenant's, read apart.
    const theirs = { ...span, name: 'theirs' };
    expect(store.writeSpans(enc.encodeSpans([theirs]).map((c) => c.data), 'acme').kind).toBe('success');
    expect(canonical(getTrace(db, 'acme', span.traceId))).toEqual(canonical([theirs]));
    expect(canonical(getTrace(db, DEFAULT_TENANT, span.traceId))).toEqual(canonical([span]));
    expect(getServices(db, 'acme')).toEqual([span.serviceName]);
    // The old keys are gone: the unique key now leads with the tenant.
    const indexes = indexNames(db, 'spans');
    expect(indexes).not.toContain('spans_trace_span');
    db.close();
  });
});

describe('tenants added to an existing PostgreSQL schema (migration 3)', () => {
  it('gives the rows already stored to the default tenant and keeps a new tenant apart', async () => {
    const url = await createTestDatabase('tenantmig');
    const schema = 'old';
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    const traceId = randomBytes(16);
    const spanId = randomBytes(8);
    const now = BigInt(Date.now()) * 1_000_000n;
    try {
      // The schema as versions 1 and 2 left it, with one span written then.
      await pool.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.schema_migrations (version int4 PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      for (const m of MIGRATIONS.filter((x) => x.version <= 2)) {
        await pool.query(m.sql(schema));
        await pool.query(`INSERT INTO ${schema}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      }
      const empty = JSON.stringify({ attributes: [], droppedAttributesCount: 0, schemaUrl: '', name: 'scope', version: '' });
      await pool.query(
        `INSERT INTO ${schema}.spans (start_time_unix_nano, trace_id, span_id, parent_span_id, trace_state, flags, name, kind, end_time_unix_nano, duration_nano,
           status_code, status_message, service_name, resource, scope, attributes, attr_tokens, dropped_attributes_count, events, dropped_events_count, links, dropped_links_count)
         VALUES ($1, $2, $3, '\\x', '', 1, 'old-op', 2, $1, 0, 0, '', 'old-svc', $4, $4, '[]', '{}', 0, '[]', 0, '[]', 0)`,
        [now.toString(), traceId, spanId, empty],
      );
      await pool.query(`INSERT INTO ${schema}.trace_index VALUES ($1, $2, $2)`, [traceId, now.toString()]);
      await pool.query(`INSERT INTO ${schema}.operations VALUES ('old-svc', 'old-op', 2, $1)`, [now.toString()]);
    } finally {
      await pool.end();
    }

    const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.schema': schema, 'storage.postgres.poolSize': '2' } });
    const b = createPostgresBackend(postgresOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await b.start();
    try {
      const id = traceId.toString('hex');
      const old = await b.getTrace(DEFAULT_TENANT, id);
      expect(old.map((s) => [s.spanId, s.name, s.serviceName])).toEqual([[spanId.toString('hex'), 'old-op', 'old-svc']]);
      expect(await b.getServices(DEFAULT_TENANT)).toEqual(['old-svc']);
      expect(await b.getTrace('acme', id)).toEqual([]);
      // The same trace and span id under another tenant: not swallowed by the old row's key.
      const theirs = makeSpan({ traceId: id, spanId: spanId.toString('hex'), serviceName: 'acme-svc', startTimeUnixNano: now, endTimeUnixNano: now + 1000n });
      await writeSpansAs(b, 'acme', [theirs]);
      expect(canonical(await b.getTrace('acme', id))).toEqual(canonical([theirs]));
      expect((await b.getTrace(DEFAULT_TENANT, id)).map((s) => s.name)).toEqual(['old-op']);
      expect(await b.getServices('acme')).toEqual(['acme-svc']);
    } finally {
      await b.shutdown();
    }
  });
});
