// Reads that did not complete, as tracehouse_query_request_duration_seconds counts them: a read
// whose client left (before its headers or mid-answer), one cut off for taking nothing for
// query.writeStallMs, and one whose answer failed after its headers were sent. Each was counted
// 2xx (the status set, or Node's default): the dashboard and TracehouseReadsFailing saw success,
// and only the once-a-minute log told. Now the client's leaving is `abandoned` (nginx's 499) and a
// failure after the headers is 5xx.
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonArray, sendJsonSliced } from '../../src/query/json-stream.ts';
import { ReadMetrics } from '../../src/query/metrics.ts';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { getAndLeave } from '../helpers/abandon.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { slowTraceReads, writeBigAndSmall } from '../helpers/slow-reads.ts';

async function counted(registry: Registry, route: string, code: string): Promise<number> {
  const m = await registry.getSingleMetric('tracehouse_query_request_duration_seconds')!.get();
  return m.values.find((v) => (v as { metricName?: string }).metricName === 'tracehouse_query_request_duration_seconds_count' && v.labels['route'] === route && v.labels['code'] === code)?.value ?? 0;
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const end = performance.now() + 5000;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`not within 5 s: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('reads that did not complete, in tracehouse_query_request_duration_seconds', () => {
  let store: StorageBackend;
  let server: QueryServer;
  const registry = new Registry();
  let big: string;
  let small: string;
  const log = capturedLogger();
  beforeAll(async () => {
    store = await memoryBackend();
    ({ big, small } = await writeBigAndSmall(store, 5000));
    slowTraceReads(store, 1000, (id) => id === small);
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 20, maxSpansPerTrace: 20_000, maxSpansPerSearch: 50_000, writeStallMs: 500 }, store, log.logger, registry);
    await server.start();
  }, 60_000);
  afterAll(async () => {
    await server?.shutdown();
    await store?.shutdown();
  });

  it('a client that left before its headers is abandoned, not 2xx', async () => {
    await getAndLeave(server.boundPort, `/v1/traces/${small}`, 200);
    await until('abandoned counted', async () => (await counted(registry, 'otlp_trace', 'abandoned')) === 1);
    expect(await counted(registry, 'otlp_trace', '2xx')).toBe(0);
  });

  it('a client that left mid-answer is abandoned, not 2xx', async () => {
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port: server.boundPort, path: `/api/traces/${big}` }, (res) => {
        expect(res.statusCode).toBe(200);
        res.once('data', () => req.destroy());
      });
      req.on('close', () => resolve());
      req.on('error', () => {});
      req.end();
    });
    await until('abandoned counted', async () => (await counted(registry, 'jaeger_trace', 'abandoned')) === 1);
    expect(await counted(registry, 'jaeger_trace', '2xx')).toBe(0);
  });

  it('a client cut off for taking nothing (writeStallMs) is abandoned, not 2xx', async () => {
    const s = connect(server.boundPort, '127.0.0.1');
    s.pause();
    s.on('error', () => {});
    s.write(`GET /api/v3/traces/${big} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    try {
      await until('abandoned counted', async () => (await counted(registry, 'jaeger_v3_trace', 'abandoned')) === 1);
    } finally {
      s.destroy();
    }
    expect(await counted(registry, 'jaeger_v3_trace', '2xx')).toBe(0);
  });
});

describe('an answer that failed after its headers were sent', () => {
  let http: Server;
  const registry = new Registry();
  beforeAll(async () => {
    const metrics = new ReadMetrics(registry);
    http = createServer((req, res) => {
      metrics.track(req, res);
      // A builder that fails once a few MB of the answer are written: the status (200) is sent.
      function* items(): Generator<unknown> {
        for (let i = 0; i < 200; i++) yield 'x'.repeat(64 * 1024);
        throw new Error('translation failed');
      }
      sendJsonSliced(res, 200, new JsonArray(items())).catch(() => {});
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

  it('is counted 5xx, as TracehouseReadsFailing and the dashboard\'s failed reads count them', async () => {
    const res = await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/v1/traces/${'a'.repeat(32)}`);
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
    await until('5xx counted', async () => (await counted(registry, 'otlp_trace', '5xx')) === 1);
    expect(await counted(registry, 'otlp_trace', '2xx')).toBe(0);
  });
});
