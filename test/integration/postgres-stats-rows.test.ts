// tracehouse_storage_rows of a PostgreSQL store is the planner's estimate (reltuples), summed over
// the partitions. Autovacuum analyzes only the partitions rows went into: the partitions made ahead
// of today (storage.postgres.partitionsAheadDays) and the default partitions stay empty and never
// analyzed (reltuples -1). The estimate of the partitions that hold rows must still be reported,
// not left absent for as long as one empty partition exists (in practice, always).
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { LogRow, SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import type { StorageBackend, StoreStats, WriteBatch } from '../../src/storage/backend.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { createEncoder } from '../../src/storage/postgres/encoder.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { makeLog, makeSpan } from '../helpers/rows.ts';

const ymd = (d: Date): string => d.toISOString().slice(0, 10).replace(/-/g, '');

function batchOf(signal: 'traces' | 'logs', rows: SpanRow[] | LogRow[]): WriteBatch {
  const enc = createEncoder({ format: 'binary' });
  const chunks = signal === 'traces' ? enc.encodeSpans(rows as SpanRow[]) : enc.encodeLogs(rows as LogRow[]);
  return { signal, partition: 0, tenant: TENANT, rows: rows.length, bytes: chunks.reduce((n, c) => n + c.data.byteLength, 0), chunks: chunks.map((c) => c.data), batchId: randomUUID() };
}

describe('postgres: stored rows estimate with empty partitions never analyzed', () => {
  let url: string;
  let b: StorageBackend & StoreStats;
  beforeAll(async () => {
    url = await createTestDatabase('pgstatsrows');
    const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.poolSize': '2' } });
    b = createPostgresBackend(postgresOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() }) as StorageBackend & StoreStats;
    await b.start();
  });
  afterAll(async () => {
    await b?.shutdown();
  });

  it('reports the rows of the analyzed partitions', async () => {
    // No partition analyzed yet: the estimate is unknown, absent.
    expect((await b.stats()).signals.find((s) => s.signal === 'traces')?.rows).toBeUndefined();
    const now = BigInt(Date.now()) * 1_000_000n;
    const spans = Array.from({ length: 200 }, () => makeSpan({ startTimeUnixNano: now, endTimeUnixNano: now + 1000n }));
    const logs = Array.from({ length: 100 }, () => makeLog({ timeUnixNano: now }));
    expect((await b.write(batchOf('traces', spans))).kind).toBe('success');
    expect((await b.write(batchOf('logs', logs))).kind).toBe('success');
    // What autovacuum does: analyze the leaf partitions that changed (today's), nothing else.
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const day = ymd(new Date());
      await c.query(`ANALYZE tracehouse.spans_p${day}, tracehouse.logs_p${day}`);
      const never = await c.query("SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'tracehouse'::regnamespace AND relkind = 'r' AND reltuples < 0 AND (relname LIKE 'spans_%' OR relname LIKE 'logs_%')");
      expect(never.rows[0].n, 'empty partitions never analyzed').toBeGreaterThan(0);
    } finally {
      await c.end();
    }
    const stats = await b.stats();
    expect(stats.signals.find((s) => s.signal === 'traces')?.rows).toBe(200);
    expect(stats.signals.find((s) => s.signal === 'logs')?.rows).toBe(100);
  });
});
