// The Jaeger query API as Grafana's Jaeger data source and the Jaeger UI call it, against a
// collector fed by the real OpenTelemetry SDK over OTLP/gRPC: what was sent comes back in
// Jaeger's shapes, field for field.
import { SpanKind, context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';
import { sendSdkTrace } from '../helpers/sdk.ts';

type Json = any;

const micros = (t: [number, number]): number => t[0] * 1_000_000 + Math.floor(t[1] / 1000);
const KINDS = ['internal', 'server', 'client', 'producer', 'consumer'];

/** A JS attribute value as a Jaeger tag, written from the SDK's values (not from our renderer). */
function tag(key: string, v: unknown): Json {
  if (typeof v === 'string') return { key, type: 'string', value: v };
  if (typeof v === 'boolean') return { key, type: 'bool', value: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { key, type: 'int64', value: v } : { key, type: 'float64', value: v };
  return { key, type: 'string', value: JSON.stringify(v) };
}

const byKey = (a: Json, b: Json) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** The Jaeger span Jaeger's own OTLP translator would make of this SDK span. */
function expectedJaegerSpan(s: ReadableSpan): Json {
  const ctx = s.spanContext();
  const tags = Object.entries(s.attributes).map(([k, v]) => tag(k, v));
  tags.push({ key: 'span.kind', type: 'string', value: KINDS[s.kind] });
  if (s.status.code !== 0) tags.push({ key: 'otel.status_code', type: 'string', value: s.status.code === 1 ? 'OK' : 'ERROR' });
  if (s.status.code === 2) tags.push({ key: 'error', type: 'bool', value: true });
  if (s.status.message) tags.push({ key: 'otel.status_description', type: 'string', value: s.status.message });
  tags.push({ key: 'otel.scope.name', type: 'string', value: s.instrumentationScope.name });
  if (s.instrumentationScope.version) tags.push({ key: 'otel.scope.version', type: 'string', value: s.instrumentationScope.version });
  const start = micros(s.startTime);
  const startNs = BigInt(s.startTime[0]) * 1_000_000_000n + BigInt(s.startTime[1]);
  const endNs = BigInt(s.endTime[0]) * 1_000_000_000n + BigInt(s.endTime[1]);
  const references = [
    ...(s.parentSpanContext ? [{ refType: 'CHILD_OF', traceID: ctx.traceId, spanID: s.parentSpanContext.spanId }] : []),
    ...s.links.map((l) => ({ refType: 'FOLLOWS_FROM', traceID: l.context.traceId, spanID: l.context.spanId })),
  ];
  return {
    traceID: ctx.traceId,
    spanID: ctx.spanId,
    flags: ctx.traceFlags,
    operationName: s.name,
    references,
    startTime: start,
    duration: endNs > startNs ? Number((endNs - startNs) / 1000n) : 0,
    tags: tags.sort(byKey),
    logs: s.events.map((e) => ({ timestamp: micros(e.time), fields: [{ key: 'event', type: 'string', value: e.name }, ...Object.entries(e.attributes ?? {}).map(([k, v]) => tag(k, v))] })),
    processID: expect.stringMatching(/^p\d+$/),
    warnings: s.links.some((l) => Object.keys(l.attributes ?? {}).length > 0) ? [expect.stringMatching(/^link to .* attributes and trace state/)] : null,
  };
}

function sortTags(span: Json): Json {
  return { ...span, tags: [...span.tags].sort(byKey) };
}

describe('Jaeger query API with the real SDK', () => {
  let c: TestCollector;
  let sent: { service: string; spans: ReadableSpan[] };
  const web = 'web-' + randomUUID();
  const api = 'api-' + randomUUID();
  let callTraceId = '';

  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'sqlite' });
    sent = await sendSdkTrace(new OTLPTraceExporter({ url: `http://${c.grpcAddress}` }));
    // Two services in one trace: web calls api twice, so there is a dependency edge to find.
    const providers = [web, api].map(
      (service) => new TracerProvider({ resource: resourceFromAttributes({ 'service.name': service }), spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `http://${c.grpcAddress}` }) })] }),
    );
    const root = providers[0]!.getTracer('web').startSpan('GET /checkout', { kind: SpanKind.SERVER });
    callTraceId = root.spanContext().traceId;
    const ctx = trace.setSpan(context.active(), root);
    for (const op of ['charge', 'reserve']) providers[1]!.getTracer('api').startSpan(op, { kind: SpanKind.SERVER }, ctx).end();
    root.end();
    await Promise.all(providers.map((p) => p.shutdown()));
    await eventually(async () => ((await getJson(c.queryUrl, `/api/traces/${callTraceId}`)).body?.data?.[0]?.spans.length === 3 ? true : undefined));
    await eventually(async () => ((await getJson(c.queryUrl, `/api/traces/${sent.spans[0]!.spanContext().traceId}`)).status === 200 ? true : undefined));
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('lists services and operations in Jaeger envelopes', async () => {
    const services = await getJson(c.queryUrl, '/api/services');
    expect(services.status).toBe(200);
    expect(services.body.data).toEqual(expect.arrayContaining([sent.service, web, api]));
    expect(services.body).toMatchObject({ total: services.body.data.length, limit: 0, offset: 0, errors: null });

    const legacy = await getJson(c.queryUrl, `/api/services/${encodeURIComponent(sent.service)}/operations`);
    expect(legacy.body).toEqual({ data: ['GET /orders', 'SELECT orders', 'publish'], total: 3, limit: 0, offset: 0, errors: null });

    const ops = await getJson(c.queryUrl, `/api/operations?service=${encodeURIComponent(sent.service)}`);
    expect(ops.body.data).toEqual([
      { name: 'GET /orders', spanKind: 'server' },
      { name: 'SELECT orders', spanKind: 'client' },
      { name: 'publish', spanKind: 'producer' },
    ]);
    const clients = await getJson(c.queryUrl, `/api/operations?service=${encodeURIComponent(sent.service)}&spanKind=client`);
    expect(clients.body.data).toEqual([{ name: 'SELECT orders', spanKind: 'client' }]);
  });

  it('answers a data source whose URL ends in a slash (//api/services), as Jaeger does', async () => {
    // Grafana joins the data source URL and the path: "http://tracehouse:16686/" gives "//api/…",
    // which a URL parser reads as a host named "api".
    const services = await getJson(c.queryUrl, '//api/services');
    expect(services.status).toBe(200);
    expect(services.body.data).toEqual(expect.arrayContaining([sent.service]));
    const ops = await getJson(c.queryUrl, `//api/services/${encodeURIComponent(sent.service)}/operations`);
    expect(ops.body.data).toEqual(['GET /orders', 'SELECT orders', 'publish']);
  });

  it('returns a trace by id with every span as the SDK made it, field for field', async () => {
    const traceId = sent.spans[0]!.spanContext().traceId;
    const r = await getJson(c.queryUrl, `/api/traces/${traceId}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ total: 0, limit: 0, offset: 0, errors: null });
    const [t] = r.body.data;
    expect(t.traceID).toBe(traceId);
    expect(t.spans).toHaveLength(sent.spans.length);
    for (const s of sent.spans) {
      const got = t.spans.find((x: Json) => x.spanID === s.spanContext().spanId);
      expect(sortTags(got)).toEqual(expectedJaegerSpan(s));
    }
    expect(Object.values(t.processes)).toEqual([
      {
        serviceName: sent.service,
        tags: expect.arrayContaining([
          { key: 'service.version', type: 'string', value: '1.0.0' },
          { key: 'host.cores', type: 'int64', value: 8 },
          { key: 'deployment.canary', type: 'bool', value: false },
        ]),
      },
    ]);
  });

  it('finds traces by service, operation, tags and duration as Grafana asks', async () => {
    const traceId = sent.spans[0]!.spanContext().traceId;
    // The SDK trace's root starts in November 2023: search that window, as Grafana does with start/end.
    const window = 'start=1699999999000000&end=' + (Date.now() * 1000 + 60_000_000);
    const find = async (qs: string) => (await getJson(c.queryUrl, `/api/traces?service=${encodeURIComponent(sent.service)}&${window}&${qs}`)).body;
    const all = await find('limit=20');
    expect(all.errors).toBeNull();
    expect(all.data.map((t: Json) => t.traceID)).toEqual([traceId]);
    expect(all.data[0].spans).toHaveLength(3);
    expect((await find('operation=SELECT%20orders')).data).toHaveLength(1);
    expect((await find('operation=nope')).data).toHaveLength(0);
    expect((await find('tags=' + encodeURIComponent('{"http.status_code":"200"}'))).data).toHaveLength(1);
    expect((await find('tags=' + encodeURIComponent('{"http.status_code":"404"}'))).data).toHaveLength(0);
    // The SDK trace's child failed: error=true (a tag this API shows for it) finds it, and the Jaeger UI's lookback rides along.
    expect((await find('lookback=2d&tags=' + encodeURIComponent('{"error":"true"}'))).data.map((t: Json) => t.traceID)).toEqual([traceId]);
    expect((await find('tags=' + encodeURIComponent('{"error":"true"}'))).data).toHaveLength(1);
    expect((await getJson(c.queryUrl, `/api/traces?service=${web}&${window}&tags=${encodeURIComponent('{"error":"true"}')}`)).body.data).toHaveLength(0);
    expect((await getJson(c.queryUrl, `/v1/traces?service=${encodeURIComponent(sent.service)}&start=0&status=error`)).body.traces.map((t: Json) => t.traceId)).toEqual([traceId]);
    // span.kind, a tag this API shows for a span's kind, finds the kind (as Jaeger's own stores find it).
    expect((await find('tags=' + encodeURIComponent('{"span.kind":"client"}'))).data.map((t: Json) => t.traceID)).toEqual([traceId]);
    expect((await find('tags=' + encodeURIComponent('{"span.kind":"client"}') + '&operation=SELECT%20orders')).data).toHaveLength(1);
    expect((await find('tags=' + encodeURIComponent('{"span.kind":"client"}') + '&operation=publish')).data).toHaveLength(0);
    expect((await find('tags=' + encodeURIComponent('{"span.kind":"consumer"}'))).data).toHaveLength(0);
    expect((await find('tag=span.kind:producer')).data).toHaveLength(1);
    expect((await find('minDuration=500ms')).data).toHaveLength(1);
    expect((await find('minDuration=2s')).data).toHaveLength(0);
    // Without start, the default window is the last hour: the root span (started in 2023) is outside it.
    const recent = (op: string) => getJson(c.queryUrl, `/api/traces?service=${encodeURIComponent(sent.service)}&operation=${encodeURIComponent(op)}`);
    expect((await recent('GET /orders')).body.data).toHaveLength(0);
    expect((await recent('publish')).body.data).toHaveLength(1);
    const byIds = await getJson(c.queryUrl, `/api/traces?traceID=${traceId}&traceID=${callTraceId}`);
    expect(byIds.body.data.map((t: Json) => t.traceID).sort()).toEqual([traceId, callTraceId].sort());
  });

  it('reports calls between services as dependencies', async () => {
    const r = await getJson(c.queryUrl, `/api/dependencies?endTs=${Date.now() + 60_000}&lookback=3600000`);
    expect(r.status).toBe(200);
    expect(r.body.data).toContainEqual({ parent: web, child: api, callCount: 2 });
    const filtered = await getJson(c.queryUrl, `/api/dependencies?endTs=${Date.now() + 60_000}&service=${api}`);
    expect(filtered.body.data).toEqual([{ parent: web, child: api, callCount: 2 }]);
  });

  it('answers bad requests with 400 naming the parameter, unknown traces with 404, in Jaeger envelopes', async () => {
    const cases: [string, number, RegExp][] = [
      ['/api/traces', 400, /'service'/],
      ['/api/traces?service=x&limit=abc', 400, /'limit'/],
      ['/api/traces?service=x&minDuration=fast', 400, /'minDuration'/],
      ['/api/traces?service=x&tags=%7B', 400, /'tags'/],
      ['/api/traces/not-hex', 400, /'traceID'/],
      ['/api/traces/%zz', 400, /'traceID'/],
      ['/api/operations', 400, /'service'/],
      ['/api/operations?service=x&spanKind=sideways', 400, /'spanKind'/],
      ['/api/dependencies?endTs=yesterday', 400, /'endTs'/],
      ['/api/traces/' + 'f'.repeat(32), 404, /trace not found/],
      ['/api/nothing', 404, /no route/],
    ];
    for (const [path, status, msg] of cases) {
      const r = await getJson(c.queryUrl, path);
      expect(r.status, path).toBe(status);
      expect(r.body.data, path).toBeNull();
      expect(r.body.errors, path).toEqual([{ code: status, msg: expect.stringMatching(msg) }]);
    }
  });
});

describe('Jaeger API when the store fails', () => {
  it('answers 503 in the Jaeger envelope without the exception text', async () => {
    const inner = await memoryBackend();
    const failing: StorageBackend = Object.create(inner, {
      getServices: { value: () => Promise.reject(new Error('relation "tracehouse.secret_table" does not exist at /var/lib/secret')) },
    });
    const c = await startCollector({}, { backend: failing });
    try {
      const r = await getJson(c.queryUrl, '/api/services');
      expect(r.status).toBe(503);
      expect(r.body.errors).toEqual([{ code: 503, msg: 'storage unavailable; retry later' }]);
      expect(JSON.stringify(r.body)).not.toMatch(/secret/);
    } finally {
      await c.stop();
    }
  });
});
