// The ClickHouse adapter against the real engine (chdb, in process): sharding, deduplication,
// the exporter-compatible schema, Grafana's queries, migrations, write results, exact round trips.
// One engine per file: every backend here is a set of databases in the one chdb directory.
import type { ClickHouseClient } from '@clickhouse/client';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyValue, KeyValue, LogRow, SpanRow } from '../../src/model/rows.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { shardOf } from '../../src/storage/clickhouse/encoder.ts';
import { createClickhouseBackend } from '../../src/storage/clickhouse/index.ts';
import { bootstrapStatements, COLUMN_TYPES, LOG_COLUMNS, maxTtlDays, migrations, TRACE_COLUMNS } from '../../src/storage/clickhouse/schema.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { chdbBackend, chdbClient, chdbConfig, exporter2023Logs, removeChdbDir, select, uniqueDatabase } from '../helpers/clickhouse.ts';
import { canonical, hex, makeLog, makeSpan, makeTrace, writeLogs, writeLogsAs, writeSpans } from '../helpers/rows.ts';
import { clickhouseOptions } from '../../src/storage/index.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

const MS = 1_000_000n;
let client: ClickHouseClient;
const backends: StorageBackend[] = [];

async function backend(databases: string[], flags: Record<string, string> = {}): Promise<StorageBackend> {
  const b = await chdbBackend(databases, flags);
  backends.push(b);
  return b;
}

beforeAll(async () => {
  client = await chdbClient();
});

afterAll(async () => {
  for (const b of backends) await b.shutdown();
  await client.close();
  removeChdbDir();
});

describe('clickhouse sharding', () => {
  const dbs = [uniqueDatabase('shard0'), uniqueDatabase('shard1'), uniqueDatabase('shard2')];
  let b: StorageBackend;
  const service = 'svc-' + randomUUID();
  const now = BigInt(Date.now()) * MS;
  const traces = Array.from({ length: 30 }, (_, i) => makeTrace(3, { serviceName: service, startTimeUnixNano: now - BigInt(i) * 1000n * MS, endTimeUnixNano: now - BigInt(i) * 1000n * MS + 50n * MS }));

  beforeAll(async () => {
    b = await backend(dbs);
    expect(b.encoder).toEqual({ name: 'clickhouse', options: { partitions: 3 } });
    await writeSpans(b, traces.flat());
    await writeLogs(b, traces.map((t, i) => makeLog({ serviceName: service, traceId: t[0]!.traceId, timeUnixNano: now - BigInt(i) * MS })));
  });

  it('keeps every trace whole on exactly the shard its trace id hashes to', async () => {
    const where = new Map<string, Set<number>>();
    for (const [i, db] of dbs.entries()) {
      for (const [id, n] of await select(client, `SELECT TraceId, count() FROM ${db}.otel_traces GROUP BY TraceId`)) {
        expect(Number(n)).toBe(3);
        where.set(id as string, (where.get(id as string) ?? new Set()).add(i));
      }
    }
    expect(where.size).toBe(30);
    for (const t of traces) expect([...where.get(t[0]!.traceId)!]).toEqual([shardOf(t[0]!.traceId, 3)]);
    // Random ids land on every shard, and the logs went with their traces.
    expect(new Set([...where.values()].map((s) => [...s][0])).size).toBe(3);
    for (const [i, db] of dbs.entries()) {
      for (const [id] of await select(client, `SELECT TraceId FROM ${db}.otel_logs`)) expect(shardOf(id as string, 3)).toBe(i);
    }
  });

  it('merges reads from every shard, ordering and limiting after the merge', async () => {
    const found = await b.searchTraces(TENANT, { service, limit: 7 });
    expect(found.map((t) => t.traceId)).toEqual(traces.slice(0, 7).map((t) => t[0]!.traceId));
    expect(found.every((t) => t.spanCount === 3 && t.rootSpanName === 'GET /items')).toBe(true);
    expect(await b.searchTraces(TENANT, { service, limit: 100 })).toHaveLength(30);
    for (const t of [traces[0]!, traces[29]!]) expect(canonical(await b.getTrace(TENANT, t[0]!.traceId))).toEqual(expect.arrayContaining(canonical(t)));
    const logs = await b.searchLogs(TENANT, { service, limit: 5 });
    expect(logs.map((l) => l.traceId)).toEqual(traces.slice(0, 5).map((t) => t[0]!.traceId));
    expect(await b.searchLogs(TENANT, { traceId: traces[12]![0]!.traceId.toUpperCase(), limit: 5 })).toHaveLength(1);
  });

  it('searches a trace split over two shards (a shard added while it was written) as one trace', async () => {
    const [first, added] = [uniqueDatabase('grow0'), uniqueDatabase('grow1')];
    const service = 'svc-' + randomUUID();
    const t = BigInt(Date.now()) * MS;
    // A trace id that the two-shard store routes to the added shard.
    let traceId = hex(16);
    while (shardOf(traceId, 2) !== 1) traceId = hex(16);
    const root = makeSpan({ traceId, serviceName: service, name: 'root', startTimeUnixNano: t, endTimeUnixNano: t + 100n * MS });
    const before = makeSpan({ traceId, parentSpanId: root.spanId, serviceName: service, name: 'before', startTimeUnixNano: t + MS, endTimeUnixNano: t + 2n * MS });
    const after = makeSpan({ traceId, parentSpanId: root.spanId, serviceName: service, name: 'after', startTimeUnixNano: t + 150n * MS, endTimeUnixNano: t + 300n * MS, statusCode: 2 });
    const other = makeTrace(2, { serviceName: service, startTimeUnixNano: t - 1000n * MS, endTimeUnixNano: t - 999n * MS });
    await writeSpans(await backend([first]), [root, before, ...other]);
    const grown = await backend([first, added]);
    await writeSpans(grown, [after]);
    expect(await select(client, `SELECT count() FROM ${added}.otel_traces`)).toEqual([[1]]);

    expect(await grown.readTrace(TENANT, traceId, 10)).toMatchObject({ total: 3 });
    const found = await grown.searchTraces(TENANT, { service, limit: 10 });
    expect(found).toEqual([
      { traceId, rootServiceName: service, rootSpanName: 'root', startTimeUnixNano: t, durationNano: 300n * MS, spanCount: 3, hasError: true },
      expect.objectContaining({ traceId: other[0]!.traceId, spanCount: 2 }),
    ]);
    // One slot of the limit per trace: the split trace does not crowd out the next one.
    expect((await grown.searchTraces(TENANT, { service, limit: 2 })).map((x) => x.traceId)).toEqual([traceId, other[0]!.traceId]);
    expect((await grown.searchTraces(TENANT, { service, name: 'before', limit: 10 })).map((x) => [x.traceId, x.spanCount, x.rootSpanName])).toEqual([[traceId, 3, 'root']]);
  });

  // A trace read cut at a byte bound keeps the earliest spans (StoreReader.readTrace): each shard
  // sent its earliest within the bound, and a later span of the other shard filled the room one
  // shard's bound had left, so the answer had a span later than one it left out, and a warning
  // calling its spans the earliest.
  it('cuts a trace split over two shards at a byte bound to its earliest spans', async () => {
    const [first, added] = [uniqueDatabase('cut0'), uniqueDatabase('cut1')];
    const service = 'svc-' + randomUUID();
    const t = BigInt(Date.now()) * MS;
    let traceId = hex(16);
    while (shardOf(traceId, 2) !== 1) traceId = hex(16);
    const root = makeSpan({ traceId, serviceName: service, name: 'root', startTimeUnixNano: t, endTimeUnixNano: t + 100n * MS });
    const big = makeSpan({ traceId, parentSpanId: root.spanId, serviceName: service, name: 'big', startTimeUnixNano: t + MS, endTimeUnixNano: t + 2n * MS, attributes: [{ key: 'big', value: { stringValue: 'b'.repeat(20_000) } }] });
    const later = makeSpan({ traceId, parentSpanId: root.spanId, serviceName: service, name: 'later', startTimeUnixNano: t + 50n * MS, endTimeUnixNano: t + 60n * MS });
    await writeSpans(await backend([first]), [root, big]);
    const grown = await backend([first, added]);
    await writeSpans(grown, [later]);
    const read = await grown.readTrace(TENANT, traceId, 10, 10_000);
    expect([read.spans.map((s) => s.name), read.total, read.cut]).toEqual([['root'], 3, true]);
    const whole = await grown.readTrace(TENANT, traceId, 10, 100_000);
    expect([whole.spans.map((s) => s.name), whole.total, whole.cut ?? false]).toEqual([['root', 'big', 'later'], 3, false]);
  });
});

describe('clickhouse deduplication', () => {
  it('keeps one copy of a batch inserted twice with its token, two with different tokens', async () => {
    const db = uniqueDatabase('dedup');
    const b = await backend([db]);
    const spans = makeTrace(5);
    const logs = [makeLog(), makeLog()];
    const token = randomUUID();
    await writeSpans(b, spans, token);
    await writeSpans(b, spans, token);
    await writeLogs(b, logs, token);
    await writeLogs(b, logs, token);
    expect(await select(client, `SELECT count() FROM ${db}.otel_traces`)).toEqual([[5]]);
    expect(await select(client, `SELECT count() FROM ${db}.otel_logs`)).toEqual([[2]]);
    await writeSpans(b, spans, randomUUID());
    expect(await select(client, `SELECT count() FROM ${db}.otel_traces`)).toEqual([[10]]);
  });

  it('reads a trace a client sent twice (two batch ids, two copies stored) with each span once', async () => {
    const db = uniqueDatabase('resent');
    const b = await backend([db]);
    const spans = makeTrace(5, { serviceName: 'resent' });
    await writeSpans(b, spans, randomUUID());
    await writeSpans(b, spans.slice(0, 3), randomUUID());
    expect(await select(client, `SELECT count() FROM ${db}.otel_traces`)).toEqual([[8]]);
    const got = await b.getTrace(TENANT, spans[0]!.traceId);
    expect(got.map((s) => s.spanId).sort()).toEqual(spans.map((s) => s.spanId).sort());
    const [summary] = await b.searchTraces(TENANT, { service: 'resent', limit: 10 });
    expect(summary).toMatchObject({ traceId: spans[0]!.traceId, spanCount: 5 });
  });

  it('takes concurrent writes on one shard (the writer keeps several batches in flight)', async () => {
    const db = uniqueDatabase('concurrent');
    const b = await backend([db]);
    const traces = Array.from({ length: 8 }, () => makeTrace(50));
    await Promise.all(traces.map((t) => writeSpans(b, t)));
    expect(await select(client, `SELECT count(), uniqExact(TraceId) FROM ${db}.otel_traces`)).toEqual([[400, 8]]);
  });

  it('deduplicates with async inserts too (async_insert=1, wait_for_async_insert=1)', async () => {
    const db = uniqueDatabase('async');
    const b = await backend([db], { 'storage.clickhouse.asyncInsert': 'true' });
    const spans = makeTrace(4);
    const token = randomUUID();
    await writeSpans(b, spans, token);
    await writeSpans(b, spans, token);
    // wait_for_async_insert=1: the rows are there when the write returns.
    expect(await select(client, `SELECT count() FROM ${db}.otel_traces`)).toEqual([[4]]);
    expect(await b.getTrace(TENANT, spans[0]!.traceId)).toHaveLength(4);
  });
});

// The OpenTelemetry Collector ClickHouse exporter's tables (shared/reference/clickhouse-schema.md).
const MAP = 'Map(LowCardinality(String), String)';
const REFERENCE: Record<string, [string, string][]> = {
  otel_traces: [
    ['Timestamp', 'DateTime64(9)'],
    ['TraceId', 'String'],
    ['SpanId', 'String'],
    ['ParentSpanId', 'String'],
    ['TraceState', 'String'],
    ['SpanName', 'LowCardinality(String)'],
    ['SpanKind', 'LowCardinality(String)'],
    ['ServiceName', 'LowCardinality(String)'],
    ['ResourceAttributes', MAP],
    ['ScopeName', 'String'],
    ['ScopeVersion', 'String'],
    ['SpanAttributes', MAP],
    ['Duration', 'UInt64'],
    ['StatusCode', 'LowCardinality(String)'],
    ['StatusMessage', 'String'],
    ['Events.Timestamp', 'Array(DateTime64(9))'],
    ['Events.Name', 'Array(LowCardinality(String))'],
    ['Events.Attributes', `Array(${MAP})`],
    ['Links.TraceId', 'Array(String)'],
    ['Links.SpanId', 'Array(String)'],
    ['Links.TraceState', 'Array(String)'],
    ['Links.Attributes', `Array(${MAP})`],
  ],
  otel_traces_trace_id_ts: [
    ['TraceId', 'String'],
    ['Start', 'SimpleAggregateFunction(min, DateTime)'],
    ['End', 'SimpleAggregateFunction(max, DateTime)'],
  ],
  otel_logs: [
    ['Timestamp', 'DateTime64(9)'],
    ['TimestampTime', 'DateTime'],
    ['TraceId', 'String'],
    ['SpanId', 'String'],
    ['TraceFlags', 'UInt8'],
    ['SeverityText', 'LowCardinality(String)'],
    ['SeverityNumber', 'UInt8'],
    ['ServiceName', 'LowCardinality(String)'],
    ['Body', 'String'],
    ['ResourceSchemaUrl', 'LowCardinality(String)'],
    ['ScopeSchemaUrl', 'LowCardinality(String)'],
    ['ResourceAttributes', MAP],
    ['ScopeAttributes', MAP],
    ['LogAttributes', MAP],
    ['ScopeName', 'String'],
    ['ScopeVersion', 'LowCardinality(String)'],
    ['EventName', 'String'],
  ],
};

describe('clickhouse schema', () => {
  const db = uniqueDatabase('schema');
  let b: StorageBackend;
  beforeAll(async () => {
    b = await backend([db]);
  });

  it('creates the exporter tables with the reference column names and types (plus Tracehouse extras)', async () => {
    for (const [table, cols] of Object.entries(REFERENCE)) {
      const got = new Map((await select(client, 'SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}', { db, t: table })).map((r) => [r[0] as string, r[1] as string]));
      for (const [name, type] of cols) expect([name, got.get(name)]).toEqual([name, type]);
      const extra = [...got.keys()].filter((n) => !cols.some(([c]) => c === n));
      expect(extra).toEqual(table === 'otel_traces' ? ['TracehouseExtra', 'TenantId'] : table === 'otel_logs' ? ['ObservedTimestamp', 'TracehouseExtra', 'TenantId'] : []);
    }
    const tables = await select(client, 'SELECT name, engine, partition_key, sorting_key, primary_key FROM system.tables WHERE database = {db:String} ORDER BY name', { db });
    expect(tables).toEqual([
      ['otel_logs', 'MergeTree', 'toDate(TimestampTime)', 'ServiceName, TimestampTime, Timestamp', 'ServiceName, TimestampTime'],
      ['otel_traces', 'MergeTree', 'toDate(Timestamp)', 'ServiceName, SpanName, toDateTime(Timestamp), Timestamp', 'ServiceName, SpanName, toDateTime(Timestamp)'],
      ['otel_traces_trace_id_ts', 'AggregatingMergeTree', 'toStartOfWeek(Start)', 'TraceId', 'TraceId'],
      ['otel_traces_trace_id_ts_mv', 'MaterializedView', '', '', ''],
      ['tracehouse_migrations', 'MergeTree', '', 'Version', 'Version'],
    ]);
    const indexes = await select(client, "SELECT table, name, type_full FROM system.data_skipping_indices WHERE database = {db:String} AND table = 'otel_traces' ORDER BY name", { db });
    expect(indexes.map((r) => `${r[1]} ${r[2]}`)).toEqual([
      'idx_duration minmax',
      'idx_lower_span_name tokenbf_v1(32768, 3, 0)',
      'idx_res_attr_key bloom_filter(0.01)',
      'idx_res_attr_value bloom_filter(0.01)',
      'idx_span_attr_key bloom_filter(0.01)',
      'idx_span_attr_value bloom_filter(0.01)',
      'idx_tenant set(256)',
      'idx_trace_id bloom_filter(0.001)',
    ]);
    // The encoder's RowBinary types are the tables' own: inserts go in as they are, not converted.
    for (const [table, ours] of [['otel_traces', COLUMN_TYPES.traces], ['otel_logs', COLUMN_TYPES.logs]] as const) {
      const got = new Map((await select(client, 'SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}', { db, t: table })).map((r) => [r[0] as string, r[1] as string]));
      expect(Object.keys(ours).sort()).toEqual([...(table === 'otel_traces' ? TRACE_COLUMNS : LOG_COLUMNS)].sort());
      for (const [c, type] of Object.entries(ours)) expect([c, got.get(c)]).toEqual([c, type]);
    }
    // Rows written before the tenant column existed read as the default tenant's (the column DEFAULT).
    const [[fallback]] = (await select(client, 'SELECT default_expression FROM system.columns WHERE database = {db:String} AND table = {t:String} AND name = {c:String}', { db, t: 'otel_logs', c: 'TenantId' })) as [[string]];
    expect(fallback).toBe("'default'");
  });

  it('writes the exporter columns the way the exporter does', async () => {
    const s = makeSpan({ kind: 2, statusCode: 2, statusMessage: 'bad', durationNano: 5_000_001n });
    await writeSpans(b, [s]);
    const [row] = await select(
      client,
      `SELECT SpanKind, StatusCode, toString(Duration), SpanAttributes['int.big'], SpanAttributes['bool'], SpanAttributes['double'], SpanAttributes['array'], SpanAttributes['kvlist'], ResourceAttributes['host.cores'], ServiceName, toString(toUnixTimestamp64Nano(Timestamp)), Events.Name, Links.TraceId FROM ${db}.otel_traces WHERE TraceId = {id:String}`,
      { id: s.traceId },
    );
    expect(row).toEqual([
      'Server',
      'Error',
      '5000001',
      '9223372036854775807',
      'true',
      '3.25',
      '["a",2,[false]]',
      '{"inner":{"deep":-1.5}}',
      '8',
      s.serviceName,
      String(s.startTimeUnixNano),
      ['evt'],
      [s.links[0]!.traceId],
    ]);
    const l = makeLog({ body: { stringValue: 'plain body' }, severityNumber: 17, severityText: 'ERROR' });
    await writeLogs(b, [l]);
    expect(
      await select(client, `SELECT Body, SeverityNumber, SeverityText, TraceFlags, LogAttributes['int.big'], TimestampTime = toDateTime(Timestamp), EventName FROM ${db}.otel_logs WHERE TraceId = {id:String}`, { id: l.traceId }),
    ).toEqual([['plain body', 17, 'ERROR', 1, '9223372036854775807', 1, 'app.event']]);
    // An int64 inside an array or a map keeps its digits, as Go's encoding/json writes it.
    const big = makeSpan({
      attributes: [
        { key: 'ids', value: { arrayValue: { values: [{ intValue: '9223372036854775807' }, { intValue: '9007199254740993' }] } } },
        { key: 'm', value: { kvlistValue: { values: [{ key: 'n', value: { intValue: '-9223372036854775808' } }] } } },
      ],
    });
    await writeSpans(b, [big]);
    expect(await select(client, `SELECT SpanAttributes['ids'], SpanAttributes['m'] FROM ${db}.otel_traces WHERE TraceId = {id:String}`, { id: big.traceId })).toEqual([
      ['[9223372036854775807,9007199254740993]', '{"n":-9223372036854775808}'],
    ]);
  });

  it("renders a kvlist's __proto__ key into the exporter's string map as Go's encoding/json does, not dropped", async () => {
    const inner: AnyValue = { kvlistValue: { values: [{ key: 'polluted', value: { boolValue: true } }] } };
    const s = makeSpan({
      attributes: [
        { key: 'm', value: { kvlistValue: { values: [{ key: '__proto__', value: inner }, { key: 'a', value: { stringValue: 'x' } }] } } },
        { key: 'n', value: { kvlistValue: { values: [{ key: '__proto__', value: { stringValue: 's' } }] } } },
      ],
    });
    await writeSpans(b, [s]);
    expect(await select(client, `SELECT SpanAttributes['m'], SpanAttributes['n'] FROM ${db}.otel_traces WHERE TraceId = {id:String}`, { id: s.traceId })).toEqual([
      ['{"__proto__":{"polluted":true},"a":"x"}', '{"__proto__":"s"}'],
    ]);
  });

  it('generates cluster DDL the engine parses', async () => {
    const o = { database: 'otel', tracesTable: 'otel_traces', logsTable: 'otel_logs', ttlDays: 30, codec: 'ZSTD(1)', cluster: 'prod' };
    const statements = [...bootstrapStatements(o), ...migrations(o).flatMap((m) => m.statements)];
    // Bootstrap 2, version 1: 4 tables + 3 Distributed, version 2: tenant column and index on 2
    // local tables, column on 2 Distributed, version 3: the lookup table's TTL, version 4: 4 columns
    // on the local tables and on the Distributed ones, version 6: 2 columns on the local spans table
    // and on its Distributed one.
    expect(statements).toHaveLength(28);
    for (const q of statements) {
      const [[formatted]] = (await select(client, 'SELECT formatQuery({q:String})', { q })) as [[string]];
      expect(formatted).toContain('ON CLUSTER prod');
    }
  });
});

describe('clickhouse: queries Grafana issues', () => {
  const db = uniqueDatabase('grafana');
  const service = 'svc-' + randomUUID();
  const trace = makeTrace(3, { serviceName: service, attributes: [{ key: 'http.route', value: { stringValue: '/api/cart' } }, { key: 'http.status_code', value: { intValue: '500' } }] });
  beforeAll(async () => {
    const b = await backend([db]);
    await writeSpans(b, trace);
    await writeLogs(b, [makeLog({ serviceName: service, traceId: trace[0]!.traceId, body: { stringValue: 'cart failed: timeout' } })]);
  });

  it('trace by id, bounded by the lookup table (the data source trace view)', async () => {
    const rows = await select(
      client,
      `WITH {id:String} AS trace_id,
  (SELECT min(Start) FROM ${db}.otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_start,
  (SELECT max(End) + 1 FROM ${db}.otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_end
SELECT "TraceId" AS traceID, "SpanId" AS spanID, "ParentSpanId" AS parentSpanID, "ServiceName" AS serviceName, "SpanName" AS operationName,
  "Timestamp" AS startTime, multiply("Duration", 0.000001) AS duration,
  arrayMap(key -> map('key', key, 'value', "SpanAttributes"[key]), mapKeys("SpanAttributes")) AS tags,
  arrayMap(key -> map('key', key, 'value', "ResourceAttributes"[key]), mapKeys("ResourceAttributes")) AS serviceTags,
  arrayMap((name, timestamp, attributes) -> tuple(name, toString(toUnixTimestamp64Milli(timestamp)), arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)))::Tuple(name String, timestamp String, fields Array(Map(String, String))), "Events.Name", "Events.Timestamp", "Events.Attributes") AS logs,
  arrayMap((traceID, spanID, attributes) -> tuple(traceID, spanID, arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)))::Tuple(traceID String, spanID String, tags Array(Map(String, String))), "Links.TraceId", "Links.SpanId", "Links.Attributes") AS references
FROM ${db}.otel_traces
WHERE traceID = trace_id AND startTime >= trace_start AND startTime <= trace_end AND (Duration > 0)
ORDER BY startTime ASC LIMIT 1000`,
      { id: trace[0]!.traceId },
    );
    expect(rows.map((r) => r[1])).toEqual(trace.map((s) => s.spanId));
    expect(rows[0]![7]).toContainEqual({ key: 'http.status_code', value: '500' });
  });

  it('trace search by ServiceName, SpanName, SpanAttributes and Duration', async () => {
    const rows = await select(
      client,
      `SELECT TraceId, SpanName, toString(Duration) FROM ${db}.otel_traces
WHERE ServiceName = {svc:String} AND SpanName = 'GET /items' AND SpanAttributes['http.route'] = '/api/cart'
  AND SpanAttributes['http.status_code'] = '500' AND Duration > 1000000 AND Timestamp >= now() - INTERVAL 1 HOUR
ORDER BY Timestamp DESC LIMIT 100`,
      { svc: service },
    );
    expect(rows).toEqual([[trace[0]!.traceId, 'GET /items', String(trace[0]!.durationNano)]]);
    const services = await select(client, `SELECT DISTINCT ServiceName FROM ${db}.otel_traces WHERE Timestamp >= now() - INTERVAL 1 DAY`);
    expect(services).toEqual([[service]]);
  });

  it('logs by service and time, and logs of a trace', async () => {
    const rows = await select(
      client,
      `SELECT Timestamp AS timestamp, Body AS body, SeverityText AS level, LogAttributes AS labels, TraceId AS traceID FROM ${db}.otel_logs
WHERE ServiceName = {svc:String} AND timestamp >= now() - INTERVAL 1 HOUR AND body ILIKE '%failed%' ORDER BY timestamp DESC LIMIT 1000`,
      { svc: service },
    );
    expect(rows.map((r) => [r[1], r[2], r[4]])).toEqual([['cart failed: timeout', 'INFO', trace[0]!.traceId]]);
    expect(await select(client, `SELECT count() FROM ${db}.otel_logs WHERE TraceId = {id:String}`, { id: trace[0]!.traceId })).toEqual([[1]]);
  });
});

describe('clickhouse writes and scans at the edges', () => {
  it('stores a batch whose rows fall on more than 100 days (a client with a bad clock, a copy of old data)', async () => {
    // PARTITION BY toDate(Timestamp): 101 days are 101 partitions, past ClickHouse's default limit
    // of 100 per insert, which failed the batch on every retry (TOO_MANY_PARTS, taken for overload).
    const b = await backend([uniqueDatabase('days')]);
    const base = 1_700_000_000_000_000_000n;
    const service = 'days-' + randomUUID();
    const spans = Array.from({ length: 101 }, (_, i) => makeSpan({ serviceName: service, startTimeUnixNano: base - BigInt(i) * 86_400_000_000_000n, endTimeUnixNano: base - BigInt(i) * 86_400_000_000_000n + 1000n }));
    await writeSpans(b, spans);
    expect(await b.searchTraces(TENANT, { service, limit: 200 })).toHaveLength(101);
  });

  it('scans log records of one time that differ only in severity each once, page by page', async () => {
    const b = await backend([uniqueDatabase('scankeys')]);
    // Each record in a request of its own, so each sits in its own part: their order is not fixed.
    for (let k = 0; k < 10; k++) {
      const service = 'scan-' + randomUUID();
      const a = makeLog({ serviceName: service, timeUnixNano: 1_650_000_000_000_000_000n + BigInt(k), severityNumber: 9, traceId: '', spanId: '' });
      for (const severityNumber of [9, 10, 11]) await writeLogs(b, [{ ...a, severityNumber }]);
      const got: number[] = [];
      let after: string | undefined;
      for (let page = 0; page < 10; page++) {
        const p = await b.scanLogs(TENANT, { service, limit: 1, ...(after === undefined ? {} : { after }) });
        got.push(...p.rows.map((r) => r.severityNumber));
        if (p.done) break;
        after = p.next;
      }
      expect(got.sort((x, y) => x - y), `round ${k}`).toEqual([9, 10, 11]);
    }
  });

  it('finds a span and a log record of 2200 by a search of their time, and lists the trace at its real start', async () => {
    // Timestamp holds 2106-02-07 for times past it (the exporter's keys wrap there), the exact
    // time is in TracehouseExtra: searches of the real time found nothing, lists showed 2106.
    const b = await backend([uniqueDatabase('c2106'), uniqueDatabase('c2106b')]);
    const t = 7_258_118_400_000_000_000n; // 2200-01-01
    const service = 'late-' + randomUUID();
    const span = makeSpan({ serviceName: service, startTimeUnixNano: t, endTimeUnixNano: t + 5n });
    const early = makeSpan({ serviceName: service, startTimeUnixNano: t - 1000n, endTimeUnixNano: t });
    const normal = makeSpan({ serviceName: service, startTimeUnixNano: 1_700_000_000_000_000_000n, endTimeUnixNano: 1_700_000_000_000_000_005n });
    const child = makeSpan({ serviceName: service + '-child', traceId: span.traceId, parentSpanId: span.spanId, startTimeUnixNano: t + 1n, endTimeUnixNano: t + 2n });
    await writeSpans(b, [span, early, normal, child]);
    await writeLogs(b, [makeLog({ serviceName: service, timeUnixNano: t }), makeLog({ serviceName: service, timeUnixNano: t - 1000n }), makeLog({ serviceName: service, timeUnixNano: 1_700_000_000_000_000_000n })]);
    const found = await b.searchTraces(TENANT, { service, startNano: t - 1n, endNano: t + 1n, limit: 5 });
    expect(found.map((s) => s.traceId)).toEqual([span.traceId]);
    expect(found[0]!.startTimeUnixNano).toBe(t);
    const logs = await b.searchLogs(TENANT, { service, startNano: t - 1n, endNano: t + 1n, limit: 5 });
    expect(logs.map((l) => l.timeUnixNano)).toEqual([t]);
    expect(await b.getDependencies(TENANT, { startNano: t - 1n, endNano: t + 1n })).toEqual([{ parent: service, child: service + '-child', callCount: 1 }]);
    expect(await b.getDependencies(TENANT, { startNano: t - 1000n * MS, endNano: t - 1n })).toEqual([]);
    // No range: newest first by the real times, at their real starts.
    const all = await b.searchTraces(TENANT, { service, limit: 5 });
    expect(all.map((s) => [s.traceId, s.startTimeUnixNano])).toEqual([
      [span.traceId, t],
      [early.traceId, t - 1000n],
      [normal.traceId, normal.startTimeUnixNano],
    ]);
    expect((await b.searchLogs(TENANT, { service, limit: 5 })).map((l) => l.timeUnixNano)).toEqual([t, t - 1000n, 1_700_000_000_000_000_000n]);
    // A range ending before 2106 leaves them out; one starting after them too.
    expect(await b.searchTraces(TENANT, { service, endNano: 4_000_000_000_000_000_000n, limit: 5 })).toHaveLength(1);
    expect(await b.searchTraces(TENANT, { service, startNano: t + 1n, limit: 5 })).toEqual([]);
    expect(await b.searchLogs(TENANT, { service, startNano: t + 1n, limit: 5 })).toEqual([]);
    // Export and copy: in the order of the real times, a page at a time, a range of the real times.
    for (const [range, want] of [
      [{}, [normal.spanId, early.spanId, span.spanId]],
      [{ startNano: t - 1n, endNano: t + 1n }, [span.spanId]],
    ] as const) {
      const got: string[] = [];
      let after: string | undefined;
      for (let page = 0; page < 10; page++) {
        const p = await b.scanSpans(TENANT, { service, ...range, limit: 1, ...(after === undefined ? {} : { after }) });
        got.push(...p.rows.map((r) => r.spanId));
        if (p.done) break;
        after = p.next;
      }
      expect(got).toEqual(want);
    }
    const scanned: bigint[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const p = await b.scanLogs(TENANT, { service, limit: 1, ...(after === undefined ? {} : { after }) });
      scanned.push(...p.rows.map((r) => r.timeUnixNano));
      if (p.done) break;
      after = p.next;
    }
    expect(scanned).toEqual([1_700_000_000_000_000_000n, t - 1000n, t]);
    expect((await b.scanLogs(TENANT, { service, startNano: t - 1n, limit: 5 })).rows.map((r) => r.timeUnixNano)).toEqual([t]);
  });

  it('refuses a log scan cursor saved before the key took every column, saying what to do, rather than skip and repeat records', async () => {
    const b = await backend([uniqueDatabase('oldcursor')]);
    const service = 'old-cursor-' + randomUUID();
    await writeLogs(b, Array.from({ length: 3 }, (_, i) => makeLog({ serviceName: service, timeUnixNano: 1_650_000_000_000_000_000n + BigInt(i) })));
    // What a copy checkpoint of the build before kept: the bare list of shard cursors.
    const old = JSON.stringify([['1650000000000000000', '12345', '', 1]]);
    await expect(b.scanLogs(TENANT, { service, limit: 1, after: old })).rejects.toThrow(/from before the scan key took every column.*remove the copy checkpoint and copy again/);
    // A cursor of this build resumes.
    const first = await b.scanLogs(TENANT, { service, limit: 1 });
    expect((await b.scanLogs(TENANT, { service, limit: 5, after: first.next! })).rows).toHaveLength(2);
  });

  it("starts on tables the OpenTelemetry exporter created, adding Tracehouse's columns, and writes into them", async () => {
    // The exporter's DDL: version 1 without the columns Tracehouse adds (and EventName, which older
    // exporter releases lack). Version 1's IF NOT EXISTS left such tables as they were, and every
    // insert, naming TracehouseExtra, failed for ever.
    const db = uniqueDatabase('exporter');
    await client.command({ query: `CREATE DATABASE ${db}` });
    const o = { database: db, tracesTable: 'otel_traces', logsTable: 'otel_logs', ttlDays: 0, codec: 'ZSTD(1)', cluster: '' };
    for (const q of migrations(o)[0]!.statements) {
      await client.command({ query: q.split('\n').filter((l) => !/TracehouseExtra|ObservedTimestamp|EventName/.test(l)).join('\n'), clickhouse_settings: { flatten_nested: 1 } });
    }
    const b = await backend([db]);
    await storesAndReads(b);
  });
});

/** Writes a trace and a log record into b and reads them back as written. */
async function storesAndReads(b: StorageBackend): Promise<void> {
  const spans = makeTrace(2);
  const log = makeLog();
  await writeSpans(b, spans);
  await writeLogs(b, [log]);
  expect(canonical(await b.getTrace(TENANT, spans[0]!.traceId))).toEqual(canonical(spans));
  expect(await b.searchLogs(TENANT, { traceId: log.traceId, limit: 10 })).toEqual([log]);
}

describe('clickhouse on tables of older exporter releases', () => {
  it('adds the ScopeName and ScopeVersion columns they lack, and writes and reads spans there', async () => {
    // The exporter's span tables of 2023: no ScopeName / ScopeVersion (the scope went into
    // SpanAttributes), Duration Int64, a lookup table of DateTime64 on plain MergeTree. Every insert
    // names the scope columns, so every span batch failed (retryable) for ever.
    const db = uniqueDatabase('exporter2023');
    await client.command({ query: `CREATE DATABASE ${db}` });
    const map = 'Map(LowCardinality(String), String)';
    await client.command({
      query: `CREATE TABLE ${db}.otel_traces (
  Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)), TraceId String, SpanId String, ParentSpanId String, TraceState String,
  SpanName LowCardinality(String), SpanKind LowCardinality(String), ServiceName LowCardinality(String),
  ResourceAttributes ${map}, SpanAttributes ${map}, Duration Int64, StatusCode LowCardinality(String), StatusMessage String,
  Events Nested (Timestamp DateTime64(9), Name LowCardinality(String), Attributes ${map}),
  Links Nested (TraceId String, SpanId String, TraceState String, Attributes ${map})
) ENGINE = MergeTree PARTITION BY toDate(Timestamp) ORDER BY (ServiceName, SpanName, toUnixTimestamp(Timestamp), TraceId)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1`,
      clickhouse_settings: { flatten_nested: 1 },
    });
    await client.command({ query: `CREATE TABLE ${db}.otel_traces_trace_id_ts (TraceId String, Start DateTime64(9), End DateTime64(9)) ENGINE = MergeTree ORDER BY (TraceId, toUnixTimestamp(Start))` });
    await client.command({
      query: `CREATE MATERIALIZED VIEW ${db}.otel_traces_trace_id_ts_mv TO ${db}.otel_traces_trace_id_ts AS SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End FROM ${db}.otel_traces WHERE TraceId != '' GROUP BY TraceId`,
    });
    const b = await backend([db]);
    const spans = makeTrace(2);
    await writeSpans(b, spans);
    expect(canonical(await b.getTrace(TENANT, spans[0]!.traceId))).toEqual(canonical(spans));
    expect(await select(client, `SELECT ScopeName, ScopeVersion FROM ${db}.otel_traces WHERE SpanId = {id:String}`, { id: spans[0]!.spanId })).toEqual([['test-scope', '1.2.3']]);
  });

  it('writes log records into their TraceFlags UInt32 / SeverityNumber Int32 columns, converted, not misread and dropped', async () => {
    // The exporter's log tables of 2023 (and many copies of its DDL): TraceFlags UInt32,
    // SeverityNumber Int32, no TimestampTime. The encoder's RowBinary has UInt8 there, which the
    // server read with the table's types: 'Cannot read all data', a permanent failure, so every
    // log batch was dropped.
    const db = uniqueDatabase('exporterlogs2023');
    await client.command({ query: `CREATE DATABASE ${db}` });
    await exporter2023Logs(client, db);
    const b = await backend([db]);
    const log = makeLog({ severityNumber: 17, severityText: 'ERROR' });
    const other = makeLog({ severityNumber: 21 });
    await writeLogs(b, [log]);
    await writeLogsAs(b, 'acme', [other]);
    expect(await b.searchLogs(TENANT, { traceId: log.traceId, limit: 10 })).toEqual([log]);
    expect(await b.searchLogs('acme', { traceId: other.traceId, limit: 10 })).toEqual([other]);
    expect(await select(client, `SELECT TraceFlags, SeverityNumber, Body FROM ${db}.otel_logs WHERE TraceId = {id:String}`, { id: log.traceId })).toEqual([
      [1, 17, '{"msg":"hello","n":9007199254740993}'],
    ]);
  });

  it('starts with a ttlDays on log tables without TimestampTime, and gives them a TTL on Timestamp', async () => {
    // The exporter's log tables of 2023 have no TimestampTime: the TTL the start gives existing
    // tables (applyTtl) named it, the ALTER failed ('Missing columns'), and start-up failed, where
    // before the same configuration started and stored.
    const db = uniqueDatabase('exporterlogsttl');
    await client.command({ query: `CREATE DATABASE ${db}` });
    await exporter2023Logs(client, db);
    const b = await backend([db], { 'storage.clickhouse.ttlDays': '7' });
    const log = makeLog();
    await writeLogs(b, [log]);
    expect(await b.searchLogs(TENANT, { traceId: log.traceId, limit: 10 })).toEqual([log]);
    const [[engine]] = (await select(client, `SELECT engine_full FROM system.tables WHERE database = '${db}' AND name = 'otel_logs'`)) as [[string]];
    expect(/TTL (.*?) SETTINGS/.exec(engine)?.[1]).toBe('toDateTime(Timestamp) + toIntervalDay(7)');
    // A second start leaves it as it is (nothing altered again).
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const again = createClickhouseBackend(clickhouseOptions(chdbConfig([db], { 'storage.clickhouse.ttlDays': '7' })), { logger, metrics: createMetrics() });
    await again.start();
    await again.shutdown();
    expect(lines.filter((l) => l.includes('TTL set from'))).toEqual([]);
  });
});

describe('clickhouse migrations and lifecycle', () => {
  it('records versions once, however often migrate runs', async () => {
    const db = uniqueDatabase('migrate');
    const b = await backend([db]);
    // start() migrated (autoMigrate): these find nothing to do and say so (`tracehouse migrate` logs it).
    expect(await b.migrate!()).toBe('up_to_date');
    expect(await b.migrate!()).toBe('up_to_date');
    expect(await select(client, `SELECT Version, Name FROM ${db}.tracehouse_migrations ORDER BY Version`)).toEqual([
      [1, 'otel exporter tables with Tracehouse extras'],
      [2, 'tenant of every span and log record'],
      [3, "a trace's lookup row expires with its newest span"],
      [4, "Tracehouse's columns on tables the exporter made"],
      [5, 'deduplication window on tables the exporter made'],
      [6, 'scope columns on span tables of older exporter releases'],
    ]);
  });

  it('creates the tables of other table names in a database already migrated for the default ones, and stores into them', async () => {
    // The migrations table is per database, the tables per configuration (storage.clickhouse.tracesTable /
    // logsTable renamed, or a second deployment's tables in the same database): the versions recorded
    // for otel_traces left staging_traces uncreated, and every write failed (retryable) for ever.
    const db = uniqueDatabase('names');
    await backend([db]);
    const names = { 'storage.clickhouse.tracesTable': 'staging_traces', 'storage.clickhouse.logsTable': 'staging_logs' };
    const manual = createClickhouseBackend(clickhouseOptions(chdbConfig([db], { ...names, 'storage.clickhouse.autoMigrate': 'false' })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    backends.push(manual);
    await expect(manual.start()).rejects.toThrow(/has no migration applied \(missing, or never migrated\), this build needs version 6: run `tracehouse migrate`/);
    const b = await backend([db], names);
    await storesAndReads(b);
    expect(await select(client, `SELECT count() FROM ${db}.otel_traces`)).toEqual([[0]]);
  });

  it('refuses to start on an unmigrated database without autoMigrate, and starts once migrated', async () => {
    const db = uniqueDatabase('manual');
    const b = createClickhouseBackend(clickhouseOptions(chdbConfig([db], { 'storage.clickhouse.autoMigrate': 'false' })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    backends.push(b);
    await expect(b.start()).rejects.toThrow(/has no migration applied \(missing, or never migrated\), this build needs version 6: run `tracehouse migrate`/);
    expect(await b.migrate!()).toBe('applied'); // the `tracehouse migrate` command: no start() needed
    await b.start();
    expect((await b.health()).ok).toBe(true);
  });

  it('with ttlDays, reads a trace by id while its newer spans are kept, its oldest gone', async () => {
    const db = uniqueDatabase('ttl');
    const b = await backend([db], { 'storage.clickhouse.ttlDays': '1' });
    const hour = 3_600_000n * MS;
    const now = BigInt(Date.now()) * MS;
    const root = makeSpan({ startTimeUnixNano: now - 30n * hour, endTimeUnixNano: now - hour / 2n });
    const child = makeSpan({ traceId: root.traceId, parentSpanId: root.spanId, startTimeUnixNano: now - hour, endTimeUnixNano: now - hour + 1000n });
    await writeSpans(b, [root, child]);
    await client.command({ query: `OPTIMIZE TABLE ${db}.otel_traces_trace_id_ts FINAL` });
    await client.command({ query: `OPTIMIZE TABLE ${db}.otel_traces FINAL` });
    expect(await select(client, `SELECT SpanId FROM ${db}.otel_traces`)).toEqual([[child.spanId]]);
    expect((await b.getTrace(TENANT, root.traceId)).map((s) => s.spanId)).toEqual([child.spanId]);
  });

  it('refuses a ttlDays that runs past 2106 (the TTL would wrap into the past and delete every row at once), keeps rows with the largest it takes', async () => {
    // The TTL is a DateTime (toDateTime(Timestamp) + toIntervalDay(n)), which ends on 2106-02-07
    // and wraps past it: with "keep for 100 years" every row stored today expired at its part's
    // first merge.
    const db = uniqueDatabase('ttlwrap');
    await expect(backend([db], { 'storage.clickhouse.ttlDays': '36500' })).rejects.toThrow(/storage\.clickhouse\.ttlDays = 36500: .*2106.*at most \d+/);
    expect(await select(client, `SELECT count() FROM system.tables WHERE database = '${db}'`)).toEqual([[0]]);
    const b = await backend([db], { 'storage.clickhouse.ttlDays': String(maxTtlDays()) });
    const now = BigInt(Date.now()) * MS;
    const spans = makeTrace(2, { startTimeUnixNano: now, endTimeUnixNano: now + MS });
    const log = makeLog({ timeUnixNano: now });
    await writeSpans(b, spans);
    await writeLogs(b, [log]);
    for (const t of ['otel_traces', 'otel_traces_trace_id_ts', 'otel_logs']) await client.command({ query: `OPTIMIZE TABLE ${db}.${t} FINAL` });
    expect(await b.getTrace(TENANT, spans[0]!.traceId)).toHaveLength(2);
    expect(await b.searchLogs(TENANT, { traceId: log.traceId, limit: 10 })).toHaveLength(1);
  });

  it('applies a ttlDays changed after the tables were made, at start and by migrate; 0 keeps a TTL the tables have', async () => {
    const db = uniqueDatabase('ttlchange');
    const ttls = async (): Promise<Record<string, string>> =>
      Object.fromEntries(
        (await select(client, `SELECT name, engine_full FROM system.tables WHERE database = '${db}' AND name IN ('otel_traces', 'otel_traces_trace_id_ts', 'otel_logs') ORDER BY name`)).map(([name, engine]) => [name, /TTL (.*?) SETTINGS/.exec(engine as string)?.[1] ?? '']),
      );
    const first = createClickhouseBackend(clickhouseOptions(chdbConfig([db], { 'storage.clickhouse.ttlDays': '3' })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await first.start();
    await first.shutdown();
    // Raised later (the disk allows more): the next start must not keep deleting after 3 days.
    await (await backend([db], { 'storage.clickhouse.ttlDays': '9' })).shutdown();
    expect(await ttls()).toEqual({
      otel_logs: 'TimestampTime + toIntervalDay(9)',
      otel_traces: 'toDateTime(Timestamp) + toIntervalDay(9)',
      otel_traces_trace_id_ts: 'toDateTime(End) + toIntervalDay(9)',
    });
    // `tracehouse migrate` (no start) with a shorter one.
    const migrate = createClickhouseBackend(clickhouseOptions(chdbConfig([db], { 'storage.clickhouse.ttlDays': '2', 'storage.clickhouse.autoMigrate': 'false' })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await migrate.migrate!();
    await migrate.shutdown();
    expect(Object.values(await ttls()).every((t) => t.endsWith('toIntervalDay(2)'))).toBe(true);
    // 0 does not remove a TTL (the exporter's, an operator's): it says how to.
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
    const keep = createClickhouseBackend(clickhouseOptions(chdbConfig([db])), { logger, metrics: createMetrics() });
    await keep.start();
    await keep.shutdown();
    expect(Object.values(await ttls()).every((t) => t.endsWith('toIntervalDay(2)'))).toBe(true);
    expect(lines.filter((l) => l.includes('REMOVE TTL'))).toHaveLength(3);
    // An operator's TTL of other rules (a DELETE WHERE, a move to a volume) is not replaced at each start: said instead.
    await client.command({ query: `ALTER TABLE ${db}.otel_traces MODIFY TTL toDateTime(Timestamp) + toIntervalDay(2) DELETE WHERE ServiceName = 'noisy'` });
    const own = (await ttls()).otel_traces;
    lines.length = 0;
    const again = createClickhouseBackend(clickhouseOptions(chdbConfig([db], { 'storage.clickhouse.ttlDays': '5' })), { logger, metrics: createMetrics() });
    await again.start();
    await again.shutdown();
    const after = await ttls();
    expect(after.otel_traces).toBe(own);
    expect(after.otel_logs).toBe('TimestampTime + toIntervalDay(5)');
    expect(lines.filter((l) => l.includes('rules of its own') && l.includes('otel_traces'))).toHaveLength(1);
  });

  it('answers writes with results, never throws: bad data permanent, missing table or stopped backend retryable', async () => {
    const db = uniqueDatabase('results');
    const config = chdbConfig([db]);
    const b = createClickhouseBackend(clickhouseOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    const batch = (chunks: Uint8Array[]) => ({ signal: 'traces' as const, partition: 0, tenant: TENANT, rows: 1, bytes: 3, chunks, batchId: randomUUID() });
    expect((await b.write(batch([new Uint8Array([1, 2, 3])]))).kind).toBe('retryable'); // before start
    await b.start();
    expect((await b.write(batch([new Uint8Array([1, 2, 3])]))).kind).toBe('permanent'); // truncated RowBinary
    expect((await b.write({ ...batch([new Uint8Array(1)]), partition: 5 })).kind).toBe('permanent');
    await client.command({ query: `DROP TABLE ${db}.otel_logs` });
    const [chunk] = (await import('../../src/storage/clickhouse/encoder.ts')).createEncoder({ partitions: 1 }).encodeLogs([makeLog()]);
    expect((await b.write({ ...batch([chunk!.data]), signal: 'logs' })).kind).toBe('retryable');
    await b.shutdown();
    await b.shutdown();
    expect((await b.write(batch([new Uint8Array([1])]))).kind).toBe('retryable');
    expect((await b.health()).ok).toBe(false);
  });
});

describe('clickhouse exact round trip', () => {
  const text = fc.string({ unit: 'binary', maxLength: 12 });
  const anyValue: fc.Arbitrary<AnyValue> = fc.letrec<{ v: AnyValue }>((tie) => ({
    v: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      text.map((s) => ({ stringValue: s })),
      fc.boolean().map((b) => ({ boolValue: b })),
      fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map((i) => ({ intValue: String(i) })),
      fc.double().map((d) => ({ doubleValue: d })),
      fc.constantFrom('NaN', 'Infinity', '-Infinity').map((d) => ({ doubleValue: d as 'NaN' })),
      fc.uint8Array({ maxLength: 6 }).map((b) => ({ bytesValue: Buffer.from(b).toString('base64') })),
      fc.constant({}),
      fc.array(tie('v'), { maxLength: 3 }).map((values) => ({ arrayValue: { values } })),
      fc.uniqueArray(fc.record({ key: text, value: tie('v') }), { maxLength: 3, selector: (kv) => kv.key }).map((values) => ({ kvlistValue: { values } })),
    ),
  })).v;
  const attrs: fc.Arbitrary<KeyValue[]> = fc.uniqueArray(fc.record({ key: text, value: anyValue }), { maxLength: 5, selector: (kv) => kv.key });
  const time = fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 1_600_000_000n * 1_000_000_000n, max: 1_900_000_000n * 1_000_000_000n }));
  const count = fc.oneof(fc.constant(0), fc.nat());

  const span: fc.Arbitrary<SpanRow> = fc
    .record({
      start: time,
      end: time,
      name: text,
      kind: fc.integer({ min: 0, max: 7 }),
      statusCode: fc.integer({ min: 0, max: 3 }),
      statusMessage: text,
      flags: fc.nat(),
      attributes: attrs,
      resourceAttributes: attrs,
      scopeAttributes: attrs,
      events: fc.array(fc.record({ timeUnixNano: time, name: text, attributes: attrs, droppedAttributesCount: count }), { maxLength: 2 }),
      links: fc.array(fc.record({ traceId: fc.constant(hex(16)), spanId: fc.constant(hex(8)), traceState: text, flags: count, attributes: attrs, droppedAttributesCount: count }), { maxLength: 2 }),
      dropped: fc.tuple(count, count, count, count, count),
      schemaUrls: fc.tuple(text, text),
    })
    .map((r) =>
      makeSpan({
        startTimeUnixNano: r.start,
        endTimeUnixNano: r.end,
        durationNano: r.end > r.start ? r.end - r.start : 0n,
        name: r.name,
        kind: r.kind,
        statusCode: r.statusCode,
        statusMessage: r.statusMessage,
        flags: r.flags,
        attributes: r.attributes,
        resource: { attributes: r.resourceAttributes, droppedAttributesCount: r.dropped[0], schemaUrl: r.schemaUrls[0] },
        scope: { name: 's', version: 'v', attributes: r.scopeAttributes, droppedAttributesCount: r.dropped[1], schemaUrl: r.schemaUrls[1] },
        events: r.events,
        links: r.links,
        droppedAttributesCount: r.dropped[2],
        droppedEventsCount: r.dropped[3],
        droppedLinksCount: r.dropped[4],
      }),
    );

  const log: fc.Arbitrary<LogRow> = fc
    .record({ time, observed: time, body: anyValue, flags: fc.nat(), severity: fc.integer({ min: 0, max: 300 }), text, attributes: attrs, scopeAttributes: attrs, dropped: count })
    .map((r) =>
      makeLog({
        timeUnixNano: r.time,
        observedTimeUnixNano: r.observed,
        body: r.body,
        flags: r.flags,
        severityNumber: r.severity,
        severityText: r.text,
        attributes: r.attributes,
        scope: { name: r.text, version: '', attributes: r.scopeAttributes, droppedAttributesCount: r.dropped, schemaUrl: r.text },
      }),
    );

  let b: StorageBackend;
  beforeAll(async () => {
    b = await backend([uniqueDatabase('prop0'), uniqueDatabase('prop1')]);
  });

  it('reads back any span exactly as written: every AnyValue, every time, every count, in order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(span, { minLength: 1, maxLength: 4 }), async (spans) => {
        await writeSpans(b, spans);
        for (const s of spans) expect(await b.getTrace(TENANT, s.traceId)).toEqual([s]);
      }),
      { numRuns: 25 },
    );
  });

  it('reads back any log record exactly as written', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(log, { minLength: 1, maxLength: 4 }), async (logs) => {
        await writeLogs(b, logs);
        for (const l of logs) expect(await b.searchLogs(TENANT, { traceId: l.traceId, limit: 10 })).toEqual([l]);
      }),
      { numRuns: 25 },
    );
  });
});
