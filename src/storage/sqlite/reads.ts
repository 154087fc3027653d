// The SQLite read queries, run on a read thread (read-thread.ts) with a connection of its own:
// node:sqlite is synchronous, so a query on the main thread would stall receivers and health
// checks for as long as it runs. Every function takes the connection and returns plain rows
// (bigints included) that cross to the main thread by structured clone. Every query is of one
// tenant's rows (the indexes lead with the tenant).
import type { DatabaseSync } from 'node:sqlite';
import type { LogRow, SpanRow } from '../../model/rows.ts';
import type { DependencyLink, DependencyQuery, LogQuery, Operation, OperationQuery, ScanPage, ScanQuery, TraceQuery, TraceSummary } from '../backend.ts';
import { attributesMatch, byNewestTrace, summarizeTrace, type SpanFacts } from '../query-helpers.ts';
import { logFromParts, spanFromParts } from '../otlp-chunks.ts';
import { logFromJson, spanFromJson } from '../rowjson.ts';
import { clampNs, TENANTS_SQL } from './store.ts';
import { SpanTermCheck } from './terms.ts';

interface Filter {
  where: string[];
  params: (string | bigint | number)[];
}

function filter(): Filter {
  return { where: [], params: [] };
}

function add(f: Filter, sql: string, value: string | bigint | number | undefined): void {
  if (value === undefined) return;
  f.where.push(sql);
  f.params.push(value);
}

function whereSql(f: Filter): string {
  return f.where.length ? `WHERE ${f.where.join(' AND ')}` : '';
}

/**
 * Child spans in the time range, through the runs that reach into it (span_runs_tenant_max: the
 * runs newer than the range's start, as queries are mostly of recent hours; then each run's
 * rowids), joined to their parent through the unique (trace_id, span_id) index: work grows with
 * the spans in and after the range, never the whole table. ?1 tenant, ?2 and ?3 the range.
 */
export const DEPENDENCIES_SQL = `SELECT p.service_name AS parent, c.service_name AS child, count(*) AS callCount
  FROM span_runs r INDEXED BY span_runs_tenant_max JOIN spans c ON c.rowid BETWEEN r.first_rowid AND r.last_rowid
  JOIN spans p ON p.tenant = c.tenant AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
  WHERE r.tenant = ?1 AND r.max_start_ns >= ?2 AND r.min_start_ns <= ?3
    AND c.start_ns BETWEEN ?2 AND ?3 AND c.parent_span_id <> '' AND p.service_name <> c.service_name
  GROUP BY 1, 2 ORDER BY 1, 2`;

/** A stored row's document: its protobuf bytes and its group's (the resource and scope), or the JSON of an older version. */
interface Doc {
  doc: string | Uint8Array;
  resource: Uint8Array | null;
  scope: Uint8Array | null;
}

/** The columns of a Doc, from a table joined to its group as `g`. */
const DOC_COLUMNS = 'doc, g.resource AS resource, g.scope AS scope';
const withGroup = (table: 'spans' | 'logs', notIndexed = '') => `${table} ${notIndexed} LEFT JOIN item_groups g ON g.gid = ${table}.group_id`;

function docRow<T>(d: Doc, fromJson: (doc: string) => T, fromParts: (resource: Uint8Array, scope: Uint8Array, item: Uint8Array) => T): T {
  if (typeof d.doc === 'string') return fromJson(d.doc);
  if (!d.resource || !d.scope) throw new Error('a stored row has lost its resource group');
  return fromParts(d.resource, d.scope, d.doc);
}

const spanOf = (d: Doc): SpanRow => docRow(d, spanFromJson, spanFromParts);
/** SQL function of whether a run's filter (NULL: none written) may hold the search's attribute conditions. */
const RUN_FILTER_FUNCTION = 'tracehouse_run_may_match';
const newestFirst = (a: bigint, b: bigint): number => (a > b ? -1 : a < b ? 1 : 0);
const logOf = (d: Doc): LogRow => docRow(d, logFromJson, logFromParts);

/** All spans of a trace. */
export function getTrace(db: DatabaseSync, tenant: string, traceId: string): SpanRow[] {
  const rows = db.prepare(`SELECT ${DOC_COLUMNS} FROM ${withGroup('spans')} WHERE tenant = ? AND trace_id = ?`).all(tenant, traceId) as unknown as Doc[];
  return rows.map(spanOf);
}

/**
 * Matching trace summaries, newest first (the port's ranking): the `limit` traces whose newest
 * matching span is newest. The spans are reached through their runs (span_runs), newest run first;
 * a run's newest start bounds every span in it, so the walk stops at the first run older than the
 * limit-th trace found. With attribute conditions, a run whose filter lacks a wanted term is passed
 * over (a run without a filter is not), and each span of the others is checked against its own
 * terms before its document is decoded.
 */
export function searchTraces(db: DatabaseSync, tenant: string, q: TraceQuery): TraceSummary[] {
  const endNano = q.endNano === undefined ? undefined : clampNs(q.endNano);
  const runs = filter();
  add(runs, 'tenant = ?', tenant);
  add(runs, 'service_name = ?', q.service);
  add(runs, 'max_start_ns >= ?', q.startNano);
  add(runs, 'min_start_ns <= ?', endNano);
  const spans = filter();
  spans.where.push('spans.rowid BETWEEN ? AND ?');
  add(spans, 'name = ?', q.name);
  add(spans, 'start_ns >= ?', q.startNano);
  add(spans, 'start_ns <= ?', endNano);
  add(spans, 'duration_ns >= ?', q.minDurationNano);
  add(spans, 'duration_ns <= ?', q.maxDurationNano === undefined ? undefined : clampNs(q.maxDurationNano));
  const wantAttrs = (q.attributes?.length ?? 0) > 0;
  const terms = wantAttrs ? new SpanTermCheck(q.attributes!) : undefined;
  if (terms) {
    // Runs whose filter lacks a wanted term are passed over inside the statement: no row is made
    // for them (measured: half the time of a walk that tests each run's filter in the loop). A
    // connection runs one statement at a time, so the function is this search's until the next.
    db.function(RUN_FILTER_FUNCTION, (filter) => (filter === null || terms.runMayMatch(filter as Uint8Array) ? 1 : 0));
    runs.where.push(`${RUN_FILTER_FUNCTION}(attr_filter)`);
  }
  const runStmt = db.prepare(`SELECT trace_id AS trace, first_rowid AS first, last_rowid AS last, max_start_ns AS newest FROM span_runs ${whereSql(runs)} ORDER BY max_start_ns DESC`);
  runStmt.setReadBigInts(true);
  // A run's spans are all of its trace: the rows need only their rowid and start.
  const spanStmt = db.prepare(`SELECT spans.rowid AS id, start_ns FROM spans ${whereSql(spans)}`);
  spanStmt.setReadBigInts(true);
  // A document is read only for a span that could still change the result.
  const docStmt = wantAttrs ? db.prepare(`SELECT ${DOC_COLUMNS} FROM ${withGroup('spans')} WHERE spans.rowid = ?`) : undefined;
  /** The newest matching start of each trace found. */
  const newest = new Map<string, bigint>();
  /** The limit-th newest of those once there are that many: runs older than it cannot change the result. */
  let bar: bigint | undefined;
  for (const run of runStmt.iterate(...runs.params) as Iterable<{ trace: string; first: bigint; last: bigint; newest: bigint }>) {
    if (bar !== undefined && run.newest < bar) break;
    // A run of a trace already found at least as new can change nothing.
    const seenTrace = newest.get(run.trace);
    if (seenTrace !== undefined && seenTrace >= run.newest) continue;
    const before = newest.size;
    for (const row of spanStmt.iterate(run.first, run.last, ...spans.params) as Iterable<{ id: bigint; start_ns: bigint }>) {
      const seen = newest.get(run.trace);
      if (seen !== undefined && seen >= row.start_ns) continue;
      if (docStmt) {
        const doc = docStmt.get(row.id) as unknown as Doc;
        if (terms && typeof doc.doc !== 'string' && !terms.mayMatch(doc.doc)) continue;
        if (!attributesMatch(spanOf(doc).attributes, q)) continue;
      }
      newest.set(run.trace, row.start_ns);
    }
    if (newest.size >= q.limit && (newest.size !== before || bar === undefined)) bar = [...newest.values()].sort(newestFirst)[q.limit - 1];
  }
  const traceIds = [...newest].sort((a, b) => newestFirst(a[1], b[1])).slice(0, q.limit).map(([id]) => id);
  // Summaries come from the columns alone: no document is parsed.
  const spansOf = db.prepare(
    'SELECT trace_id AS traceId, span_id AS spanId, parent_span_id AS parentSpanId, service_name AS serviceName, name, start_ns AS startTimeUnixNano, end_ns AS endTimeUnixNano, duration_ns AS durationNano, status_code AS statusCode FROM spans WHERE tenant = ? AND trace_id = ?',
  );
  spansOf.setReadBigInts(true);
  const out: TraceSummary[] = [];
  for (const id of traceIds) {
    const spans = (spansOf.all(tenant, id) as unknown as (SpanFacts & { statusCode: bigint })[]).map((s) => ({ ...s, statusCode: Number(s.statusCode) }));
    out.push(summarizeTrace(spans));
  }
  return out.sort(byNewestTrace);
}

/** Matching log records, newest first. */
export function searchLogs(db: DatabaseSync, tenant: string, q: LogQuery): LogRow[] {
  const f = filter();
  add(f, 'tenant = ?', tenant);
  add(f, 'trace_id = ?', q.traceId);
  add(f, 'service_name = ?', q.service);
  add(f, 'time_ns >= ?', q.startNano);
  add(f, 'time_ns <= ?', q.endNano === undefined ? undefined : clampNs(q.endNano));
  add(f, 'severity_number >= ?', q.minSeverity);
  const rows = db.prepare(`SELECT ${DOC_COLUMNS} FROM ${withGroup('logs')} ${whereSql(f)} ORDER BY time_ns DESC, logs.id DESC LIMIT ?`).all(...f.params, q.limit) as unknown as Doc[];
  return rows.map(logOf);
}

/** Service names from the operations table. */
export function getServices(db: DatabaseSync, tenant: string): string[] {
  // DISTINCT over the operations primary key: one step per service, not per span.
  const rows = db.prepare('SELECT DISTINCT service_name FROM operations WHERE tenant = ? ORDER BY service_name').all(tenant) as { service_name: string }[];
  return rows.map((r) => r.service_name);
}

/** A service's operations from the operations table. */
export function getOperations(db: DatabaseSync, tenant: string, q: OperationQuery): Operation[] {
  const f = filter();
  add(f, 'tenant = ?', tenant);
  add(f, 'service_name = ?', q.service);
  add(f, 'kind = ?', q.kind);
  const rows = db.prepare(`SELECT name, kind FROM operations ${whereSql(f)} ORDER BY name, kind`).all(...f.params) as { name: string; kind: number }[];
  return rows.map((r) => ({ name: r.name, kind: r.kind }));
}

/** Service-to-service calls in a time range. */
export function getDependencies(db: DatabaseSync, tenant: string, q: DependencyQuery): DependencyLink[] {
  const rows = db.prepare(DEPENDENCIES_SQL).all(tenant, clampNs(q.startNano), clampNs(q.endNano)) as { parent: string; child: string; callCount: number }[];
  return rows.map((r) => ({ parent: r.parent, child: r.child, callCount: r.callCount }));
}

/** Rows and oldest time per table, for the storage metrics. */
export function tableStats(db: DatabaseSync): { spans: number; logs: number; oldestSpanNs: bigint | null; oldestLogNs: bigint | null } {
  // count(*) walks the smallest index (not the documents); the oldest span is one seek per tenant
  // on the runs' (tenant, min_start_ns) index, the oldest log record one seek on the time index.
  const stmt = db.prepare(`SELECT (SELECT count(*) FROM spans) AS spans, (SELECT count(*) FROM logs) AS logs,
    (SELECT min((SELECT min(min_start_ns) FROM span_runs r WHERE r.tenant = t.tenant)) FROM (${TENANTS_SQL}) t) AS oldestSpanNs,
    (SELECT min(time_ns) FROM logs) AS oldestLogNs`);
  stmt.setReadBigInts(true);
  const r = stmt.get() as { spans: bigint; logs: bigint; oldestSpanNs: bigint | null; oldestLogNs: bigint | null };
  return { spans: Number(r.spans), logs: Number(r.logs), oldestSpanNs: r.oldestSpanNs, oldestLogNs: r.oldestLogNs };
}

/** The reads a read thread answers, by name, with their argument and result types. */
/**
 * One page of a scan in rowid order: new rows get larger rowids, so a concurrent writer only adds
 * rows ahead of the cursor. Each page is one statement (WAL: it never blocks the write thread,
 * and holds no snapshot between pages).
 */
function scan<T>(db: DatabaseSync, table: 'spans' | 'logs', timeCol: string, tenant: string, q: ScanQuery, parse: (doc: Doc) => T): ScanPage<T> {
  if (q.after !== undefined && !/^\d+$/.test(q.after)) throw new Error(`not a sqlite scan cursor: ${JSON.stringify(q.after)}`);
  const f = filter();
  add(f, `${table}.rowid > ?`, q.after === undefined ? undefined : BigInt(q.after));
  add(f, 'tenant = ?', tenant);
  add(f, 'service_name = ?', q.service);
  add(f, `${timeCol} >= ?`, q.startNano);
  add(f, `${timeCol} <= ?`, q.endNano === undefined ? undefined : clampNs(q.endNano));
  // NOT INDEXED: walking rowids and filtering costs one pass over the table for the whole scan;
  // a service or time index would make every page sort all matching rows again.
  const stmt = db.prepare(`SELECT ${table}.rowid AS r, ${DOC_COLUMNS} FROM ${withGroup(table, 'NOT INDEXED')} ${whereSql(f)} ORDER BY ${table}.rowid LIMIT ?`);
  stmt.setReadBigInts(true);
  const rows = stmt.all(...f.params, q.limit) as unknown as ({ r: bigint } & Doc)[];
  const last = rows[rows.length - 1];
  const page: ScanPage<T> = { rows: rows.map(parse), next: last ? last.r.toString() : q.after, done: rows.length < q.limit };
  // Position by rowid against the largest one (one index lookup), for an ETA.
  const max = (db.prepare(`SELECT max(rowid) AS m FROM ${table}`).get() as { m: number | null }).m;
  if (last && max) page.position = Math.min(1, Number(last.r) / max);
  return page;
}

export const READS = {
  scanSpans: (db: DatabaseSync, [tenant, q]: [string, ScanQuery]) => scan(db, 'spans', 'start_ns', tenant, q, spanOf),
  scanLogs: (db: DatabaseSync, [tenant, q]: [string, ScanQuery]) => scan(db, 'logs', 'time_ns', tenant, q, logOf),
  getTrace: (db: DatabaseSync, [tenant, traceId]: [string, string]) => getTrace(db, tenant, traceId),
  searchTraces: (db: DatabaseSync, [tenant, q]: [string, TraceQuery]) => searchTraces(db, tenant, q),
  searchLogs: (db: DatabaseSync, [tenant, q]: [string, LogQuery]) => searchLogs(db, tenant, q),
  getServices: (db: DatabaseSync, [tenant]: [string]) => getServices(db, tenant),
  getOperations: (db: DatabaseSync, [tenant, q]: [string, OperationQuery]) => getOperations(db, tenant, q),
  getDependencies: (db: DatabaseSync, [tenant, q]: [string, DependencyQuery]) => getDependencies(db, tenant, q),
  health: (db: DatabaseSync) => void db.prepare('SELECT 1').get(),
  tableStats: (db: DatabaseSync) => tableStats(db),
};

export type ReadOp = keyof typeof READS;
