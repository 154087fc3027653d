// Root spans whose exporter writes the parent span id as eight zero bytes (the invalid-id
// sentinel) rather than leaving it empty: OpenCensus agents, early Java/.NET/Ruby OTLP exporters,
// Google Cloud's trace exporter and others still in use do. The OpenTelemetry Collector reads
// such a span as a root; a collector that rejected it would answer partial success (which the
// exporter does not retry) and every trace of that exporter would lose its root span.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';
import { encodeTraces, TraceResponse } from '../helpers/otlp-proto.ts';

const PB_TRACE = '6a1d34e0c0a5b53e24d27dc6a2b3c4d5';
const JSON_TRACE = '7b2e45f1d1b6c64f35e38ed7b3c4d5e6';

describe.each(['sqlite', 'memory'])('a root span sent with an all-zero parent span id (%s)', (backend) => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': backend });
  });
  afterAll(async () => {
    await c?.stop();
  });

  const readRoot = async (traceId: string) => {
    const got = await eventually(async () => {
      const r = await getJson(c.queryUrl, `/v1/traces/${traceId}`);
      return r.status === 200 ? r.body : undefined;
    }, 5000, `trace ${traceId}`);
    const spans = got.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans));
    return spans.find((s: any) => s.name === 'root');
  };

  it('is stored as a root over OTLP/protobuf, with no partial success', async () => {
    const body = encodeTraces({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'zero-parent' } }] },
          scopeSpans: [
            {
              spans: [
                { traceId: Buffer.from(PB_TRACE, 'hex'), spanId: Buffer.from('1111111111111111', 'hex'), parentSpanId: Buffer.alloc(8), name: 'root', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000500000000' },
                { traceId: Buffer.from(PB_TRACE, 'hex'), spanId: Buffer.from('2222222222222222', 'hex'), parentSpanId: Buffer.from('1111111111111111', 'hex'), name: 'child', startTimeUnixNano: '1700000000100000000', endTimeUnixNano: '1700000000200000000' },
              ],
            },
          ],
        },
      ],
    });
    const res = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
    expect(res.status).toBe(200);
    expect(TraceResponse.toObject(TraceResponse.decode(new Uint8Array(await res.arrayBuffer())))).toEqual({});
    const root = await readRoot(PB_TRACE);
    expect(root).toMatchObject({ spanId: '1111111111111111', parentSpanId: '' });
  });

  it('is stored as a root over OTLP/JSON, with no partial success', async () => {
    const body = JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'zero-parent' } }] },
          scopeSpans: [{ spans: [{ traceId: JSON_TRACE, spanId: '3333333333333333', parentSpanId: '0000000000000000', name: 'root', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000500000000' }] }],
        },
      ],
    });
    const res = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    const root = await readRoot(JSON_TRACE);
    expect(root).toMatchObject({ spanId: '3333333333333333', parentSpanId: '' });
  });
});
