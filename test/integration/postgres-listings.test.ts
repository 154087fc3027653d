// PostgreSQL listings beside the contract: services and operations come from the small
// operations table (kept by every span write), dependencies from the span indexes — no full scan.
import { pino } from 'pino';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { SpanRow } from '../../src/model/rows.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { dependenciesSql } from '../../src/storage/postgres/reads.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { makeSpan, makeTrace, writeSpans, writeSpansAs } from '../helpers/rows.ts';
import { byDependency, byOperation } from '../../src/storage/query-helpers.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

const MS = 1_000_000n;

describe('postgres listings', () => {
  let url: string;
  let backend: StorageBackend;
  let db: pg.Client;
  const explain = async (sql: string, values: unknown[] = []) => (await db.query<{ 'QUERY PLAN': string }>('EXPLAIN ' + sql, values)).rows.map((r) => r['QUERY PLAN']).join('\n');

  beforeAll(async () => {
    url = await createTestDatabase('pglistings');
    const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.poolSize': '2' } });
    backend = createPostgresBackend(postgresOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await backend.start();
    db = new pg.Client({ connectionString: url });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await backend?.shutdown();
  });

  it('keeps one operations row per service, name and kind however many spans', async () => {
    const now = BigInt(Date.now()) * MS;
    const spans: SpanRow[] = [];
    for (let i = 0; i < 400; i++) spans.push(...makeTrace(5, { serviceName: `svc-${i % 8}`, startTimeUnixNano: now - BigInt(i) * 1000n * MS }));
    spans.push(makeSpan({ serviceName: 'x'.repeat(5000), name: 'long-service' }));
    await writeSpans(backend, spans);
    await db.query('ANALYZE tracehouse.spans; ANALYZE tracehouse.operations');
    const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM tracehouse.operations');
    // 8 services × (root + 4 children) + the long one, whose name is kept to 256 characters.
    expect(Number(rows[0]!.n)).toBe(8 * 5 + 1);
    expect(await backend.getServices(TENANT)).toEqual([...Array.from({ length: 8 }, (_, i) => `svc-${i}`), 'x'.repeat(256)]);
  });

  it('lists services, operations and dependencies in the port\'s order, as the other stores do', async () => {
    // U+FF46 (fullwidth f) sorts after an emoji by UTF-8 bytes (COLLATE "C") and before it by
    // UTF-16 code units (JavaScript, the memory, SQLite and ClickHouse stores): the Jaeger UI's
    // service list and the listings differed from store to store.
    const tenant = 'order-' + Date.now();
    const services = ['checkout', 'ｆrontend', '🚀rocket'];
    const spans: SpanRow[] = [];
    for (const parent of services) {
      const root = makeSpan({ serviceName: parent, name: parent === 'checkout' ? 'ｆetch' : 'x' });
      spans.push(root);
      for (const child of services.filter((c) => c !== parent)) spans.push(makeSpan({ traceId: root.traceId, parentSpanId: root.spanId, serviceName: child, name: 'child' }));
    }
    spans.push(makeSpan({ serviceName: 'checkout', name: '🚀launch' }));
    await writeSpansAs(backend, tenant, spans);
    expect(await backend.getServices(tenant)).toEqual([...services].sort());
    const ops = await backend.getOperations(tenant, { service: 'checkout' });
    expect(ops.map((o) => o.name)).toEqual([...ops].sort(byOperation).map((o) => o.name));
    expect(ops.map((o) => o.name)).toEqual(['child', '🚀launch', 'ｆetch']);
    const now = BigInt(Date.now()) * MS;
    const deps = await backend.getDependencies(tenant, { startNano: now - 3_600_000n * MS, endNano: now + 3_600_000n * MS });
    expect(deps).toHaveLength(6);
    expect(deps).toEqual([...deps].sort(byDependency));
  });

  it('plans services, operations and dependencies on indexes, never a sequential scan of spans', async () => {
    const services = await explain(
      `WITH RECURSIVE svc AS ((SELECT service_name FROM tracehouse.operations WHERE tenant = $1::text ORDER BY service_name LIMIT 1) UNION ALL
       SELECT (SELECT o.service_name FROM tracehouse.operations o WHERE o.tenant = $1::text AND o.service_name > svc.service_name ORDER BY o.service_name LIMIT 1) FROM svc WHERE svc.service_name IS NOT NULL)
       SELECT service_name FROM svc WHERE service_name IS NOT NULL`,
      [TENANT],
    );
    expect(services).toMatch(/Index Only Scan using operations_pkey/);
    expect(services).not.toMatch(/spans/);
    await db.query('SET enable_seqscan = off');
    try {
      const now = BigInt(Date.now()) * MS;
      const deps = await explain(dependenciesSql('tracehouse'), [String(now - 60_000n * MS), String(now), TENANT]);
      // The child side reads the range through the start-time index (a plain or a bitmap index scan).
      expect(deps).toMatch(/Index (Only )?Scan using \S+ on spans_p\d+ c|Bitmap Heap Scan on spans_p\d+ c[\s\S]*Bitmap Index Scan on spans_p\d+_(tenant_)?start_time/);
      expect(deps).not.toMatch(/Seq Scan on spans/);
    } finally {
      await db.query('RESET enable_seqscan');
    }
  });
});
