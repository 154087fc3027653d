// The storage metrics of PostgreSQL on a schema whose name has a quote (storage.postgres.schema
// takes any name; writes and reads work): the statement put the name into string literals unescaped.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { makeTrace, writeSpans } from '../helpers/rows.ts';

function backend(url: string, flags: Record<string, string> = {}): StorageBackend {
  const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.poolSize': '4', ...flags } });
  return createPostgresBackend(postgresOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
}

describe('postgres stats on a schema whose name has a quote', () => {
  let b: StorageBackend;
  beforeAll(async () => {
    b = backend(await createTestDatabase('pgschemaquote'), { 'storage.postgres.schema': "it's" });
    await b.start();
  });
  afterAll(async () => {
    await b?.shutdown();
  });

  it('measures the store (storage metrics) instead of failing with a syntax error', async () => {
    const spans = makeTrace(3);
    await writeSpans(b, spans);
    const traces = (await b.stats!()).signals.find((s) => s.signal === 'traces');
    expect(traces?.oldestUnixNano).toBe(spans.map((s) => s.startTimeUnixNano).reduce((a, c) => (c < a ? c : a)));
    expect(traces?.bytes).toBeGreaterThan(0);
  });
});
