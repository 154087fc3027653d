// The Jaeger API as the Jaeger UI calls it, compared with what Jaeger's own query service answers
// for the same data (cmd/query/app/http_handler.go and query_parser.go in jaegertracing/jaeger).
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SpanRow } from '../../src/model/rows.ts';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { makeSpan, writeSpans } from '../helpers/rows.ts';

type Json = any;

/**
 * A read API on a memory store holding spans, with query.maxLimit maxLimit, for the describe block
 * that calls it (started before its tests, stopped after): its GET, status and JSON body.
 */
function readApiOf(spans: SpanRow[], maxLimit: number): (path: string) => Promise<{ status: number; body: Json }> {
  let store: StorageBackend;
  let server: QueryServer;
  let url: string;
  beforeAll(async () => {
    store = await memoryBackend();
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit, maxSpansPerTrace: 100, maxSpansPerSearch: 1000 }, store, pino({ level: 'silent' }));
    await server.start();
    url = `http://127.0.0.1:${server.boundPort}`;
    await writeSpans(store, spans);
  });
  afterAll(async () => {
    await server.shutdown();
    await store.shutdown();
  });
  return async (path) => {
    const r = await fetch(`${url}${path}`);
    return { status: r.status, body: await r.json() };
  };
}

describe('Jaeger API as the Jaeger UI calls it', () => {
  const known = makeSpan({ serviceName: 'svc' });
  const get = readApiOf([known], 100);

  it('names each trace id it did not find in errors, as Jaeger does (the UI trace compare view waits on it)', async () => {
    // The Jaeger UI's trace compare view (/trace/a...b) asks /api/traces?traceID=a&traceID=b and
    // marks each id loading until the answer's data or errors name it (fetchMultipleTracesDone).
    const unknown = 'f'.repeat(32);
    const r = await get(`/api/traces?traceID=${known.traceId}&traceID=${unknown}&traceID=ABC`);
    expect(r.status).toBe(200);
    expect(r.body.data.map((t: Json) => t.traceID)).toEqual([known.traceId]);
    // Jaeger: structuredError{Msg: "trace not found", TraceID: traceID.String()} per id not found.
    expect(r.body.errors).toEqual([
      { code: 404, msg: 'trace not found', traceID: unknown },
      { code: 404, msg: 'trace not found', traceID: '0000000000000abc' },
    ]);
  });

  it('reads a trace id given in base64 in /api/traces/{id}, as Jaeger does (ids copied from OTLP protobuf JSON)', async () => {
    // Jaeger's parseTraceID (apiv3.TraceIDFromString): hex first, then standard or URL-safe
    // base64, padded or not, of 16 bytes (or 8, a 64-bit id).
    const bytes = Buffer.from(known.traceId, 'hex');
    for (const id of [bytes.toString('base64'), bytes.toString('base64').replace(/=+$/, ''), bytes.toString('base64url'), bytes.toString('base64url') + '==']) {
      const r = await get(`/api/traces/${encodeURIComponent(id)}`);
      expect(r.status, id).toBe(200);
      expect(r.body.data.map((t: Json) => t.traceID), id).toEqual([known.traceId]);
    }
    // A 64-bit id: 8 bytes.
    expect((await get(`/api/traces/${encodeURIComponent(Buffer.from('0000000000000abc', 'hex').toString('base64'))}`)).body.errors).toEqual([{ code: 404, msg: 'trace not found' }]);
    // Neither hex nor the base64 of 8 or 16 bytes.
    for (const bad of ['not-hex', Buffer.from('hello world!').toString('base64'), 'A'.repeat(21) + '+_']) {
      const r = await get(`/api/traces/${encodeURIComponent(bad)}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.errors[0].msg).toMatch(/'traceID'/);
    }
  });
});

describe("Jaeger API searches at the Jaeger UI's limits", () => {
  const start = BigInt(Date.now() - 60_000) * 1_000_000n;
  // Three traces, newest last; query.maxLimit 2.
  const spans = [0n, 1n, 2n].map((i) => makeSpan({ serviceName: 'limits', startTimeUnixNano: start + i * 1_000_000_000n }));
  const get = readApiOf(spans, 2);

  it('answers a search above query.maxLimit (the Jaeger UI offers up to 1500) at query.maxLimit, saying so', async () => {
    // The Jaeger UI's search form allows limits up to its search.maxLimit (1500 by default), and
    // Jaeger's query service takes any limit: a user clicking search is answered, not refused.
    const newest = [spans[2]!.traceId, spans[1]!.traceId];
    const v1 = await get('/api/traces?service=limits&lookback=1h&limit=1500');
    expect(v1.status).toBe(200);
    expect(v1.body.data.map((t: Json) => t.traceID)).toEqual(newest);
    expect(v1.body.errors).toEqual([{ code: 413, msg: 'limit 1500 is above query.maxLimit (2): searched for at most 2 traces' }]);
    // Within it: nothing said.
    expect((await get('/api/traces?service=limits&lookback=1h&limit=2')).body.errors).toBeNull();
    // api_v3, as the Jaeger UI 2.15 and later searches (query.searchDepth), and its trace search.
    const window = `query.serviceName=limits&query.startTimeMin=${new Date(Number(start / 1_000_000n) - 1000).toISOString()}&query.startTimeMax=${new Date(Date.now()).toISOString()}`;
    const summaries = await get(`/api/v3/trace-summaries?${window}&query.searchDepth=1500`);
    expect(summaries.status).toBe(200);
    expect(summaries.body.summaries.map((s: Json) => s.traceId)).toEqual(newest);
    // The warning names the parameter as the request spelled it.
    expect(summaries.body.warnings).toEqual(['query.searchDepth 1500 is above query.maxLimit (2): searched for at most 2 traces']);
    const traces = await get(`/api/v3/traces?${window}&query.search_depth=1500`);
    expect(traces.status).toBe(200);
    expect(new Set(traces.body.result.resourceSpans.map((r: Json) => r.scopeSpans[0].spans[0].traceId))).toEqual(new Set(newest));
    expect(traces.body.warnings).toEqual(['query.search_depth 1500 is above query.maxLimit (2): searched for at most 2 traces']);
    // Our own read API keeps refusing it.
    expect((await get('/v1/traces?service=limits&limit=1500')).status).toBe(400);
  });
});
