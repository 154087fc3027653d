// A Jaeger search (/api/traces, and api_v3's) reads its traces one after another from the store.
// Grafana or the Jaeger UI cancels a search when the user changes the time range or leaves the
// page: the connection closes. The store's work for the traces not read yet must stop then, or
// each abandoned heavy search (20 traces of thousands of spans) keeps SQLite's read threads busy
// for seconds and the reads of the next search wait behind it.
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';
import type { StoreReader } from '../../src/storage/backend.ts';
import { slowTraceReads, type SlowReads } from '../helpers/slow-reads.ts';

const TRACES = 20;
const SPANS = 200;
const SERVICE = 'cancelled-search';

function traceJson(traceId: string, base: bigint): Record<string, unknown> {
  const spans = Array.from({ length: SPANS }, (_, i) => ({
    traceId,
    spanId: randomBytes(8).toString('hex'),
    name: `op ${i % 5}`,
    kind: 2,
    startTimeUnixNano: String(base + BigInt(i) * 1000n),
    endTimeUnixNano: String(base + BigInt(i) * 1000n + 500_000n),
  }));
  return { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: SERVICE } }] }, scopeSpans: [{ scope: { name: 't' }, spans }] }] };
}

/** Sends a GET and closes the connection once the store has begun reading its traces. */
function getAndHangUp(url: string, started: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url);
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.end();
    const poll = setInterval(() => {
      if (!started()) return;
      clearInterval(poll);
      req.destroy();
    }, 2);
  });
}

describe('a Jaeger search whose client hangs up', () => {
  let c: TestCollector;
  let slow: SlowReads;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'sqlite' });
    const now = BigInt(Date.now()) * 1_000_000n;
    for (let t = 0; t < TRACES; t++) {
      const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(traceJson(randomBytes(16).toString('hex'), now - BigInt(t) * 1_000_000_000n)) });
      expect(res.status).toBe(200);
    }
    await eventually(async () => {
      const r = await getJson(c.queryUrl, `/v1/traces?service=${SERVICE}&limit=${TRACES}`);
      return r.body?.traces?.length === TRACES ? true : undefined;
    }, 10_000, 'every trace searchable');
    // Counts the trace reads the store is asked for, each 40 ms.
    slow = slowTraceReads(c.collector.backend as StoreReader, 40);
  });
  afterAll(async () => c?.stop());

  for (const [api, path] of [
    ['/api/traces', `/api/traces?service=${SERVICE}&limit=${TRACES}&lookback=1h`],
    ['/api/v3/traces', `/api/v3/traces?query.service_name=${SERVICE}&query.search_depth=${TRACES}&query.start_time_min=${new Date(Date.now() - 3_600_000).toISOString()}&query.start_time_max=${new Date(Date.now() + 3_600_000).toISOString()}`],
  ] as const) {
    it(`${api}: stops reading traces once the client is gone`, async () => {
      slow.reads = 0;
      await getAndHangUp(c.queryUrl + path, () => slow.reads > 0);
      // Long enough for the 20 reads (40 ms each) the search would do without its client.
      await new Promise((r) => setTimeout(r, 1200));
      expect(slow.reads).toBeGreaterThan(0);
      expect(slow.reads).toBeLessThanOrEqual(2);
      // The search still answers whole for a client that waits.
      slow.reads = 0;
      const r = await getJson(c.queryUrl, path);
      expect(r.status).toBe(200);
      expect(slow.reads).toBe(TRACES);
    });
  }
});
