// The Jaeger API's spans against what Jaeger's own OTLP translator (opentelemetry-collector-contrib
// pkg/translator/jaeger, which Jaeger's query service runs on OTLP data) makes of the same OTLP,
// for the cases the SDK round trip in jaeger-api.test.ts does not reach: spans that came from
// Jaeger or OpenTracing clients through the OpenTelemetry Collector's Jaeger receiver, whose
// references become a parent and links carrying opentracing.ref_type.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';

type Json = any;

const str = (key: string, v: string) => ({ key, value: { stringValue: v } });

/** Posts spans of one resource as OTLP/JSON and waits until the Jaeger API answers their trace. */
async function send(c: TestCollector, traceId: string, spans: Json[]): Promise<Json> {
  const body = JSON.stringify({ resourceSpans: [{ resource: { attributes: [str('service.name', 'jaeger-client')] }, scopeSpans: [{ scope: { name: 'lib' }, spans }] }] });
  const res = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  expect(res.status).toBe(200);
  return eventually(async () => {
    const r = await getJson(c.queryUrl, `/api/traces/${traceId}`);
    return r.status === 200 && r.body.data[0].spans.length === spans.length ? r.body.data[0] : undefined;
  }, 5000, `trace ${traceId}`);
}

const span = (traceId: string, spanId: string, o: Json = {}): Json => ({ traceId, spanId, name: 'op-' + spanId, kind: 1, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000', ...o });

describe.each(['memory', 'sqlite'])('Jaeger API span mapping as Jaeger translates OTLP (%s)', (backend) => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': backend });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('makes references of links by their opentracing.ref_type, the parent once', async () => {
    const T = 'a1'.repeat(16);
    const other = 'b2'.repeat(16);
    const refType = (v: string) => [str('opentracing.ref_type', v)];
    // What the Collector's Jaeger receiver makes of a span with references
    // [FOLLOWS_FROM root] (a producer/consumer hand-off: the only reference becomes the parent,
    // and a link to it keeps its type) and of one with [CHILD_OF root, CHILD_OF other-trace span].
    const t = await send(c, T, [
      span(T, '1000000000000001'),
      span(T, '1000000000000002', { parentSpanId: '1000000000000001', links: [{ traceId: T, spanId: '1000000000000001', attributes: refType('follows_from') }] }),
      span(T, '1000000000000003', { parentSpanId: '1000000000000001', links: [{ traceId: other, spanId: '2000000000000001', attributes: refType('child_of') }] }),
      span(T, '1000000000000004', { parentSpanId: '1000000000000001', links: [{ traceId: other, spanId: '2000000000000002' }] }),
    ]);
    const byId = (id: string) => t.spans.find((s: Json) => s.spanID === id);
    expect(byId('1000000000000002').references).toEqual([{ refType: 'FOLLOWS_FROM', traceID: T, spanID: '1000000000000001' }]);
    expect(byId('1000000000000003').references).toEqual([
      { refType: 'CHILD_OF', traceID: T, spanID: '1000000000000001' },
      { refType: 'CHILD_OF', traceID: other, spanID: '2000000000000001' },
    ]);
    expect(byId('1000000000000004').references).toEqual([
      { refType: 'CHILD_OF', traceID: T, spanID: '1000000000000001' },
      { refType: 'FOLLOWS_FROM', traceID: other, spanID: '2000000000000002' },
    ]);
    // The reference type is carried by the reference: nothing was left out.
    for (const id of ['1000000000000002', '1000000000000003']) expect(byId(id).warnings).toBeNull();
  });

  it('names an event in an event field only when it has a name and no event attribute', async () => {
    const T = 'c3'.repeat(16);
    // OpenTracing logs come through the Jaeger receiver as unnamed events (their fields as
    // attributes), or named from their own event field.
    const t = await send(c, T, [
      span(T, '3000000000000001', {
        events: [
          { timeUnixNano: '1700000000010000000', name: '', attributes: [str('message', 'cache miss')] },
          { timeUnixNano: '1700000000020000000', name: 'retry', attributes: [str('attempt', '2')] },
          { timeUnixNano: '1700000000030000000', name: 'error', attributes: [str('event', 'timeout')] },
        ],
      }),
    ]);
    const [s] = t.spans;
    expect(s.logs).toEqual([
      { timestamp: 1700000000010000, fields: [{ key: 'message', type: 'string', value: 'cache miss' }] },
      { timestamp: 1700000000020000, fields: [{ key: 'event', type: 'string', value: 'retry' }, { key: 'attempt', type: 'string', value: '2' }] },
      { timestamp: 1700000000030000, fields: [{ key: 'event', type: 'string', value: 'timeout' }] },
    ]);
    // The name the event attribute stands in for is not dropped silently.
    expect(s.warnings).toEqual([expect.stringMatching(/event error: its attribute "event" is shown in place of its name/)]);
  });

  it('writes a 64-bit trace id as Jaeger does: 16 hex digits, not padded with zeros', async () => {
    // Jaeger and Zipkin (B3) clients make 64-bit trace ids; through OTLP they arrive as 16 bytes
    // whose high half is zero. Jaeger writes such an id as 16 hex digits: the Jaeger UI shows an
    // id's first 7 characters, which for the padded form are 0000000 for every such trace, and
    // the id users copy to find the trace's logs is the one the client logged.
    const low = 'd4'.repeat(8);
    const otherLow = 'e5'.repeat(8);
    const T = '0'.repeat(16) + low;
    const t = await send(c, low, [
      span(T, '4000000000000001'),
      span(T, '4000000000000002', { parentSpanId: '4000000000000001', links: [{ traceId: '0'.repeat(16) + otherLow, spanId: '5000000000000001' }] }),
    ]);
    expect(t.traceID).toBe(low);
    expect(t.spans.map((s: Json) => s.traceID)).toEqual([low, low]);
    expect(t.spans[1].references).toEqual([
      { refType: 'CHILD_OF', traceID: low, spanID: '4000000000000001' },
      { refType: 'FOLLOWS_FROM', traceID: otherLow, spanID: '5000000000000001' },
    ]);
    // Either form finds it, by id and in a search; a search answers the short form.
    expect((await getJson(c.queryUrl, `/api/traces/${T}`)).body.data[0].traceID).toBe(low);
    expect((await getJson(c.queryUrl, `/api/traces?traceID=${low}`)).body.data.map((x: Json) => x.traceID)).toEqual([low]);
    const found = await getJson(c.queryUrl, '/api/traces?service=jaeger-client&start=1699999999000000&end=1700000001000000&operation=op-4000000000000002');
    expect(found.body.data.map((x: Json) => x.traceID)).toEqual([low]);
  });
});
