// OTLP/JSON strings with a lone UTF-16 surrogate, as a browser app sends them when an SDK cut an
// attribute value inside an emoji (JSON.stringify writes the half left as "\ud83d"). OTLP strings
// are UTF-8, which cannot hold one: the protobuf form of the request, the memory store and the
// OpenTelemetry Collector (Go's JSON decoder) have U+FFFD there. Every store must store and read
// back the same text, and an attribute search for the value as it reads back must find the
// trace. PostgreSQL kept the surrogate in its json columns and search tokens, so no search could
// find such a span there (a URL cannot carry a lone surrogate), and ClickHouse kept it in
// structured log bodies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';
import { storeFlags } from '../helpers/stores.ts';

const BACKENDS = storeFlags('lone', 1);
const TRACE_ID = '5b8efff798038103d269b633813fc60c';
const NOW = 1_765_000_000_000_000_000n;

// Written as JSON escapes on purpose: the body's text holds "\ud83d", not a character.
const TRACES = String.raw`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"lone-surrogates"}},{"key":"host\ud800","value":{"stringValue":"h\udc00"}}]},
  "scopeSpans":[{"scope":{"name":"scope\ud83d","version":"1"},"spans":[
    {"traceId":"${TRACE_ID}","spanId":"0102030405060708","name":"GET /\ud83d","startTimeUnixNano":"${NOW}","endTimeUnixNano":"${NOW + 1000n}",
     "attributes":[{"key":"user.comment","value":{"stringValue":"great \ud83d"}},{"key":"list","value":{"arrayValue":{"values":[{"stringValue":"\ude80"}]}}}],
     "events":[{"timeUnixNano":"${NOW}","name":"e\ud83d","attributes":[{"key":"k","value":{"stringValue":"v\ud83d"}}]}],
     "status":{"code":2,"message":"bad \ud83d"}}]}]}]}`;
const LOGS = String.raw`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"lone-surrogates-logs"}},{"key":"host","value":{"stringValue":"h\udc00"}}]},
  "scopeLogs":[{"scope":{"name":"s"},"logRecords":[
    {"timeUnixNano":"${NOW}","body":{"kvlistValue":{"values":[{"key":"msg\ud83d","value":{"stringValue":"cut \ud83d"}}]}},"attributes":[{"key":"a","value":{"stringValue":"\ud83d"}}]},
    {"timeUnixNano":"${NOW + 1n}","body":{"stringValue":"plain \ud83d"}}]}]}]}`;

const R = '\ufffd';

describe.each(Object.entries(BACKENDS))('%s: OTLP/JSON strings with lone surrogates', (backend, options) => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': backend, ...(await options()) });
  });
  afterAll(async () => c?.stop());

  it('stores them as U+FFFD, as the protobuf form of the request has them, and finds them by attribute', async () => {
    for (const [path, body] of [['/v1/traces', TRACES], ['/v1/logs', LOGS]] as const) {
      const res = await fetch(c.httpUrl + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('{}');
    }
    const trace = await eventually(async () => {
      const r = await getJson(c.queryUrl, `/v1/traces/${TRACE_ID}`);
      return r.status === 200 ? r.body : undefined;
    });
    const rs = trace.resourceSpans[0];
    const span = rs.scopeSpans[0].spans[0];
    expect(rs.resource.attributes).toContainEqual({ key: `host${R}`, value: { stringValue: `h${R}` } });
    expect(rs.scopeSpans[0].scope.name).toBe(`scope${R}`);
    expect(span.name).toBe(`GET /${R}`);
    expect(span.attributes).toStrictEqual([
      { key: 'user.comment', value: { stringValue: `great ${R}` } },
      { key: 'list', value: { arrayValue: { values: [{ stringValue: R }] } } },
    ]);
    expect(span.events[0].name).toBe(`e${R}`);
    expect(span.events[0].attributes).toStrictEqual([{ key: 'k', value: { stringValue: `v${R}` } }]);
    expect(span.status.message).toBe(`bad ${R}`);

    const jaeger = await getJson(c.queryUrl, `/api/traces/${TRACE_ID}`);
    const j = jaeger.body.data[0];
    expect(j.spans[0].tags).toContainEqual({ key: 'user.comment', type: 'string', value: `great ${R}` });
    expect(j.processes[j.spans[0].processID].tags).toContainEqual({ key: `host${R}`, type: 'string', value: `h${R}` });

    // The value as it reads back finds the span.
    const found = await getJson(c.queryUrl, `/v1/traces?service=lone-surrogates&attr=${encodeURIComponent(`user.comment=great ${R}`)}`);
    expect(found.status).toBe(200);
    expect(found.body.traces.map((t: { traceId: string }) => t.traceId)).toStrictEqual([TRACE_ID]);

    const logs = await eventually(async () => {
      const r = await getJson(c.queryUrl, '/v1/logs?service=lone-surrogates-logs');
      const recs = r.body?.resourceLogs?.flatMap((x: any) => x.scopeLogs.flatMap((s: any) => s.logRecords.map((l: any) => ({ resource: x.resource, ...l })))) ?? [];
      return recs.length === 2 ? recs : undefined;
    });
    const byTime = [...logs].sort((a, b) => (BigInt(a.timeUnixNano) < BigInt(b.timeUnixNano) ? -1 : 1));
    expect(byTime[0].body).toStrictEqual({ kvlistValue: { values: [{ key: `msg${R}`, value: { stringValue: `cut ${R}` } }] } });
    expect(byTime[0].attributes).toStrictEqual([{ key: 'a', value: { stringValue: R } }]);
    expect(byTime[0].resource.attributes).toContainEqual({ key: 'host', value: { stringValue: `h${R}` } });
    expect(byTime[1].body).toStrictEqual({ stringValue: `plain ${R}` });
  }, 60_000);
});
