// Jaeger's tag error=true searched as Jaeger's stores that keep Jaeger's model (Cassandra,
// Elasticsearch, Badger) find it: error is an ordinary tag, which the OTLP translation adds to a
// span of status ERROR and which a span's own attribute error=true is too. A search for it finds
// both, through the Jaeger API (/api/traces) and api_v3 (/api/v3/traces, /api/v3/trace-summaries),
// on memory and SQLite alike.
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { KeyValue, SpanRow } from '../../src/model/rows.ts';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { makeSpan, writeSpans } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

type Json = any;

const BASE = 1_700_000_000_000_000_000n;
const SEC = 1_000_000_000n;

async function open(kind: string): Promise<StorageBackend> {
  if (kind === 'memory') return memoryBackend();
  const b = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.sqlite.path': join(tempDir(), 'error-tag.db') } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await b.start();
  return b;
}

describe.each(['memory', 'sqlite'])('Jaeger tag error=true on %s', (kind) => {
  let store: StorageBackend;
  let server: QueryServer;
  let url: string;
  const span = (second: bigint, statusCode: number, attributes: KeyValue[]): SpanRow => makeSpan({ serviceName: 'errs', name: 'op', startTimeUnixNano: BASE + second * SEC, endTimeUnixNano: BASE + second * SEC + 1000n, statusCode, attributes });
  // Newest first: status ERROR without the attribute, the attribute as a boolean, the attribute
  // as a string (both with status UNSET), then spans that are neither.
  const byStatus = span(5n, 2, [{ key: 'http.route', value: { stringValue: '/a' } }]);
  const byBool = span(4n, 0, [{ key: 'error', value: { boolValue: true } }]);
  const byString = span(3n, 0, [{ key: 'error', value: { stringValue: 'true' } }, { key: 'http.route', value: { stringValue: '/a' } }]);
  const neither = span(2n, 1, [{ key: 'error', value: { boolValue: false } }]);
  const ok = span(1n, 0, []);

  beforeAll(async () => {
    store = await open(kind);
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 100, maxSpansPerTrace: 100, maxSpansPerSearch: 1000 }, store, pino({ level: 'silent' }));
    await server.start();
    url = `http://127.0.0.1:${server.boundPort}`;
    await writeSpans(store, [ok, neither, byString, byBool, byStatus]);
  });
  afterAll(async () => {
    await server?.shutdown();
    await store?.shutdown();
  });

  const get = async (path: string): Promise<Json> => {
    const r = await fetch(`${url}${path}`);
    expect(r.status, path).toBe(200);
    return r.json();
  };
  const window = `service=errs&start=${(BASE - SEC) / 1000n}&end=${(BASE + 10n * SEC) / 1000n}`;
  const v1 = async (tags: Record<string, unknown>, extra = ''): Promise<string[]> => (await get(`/api/traces?${window}&tags=${encodeURIComponent(JSON.stringify(tags))}${extra}`)).data.map((t: Json) => t.traceID);
  const v3 = async (attributes: Record<string, unknown>, extra = ''): Promise<string[]> => {
    const p = new URLSearchParams({ 'query.serviceName': 'errs', 'query.startTimeMin': '2023-11-14T22:13:00Z', 'query.startTimeMax': '2023-11-14T22:14:00Z', 'query.attributes': JSON.stringify(attributes) });
    return (await get(`/api/v3/trace-summaries?${p}${extra}`)).summaries.map((s: Json) => s.traceId);
  };

  it('finds a trace whose span has status ERROR or the attribute error=true (boolean or string), newest first', async () => {
    const want = [byStatus.traceId, byBool.traceId, byString.traceId];
    expect(await v1({ error: 'true' })).toEqual(want);
    expect(await v1({ error: true })).toEqual(want);
    expect((await get(`/api/traces?${window}&tag=error:true`)).data.map((t: Json) => t.traceID)).toEqual(want);
    expect(await v3({ error: 'true' })).toEqual(want);
    const found = await get(`/api/v3/traces?${new URLSearchParams({ 'query.serviceName': 'errs', 'query.startTimeMin': '2023-11-14T22:13:00Z', 'query.startTimeMax': '2023-11-14T22:14:00Z', 'query.attributes': '{"error":"true"}' })}`);
    expect(found.result.resourceSpans.map((r: Json) => r.scopeSpans[0].spans[0].traceId).sort()).toEqual([...want].sort());
  });

  it('keeps the limit, newest first, and the other tags asked with it', async () => {
    expect(await v1({ error: 'true' }, '&limit=2')).toEqual([byStatus.traceId, byBool.traceId]);
    expect(await v3({ error: 'true' }, '&query.searchDepth=1')).toEqual([byStatus.traceId]);
    // Another tag: only the spans that carry it too.
    expect(await v1({ error: 'true', 'http.route': '/a' })).toEqual([byStatus.traceId, byString.traceId]);
    // With otel.status_code=ERROR: the status alone; with OK, only the attribute can say error (none here).
    expect(await v1({ error: 'true', 'otel.status_code': 'ERROR' })).toEqual([byStatus.traceId]);
    expect(await v1({ error: 'true', 'otel.status_code': 'OK' })).toEqual([]);
    // error=false is an attribute as any other.
    expect(await v1({ error: 'false' })).toEqual([neither.traceId]);
  });
});
