// The storage metrics of PostgreSQL on a schema whose name has a quote (storage.postgres.schema
// takes any name; writes and reads work): the statement put the name into string literals unescaped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend } from '../helpers/postgres-store.ts';
import { makeTrace, writeSpans } from '../helpers/rows.ts';

const backend = (url: string, flags: Record<string, string> = {}): StorageBackend => postgresBackend(url, { 'storage.postgres.poolSize': '4', ...flags });

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
