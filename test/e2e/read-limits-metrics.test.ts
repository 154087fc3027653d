// Storage and read metrics on /metrics, and trace reads capped by query.maxSpansPerTrace, as a
// user sees them: the real SDK exporter sends, the read API answers, Prometheus' text is parsed.
import { request } from 'node:http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { sendSdkTrace } from '../helpers/sdk.ts';

describe('storage metrics, read latency and capped trace reads (SQLite)', () => {
  let c: TestCollector;
  let traceId: string;
  let rootSpanId: string;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'sqlite', 'storage.statsIntervalMs': '100', 'query.maxSpansPerTrace': '2' });
    const { spans } = await sendSdkTrace(new OTLPTraceExporter({ url: `http://${c.grpcAddress}` }));
    traceId = spans[0]!.spanContext().traceId;
    rootSpanId = spans.find((s) => s.name === 'GET /orders')!.spanContext().spanId;
    await eventually(async () => ((await getJson(c.queryUrl, `/v1/traces/${traceId}`)).status === 200 ? true : undefined));
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('cuts a trace read to query.maxSpansPerTrace, earliest spans first, and says so (OTLP/JSON)', async () => {
    const { status, body } = await getJson(c.queryUrl, `/v1/traces/${traceId}`);
    expect(status).toBe(200);
    const spans = body.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans));
    expect(spans).toHaveLength(2);
    // The root started first (the SDK helper dates it 2023); it must be among those kept.
    expect(spans.map((s: any) => s.spanId)).toContain(rootSpanId);
    expect(body.warnings).toEqual(['trace truncated: showing the 2 earliest of its 3 spans (query.maxSpansPerTrace)']);
  });

  it('cuts a trace read the same way in the Jaeger API, with a trace warning', async () => {
    for (const path of [`/api/traces/${traceId}`, `/api/traces?traceID=${traceId}`]) {
      const { status, body } = await getJson(c.queryUrl, path);
      expect(status).toBe(200);
      const t = body.data[0];
      expect(t.spans).toHaveLength(2);
      expect(t.spans.map((s: any) => s.spanID)).toContain(rootSpanId);
      expect(t.warnings[0]).toBe('trace truncated: showing the 2 earliest of its 3 spans (query.maxSpansPerTrace)');
    }
  });

  it('reports rows, file sizes and the oldest stored time of the store', async () => {
    const labels = { backend: 'sqlite', signal: 'traces' };
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_storage_rows', labels)) === 3 ? true : undefined), 10_000, 'rows gauge at 3');
    // sendSdkTrace starts its root span at 1700000000.123456789 s.
    expect(await metricValue(c.opsUrl, 'tracehouse_storage_oldest_timestamp_seconds', labels)).toBeCloseTo(1_700_000_000.123457, 5);
    expect(await metricValue(c.opsUrl, 'tracehouse_storage_file_size_bytes', { backend: 'sqlite', file: 'main' })).toBeGreaterThan(0);
    expect(await metricValue(c.opsUrl, 'tracehouse_storage_file_size_bytes', { backend: 'sqlite', file: 'traces' })).toBeGreaterThan(0);
    expect(await metricValue(c.opsUrl, 'tracehouse_storage_rows', { backend: 'sqlite', signal: 'logs' })).toBe(0);
    expect(await metricValue(c.opsUrl, 'tracehouse_storage_stats_refresh_failures_total', { backend: 'sqlite' })).toBe(0);
  });

  it('times read API requests per route and status class, never labelling with the path', async () => {
    const count = (route: string, code: string) => metricValue(c.opsUrl, 'tracehouse_query_request_duration_seconds_count', { route, code });
    const before = await count('otlp_trace', '4xx');
    const beforeOk = await count('jaeger_services', '2xx');
    expect((await getJson(c.queryUrl, `/v1/traces/${'0'.repeat(31)}1`)).status).toBe(404);
    expect((await getJson(c.queryUrl, '/api/services')).status).toBe(200);
    // Each request is observed when its response closes on the server, which may come after the
    // client has read it: wait for each count, not one of them (and not 2 s on a loaded machine).
    await eventually(async () => ((await count('otlp_trace', '4xx')) === before + 1 ? true : undefined), 10_000, 'otlp_trace 4xx counted');
    await eventually(async () => ((await count('jaeger_services', '2xx')) === beforeOk + 1 ? true : undefined), 10_000, 'jaeger_services 2xx counted');
    expect(await count('otlp_trace', '4xx')).toBe(before + 1);
    expect(await count('jaeger_services', '2xx')).toBe(beforeOk + 1);
    const text = await (await fetch(`${c.opsUrl}/metrics`)).text();
    expect(text).not.toContain(traceId);
  });

  it('times a request whose path begins with // (a data source URL ending in a slash) under the route it is answered as', async () => {
    const count = (route: string, code: string) => metricValue(c.opsUrl, 'tracehouse_query_request_duration_seconds_count', { route, code });
    const before = await count('jaeger_services', '2xx');
    const otherBefore = await count('other', '2xx');
    expect((await getJson(c.queryUrl, '//api/services')).status).toBe(200);
    await eventually(async () => ((await count('jaeger_services', '2xx')) === before + 1 ? true : undefined), 10_000, '//api/services counted as jaeger_services');
    expect(await count('other', '2xx')).toBe(otherBefore);
  });

  it('times a request whose target is in absolute form (RFC 9112 3.2.2) under the route it is answered as', async () => {
    const count = (route: string, code: string) => metricValue(c.opsUrl, 'tracehouse_query_request_duration_seconds_count', { route, code });
    const before = await count('jaeger_services', '2xx');
    const otherBefore = await count('other', '2xx');
    const url = new URL(c.queryUrl);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: `http://${url.host}/api/services` }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    await eventually(async () => ((await count('jaeger_services', '2xx')) === before + 1 ? true : undefined), 10_000, 'absolute-form /api/services counted as jaeger_services');
    expect(await count('other', '2xx')).toBe(otherBefore);
  });

  it('times a request refused for the Host it names (a page rebound to 127.0.0.1) as a 4xx of its route', async () => {
    const count = (route: string, code: string) => metricValue(c.opsUrl, 'tracehouse_query_request_duration_seconds_count', { route, code });
    const before = await count('jaeger_services', '4xx');
    const url = new URL(c.queryUrl);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: '/api/services', headers: { host: `rebind.attacker.example:${url.port}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
    await eventually(async () => ((await count('jaeger_services', '4xx')) === before + 1 ? true : undefined), 10_000, 'the refusal counted as a jaeger_services 4xx');
  });

  it('times a request refused for its target\'s length (a Jaeger compare of hundreds of trace ids) as a 4xx of its route', async () => {
    const count = (route: string, code: string) => metricValue(c.opsUrl, 'tracehouse_query_request_duration_seconds_count', { route, code });
    const before = await count('jaeger_traces', '4xx');
    const ids = Array.from({ length: 300 }, (_, i) => `traceID=${i.toString(16).padStart(32, '0')}`).join('&');
    const res = await fetch(`${c.queryUrl}/api/traces?${ids}`);
    expect(res.status).toBe(414);
    await res.arrayBuffer();
    await eventually(async () => ((await count('jaeger_traces', '4xx')) === before + 1 ? true : undefined), 10_000, 'the 414 counted as a jaeger_traces 4xx');
  });
});
