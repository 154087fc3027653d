// A read API client that goes away (Grafana cancels a query, a tab closes) must not keep a SQLite
// read thread (storage.sqlite.readThreads, 2 by default) on its read until query.timeoutMs: the
// readers after it waited behind a search nobody would see. Its read stops on the store, a read of
// it still waiting for a thread never runs, and neither is logged as a store failure.
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { writeSpansOneASecond } from '../helpers/sqlite-fill.ts';
import { tempDir } from '../helpers/tmp.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { getAndLeave, timedGet } from '../helpers/abandon.ts';

const SPANS = 60_000;
/** A search the attribute index cannot answer (sqlite-read-threads.test.ts): every span's document is parsed. */
const HEAVY = `/v1/traces?attr=${encodeURIComponent('double=0.5')}&limit=20`;
const HEAVY_JAEGER = `/api/traces?service=heavy&lookback=24h&limit=20&tags=${encodeURIComponent('{"double":"0.5"}')}`;
const LIGHT = '/v1/traces?service=heavy&limit=1';

describe('sqlite: a read whose client is gone', () => {
  const path = join(tempDir(), 'abandoned.db');
  const { logger, lines } = capturedLogger();
  const registry = new Registry();
  let store: StorageBackend;
  let server: QueryServer;
  let heavyMs = 0;

  beforeAll(async () => {
    const db = openDatabase(path);
    writeSpansOneASecond(new SqliteStore(db), SPANS, 'heavy');
    db.close();
    const config = loadConfig({ flags: { 'storage.sqlite.path': path, 'storage.sqlite.readThreads': '1', 'query.timeoutMs': '60000' } });
    store = createSqliteBackend(sqliteOptions(config), { logger, metrics: createMetrics() });
    await store.start();
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 100, maxSpansPerTrace: 1000, maxSpansPerSearch: 10_000 }, store, logger, registry);
    await server.start();
    // What one heavy search takes when its client waits: the readers after it waited that long.
    const heavy = await timedGet(server.boundPort, HEAVY, 15_000);
    expect(heavy.status).toBe(200);
    heavyMs = heavy.ms;
  }, 120_000);
  afterAll(async () => {
    await server?.shutdown();
    await store?.shutdown();
  });

  for (const [api, path] of [['/v1/traces', HEAVY], ['/api/traces', HEAVY_JAEGER]] as const) {
    it(`${api}: frees the read thread at once, and drops a read still waiting for it`, async () => {
      expect(heavyMs).toBeGreaterThan(1000);
      const port = server.boundPort;
      // The first holds the only read thread; the second waits for it. Both clients leave.
      const first = getAndLeave(port, path, 300);
      const second = getAndLeave(port, path, 300);
      await Promise.all([first, second]);
      // The next reader is answered at once, not after one or two heavy searches nobody sees.
      const next = await timedGet(port, LIGHT, 15_000);
      expect(next.status).toBe(200);
      console.log(`heavy search ${heavyMs.toFixed(0)} ms; the reader after two that left answered in ${next.ms.toFixed(0)} ms`);
      expect(next.ms).toBeLessThan(Math.min(1000, heavyMs / 2));
      expect(lines().filter((l) => (l['level'] as number) >= 40)).toEqual([]);
      // Nobody was answered 503: the reads are no store failure.
      expect(await registry.metrics()).not.toMatch(/^tracehouse_query_request_duration_seconds_count\{[^}]*code="5xx"[^}]*\} [1-9]/m);
    }, 30_000);
  }

  it('a read left while it waits for the thread never runs', async () => {
    const heavy = { attributes: [{ key: 'double', value: '0.5' }], limit: 20 };
    const t = performance.now();
    // One heavy search whose reader waits, one queued behind it whose reader leaves, then a light read.
    const kept = store.searchTraces(TENANT, heavy);
    const gone = new AbortController();
    const left = store.searchTraces(TENANT, heavy, gone.signal).then(() => 'answered', (err: Error) => err.name);
    const light = store.searchTraces(TENANT, { service: 'heavy', limit: 1 }).then(() => performance.now() - t);
    setTimeout(() => gone.abort(), 100);
    expect(await kept).toEqual([]);
    expect(await left).toBe('ReadAborted');
    // The light read runs right after the first search, not after the abandoned one too.
    expect(await light).toBeLessThan(heavyMs * 1.6);
  }, 30_000);

  it('a read whose client waits still runs to its answer', async () => {
    const r = await timedGet(server.boundPort, HEAVY, 15_000);
    expect(r.status).toBe(200);
  }, 30_000);
});
