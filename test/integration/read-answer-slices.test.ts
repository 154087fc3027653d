// A large read answer beside ingest: the read API shares its event loop with the OTLP receivers,
// and a Jaeger search of 20 traces of 2,500 spans (13 MB of JSON), translated and serialised in
// one go, held that loop for a second and more under a dozen readers, so small exports waited as
// long. The answer is now made and written in slices (sendJsonSliced): a timer on the loop stays
// on time, and the text is what one JSON.stringify of the old shapes gave, byte for byte.
import { request } from 'node:http';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { envelope, toJaegerTrace } from '../../src/query/jaeger.ts';
import { renderTraces } from '../../src/query/render-otlp.ts';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { makeSpan, writeSpans } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const TRACES = 20;
const SPANS = 2500;
/** Lateness of a 10 ms timer the answer may cause: 680 to 1,000 ms before, 130 to 160 ms now (what is left is the store's reads of the traces, not the answer). */
const MAX_LATE_MS = 300;
const BASE = BigInt(Date.now() - 60_000) * 1_000_000n;

/** GET of path: status, headers and body, and how late a 10 ms timer on this loop was at most meanwhile. */
async function timedGet(port: number, path: string, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: string; lateMs: number }> {
  let lateMs = 0;
  let due = performance.now() + 10;
  const timer = setInterval(() => {
    const now = performance.now();
    lateMs = Math.max(lateMs, now - due);
    due = now + 10;
  }, 10);
  try {
    const { status, headers, body } = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      // A connection of its own: while this loop computes the expected text (seconds on a loaded
      // machine), a kept-alive connection passes the server's keepAliveTimeout (5 s) and is closed,
      // and the next request, written before the loop sees the close, is reset (ECONNRESET).
      request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
    return { status, headers, body, lateMs };
  } finally {
    clearInterval(timer);
  }
}

describe('a large read answer', () => {
  let store: StorageBackend;
  let server: QueryServer;
  const ids: string[] = [];
  beforeAll(async () => {
    store = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.sqlite.path': join(tempDir(), 'slices.db') } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await store.start();
    for (let t = 0; t < TRACES; t++) {
      const first = makeSpan({ serviceName: 'load', startTimeUnixNano: BASE + BigInt(t) * 1_000_000_000n });
      const attributes = [{ key: 'http.route', value: { stringValue: '/api/items/{id}' } }, { key: 'http.status_code', value: { intValue: '200' } }];
      await writeSpans(store, Array.from({ length: SPANS }, (_, i) => ({ ...makeSpan({ serviceName: 'load', resource: first.resource, name: `op ${i % 20}`, attributes, startTimeUnixNano: first.startTimeUnixNano + BigInt(i) * 1000n }), traceId: first.traceId })));
      ids.push(first.traceId);
    }
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: TRACES, maxSpansPerTrace: 20_000, maxSpansPerSearch: 50_000 }, store, pino({ level: 'silent' }));
    await server.start();
  }, 60_000);
  afterAll(async () => {
    await server?.shutdown();
    await store?.shutdown();
  });

  /** The traces as the search ranks them (newest first), each read whole. */
  const traces = async () => Promise.all([...ids].reverse().map(async (id) => (await store.readTrace(DEFAULT_TENANT, id, 20_000)).spans));

  it('Jaeger search of 50,000 spans: the event loop is given back while it is written, and the text is the one JSON.stringify gave', async () => {
    // Warm up (first reads compile and fill caches), then measure.
    await timedGet(server.boundPort, `/api/traces?service=load&limit=${TRACES}&lookback=2h`);
    const got = await timedGet(server.boundPort, `/api/traces?service=load&limit=${TRACES}&lookback=2h`);
    expect(got.status).toBe(200);
    expect(got.body).toBe(JSON.stringify(envelope((await traces()).map((spans) => toJaegerTrace(spans)))));
    expect(got.lateMs).toBeLessThan(MAX_LATE_MS);
    // Pretty-printed as before too.
    const pretty = await timedGet(server.boundPort, `/api/traces?service=load&limit=2&lookback=2h&prettyPrint=true`);
    expect(pretty.body).toBe(JSON.stringify(envelope((await traces()).slice(0, 2).map((spans) => toJaegerTrace(spans))), null, 4));
  }, 60_000);

  it('api_v3 search of 50,000 spans: the same', async () => {
    const start = new Date(Number(BASE / 1_000_000n) - 60_000).toISOString();
    const end = new Date(Date.now() + 60_000).toISOString();
    const path = `/api/v3/traces?query.service_name=load&query.start_time_min=${start}&query.start_time_max=${end}&query.num_traces=${TRACES}`;
    await timedGet(server.boundPort, path);
    const got = await timedGet(server.boundPort, path);
    expect(got.status).toBe(200);
    expect(got.body).toBe(JSON.stringify({ result: { resourceSpans: (await traces()).flatMap((spans) => renderTraces(spans).resourceSpans) } }));
    expect(got.lateMs).toBeLessThan(MAX_LATE_MS);
    // HEAD answers the same status and no body.
    const head = await timedGet(server.boundPort, path, 'HEAD');
    expect([head.status, head.body]).toEqual([200, '']);
  }, 60_000);

  it('a small answer keeps its Content-Length', async () => {
    const got = await timedGet(server.boundPort, `/v1/traces/${ids[0]}`);
    expect(got.headers['content-length']).toBeUndefined();
    const small = await timedGet(server.boundPort, '/api/traces/00000000000000000000000000000001');
    expect([small.status, small.headers['content-length']]).toEqual([404, String(Buffer.byteLength(small.body))]);
  });
});
