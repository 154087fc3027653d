// The memory store and the SQLite store answer the same reads alike: the same spans and log
// records written to both, then the same queries (the StoreReader port and the read API over
// HTTP, its own /v1 endpoints and the Jaeger API's), whose answers must be equal. The data is
// seeded, so a failure replays; times are distinct, so no answer depends on a store's tie order.
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { KeyValue, LogRow, SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { QueryServer } from '../../src/query/server.ts';
import type { LogQuery, StorageBackend, TraceQuery } from '../../src/storage/backend.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { prng } from '../helpers/prng.ts';
import { canonical, hex, makeLog, makeSpan, writeLogs, writeSpans } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const MS = 1_000_000n;
const BASE = 1_700_000_000_000_000_000n;

// Names that sort differently by UTF-16 code units (JavaScript) and by UTF-8 bytes (SQL):
// U+FF46 (fullwidth f) is after an emoji's surrogates in UTF-16 and before its 4-byte UTF-8.
const SERVICES = ['checkout', 'ｆrontend', '🚀rocket', 'Ünïcode'];
const NAMES = ['GET /', 'POST /pay', 'ｆetch', '🚀launch', 'x'.repeat(300)];
const KEYS = ['k1', 'k2', 'ключ', 'K'.repeat(140)];
const VALUES: KeyValue['value'][] = [
  { stringValue: 'v1' }, { stringValue: 'v2' }, { stringValue: '' }, { stringValue: 'é'.repeat(130) }, { stringValue: 'y'.repeat(200) },
  { intValue: '5' }, { intValue: '-5' }, { intValue: '300' }, { intValue: '9223372036854775807' },
  { boolValue: true }, { doubleValue: 1.5 }, { doubleValue: 2 }, { bytesValue: 'AAE=' }, {}, { arrayValue: { values: [{ stringValue: 'a' }] } },
];

/** A value as a search writes it (attr=key=value): the text the stores compare with. */
function searchText(v: KeyValue['value']): string {
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return v.intValue;
  if ('boolValue' in v) return String(v.boolValue);
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('bytesValue' in v) return v.bytesValue;
  if ('arrayValue' in v) return '["a"]';
  return '';
}

describe('memory and SQLite answer the same reads alike', () => {
  let memory: StorageBackend;
  let sqlite: StorageBackend;
  const servers: QueryServer[] = [];
  const urls: string[] = [];
  const rnd = prng(20261206);
  const pick = <X>(a: readonly X[]): X => a[Math.floor(rnd() * a.length)]!;
  const spans: SpanRow[] = [];
  const logs: LogRow[] = [];
  /** Milliseconds past BASE of the newest time written. */
  let t = 0n;

  beforeAll(async () => {
    memory = await memoryBackend();
    sqlite = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.sqlite.path': join(tempDir(), 'agree.db') } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await sqlite.start();
    for (let tr = 0; tr < 120; tr++) {
      const traceId = hex(16);
      const n = tr % 40 === 0 ? 120 : 1 + Math.floor(rnd() * 5);
      const batch: SpanRow[] = [];
      for (let i = 0; i < n; i++) {
        t += BigInt(1 + Math.floor(rnd() * 1000)) * MS;
        const start = BASE + t;
        // Some spans end before they start (their duration is 0).
        const end = rnd() < 0.1 ? start - 5n : start + BigInt(Math.floor(rnd() * 2000)) * MS + BigInt(Math.floor(rnd() * 1000));
        const attributes: KeyValue[] = [];
        for (const key of new Set([pick(KEYS), pick(KEYS), pick(KEYS)])) attributes.push({ key, value: pick(VALUES) });
        batch.push(makeSpan({
          traceId, parentSpanId: i === 0 ? '' : pick(batch).spanId, serviceName: pick(SERVICES), name: pick(NAMES), kind: Math.floor(rnd() * 6),
          startTimeUnixNano: start, endTimeUnixNano: end, durationNano: end > start ? end - start : 0n, statusCode: Math.floor(rnd() * 3), attributes,
        }));
      }
      spans.push(...batch);
      // A trace in one request or two, some of its spans sent twice (a client's resend).
      const cut = Math.floor(rnd() * batch.length);
      const resend = rnd() < 0.2;
      for (const b of [memory, sqlite]) {
        if (resend) await writeSpans(b, batch.slice(0, 2));
        await writeSpans(b, batch.slice(0, cut));
        if (cut < batch.length) await writeSpans(b, batch.slice(cut));
      }
      for (let l = 0; l < 2; l++) {
        t += MS;
        logs.push(makeLog({
          traceId: rnd() < 0.3 ? '' : traceId, spanId: '', serviceName: pick(SERVICES), severityNumber: Math.floor(rnd() * 25),
          // Some without a time: their observed time is theirs.
          timeUnixNano: rnd() < 0.2 ? 0n : BASE + t, observedTimeUnixNano: BASE + t + 7n, body: { stringValue: `record ${logs.length}` },
        }));
      }
    }
    for (const b of [memory, sqlite]) await writeLogs(b, logs);
    for (const b of [memory, sqlite]) {
      const server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 1000, maxSpansPerTrace: 50, maxSpansPerSearch: 400 }, b, pino({ level: 'silent' }));
      await server.start();
      servers.push(server);
      urls.push(`http://127.0.0.1:${server.boundPort}`);
    }
  });

  afterAll(async () => {
    for (const s of servers) await s.shutdown();
    await memory?.shutdown();
    await sqlite?.shutdown();
  });

  /** The answers of both stores to one read, as JSON (bigints as strings). */
  const both = async (read: (b: StorageBackend) => Promise<unknown>) => [canonical(await read(memory)), canonical(await read(sqlite))];
  const aTime = () => pick(spans).startTimeUnixNano;

  it('lists the same services and operations, in the same order', async () => {
    const [m, s] = await both((b) => b.getServices(TENANT));
    expect(m).toEqual([...SERVICES].sort());
    expect(s).toEqual(m);
    for (const service of SERVICES) {
      for (const kind of [undefined, 2]) {
        const [mo, so] = await both((b) => b.getOperations(TENANT, kind === undefined ? { service } : { service, kind }));
        expect(so, service).toEqual(mo);
      }
    }
  });

  it('finds the same traces for the same searches', async () => {
    for (let i = 0; i < 400; i++) {
      const q: TraceQuery = { limit: 1 + Math.floor(rnd() * 30) };
      if (rnd() < 0.5) q.service = pick(SERVICES);
      if (rnd() < 0.3) q.name = pick(NAMES);
      if (rnd() < 0.3) q.startNano = aTime();
      if (rnd() < 0.3) q.endNano = aTime();
      if (rnd() < 0.2) q.minDurationNano = pick(spans).durationNano;
      if (rnd() < 0.2) q.maxDurationNano = pick(spans).durationNano;
      if (rnd() < 0.3) q.statusCode = Math.floor(rnd() * 3);
      if (rnd() < 0.4) q.attributes = [{ key: pick(KEYS), value: searchText(pick(VALUES)) }];
      const [m, s] = await both((b) => b.searchTraces(TENANT, q));
      expect(s, JSON.stringify(canonical(q))).toEqual(m);
    }
  });

  it('finds the same log records for the same searches', async () => {
    for (let i = 0; i < 300; i++) {
      const q: LogQuery = { limit: 1 + Math.floor(rnd() * 30) };
      if (rnd() < 0.5) q.service = pick(SERVICES);
      if (rnd() < 0.3) q.traceId = pick(logs).traceId || hex(16);
      if (rnd() < 0.3) q.startNano = BASE + BigInt(Math.floor(rnd() * Number(t / MS))) * MS;
      if (rnd() < 0.3) q.endNano = BASE + BigInt(Math.floor(rnd() * Number(t / MS))) * MS;
      if (rnd() < 0.3) q.minSeverity = Math.floor(rnd() * 25);
      const [m, s] = await both((b) => b.searchLogs(TENANT, q));
      expect(s, JSON.stringify(canonical(q))).toEqual(m);
    }
  });

  it('reads the same traces, whole and cut, and counts the same calls between services', async () => {
    const bySpanId = (rows: SpanRow[]) => canonical([...rows].sort((a, b) => (a.spanId < b.spanId ? -1 : 1)));
    for (const traceId of new Set(spans.filter((_, i) => i % 7 === 0).map((s) => s.traceId))) {
      expect(bySpanId(await sqlite.getTrace(TENANT, traceId))).toEqual(bySpanId(await memory.getTrace(TENANT, traceId)));
      for (const max of [1, 3, 1000]) {
        const [m, s] = [await memory.readTrace(TENANT, traceId, max), await sqlite.readTrace(TENANT, traceId, max)];
        expect(s.total).toBe(m.total);
        expect(bySpanId(s.spans)).toEqual(bySpanId(m.spans));
      }
    }
    for (let i = 0; i < 20; i++) {
      const [a, b] = [aTime(), aTime()];
      const [m, s] = await both((st) => st.getDependencies(TENANT, { startNano: a < b ? a : b, endNano: a < b ? b : a }));
      expect(s).toEqual(m);
    }
  });

  it('answers the read API and the Jaeger API alike, errors included', async () => {
    const traceId = spans[0]!.traceId;
    const big = spans.find((s, i) => i > 0 && s.traceId !== traceId && spans.filter((x) => x.traceId === s.traceId).length > 50)!.traceId;
    const q = (o: Record<string, string | string[]>) => {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(o)) for (const x of [v].flat()) p.append(k, x);
      return p.toString();
    };
    const paths = [
      `/v1/traces/${traceId}`, `/v1/traces/${big}`, `/v1/traces/${traceId.toUpperCase()}`, `/v1/traces/${hex(16)}`, '/v1/traces/abc',
      `/v1/traces?${q({ service: SERVICES[1]!, limit: '50' })}`, `/v1/traces?${q({ name: NAMES[3]!, status: 'error' })}`,
      `/v1/traces?${q({ attr: ['k1=v1'], start: String(aTime()), minDurationMs: '250.5' })}`, '/v1/traces?limit=0', '/v1/traces?nope=1',
      `/v1/logs?${q({ service: SERVICES[2]!, limit: '100' })}`, `/v1/logs?${q({ traceId, minSeverity: '9' })}`, '/v1/logs?minSeverity=25',
      '/api/services', `/api/services/${encodeURIComponent(SERVICES[2]!)}/operations`, `/api/operations?${q({ service: SERVICES[0]!, spanKind: 'server' })}`,
      `/api/traces?${q({ service: SERVICES[0]!, start: '0', limit: '10' })}`, `/api/traces?${q({ service: SERVICES[1]!, start: '0', tags: '{"k2":"v2"}' })}`,
      `/api/traces?${q({ traceID: [traceId, big] })}`, `/api/traces/${traceId}`, `/api/traces/${hex(16)}`, '/api/traces?start=0',
      `/api/dependencies?${q({ endTs: String((BASE + t * MS) / MS + 1n), lookback: String(t / MS + 1n) })}`,
    ];
    for (const path of paths) {
      const [m, s] = await Promise.all(urls.map(async (u) => {
        const res = await fetch(u + path);
        return { status: res.status, body: await res.json() };
      }));
      expect(s, path).toEqual(m);
    }
  });
});
