// The SQLite read queries, run on a read thread (read-thread.ts) with a connection of its own:
// node:sqlite is synchronous, so a query on the main thread would stall receivers and health
// checks for as long as it runs. Every function takes the connection and returns plain rows
// (bigints included) that cross to the main thread by structured clone. Every query is of one
// tenant's rows (the indexes lead with the tenant).
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { LogRow, SpanRow } from '../../model/rows.ts';
import type { Signal } from '../../model/signal.ts';
import type { DependencyLink, DependencyQuery, LogQuery, LogSearch, Operation, OperationQuery, ScanPage, ScanQuery, TraceQuery, TraceRead, TraceSummary } from '../backend.ts';
import { DecodeError, type SlicingBuffer } from '../../pipeline/decode/wire.ts';
import { attributesMatch, byNewestTrace, byOperation, byStartThenId, earliestSpans, earliestWithinBytes, logSearch, summarizeTrace, traceRead, withinBytes, type SpanFacts } from '../query-helpers.ts';
import {
  ChunkFormatError, logFromParts, readSpanRecords, S_PARENT, S_PARENT_LEN, S_SPAN, spanBytes, spanEnd, spanFromParts, spanId, spanKind, spanName, spanParentId, spanStart, spanStatus, spanTraceId,
} from '../otlp-chunks.ts';
import { logFromJson, spanFromJson } from '../rowjson.ts';
import { bucketOf, clampNs, hasSchemaObject, idWord, INT64_MAX, LOG_SEVERITY, LOG_TENANTS_SQL, logOfTrace, REACH_PAST_UPTO, recordDuration, RUN_REACH, runOfTrace, startFrom, startUntil, TENANTS_SQL, timeBucket } from './store.ts';
import { bloomHas, nameTerm, SpanTermCheck } from './terms.ts';

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

/**
 * A bound on a time (column: a run's start, a log record's time) by its bucket and itself
 * (store.ts, startFrom or startUntil, whose parameter is bound twice).
 */
function timeBound(f: Filter, bound: (column: string, param: string) => string, column: string, value: bigint | undefined): void {
  if (value === undefined) return;
  f.where.push(bound(column, '?'));
  f.params.push(value, value);
}

function whereSql(f: Filter): string {
  return f.where.length ? `WHERE ${f.where.join(' AND ')}` : '';
}

/**
 * The newest start a run holding a span at `end` or earlier can have: end plus the longest reach of
 * any run (store.ts, RUN_REACH, with the runs written past its `upto`); past int64, int64's
 * largest. A file without the table (opened read-only before an open by this version made it)
 * bounds nothing.
 */
function runsUntil(db: DatabaseSync, end: bigint): bigint {
  let reach: bigint;
  try {
    const stmt = db.prepare(`SELECT max(r.ns, ${REACH_PAST_UPTO}) AS ns FROM ${RUN_REACH} r WHERE id = 0`);
    stmt.setReadBigInts(true);
    reach = (stmt.get() as { ns: bigint } | undefined)?.ns ?? INT64_MAX;
  } catch (err) {
    if (!/no such table/.test((err as Error).message)) throw err;
    reach = INT64_MAX;
  }
  const until = end + reach;
  return until > INT64_MAX ? INT64_MAX : until;
}

/** Run r reaches into the time range (?1 tenant, ?2 and ?3 the range; ?4 the newest start such a run can have, runsUntil of ?3: the walk of the index ends there). */
const RUNS_IN_RANGE = `r.tenant = ?1 AND ${startFrom('r.max_start_ns', '?2')} AND ${timeBucket('r.max_start_ns')} <= ${timeBucket('?4')} AND r.min_start_ns <= ?3`;
/** Rows of spans c through their runs r. */
const ROW_SPANS = 'span_runs r INDEXED BY span_runs_tenant_newest JOIN spans c ON c.rowid BETWEEN r.first_rowid AND r.last_rowid';
/** Row of spans c, reached through run r, is a child in the range (?1 tenant, ?2 and ?3 the range). */
const ROW_CHILD_IN_RANGE = `${RUNS_IN_RANGE} AND c.start_ns BETWEEN ?2 AND ?3 AND c.parent_span_id <> ''`;
/** Row of spans p is the parent of c. */
const ROW_PARENT = 'p.tenant = c.tenant AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id';

/**
 * Child spans in the time range among the rows of spans, through the runs that reach into it
 * (span_runs_tenant_newest: the runs newer than the range's start, as queries are mostly of recent
 * hours; then each run's rowids), joined to their parent through the unique (trace_id, span_id)
 * index: work grows with the spans in the range (and runs reaching into it), never the whole table. ?1 tenant, ?2
 * and ?3 the range, ?4 runsUntil of ?3. Runs of records have no rows in their range (getDependencies reads them).
 */
export const DEPENDENCIES_SQL = `SELECT p.service_name AS parent, c.service_name AS child, count(*) AS callCount
  FROM ${ROW_SPANS}
  JOIN spans p ON ${ROW_PARENT}
  WHERE ${ROW_CHILD_IN_RANGE} AND p.service_name <> c.service_name
  GROUP BY 1, 2 ORDER BY 1, 2`;

/** Children among rows of spans (an older version's) in the range whose parent is not a row of spans: their parent can be in a run of records (a file upgraded in the middle of a trace). The children DEPENDENCIES_SQL cannot join, by the same conditions. */
export const ROW_CHILDREN_SQL = `SELECT c.trace_id AS trace, c.parent_span_id AS parent, c.service_name AS service
  FROM ${ROW_SPANS}
  WHERE ${ROW_CHILD_IN_RANGE} AND NOT EXISTS (SELECT 1 FROM spans p WHERE ${ROW_PARENT})`;

/**
 * Stored items a read found malformed, which no read can return. SQLite keeps no checksum of its
 * pages, so bit rot in a file, or a file edited by hand, shows only when a read decodes the bytes:
 * a run of span records whose framing breaks off, a span or log record whose protobuf does not
 * decode, a run or row whose group row (resource and scope) is gone. The read leaves them out and answers with the rest (a run's records before the fault
 * included); the read thread sends them with its answer, and the store counts and logs each once
 * (index.ts). Keyed by where they are stored, so every read that meets them names them alike.
 */
export interface Unreadable {
  /** `run <rowid>` (its records from the fault on), `run <rowid> span <i>`, `spans <rowid>` or `logs <rowid>`. */
  key: string;
  signal: Signal;
  /** Items no read returns. */
  lost: number;
  message: string;
}

const unreadableFound: Unreadable[] = [];

/** The unreadable items met since the last call, if any. */
export function takeUnreadable(): Unreadable[] | undefined {
  return unreadableFound.length === 0 ? undefined : unreadableFound.splice(0);
}

/** Notes what reading `key` threw, when it is what malformed stored bytes throw; anything else (a bug of the read's own) is thrown again. */
function unreadable(err: unknown, key: string, signal: Signal, lost: number): void {
  if (!(err instanceof ChunkFormatError || err instanceof DecodeError || err instanceof SyntaxError)) throw err;
  unreadableFound.push({ key, signal, lost, message: err.message });
}

/** A stored row's document: its protobuf bytes and its group's (the resource and scope), or the JSON of an older version. */
interface Doc {
  doc: string | Uint8Array;
  resource: Uint8Array | null;
  scope: Uint8Array | null;
}

/**
 * A Doc's bytes read as a row (a byte bound on reads): its document's and its group's resource and
 * scope, which each row read holds a copy of (records of a large resource are small documents but
 * large rows).
 */
const docBytes = (d: Doc): number => d.doc.length + (d.resource?.length ?? 0) + (d.scope?.length ?? 0);

/** The columns of a Doc, from a table joined to its group as `g`, with the row's rowid as `id`. */
const DOC_COLUMNS = (table: 'spans' | 'logs') => `${table}.rowid AS id, doc, g.resource AS resource, g.scope AS scope`;
const withGroup = (table: 'spans' | 'logs', notIndexed = '') => `${table} ${notIndexed} LEFT JOIN item_groups g ON g.gid = ${table}.group_id`;

function docRow<T>(d: Doc, fromJson: (doc: string) => T, fromParts: (resource: Uint8Array, scope: Uint8Array, item: Uint8Array) => T): T {
  if (typeof d.doc === 'string') return fromJson(d.doc);
  if (!d.resource || !d.scope) throw new ChunkFormatError(LOST_GROUP);
  return fromParts(d.resource, d.scope, d.doc);
}

const spanOf = (d: Doc): SpanRow => docRow(d, spanFromJson, spanFromParts);
const logOf = (d: Doc): LogRow => docRow(d, logFromJson, logFromParts);

/** The rows of the documents of `table` that decode; the others are noted unreadable. */
function readRows<T>(docs: readonly (Doc & { id: bigint | number })[], table: 'spans' | 'logs', parse: (d: Doc) => T): T[] {
  const signal: Signal = table === 'spans' ? 'traces' : 'logs';
  const out: T[] = [];
  for (const d of docs) {
    try {
      out.push(parse(d));
    } catch (err) {
      unreadable(err, `${table} ${d.id}`, signal, 1);
    }
  }
  return out;
}

/** A run of records (store.ts, RUN_SPANS_SCHEMA): its rowid, its span count and records, its group's resource and scope. */
interface RecordRun {
  id: bigint | number;
  count: bigint | number | null;
  records: Uint8Array;
  resource: Uint8Array | null;
  scope: Uint8Array | null;
}

/** The columns of a RecordRun, from span_runs `r` joined as RECORD_RUNS. */
const RECORD_RUN_COLUMNS = 'r.rowid AS id, r.span_count AS count, b.records AS records, g.resource AS resource, g.scope AS scope';
const RECORD_RUNS = (notIndexed = '') => `span_runs r ${notIndexed} JOIN run_spans b ON b.run = r.rowid LEFT JOIN item_groups g ON g.gid = r.group_id`;

/**
 * Calls onSpan with each span record of a run of records. A run whose records break off (not a
 * span record, or one running past the end) gives the records before the fault, and the rest of
 * its count is noted unreadable.
 */
function runRecords(run: Pick<RecordRun, 'id' | 'count' | 'records'>, onSpan: (buf: SlicingBuffer, r: number) => void): void {
  readSpanRecords(run.records, onSpan, (err, read) => unreadable(err, `run ${run.id}`, 'traces', Math.max(Number(run.count ?? read) - read, 0)));
}

/** Why a stored item whose group row is gone (a damaged file) cannot be read: its resource and scope were in that row. */
const LOST_GROUP = 'its resource group is missing from the file';

/** Notes every span of a run whose group is missing unreadable. */
function lostGroup(run: Pick<RecordRun, 'id' | 'count'>): void {
  unreadable(new ChunkFormatError(LOST_GROUP), `run ${run.id}`, 'traces', Number(run.count ?? 0));
}

/** Each span of a run of records for which keep (if given) holds, as a row; a span whose bytes do not decode is noted unreadable. */
function recordSpans(run: RecordRun, out: SpanRow[], keep?: (buf: SlicingBuffer, r: number) => boolean): void {
  const { resource, scope } = run;
  if (!resource || !scope) return lostGroup(run);
  let i = 0;
  runRecords(run, (buf, r) => {
    const k = i++;
    if (keep && !keep(buf, r)) return;
    try {
      out.push(spanFromParts(resource, scope, spanBytes(buf, r)));
    } catch (err) {
      unreadable(err, `run ${run.id} span ${k}`, 'traces', 1);
    }
  });
}

/** The columns of the span record at r (times clamped as the rows' columns are). */
function recordFacts(buf: SlicingBuffer, r: number, service: string): SpanFacts {
  const start = clampNs(spanStart(buf, r));
  return {
    traceId: spanTraceId(buf, r), spanId: spanId(buf, r), parentSpanId: spanParentId(buf, r), serviceName: service, name: spanName(buf, r),
    startTimeUnixNano: start, endTimeUnixNano: clampNs(spanEnd(buf, r)), durationNano: recordDuration(buf, r, start), statusCode: spanStatus(buf, r),
  };
}

/** The columns of every span of a trace, from its rows and its runs of records. */
function traceFacts(db: DatabaseSync): (tenant: string, traceId: string) => SpanFacts[] {
  const rows = db.prepare(
    'SELECT trace_id AS traceId, span_id AS spanId, parent_span_id AS parentSpanId, service_name AS serviceName, name, start_ns AS startTimeUnixNano, end_ns AS endTimeUnixNano, duration_ns AS durationNano, status_code AS statusCode FROM spans WHERE tenant = ? AND trace_id = ?',
  );
  rows.setReadBigInts(true);
  const runs = db.prepare(`SELECT r.rowid AS id, r.span_count AS count, r.service_name AS service, b.records AS records FROM span_runs r JOIN run_spans b ON b.run = r.rowid WHERE ${runOfTrace('r')}`);
  return (tenant, traceId) => {
    const out = (rows.all(tenant, traceId) as unknown as (SpanFacts & { statusCode: bigint })[]).map((s): SpanFacts => ({ ...s, statusCode: Number(s.statusCode) }));
    for (const run of runs.iterate(tenant, traceId) as Iterable<RecordRun & { service: string }>) {
      runRecords(run, (buf, r) => out.push(recordFacts(buf, r, run.service)));
    }
    return out;
  };
}
/** SQL function of whether a run's filter (NULL: none written) may hold the search's attribute and name conditions. */
const RUN_FILTER_FUNCTION = 'tracehouse_run_may_match';
const newestFirst = (a: bigint, b: bigint): number => (a > b ? -1 : a < b ? 1 : 0);

/** All spans of a trace, or those whose id `keep` holds: its rows of spans, then its runs of records. */
export function getTrace(db: DatabaseSync, tenant: string, traceId: string, keep?: ReadonlySet<string>): SpanRow[] {
  const rows = db.prepare(`SELECT ${DOC_COLUMNS('spans')}, spans.span_id AS spanId FROM ${withGroup('spans')} WHERE tenant = ? AND trace_id = ?`).all(tenant, traceId) as unknown as (Doc & { id: number; spanId: string })[];
  const out = readRows(keep ? rows.filter((r) => keep.has(r.spanId)) : rows, 'spans', spanOf);
  const runs = db.prepare(`SELECT ${RECORD_RUN_COLUMNS} FROM ${RECORD_RUNS()} WHERE ${runOfTrace('r')} ORDER BY r.rowid`);
  for (const run of runs.iterate(tenant, traceId) as Iterable<RecordRun>) recordSpans(run, out, keep && ((buf, r) => keep.has(spanId(buf, r))));
  return out;
}

/**
 * StoreReader.readTrace: the start, id and size of every span first (the rows' columns and the
 * records' headers, nothing decoded), then the earliest `maxSpans` within `maxBytes` decoded: only
 * they go to the main thread.
 */
export function readTrace(db: DatabaseSync, tenant: string, traceId: string, maxSpans: number, maxBytes?: number): TraceRead {
  // A span's size is its document's and its group's resource and scope, which each row read holds a
  // copy of: spans of a large resource are small records but large rows.
  const groupBytes = 'coalesce(octet_length(g.resource), 0) + coalesce(octet_length(g.scope), 0)';
  const rows = db.prepare(`SELECT spans.span_id AS spanId, start_ns AS startTimeUnixNano, octet_length(doc) + ${groupBytes} AS bytes FROM ${withGroup('spans')} WHERE tenant = ? AND trace_id = ?`);
  rows.setReadBigInts(true);
  const keys = (rows.all(tenant, traceId) as unknown as { spanId: string; startTimeUnixNano: bigint; bytes: bigint }[]).map((k) => ({ spanId: k.spanId, startTimeUnixNano: k.startTimeUnixNano, bytes: Number(k.bytes) }));
  const runs = db.prepare(`SELECT r.rowid AS id, r.span_count AS count, b.records AS records, ${groupBytes} AS groupBytes FROM ${RECORD_RUNS()} WHERE ${runOfTrace('r')}`);
  for (const run of runs.iterate(tenant, traceId) as Iterable<RecordRun & { groupBytes: number }>) runRecords(run, (buf, r) => keys.push({ spanId: spanId(buf, r), startTimeUnixNano: clampNs(spanStart(buf, r)), bytes: spanBytes(buf, r).length + run.groupBytes }));
  const { kept, bytes, cut } = earliestWithinBytes(keys, maxSpans, (k) => k.bytes, maxBytes);
  const read = (spans: SpanRow[]): TraceRead => traceRead(spans, keys.length, maxBytes, bytes, cut);
  if (kept.length === keys.length) return read(getTrace(db, tenant, traceId));
  const keep = new Set(kept.map((k) => k.spanId));
  const spans = getTrace(db, tenant, traceId, keep);
  // Some of the earliest do not decode (a damaged file): the earliest of those that do, as getTrace reads them.
  if (spans.length < kept.length) return read(earliestSpans(getTrace(db, tenant, traceId), kept.length).sort(byStartThenId));
  return read(spans.sort(byStartThenId));
}

/**
 * Matching trace summaries, newest first (the port's ranking): the `limit` traces whose newest
 * matching span is newest. The spans are reached through their runs (span_runs), newest run first;
 * a run's newest start bounds every span in it, so the walk stops at the first run older than the
 * limit-th trace found. With attribute conditions, a run whose filter lacks a wanted term is passed
 * over (a run without a filter is not), and each span of the others is checked against its own
 * terms before its document is decoded. A run of records is checked span by span from its records,
 * a run of rows through the spans table.
 */
export function searchTraces(db: DatabaseSync, tenant: string, q: TraceQuery): TraceSummary[] {
  const endNano = q.endNano === undefined ? undefined : clampNs(q.endNano);
  const runs = filter();
  add(runs, 'tenant = ?', tenant);
  add(runs, 'service_name = ?', q.service);
  timeBound(runs, startFrom, 'max_start_ns', q.startNano);
  add(runs, 'min_start_ns <= ?', endNano);
  // The newest start of a run reaching into the range is at most its end plus the runs' longest reach: the walk of the index ends there too.
  add(runs, `${timeBucket('max_start_ns')} <= ${timeBucket('?')}`, endNano === undefined ? undefined : runsUntil(db, endNano));
  // A run of records keeps its longest span's duration.
  add(runs, '(span_count IS NULL OR max_duration_ns >= ?)', q.minDurationNano);
  const spans = filter();
  spans.where.push('spans.rowid BETWEEN ? AND ?');
  add(spans, 'name = ?', q.name);
  add(spans, 'start_ns >= ?', q.startNano);
  add(spans, 'start_ns <= ?', endNano);
  add(spans, 'duration_ns >= ?', q.minDurationNano);
  add(spans, 'duration_ns <= ?', q.maxDurationNano === undefined ? undefined : clampNs(q.maxDurationNano));
  add(spans, 'status_code = ?', q.statusCode);
  const wantAttrs = (q.attributes?.length ?? 0) > 0;
  const terms = wantAttrs ? new SpanTermCheck(q.attributes!) : undefined;
  // The filter of a run of records holds its spans' names too (not that of a run of rows).
  const name = q.name === undefined ? undefined : nameTerm(q.name);
  if (terms || name) {
    // Runs whose filter lacks a wanted term are passed over inside the statement: no row is made
    // for them (measured: half the time of a walk that tests each run's filter in the loop). A
    // connection runs one statement at a time, so the function is this search's until the next.
    db.function(RUN_FILTER_FUNCTION, (filter, recorded) => {
      if (filter === null) return 1;
      const f = filter as Uint8Array;
      return (!terms || terms.runMayMatch(f)) && (!name || !recorded || bloomHas(f, name[0], name[1])) ? 1 : 0;
    });
    runs.where.push(`${RUN_FILTER_FUNCTION}(attr_filter, span_count IS NOT NULL)`);
  }
  const runStmt = db.prepare(`SELECT rowid AS id, trace_id AS trace, first_rowid AS first, last_rowid AS last, max_start_ns AS newest, span_count AS count, group_id AS gid FROM span_runs ${whereSql(runs)} ORDER BY ${timeBucket('max_start_ns')} DESC, max_start_ns DESC`);
  runStmt.setReadBigInts(true);
  // A run's spans are all of its trace: the rows need only their rowid and start.
  const spanStmt = db.prepare(`SELECT spans.rowid AS id, start_ns FROM spans ${whereSql(spans)}`);
  spanStmt.setReadBigInts(true);
  // A document is read only for a span that could still change the result. A row of spans has
  // no column of its kind: its document tells it.
  const docStmt = wantAttrs || q.kind !== undefined ? db.prepare(`SELECT ${DOC_COLUMNS('spans')} FROM ${withGroup('spans')} WHERE spans.rowid = ?`) : undefined;
  const recordsStmt = db.prepare('SELECT records FROM run_spans WHERE run = ?');
  const groupOf = groupReader(db);
  /** The span conditions but attributes, as the rows' columns compare them. */
  const conditions: SpanConditions = {
    name: q.name, startNano: q.startNano, endNano, minDurationNano: q.minDurationNano,
    maxDurationNano: q.maxDurationNano === undefined ? undefined : clampNs(q.maxDurationNano),
    statusCode: q.statusCode, kind: q.kind,
  };
  /** The newest matching start of each trace found. */
  const newest = new Map<string, bigint>();
  /** The limit-th newest of those once there are that many: runs older than it cannot change the result. */
  let bar: bigint | undefined;
  type Run = { id: bigint; trace: string; first: bigint; last: bigint; newest: bigint; count: bigint | null; gid: bigint | null };
  for (const run of runStmt.iterate(...runs.params) as Iterable<Run>) {
    if (bar !== undefined && run.newest < bar) break;
    // A run of a trace already found at least as new can change nothing.
    const seenTrace = newest.get(run.trace);
    if (seenTrace !== undefined && seenTrace >= run.newest) continue;
    const before = newest.size;
    if (run.count !== null) {
      const { records } = recordsStmt.get(run.id) as { records: Uint8Array };
      let i = 0;
      let groupLost = false;
      runRecords({ id: run.id, count: run.count, records }, (buf, r) => {
        const k = i++;
        if (groupLost) return;
        const start = clampNs(spanStart(buf, r));
        const seen = newest.get(run.trace);
        if (seen !== undefined && seen >= start) return;
        if (!recordMatches(buf, r, start, conditions)) return;
        if (terms) {
          const bytes = spanBytes(buf, r);
          try {
            if (!terms.mayMatch(bytes)) return;
            const g = groupOf(run.gid);
            if (!g) {
              groupLost = true;
              return lostGroup(run);
            }
            if (!attributesMatch(spanFromParts(g.resource, g.scope, bytes).attributes, q)) return;
          } catch (err) {
            unreadable(err, `run ${run.id} span ${k}`, 'traces', 1);
            return;
          }
        }
        newest.set(run.trace, start);
      });
    } else for (const row of spanStmt.iterate(run.first, run.last, ...spans.params) as Iterable<{ id: bigint; start_ns: bigint }>) {
      const seen = newest.get(run.trace);
      if (seen !== undefined && seen >= row.start_ns) continue;
      if (docStmt) {
        const doc = docStmt.get(row.id) as unknown as Doc & { id: bigint };
        try {
          if (terms && typeof doc.doc !== 'string' && !terms.mayMatch(doc.doc)) continue;
          const span = spanOf(doc);
          if (q.kind !== undefined && span.kind !== q.kind) continue;
          if (!attributesMatch(span.attributes, q)) continue;
        } catch (err) {
          unreadable(err, `spans ${doc.id}`, 'traces', 1);
          continue;
        }
      }
      newest.set(run.trace, row.start_ns);
    }
    if (newest.size >= q.limit && (newest.size !== before || bar === undefined)) bar = [...newest.values()].sort(newestFirst)[q.limit - 1];
  }
  const traceIds = [...newest].sort((a, b) => newestFirst(a[1], b[1])).slice(0, q.limit).map(([id]) => id);
  // Summaries come from the columns and the records' heads alone: no document is parsed.
  const factsOf = traceFacts(db);
  return traceIds.map((id) => summarizeTrace(factsOf(tenant, id))).sort(byNewestTrace);
}

/** A search's conditions on a span's own columns, as they compare with the rows' (clamped). */
interface SpanConditions {
  name: string | undefined;
  startNano: bigint | undefined;
  endNano: bigint | undefined;
  minDurationNano: bigint | undefined;
  maxDurationNano: bigint | undefined;
  statusCode: number | undefined;
  kind: number | undefined;
}

/** Whether the span record at r (its start clamped) meets the conditions. */
function recordMatches(buf: SlicingBuffer, r: number, start: bigint, q: SpanConditions): boolean {
  if ((q.startNano !== undefined && start < q.startNano) || (q.endNano !== undefined && start > q.endNano)) return false;
  if (q.name !== undefined && spanName(buf, r) !== q.name) return false;
  if (q.statusCode !== undefined && spanStatus(buf, r) !== q.statusCode) return false;
  if (q.kind !== undefined && spanKind(buf, r) !== q.kind) return false;
  if (q.minDurationNano === undefined && q.maxDurationNano === undefined) return true;
  const duration = recordDuration(buf, r, start);
  return (q.minDurationNano === undefined || duration >= q.minDurationNano) && (q.maxDurationNano === undefined || duration <= q.maxDurationNano);
}

/** Reads groups' resource and scope by id, each once per reader; undefined for one missing from the file. */
function groupReader(db: DatabaseSync): (gid: bigint | number | null) => { resource: Uint8Array; scope: Uint8Array } | undefined {
  const stmt = db.prepare('SELECT resource, scope FROM item_groups WHERE gid = ?');
  const seen = new Map<bigint | number, { resource: Uint8Array; scope: Uint8Array }>();
  return (gid) => {
    const known = gid === null ? undefined : seen.get(gid);
    if (known) return known;
    const g = gid === null ? undefined : (stmt.get(gid) as { resource: Uint8Array; scope: Uint8Array } | undefined);
    if (g) seen.set(gid!, g);
    return g;
  };
}

/** Matching log records, newest first (`cut` when q.maxBytes left some out). */
export function searchLogs(db: DatabaseSync, tenant: string, q: LogQuery): LogSearch {
  const f = filter();
  if (q.traceId === undefined) add(f, 'logs.tenant = ?', tenant);
  else {
    // Through the trace index (store.ts, logOfTrace; its ?1 and ?2 are bound first).
    f.where.push(logOfTrace);
    f.params.push(tenant, q.traceId);
  }
  add(f, 'service_name = ?', q.service);
  // Bounded by bucket and time, newest bucket first, each bucket's records sorted as it is reached (store.ts, LOG_TIME_INDEXES).
  timeBound(f, startFrom, 'time_ns', q.startNano);
  timeBound(f, startUntil, 'time_ns', q.endNano === undefined ? undefined : clampNs(q.endNano));
  add(f, 'severity_number >= ?', q.minSeverity);
  let from = withGroup('logs');
  let bucketOrder = timeBucket('time_ns');
  if (q.minSeverity !== undefined && q.traceId === undefined && q.service === undefined && hasSchemaObject(db, LOG_SEVERITY)) {
    // By least severity alone: the records of the buckets whose highest severity reaches it only
    // (store.ts, LOG_SEVERITY), newest bucket first, each read through logs_tenant_bucket, until
    // the limit. The unary + lets the bucket's index take the summary's bucket (an INTEGER
    // column's affinity kept it to the tenant: every record of the tenant's range was read).
    const buckets = filter();
    add(buckets, 's.tenant = ?', tenant);
    add(buckets, 's.severity >= ?', q.minSeverity);
    add(buckets, `s.bucket >= ${timeBucket('?')}`, q.startNano);
    add(buckets, `s.bucket <= ${timeBucket('?')}`, q.endNano === undefined ? undefined : clampNs(q.endNano));
    f.where.unshift(...buckets.where, `${timeBucket('time_ns')} = +s.bucket`);
    f.params.unshift(...buckets.params);
    from = `${LOG_SEVERITY} s CROSS JOIN ${from}`;
    bucketOrder = 's.bucket';
  }
  // Row by row, to stop at q.maxBytes before the documents past it are read.
  const stmt = db.prepare(`SELECT ${DOC_COLUMNS('logs')} FROM ${from} ${whereSql(f)} ORDER BY ${bucketOrder} DESC, time_ns DESC, logs.id DESC LIMIT ?`);
  const { kept, cut } = withinBytes(stmt.iterate(...f.params, q.limit) as Iterable<Doc & { id: number }>, docBytes, q.maxBytes);
  return logSearch(readRows(kept, 'logs', logOf), cut);
}

/** Service names from the operations table. */
export function getServices(db: DatabaseSync, tenant: string): string[] {
  // DISTINCT over the operations primary key: one step per service, not per span.
  const rows = db.prepare('SELECT DISTINCT service_name FROM operations WHERE tenant = ? ORDER BY service_name').all(tenant) as { service_name: string }[];
  // In the port's order, as the other stores list them: SQLite orders text by its UTF-8 bytes,
  // JavaScript by UTF-16 code units, and the two differ for characters past U+FFFF.
  return rows.map((r) => r.service_name).sort();
}

/** A service's operations from the operations table. */
export function getOperations(db: DatabaseSync, tenant: string, q: OperationQuery): Operation[] {
  const f = filter();
  add(f, 'tenant = ?', tenant);
  add(f, 'service_name = ?', q.service);
  add(f, 'kind = ?', q.kind);
  const rows = db.prepare(`SELECT name, kind FROM operations ${whereSql(f)} ORDER BY name, kind`).all(...f.params) as { name: string; kind: number }[];
  // In the port's order (byOperation), not SQLite's by UTF-8 bytes (see getServices).
  return rows.map((r) => ({ name: r.name, kind: r.kind })).sort(byOperation);
}

/**
 * Spans getDependencies holds at most before it resolves the calls it has read (three numbers
 * each, ~240 bytes with their traces' entries): a day's window of a busy store would otherwise be
 * held whole (150 MiB at 600k spans).
 */
export const DEPENDENCY_SPANS_HELD = 65_536;

/**
 * Pages of the runs getDependencies reads (dependencyRuns): at most `runs` runs and `bytes` bytes
 * of their records each, a run larger than that read alone. Read one row per run, node:sqlite made
 * an object per run (~2 µs with its records: 1.5 s of a week's 500k runs); a page is one row. A
 * page's records are held about three times as it is read (SQLite's BLOB as it grows, node's copy):
 * 4 MiB holds thousands of runs of a few small spans; without a byte bound, 4,096 runs of a request
 * each (up to 64 MiB, receiver.maxMessageBytes) made a page of GiBs, or "string or blob too big".
 */
export const DEPENDENCY_PAGE = { runs: 4096, bytes: 4 << 20 };

/** A run getDependencies reads: its records, trace and service. */
interface DependencyRun {
  id: number;
  count: number | null;
  trace: string;
  service: string;
  records: Uint8Array;
}

/**
 * The walk of the runs that reach into the range (RUNS_IN_RANGE's, ?1 to ?4) in the order of
 * span_runs_tenant_newest, from after run ?6 of bucket ?5 on (a page's first run; -1 for the
 * first page), at most ?7 runs. Its lower bound is one term on the bucket (?5, the range's start's
 * or a later one): bounded by the range's start and the page's start apart, SQLite walked the index
 * from the range's start for every page.
 */
const PAGE_WALK = `FROM span_runs r INDEXED BY span_runs_tenant_newest JOIN run_spans b ON b.run = r.rowid
  WHERE r.tenant = ?1 AND ${timeBucket('r.max_start_ns')} >= ?5 AND ${timeBucket('r.max_start_ns')} <= ${timeBucket('?4')} AND (${timeBucket('r.max_start_ns')} > ?5 OR r.rowid > ?6)
    AND r.max_start_ns >= ?2 AND r.min_start_ns <= ?3
  ORDER BY ${timeBucket('r.max_start_ns')}, r.rowid LIMIT ?7`;

/** The SQL function of a page's byte bound (pageBound). */
const PAGE_FITS = 'dependency_page_fits';

/**
 * A page's runs (of the walk's first ?7, those that fit in its byte bound: PAGE_FITS) as one row:
 * their rowids, span counts (-1 for none) and records' lengths as text, traces and services as
 * JSON arrays, records one after another in one BLOB, and the last run's bucket (the walk is in
 * order of bucket). A run past the bound is left out, its records not read (a BLOB's length is in
 * its record's header).
 */
const PAGE_RUNS_SQL = `SELECT count(*) AS n, group_concat(id) AS ids, group_concat(count) AS counts, group_concat(size) AS sizes, json_group_array(trace) AS traces,
  json_group_array(service) AS services, CAST(group_concat(records, x'') AS BLOB) AS records, max(bucket) AS bucket FROM (
  SELECT r.rowid AS id, coalesce(r.span_count, -1) AS count, length(b.records) AS size, r.trace_id AS trace, r.service_name AS service, ${timeBucket('r.max_start_ns')} AS bucket,
    CASE WHEN ${PAGE_FITS}(length(b.records) + length(r.trace_id) + length(r.service_name)) THEN b.records END AS records ${PAGE_WALK}
) WHERE records IS NOT NULL`;

/** A page's byte bound as the walk reaches its runs: bytes left, whether a run did not fit (then none after it does). */
interface PageBound {
  left: number;
  full: boolean;
}

/**
 * Each connection's PAGE_FITS, which SQLite calls with the size of each run as the walk reaches it
 * (in the walk's order: the index gives it, no sort), so a page stops taking runs at its byte bound
 * without a pass of its own over the runs' sizes first (that pass was a third of a week's read).
 * A run larger than a page's bound alone fits in none: a page ends before it, and it is read as a
 * row of its own (PAGE_RUN_SQL), as a page's BLOB would hold it and copies of it as it grew.
 */
const pageBounds = new WeakMap<DatabaseSync, PageBound>();

function pageBound(db: DatabaseSync): PageBound {
  let bound = pageBounds.get(db);
  if (!bound) {
    const b: PageBound = { left: 0, full: false };
    db.function(PAGE_FITS, { deterministic: false }, (size) => {
      if (b.full || (size as number) > b.left) {
        b.full = true;
        return 0;
      }
      b.left -= size as number;
      return 1;
    });
    pageBounds.set(db, (bound = b));
  }
  return bound;
}

/** The walk's next run as a row (a run larger than a page, PAGE_RUNS_SQL). */
const PAGE_RUN_SQL = `SELECT r.rowid AS id, r.span_count AS count, r.trace_id AS trace, r.service_name AS service, b.records AS records, ${timeBucket('r.max_start_ns')} AS bucket ${PAGE_WALK}`;

const numbers = (list: string): number[] => list.split(',').map(Number);

/**
 * The runs that reach into the range [start, end] (RUNS_IN_RANGE), a page at a time. A page cut
 * at its byte bound walked runs past it for nothing (their sizes only): the next walks twice as
 * many runs as it took, growing back to page.runs while pages are not cut.
 */
function* dependencyRuns(db: DatabaseSync, tenant: string, start: bigint, end: bigint, until: bigint, page: { runs: number; bytes: number }): Generator<DependencyRun> {
  const bound = pageBound(db);
  const runsOf = db.prepare(PAGE_RUNS_SQL);
  let runOf: StatementSync | undefined;
  let bucket = bucketOf(start);
  let after = -1;
  let limit = page.runs;
  for (;;) {
    Object.assign(bound, { left: page.bytes, full: false });
    const row = runsOf.get(tenant, start, end, until, bucket, after, limit) as { n: number; ids: string; counts: string; sizes: string; traces: string; services: string; records: Uint8Array; bucket: number };
    if (row.n > 0) {
      const [ids, counts, sizes, traces, services] = [numbers(row.ids), numbers(row.counts), numbers(row.sizes), JSON.parse(row.traces) as string[], JSON.parse(row.services) as string[]];
      for (let i = 0, at = 0; i < ids.length; at += sizes[i]!, i++) {
        yield { id: ids[i]!, count: counts[i]! < 0 ? null : counts[i]!, trace: traces[i]!, service: services[i]!, records: row.records.subarray(at, at + sizes[i]!) };
      }
      [bucket, after] = [BigInt(row.bucket), ids[ids.length - 1]!];
    } else if (bound.full) {
      // The walk's next run is larger than a page.
      const run = (runOf ??= db.prepare(PAGE_RUN_SQL)).get(tenant, start, end, until, bucket, after, 1) as unknown as DependencyRun & { bucket: number };
      yield run;
      [bucket, after] = [BigInt(run.bucket), run.id];
    }
    if (!bound.full && row.n < limit) return;
    limit = bound.full ? Math.min(page.runs, 2 * Math.max(row.n, 1)) : Math.min(page.runs, 2 * limit);
  }
}

/**
 * Service-to-service calls in a time range: among the rows of spans (DEPENDENCIES_SQL), then for
 * the children in the runs of records that reach into the range and the rows of spans whose parent
 * is not a row (ROW_CHILDREN_SQL), their parent found among the spans of the runs read, or else
 * among its trace's. The runs are read in batches of about `heldSpans` spans, each batch's calls
 * resolved before the next is read: a parent in a run of another batch is found among its trace's.
 * SQLite gives them a page (DEPENDENCY_PAGE) at a time.
 */
export function getDependencies(db: DatabaseSync, tenant: string, q: DependencyQuery, heldSpans = DEPENDENCY_SPANS_HELD, page = DEPENDENCY_PAGE): DependencyLink[] {
  const start = clampNs(q.startNano);
  const end = clampNs(q.endNano);
  const links = new Map<string, DependencyLink>();
  const call = (parent: string, child: string, n: number) => {
    const key = `${parent.length}:${parent}${child}`;
    const link = links.get(key);
    if (link) link.callCount += n;
    else links.set(key, { parent, child, callCount: n });
  };
  const until = runsUntil(db, end);
  // Rows of spans are an older version's: in a file without any, the two walks of the range's runs that look for them find nothing (0.17 s of a week of 1M spans).
  const rows = (db.prepare('SELECT EXISTS (SELECT 1 FROM spans) AS e').get() as { e: number }).e === 1;
  if (rows) for (const r of db.prepare(DEPENDENCIES_SQL).all(tenant, start, end, until) as { parent: string; child: string; callCount: number }[]) call(r.parent, r.child, r.callCount);
  // By trace, without a string per span: each span read as its id's two 32-bit words and its
  // service, and each child in the range whose parent is not in its own run (a parent in its run
  // has its service) as its parent's words and its service.
  const traces = new Map<string, { spans: number[]; services: string[]; children: number[] }>();
  const factsOf = traceFacts(db);
  /** Numbers held in the traces' spans and children (three per span). */
  let held = 0;
  const resolve = (): void => {
    for (const [traceId, t] of traces) {
      if (t.children.length === 0) continue;
      const found = serviceFinder(t.spans, t.services);
      /** The spans of the trace outside the runs read (older, in another batch, or rows of spans), once. */
      let whole: typeof found | undefined;
      for (let i = 0; i < t.children.length; i += 3) {
        const [lo, hi] = [t.children[i]!, t.children[i + 1]!];
        let parentService = found(lo, hi);
        if (parentService === undefined) {
          whole ??= wholeTrace(factsOf(tenant, traceId));
          parentService = whole(lo, hi);
        }
        const service = t.services[t.children[i + 2]!]!;
        if (parentService !== undefined && parentService !== service) call(parentService, service, 1);
      }
    }
    traces.clear();
    held = 0;
  };
  /** The run's span ids, by their two words folded (idWord) to the low word (a fold two ids share leaves one: the other's children are then looked up by the trace). */
  const inRun = new Map<number, number>();
  for (const run of dependencyRuns(db, tenant, start, end, until, page)) {
    let trace = traces.get(run.trace);
    if (!trace) traces.set(run.trace, (trace = { spans: [], services: [], children: [] }));
    const t = trace;
    const before = t.spans.length + t.children.length;
    const service = t.services.push(run.service) - 1;
    inRun.clear();
    runRecords(run, (buf, r) => {
      t.spans.push(buf.readInt32LE(r + S_SPAN), buf.readInt32LE(r + S_SPAN + 4), service);
      inRun.set(idWord(buf, r + S_SPAN), buf.readInt32LE(r + S_SPAN));
    });
    runRecords(run, (buf, r) => {
      if (buf[r + S_PARENT_LEN] === 0 || inRun.get(idWord(buf, r + S_PARENT)) === buf.readInt32LE(r + S_PARENT)) return;
      const s = clampNs(spanStart(buf, r));
      if (s >= start && s <= end) t.children.push(buf.readInt32LE(r + S_PARENT), buf.readInt32LE(r + S_PARENT + 4), service);
    });
    held += t.spans.length + t.children.length - before;
    if (held >= 3 * heldSpans) resolve();
  }
  // Children among rows of spans whose parent is not one: looked up as the runs' children are.
  for (const o of (rows ? db.prepare(ROW_CHILDREN_SQL).iterate(tenant, start, end, until) : []) as Iterable<{ trace: string; parent: string; service: string }>) {
    const parent = Buffer.from(o.parent, 'hex');
    if (parent.length !== 8) continue;
    let t = traces.get(o.trace);
    if (!t) traces.set(o.trace, (t = { spans: [], services: [], children: [] }));
    t.children.push(parent.readInt32LE(0), parent.readInt32LE(4), t.services.push(o.service) - 1);
    held += 3;
    if (held >= 3 * heldSpans) resolve();
  }
  resolve();
  return [...links.values()].sort((a, b) => (a.parent < b.parent ? -1 : a.parent > b.parent ? 1 : a.child < b.child ? -1 : a.child > b.child ? 1 : 0));
}

/**
 * The service of a span by its id's two 32-bit words, among spans given as [lo, hi, service
 * index] triples: a map by the two words folded (lo ^ hi), with a scan for the rare ids that share
 * a fold. Keyed by the low word alone, ids from a counter (whose low words are all 0) made every
 * lookup a scan of the trace.
 */
function serviceFinder(spans: readonly number[], services: readonly string[]): (lo: number, hi: number) => string | undefined {
  const byFold = new Map<number, number>();
  for (let i = spans.length - 3; i >= 0; i -= 3) byFold.set(spans[i]! ^ spans[i + 1]!, i);
  return (lo, hi) => {
    const at = byFold.get(lo ^ hi);
    if (at === undefined) return undefined;
    if (spans[at] === lo && spans[at + 1] === hi) return services[spans[at + 2]!];
    for (let i = 0; i < spans.length; i += 3) if (spans[i] === lo && spans[i + 1] === hi) return services[spans[i + 2]!];
    return undefined;
  };
}

/** serviceFinder over a trace's spans read whole (their hex ids). */
function wholeTrace(facts: readonly SpanFacts[]): (lo: number, hi: number) => string | undefined {
  const spans: number[] = [];
  for (const [k, f] of facts.entries()) {
    const id = Buffer.from(f.spanId, 'hex');
    spans.push(id.readInt32LE(0), id.readInt32LE(4), k);
  }
  return serviceFinder(spans, facts.map((f) => f.serviceName));
}

/** Rows and oldest time per table, for the storage metrics. */
export function tableStats(db: DatabaseSync): { spans: number; logs: number; oldestSpanNs: bigint | null; oldestLogNs: bigint | null } {
  // count(*) walks the smallest index (not the documents), and the runs of records hold their
  // count (a pass over the runs, not their records); the oldest span is one seek per tenant
  // on the runs' (tenant, oldest start's bucket) index and a sort of that bucket's runs, and so
  // is the oldest log record on the records' (tenant, bucket) index.
  const stmt = db.prepare(`SELECT (SELECT count(*) FROM spans) + (SELECT coalesce(sum(span_count), 0) FROM span_runs) AS spans, (SELECT count(*) FROM logs) AS logs,
    (SELECT min((SELECT min_start_ns FROM span_runs r WHERE r.tenant = t.tenant ORDER BY ${timeBucket('min_start_ns')}, min_start_ns LIMIT 1)) FROM (${TENANTS_SQL}) t) AS oldestSpanNs,
    (SELECT min((SELECT time_ns FROM logs l INDEXED BY logs_tenant_bucket WHERE l.tenant = t.tenant ORDER BY ${timeBucket('time_ns')}, time_ns LIMIT 1)) FROM (${LOG_TENANTS_SQL}) t) AS oldestLogNs`);
  stmt.setReadBigInts(true);
  const r = stmt.get() as { spans: bigint; logs: bigint; oldestSpanNs: bigint | null; oldestLogNs: bigint | null };
  return { spans: Number(r.spans), logs: Number(r.logs), oldestSpanNs: r.oldestSpanNs, oldestLogNs: r.oldestLogNs };
}

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
  const stmt = db.prepare(`SELECT ${DOC_COLUMNS(table)} FROM ${withGroup(table, 'NOT INDEXED')} ${whereSql(f)} ORDER BY ${table}.rowid LIMIT ?`);
  stmt.setReadBigInts(true);
  // Row by row, to stop at q.maxBytes before the documents past it are read.
  const { kept: rows, cut } = withinBytes(stmt.iterate(...f.params, q.limit) as Iterable<{ id: bigint } & Doc>, docBytes, q.maxBytes);
  const last = rows[rows.length - 1];
  // A page is its rows read, the unreadable left out: the cursor and the end go by the rows read.
  const page: ScanPage<T> = { rows: readRows(rows, table, parse), next: last ? last.id.toString() : q.after, done: !cut && rows.length < q.limit };
  // Position by rowid against the largest one (one index lookup), for an ETA.
  const max = (db.prepare(`SELECT max(rowid) AS m FROM ${table}`).get() as { m: number | null }).m;
  if (last && max) page.position = Math.min(1, Number(last.id) / max);
  return page;
}

/** A cursor in the runs of records: `r<run rowid>.<spans of that run passed>`. */
const RECORD_CURSOR = /^r(\d+)\.(\d+)$/;

/**
 * One page of a scan of spans: the rows of spans in rowid order, then the runs of records in
 * rowid order (both only grow ahead of a cursor as spans are written), each run's spans in order.
 */
function scanSpans(db: DatabaseSync, tenant: string, q: ScanQuery): ScanPage<SpanRow> {
  if (q.after === undefined || !q.after.startsWith('r')) {
    const page = scan(db, 'spans', 'start_ns', tenant, q, spanOf);
    if (!page.done) return page;
    const rest = scanRecordRuns(db, tenant, { ...q, after: 'r0.0', limit: q.limit - page.rows.length });
    return { ...rest, rows: [...page.rows, ...rest.rows], next: rest.rows.length > 0 ? rest.next : page.next };
  }
  return scanRecordRuns(db, tenant, q);
}

function scanRecordRuns(db: DatabaseSync, tenant: string, q: ScanQuery): ScanPage<SpanRow> {
  const at = RECORD_CURSOR.exec(q.after ?? '');
  if (!at) throw new Error(`not a sqlite scan cursor: ${JSON.stringify(q.after)}`);
  const [fromRun, passed] = [BigInt(at[1]!), Number(at[2])];
  const endNano = q.endNano === undefined ? undefined : clampNs(q.endNano);
  const f = filter();
  add(f, 'r.rowid >= ?', fromRun);
  add(f, 'r.tenant = ?', tenant);
  add(f, 'r.service_name = ?', q.service);
  add(f, 'r.max_start_ns >= ?', q.startNano);
  add(f, 'r.min_start_ns <= ?', endNano);
  // NOT INDEXED: in rowid order, as the rows of spans (see scan).
  const stmt = db.prepare(`SELECT ${RECORD_RUN_COLUMNS} FROM ${RECORD_RUNS('NOT INDEXED')} ${whereSql(f)} ORDER BY r.rowid`);
  stmt.setReadBigInts(true);
  const rows: SpanRow[] = [];
  let next = q.after;
  let bytes = 0;
  let cut = false;
  for (const run of stmt.iterate(...f.params) as Iterable<RecordRun>) {
    let k = 0;
    recordSpans(run, rows, (buf, r) => {
      const i = k++;
      if ((run.id === fromRun && i < passed) || rows.length >= q.limit || cut) return false;
      const start = clampNs(spanStart(buf, r));
      if ((q.startNano !== undefined && start < q.startNano) || (endNano !== undefined && start > endNano)) return false;
      const size = spanBytes(buf, r).length + (run.resource?.length ?? 0) + (run.scope?.length ?? 0);
      if (q.maxBytes !== undefined && rows.length > 0 && bytes + size > q.maxBytes) {
        cut = true;
        return false;
      }
      bytes += size;
      next = `r${run.id}.${i + 1}`;
      return true;
    });
    if (rows.length >= q.limit || cut) break;
  }
  const page: ScanPage<SpanRow> = { rows, next, done: !cut && rows.length < q.limit };
  const max = (db.prepare('SELECT max(rowid) AS m FROM span_runs').get() as { m: number | null }).m;
  const last = RECORD_CURSOR.exec(next ?? '');
  if (last && max) page.position = Math.min(1, Number(last[1]) / max);
  return page;
}

/**
 * Runs a read's statements in one read transaction, so that they all see the file as it was at
 * the first (WAL keeps that snapshot for it): each statement on its own sees the file as of when it
 * started, and a batch committed between two (a trace read's span count and its spans, a search's
 * runs and its summaries) was in one and not the other.
 */
function inSnapshot<T>(db: DatabaseSync, read: () => T): T {
  db.exec('BEGIN');
  let result: T;
  try {
    result = read();
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
  db.exec('COMMIT');
  return result;
}

/** The reads a read thread answers, by name, with their argument and result types. */
export const READS = {
  scanSpans: (db: DatabaseSync, [tenant, q]: [string, ScanQuery]) => inSnapshot(db, () => scanSpans(db, tenant, q)),
  scanLogs: (db: DatabaseSync, [tenant, q]: [string, ScanQuery]) => inSnapshot(db, () => scan(db, 'logs', 'time_ns', tenant, q, logOf)),
  getTrace: (db: DatabaseSync, [tenant, traceId]: [string, string]) => inSnapshot(db, () => getTrace(db, tenant, traceId)),
  readTrace: (db: DatabaseSync, [tenant, traceId, maxSpans, maxBytes]: [string, string, number, number?]) => inSnapshot(db, () => readTrace(db, tenant, traceId, maxSpans, maxBytes)),
  searchTraces: (db: DatabaseSync, [tenant, q]: [string, TraceQuery]) => inSnapshot(db, () => searchTraces(db, tenant, q)),
  // An array's own properties do not cross to the main thread: `cut` goes beside it.
  searchLogs: (db: DatabaseSync, [tenant, q]: [string, LogQuery]) => {
    const rows = searchLogs(db, tenant, q);
    return { rows, cut: rows.cut === true };
  },
  getServices: (db: DatabaseSync, [tenant]: [string]) => getServices(db, tenant),
  getOperations: (db: DatabaseSync, [tenant, q]: [string, OperationQuery]) => getOperations(db, tenant, q),
  getDependencies: (db: DatabaseSync, [tenant, q]: [string, DependencyQuery]) => inSnapshot(db, () => getDependencies(db, tenant, q)),
  health: (db: DatabaseSync) => void db.prepare('SELECT 1').get(),
  tableStats: (db: DatabaseSync) => inSnapshot(db, () => tableStats(db)),
};

export type ReadOp = keyof typeof READS;
