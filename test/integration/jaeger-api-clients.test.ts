// The Jaeger API as the Jaeger UI calls it, compared with what Jaeger's own query service answers
// for the same data (cmd/query/app/http_handler.go and query_parser.go in jaegertracing/jaeger).
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { makeSpan, writeSpans } from '../helpers/rows.ts';

type Json = any;

describe('Jaeger API as the Jaeger UI calls it', () => {
  let store: StorageBackend;
  let server: QueryServer;
  let url: string;
  const known = makeSpan({ serviceName: 'svc' });

  beforeAll(async () => {
    store = await memoryBackend();
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 100, maxSpansPerTrace: 100, maxSpansPerSearch: 1000 }, store, pino({ level: 'silent' }));
    await server.start();
    url = `http://127.0.0.1:${server.boundPort}`;
    await writeSpans(store, [known]);
  });
  afterAll(async () => {
    await server.shutdown();
    await store.shutdown();
  });

  const get = async (path: string): Promise<{ status: number; body: Json }> => {
    const r = await fetch(`${url}${path}`);
    return { status: r.status, body: await r.json() };
  };

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
