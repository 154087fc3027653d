// PostgreSQL adapter behaviour beyond the storage contract: partitions, retention, idempotent
// batches, U+0000, index use, concurrent migrations, COPY text format.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LogRow, SpanRow } from '../../src/model/rows.ts';
import type { StorageBackend, StoreStats, TraceQuery, WriteBatch } from '../../src/storage/backend.ts';
import { createEncoder } from '../../src/storage/postgres/encoder.ts';
import { escapeText, unescapeText } from '../../src/storage/postgres/escape.ts';
import { ATTRIBUTE_INDEX_SPANS, ATTRIBUTE_PROBE_SPANS, ATTRIBUTE_WINDOW_SPANS, traceSpansSql } from '../../src/storage/postgres/reads.ts';
import { attributeToken } from '../../src/storage/postgres/tokens.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend } from '../helpers/postgres-store.ts';
import { canonical, hex, makeLog, makeSpan, makeTrace } from '../helpers/rows.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

const DAY_NS = 86_400_000_000_000n;
const MS = 1_000_000n;
const today = (): number => Math.floor(Date.now() / 86_400_000);
const dayStart = (day: number): bigint => BigInt(day) * DAY_NS;
const ymd = (day: number): string => new Date(day * 86_400_000).toISOString().slice(0, 10).replace(/-/g, '');

const backend = (url: string, flags: Record<string, string> = {}): StorageBackend => postgresBackend(url, { 'storage.postgres.poolSize': '4', ...flags });

function batchOf(signal: 'traces' | 'logs', rows: SpanRow[] | LogRow[], format: 'binary' | 'text' = 'binary', batchId = randomUUID()): WriteBatch {
  const enc = createEncoder({ format });
  const chunks = signal === 'traces' ? enc.encodeSpans(rows as SpanRow[]) : enc.encodeLogs(rows as LogRow[]);
  return {
    signal,
    partition: 0,
    tenant: TENANT,
    rows: rows.length,
    bytes: chunks.reduce((n, c) => n + c.data.byteLength, 0),
    chunks: chunks.map((c) => c.data),
    batchId,
  };
}

async function mustWrite(b: StorageBackend, batch: WriteBatch): Promise<void> {
  const r = await b.write(batch);
  if (r.kind !== 'success') throw new Error(`write failed (${r.kind}): ${r.error.message}`);
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

async function partitionsOf(url: string, table: string, schema = 'tracehouse'): Promise<string[]> {
  const rows = await sql<{ name: string }>(
    url,
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass ORDER BY 1`,
    [`${schema}.${table}`],
  );
  return rows.map((r) => r.name);
}

describe('postgres: escaping of U+0000 (pure)', () => {
  it('round-trips any string through the text escaping, and leaves others alone', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('\0', '\uffff', '\\', 'u', '0', '1', 'a', '\u00e9', '\ud83d\ude80') }), (s) => {
        const e = escapeText(s);
        expect(e).not.toContain('\0');
        expect(unescapeText(e)).toBe(s);
        if (!/[\0\uffff]/.test(s)) expect(e).toBe(s);
      }),
      { numRuns: 300 },
    );
  });
});

describe('postgres adapter', () => {
  let url: string;
  let main: StorageBackend;

  beforeAll(async () => {
    url = await createTestDatabase('pgadapter');
    main = backend(url);
    await main.start();
  });
  afterAll(async () => {
    await main?.shutdown();
  });

  it('creates the partitions ahead at start-up and a default partition', async () => {
    const spans = await partitionsOf(url, 'spans');
    const logs = await partitionsOf(url, 'logs');
    for (let d = today(); d <= today() + 3; d++) {
      expect(spans).toContain(`spans_p${ymd(d)}`);
      expect(logs).toContain(`logs_p${ymd(d)}`);
    }
    expect(spans).toContain('spans_default');
    expect(logs).toContain('logs_default');
  });

  it('keeps one copy of a span batch and of a log batch written twice, also concurrently', async () => {
    const spans = makeTrace(5);
    const sb = batchOf('traces', spans);
    await mustWrite(main, sb);
    await mustWrite(main, sb);
    await Promise.all([mustWrite(main, sb), mustWrite(main, sb)]);
    expect(await main.getTrace(TENANT, spans[0]!.traceId)).toHaveLength(5);

    const service = 'svc-' + randomUUID();
    const logs = [makeLog({ serviceName: service }), makeLog({ serviceName: service }), makeLog({ serviceName: service })];
    // Two identical records in one batch are two records: the key is the position in the batch.
    logs.push({ ...logs[0]! });
    const lb = batchOf('logs', logs);
    await mustWrite(main, lb);
    await Promise.all([mustWrite(main, lb), mustWrite(main, lb)]);
    expect(await main.searchLogs(TENANT, { service, limit: 100 })).toHaveLength(4);
    // The same rows under another batch id are another write (a new OTLP request).
    await mustWrite(main, batchOf('logs', logs));
    expect(await main.searchLogs(TENANT, { service, limit: 100 })).toHaveLength(8);
  });

  it('stores strings with U+0000 and U+FFFF everywhere, exactly, without failing the batch', async () => {
    const nasty = 'a\u0000b\uffffc\\u0000d\u0000';
    const span = makeSpan({
      name: nasty,
      statusMessage: '\u0000',
      traceState: 'x\u0000',
      serviceName: 'svc\u0000' + randomUUID(),
      attributes: [
        { key: 'k\u0000ey', value: { stringValue: nasty } },
        { key: 'arr', value: { arrayValue: { values: [{ stringValue: '\u0000' }, { kvlistValue: { values: [{ key: '\u0000', value: { stringValue: '\uffff' } }] } }] } } },
      ],
      events: [{ timeUnixNano: 5n, name: '\u0000evt', attributes: [{ key: 'e', value: { stringValue: '\u0000' } }], droppedAttributesCount: 0 }],
    });
    await mustWrite(main, batchOf('traces', [span]));
    expect(canonical(await main.getTrace(TENANT, span.traceId))).toEqual(canonical([span]));
    const found = await main.searchTraces(TENANT, { service: span.serviceName, attributes: [{ key: 'k\u0000ey', value: nasty }], limit: 10 });
    expect(found.map((t) => t.traceId)).toEqual([span.traceId]);
    expect(found[0]!.rootSpanName).toBe(nasty);

    const log = makeLog({ serviceName: 'svc-' + randomUUID(), body: { stringValue: nasty }, severityText: '\u0000', eventName: '\uffff' });
    await mustWrite(main, batchOf('logs', [log]));
    expect(canonical(await main.searchLogs(TENANT, { service: log.serviceName, limit: 10 }))).toEqual(canonical([log]));
  });

  it('round-trips arbitrary strings and values exactly (property)', async () => {
    const str = fc.string({ unit: 'binary', maxLength: 30 }).map((s) => s.replace(/[\ud800-\udfff]/g, 'x'));
    await fc.assert(
      fc.asyncProperty(str, str, fc.double({ noNaN: true }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), async (a, b, d, i) => {
        const span = makeSpan({
          name: a,
          attributes: [
            { key: b, value: { stringValue: a } },
            { key: 'd', value: { doubleValue: Object.is(d, -0) ? 0 : d } },
            { key: 'i', value: { intValue: i.toString() } },
          ],
        });
        await mustWrite(main, batchOf('traces', [span]));
        expect(canonical(await main.getTrace(TENANT, span.traceId))).toEqual(canonical([span]));
      }),
      { numRuns: 40 },
    );
  });

  it('writes the COPY text format too, with the same results', async () => {
    const text = backend(url, { 'storage.postgres.copyFormat': 'text' });
    await text.start();
    try {
      expect(text.encoder.options).toEqual({ format: 'text' });
      const spans = makeTrace(3, { name: 'tab\there\nnewline\\back\u0000nul' });
      await mustWrite(text, batchOf('traces', spans, 'text'));
      await mustWrite(text, batchOf('traces', spans, 'text'));
      const got = await text.getTrace(TENANT, spans[0]!.traceId);
      expect(canonical(got.sort((x, y) => (x.spanId < y.spanId ? -1 : 1)))).toEqual(canonical([...spans].sort((x, y) => (x.spanId < y.spanId ? -1 : 1))));
      const log = makeLog({ timeUnixNano: 0n });
      await mustWrite(text, batchOf('logs', [log], 'text'));
      expect(canonical(await text.searchLogs(TENANT, { service: log.serviceName, limit: 5 }))).toEqual(canonical([log]));
    } finally {
      await text.shutdown();
    }
  });

  it('answers permanent for a batch PostgreSQL rejects, and never throws', async () => {
    const good = batchOf('traces', [makeSpan()]);
    const broken: WriteBatch = { ...good, chunks: [good.chunks[0]!.subarray(0, 40)] };
    const r = await main.write(broken);
    expect(r.kind).toBe('permanent');
    // The connection is usable afterwards.
    await mustWrite(main, good);
  });

  it('uses the trace index and one partition for a trace read among 30+ partitions', async () => {
    // Rows on 34 days: late data back to 31 days gets partitions when retention is off.
    const b = backend(url, { 'storage.postgres.schema': 'explain', 'storage.postgres.retentionDays': '0' });
    await b.start();
    const days: number[] = [];
    for (let d = today() - 31; d <= today() + 2; d++) days.push(d);
    const target = makeTrace(3, { startTimeUnixNano: dayStart(today() - 17) + 3_600_000n * MS, attributes: [{ key: 'order.id', value: { intValue: '123456789' } }] });
    const filler: SpanRow[] = [];
    for (const d of days) {
      for (let i = 0; i < 60; i++) filler.push(...makeTrace(2, { serviceName: 'explain-svc', startTimeUnixNano: dayStart(d) + BigInt(i) * 60_000n * MS }));
    }
    await mustWrite(b, batchOf('traces', [...filler, ...target]));
    const parts = (await partitionsOf(url, 'spans', 'explain')).filter((p) => p !== 'spans_default');
    expect(parts.length).toBeGreaterThanOrEqual(30);
    await sql(url, 'ANALYZE explain.spans');

    const [range] = await sql<{ first: string; last: string }>(
      url,
      'SELECT first_start_unix_nano::text AS first, last_start_unix_nano::text AS last FROM explain.trace_index WHERE trace_id = $1',
      [Buffer.from(target[0]!.traceId, 'hex')],
    );
    expect(range).toBeDefined();
    const plan = (
      await sql<{ 'QUERY PLAN': string }>(url, 'EXPLAIN ' + traceSpansSql('explain'), [Buffer.from(target[0]!.traceId, 'hex'), range!.first, range!.last, TENANT])
    )
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    expect(plan).toMatch(/Index (Only )?Scan|Bitmap Index Scan/);
    expect(plan).not.toMatch(/Seq Scan/);
    const scanned = new Set(plan.match(/spans_p\d{8}|spans_default/g));
    expect([...scanned]).toEqual([`spans_p${ymd(today() - 17)}`]);

    const indexPlan = (
      await sql<{ 'QUERY PLAN': string }>(url, 'EXPLAIN SELECT * FROM explain.trace_index WHERE tenant = $2::text AND trace_id = $1', [Buffer.from(target[0]!.traceId, 'hex'), TENANT])
    )
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    expect(indexPlan).toMatch(/Index Scan using trace_index_pkey/);

    expect(await b.getTrace(TENANT, target[0]!.traceId)).toHaveLength(3);
    const found = await b.searchTraces(TENANT, { service: 'explain-svc', limit: 5 });
    expect(found).toHaveLength(5);
    expect(found[0]!.startTimeUnixNano).toBeGreaterThanOrEqual(dayStart(today() + 2));

    // A service search walks its index newest first, not every row of every partition.
    const searchPlan = (
      await sql<{ 'QUERY PLAN': string }>(
        url,
        `EXPLAIN SELECT trace_id FROM explain.spans WHERE tenant = $2::text AND left(service_name, 256) = left($1::text, 256) AND service_name = $1::text
          ORDER BY start_time_unix_nano DESC LIMIT 36`,
        ['explain-svc', TENANT],
      )
    )
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    expect(searchPlan).toMatch(/Index Scan Backward using/);
    expect(searchPlan).not.toMatch(/Seq Scan/);

    // An attribute search is a GIN lookup of its token.
    const attrPlan = (
      await sql<{ 'QUERY PLAN': string }>(
        url,
        `EXPLAIN SELECT trace_id FROM explain.spans WHERE tenant = $2::text AND attr_tokens @> $1::int8[] ORDER BY start_time_unix_nano DESC LIMIT 36`,
        [[attributeToken('order.id', '123456789').toString()], TENANT],
      )
    )
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    expect(attrPlan).toMatch(/Bitmap Index Scan on \S*attr_tokens/);
    // (A partition of a hundred rows where the planner expects matches may still be read whole:
    // cheaper at that size; the GIN lookup is what the other partitions get.)
    const byAttr = await b.searchTraces(TENANT, { attributes: [{ key: 'order.id', value: '123456789' }], limit: 5 });
    expect(byAttr.map((t) => t.traceId)).toEqual([target[0]!.traceId]);
    await b.shutdown();
  });

  it('gathers the matches of an attribute search once, not in each of its rounds, and counts none of a common value up to ATTRIBUTE_INDEX_SPANS', async () => {
    // Every span of 400 traces of 100 spans has env=prod: a search of 20 takes 20 rounds (one trace
    // each), and counting up to ATTRIBUTE_INDEX_SPANS matches in each made it ~5 times slower than
    // the walk (350 against 60 ms on this data); counting them once still cost a common value
    // several times the walk (1 M spans: 39 against 6 ms). The statements are counted as they are sent.
    const key = `env-${randomUUID()}`;
    const service = `big-traces-${randomUUID()}`;
    const base = BigInt(Date.now() - 3_600_000) * MS;
    const spans: SpanRow[] = [];
    for (let t = 0; t < 400; t++) spans.push(...makeTrace(100, { serviceName: service, startTimeUnixNano: base + BigInt(t) * 1000n * MS, attributes: [{ key, value: { stringValue: 'prod' } }] }));
    for (let i = 0; i < spans.length; i += 4000) await mustWrite(main, batchOf('traces', spans.slice(i, i + 4000)));
    const sent = vi.spyOn(pg.Client.prototype, 'query');
    try {
      const found = await main.searchTraces(TENANT, { service, limit: 20, startNano: 0n, attributes: [{ key, value: 'prod' }] });
      // The 20 newest traces, one a round.
      expect(found.map((t) => t.traceId)).toEqual(Array.from({ length: 20 }, (_, k) => spans[(399 - k) * 100]!.traceId));
      const texts = sent.mock.calls.map(([sql]) => (typeof sql === 'string' ? sql : ''));
      expect(texts.filter((sql) => sql.includes(`LIMIT ${ATTRIBUTE_INDEX_SPANS}`))).toEqual([]);
      // One gathering of the matches from the attribute index (up to ATTRIBUTE_PROBE_SPANS), for the search.
      expect(texts.filter((sql) => sql.includes('count(*) OVER ()'))).toHaveLength(1);
    } finally {
      sent.mockRestore();
    }
  });

  it('finds the newest traces with an attribute, rare, common, or common only among older spans, sorted from the attribute index or walked by time alike', async () => {
    // A search's first round gathers up to ATTRIBUTE_PROBE_SPANS matches from the GIN index (rare),
    // else reads the newest ATTRIBUTE_WINDOW_SPANS spans (common), else gathers up to
    // ATTRIBUTE_INDEX_SPANS matches (old: common only among older spans), else walks the time
    // index (many). Each must answer the newest traces, in order, within the bounds.
    const key = `k-${randomUUID()}`;
    const service = `attr-svc-${randomUUID()}`;
    const base = BigInt(Date.now() - 3_600_000) * MS;
    const spans: SpanRow[] = [];
    const traces = Math.ceil((ATTRIBUTE_INDEX_SPANS + ATTRIBUTE_WINDOW_SPANS) / 3) + 100;
    // Traces of 3 spans each, one a second; every span has key=common; every 7th trace key=rare on
    // its last span only; every span of the oldest traces key.old=old (fewer than
    // ATTRIBUTE_INDEX_SPANS) and key.many=many (as many), none among the newest ATTRIBUTE_WINDOW_SPANS.
    const oldTraces = Math.ceil(ATTRIBUTE_INDEX_SPANS / 3) - 100;
    const manyTraces = traces - Math.ceil(ATTRIBUTE_WINDOW_SPANS / 3) - 50;
    for (let t = 0; t < traces; t++) {
      const trace = makeTrace(3, { serviceName: service, startTimeUnixNano: base + BigInt(t) * 1000n * MS, attributes: [{ key, value: { stringValue: 'common' } }] });
      if (t % 7 === 0) trace[2]!.attributes = [{ key, value: { stringValue: 'common' } }, { key: `${key}.rare`, value: { stringValue: 'rare' } }];
      for (const s of trace) {
        if (t < oldTraces) s.attributes = [...s.attributes, { key: `${key}.old`, value: { stringValue: 'old' } }];
        if (t < manyTraces) s.attributes = [...s.attributes, { key: `${key}.many`, value: { stringValue: 'many' } }];
      }
      spans.push(...trace);
    }
    expect(Math.floor(ATTRIBUTE_WINDOW_SPANS / 3) + 1).toBeLessThan(traces - manyTraces);
    expect([oldTraces * 3 < ATTRIBUTE_INDEX_SPANS, manyTraces * 3 >= ATTRIBUTE_INDEX_SPANS, Math.ceil(traces / 7) < ATTRIBUTE_PROBE_SPANS]).toEqual([true, true, true]);
    for (let i = 0; i < spans.length; i += 2000) await mustWrite(main, batchOf('traces', spans.slice(i, i + 2000)));
    const expected = (match: (s: SpanRow) => boolean, limit: number, end?: bigint): string[] => {
      const newest = new Map<string, bigint>();
      for (const s of spans) if (match(s) && (end === undefined || s.startTimeUnixNano <= end) && (newest.get(s.traceId) ?? -1n) < s.startTimeUnixNano) newest.set(s.traceId, s.startTimeUnixNano);
      return [...newest].sort((a, b) => (a[1] > b[1] ? -1 : 1)).slice(0, limit).map(([id]) => id);
    };
    const has = (k: string) => (s: SpanRow): boolean => s.attributes.some((a) => a.key === k);
    const found = async (q: Partial<TraceQuery>): Promise<string[]> => (await main.searchTraces(TENANT, { limit: 20, startNano: 0n, ...q })).map((t) => t.traceId);
    const common = [{ key, value: 'common' }];
    const rare = [{ key: `${key}.rare`, value: 'rare' }];
    const old = [{ key: `${key}.old`, value: 'old' }];
    const many = [{ key: `${key}.many`, value: 'many' }];
    const end = base + 2000n * 1000n * MS + 500n;
    expect(await found({ attributes: common, limit: 7 })).toEqual(expected(() => true, 7));
    expect(await found({ attributes: common, service, limit: 30, endNano: end })).toEqual(expected(() => true, 30, end));
    expect(await found({ attributes: common, limit: 700 })).toEqual(expected(() => true, 700));
    expect(await found({ attributes: rare, limit: 25 })).toEqual(expected(has(`${key}.rare`), 25));
    expect(await found({ attributes: rare, service, limit: 25, endNano: end })).toEqual(expected(has(`${key}.rare`), 25, end));
    expect(await found({ attributes: [...rare, ...common], limit: 1000 })).toEqual(expected(has(`${key}.rare`), 1000));
    expect(await found({ attributes: old, limit: 25 })).toEqual(expected(has(`${key}.old`), 25));
    expect(await found({ attributes: [...old, ...common, ...many], service, limit: 30 })).toEqual(expected(has(`${key}.old`), 30));
    expect(await found({ attributes: many, limit: 25 })).toEqual(expected(has(`${key}.many`), 25));
    expect(await found({ attributes: [...many, ...rare], limit: 40 })).toEqual(expected((s) => has(`${key}.many`)(s) && has(`${key}.rare`)(s), 40));
    expect(await found({ attributes: [{ key: `${key}.rare`, value: 'none' }] })).toEqual([]);
  });

  it('routes rows far outside the partition window to the default partition, and gives them a partition when the window reaches them', async () => {
    const far = makeSpan({ startTimeUnixNano: dayStart(today() + 40) + 5n });
    const ancient = makeSpan({ startTimeUnixNano: 1_000_000_000n });
    await mustWrite(main, batchOf('traces', [far, ancient]));
    const where = await sql<{ part: string }>(url, `SELECT tableoid::regclass::text AS part FROM tracehouse.spans WHERE span_id = ANY($1) ORDER BY 1`, [
      [Buffer.from(far.spanId, 'hex'), Buffer.from(ancient.spanId, 'hex')],
    ]);
    expect(where.map((r) => r.part)).toEqual(['tracehouse.spans_default', 'tracehouse.spans_default']);
    expect(await main.getTrace(TENANT, far.traceId)).toHaveLength(1);

    // An instance whose window covers day +40 (ahead 45 days) creates that partition and moves the row.
    const ahead = backend(url, { 'storage.postgres.partitionsAheadDays': '45' });
    await ahead.start();
    await ahead.shutdown();
    const moved = await sql<{ part: string }>(url, `SELECT tableoid::regclass::text AS part FROM tracehouse.spans WHERE span_id = $1`, [Buffer.from(far.spanId, 'hex')]);
    expect(moved.map((r) => r.part)).toEqual([`tracehouse.spans_p${ymd(today() + 40)}`]);
    expect(await main.getTrace(TENANT, far.traceId)).toHaveLength(1);
  });
});

describe('postgres concurrency and maintenance', () => {
  it('creates partitions once when 3 writers bring the same new days at once', async () => {
    const url = await createTestDatabase('pgconcurrent');
    const writers = [backend(url), backend(url), backend(url)];
    await Promise.all(writers.map((w) => w.start()));
    try {
      // Late and early days none of the writers created ahead (ahead is 3 days).
      const days = [today() - 6, today() - 5, today() - 1, today() + 5, today() + 8];
      const batches = writers.map((_w, i) =>
        days.flatMap((d) => makeTrace(4, { serviceName: `w${i}`, startTimeUnixNano: dayStart(d) + 1000n * MS })),
      );
      const logBatches = writers.map((_w, i) => days.map((d) => makeLog({ serviceName: `w${i}`, timeUnixNano: dayStart(d) + 5n })));
      await Promise.all(
        writers.flatMap((w, i) => [mustWrite(w, batchOf('traces', batches[i]!)), mustWrite(w, batchOf('logs', logBatches[i]!))]),
      );
      const spans = await partitionsOf(url, 'spans');
      const logs = await partitionsOf(url, 'logs');
      for (const d of days) {
        expect(spans.filter((p) => p === `spans_p${ymd(d)}`)).toHaveLength(1);
        expect(logs.filter((p) => p === `logs_p${ymd(d)}`)).toHaveLength(1);
      }
      const inDefault = await sql<{ n: string }>(url, 'SELECT count(*)::text AS n FROM tracehouse.spans_default');
      expect(inDefault[0]!.n).toBe('0');
      const total = await sql<{ n: string }>(url, 'SELECT count(*)::text AS n FROM tracehouse.spans');
      expect(total[0]!.n).toBe(String(3 * days.length * 4));
      const logTotal = await sql<{ n: string }>(url, 'SELECT count(*)::text AS n FROM tracehouse.logs');
      expect(logTotal[0]!.n).toBe(String(3 * days.length));
    } finally {
      await Promise.all(writers.map((w) => w.shutdown()));
    }
  });

  it('runs migrations once when 3 instances start together, and refuses an unmigrated schema without autoMigrate', async () => {
    const url = await createTestDatabase('pgmigrate');
    const manual = backend(url, { 'storage.postgres.autoMigrate': 'false' });
    await expect(manual.start()).rejects.toThrow(/tracehouse migrate/);
    await manual.shutdown();

    const instances = [backend(url), backend(url), backend(url)];
    await Promise.all(instances.map((b) => b.start()));
    await Promise.all(instances.map((b) => b.migrate!()));
    const versions = await sql<{ version: number }>(url, 'SELECT version FROM tracehouse.schema_migrations ORDER BY version');
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3]);
    const s = makeSpan();
    await mustWrite(instances[2]!, batchOf('traces', [s]));
    expect(await instances[0]!.getTrace(TENANT, s.traceId)).toHaveLength(1);
    await Promise.all(instances.map((b) => b.shutdown()));

    // Another schema in the same database is independent; migrate() works without start().
    const other = backend(url, { 'storage.postgres.schema': 'Other Schema' });
    await other.migrate!();
    await other.shutdown();
    const started = backend(url, { 'storage.postgres.schema': 'Other Schema', 'storage.postgres.autoMigrate': 'false' });
    await started.start();
    expect((await started.health()).ok).toBe(true);
    await started.shutdown();
  });

  it('drops whole partitions past retention, once, when several instances run it together', async () => {
    const url = await createTestDatabase('pgretention');
    const keeper = backend(url, { 'storage.postgres.retentionDays': '0' });
    await keeper.start();
    const old = makeTrace(2, { startTimeUnixNano: dayStart(today() - 9) + 7n });
    const edge = makeTrace(2, { startTimeUnixNano: dayStart(today() - 3) + 7n });
    const fresh = makeTrace(2, { startTimeUnixNano: dayStart(today()) + 7n });
    const ancient = makeSpan({ startTimeUnixNano: dayStart(today() - 400) });
    await mustWrite(keeper, batchOf('traces', [...old, ...edge, ...fresh, ancient]));
    await mustWrite(keeper, batchOf('logs', [makeLog({ timeUnixNano: dayStart(today() - 9) }), makeLog({ timeUnixNano: dayStart(today()) })]));
    // Another tenant's fresh trace under the old trace's id: retention of the old one leaves it be.
    const theirs = makeTrace(2, { traceId: old[0]!.traceId, startTimeUnixNano: dayStart(today()) + 7n });
    await mustWrite(keeper, { ...batchOf('traces', theirs), tenant: 'other' });
    await keeper.shutdown();
    expect(await partitionsOf(url, 'spans')).toContain(`spans_p${ymd(today() - 9)}`);

    // Retention 3 days keeps today and the 3 days before it.
    const instances = [0, 1, 2].map(() => backend(url, { 'storage.postgres.retentionDays': '3' }));
    await Promise.all(instances.map((b) => b.start()));
    try {
      const spans = await partitionsOf(url, 'spans');
      expect(spans).not.toContain(`spans_p${ymd(today() - 9)}`);
      expect(spans).toContain(`spans_p${ymd(today() - 3)}`);
      expect(spans).toContain(`spans_p${ymd(today())}`);
      expect(await partitionsOf(url, 'logs')).not.toContain(`logs_p${ymd(today() - 9)}`);
      const b = instances[0]!;
      expect(await b.getTrace(TENANT, old[0]!.traceId)).toEqual([]);
      expect(await b.getTrace(TENANT, ancient.traceId)).toEqual([]);
      expect(await b.getTrace(TENANT, edge[0]!.traceId)).toHaveLength(2);
      expect(await b.getTrace(TENANT, fresh[0]!.traceId)).toHaveLength(2);
      expect(await b.getTrace('other', old[0]!.traceId)).toHaveLength(2);
      const idx = await sql<{ n: string }>(url, 'SELECT count(*)::text AS n FROM tracehouse.trace_index');
      expect(idx[0]!.n).toBe('3');
      expect(await b.searchLogs(TENANT, { limit: 10 })).toHaveLength(1);
      // Data older than retention that arrives late goes to the default partition, which
      // retention also empties.
      const late = makeSpan({ startTimeUnixNano: dayStart(today() - 8) });
      await mustWrite(b, batchOf('traces', [late]));
      expect(await partitionsOf(url, 'spans')).not.toContain(`spans_p${ymd(today() - 8)}`);
    } finally {
      await Promise.all(instances.map((b) => b.shutdown()));
    }
  });

  it('is safe to shut down before start and twice; refuses writes when not running', async () => {
    const url = await createTestDatabase('pglifecycle');
    const b = backend(url);
    await b.shutdown();
    await b.shutdown();
    const c = backend(url);
    const r = await c.write(batchOf('traces', [makeSpan()]));
    expect(r.kind).toBe('retryable');
    expect((await c.health()).ok).toBe(false);
    await c.start();
    expect((await c.health()).ok).toBe(true);
    await c.shutdown();
    expect((await c.write(batchOf('traces', [makeSpan()]))).kind).toBe('retryable');
  });

  it('leaves hex ids it cannot store to the normalizer: the encoder refuses them', () => {
    const enc = createEncoder({ format: 'binary' });
    expect(() => enc.encodeSpans([makeSpan({ traceId: 'XYZ' + hex(14) })])).toThrow(/traceId/);
  });
});

describe('postgres under slow writes, and its storage metrics', () => {
  let url: string;
  let b: StorageBackend;
  beforeAll(async () => {
    url = await createTestDatabase('pgslow');
    // As few write connections as writes in flight: slow writes hold every one.
    b = backend(url, { 'storage.postgres.poolSize': '2' });
    await b.start();
  });
  afterAll(async () => {
    await b?.shutdown();
  });

  it('stays healthy and answers reads while every write connection waits (on a lock here; a slow disk, a long DDL)', async () => {
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE tracehouse.spans IN EXCLUSIVE MODE');
      const writes = [0, 1].map(() => b.write(batchOf('traces', [makeSpan()])));
      await new Promise((r) => setTimeout(r, 300));
      // Before, health timed out as "postgres unreachable" and reads as "timeout exceeded when trying to connect".
      expect(await b.health()).toEqual({ ok: true });
      expect(await b.searchLogs(TENANT, { limit: 10 })).toEqual([]);
      await blocker.query('COMMIT');
      for (const r of await Promise.all(writes)) expect(r.kind).toBe('success');
    } finally {
      await blocker.end();
    }
  });

  it('measures the oldest span without a sequential scan of the spans partitions', async () => {
    for (let i = 0; i < 4; i++) await mustWrite(b, batchOf('traces', Array.from({ length: 5000 }, () => makeSpan({ attributes: [], events: [], links: [] }))));
    await sql(url, 'ANALYZE tracehouse.spans');
    // The cumulative statistics are flushed at most once a second.
    const seqScans = async () => {
      await new Promise((r) => setTimeout(r, 1500));
      return Number((await sql<{ n: string }>(url, "SELECT coalesce(sum(seq_scan), 0)::text AS n FROM pg_stat_user_tables WHERE schemaname = 'tracehouse' AND relname LIKE 'spans_p%'"))[0]!.n);
    };
    const before = await seqScans();
    const stats = await (b as StorageBackend & StoreStats).stats();
    expect(await seqScans(), 'sequential scans of spans partitions by one stats() call').toBe(before);
    const oldest = (await sql<{ m: string }>(url, 'SELECT min(start_time_unix_nano)::text AS m FROM tracehouse.spans'))[0]!.m;
    expect(stats.signals.find((s) => s.signal === 'traces')?.oldestUnixNano).toBe(BigInt(oldest));
  });
});
