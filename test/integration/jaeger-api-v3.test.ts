// Jaeger's api_v3 HTTP endpoints (/api/v3/…) as Jaeger v2's UI and Grafana's Jaeger data source
// (jaegerEnableGrpcEndpoint) call them, on every store the same way: spans sent by the real
// OpenTelemetry SDK over OTLP/HTTP come back in the shapes of Jaeger's api_v3 HTTP gateway
// (cmd/jaeger/internal/extension/jaegerquery/internal/apiv3 in jaegertracing/jaeger): OTLP/JSON
// under `result`, errors as {"error": {"httpCode", "message"}}.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { makeTrace, writeSpans } from '../helpers/rows.ts';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';
import { expectedResourceScope, expectedSpan, sendSdkTrace, sortAttributes } from '../helpers/sdk.ts';

type Json = any;

describe.each(['memory', 'sqlite'])('Jaeger api_v3 on %s', (backend) => {
  let c: TestCollector;
  let service: string;
  let spans: ReadableSpan[];
  let traceId: string;
  const get = (path: string): Promise<{ status: number; body: Json }> => getJson(c.queryUrl, path);

  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': backend });
    ({ service, spans } = await sendSdkTrace(new OTLPTraceExporter({ url: `${c.httpUrl}/v1/traces` })));
    traceId = spans[0]!.spanContext().traceId;
    await eventually(async () => ((await get(`/api/v3/traces/${traceId}`)).body.result?.resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.length === 3 ? true : undefined), 10_000, 'the trace stored');
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('lists the service and its operations with their span kinds', async () => {
    const services = await get('/api/v3/services');
    expect(services.status).toBe(200);
    expect(services.body.services).toContain(service);
    const ops = await get(`/api/v3/operations?service=${encodeURIComponent(service)}`);
    expect(ops.status).toBe(200);
    expect(ops.body).toEqual({ operations: [{ name: 'GET /orders', spanKind: 'server' }, { name: 'SELECT orders', spanKind: 'client' }, { name: 'publish', spanKind: 'producer' }] });
    // The kind filter, under its proto3 JSON name and its older snake_case one.
    expect((await get(`/api/v3/operations?service=${encodeURIComponent(service)}&spanKind=client`)).body).toEqual({ operations: [{ name: 'SELECT orders', spanKind: 'client' }] });
    expect((await get(`/api/v3/operations?service=${encodeURIComponent(service)}&span_kind=server`)).body).toEqual({ operations: [{ name: 'GET /orders', spanKind: 'server' }] });
  });

  it('answers a trace by its hex id as OTLP/JSON with its resource and scope', async () => {
    // Grafana adds start_time and end_time (RFC 3339, unencoded) when its trace-id time range is on.
    for (const query of ['', '?start_time=2023-11-14T22:00:00Z&end_time=2023-11-14T23:00:00.5Z&raw_traces=false', '?startTime=2023-11-14T22:00:00Z']) {
      const r = await get(`/api/v3/traces/${traceId}${query}`);
      expect(r.status, query).toBe(200);
      expect(r.body.result.resourceSpans).toHaveLength(1);
      const rs = r.body.result.resourceSpans[0];
      const { resource, scope } = expectedResourceScope(spans[0]!);
      expect(sortAttributes(rs.resource.attributes)).toEqual(resource);
      expect(rs.scopeSpans).toHaveLength(1);
      expect(rs.scopeSpans[0].scope).toMatchObject(scope);
      // Flags (of spans and links) compared apart: the exporter adds its own bits.
      const got = rs.scopeSpans[0].spans.map(({ flags: _f, ...s }: Json) => sortAttributes({ ...s, links: s.links.map(({ flags: _lf, ...l }: Json) => l) }));
      expect(rs.scopeSpans[0].spans.map((s: Json) => s.flags & 0xff)).toEqual([1, 1, 1]);
      // By start, then span id (spans that start together, as some of these do).
      const want = [...spans].sort((a, b) => (a.startTime[0] - b.startTime[0]) || (a.startTime[1] - b.startTime[1]) || (a.spanContext().spanId < b.spanContext().spanId ? -1 : 1)).map(expectedSpan);
      expect(got).toEqual(want);
    }
    // The id's bytes in base64, as OTLP protobuf JSON writes them: Jaeger reads that form too.
    const b64 = Buffer.from(traceId, 'hex').toString('base64');
    expect((await get(`/api/v3/traces/${encodeURIComponent(b64)}`)).body.result.resourceSpans[0].scopeSpans[0].spans).toHaveLength(3);
  });

  it('finds the trace by service, operation, attribute, time range and duration', async () => {
    // The root span: GET /orders, server, http.method=GET, from 2023-11-14T22:13:20.123456789Z for 876.5 ms.
    const search = (p: Record<string, string>) => get(`/api/v3/traces?${new URLSearchParams(p)}`);
    const base = {
      'query.service_name': service,
      'query.operation_name': 'GET /orders',
      'query.attributes': JSON.stringify({ 'http.method': 'GET' }),
      'query.start_time_min': '2023-11-14T22:13:20Z',
      'query.start_time_max': '2023-11-14T22:13:21Z',
      'query.duration_min': '800ms',
      'query.duration_max': '1s',
    };
    const found = await search(base);
    expect(found.status).toBe(200);
    const ids = found.body.result.resourceSpans.flatMap((rs: Json) => rs.scopeSpans.flatMap((ss: Json) => ss.spans.map((s: Json) => s.traceId)));
    expect(new Set(ids)).toEqual(new Set([traceId]));
    expect(ids).toHaveLength(3);
    // The same under the proto3 JSON names Jaeger reads first, with a search depth.
    const camel = await search({ 'query.serviceName': service, 'query.operationName': 'GET /orders', 'query.startTimeMin': '2023-11-14T23:13:20+01:00', 'query.startTimeMax': '2023-11-14T22:13:21Z', 'query.durationMin': '0.8s', 'query.searchDepth': '5' });
    expect(camel.status).toBe(200);
    // Each condition, missed, finds nothing: 404, as Jaeger answers an empty search.
    for (const miss of [
      { 'query.operation_name': 'publish-none' },
      { 'query.attributes': JSON.stringify({ 'http.method': 'POST' }) },
      { 'query.start_time_min': '2023-11-14T22:13:21Z', 'query.start_time_max': '2023-11-14T22:14:00Z' },
      { 'query.duration_min': '900ms' },
      { 'query.duration_max': '800ms', 'query.duration_min': '1ms' },
    ]) {
      const r = await search({ ...base, ...miss });
      expect(r.status, JSON.stringify(miss)).toBe(404);
      expect(r.body, JSON.stringify(miss)).toEqual({ error: { httpCode: 404, message: 'No traces found' } });
    }
  });

  it('answers the Jaeger UI\'s search (/api/v3/trace-summaries) with a summary of each trace found', async () => {
    // As the Jaeger UI (2.15 and later) searches: times as toISOString() of its microseconds, its limit as searchDepth.
    const ns = (t: [number, number]): bigint => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
    const start = spans.map((s) => ns(s.startTime)).reduce((a, b) => (a < b ? a : b));
    const end = spans.map((s) => ns(s.endTime)).reduce((a, b) => (a > b ? a : b));
    const query = { 'query.serviceName': service, 'query.startTimeMin': '2023-11-14T22:13:20.000Z', 'query.startTimeMax': '2023-11-14T22:13:21.000Z', 'query.searchDepth': '20', 'query.attributes': JSON.stringify({ 'http.method': 'GET' }) };
    const r = await get(`/api/v3/trace-summaries?${new URLSearchParams(query)}`);
    expect(r.status).toBe(200);
    // What the store does not count (errors, orphans, per-service counts) is left out: the UI hides those columns.
    expect(r.body).toEqual({ summaries: [{ traceId, rootServiceName: service, rootOperationName: 'GET /orders', minStartTimeUnixNano: String(start), maxEndTimeUnixNano: String(end), spanCount: 3 }] });
    // Nothing found: an empty list (Jaeger answers 200 here, not the 404 of /api/v3/traces).
    const none = await get(`/api/v3/trace-summaries?${new URLSearchParams({ ...query, 'query.operationName': 'none' })}`);
    expect(none).toEqual({ status: 200, body: { summaries: [] } });
    // Its parameters are read as /api/v3/traces reads them.
    const bad = await get(`/api/v3/trace-summaries?query.startTimeMin=2023-11-14T22:13:20Z`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/query\.start_time_max/);
  });

  it('answers bad parameters 400 and unknown traces 404 in api_v3 error shape, naming the parameter', async () => {
    const window = 'query.start_time_min=2023-11-14T22:13:20Z&query.start_time_max=2023-11-14T22:13:21Z';
    const cases: [string, RegExp][] = [
      [`/api/v3/traces?query.start_time_min=2023-11-14T22:13:20Z`, /query\.start_time_max/],
      [`/api/v3/traces?query.start_time_min=yesterday&query.start_time_max=2023-11-14T22:13:21Z`, /query\.start_time_min/],
      [`/api/v3/traces?query.start_time_min=2023-11-14T22:13:22Z&query.start_time_max=2023-11-14T22:13:21Z`, /query\.start_time_min/],
      [`/api/v3/traces?${window}&query.duration_min=fast`, /query\.duration_min/],
      [`/api/v3/traces?${window}&query.attributes=http.method%3DGET`, /query\.attributes/],
      [`/api/v3/traces?${window}&query.attributes=%7B%22%22%3A%22x%22%7D`, /query\.attributes: expected non-empty keys/],
      [`/api/v3/traces?${window}&query.search_depth=-1`, /query\.search_depth/],
      [`/api/v3/traces?${window}&query.num_traces=ten`, /query\.num_traces/],
      [`/api/v3/traces/not-a-trace-id`, /trace_id/],
      [`/api/v3/traces/${traceId}?start_time=noon`, /start_time/],
      [`/api/v3/traces/${traceId}?raw_traces=maybe`, /raw_traces/],
      [`/api/v3/operations?service=x&spanKind=sideways`, /spanKind/],
      [`/api/v3/operations`, /service/],
    ];
    for (const [path, names] of cases) {
      const r = await get(path);
      expect(r.status, path).toBe(400);
      expect(r.body.error.httpCode, path).toBe(400);
      expect(r.body.error.message, path).toMatch(names);
    }
    const unknown = await get(`/api/v3/traces/${'f'.repeat(32)}`);
    expect(unknown).toEqual({ status: 404, body: { error: { httpCode: 404, message: `trace ${'f'.repeat(32)} not found` } } });
  });
});

describe('Jaeger api_v3 bounds and failures, as the Jaeger API has them', () => {
  let store: StorageBackend;
  let server: QueryServer;
  let url: string;
  let failing = false;
  const logged: string[] = [];
  const trace = makeTrace(5, { serviceName: 'bounded', startTimeUnixNano: 1_700_000_000_000_000_000n });
  const other = makeTrace(5, { serviceName: 'bounded', startTimeUnixNano: 1_700_000_000_500_000_000n });

  beforeAll(async () => {
    const inner = await memoryBackend();
    // The real store behind; a switch makes its reads fail as a database that went away.
    store = Object.create(inner, {
      getServices: { value: (t: string) => (failing ? Promise.reject(new Error('connection refused: secret-host:5432')) : inner.getServices(t)) },
    });
    const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 10, maxSpansPerTrace: 3, maxSpansPerSearch: 4 }, store, logger);
    await server.start();
    url = `http://127.0.0.1:${server.boundPort}`;
    await writeSpans(inner, [...trace, ...other]);
  });
  afterAll(async () => {
    await server.shutdown();
    await store.shutdown();
  });

  it('cuts a trace at query.maxSpansPerTrace and a search at query.maxSpansPerSearch, and says so beside result', async () => {
    const one = await getJson(url, `/api/v3/traces/${trace[0]!.traceId}`);
    expect(one.status).toBe(200);
    expect(one.body.result.resourceSpans[0].scopeSpans[0].spans).toHaveLength(3);
    expect(one.body.warnings).toEqual([expect.stringMatching(/^trace [0-9a-f]{32}: trace truncated: showing the 3 earliest of its 5 spans \(query\.maxSpansPerTrace\)$/)]);
    const search = await getJson(url, '/api/v3/traces?query.service_name=bounded&query.start_time_min=2023-11-14T22:13:19Z&query.start_time_max=2023-11-14T22:13:21Z');
    expect(search.status).toBe(200);
    // Newest first: the second trace's 3 spans, then 1 of the first (4 over both).
    const spans = search.body.result.resourceSpans.flatMap((rs: Json) => rs.scopeSpans.flatMap((ss: Json) => ss.spans));
    expect(spans.map((s: Json) => s.traceId)).toEqual([other[0]!.traceId, other[0]!.traceId, other[0]!.traceId, trace[0]!.traceId]);
    expect(search.body.warnings).toContainEqual(expect.stringMatching(/query\.maxSpansPerSearch/));
    // A search depth beyond query.maxLimit is searched at it, and said.
    const deep = await getJson(url, '/api/v3/traces?query.service_name=bounded&query.start_time_min=2023-11-14T22:13:19Z&query.start_time_max=2023-11-14T22:13:21Z&query.search_depth=11');
    expect(deep.status).toBe(200);
    expect(deep.body.warnings).toContainEqual(expect.stringMatching(/^query\.search_depth 11 is above query\.maxLimit \(10\)/));
  });

  it('answers a trace by id cut as a trace read is, at query.maxSpansPerTrace, also when query.maxSpansPerSearch is lower', async () => {
    // maxSpansPerSearch bounds an answer of several traces (a search); one trace asked for by id is
    // a trace read, as GET /api/traces/{id} and /v1/traces/{id} answer it.
    const wide = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 10, maxSpansPerTrace: 5, maxSpansPerSearch: 2 }, store, pino({ level: 'silent' }));
    await wide.start();
    try {
      const base = `http://127.0.0.1:${wide.boundPort}`;
      const v1 = await getJson(base, `/api/traces/${trace[0]!.traceId}`);
      expect(v1.body.data[0].spans).toHaveLength(5);
      const v3 = await getJson(base, `/api/v3/traces/${trace[0]!.traceId}`);
      expect(v3.status).toBe(200);
      expect(v3.body.result.resourceSpans.flatMap((rs: Json) => rs.scopeSpans.flatMap((ss: Json) => ss.spans))).toHaveLength(5);
      expect(v3.body.warnings).toBeUndefined();
      // A search is still bound by maxSpansPerSearch.
      const search = await getJson(base, '/api/v3/traces?query.service_name=bounded&query.start_time_min=2023-11-14T22:13:19Z&query.start_time_max=2023-11-14T22:13:21Z');
      expect(search.body.result.resourceSpans.flatMap((rs: Json) => rs.scopeSpans.flatMap((ss: Json) => ss.spans))).toHaveLength(2);
    } finally {
      await wide.shutdown();
    }
  });

  it('answers 503 in api_v3 error shape when the store fails, the details in the log only', async () => {
    failing = true;
    try {
      const r = await fetch(`${url}/api/v3/services`);
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
      expect(await r.json()).toEqual({ error: { httpCode: 503, message: 'storage unavailable; retry later' } });
      expect(logged.join('\n')).toMatch(/secret-host.*read API request failed|read API request failed.*secret-host/);
    } finally {
      failing = false;
    }
    expect((await getJson(url, '/api/v3/services')).body).toEqual({ services: ['bounded'] });
  });
});
