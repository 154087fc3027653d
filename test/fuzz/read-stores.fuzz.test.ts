// Differential test of the four stores' reads: the same random spans and log records written to
// memory, SQLite, PostgreSQL and ClickHouse (chdb, two shards) through their own encoders and
// write paths, then the same random queries through every StoreReader method, whose answers must
// be equal. Normalised only where the port leaves a store free: the order of getTrace's spans
// (backend.ts: "any order"), and PostgreSQL's listings, which keep a name's first 256 characters
// (postgres/migrations.ts, reads.ts; the contract's "very long name" cases find a name by them).
// A summary's duration of a trace holding a span that ends before it starts is not compared
// (ClickHouse counts it from the times: a known difference).
//
// Attribute keys are non-empty and unique in each list, as OTLP requires: on a key sent twice, or
// an empty one, the stores differ (which value a search matches, whether a nested copy is kept).
//
// Start times are distinct (apart from resends of the same span) so no answer depends on a
// store's tie order. DIFF_SEED replays a run; DIFF_CASES sets how many queries of each kind
// (and scales the data), e.g. `DIFF_SEED=7 DIFF_CASES=2000 npx vitest run test/fuzz/read-stores.fuzz.test.ts`.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { anyValueToString, type AnyValue, type KeyValue, type LogRow, type SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import type { LogQuery, StorageBackend, TraceQuery, TraceSummary } from '../../src/storage/backend.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { chdbBackend, removeChdbDir, uniqueDatabase } from '../helpers/clickhouse.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend } from '../helpers/postgres-store.ts';
import { prng } from '../helpers/prng.ts';
import { canonical, makeLog, makeSpan, writeLogs, writeLogsAs, writeSpans, writeSpansAs } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const SEED = Number(process.env['DIFF_SEED'] ?? 20261207);
const CASES = Number(process.env['DIFF_CASES'] ?? 30);
const MS = 1_000_000n;
const DAY = 86_400_000n * MS;
const BASE = 1_765_000_000_000_000_000n;

// Names that sort differently by UTF-16 code units and by UTF-8 bytes, differ only in case, hold
// SQL LIKE wildcards and quotes, or pass PostgreSQL's 256-character cut.
const SERVICES = ['checkout', 'Checkout', 'ｆrontend', '🚀rocket', 'Ünïcode', 'e\u0301', '100%_off', "o'brien", 'nul\u0000x', '', 's'.repeat(300)];
const NAMES = ['GET /', 'get /', 'POST /pay', 'ｆetch', '🚀launch', '%', '_', 'a\\b', 'tab\tnl\n', 'nul\u0000', 'x'.repeat(300), `${'x'.repeat(256)}y`, ''];
const KEYS = ['http.status_code', 'k', 'K', 'ключ', '🔑', 'a.b', 'a_b', '%', 'n\u0000', 'K'.repeat(140)];
const VALUES: AnyValue[] = [
  { stringValue: '200' }, { intValue: '200' }, { doubleValue: 200 }, { stringValue: '200.0' }, { doubleValue: 200.5 },
  { intValue: '-5' }, { intValue: '0' }, { intValue: '9223372036854775807' }, { intValue: '-9223372036854775808' },
  { doubleValue: 0.1 }, { doubleValue: 1e21 }, { doubleValue: 1e-7 }, { doubleValue: -1.5 }, { doubleValue: -0 }, { doubleValue: 1e300 }, { doubleValue: 5e-324 }, { doubleValue: 123456789012345680000 }, { doubleValue: 'NaN' as unknown as number },
  { boolValue: true }, { boolValue: false }, { stringValue: 'true' }, { stringValue: 'TRUE' },
  { stringValue: '' }, { stringValue: 'v' }, { stringValue: 'V' }, { stringValue: '%' }, { stringValue: 'a_c' }, { stringValue: "it's" }, { stringValue: 'a\\b' }, { stringValue: 'nul\u0000' }, { stringValue: ' v ' }, { stringValue: 'line\n"q"' },
  { stringValue: 'é'.repeat(130) }, { stringValue: '🚀' }, { bytesValue: 'AAE=' }, {},
  { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '2' }] } }, { kvlistValue: { values: [{ key: 'in', value: { boolValue: false } }] } },
  { kvlistValue: { values: [{ key: 'zz', value: { intValue: '9007199254740993' } }, { key: 'a', value: { stringValue: 'é"' } }, { key: 'b', value: { doubleValue: 1.5 } }] } },
  { arrayValue: { values: [{ doubleValue: 2 }, { doubleValue: 0.1 }, { arrayValue: { values: [] } }, {}] } },
];

describe(`the four stores answer the same random reads alike (seed ${SEED}, ${CASES} cases)`, () => {
  const stores: [string, StorageBackend][] = [];
  const rnd = prng(SEED);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <X>(a: readonly X[]): X => a[int(a.length)]!;
  const hexOf = (bytes: number) => Array.from({ length: bytes }, () => int(256).toString(16).padStart(2, '0')).join('');
  const spans: SpanRow[] = [];
  const logs: LogRow[] = [];
  const traceIds: string[] = [];
  /** Traces holding a span that ends before it starts (their summary duration is not compared). */
  const backwards = new Set<string>();
  const used = new Set<bigint>();
  /** A start time not used yet: over five days, at a random nanosecond. */
  const freshTime = (): bigint => {
    for (;;) {
      const t = BASE + BigInt(int(5 * 86_400_000)) * MS + BigInt(int(1_000_000));
      if (!used.has(t)) {
        used.add(t);
        return t;
      }
    }
  };
  const attributes = (): KeyValue[] => {
    const out: KeyValue[] = [];
    for (const key of new Set(Array.from({ length: int(4) }, () => pick(KEYS)))) out.push({ key, value: pick(VALUES) });
    return out;
  };

  beforeAll(async () => {
    const silent = { logger: pino({ level: 'silent' }), metrics: createMetrics() };
    const sqlite = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.sqlite.path': join(tempDir(), 'diff.db') } })), silent);
    await sqlite.start();
    const postgres = postgresBackend(await createTestDatabase('diff'));
    await postgres.start();
    stores.push(['memory', await memoryBackend()], ['sqlite', sqlite], ['postgres', postgres], ['clickhouse', await chdbBackend([uniqueDatabase('diff0'), uniqueDatabase('diff1')])]);

    const traces = Math.max(60, Math.round(CASES * 0.8));
    /** Rows in the order they are sent, resends included. */
    const sent: SpanRow[] = [];
    for (let tr = 0; tr < traces; tr++) {
      const traceId = hexOf(16);
      traceIds.push(traceId);
      const n = tr % 25 === 0 ? 30 : 1 + int(6);
      const trace: SpanRow[] = [];
      for (let i = 0; i < n; i++) {
        const start = freshTime();
        const r = rnd();
        // Durations: 0, 1 ns, a few ms, days, and (rarely) an end before the start.
        const end = r < 0.1 ? start : r < 0.15 ? start + 1n : r < 0.25 ? start + BigInt(1 + int(20)) * DAY : r < 0.28 ? start - BigInt(1 + int(1000)) : start + BigInt(int(5000)) * MS + BigInt(int(1000));
        if (end < start) backwards.add(traceId);
        trace.push(makeSpan({
          traceId, spanId: hexOf(8), parentSpanId: i === 0 ? '' : pick(trace).spanId, serviceName: pick(SERVICES), name: pick(NAMES), kind: int(6),
          startTimeUnixNano: start, endTimeUnixNano: end, statusCode: int(3), statusMessage: rnd() < 0.2 ? 'boom' : '', attributes: attributes(),
        }));
      }
      // Some traces' root never arrives.
      const stored = rnd() < 0.1 && trace.length > 1 ? trace.slice(1) : trace;
      spans.push(...stored);
      sent.push(...stored);
      // A client's resend of some of its spans, in a later request.
      if (rnd() < 0.2) sent.push(...stored.slice(0, 1 + int(stored.length)));
    }
    // Requests of up to 40 spans, a trace's spans possibly across two; some retried under the same batch id.
    for (let i = 0; i < sent.length;) {
      const batch = sent.slice(i, (i += 1 + int(40)));
      const batchId = randomUUID();
      const retried = rnd() < 0.1;
      for (const [, b] of stores) {
        await writeSpans(b, batch, batchId);
        if (retried) await writeSpans(b, batch, batchId);
      }
    }

    for (let l = 0; l < traces * 2; l++) {
      const t = freshTime();
      const linked = rnd() < 0.6 ? pick(spans) : undefined;
      const bodies: AnyValue[] = [{ stringValue: `record ${l}` }, { kvlistValue: { values: [{ key: 'msg', value: { stringValue: 'é' } }] } }, { intValue: '200' }, {}];
      logs.push(makeLog({
        traceId: linked?.traceId ?? '', spanId: linked && rnd() < 0.5 ? linked.spanId : '', serviceName: pick(SERVICES), severityNumber: int(25),
        severityText: pick(['', 'INFO', 'warn', 'ERROR']), body: pick(bodies), attributes: attributes(),
        // Some without a time: their observed time is theirs.
        ...(rnd() < 0.15 ? { timeUnixNano: 0n, observedTimeUnixNano: t } : { timeUnixNano: t, observedTimeUnixNano: t + 7n }),
      }));
    }
    for (let i = 0; i < logs.length;) {
      const batch = logs.slice(i, (i += 1 + int(60)));
      for (const [, b] of stores) await writeLogs(b, batch);
    }
    // Another tenant's rows, which no read of the default tenant may return.
    const other = [makeSpan({ traceId: traceIds[0]!, serviceName: SERVICES[0]!, name: 'other tenant', startTimeUnixNano: freshTime() })];
    for (const [, b] of stores) {
      await writeSpansAs(b, 'other', other);
      await writeLogsAs(b, 'other', [makeLog({ traceId: traceIds[0]!, serviceName: SERVICES[0]! })]);
    }
  }, 300_000);

  afterAll(async () => {
    for (const [, b] of stores) await b.shutdown();
    removeChdbDir();
  });

  /** Each store's answer to one read, compared with memory's after `norm`. */
  async function agree<T>(what: unknown, read: (b: StorageBackend) => Promise<T>, norm: (answer: T, store: string) => unknown = (a) => a): Promise<void> {
    const answers: [string, unknown][] = [];
    for (const [name, b] of stores) answers.push([name, canonical(norm(await read(b), name))]);
    const [, expected] = answers[0]!;
    for (const [name, got] of answers.slice(1)) expect(got, `${name} vs memory, seed ${SEED}: ${JSON.stringify(canonical(what))}`).toEqual(expected);
  }

  const aStart = () => (rnd() < 0.8 ? pick(spans).startTimeUnixNano : BASE + BigInt(int(6)) * DAY);
  const aDuration = () => (rnd() < 0.7 ? pick(spans).durationNano : pick([0n, 1n, 1000n * MS, 20n * DAY]));
  /** A value as a search writes it (attr=key=value), of a stored value mostly. */
  const aValueText = () => (rnd() < 0.9 ? anyValueToString(pick(VALUES)) : pick(['2e2', '200.00', '1e+21', 'True']));
  /** Names cut as PostgreSQL's listings keep them (256 code points), for comparing listings. */
  const cut = (s: string) => [...s].slice(0, 256).join('');

  it('lists the same services and operations', async () => {
    const listed = (names: string[]) => [...new Set(names.map(cut))].sort();
    await agree('services', (b) => b.getServices(TENANT), listed);
    for (const service of SERVICES) {
      for (const kind of [undefined, 0, 1, 2, 3, 4, 5]) {
        const q = kind === undefined ? { service } : { service, kind };
        await agree(q, (b) => b.getOperations(TENANT, q), (ops) => [...new Map(ops.map((o) => [`${cut(o.name)}\u0000${o.kind}`, { name: cut(o.name), kind: o.kind }])).values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.kind - b.kind)));
      }
    }
  });

  it('finds the same traces for the same searches', async () => {
    const summaries = (found: TraceSummary[]) => found.map((s) => (backwards.has(s.traceId) ? { ...s, durationNano: 'not compared' } : s));
    for (let i = 0; i < CASES * 2; i++) {
      const q: TraceQuery = { limit: rnd() < 0.1 ? 1000 : 1 + int(40) };
      if (rnd() < 0.4) q.service = pick(SERVICES);
      if (rnd() < 0.25) q.name = pick(NAMES);
      if (rnd() < 0.2) q.kind = int(6);
      if (rnd() < 0.2) q.statusCode = int(3);
      if (rnd() < 0.3) q.startNano = aStart();
      if (rnd() < 0.3) q.endNano = aStart();
      if (rnd() < 0.2) q.minDurationNano = aDuration();
      if (rnd() < 0.2) q.maxDurationNano = aDuration();
      if (rnd() < 0.4) q.attributes = Array.from({ length: 1 + int(2) }, () => ({ key: pick(KEYS), value: aValueText() }));
      await agree(q, (b) => b.searchTraces(TENANT, q), summaries);
    }
  });

  it('reads the same traces, whole and cut', async () => {
    const bySpanId = (rows: SpanRow[]) => [...rows].sort((a, b) => (a.spanId < b.spanId ? -1 : 1));
    for (let i = 0; i < CASES; i++) {
      const traceId = rnd() < 0.95 ? pick(traceIds) : hexOf(16);
      await agree({ getTrace: traceId }, (b) => b.getTrace(TENANT, traceId), bySpanId);
      const max = pick([1, 2, 5, 1000]);
      await agree({ readTrace: traceId, max }, (b) => b.readTrace(TENANT, traceId, max), // In start-then-id order when cut; any order when whole.
        (r) => ({ total: r.total, spans: r.total <= max ? bySpanId(r.spans) : r.spans }));
    }
  });

  it('finds the same log records for the same searches', async () => {
    const logTime = () => {
      const l = pick(logs);
      return rnd() < 0.8 ? (l.timeUnixNano || l.observedTimeUnixNano) : BASE + BigInt(int(6)) * DAY;
    };
    // A read's trace id is 32 hex digits (the read API refuses any other).
    const linkedLogs = logs.filter((l) => l.traceId !== '');
    for (let i = 0; i < CASES * 2; i++) {
      const q: LogQuery = { limit: rnd() < 0.1 ? 1000 : 1 + int(40) };
      if (rnd() < 0.4) q.service = pick(SERVICES);
      if (rnd() < 0.3) q.traceId = rnd() < 0.8 ? pick(linkedLogs).traceId : hexOf(16);
      if (rnd() < 0.3) q.startNano = logTime();
      if (rnd() < 0.3) q.endNano = logTime();
      if (rnd() < 0.3) q.minSeverity = int(25);
      await agree(q, (b) => b.searchLogs(TENANT, q));
    }
  });

  it('counts the same calls between services', async () => {
    for (let i = 0; i < Math.max(20, CASES / 5); i++) {
      const [a, b] = [aStart(), aStart()];
      const q = { startNano: a < b ? a : b, endNano: a < b ? b : a };
      await agree(q, (s) => s.getDependencies(TENANT, q));
    }
  });
});
