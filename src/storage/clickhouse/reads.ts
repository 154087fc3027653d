// Read queries and the decoding of their rows back into SpanRow / LogRow. Every user value is a
// bound query parameter; 64-bit numbers travel as strings (toString) so nothing passes through a
// JavaScript number. Each function works on one shard; index.ts fans out and merges.
import type { ClickHouseClient } from '@clickhouse/client';
import type { AnyValue, KeyValue, LogRow, SpanEvent, SpanLink, SpanRow } from '../../model/rows.ts';
import type { LogQuery, TraceQuery, TraceSummary } from '../backend.ts';
import { MAX_KEY_NS, SPAN_KINDS, STATUS_CODES, type LogExtra, type NestedExtra, type SpanExtra } from './encoder.ts';
import { TENANT_COLUMN, qualified, tableNames, type SchemaOptions } from './schema.ts';
import { joinAttributes, joinValue, parseExact } from './values.ts';
import { withinBytes } from '../query-helpers.ts';

const INT64_MAX = (1n << 63n) - 1n;

/**
 * The kind and status words of the exporter's earlier releases (the proto's enum names:
 * traceutil.SpanKindStr / StatusCodeStr), in SPAN_KINDS / STATUS_CODES order. Tables those
 * releases filled hold them; reads take them as the short words (as Grafana's data source does).
 */
export const SPAN_KIND_NAMES = SPAN_KINDS.map((k) => `SPAN_KIND_${k.toUpperCase()}`);
export const STATUS_CODE_NAMES = STATUS_CODES.map((c) => `STATUS_CODE_${c.toUpperCase()}`);

const UINT64_MAX = (1n << 64n) - 1n;
/** DateTime's largest value: the lookup table clamps to it, meaning "no upper bound". */
const MAX_DATETIME = 'toDateTime(4294967295)';

type Params = Record<string, unknown>;

/**
 * Runs a query and returns its rows as arrays. With a signal (the read API's client is gone), the
 * query is abandoned when it aborts: over HTTP its request is closed (a server with
 * cancel_http_readonly_queries_on_client_close, ClickHouse Cloud's default, stops the query then),
 * on chdb a query still waiting for the engine is not started (chdb cannot stop one running).
 */
export async function rows(client: ClickHouseClient, query: string, params: Params, signal?: AbortSignal): Promise<unknown[][]> {
  const rs = await client.query(signal === undefined ? { query, format: 'JSONCompactEachRow', query_params: params } : { query, format: 'JSONCompactEachRow', query_params: params, abort_signal: signal });
  return rs.json<unknown[]>();
}

function clampI64(v: bigint): string {
  return String(v < 0n ? 0n : v > INT64_MAX ? INT64_MAX : v);
}

function clampU64(v: bigint): string {
  return String(v < 0n ? 0n : v > UINT64_MAX ? UINT64_MAX : v);
}

/** The columns decodeSpan reads. */
export const SPAN_SELECT = `
    toString(toUnixTimestamp64Nano(Timestamp)),
    TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    mapKeys(ResourceAttributes), mapValues(ResourceAttributes),
    ScopeName, ScopeVersion,
    mapKeys(SpanAttributes), mapValues(SpanAttributes),
    toString(Duration), StatusCode, StatusMessage,
    arrayMap(t -> toString(toUnixTimestamp64Nano(t)), \`Events.Timestamp\`),
    \`Events.Name\`,
    arrayMap(m -> mapKeys(m), \`Events.Attributes\`), arrayMap(m -> mapValues(m), \`Events.Attributes\`),
    \`Links.TraceId\`, \`Links.SpanId\`, \`Links.TraceState\`,
    arrayMap(m -> mapKeys(m), \`Links.Attributes\`), arrayMap(m -> mapValues(m), \`Links.Attributes\`),
    TracehouseExtra`;

/** How many columns SPAN_SELECT has (decodeSpan reads them; a column after them is the query's own). */
const SPAN_COLUMN_COUNT = 27;

/** The time bounds of the traces in `ids` from the lookup table (an upper bound of the clamped maximum means none). */
function lookupBounds(o: SchemaOptions, idsCondition: string): string {
  const lookup = qualified(o, tableNames(o).lookup);
  return `WITH
    (SELECT min(Start) FROM ${lookup} WHERE ${idsCondition}) AS lo,
    (SELECT max(End) FROM ${lookup} WHERE ${idsCondition}) AS hi`;
}

// Compare as DateTime64(9): DateTime64 against a Nullable(DateTime) bound misleads the engine's
// index analysis (26.x drops matching rows).
const WITHIN_BOUNDS = `Timestamp >= toDateTime64(lo, 9) AND (hi >= ${MAX_DATETIME} OR Timestamp < toDateTime64(hi, 9) + INTERVAL 1 SECOND)`;

/**
 * Every span of one trace on this shard, each span id once; the lookup table bounds the
 * partitions scanned. The tables keep every copy a client sent (their dedupe is per batch id,
 * which a client's resend does not share); the other stores keep one, and so do reads here.
 */
export async function getTraceOnShard(client: ClickHouseClient, o: SchemaOptions, tenant: string, traceId: string): Promise<SpanRow[]> {
  return (await rows(client, traceSql(o, SPAN_SELECT, 'LIMIT 1 BY SpanId'), { id: traceId, tenant })).map(decodeSpan);
}

/** A span read on one shard, with its bytes (StoreReader.readTrace's maxBytes; 0 without a bound) and what ordering it needs. */
export interface ShardSpan {
  span: SpanRow;
  bytes: number;
  startTimeUnixNano: bigint;
  spanId: string;
}

/**
 * StoreReader.readTrace on this shard: the earliest maxSpans spans (start, then id) only are sent,
 * and the count of all when cut. With maxBytes, only those up to the first past it (bytes summed
 * earliest first; the first kept whatever its size, so the second may be that one), that one
 * included, for withinBytes() (earliestWithinBytes()) to leave out: the rest never leave the server.
 * When the bytes cut, `leftOut` is that first span left out: of a trace on several shards, no span
 * of another shard from it on is among the earliest within the bound.
 */
export async function readTraceOnShard(client: ClickHouseClient, o: SchemaOptions, tenant: string, traceId: string, maxSpans: number, maxBytes?: number, signal?: AbortSignal): Promise<{ spans: ShardSpan[]; total: number; cut: boolean; leftOut?: ShardSpan }> {
  const params = { id: traceId, tenant };
  const earliest = `ORDER BY Timestamp, ${SPAN_TIME}, SpanId LIMIT 1 BY SpanId LIMIT {limit:UInt64}`;
  const sized = (r: unknown[], bytes: number): ShardSpan => {
    const span = decodeSpan(r);
    return { span, bytes, startTimeUnixNano: span.startTimeUnixNano, spanId: span.spanId };
  };
  let got: ShardSpan[];
  if (maxBytes === undefined) got = (await rows(client, traceSql(o, SPAN_SELECT, earliest), { ...params, limit: maxSpans + 1 }, signal)).map((r) => sized(r, 0));
  else {
    const sql = upToBytes(`${SPAN_SELECT}, toString(bytes)`, `SELECT *, ${SPAN_BYTES} AS bytes FROM (${traceSql(o, '*', earliest)})`, `Timestamp, ${SPAN_TIME}, SpanId`);
    got = (await rows(client, sql, { ...params, limit: maxSpans + 1, maxBytes, keep: 2 }, signal)).map((r) => sized(r, Number(r[SPAN_COLUMN_COUNT])));
  }
  // One past maxSpans says the count cut the trace; one past the bytes, that they did.
  const { kept, cut } = withinBytes(got.slice(0, maxSpans), (x) => x.bytes, maxBytes);
  if (!cut && got.length <= maxSpans) return { spans: got, total: got.length, cut };
  const [count] = await rows(client, traceSql(o, 'toString(uniqExact(SpanId))', ''), params, signal);
  const out: { spans: ShardSpan[]; total: number; cut: boolean; leftOut?: ShardSpan } = { spans: kept, total: Number(count![0]), cut };
  if (cut) out.leftOut = got[kept.length]!;
  return out;
}

/** The ids of one trace's spans on this shard, each once: of a trace on several shards, what counts its spans once across them. */
export async function spanIdsOnShard(client: ClickHouseClient, o: SchemaOptions, tenant: string, traceId: string, signal?: AbortSignal): Promise<string[]> {
  return (await rows(client, traceSql(o, 'DISTINCT SpanId', ''), { id: traceId, tenant }, signal)).map((r) => r[0] as string);
}

/** A query of one trace's spans on a shard (parameters id and tenant), `select`ed and ended by `tail`. */
function traceSql(o: SchemaOptions, select: string, tail: string): string {
  // The lookup table has no tenant: its bounds cover every tenant's spans of the id, a superset.
  return `${lookupBounds(o, 'TraceId = {id:String}')}
SELECT ${select}
FROM ${qualified(o, tableNames(o).traces)}
WHERE ${TENANT_COND} AND TraceId = {id:String} AND ${WITHIN_BOUNDS}
${tail}`;
}

/** Every read is of one tenant's rows (parameter `tenant`). */
const TENANT_COND = `${TENANT_COLUMN} = {tenant:String}`;

/** Adds a condition with its one bound parameter, when the query sets the value. */
function addCond(where: string[], params: Params, sql: string, name: string, value: unknown): void {
  if (value === undefined) return;
  where.push(sql);
  params[name] = value;
}

/** Timestamp of a row past MAX_KEY_NS (2106-02-07): the encoder clamps to it and keeps the exact time in TracehouseExtra. */
const CAPPED = `toDateTime64(${MAX_KEY_NS / 1_000_000_000n}, 9)`;

/**
 * A row's exact time in ns (Int128): Timestamp's, or for a row Timestamp holds clamped, the time
 * TracehouseExtra keeps (`st` of a span, `ts` of a log record). Only such rows parse the JSON.
 */
function exactTime(field: 'st' | 'ts'): string {
  return `if(Timestamp >= ${CAPPED} AND JSONHas(TracehouseExtra, '${field}'), toInt128(JSONExtractString(TracehouseExtra, '${field}')), toInt128(toUnixTimestamp64Nano(Timestamp)))`;
}

/** A span's exact start (see exactTime). */
export const SPAN_TIME = exactTime('st');
/** A log record's exact time (see exactTime). */
export const LOG_TIME = exactTime('ts');

/**
 * Conditions keeping rows whose exact time (`time`: SPAN_TIME or LOG_TIME) is within [start, end],
 * parameters named `${p}Start`… Timestamp bounds them, so the sort key and partitions prune as for
 * any range; a range reaching past 2106-02-07 takes the clamped rows too and holds them (them only)
 * to their exact times.
 */
export function timeRange(params: Params, time: string, start: bigint | undefined, end: bigint | undefined, p = 'time'): string[] {
  const where: string[] = [];
  addCond(where, params, `Timestamp >= fromUnixTimestamp64Nano({${p}Start:Int64})`, `${p}Start`, start === undefined ? undefined : clampI64(start < MAX_KEY_NS ? start : MAX_KEY_NS));
  addCond(where, params, `Timestamp <= fromUnixTimestamp64Nano({${p}End:Int64})`, `${p}End`, end === undefined ? undefined : clampI64(end));
  const exact: string[] = [];
  if (start !== undefined && start > MAX_KEY_NS) addCond(exact, params, `${time} >= {${p}StartExact:Int128}`, `${p}StartExact`, String(start));
  if (end !== undefined && end >= MAX_KEY_NS) addCond(exact, params, `${time} <= {${p}EndExact:Int128}`, `${p}EndExact`, String(end));
  if (exact.length > 0) where.push(`(Timestamp < ${CAPPED} OR (${exact.join(' AND ')}))`);
  return where;
}

/** The service and start/end conditions trace and log searches share (`time`: SPAN_TIME or LOG_TIME). */
export function addServiceAndTime(where: string[], params: Params, q: { service?: string; startNano?: bigint; endNano?: bigint }, time: string): void {
  addCond(where, params, 'ServiceName = {service:String}', 'service', q.service);
  where.push(...timeRange(params, time, q.startNano, q.endNano));
}

/**
 * The newest matching traces on this shard (at most query.limit), each with the start of its
 * newest matching span here: the port's ranking, by which index.ts merges the shards' candidates.
 */
export async function matchingTracesOnShard(client: ClickHouseClient, o: SchemaOptions, tenant: string, q: TraceQuery, signal?: AbortSignal): Promise<{ traceId: string; newestMatch: bigint }[]> {
  const traces = qualified(o, tableNames(o).traces);
  const where = [TENANT_COND, "TraceId != ''"];
  const params: Params = { limit: q.limit, tenant };
  addServiceAndTime(where, params, q, SPAN_TIME);
  addCond(where, params, 'SpanName = {name:String}', 'name', q.name);
  addCond(where, params, 'Duration >= {minDuration:UInt64}', 'minDuration', q.minDurationNano === undefined ? undefined : clampU64(q.minDurationNano));
  addCond(where, params, 'Duration <= {maxDuration:UInt64}', 'maxDuration', q.maxDurationNano === undefined ? undefined : clampU64(q.maxDurationNano));
  // The exporter's schema keeps the status as its word (or its older enum name); a code without one matches nothing.
  addCond(where, params, 'StatusCode IN ({status:String}, {statusName:String})', 'status', q.statusCode === undefined ? undefined : (STATUS_CODES[q.statusCode] ?? ''));
  if (q.statusCode !== undefined) params.statusName = STATUS_CODE_NAMES[q.statusCode] ?? '';
  // The kind's word (or older enum name), or its number in TracehouseExtra's k where no word names it (decodeSpan).
  addCond(where, params, "if(JSONHas(TracehouseExtra, 'k'), JSONExtractInt(TracehouseExtra, 'k'), greatest(toInt64(indexOf({kinds:Array(String)}, SpanKind)), toInt64(indexOf({kindNames:Array(String)}, SpanKind)), 1) - 1) = {kind:Int64}", 'kind', q.kind);
  if (q.kind !== undefined) Object.assign(params, { kinds: [...SPAN_KINDS], kindNames: SPAN_KIND_NAMES });
  (q.attributes ?? []).forEach((a, i) => {
    where.push(`mapContains(SpanAttributes, {ak${i}:String}) AND SpanAttributes[{ak${i}:String}] = {av${i}:String}`);
    params[`ak${i}`] = a.key;
    params[`av${i}`] = a.value;
  });
  const found = await rows(
    client,
    `SELECT TraceId, toString(max(${SPAN_TIME}) AS newest) FROM ${traces}
WHERE ${where.join('\n  AND ')}
GROUP BY TraceId
ORDER BY newest DESC, TraceId
LIMIT {limit:UInt64}`,
    params,
    signal,
  );
  return found.map((r) => ({ traceId: r[0] as string, newestMatch: BigInt(r[1] as string) }));
}

/** A summary of a trace's spans on one shard, with what merging it with another shard's needs (mergeSummaries). */
export type ShardSummary = TraceSummary & { hasRoot: boolean; rootStart: bigint };

/**
 * Summaries of the spans of these traces on this shard (those it holds of them). A trace is on one
 * shard unless the shards changed while it was written: then each shard summarizes its part.
 */
export async function summariesOnShard(client: ClickHouseClient, o: SchemaOptions, tenant: string, ids: string[], signal?: AbortSignal): Promise<ShardSummary[]> {
  const traces = qualified(o, tableNames(o).traces);
  const sql = `${lookupBounds(o, 'has({ids:Array(String)}, TraceId)')}
SELECT
    TraceId,
    toString(min(start)),
    toString(max(start + Duration) - min(start)),
    uniqExact(SpanId),
    countIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR')) > 0,
    countIf(ParentSpanId = '') > 0,
    argMinIf(ServiceName, (start, SpanId), ParentSpanId = ''),
    argMinIf(SpanName, (start, SpanId), ParentSpanId = ''),
    argMin(ServiceName, (start, SpanId)),
    argMin(SpanName, (start, SpanId)),
    toString(minIf(start, ParentSpanId = ''))
FROM (SELECT *, ${SPAN_TIME} AS start FROM ${traces} WHERE ${TENANT_COND} AND has({ids:Array(String)}, TraceId) AND ${WITHIN_BOUNDS})
GROUP BY TraceId`;
  return (await rows(client, sql, { ids, tenant }, signal)).map((r) => {
    const hasRoot = Boolean(r[5]);
    return {
      traceId: r[0] as string,
      startTimeUnixNano: BigInt(r[1] as string),
      durationNano: BigInt(r[2] as string),
      spanCount: Number(r[3]),
      hasError: Boolean(r[4]),
      rootServiceName: (hasRoot ? r[6] : r[8]) as string,
      rootSpanName: (hasRoot ? r[7] : r[9]) as string,
      hasRoot,
      rootStart: BigInt(r[10] as string),
    };
  });
}

/** One trace's summaries from two shards as one: its spans are those of both, its root the earlier parentless span (else the earliest span). */
export function mergeSummaries(a: ShardSummary, b: ShardSummary): ShardSummary {
  const start = a.startTimeUnixNano < b.startTimeUnixNano ? a.startTimeUnixNano : b.startTimeUnixNano;
  const endA = a.startTimeUnixNano + a.durationNano;
  const endB = b.startTimeUnixNano + b.durationNano;
  const end = endA > endB ? endA : endB;
  const rootOf = a.hasRoot !== b.hasRoot ? (a.hasRoot ? a : b) : a.hasRoot ? (a.rootStart <= b.rootStart ? a : b) : a.startTimeUnixNano <= b.startTimeUnixNano ? a : b;
  return {
    traceId: a.traceId,
    rootServiceName: rootOf.rootServiceName,
    rootSpanName: rootOf.rootSpanName,
    startTimeUnixNano: start,
    durationNano: end - start,
    spanCount: a.spanCount + b.spanCount,
    hasError: a.hasError || b.hasError,
    hasRoot: a.hasRoot || b.hasRoot,
    rootStart: rootOf.rootStart,
  };
}

/** The columns decodeLog reads. */
export const LOG_SELECT = `
    toString(toUnixTimestamp64Nano(Timestamp)),
    TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName, Body,
    ResourceSchemaUrl, mapKeys(ResourceAttributes), mapValues(ResourceAttributes),
    ScopeSchemaUrl, ScopeName, ScopeVersion, mapKeys(ScopeAttributes), mapValues(ScopeAttributes),
    mapKeys(LogAttributes), mapValues(LogAttributes),
    EventName, toString(toUnixTimestamp64Nano(ObservedTimestamp)), TracehouseExtra`;

/** A spans row's bytes for a byte bound (ScanQuery.maxBytes, StoreReader.readTrace's maxBytes), as LOG_BYTES. */
export const SPAN_BYTES = 'byteSize(SpanName, ServiceName, TraceState, StatusMessage, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, `Events.Name`, `Events.Attributes`, `Links.TraceState`, `Links.Attributes`, TracehouseExtra)';

/** A log search's record on one shard, with its bytes (LogQuery.maxBytes; 0 without a bound). */
export interface ShardLog {
  log: LogRow;
  bytes: number;
}

/** Newest log records first: by Timestamp (the sort key's order), those it holds clamped by their exact times. */
const NEWEST_LOG = `Timestamp DESC, ${LOG_TIME} DESC`;

/** A logs row's bytes for a byte bound (LogQuery.maxBytes, ScanQuery.maxBytes): its columns that grow with what was sent, uncompressed. */
export const LOG_BYTES = 'byteSize(Body, ResourceAttributes, ScopeAttributes, LogAttributes, TracehouseExtra, SeverityText, ServiceName, EventName)';

/**
 * A query of the rows of `ordered` (in `order`, each row's size in a column `bytes`) up to the first
 * past {maxBytes:UInt64}: sizes summed in that order, the first {keep:UInt64} rows whatever their
 * size, so that withinBytes() can leave out the one past the bound and say so; the rest never leave
 * the server. `select` is what each row sends; `more` adds window columns (a scan's count of the
 * rows before the cut). The byte bounds of log searches, trace reads and scans.
 */
export function upToBytes(select: string, ordered: string, order: string, more = ''): string {
  return `SELECT ${select}
FROM (
  SELECT *,
    sum(bytes) OVER (ORDER BY ${order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before,
    row_number() OVER (ORDER BY ${order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n${more}
  FROM (${ordered})
)
WHERE before <= {maxBytes:UInt64} OR n <= {keep:UInt64}
ORDER BY ${order}`;
}

/** Whether the log table has TimestampTime (the exporter's tables of 2023 do not: partitioned and keyed by Timestamp), by which timestampTimeRange bounds a search. */
export async function logsKeyedByTime(client: ClickHouseClient, o: SchemaOptions): Promise<boolean> {
  const [count] = await rows(client, "SELECT count() FROM system.columns WHERE database = {db:String} AND table = {table:String} AND name = 'TimestampTime'", { db: o.database, table: tableNames(o).logs });
  return Number(count?.[0] ?? 0) > 0;
}

/** DateTime's largest second (2106-02-07 06:28:15). */
const MAX_DATETIME_S = 4294967295n;

/**
 * The range [start, end] on the logs' TimestampTime (DateTime, toDateTime(Timestamp)), a second
 * wider each side: the exporter's otel_logs is partitioned (toDate) and keyed by TimestampTime,
 * and ClickHouse prunes neither partitions nor granules by a condition on Timestamp alone (a
 * search of an hour read every day's parts). Implied by the Timestamp conditions, so it keeps
 * every row they keep; parameters keyStart and keyEnd.
 */
export function timestampTimeRange(params: Params, start: bigint | undefined, end: bigint | undefined): string[] {
  const second = (ns: bigint, by: bigint): string => {
    const s = (ns < 0n ? 0n : ns) / 1_000_000_000n + by;
    return String(s < 0n ? 0n : s > MAX_DATETIME_S ? MAX_DATETIME_S : s);
  };
  const where: string[] = [];
  addCond(where, params, 'TimestampTime >= toDateTime({keyStart:UInt32})', 'keyStart', start === undefined ? undefined : second(start, -1n));
  addCond(where, params, 'TimestampTime <= toDateTime({keyEnd:UInt32})', 'keyEnd', end === undefined ? undefined : second(end, 1n));
  return where;
}

/**
 * The newest matching log records on this shard (at most query.limit). With query.maxBytes, only
 * those up to the first past it (bytes summed newest first; the first record kept whatever its
 * size, so the second may be that one) come back, that one included, for withinBytes() to leave
 * out: the rest never leave the server.
 */
export async function searchLogsOnShard(client: ClickHouseClient, o: SchemaOptions, tenant: string, q: LogQuery, keyedByTimestampTime = false, signal?: AbortSignal): Promise<ShardLog[]> {
  const logs = qualified(o, tableNames(o).logs);
  const where: string[] = [TENANT_COND];
  const params: Params = { limit: q.limit, tenant };
  addCond(where, params, 'TraceId = {traceId:String}', 'traceId', q.traceId);
  addServiceAndTime(where, params, q, LOG_TIME);
  if (keyedByTimestampTime) where.push(...timestampTimeRange(params, q.startNano, q.endNano));
  // SeverityNumber keeps the low byte; a number outside 0..255 is exact in TracehouseExtra's sv.
  addCond(where, params, "if(JSONHas(TracehouseExtra, 'sv'), JSONExtractInt(TracehouseExtra, 'sv'), toInt64(SeverityNumber)) >= {minSeverity:Int32}", 'minSeverity', q.minSeverity);
  const matching = `SELECT *
FROM ${logs}
WHERE ${where.join('\n  AND ')}
ORDER BY ${NEWEST_LOG}
LIMIT {limit:UInt64}`;
  if (q.maxBytes === undefined) return (await rows(client, `SELECT ${LOG_SELECT} FROM (${matching})`, params, signal)).map((r) => ({ log: decodeLog(r), bytes: 0 }));
  Object.assign(params, { maxBytes: q.maxBytes, keep: 2 });
  const sql = upToBytes(`${LOG_SELECT}, toString(bytes)`, `SELECT *, ${LOG_BYTES} AS bytes FROM (${matching})`, NEWEST_LOG);
  return (await rows(client, sql, params, signal)).map((r) => ({ log: decodeLog(r), bytes: Number(r[21]) }));
}

function extraOf<T>(s: unknown): T {
  return (typeof s === 'string' && s !== '' ? parseExact<T>(s) : {}) as T;
}

function attrs(keys: unknown, values: unknown, tags: string | undefined, whole: AnyValue[] | undefined): KeyValue[] {
  return joinAttributes(keys as string[], values as string[], tags, whole);
}

/** A SpanKind word's number (0 for a word neither the exporter nor Tracehouse writes). */
export function kindNumber(word: string): number {
  const i = (SPAN_KINDS as readonly string[]).indexOf(word);
  return i >= 0 ? i : Math.max(0, SPAN_KIND_NAMES.indexOf(word));
}

function statusNumber(word: string): number {
  const i = (STATUS_CODES as readonly string[]).indexOf(word);
  return i >= 0 ? i : Math.max(0, STATUS_CODE_NAMES.indexOf(word));
}

/** One SPAN_SELECT row → SpanRow. */
export function decodeSpan(r: unknown[]): SpanRow {
  const x = extraOf<SpanExtra>(r[26]);
  const start = x.st !== undefined ? BigInt(x.st) : BigInt(r[0] as string);
  const duration = BigInt(r[14] as string);
  const evTimes = r[17] as string[];
  const evNames = r[18] as string[];
  const evKeys = r[19] as string[][];
  const evValues = r[20] as string[][];
  const events: SpanEvent[] = evTimes.map((t, i) => {
    const e: NestedExtra = x.ev?.[i] || {};
    return {
      timeUnixNano: e.ts !== undefined ? BigInt(e.ts) : BigInt(t),
      name: evNames[i]!,
      attributes: attrs(evKeys[i], evValues[i], e.t, e.j),
      droppedAttributesCount: e.d ?? 0,
    };
  });
  const lnTrace = r[21] as string[];
  const lnSpan = r[22] as string[];
  const lnState = r[23] as string[];
  const lnKeys = r[24] as string[][];
  const lnValues = r[25] as string[][];
  const links: SpanLink[] = lnTrace.map((traceId, i) => {
    const l: NestedExtra = x.ln?.[i] || {};
    return {
      traceId,
      spanId: lnSpan[i]!,
      traceState: lnState[i]!,
      flags: l.f ?? 0,
      attributes: attrs(lnKeys[i], lnValues[i], l.t, l.j),
      droppedAttributesCount: l.d ?? 0,
    };
  });
  return {
    traceId: r[1] as string,
    spanId: r[2] as string,
    parentSpanId: r[3] as string,
    traceState: r[4] as string,
    flags: x.f ?? 0,
    name: r[5] as string,
    kind: x.k ?? kindNumber(r[6] as string),
    startTimeUnixNano: start,
    endTimeUnixNano: x.en !== undefined ? BigInt(x.en) : start + duration,
    durationNano: duration,
    statusCode: x.c ?? statusNumber(r[15] as string),
    statusMessage: r[16] as string,
    serviceName: r[7] as string,
    resource: {
      attributes: attrs(r[8], r[9], x.rt, x.rj),
      droppedAttributesCount: x.rd ?? 0,
      schemaUrl: x.ru ?? '',
    },
    scope: {
      name: r[10] as string,
      version: r[11] as string,
      attributes: x.sa ?? [],
      droppedAttributesCount: x.sd ?? 0,
      schemaUrl: x.su ?? '',
    },
    attributes: attrs(r[12], r[13], x.t, x.j),
    droppedAttributesCount: x.d ?? 0,
    events,
    droppedEventsCount: x.de ?? 0,
    links,
    droppedLinksCount: x.dl ?? 0,
  };
}

/** One LOG_SELECT row → LogRow. */
export function decodeLog(r: unknown[]): LogRow {
  const x = extraOf<LogExtra>(r[20]);
  return {
    timeUnixNano: x.tz === 1 ? 0n : x.ts !== undefined ? BigInt(x.ts) : BigInt(r[0] as string),
    observedTimeUnixNano: x.ots !== undefined ? BigInt(x.ots) : BigInt(r[19] as string),
    traceId: r[1] as string,
    spanId: r[2] as string,
    flags: x.f ?? Number(r[3]),
    severityNumber: x.sv ?? Number(r[5]),
    severityText: r[4] as string,
    body: joinValue(r[7] as string, x.bt, x.bj),
    eventName: r[18] as string,
    serviceName: r[6] as string,
    resource: {
      attributes: attrs(r[9], r[10], x.rt, x.rj),
      droppedAttributesCount: x.rd ?? 0,
      schemaUrl: r[8] as string,
    },
    scope: {
      name: r[12] as string,
      version: r[13] as string,
      attributes: attrs(r[14], r[15], x.st, x.sj),
      droppedAttributesCount: x.sd ?? 0,
      schemaUrl: r[11] as string,
    },
    attributes: attrs(r[16], r[17], x.t, x.j),
    droppedAttributesCount: x.d ?? 0,
  };
}
