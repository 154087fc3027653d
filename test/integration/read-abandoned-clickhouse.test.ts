// A read API client that goes away (Grafana cancels a query, a tab closes) abandons its read on
// ClickHouse: its queries are sent with the read's signal. chdb (the embedded engine) cannot stop a
// query it runs (no interrupt in its C ABI: it runs to its end in the background) but runs the
// parameterized queries of every read one after another, and one whose reader left before its
// turn is not run: the readers after an abandoned search wait for the query it was running, not
// for the rest of it and every abandoned read queued behind it. (Over HTTP the request is closed,
// which a server with cancel_http_readonly_queries_on_client_close stops the query on.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import type { StorageBackend, TraceQuery } from '../../src/storage/backend.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { chdbBackend, chdbClient, removeChdbDir, uniqueDatabase } from '../helpers/clickhouse.ts';

/** Spans of 2,000,000 traces of one service: a search of the service groups them all. */
const SPANS = 2_000_000;
const HEAVY: TraceQuery = { service: 'heavy', limit: 20 };
const LIGHT: TraceQuery = { service: 'none', limit: 1 };

describe('clickhouse (chdb): a read whose client is gone', () => {
  let store: StorageBackend;
  let client: ClickHouseClient;
  let heavyMs = Infinity;

  beforeAll(async () => {
    const db = uniqueDatabase();
    store = await chdbBackend([db]);
    client = await chdbClient();
    await client.command({
      query: `INSERT INTO ${db}.otel_traces (Timestamp, TraceId, SpanId, ServiceName, SpanName)
              SELECT now64(9) - toIntervalMicrosecond(number), leftPad(lower(hex(number)), 32, '0'), leftPad(lower(hex(number)), 16, '0'), 'heavy', 'op' FROM numbers(${SPANS})`,
    });
    for (let i = 0; i < 2; i++) {
      const t = performance.now();
      expect(await store.searchTraces(TENANT, HEAVY)).toHaveLength(20);
      heavyMs = Math.min(heavyMs, performance.now() - t);
    }
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await store?.shutdown();
    removeChdbDir();
  });

  it('answers an abandoned read at once and never starts one left before its turn', async () => {
    expect(heavyMs).toBeGreaterThan(200);
    const t = performance.now();
    // One search whose reader waits, two behind it whose readers leave, then a light read.
    const kept = store.searchTraces(TENANT, HEAVY);
    const leaving = [new AbortController(), new AbortController()];
    const left = leaving.map((a) => store.searchTraces(TENANT, HEAVY, a.signal).then(() => performance.now() - t, () => performance.now() - t));
    const light = store.searchTraces(TENANT, LIGHT).then(() => performance.now() - t);
    setTimeout(() => leaving.forEach((a) => a.abort()), 50);
    // The abandoned reads end when their readers leave, not when their searches would have.
    for (const ms of await Promise.all(left)) expect(ms).toBeLessThan(Math.min(heavyMs, 500));
    expect(await kept).toHaveLength(20);
    // The light read waits for the search whose reader stayed, not also for the two abandoned ones:
    // behind all three it answers about three searches after the start (3.0 times the search alone
    // with the signals ignored), behind one about one; up to 1.9 times seen in CI beside the other
    // forks, whose load slows this run's searches against the one measured before.
    const lightMs = await light;
    console.log(`heavy search ${heavyMs.toFixed(0)} ms; the light read behind one kept and two abandoned answered after ${lightMs.toFixed(0)} ms`);
    expect(lightMs).toBeLessThan(heavyMs * 2.4);
  }, 30_000);
});
