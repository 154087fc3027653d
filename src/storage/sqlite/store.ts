// The SQLite schema and the write side, used by the write thread (one connection owns all
// writes; SQLite has a single writer) and for schema creation before readers open the file.
import { createHash, randomInt } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { fileChange, fileId, type FileId } from '../../common/file-id.ts';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { KeyValue } from '../../model/rows.ts';
import { DEFAULT_TENANT } from '../../model/tenant.ts';
import { type SlicingBuffer, WireReader } from '../../pipeline/decode/wire.ts';
import type { WriteResult } from '../backend.ts';
import {
  type GroupRef, groupParts, isOtlpChunk, L_LEN, LOG_HEAD_BYTES, logSeverity, logTime, logTraceId, OperationCache, readLogChunk, readSpanChunk, readSpanRecords,
  S_SPAN, S_TRACE, sameTraceId, SPAN_HEAD_BYTES, spanEnd, spanId, spanKind, spanName, spanNameLength, spanNameStart, spanRecordEnd, spanStart, spanTraceId,
} from '../otlp-chunks.ts';
import { chunkLineRefs, docText, type LogHeader, spanFromJson, type SpanHeader } from '../rowjson.ts';
import { IdSet, traceHome } from '../id-set.ts';
import { RunTerms } from './terms.ts';
import { sqliteFilePath, sqliteReadOnlyPath, traceIndexPath } from '../../common/sqlite-path.ts';

export const INT64_MAX = (1n << 63n) - 1n;
const NS_PER_DAY = 86_400_000_000_000n;
/**
 * Runs of spans (of a tenant) and log records one retention transaction deletes, about: a few
 * MiB of the WAL on the bench traffic (~13 KB a run, ~0.5 KB a record), within twice
 * storage.sqlite.checkpointMiB's default (SqliteStore.applyRetention). Each transaction costs its
 * commit's syncs: ~10 ms.
 */
const RETENTION_SLICE_RUNS = 256;
const RETENTION_SLICE_LOGS = 4096;

// Every row carries its tenant; rows written before tenants existed are the default tenant's.
// Indexes lead with the tenant, since every read is of one tenant's rows.
//
// Spans are stored by runs of a trace (span_runs, run_spans): a run's spans as one row of their
// span records, each span's own OTLP protobuf bytes behind the columns queries read. A log
// record's doc is its own protobuf bytes (a BLOB). Resources and scopes are kept once per request
// group in item_groups. Spans and log records written before that keep their normalized JSON (a
// TEXT doc, no group); reads tell them apart by type. Spans of versions before runs of records
// (and those of an older version's write-ahead log, replayed) are rows of spans, one per span.
const SCHEMA = `
-- The resource and scope of a group of stored spans or log records: the ResourceSpans (or
-- ResourceLogs) fields but its scopes, and the ScopeSpans (ScopeLogs) fields but its items.
-- max_ns is its items' newest start (or time): retention drops a group with the last of them.
CREATE TABLE IF NOT EXISTS item_groups (
  gid INTEGER PRIMARY KEY,
  max_ns INTEGER NOT NULL,
  resource BLOB NOT NULL,
  scope BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS item_groups_max ON item_groups (max_ns);
CREATE TABLE IF NOT EXISTS spans (
  tenant TEXT NOT NULL DEFAULT '${DEFAULT_TENANT}',
  trace_id TEXT NOT NULL,
  span_id TEXT NOT NULL,
  parent_span_id TEXT NOT NULL,
  service_name TEXT NOT NULL,
  name TEXT NOT NULL,
  start_ns INTEGER NOT NULL,
  end_ns INTEGER NOT NULL,
  duration_ns INTEGER NOT NULL,
  status_code INTEGER NOT NULL,
  doc TEXT NOT NULL,
  group_id INTEGER
);
-- A rowid table with a unique index, not WITHOUT ROWID: rows carry kilobytes of document, and
-- WITHOUT ROWID tables are slow for rows that large (measured: 1.35x the write rate). Searches by
-- service and time go through span_runs (ensureSpanRuns), not an index entry per span.
CREATE UNIQUE INDEX IF NOT EXISTS spans_tenant_trace_span ON spans (tenant, trace_id, span_id);
-- Service and operation listings read this small table instead of scanning spans; the write
-- thread keeps it current (one upsert per distinct operation per batch) and retention prunes it.
CREATE TABLE IF NOT EXISTS operations (
  tenant TEXT NOT NULL,
  service_name TEXT NOT NULL,
  name TEXT NOT NULL,
  kind INTEGER NOT NULL,
  last_start_ns INTEGER NOT NULL,
  PRIMARY KEY (tenant, service_name, name, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY,
  tenant TEXT NOT NULL DEFAULT '${DEFAULT_TENANT}',
  time_ns INTEGER NOT NULL,
  trace_id TEXT NOT NULL,
  service_name TEXT NOT NULL,
  severity_number INTEGER NOT NULL,
  doc TEXT NOT NULL,
  -- Which write batch (hash of its id) and which row of it: the idempotency key of log records,
  -- which have no natural one (added by upgradeSchema to files created before it).
  batch_key INTEGER,
  seq INTEGER,
  group_id INTEGER
);
-- The largest rowid of span_runs and of logs before a retention pass deleted rows of them. SQLite
-- gives a new row the table's largest rowid plus one, so once retention deleted the rows written
-- last (old times: an imported backup, a late client), new rows took those rowids again, behind
-- the cursor of a scan (export, copy) that had passed them: rows written after are given rowids
-- above it (RowidFloor).
CREATE TABLE IF NOT EXISTS rowid_floor (tbl TEXT PRIMARY KEY, max_rowid INTEGER NOT NULL) WITHOUT ROWID;
`;

/**
 * Attribute indexes of older versions, dropped when a file is opened (the runs' filters replace
 * them): span_terms, a contentless FTS5 table of hashed terms per run or span, and before it
 * span_attributes, of hex terms.
 */
const FTS_ATTRIBUTE_TABLES = ['span_terms', 'span_attributes'];

/**
 * Runs fn in one transaction (`BEGIN IMMEDIATE` where two processes opening a file must not both
 * change its schema) and returns its result; rolled back if fn throws. SQLite has already rolled
 * back after some errors (disk full, I/O): a second ROLLBACK would throw and hide the real error.
 */
function inTransaction<T>(db: DatabaseSync, fn: () => T, begin: 'BEGIN' | 'BEGIN IMMEDIATE' = 'BEGIN'): T {
  db.exec(begin);
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/** Whether the file's schema has a table (or index) of this name. */
export function hasSchemaObject(db: DatabaseSync, name: string, type: 'table' | 'index' = 'table'): boolean {
  return db.prepare('SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?').get(type, name) !== undefined;
}

/** Whether a table of the file has this column (false for a table it lacks). */
function hasColumn(db: DatabaseSync, table: string, column: string): boolean {
  return db.prepare('SELECT 1 FROM pragma_table_info(?) WHERE name = ?').get(table, column) !== undefined;
}

/**
 * Runs of spans: the spans of one trace and one service that a write stored one after another,
 * which are the rows of spans with rowids first_rowid..last_rowid (one writer: consecutive inserts
 * get consecutive rowids, and INSERT OR IGNORE takes none for a span it skips), with the oldest and
 * newest start among them, the trace, and the Bloom filter of their attributes' terms (terms.ts;
 * NULL when not written: storage.sqlite.attributeIndex off). Searches by service and time,
 * dependencies, retention and the oldest span go through these three indexes: three entries per
 * run instead of two per span (a run is ~16 spans on the bench traffic). Two per-span time indexes were most of
 * what a commit wrote, as the spans of many traces land all over them (measured: 7.6 KiB written
 * per span with them, 2.7 with runs; docs/performance.md, phase J). The three time indexes key a
 * run by its time's bucket (timeBucket), not the time itself: see TIME_INDEXES.
 */
const SPAN_RUNS_SCHEMA = `
CREATE TABLE span_runs (
  tenant TEXT NOT NULL,
  trace_id TEXT NOT NULL,
  service_name TEXT NOT NULL,
  min_start_ns INTEGER NOT NULL,
  max_start_ns INTEGER NOT NULL,
  first_rowid INTEGER NOT NULL,
  last_rowid INTEGER NOT NULL,
  attr_filter BLOB,
  group_id INTEGER,
  span_count INTEGER,
  max_duration_ns INTEGER
);`;

/** The bits of a time (ns) below its bucket: a bucket is 2^32 ns, ~4.3 s (see TIME_INDEXES). */
const BUCKET_BITS = 32;

/** A run's time bucket in SQL: its nanoseconds shifted right by BUCKET_BITS. */
export const timeBucket = (column: string): string => `(${column} >> ${BUCKET_BITS})`;

/** timeBucket of a time in JavaScript. */
export const bucketOf = (ns: bigint): bigint => ns >> BigInt(BUCKET_BITS);

/** The span of a time bucket (timeBucket), ns. */
const BUCKET_NS = 1n << BigInt(BUCKET_BITS);

/** SQL: a run's start (column) is at param or later; bounded by bucket too, so a time index narrows the range. */
export const startFrom = (column: string, param: string): string => `${timeBucket(column)} >= ${timeBucket(param)} AND ${column} >= ${param}`;

/** SQL: a run's start (column) is before param; bounded by bucket too, as startFrom. */
const startBefore = (column: string, param: string): string => `${timeBucket(column)} <= ${timeBucket(param)} AND ${column} < ${param}`;

/** SQL: a time (column) is param or earlier; bounded by bucket too, as startFrom. */
export const startUntil = (column: string, param: string): string => `${timeBucket(column)} <= ${timeBucket(param)} AND ${column} <= ${param}`;

/**
 * The runs' time indexes: by tenant (and service), then the bucket of the run's newest (or
 * oldest) start, then rowid, the order runs were written in. Keyed by the start itself, as
 * before, each run's entry went to its own place among the runs of the last minute or so (spans
 * arrive out of order by up to their batch's delay, and the bench traffic's a minute), so each
 * commit dirtied a 32 KiB page of each index per run once those outgrew a commit, and bytes
 * written per span grew with the file (the collector at the maximum rate: 3.4 KiB at 2.2M spans,
 * 4.9 from 5M on, and 20 % fewer spans a second; docs/performance.md, phase AB). Keyed by bucket,
 * a run is appended at the end of its bucket: a commit dirties the last page of each bucket it
 * writes into, a few whatever the file's size (3.1 KiB a span from 2M to 11M). Reads that want runs
 * newest first order by bucket, then time (SQLite sorts each bucket's runs as it reaches them,
 * not the whole range: EXPLAIN's "TEMP B-TREE FOR LAST TERM OF ORDER BY"), and bound a range by
 * bucket as well as by time, so the index narrows it.
 */
const TIME_INDEXES = `
CREATE INDEX IF NOT EXISTS span_runs_tenant_service_newest ON span_runs (tenant, service_name, ${timeBucket('max_start_ns')});
CREATE INDEX IF NOT EXISTS span_runs_tenant_newest ON span_runs (tenant, ${timeBucket('max_start_ns')});
CREATE INDEX IF NOT EXISTS span_runs_tenant_oldest ON span_runs (tenant, ${timeBucket('min_start_ns')});`;

/**
 * The longest reach of any run, from its oldest start to its newest (a run of a trace's spans from
 * one batch, which may hold a span of days ago beside one of now): a run with a span at or before a
 * time t has its newest start at t plus this or earlier. A search of a past range bounds its walk of
 * the runs' newest-start indexes by its end plus this (reads.ts, runsUntil), or it walked every run
 * written since its range (days of runs for an hour of yesterday). `upto` is the last run's rowid
 * it covers: each span write raises both with one statement before its commit, from what its run
 * writers noted of the runs they added (RUN_REACH_RAISE: a trigger on every run cost the write
 * thread ~1 CPU-µs a span, 14 % of the collector, and reading the runs back ~0.2), and a read adds
 * the runs past `upto` itself (runs an older version wrote after a downgrade). Writes only raise it
 * and retention only narrows runs, so it is at most too wide; retention learns it anew from the
 * runs left (RUN_REACH_ANEW) once it deleted or narrowed the run that set it, or one span stamped
 * 1970 beside one of now (a client that left its start unset) unbounded every past search for
 * good. New runs' rowids are always past every earlier one's (RowidFloor).
 */
export const RUN_REACH = 'run_reach';

/** The reach of the runs past run_reach's `upto` (none: 0), for run_reach r. */
export const REACH_PAST_UPTO = 'coalesce((SELECT max(max_start_ns - min_start_ns) FROM span_runs WHERE rowid > r.upto), 0)';

/** Brings run_reach up to the runs written since it was last (a span write's, before its commit). */
const RUN_REACH_CATCH_UP = `UPDATE ${RUN_REACH} AS r SET ns = max(r.ns, ${REACH_PAST_UPTO}), upto = coalesce((SELECT max(rowid) FROM span_runs), r.upto) WHERE id = 0`;

/**
 * Raises run_reach by the runs a span write added when run_reach covered every run before them
 * (its `upto` at least the rowid before their first; ?1 their longest reach, ?2 that rowid, ?3
 * their last): no read of the runs. Changes nothing when runs it does not cover lie between (an
 * older version wrote them): RUN_REACH_CATCH_UP then reads them.
 */
const RUN_REACH_RAISE = `UPDATE ${RUN_REACH} SET ns = max(ns, ?1), upto = ?3 WHERE id = 0 AND upto >= ?2`;

/**
 * Learns run_reach from every run, when it is wider than ?1 (retention, after it deleted or
 * narrowed the widest, ?1 = 0; or at a process's first pass, ?1 = the retention: a file an
 * earlier build's retention narrowed kept it wider than any run left): one pass over span_runs.
 */
const RUN_REACH_ANEW = `UPDATE ${RUN_REACH} SET ns = coalesce((SELECT max(max_start_ns - min_start_ns) FROM span_runs), 0),
  upto = max(upto, coalesce((SELECT max(rowid) FROM span_runs), 0)) WHERE id = 0 AND ns > ?1`;

/** The runs one span write added, for run_reach: their longest reach and their first and last rowids. */
class RunsAdded {
  reach = 0n;
  first = 0;
  last = 0;

  clear(): void {
    this.reach = 0n;
    this.first = 0;
    this.last = 0;
  }

  add(min: bigint, max: bigint, rowid: number | bigint): void {
    if (max - min > this.reach) this.reach = max - min;
    if (this.first === 0) this.first = Number(rowid);
    this.last = Number(rowid);
  }
}

/** Creates run_reach, learning the reach of the runs a file already holds (one pass over span_runs, once). */
function ensureRunReach(db: DatabaseSync): void {
  if (hasSchemaObject(db, RUN_REACH)) return;
  inTransaction(db, () => {
    db.exec(`CREATE TABLE IF NOT EXISTS ${RUN_REACH} (id INTEGER PRIMARY KEY CHECK (id = 0), ns INTEGER NOT NULL, upto INTEGER NOT NULL);
             INSERT OR IGNORE INTO ${RUN_REACH} (id, ns, upto) VALUES (0, 0, 0);
             ${RUN_REACH_CATCH_UP};`);
  }, 'BEGIN IMMEDIATE');
}

/** The time indexes of files from before TIME_INDEXES, keyed by the times themselves. */
const TIME_INDEXES_BEFORE = ['span_runs_tenant_service_max', 'span_runs_tenant_max', 'span_runs_tenant_min'];

/**
 * The log records' time indexes, keyed as the runs' are (TIME_INDEXES) and for the same reason,
 * which weighs more here: an entry per record, not per run. Keyed by the time itself, records that
 * arrive out of order by their batch's delay dirtied a page of each of the three per record once
 * the last minute's entries outnumbered a commit's (`node bench/sqlite-growth.ts --signal=logs`:
 * 9.8 KiB written per record at 0.5M records, 77 at 1.5M; docs/performance.md, phase AC).
 * Every tenant's records are reached by time through logs_tenant_bucket, a tenant at a time
 * (LOG_TENANTS_SQL), as the runs are: an index of the bucket alone (logs_bucket, of versions
 * before) cost each write 2-9 % more (phase BJ).
 */
const LOG_TIME_INDEXES = `
CREATE INDEX IF NOT EXISTS logs_tenant_service_bucket ON logs (tenant, service_name, ${timeBucket('time_ns')});
CREATE INDEX IF NOT EXISTS logs_tenant_bucket ON logs (tenant, ${timeBucket('time_ns')});`;

/**
 * The highest severity of each time bucket's log records, by tenant (its bucket timeBucket's of
 * the records' times). A search by least severity alone reads this first and the records of the
 * buckets that reach it only (reads.ts, searchLogs), newest bucket first, through
 * logs_tenant_bucket: without it such a search read every record of its range when few matched
 * (1M records over a day, 0.1 % ERROR: 0.25-0.58 s for a FATAL search that found nothing, ~1 ms
 * with it). Per record, a partial index of the higher severities cost 6-9 % more write CPU; this
 * is one upsert per bucket a write batch touches (one or two on the bench traffic).
 *
 * A bucket with records always has its row, at least as high as its highest record's: writes
 * raise it in their transaction; retention drops the rows of the buckets it emptied (a row whose
 * bucket was emptied otherwise costs a read of nothing). `upto` (LOG_SEVERITY_UPTO) is the largest
 * logs rowid the rows cover: the rows past it (an older version wrote them, or a file from before
 * the table) are summed into it when the file is opened, and by a write that finds them.
 */
export const LOG_SEVERITY = 'log_bucket_severity';
const LOG_SEVERITY_UPTO = 'log_bucket_severity_upto';
const LOG_SEVERITY_SCHEMA = `CREATE TABLE IF NOT EXISTS ${LOG_SEVERITY} (tenant TEXT NOT NULL, bucket INTEGER NOT NULL, severity INTEGER NOT NULL, PRIMARY KEY (tenant, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ${LOG_SEVERITY_UPTO} (id INTEGER PRIMARY KEY CHECK (id = 0), upto INTEGER NOT NULL);
INSERT OR IGNORE INTO ${LOG_SEVERITY_UPTO} (id, upto) VALUES (0, 0);`;

/** Raises a bucket's highest severity (?1 tenant, ?2 bucket, ?3 severity). */
const LOG_SEVERITY_RAISE = `INSERT INTO ${LOG_SEVERITY} (tenant, bucket, severity) VALUES (?, ?, ?)
  ON CONFLICT DO UPDATE SET severity = excluded.severity WHERE excluded.severity > severity`;

/** Sums the records past `upto` into the buckets' rows and moves `upto` to the last record. */
const LOG_SEVERITY_CATCH_UP = `INSERT INTO ${LOG_SEVERITY} (tenant, bucket, severity)
  SELECT tenant, ${timeBucket('time_ns')}, max(severity_number) FROM logs WHERE id > (SELECT upto FROM ${LOG_SEVERITY_UPTO} WHERE id = 0) GROUP BY 1, 2
  ON CONFLICT DO UPDATE SET severity = excluded.severity WHERE excluded.severity > severity;
UPDATE ${LOG_SEVERITY_UPTO} SET upto = max(upto, coalesce((SELECT max(id) FROM logs), 0)) WHERE id = 0;`;

/**
 * Moves `upto` to a write's last record (?2) when it covered every record before the write's
 * first (?1): no read of the records. Changes nothing when records it does not cover lie between
 * (an older version wrote them): LOG_SEVERITY_CATCH_UP then reads them.
 */
const LOG_SEVERITY_NOTE = `UPDATE ${LOG_SEVERITY_UPTO} SET upto = ?2 WHERE id = 0 AND upto >= coalesce((SELECT max(id) FROM logs WHERE id < ?1), 0)`;

/**
 * Creates the buckets' severities (LOG_SEVERITY) and sums the records they do not cover yet (a
 * file from before them: one pass over its records, once), in one transaction: an open stopped
 * half way leaves no table, or one that covers its `upto`. A file whose records all lie below
 * `upto` and below the largest rowid retention noted had records taken away and others written
 * by an older version (without rowid_floor, on rowids below `upto`): its rows are made anew.
 * One whose records all lie below `upto` but not below that rowid had its newest records taken by
 * this version's retention (late records with old times), and the records written since go
 * above it (RowidFloor): its rows cover them, as when `upto` is the largest rowid. The file is
 * then left as it is without a write transaction, which an open beside a collector writing the
 * same file would wait for (up to busy_timeout) at every open until the next log write. Records
 * past `upto` when retention had noted `upto` as the largest rowid may be an older version's on
 * the rowids retention freed, at or below `upto` too (SQLite hands out the largest plus one): the
 * rows are made anew then as well, or a tenant written only there would have none, and
 * retention and the oldest record, which find the tenants here (LOG_TENANTS_SQL), would pass
 * over its records.
 */
function ensureLogSeverity(db: DatabaseSync): void {
  const state = `SELECT (SELECT upto FROM ${LOG_SEVERITY_UPTO} WHERE id = 0) AS upto, (SELECT coalesce(max(id), 0) FROM logs) AS newest,
    (SELECT coalesce(max(max_rowid), 0) FROM rowid_floor WHERE tbl = 'logs') AS floor`;
  const covered = ({ upto, newest, floor }: { upto: number; newest: number; floor: number }): boolean => newest === upto || (newest < upto && floor >= upto);
  if (hasSchemaObject(db, LOG_SEVERITY) && hasSchemaObject(db, LOG_SEVERITY_UPTO) && covered(db.prepare(state).get() as { upto: number; newest: number; floor: number })) return;
  inTransaction(db, () => {
    db.exec(LOG_SEVERITY_SCHEMA);
    const found = db.prepare(state).get() as { upto: number; newest: number; floor: number };
    if (covered(found)) return;
    if (found.newest < found.upto || (found.newest > found.upto && found.floor >= found.upto)) db.exec(`DELETE FROM ${LOG_SEVERITY}; UPDATE ${LOG_SEVERITY_UPTO} SET upto = 0 WHERE id = 0;`);
    db.exec(LOG_SEVERITY_CATCH_UP);
  }, 'BEGIN IMMEDIATE');
}

/** The log records' time indexes of files from before LOG_TIME_INDEXES (an older version that opens the file makes logs_bucket again). */
const LOG_TIME_INDEXES_BEFORE = ['logs_tenant_service_time', 'logs_tenant_time', 'logs_time', 'logs_bucket'];

/**
 * Makes bucketed time indexes (create, the last of them named last), and drops those of the
 * times themselves a file from before them has (before), in one transaction (once; 0.25 s for the
 * runs of a file of 3.1 million spans). A version from before them reads through the dropped
 * indexes by name: a downgrade needs them made again (README, Storage backends).
 */
function ensureTimeIndexes(db: DatabaseSync, before: readonly string[], create: string, last: string): void {
  const old = before.filter((name) => hasSchemaObject(db, name, 'index'));
  if (old.length === 0 && hasSchemaObject(db, last, 'index')) return;
  inTransaction(db, () => db.exec(`${old.map((name) => `DROP INDEX IF EXISTS ${name};`).join(' ')} ${create}`), 'BEGIN IMMEDIATE');
}

/**
 * Per-span indexes of versions before runs: the tenant-led time indexes, and those of the first
 * release (before tenants: its unique key on the ids alone, its time indexes). Runs replace the
 * time indexes; the ids' key is the tenant-led spans_tenant_trace_span. Found again in a file with
 * runs, an older version opened it since and wrote spans without runs (ensureSpanRuns).
 */
const OLDER_SPAN_INDEXES = ['spans_tenant_service_start', 'spans_tenant_start', 'spans_trace_span', 'spans_service_start', 'spans_start'];

/**
 * Creates span_runs, in one transaction with filling it for the spans a file already holds (one run
 * per span) and dropping the per-span time indexes it replaces: a file is either all before runs
 * or all after, also when two processes open it together or one dies half way. A file with runs
 * and the per-span time index again was written by an older version since (which made the index
 * anew and wrote spans without runs; a version from before tenants makes its own, not led by the
 * tenant: OLDER_SPAN_INDEXES), and one whose runs lack the trace id was made by a build of
 * this change before it: their runs are made anew from their spans. Runs written before their
 * filter get the column (NULL: fillRunFilters).
 */
function ensureSpanRuns(db: DatabaseSync): void {
  const olderWroteSince = () => OLDER_SPAN_INDEXES.some((name) => hasSchemaObject(db, name, 'index'));
  const current = () => hasColumn(db, 'span_runs', 'trace_id') && !olderWroteSince();
  const filtered = () => hasColumn(db, 'span_runs', 'attr_filter');
  const recorded = () => hasColumn(db, 'span_runs', 'max_duration_ns');
  if (current() && filtered() && recorded()) return;
  inTransaction(db, () => {
    if (!current()) {
      // Runs of records hold their spans themselves: only the runs of rows of spans are made anew.
      if (recorded()) db.exec('DELETE FROM span_runs WHERE span_count IS NULL');
      else db.exec(`DROP TABLE IF EXISTS span_runs; ${SPAN_RUNS_SCHEMA}`);
      db.exec(`INSERT INTO span_runs (tenant, trace_id, service_name, min_start_ns, max_start_ns, first_rowid, last_rowid)
               SELECT tenant, trace_id, service_name, start_ns, start_ns, rowid, rowid FROM spans ORDER BY rowid`);
      // The first release (its indexes not led by the tenant) knew no operations table: the services
      // and operations of the spans it wrote (JSON documents) were listed nowhere, and retention
      // could drop an operation whose newest span it wrote. The versions since keep it themselves.
      const firstRelease = ['spans_trace_span', 'spans_service_start'].some((name) => hasSchemaObject(db, name, 'index'));
      db.exec(OLDER_SPAN_INDEXES.map((name) => `DROP INDEX IF EXISTS ${name};`).join(' '));
      if (firstRelease) {
        db.exec(`INSERT INTO operations (tenant, service_name, name, kind, last_start_ns)
                 SELECT tenant, service_name, name, coalesce(json_extract(doc, '$.kind'), 0), max(start_ns) FROM spans WHERE typeof(doc) = 'text' GROUP BY 1, 2, 3, 4
                 ON CONFLICT DO UPDATE SET last_start_ns = max(last_start_ns, excluded.last_start_ns)`);
      }
    } else {
      if (!filtered()) db.exec('ALTER TABLE span_runs ADD COLUMN attr_filter BLOB');
      if (!recorded()) {
        for (const column of ['group_id', 'span_count', 'max_duration_ns']) db.exec(`ALTER TABLE span_runs ADD COLUMN ${column} INTEGER`);
      }
    }
  }, 'BEGIN IMMEDIATE');
}

/**
 * The spans of a run of records (a span_runs row with a span_count, and an empty rowid range:
 * RECORD_RUN_RANGE): its span records (otlp-chunks.ts: ids, times, status, kind and the name's
 * place, then the span's own protobuf bytes) one after another, in one row keyed by the run's
 * rowid; their resource and scope are the run's group (group_id). Its filter holds its spans'
 * names' terms beside their attributes', and max_duration_ns is its longest span's duration, so
 * searches by operation or by a least duration pass over runs that cannot match. One row and one index entry a
 * run instead of a row and a unique-index entry a span: a run is ~16 spans on the bench traffic
 * (measured: less than half the write thread's CPU per span; docs/performance.md, phase L). A
 * trace's runs are found through the trace index (TRACE_INDEX), which also finds its runs of rows.
 */
const RUN_SPANS_SCHEMA = 'CREATE TABLE IF NOT EXISTS run_spans (run INTEGER PRIMARY KEY, records BLOB NOT NULL)';

/**
 * The runs of each trace: (tenant, trace id, run's rowid), in a database file of its own beside
 * the store's (`<path>-traces`, attached to every connection as trace_index) with 4 KiB pages
 * and a page cache of its own. Trace ids are random, so each run's entry lands on a page of its
 * own once the index outgrows a commit's runs; SQLite writes a dirtied page whole to the WAL and
 * again at the checkpoint, so in the store's file (32 KiB pages, a cache shared with the records
 * that every commit streams through) each run cost a 32 KiB page twice, and bytes written per span
 * grew with the file (docs/performance.md, phase AC). Here a run costs a 4 KiB page.
 *
 * It is derived data: SQLite commits each attached file on its own (in WAL mode a transaction is
 * atomic per file, not across them), so the index may miss the runs of the last transaction the
 * store's file committed before a crash. trace_index.state keeps span_runs' largest rowid as of
 * the index's last commit (every transaction that adds or removes runs sets it, and rowids of new
 * runs are above it); at open, runs above it are indexed, and a store whose largest rowid is below
 * it (the file is older than its index) gets its index made anew, as does a store whose index
 * file is gone. An entry whose run is gone (the index committed, the store not) is harmless:
 * lookups check the run's tenant and trace (runOfTrace).
 *
 * Log records are indexed the same way (log_traces, by their id), for the same reason, and more
 * so: an entry per record, not per run (docs/performance.md, phase AC). A record without a trace
 * (trace_id '') has no entry: no read asks for the records of trace '' (files of versions before
 * keep theirs, which retention removes with their records).
 */
const TRACE_INDEX = 'trace_index';
/** A -wal file's header: its checkpoint sequence (bytes 12-15) and salts (16-23) change when the WAL starts over. */
const WAL_HEADER_BYTES = 32;

/** The longest a checkpoint waits for reads between its full waits (resetOvergrownWal): a read held for good costs this per half interval. */
const SHORT_CHECKPOINT_WAIT_MS = 1000;

/** A table of the store's file whose rows the trace index finds by trace: its entries' table there, and their rowid column. */
interface TraceIndexed {
  table: 'span_runs' | 'logs';
  entries: 'trace_runs' | 'log_traces';
  key: 'run' | 'log';
  /** The index of versions before, in the store's file. */
  before: string;
}
const INDEXED_RUNS: TraceIndexed = { table: 'span_runs', entries: 'trace_runs', key: 'run', before: 'span_runs_tenant_trace' };
const INDEXED_LOGS: TraceIndexed = { table: 'logs', entries: 'log_traces', key: 'log', before: 'logs_tenant_trace' };

const TRACE_INDEX_SCHEMA = [INDEXED_RUNS, INDEXED_LOGS]
  .map((t) => `CREATE TABLE IF NOT EXISTS ${TRACE_INDEX}.${t.entries} (tenant TEXT NOT NULL, trace_id TEXT NOT NULL, ${t.key} INTEGER NOT NULL, PRIMARY KEY (tenant, trace_id, ${t.key})) WITHOUT ROWID;`)
  .concat(`CREATE TABLE IF NOT EXISTS ${TRACE_INDEX}.state (tbl TEXT PRIMARY KEY, max_rowid INTEGER NOT NULL) WITHOUT ROWID;`)
  .join('\n');
/** The trace index's page cache on the write connection, KiB (its entries are ~45 bytes: 8 MiB holds ~150k runs' worth of pages). */
const TRACE_INDEX_CACHE_KIB = 8192;
/** Sets the trace index's largest indexed rowid of a table to the table's (in the transaction that changed it). */
const noteIndexed = (t: TraceIndexed): string => `INSERT INTO ${TRACE_INDEX}.state (tbl, max_rowid) VALUES ('${t.table}', (SELECT coalesce(max(rowid), 0) FROM main.${t.table}))
  ON CONFLICT (tbl) DO UPDATE SET max_rowid = excluded.max_rowid`;

/** Attaches the trace index's file to a connection of the store's file (read-only for a read-only connection). */
function attachTraceIndex(db: DatabaseSync, path: string): void {
  db.prepare(`ATTACH DATABASE ? AS ${TRACE_INDEX}`).run(traceIndexPath(path));
}

/** How long a connection of the store (the write thread's, a read thread's) waits for a lock another holds before it fails (SQLITE_BUSY): its busy_timeout. */
export const BUSY_TIMEOUT_MS = 5_000;

/** A read-only connection to a store's file (made by openDatabase before), with its trace index: a read thread's. */
export function openReadOnly(path: string): DatabaseSync {
  // A URI's mode=rw(c) is refused with a read-only open (and ATTACH): read as mode=ro.
  path = sqliteReadOnlyPath(path);
  const db = new DatabaseSync(path, { readOnly: true });
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  attachTraceIndex(db, path);
  return db;
}

/**
 * SQL: row `alias` of t is one of the trace's, the tenant and trace id being parameters ?1 and
 * ?2: found through the trace index, and checked against the row itself (an entry may outlive
 * its row). The checks' unary + keeps SQLite from taking a tenant-led index of the table for them
 * instead (it did for span_runs: a scan of the tenant's runs, the index's runs a filter).
 */
const ofTrace = (t: TraceIndexed, alias: string): string =>
  `${alias}.rowid IN (SELECT ${t.key} FROM ${TRACE_INDEX}.${t.entries} WHERE tenant = ?1 AND trace_id = ?2) AND +${alias}.tenant = ?1 AND +${alias}.trace_id = ?2`;

/** SQL: run `r` is one of the trace's (ofTrace). */
export const runOfTrace = (r: string): string => ofTrace(INDEXED_RUNS, r);

/** SQL: log record `logs` is one of the trace's (ofTrace). */
export const logOfTrace = ofTrace(INDEXED_LOGS, 'logs');

/** Adds a row (tenant, trace id, rowid) of t to the trace index, in the transaction that writes it. */
const indexRow = (t: TraceIndexed): string => `INSERT OR IGNORE INTO ${TRACE_INDEX}.${t.entries} (tenant, trace_id, ${t.key}) VALUES (?, ?, ?)`;

/** Removes the trace index's entries of the rows of t that `where` (over t, parameter ?1) deletes next. */
const unindexRows = (t: TraceIndexed, where: string): string =>
  `DELETE FROM ${TRACE_INDEX}.${t.entries} WHERE (tenant, trace_id, ${t.key}) IN (SELECT tenant, trace_id, rowid FROM main.${t.table} WHERE ${where})`;

/**
 * Attaches the trace index (see TRACE_INDEX), indexes the runs it lacks and drops the index of
 * versions before it from the store's file. The writes keep it themselves (indexRow, and
 * deleteBefore), not by triggers: a trigger makes each insert of a run a statement that writes
 * twice, for which SQLite keeps a statement journal of every page it touches (measured: 12 KiB
 * written per span against 5).
 */
function ensureTraceIndex(db: DatabaseSync, path: string): void {
  attachTraceIndex(db, path);
  // Checkpointed as the store's file is (wal_autocheckpoint is the connection's, in pages: 1 MiB of this file's at the default).
  db.exec(`PRAGMA ${TRACE_INDEX}.page_size = 4096; PRAGMA ${TRACE_INDEX}.journal_mode = WAL; PRAGMA ${TRACE_INDEX}.synchronous = FULL;
           PRAGMA ${TRACE_INDEX}.cache_size = ${-TRACE_INDEX_CACHE_KIB}; PRAGMA ${TRACE_INDEX}.journal_size_limit = ${2 * SHORT_CHECKPOINT_BYTES};`);
  // A build of this change before log records were indexed kept one row of span_runs' state.
  if (db.prepare(`SELECT 1 FROM pragma_table_info('state', '${TRACE_INDEX}') WHERE name = 'max_run'`).get() !== undefined) db.exec(`DROP TABLE ${TRACE_INDEX}.state`);
  db.exec(TRACE_INDEX_SCHEMA);
  // Nothing to do (this store's index, every row indexed, no index of versions before): no write
  // transaction, which an open beside a collector writing the same file would wait for.
  if (hasSchemaObject(db, STORE_IDENTITY) && db.prepare(TRACE_INDEX_CURRENT).get() !== undefined) return;
  inTransaction(db, () => {
    if (!indexOfThisStore(db)) {
      // Another store's index (see STORE_IDENTITY): its entries and noted rowids say nothing of this file's rows.
      for (const t of [INDEXED_RUNS, INDEXED_LOGS]) db.exec(`DELETE FROM ${TRACE_INDEX}.${t.entries}`);
      db.exec(`DELETE FROM ${TRACE_INDEX}.state`);
    }
    catchUpTraceIndex(db);
    db.prepare(`INSERT INTO ${TRACE_INDEX}.state (tbl, max_rowid) VALUES ('${STORE_IDENTITY}', (SELECT id FROM main.${STORE_IDENTITY}))
                ON CONFLICT (tbl) DO UPDATE SET max_rowid = excluded.max_rowid`).run();
    for (const t of [INDEXED_RUNS, INDEXED_LOGS]) db.exec(`DROP INDEX IF EXISTS main.${t.before}`);
  }, 'BEGIN IMMEDIATE');
}

/**
 * A random number the store's file gets once (kept by its copies: SQLite's backup, VACUUM INTO,
 * a copy of the file), noted in its trace index's state (as the row of this name). The index's
 * noted rowids tell an older or newer index of the same store; they could not tell the index of
 * another store: a store's file restored (or copied) alone beside the -traces file another store
 * left there, whose noted rowid was below the file's largest, had only its rows above that
 * indexed, and the traces of the others were not found by id (and a resend of their spans was
 * stored again).
 */
const STORE_IDENTITY = 'store_identity';

/** A row when the attached trace index is this store's (STORE_IDENTITY) and up to date, and the store's file has no index of versions before it. */
const TRACE_INDEX_CURRENT = `SELECT 1 WHERE (SELECT max_rowid FROM ${TRACE_INDEX}.state WHERE tbl = '${STORE_IDENTITY}') = (SELECT id FROM main.${STORE_IDENTITY})
  ${[INDEXED_RUNS, INDEXED_LOGS]
    .map((t) => `AND (SELECT coalesce(max(max_rowid), 0) FROM ${TRACE_INDEX}.state WHERE tbl = '${t.table}') = (SELECT coalesce(max(rowid), 0) FROM main.${t.table})
  AND NOT EXISTS (SELECT 1 FROM main.sqlite_master WHERE type = 'index' AND name = '${t.before}')`)
    .join('\n  ')}`;

/**
 * Whether the attached trace index is this store's (STORE_IDENTITY), giving the store's file its
 * identity when it has none (new, or from a version before it), inside the caller's transaction.
 */
function indexOfThisStore(db: DatabaseSync): boolean {
  db.exec(`CREATE TABLE IF NOT EXISTS main.${STORE_IDENTITY} (id INTEGER NOT NULL)`);
  let own = (db.prepare(`SELECT id FROM main.${STORE_IDENTITY}`).get() as { id: number } | undefined)?.id;
  const made = own === undefined;
  if (made) {
    own = randomInt(1, 2 ** 48 - 1);
    db.prepare(`INSERT INTO main.${STORE_IDENTITY} (id) VALUES (?)`).run(own);
  }
  const noted = (db.prepare(`SELECT max_rowid AS id FROM ${TRACE_INDEX}.state WHERE tbl = '${STORE_IDENTITY}'`).get() as { id: number } | undefined)?.id;
  // A file without an identity until now, beside an index that notes none: both of a version
  // before it, taken as each other's as they were then (the noted rowids still check them).
  if (noted === undefined) return made;
  return noted === own;
}

/**
 * Indexes, for runs and for log records, the rows above the index's noted rowid, or every row when
 * the table's largest rowid is below it (see TRACE_INDEX), inside the caller's transaction: at
 * open, and in the write after one that failed (a commit can fail between the two files, the disk
 * full say, leaving the store's file with rows the index lacks; the retry would otherwise not find
 * its runs and store their spans again).
 */
function catchUpTraceIndex(db: DatabaseSync): void {
  for (const t of [INDEXED_RUNS, INDEXED_LOGS]) {
    const indexed = Number((db.prepare(`SELECT coalesce(max(max_rowid), 0) AS n FROM ${TRACE_INDEX}.state WHERE tbl = ?`).get(t.table) as { n: number | bigint }).n);
    const newest = Number((db.prepare(`SELECT coalesce(max(rowid), 0) AS n FROM main.${t.table}`).get() as { n: number | bigint }).n);
    if (newest === indexed) continue;
    const from = newest < indexed ? 0 : indexed;
    if (from === 0) db.exec(`DELETE FROM ${TRACE_INDEX}.${t.entries}`);
    if (newest > from) {
      db.prepare(`INSERT OR IGNORE INTO ${TRACE_INDEX}.${t.entries} (tenant, trace_id, ${t.key})
                  SELECT tenant, trace_id, rowid FROM main.${t.table} WHERE rowid > ? AND trace_id <> '' ORDER BY tenant, trace_id, rowid`).run(from);
    }
    db.exec(noteIndexed(t));
  }
}

/** first_rowid and last_rowid of a run of records: no row of spans is in the range. */
const RECORD_RUN_RANGE = '1, 0';

/**
 * The runs without a filter, so that finding them when a file is opened is one seek, not a scan
 * of every run (none are written while the attribute index is on).
 */
const UNFILTERED_RUNS_INDEX = 'CREATE INDEX IF NOT EXISTS span_runs_unfiltered ON span_runs (first_rowid) WHERE attr_filter IS NULL';

/** Runs fillRunFilters reads and fills per transaction. */
const FILL_PAGE_RUNS = 4096;

/**
 * Writes the filter of every run without one (a file from before the filters, or written with
 * storage.sqlite.attributeIndex off): once, when the file is opened (minutes for a large file), a
 * page of runs at a time in the partial index's order, each its own transaction. All of them at
 * once held every run in the heap (a few hundred bytes each: 200,000 runs took more than 40 MiB,
 * so a large file's start ran out of heap, at every start) and the WAL grew by the whole table;
 * a start stopped half way keeps the pages done. A run with a JSON document that does not parse keeps
 * none, and searches check its spans one by one.
 */
function fillRunFilters(db: DatabaseSync): void {
  const page = db.prepare(`SELECT rowid AS id, first_rowid AS first, last_rowid AS last, span_count AS count FROM span_runs
    WHERE attr_filter IS NULL AND (first_rowid, rowid) > (?, ?) ORDER BY first_rowid, rowid LIMIT ${FILL_PAGE_RUNS}`);
  const docs = db.prepare('SELECT doc FROM spans WHERE rowid BETWEEN ? AND ?');
  const records = db.prepare('SELECT records FROM run_spans WHERE run = ?');
  const update = db.prepare('UPDATE span_runs SET attr_filter = ? WHERE rowid = ?');
  const terms = new RunTerms();
  // Past the last run of the page before: a run left without a filter stays in the index.
  let after: [number, number] = [-1, -1];
  if (page.get(...after) === undefined) return;
  for (let more = true; more; ) {
    more = inTransaction(db, () => {
      const runs = page.all(...after) as { id: number; first: number; last: number; count: number | null }[];
      for (const run of runs) {
        terms.begin();
        try {
          if (run.count !== null) {
            const held = (records.get(run.id) as { records: Uint8Array } | undefined)?.records ?? new Uint8Array(0);
            const reader = new WireReader(held);
            readSpanRecords(held, (buf, r) => addRecordTerms(terms, reader, buf, r, spanRecordEnd(buf, r)));
          }
          for (const { doc } of docs.iterate(run.first, run.last) as Iterable<{ doc: string | Uint8Array }>) {
            if (typeof doc === 'string') terms.addAttributes(spanFromJson(doc).attributes);
            else terms.add(new WireReader(doc), 0, doc.length);
          }
        } catch {
          continue;
        }
        update.run(terms.filter(), run.id);
      }
      const last = runs[runs.length - 1];
      if (last !== undefined) after = [last.first, last.id];
      return runs.length === FILL_PAGE_RUNS;
    }, 'BEGIN IMMEDIATE');
  }
}

/** Created after upgradeSchema, which adds the columns to files from before them. */
const LOG_KEY_INDEX = 'CREATE UNIQUE INDEX IF NOT EXISTS logs_batch ON logs (batch_key, seq)';

/** 64-bit key of a write batch id (as PostgreSQL's batch_key). */
export function batchKey(batchId: string): bigint {
  return createHash('sha256').update(batchId).digest().readBigInt64BE(0);
}

/** Columns added after the first release, by table: upgradeSchema adds them to files from before them. */
const ADDED_COLUMNS = [
  ['logs', 'batch_key INTEGER'],
  ['logs', 'seq INTEGER'],
  ['spans', 'group_id INTEGER'],
  ['logs', 'group_id INTEGER'],
] as const;

/** Adds the columns a file from an older version lacks; IMMEDIATE so two processes opening it do not both alter. */
function upgradeSchema(db: DatabaseSync): void {
  const missing = () => ADDED_COLUMNS.filter(([table, column]) => !hasColumn(db, table, column.split(' ')[0]!));
  if (missing().length === 0) return;
  inTransaction(db, () => {
    for (const [table, column] of missing()) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column}`);
  }, 'BEGIN IMMEDIATE');
}

/**
 * The distinct tenants of a table whose primary key leads with the tenant, one index descent per
 * tenant (a skip scan): SELECT DISTINCT read every row of the key, and retention runs these in
 * each of its statements of each slice, so a pass took time in slices times the rows of
 * operations (one per span name: thousands with names that carry ids) or of the severity summary
 * (one per tenant and ~4.3 s of log records kept).
 */
function distinctTenants(table: string): string {
  return `WITH RECURSIVE t(tenant) AS (SELECT min(tenant) FROM ${table} UNION ALL
    SELECT (SELECT min(tenant) FROM ${table} WHERE tenant > t.tenant) FROM t WHERE t.tenant IS NOT NULL)
  SELECT tenant FROM t WHERE tenant IS NOT NULL`;
}

/**
 * The tenants that have spans, for queries over every tenant's spans by time through the
 * tenant-led indexes of span_runs. Every stored span's operation is in the operations table
 * (written in the span's transaction), and retention removes an operation only with the last of
 * its spans (its last_start_ns is at least theirs), so no tenant with spans is missing.
 */
export const TENANTS_SQL = distinctTenants('operations');

/**
 * The tenants that have log records, for queries over every tenant's records by time through
 * logs_tenant_bucket: a bucket with records always has its row in LOG_SEVERITY (written in the
 * records' transaction, caught up when a file is opened), and retention removes a bucket's row
 * only with its records.
 */
export const LOG_TENANTS_SQL = distinctTenants(LOG_SEVERITY);

/**
 * SQLite result codes that pass with time or space, or that are the store's fault and not the
 * rows' (an operator mends them, the rows wait in the write-ahead log): BUSY, LOCKED, NOMEM,
 * READONLY (a file system remounted read-only, the file's mode changed or the file moved), IOERR,
 * FULL, CANTOPEN, PROTOCOL.
 */
const TRANSIENT = new Set([5, 6, 7, 8, 10, 13, 14, 15]);
/** SQLITE_READONLY: the file may not be written (its mode, a read-only mount): WriteResult denied. */
const SQLITE_READONLY = 8;
/** SQLITE_FULL: the disk (or the file's size limit) is full. */
const SQLITE_FULL = 13;
/**
 * WAL bytes between checkpoints of a connection not given storage.sqlite.checkpointMiB (whose
 * default it is too), and the most a connection keeps once a write has found the disk full
 * (SqliteStore.checkpointWhenFull).
 */
const SHORT_CHECKPOINT_BYTES = 8 * 2 ** 20;

/** The WAL pages of this file's page size that make `bytes`, at least one (wal_autocheckpoint counts pages). */
function walPages(db: DatabaseSync, bytes: number): number {
  const pageBytes = (db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size;
  return Math.max(1, Math.round(bytes / pageBytes));
}

/** SQLite INTEGER is signed 64-bit: times past 2262 are clamped in the index columns (the doc keeps them exact). */
export function clampNs(ns: bigint): bigint {
  return ns > INT64_MAX ? INT64_MAX : ns;
}

/**
 * The rowid for a transaction's first new row of a table (span_runs or logs): one above its
 * rowid_floor while the table's largest rowid is below that, else null (SQLite's own: the largest
 * plus one, which the rows after the first follow).
 */
class RowidFloor {
  private readonly above: StatementSync;
  /**
   * Whether the floor may lie above the table's rows: at open, and after retention noted it
   * (arm). Once a transaction's start finds the table's rows past it they stay past it (rows go
   * only through retention), and writes read it no more: no statement per write transaction.
   */
  private armed = true;
  /** The rowid the next insert takes (null: SQLite's); used() once a row took it. */
  next: number | null = null;

  constructor(db: DatabaseSync, table: 'span_runs' | 'logs') {
    this.above = db.prepare(`SELECT max_rowid + 1 AS n FROM rowid_floor WHERE tbl = '${table}' AND max_rowid > (SELECT coalesce(max(rowid), 0) FROM main.${table})`);
  }

  /** Reads the floor at a write transaction's start, while it may matter. */
  begin(): void {
    const row = this.armed ? (this.above.get() as { n: number | bigint } | undefined) : undefined;
    if (row === undefined) this.armed = false;
    this.next = row === undefined ? null : Number(row.n);
  }

  /** A row was inserted: the rows after it follow it. */
  used(): void {
    this.next = null;
  }

  /** Retention noted the table's largest rowid before deleting rows of it: read the floor again. */
  arm(): void {
    this.armed = true;
  }
}

/** Notes span_runs' and logs' largest rowids in rowid_floor (before retention deletes rows of them). */
const NOTE_ROWID_FLOORS = `INSERT INTO rowid_floor (tbl, max_rowid)
  SELECT tbl, m FROM (SELECT 'span_runs' AS tbl, (SELECT max(rowid) FROM span_runs) AS m UNION ALL SELECT 'logs', (SELECT max(rowid) FROM logs)) WHERE m IS NOT NULL
  ON CONFLICT (tbl) DO UPDATE SET max_rowid = max(max_rowid, excluded.max_rowid)`;

/**
 * The store's file as a connection opened it, to tell when storage.sqlite.path no longer names it:
 * deleted (`rm data/tracehouse.db`), or moved away or replaced by another (`mv`, a rotation
 * script). SQLite goes on writing into the file it has open, which no path reaches: every commit
 * since was acknowledged, readiness stayed, nothing was logged, and the next start found an
 * empty store at the path. One stat of the path per check (a write's transaction, a health check).
 */
export class OpenedFile {
  private readonly file: string | undefined;
  private readonly opened: FileId = { dev: 0, ino: 0 };
  private readonly configured: string;

  /** The -wal file SQLite has open beside it (WAL mode: kept while a connection is open), once seen. */
  private wal: FileId | undefined;

  /** `configured`: storage.sqlite.path as given, for the message. */
  constructor(db: DatabaseSync, configured: string) {
    this.configured = configured;
    const file = db.location('main') ?? '';
    const st = file === '' ? undefined : statSync(file, { throwIfNoEntry: false });
    if (!st) return;
    this.file = file;
    this.opened = { dev: st.dev, ino: st.ino };
    this.walGone();
  }

  /**
   * Undefined while the path's -wal file is the one first seen there; else why not. Deleted
   * (`rm tracehouse.db-wal`, a file that grew while a read held it), SQLite goes on with the one it
   * has open, which no path reaches: the commits since its last checkpoint, and every one after,
   * are only there, and a crash loses them.
   */
  walGone(): string | undefined {
    if (this.file === undefined) return undefined;
    const path = `${this.file}-wal`;
    if (this.wal === undefined) {
      this.wal = fileId(path);
      return undefined;
    }
    const change = fileChange(path, this.wal);
    if (change === undefined) return undefined;
    return `storage.sqlite.path = ${JSON.stringify(this.configured)}: its -wal file is no longer at its path (${change}) since this collector opened it; what was committed into it is checkpointed into the store's file, and writes are refused, as no start would find what is committed into it: restart the collector`;
  }

  /** Undefined while the path names the opened file; else why not, naming the option. */
  moved(): string | undefined {
    if (this.file === undefined) return undefined;
    const change = fileChange(this.file, this.opened);
    if (change === undefined) return undefined;
    return `storage.sqlite.path = ${JSON.stringify(this.configured)}: the file is no longer at that path (${change}) since this collector opened it; writes into it are refused, as no start would find them: restart the collector to open the file at the path (or a new empty one)`;
  }
}

/** A -wal file a checkpoint waited for and found a read still on (its bytes then), or (released) reset again since. */
export interface WalHeld {
  file: string;
  bytes: number;
  released?: boolean;
}

/** Opens (creating when needed) the database file in WAL mode with the current schema. */
export function openDatabase(path: string, options: { attributeIndex?: boolean; cacheMiB?: number; checkpointMiB?: number } = {}): DatabaseSync {
  if (path !== ':memory:') mkdirSync(dirname(sqliteFilePath(path)), { recursive: true });
  const db = new DatabaseSync(path);
  // Large pages keep multi-kilobyte documents out of overflow chains (page_size applies when the
  // file is created); 4 KiB -> 32 KiB pages measured 1.9x the write rate on top (bench/sqlite.ts).
  // SQLite checkpoints its WAL every 1000 pages by default: 32 MiB at this page size, which the
  // WAL file then keeps. The write connection checkpoints every storage.sqlite.checkpointMiB
  // (8 MiB by default), and the size limit keeps the -wal file at most twice that on disk. A
  // longer interval costs less write CPU as the file grows (a checkpoint copies each page once
  // however many commits wrote it; 64 MiB against 8: 0-12 % less from 266k to 1.84M spans), but
  // its checkpoint's flush of the database file delays delivery.ack = durable's fdatasyncs on
  // the same disk (64 MiB: 4-18 % fewer spans/s at the maximum rate; docs/performance.md, phases
  // U and V).
  // synchronous = FULL syncs the WAL at every commit, so a commit survives a power loss: the
  // write-ahead log of delivery.ack = durable lets go of a batch once SQLite has committed it,
  // and `stored` acknowledges on the commit. Under NORMAL, commits are synced only at
  // checkpoints, and a power loss could take everything since the last one. The sync costs no
  // CPU the collector's runs can show (phase V); it is one fdatasync per commit, and the writer
  // commits batches, not requests.
  db.exec(`PRAGMA page_size = 32768; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS};`);
  const checkpointBytes = options.checkpointMiB === undefined ? SHORT_CHECKPOINT_BYTES : options.checkpointMiB * 2 ** 20;
  db.exec(`PRAGMA wal_autocheckpoint = ${walPages(db, checkpointBytes)}; PRAGMA journal_size_limit = ${2 * checkpointBytes};`);
  // The write connection's page cache (storage.sqlite.cacheMiB); others keep SQLite's 2 MiB.
  if (options.cacheMiB !== undefined) db.exec(`PRAGMA cache_size = ${-Math.round(options.cacheMiB * 1024)}`);
  const lacksTenant = (table: string): boolean => hasSchemaObject(db, table) && !hasColumn(db, table, 'tenant');
  const before = { spans: lacksTenant('spans'), logs: lacksTenant('logs') };
  if (before.spans || before.logs) addTenants(db, before);
  db.exec(SCHEMA);
  upgradeSchema(db);
  ensureSpanRuns(db);
  ensureRunReach(db);
  ensureTimeIndexes(db, TIME_INDEXES_BEFORE, TIME_INDEXES, 'span_runs_tenant_oldest');
  ensureTimeIndexes(db, LOG_TIME_INDEXES_BEFORE, LOG_TIME_INDEXES, 'logs_tenant_bucket');
  db.exec(RUN_SPANS_SCHEMA);
  ensureTraceIndex(db, path);
  db.exec(UNFILTERED_RUNS_INDEX);
  db.exec(LOG_KEY_INDEX);
  ensureLogSeverity(db);
  for (const table of FTS_ATTRIBUTE_TABLES) db.exec(`DROP TABLE IF EXISTS ${table}`);
  // Off, runs get no filter (searches check every span of a run). Turned on again later, the runs
  // written meanwhile get theirs here, as do those of a file from before the filters.
  if (options.attributeIndex !== false) fillRunFilters(db);
  // A file written before the operations table (or tenants) existed: fill it once from the stored
  // spans. Told by what the table holds, not by whether it existed when this open began: an open
  // of such a file that stopped before this point (killed during a long migration, a full disk)
  // left the table made and empty, and the next open found it and never filled it (no services or
  // operations listed, and retention, which finds tenants through it, passed over their spans).
  // Every stored span's operation is in the table otherwise (TENANTS_SQL).
  if ((db.prepare('SELECT NOT EXISTS (SELECT 1 FROM operations) AND EXISTS (SELECT 1 FROM spans) AS fill').get() as { fill: number }).fill) {
    db.exec(`INSERT OR IGNORE INTO operations (tenant, service_name, name, kind, last_start_ns)
             SELECT tenant, service_name, name, coalesce(json_extract(doc, '$.kind'), 0), max(start_ns) FROM spans GROUP BY 1, 2, 3, 4`);
  }
  return db;
}

/**
 * Migrates a file from before tenants: its rows become the default tenant's (the column default),
 * indexes not led by the tenant go, and the operations listing is rebuilt with the tenant in its key.
 */
function addTenants(db: DatabaseSync, lacking: { spans: boolean; logs: boolean }): void {
  inTransaction(db, () => {
    if (lacking.spans) {
      db.exec(`ALTER TABLE spans ADD COLUMN tenant TEXT NOT NULL DEFAULT '${DEFAULT_TENANT}';
               DROP INDEX IF EXISTS spans_trace_span; DROP INDEX IF EXISTS spans_service_start;
               DROP TABLE IF EXISTS operations;`);
    }
    if (lacking.logs) {
      db.exec(`ALTER TABLE logs ADD COLUMN tenant TEXT NOT NULL DEFAULT '${DEFAULT_TENANT}';
               DROP INDEX IF EXISTS logs_trace; DROP INDEX IF EXISTS logs_service_time;`);
    }
  });
}

/** The highest severity of each time bucket a write batch's log records fall in (one tenant's), and the rowids of its first and last. */
class LogSeverities {
  private readonly highest = new Map<bigint, number>();
  /** The bucket of the records just added (a batch's records mostly share one), its first time and the first past it, and their highest severity. */
  private bucket = -1n;
  private from = 0n;
  private past = 0n;
  private severity = -1;
  first = 0;
  last = 0;

  add(time: bigint, severity: number, rowid: number | bigint): void {
    if (time < this.past && time >= this.from) {
      if (severity > this.severity) this.severity = severity;
    } else {
      this.flush();
      this.bucket = bucketOf(time);
      this.from = this.bucket * BUCKET_NS;
      this.past = this.from + BUCKET_NS;
      this.severity = severity;
    }
    if (this.first === 0) this.first = Number(rowid);
    this.last = Number(rowid);
  }

  /** Each bucket's highest severity. */
  buckets(): Map<bigint, number> {
    this.flush();
    return this.highest;
  }

  private flush(): void {
    if (this.bucket < 0n) return;
    const known = this.highest.get(this.bucket);
    if (known === undefined || this.severity > known) this.highest.set(this.bucket, this.severity);
    this.bucket = -1n;
  }
}

/** An operation of a batch's spans, with its newest start. */
interface OperationSeen {
  service: string;
  name: string;
  kind: number;
  start: bigint;
}

/** Newest start per distinct operation of a batch: one upsert each, not one per span. */
class OperationsSeen {
  private readonly seen = new Map<string, OperationSeen>();
  /** The operations of span records, by their name's bytes (no string and no map lookup for an operation met before). */
  private readonly cache = new OperationCache<OperationSeen>();

  add(service: string, name: string, kind: number, start: bigint): void {
    const seen = this.entry(service, name, kind, start);
    if (start > seen.start) seen.start = start;
  }

  /** Notes the operation of the span record at r of buf (view: a DataView of the same bytes), whose group's service is `service`. */
  addRecord(service: string, buf: SlicingBuffer, view: DataView, r: number, start: bigint): void {
    let seen = this.cache.get(service, buf, view, r);
    if (seen === undefined) seen = this.cache.put(service, buf, r, this.entry(service, spanName(buf, r), spanKind(buf, r), start));
    if (start > seen.start) seen.start = start;
  }

  private entry(service: string, name: string, kind: number, start: bigint): OperationSeen {
    // Length-prefixed, so no service and name pair can collide with another.
    const key = `${kind}:${service.length}:${service}${name}`;
    let seen = this.seen.get(key);
    if (!seen) this.seen.set(key, (seen = { service, name, kind, start }));
    return seen;
  }

  write(upsert: StatementSync, tenant: string): void {
    for (const o of this.seen.values()) upsert.run(tenant, o.service, o.name, o.kind, o.start);
  }
}

/** Adds the terms of the span record buf[r, end) to its run's: its attributes' and its name's (reader reads buf). */
function addRecordTerms(terms: RunTerms, reader: WireReader, buf: SlicingBuffer, r: number, end: number): void {
  terms.add(reader, r + SPAN_HEAD_BYTES, end);
  const name = spanNameStart(buf, r);
  terms.addName(buf, name, name + spanNameLength(buf, r));
}

/** The duration of the span record at r (start: its clamped start), as the rows' duration_ns (clamped times, 0 if it ends before it starts). */
export function recordDuration(buf: Buffer, r: number, start: bigint): bigint {
  const end = clampNs(spanEnd(buf, r));
  return end > start ? end - start : 0n;
}

/** A batch's resource and scope groups (SqliteStore.groups). */
interface BatchGroups {
  /** The id of the group whose record is `g` in buf. */
  id(buf: Buffer, g: GroupRef): number;
  /** An item of the open group was stored (inserted) or was already (not), with its time. */
  item(inserted: boolean, ns: bigint): void;
  close(): void;
}

/** A run of records waiting for its batch's end (RecordRunWriter.finish). */
interface PendingRun {
  trace: string;
  service: string;
  min: bigint;
  max: bigint;
  filter: Uint8Array | null;
  group: number;
  count: number;
  maxDuration: bigint;
  records: Uint8Array;
  /** What its run_spans row takes of a leaf page (LeafPages.cellBytes). */
  cell: number;
}

/**
 * run_spans' leaf pages as SQLite fills them. Its rowids only grow, so each row goes on the last
 * leaf page; one that does not fit there starts a new page (SQLite's balance_quick), and the
 * page's free bytes stay free. A run's records are ~13 KB on the bench traffic, so rows written
 * in arrival order left a quarter of each 32 KiB page free (docs/performance.md, phase AE).
 */
interface LeafPages {
  /** Bytes a leaf page holds for cells (the page less its 8-byte header). */
  readonly capacity: number;
  /** The last page's free bytes, as far as this connection's writes tell (0: unknown, taken as full). */
  free: number;
  /** The bytes a run_spans row of `blobBytes` of records takes on its leaf page. */
  cellBytes(blobBytes: number): number;
}

/** Bytes of an SQLite varint of n (n < 2^56). */
function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80 && bytes < 9) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}

/** The leaf pages of a table b-tree of pages of pageSize bytes (SQLite's file format, "B-tree Pages"). */
function leafPages(pageSize: number): LeafPages {
  const maxLocal = pageSize - 35;
  const minLocal = Math.floor(((pageSize - 12) * 32) / 255) - 23;
  return {
    capacity: pageSize - 8,
    free: 0,
    cellBytes(blobBytes) {
      // The record: its header (its length, the rowid alias's NULL, the blob's serial type), then the blob.
      const payload = 2 + varintBytes(blobBytes * 2 + 12) + blobBytes;
      let local = payload;
      let overflow = 0;
      if (payload > maxLocal) {
        // The part kept on the leaf page when the rest goes to overflow pages.
        local = minLocal + ((payload - minLocal) % (pageSize - 4));
        if (local > maxLocal) local = minLocal;
        overflow = 4;
      }
      // The cell's pointer, its payload length and rowid (5 bytes: rowids below 2^35).
      return 2 + varintBytes(payload) + 5 + local + overflow;
    },
  };
}

/**
 * The order to write a batch's runs in so that they fill leaf pages: each time, the largest run
 * that fits the last page's free bytes, and when none does, the largest left starts a new page.
 * A batch's rows are written in one transaction, and no read needs their order among themselves:
 * searches order runs by time; a trace's runs and an export's pages go by rowid for a stable
 * order and cursor.
 */
function packRuns(runs: readonly PendingRun[], leaf: LeafPages): PendingRun[] {
  const bySize = runs.slice().sort((a, b) => a.cell - b.cell);
  const n = bySize.length;
  // below[i]: i while bySize[i] is left, else a smaller index to look at (-1: none), path-compressed.
  const below = new Int32Array(n);
  for (let i = 0; i < n; i++) below[i] = i;
  const largestLeft = (i: number): number => {
    let r = i;
    while (r >= 0 && below[r] !== r) r = below[r]!;
    while (i > r) {
      const next = below[i]!;
      below[i] = r;
      i = next;
    }
    return r;
  };
  const out: PendingRun[] = [];
  for (let k = 0; k < n; k++) {
    // The last index whose cell fits the free bytes.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (bySize[mid]!.cell <= leaf.free) lo = mid + 1;
      else hi = mid;
    }
    let at = lo === 0 ? -1 : largestLeft(lo - 1);
    if (at < 0) {
      leaf.free = leaf.capacity;
      at = largestLeft(n - 1);
    }
    const run = bySize[at]!;
    below[at] = at - 1;
    leaf.free = Math.max(0, leaf.free - run.cell);
    out.push(run);
  }
  return out;
}

/** Span id words RecentTraces holds, over all its traces (~2.9 s of the bench's maximum rate). */
const RECENT_WORDS = 1 << 19;
/** Traces RecentTraces finds by id: an open-addressed table at most half full, emptied when it is. */
const RECENT_TRACE_SLOTS = 1 << 17;
/** A trace with more spans than this has its words in a set of its own (longTrace()), not in the ring (its chain would be walked at every run). */
const RECENT_TRACE_WORDS = 4096;
/** Int32s the long traces' sets take at most, over all of them (8 MiB: ~500k words, two int32s a place, at most half full): past it the least recently used are forgotten. */
const LONG_TRACE_INTS = 1 << 21;
/** Positions count words written; past this (a small integer still) they start again, with nothing kept. */
const RECENT_POSITIONS = 1 << 30;
/** A slot's head: no trace (EMPTY), or one whose words are in a set for its length (LONG: known while RecentTraces.long has it). */
const EMPTY = -1;
const LONG = -2;
/** Int32s per slot of RecentTraces' table (one cache line or two). */
const SLOT_INTS = 6;

/**
 * A word of every span id stored (or written in the open batch) for each trace the store wrote
 * lately, by tenant and trace id: a run of a trace met again (another service's spans, a later
 * export) none of whose ids' words is among its trace's needs no read of the trace's stored
 * records to leave out the spans stored before. Reading them cost ~2 CPU-µs per span of the
 * store's write when each service of a trace arrives in a batch of its own. A trace is kept only
 * with every stored span's word: from its first run, or from a read of all its spans. Words of
 * spans that were not stored after all (a transaction rolled back, retention) only send a run to
 * the read; other writers to the file empty it (SQLite's data_version), as do the rows of an
 * older version's log, which are written past it.
 *
 * Typed arrays only (~7 MiB), since the garbage collector marks and moves every object kept:
 * a table of traces keyed by tenant and trace id, each holding the position of its newest word
 * in a ring of the last RECENT_WORDS words, each word the position of its trace's word before
 * it. A trace one of whose words the ring has passed is not known. Kept in a Map of trace id
 * strings to arrays, it cost traces that each arrive whole ~5 % of the store's write; this ~2 %
 * (`node bench/sqlite-split-traces.ts`, docs/performance.md phase AM).
 *
 * A trace of more than RECENT_TRACE_WORDS spans (a long job's, exported as it runs) has its words
 * in a set of its own instead (longTrace()), so that a run costs a lookup per span, not a walk of
 * the trace; without it each run of such a trace read all its stored spans, ~10x the write of a
 * span (phase AN). The sets are bounded together (LONG_TRACE_INTS); one forgotten for room is
 * known again from the next read of its trace.
 */
class RecentTraces {
  /** Per word: the word, and the position of its trace's word before it (EMPTY: its first). */
  private readonly ring = new Int32Array(RECENT_WORDS * 2);
  /** Words written so far. */
  private pos = 0;
  /** Per slot (SLOT_INTS): the position of its trace's newest word (or EMPTY, LONG), its tenant's number, the trace id's four words. */
  private readonly table = new Int32Array(RECENT_TRACE_SLOTS * SLOT_INTS).fill(EMPTY);
  private used = 0;
  private readonly tenants = new Map<string, number>();
  /** The slot open() readied for the words being added. */
  private adding = 0;
  /** The words of the LONG traces known, by slot, least recently used first. */
  private readonly long = new Map<number, IdSet>();
  private longInts = 0;
  private readonly maxLongInts: number;

  constructor(maxLongInts = LONG_TRACE_INTS) {
    this.maxLongInts = maxLongInts;
  }

  /** The number standing for a tenant in the keys. */
  tenant(tenant: string): number {
    let n = this.tenants.get(tenant);
    if (n === undefined) this.tenants.set(tenant, (n = this.tenants.size));
    return n;
  }

  /**
   * Whether one of the run's words is its trace's (the trace's slot()), or undefined when the
   * trace is not known (never added, too long, or its oldest words passed).
   */
  mayHold(slot: number, run: ReadonlySet<number>): boolean | undefined {
    let p = this.table[slot * SLOT_INTS]!;
    if (p === LONG) {
      const words = this.longOf(slot);
      if (words === undefined) return undefined;
      for (const w of run) if (words.has(w, 0)) return true;
      return false;
    }
    if (p < 0) return undefined;
    const oldest = this.pos - RECENT_WORDS;
    for (let n = 0; p >= 0; p = this.ring[2 * (p & (RECENT_WORDS - 1)) + 1]!) {
      if (p < oldest) return undefined;
      if (++n > RECENT_TRACE_WORDS) {
        // Too long to walk at every run: its words go to a set of their own, if the ring holds them all.
        const words = longTrace();
        for (let q = this.table[slot * SLOT_INTS]!; q >= 0; q = this.ring[2 * (q & (RECENT_WORDS - 1)) + 1]!) {
          if (q < oldest) {
            this.table[slot * SLOT_INTS] = LONG;
            return undefined;
          }
          words.add(this.ring[2 * (q & (RECENT_WORDS - 1))]!, 0);
        }
        this.makeLong(slot, words);
        return this.mayHold(slot, run);
      }
      if (run.has(this.ring[2 * (p & (RECENT_WORDS - 1))]!)) return true;
    }
    return false;
  }

  /** A LONG trace's words, when known (and now the most recently used). */
  private longOf(slot: number): IdSet | undefined {
    const words = this.long.get(slot);
    if (words !== undefined) {
      this.long.delete(slot);
      this.long.set(slot, words);
    }
    return words;
  }

  /** Keeps the slot's trace as LONG with these words, forgetting the least recently used others past the bound. */
  private makeLong(slot: number, words: IdSet): void {
    this.table[slot * SLOT_INTS] = LONG;
    this.dropLong(slot);
    this.long.set(slot, words);
    this.longInts += words.ints;
    this.fitLong(slot);
  }

  private dropLong(slot: number): void {
    const old = this.long.get(slot);
    if (old === undefined) return;
    this.long.delete(slot);
    this.longInts -= old.ints;
  }

  /** Forgets the least recently used long traces until their sets fit the bound, `keep` last (alone past the bound, it is not known either). */
  private fitLong(keep: number): void {
    for (const [slot, words] of this.long) {
      if (this.longInts <= this.maxLongInts) return;
      if (slot === keep) continue;
      this.long.delete(slot);
      this.longInts -= words.ints;
    }
    if (this.longInts > this.maxLongInts) this.dropLong(keep);
  }

  /** Adds words to a LONG trace's set (anew: they replace it); unknown and not anew, it stays unknown. */
  private addLong(slot: number, words: Iterable<number>, anew: boolean): void {
    let set = anew ? undefined : this.longOf(slot);
    if (set === undefined) {
      if (!anew) return;
      set = longTrace();
      for (const w of words) set.add(w, 0);
      this.makeLong(slot, set);
      return;
    }
    const before = set.ints;
    for (const w of words) set.add(w, 0);
    this.longInts += set.ints - before;
    this.fitLong(slot);
  }

  /** Adds the words of the span records buf[first, end), `count` of them (see open()). */
  addRun(slot: number, tenant: number, buf: Buffer, at: number, first: number, end: number, count: number, anew: boolean): void {
    let last = this.open(slot, tenant, buf, at, count, anew);
    if (last === undefined) return;
    if (last === LONG) {
      this.addLong(this.adding, recordWords(buf, first, end), anew);
      return;
    }
    for (let r = first; r < end; r = spanRecordEnd(buf, r)) last = this.push(idWord(buf, r + S_SPAN), last);
    this.table[this.adding * SLOT_INTS] = last;
  }

  /** Adds these words (see open()). */
  addWords(slot: number, tenant: number, buf: Buffer, at: number, words: readonly number[], anew: boolean): void {
    let last = this.open(slot, tenant, buf, at, words.length, anew);
    if (last === undefined) return;
    if (last === LONG) {
      this.addLong(this.adding, words, anew);
      return;
    }
    for (const w of words) last = this.push(w, last);
    this.table[this.adding * SLOT_INTS] = last;
  }

  /**
   * Readies the trace's slot (slot(), of the tenant and the trace id at buf[at]) for `count` more
   * words: with `anew` they are all its spans and replace what it had. Returns the position its
   * first word follows, LONG when they go to its set, or undefined when they are not kept.
   */
  private open(slot: number, tenant: number, buf: Buffer, at: number, count: number, anew: boolean): number | undefined {
    const table = this.table;
    if (this.pos + count >= RECENT_POSITIONS) {
      this.clear();
      // What the trace had is gone: it is known again only from all its spans.
      if (!anew) return undefined;
      slot = this.slot(tenant, buf, at);
    }
    const head = table[slot * SLOT_INTS]!;
    this.adding = slot;
    if (head === LONG) return LONG;
    if (head === EMPTY) {
      if (!anew) return undefined;
      if (++this.used > RECENT_TRACE_SLOTS / 2) {
        this.clear();
        slot = this.slot(tenant, buf, at);
        this.used = 1;
      }
      const k = slot * SLOT_INTS;
      table[k + 1] = tenant;
      for (let i = 0; i < 4; i++) table[k + 2 + i] = buf.readInt32LE(at + 4 * i);
      this.adding = slot;
    }
    if (count > RECENT_TRACE_WORDS) {
      // Not walked past its length (mayHold) either: a set of its own, from all its words.
      table[slot * SLOT_INTS] = LONG;
      return anew ? LONG : undefined;
    }
    return anew ? EMPTY : head;
  }

  /** Writes a word after `last` (its trace's newest); returns its position. */
  private push(word: number, last: number): number {
    const i = 2 * (this.pos & (RECENT_WORDS - 1));
    this.ring[i] = word;
    this.ring[i + 1] = last;
    return this.pos++;
  }

  /** The slot of the tenant's trace whose id is the 16 bytes at buf[at]: where its key is, or the empty one where it would go. */
  slot(tenant: number, buf: Buffer, at: number): number {
    const w0 = buf.readInt32LE(at);
    const w1 = buf.readInt32LE(at + 4);
    const w2 = buf.readInt32LE(at + 8);
    const w3 = buf.readInt32LE(at + 12);
    // The keyed mix of trace ids (id-set.ts), the tenant folded into the first word: under the
    // former fixed FNV-1a mix, w3 chosen from the others put every trace on one slot, and each new
    // trace probed the whole run on the write thread.
    const table = this.table;
    for (let i = traceHome(w0 ^ Math.imul(tenant, 0x9e3779b1), w1, w2, w3) & (RECENT_TRACE_SLOTS - 1); ; i = (i + 1) & (RECENT_TRACE_SLOTS - 1)) {
      const k = i * SLOT_INTS;
      if (table[k] === EMPTY) return i;
      if (table[k + 1] === tenant && table[k + 2] === w0 && table[k + 3] === w1 && table[k + 4] === w2 && table[k + 5] === w3) return i;
    }
  }

  clear(): void {
    for (let k = 0; k < this.table.length; k += SLOT_INTS) this.table[k] = EMPTY;
    this.used = 0;
    this.pos = 0;
    this.long.clear();
    this.longInts = 0;
  }
}

/** A long trace's set of words, each kept as the id (word, 0); it starts with room for twice RECENT_TRACE_WORDS. */
function longTrace(): IdSet {
  return new IdSet(4 * RECENT_TRACE_WORDS);
}

/**
 * The word of a span id at buf[at] that RecentTraces and a run compare: both halves folded, so ids
 * that share their first bytes (a counter, a 32-bit id zero-padded) still differ in it.
 */
export function idWord(buf: Buffer, at: number): number {
  return buf.readInt32LE(at) ^ buf.readInt32LE(at + 4);
}

/** The first word of each span id of the records buf[first, end). */
function* recordWords(buf: Buffer, first: number, end: number): Iterable<number> {
  for (let r = first; r < end; r = spanRecordEnd(buf, r)) yield idWord(buf, r + S_SPAN);
}

/**
 * The run of records being written (see RUN_SPANS_SCHEMA): span records that follow one another in
 * a chunk, of one trace and one group (the spans of a trace arrive together in most requests), with
 * the filter of their attributes' terms when the store writes filters. A span already stored (its
 * trace has runs, and its id is among their spans) is left out, as is a second copy in one run:
 * retried exports and a replayed write-ahead log store each span once.
 */
class RecordRunWriter {
  private readonly insertRun: StatementSync;
  private readonly insertRecords: StatementSync;
  private readonly indexRun: StatementSync;
  private readonly traceHasRun: StatementSync;
  private readonly traceRecords: StatementSync;
  private readonly traceRows: StatementSync;
  private readonly dataVersion: StatementSync;
  private lastDataVersion = -1;
  private readonly recent: RecentTraces;
  /** The batch's tenant, as RecentTraces numbers it. */
  private recentTenant = 0;
  /** The run's terms (absent: no filters written). */
  private readonly terms: RunTerms | undefined;
  private tenant = '';
  private groups: BatchGroups | undefined;
  private buf: SlicingBuffer | undefined;
  private reader: WireReader | undefined;
  /** A DataView of buf (OperationsSeen.addRecord). */
  private view: DataView | undefined;
  /** The batch's operations: those of the spans it stores, not of those stored before (a span sent again under another name, kind or service lists none). */
  private ops: OperationsSeen | undefined;
  private groupRef: GroupRef | undefined;
  private group = 0;
  private trace = '';
  /** The run's records are buf[first, end). */
  private first = 0;
  private end = 0;
  private min = 0n;
  private max = 0n;
  private maxDuration = 0n;
  /** Spans in the open run. */
  private n = 0;
  /** A word of each span id in the run, and whether one came twice (then ids are compared whole). */
  private readonly idWords = new Set<number>();
  private repeated = false;
  /** The batch's runs by trace, written when it ends (finish). */
  private readonly pendingOfTrace = new Map<string, PendingRun[]>();
  /**
   * Per trace that unstored() read in this batch: the ids of its spans stored or pending, and the
   * words of them all. A later run of the trace in the batch reads no stored span again: a resent
   * request whose spans of a long trace come in many short runs (interleaved with other traces, as
   * an SDK's batch has them) read the whole trace once per run.
   */
  private readonly storedOfTrace = new Map<string, { ids: Set<string>; words: number[] }>();
  /** run_spans' leaf pages, as packRuns sees them. */
  private readonly leaf: LeafPages;

  /** span_runs' rowid floor (shared with the runs of rows). */
  private readonly floor: RowidFloor;

  /** The runs this write added (run_reach; shared with the runs of rows). */
  private readonly added: RunsAdded;

  constructor(db: DatabaseSync, indexRun: StatementSync, terms: RunTerms | undefined, floor: RowidFloor, added: RunsAdded, longTraceInts?: number) {
    this.added = added;
    this.recent = new RecentTraces(longTraceInts);
    this.floor = floor;
    this.insertRun = db.prepare(`INSERT INTO span_runs (rowid, tenant, trace_id, service_name, min_start_ns, max_start_ns, first_rowid, last_rowid, attr_filter, group_id, span_count, max_duration_ns)
      VALUES (?, ?, ?, ?, ?, ?, ${RECORD_RUN_RANGE}, ?, ?, ?, ?)`);
    this.insertRecords = db.prepare('INSERT INTO run_spans (run, records) VALUES (?, ?)');
    this.indexRun = indexRun;
    this.traceHasRun = db.prepare(`SELECT 1 FROM ${TRACE_INDEX}.trace_runs WHERE tenant = ? AND trace_id = ? LIMIT 1`);
    this.traceRecords = db.prepare(`SELECT b.records AS records FROM span_runs r JOIN run_spans b ON b.run = r.rowid WHERE ${runOfTrace('r')}`);
    this.traceRows = db.prepare('SELECT span_id AS id FROM spans WHERE tenant = ? AND trace_id = ?');
    this.dataVersion = db.prepare('PRAGMA data_version');
    this.terms = terms;
    this.leaf = leafPages((db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size);
  }

  /** A batch's transaction begins (a run left by a failed one is not written). */
  begin(tenant: string, groups: BatchGroups, ops: OperationsSeen): void {
    this.tenant = tenant;
    this.groups = groups;
    this.ops = ops;
    this.n = 0;
    this.pendingOfTrace.clear();
    this.storedOfTrace.clear();
    // Another connection committed since the last batch: the recent traces may miss its spans.
    const version = Number((this.dataVersion.get() as { data_version: number | bigint }).data_version);
    if (version !== this.lastDataVersion) this.recent.clear();
    this.lastDataVersion = version;
    this.recentTenant = this.recent.tenant(tenant);
  }

  /** Spans were stored past the recent traces (rows of an older version's log). */
  forgetRecent(): void {
    this.recent.clear();
  }

  /** Whether the span record at r (of group g) continues the open run. */
  continues(buf: Buffer, r: number, g: GroupRef): boolean {
    return this.n > 0 && buf === this.buf && g === this.groupRef && r === this.end && sameTraceId(buf, this.first, r);
  }

  /** Adds the span record at r to the run (after flush, when it does not continue it). */
  add(buf: SlicingBuffer, r: number, g: GroupRef, groupId: number, start: bigint): void {
    const end = spanRecordEnd(buf, r);
    if (buf !== this.buf) {
      this.buf = buf;
      this.reader = new WireReader(buf);
      this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    if (this.n === 0) {
      this.groupRef = g;
      this.group = groupId;
      this.trace = spanTraceId(buf, r);
      this.first = r;
      this.min = start;
      this.max = start;
      this.maxDuration = 0n;
      this.idWords.clear();
      this.repeated = false;
      this.terms?.begin();
    } else if (start < this.min) this.min = start;
    else if (start > this.max) this.max = start;
    const duration = recordDuration(buf, r, start);
    if (duration > this.maxDuration) this.maxDuration = duration;
    const word = idWord(buf, r + S_SPAN);
    if (this.idWords.has(word)) this.repeated = true;
    else this.idWords.add(word);
    this.end = end;
    this.n++;
    if (this.terms) addRecordTerms(this.terms, this.reader!, buf, r, end);
  }

  /** Ends the open run: its spans not stored yet wait for finish() (call before its group closes: the group's row takes the run's newest start). */
  flush(): void {
    if (this.n === 0) return;
    const buf = this.buf!;
    let records: Uint8Array = buf.subarray(this.first, this.end);
    let count = this.n;
    this.n = 0;
    const ofTrace = this.pendingOfTrace.get(this.trace);
    const recent = this.recent;
    const traceAt = this.first + S_TRACE;
    const slot = recent.slot(this.recentTenant, buf, traceAt);
    const known = this.repeated ? true : recent.mayHold(slot, this.idWords);
    if (known ?? (ofTrace !== undefined || this.traceHasRun.get(this.tenant, this.trace) !== undefined)) {
      // All the trace's words: it is known from here on.
      const { kept, words } = this.unstored(buf, ofTrace);
      recent.addWords(slot, this.recentTenant, buf, traceAt, words, true);
      if (kept.length === 0) return;
      if (kept.length < count) records = Buffer.concat(kept);
      count = kept.length;
    } else {
      for (let r = this.first; r < this.end; r = spanRecordEnd(buf, r)) this.ops!.addRecord(this.groupRef!.service, buf, this.view!, r, clampNs(spanStart(buf, r)));
      recent.addRun(slot, this.recentTenant, buf, traceAt, this.first, this.end, count, known === undefined);
      // A trace read in this batch already: these spans are pending too.
      const read = this.storedOfTrace.get(this.trace);
      if (read) {
        readSpanRecords(records, (b, r) => {
          read.ids.add(spanId(b, r));
          read.words.push(idWord(b, r + S_SPAN));
        });
      }
    }
    const run: PendingRun = {
      trace: this.trace,
      service: this.groupRef!.service,
      min: this.min,
      max: this.max,
      filter: this.terms?.filter().slice() ?? null,
      group: this.group,
      count,
      maxDuration: this.maxDuration,
      records,
      cell: this.leaf.cellBytes(records.length),
    };
    if (ofTrace) ofTrace.push(run);
    else this.pendingOfTrace.set(this.trace, [run]);
    this.groups!.item(true, this.max);
  }

  /**
   * Writes the batch's runs (call after the last flush, before the transaction commits), in the
   * order packRuns gives: run_spans' rowids are span_runs', so their order is the order written.
   */
  finish(): void {
    for (const run of packRuns([...this.pendingOfTrace.values()].flat(), this.leaf)) {
      const id = this.insertRun.run(this.floor.next, this.tenant, run.trace, run.service, run.min, run.max, run.filter, run.group, run.count, run.maxDuration).lastInsertRowid;
      this.floor.used();
      this.added.add(run.min, run.max, id);
      this.insertRecords.run(id, run.records);
      this.indexRun.run(this.tenant, run.trace, id);
    }
    this.pendingOfTrace.clear();
    this.storedOfTrace.clear();
  }

  /**
   * The run's records whose span is not stored yet (nor in the batch's runs of its trace, nor
   * earlier in the run), with its times and terms made anew; and the first word of every span of
   * the trace once they are (RecentTraces).
   */
  private unstored(buf: SlicingBuffer, batchRuns: readonly PendingRun[] | undefined): { kept: Buffer[]; words: number[] } {
    let read = this.storedOfTrace.get(this.trace);
    if (!read) {
      const r0 = { ids: new Set<string>(), words: [] as number[] };
      const note = (b: SlicingBuffer, r: number): void => {
        r0.ids.add(spanId(b, r));
        r0.words.push(idWord(b, r + S_SPAN));
      };
      for (const { records } of this.traceRecords.iterate(this.tenant, this.trace) as Iterable<{ records: Uint8Array }>) readSpanRecords(records, note);
      for (const run of batchRuns ?? []) readSpanRecords(run.records, note);
      for (const { id } of this.traceRows.iterate(this.tenant, this.trace) as Iterable<{ id: string }>) {
        r0.ids.add(id);
        r0.words.push(idWord(Buffer.from(id, 'hex'), 0));
      }
      this.storedOfTrace.set(this.trace, (read = r0));
    }
    const { ids: stored, words } = read;
    const kept: Buffer[] = [];
    this.terms?.begin();
    this.maxDuration = 0n;
    for (let r = this.first, end = 0; r < this.end; r = end) {
      end = spanRecordEnd(buf, r);
      const id = spanId(buf, r);
      if (stored.has(id)) continue;
      stored.add(id);
      const start = clampNs(spanStart(buf, r));
      if (kept.length === 0 || start < this.min) this.min = start;
      if (kept.length === 0 || start > this.max) this.max = start;
      const duration = recordDuration(buf, r, start);
      if (duration > this.maxDuration) this.maxDuration = duration;
      kept.push(buf.subarray(r, end));
      words.push(idWord(buf, r + S_SPAN));
      this.ops!.addRecord(this.groupRef!.service, buf, this.view!, r, start);
      if (this.terms) addRecordTerms(this.terms, this.reader!, buf, r, end);
    }
    return { kept, words };
  }
}

/**
 * The run of rows of spans being written (see SPAN_RUNS_SCHEMA), for the JSON lines of an older
 * version's write-ahead log: spans added one after another until the trace, service or tenant
 * changes or a rowid is skipped, with the filter of their attributes' terms when the store writes
 * filters.
 */
class SpanRunWriter {
  private readonly insert: StatementSync;
  private readonly indexRun: StatementSync;
  /** The run's terms (absent: no filters written). */
  private readonly terms: RunTerms | undefined;
  private tenant = '';
  private trace = '';
  private service = '';
  private first = 0;
  private last = 0;
  private min = 0n;
  private max = 0n;
  /** Spans in the open run. */
  private n = 0;

  /** span_runs' rowid floor (shared with the runs of records). */
  private readonly floor: RowidFloor;

  /** The runs this write added (run_reach; shared with the runs of records). */
  private readonly added: RunsAdded;

  constructor(insert: StatementSync, indexRun: StatementSync, terms: RunTerms | undefined, floor: RowidFloor, added: RunsAdded) {
    this.added = added;
    this.insert = insert;
    this.floor = floor;
    this.indexRun = indexRun;
    this.terms = terms;
  }

  /** A span just inserted with this rowid, with its decoded attributes and its name (their terms as a run of records has them). */
  add(tenant: string, trace: string, service: string, start: bigint, rowid: number, attributes: readonly KeyValue[], name: string): void {
    if (this.n > 0 && (trace !== this.trace || service !== this.service || tenant !== this.tenant || rowid !== this.last + 1)) this.flush();
    if (this.n === 0) {
      this.tenant = tenant;
      this.trace = trace;
      this.service = service;
      this.first = rowid;
      this.min = start;
      this.max = start;
      this.terms?.begin();
    } else if (start < this.min) this.min = start;
    else if (start > this.max) this.max = start;
    this.last = rowid;
    this.n++;
    this.terms?.addAttributes(attributes);
    this.terms?.addNameText(name);
  }

  /** Forgets the open run (a transaction begins: one left by a failed one is not written). */
  clear(): void {
    this.n = 0;
  }

  /** Writes the open run (call before the transaction commits). */
  flush(): void {
    if (this.n === 0) return;
    const run = this.insert.run(this.floor.next, this.tenant, this.trace, this.service, this.min, this.max, this.first, this.last, this.terms?.filter() ?? null);
    this.floor.used();
    this.added.add(this.min, this.max, run.lastInsertRowid);
    this.indexRun.run(this.tenant, this.trace, run.lastInsertRowid);
    this.n = 0;
  }
}

/**
 * Writes batches in one transaction each. A batch's chunks are the decode workers' `otlp` chunks
 * (src/storage/otlp-chunks.ts): spans are stored by runs of records, each log record as its
 * protobuf bytes, a group's resource and scope once in item_groups. JSON-line chunks (`rowjson`,
 * written by older versions) are still accepted, as rows of spans, so a write-ahead log left by
 * one is replayed after an upgrade.
 */
export class SqliteStore {
  private readonly db: DatabaseSync;
  private readonly insertSpan: StatementSync;
  /** The span records of a trace's runs of records (?1 tenant, ?2 trace id). */
  private readonly traceRecords: StatementSync;
  private readonly insertLog: StatementSync;
  /**
   * Versions of 2026-12-01 kept the ids of stored log batches in a table (log_batches), not a key on
   * the records: a batch of theirs that a write-ahead log replays after the upgrade is found there.
   */
  private readonly legacyLogBatch: StatementSync | undefined;
  private readonly insertGroup: StatementSync;
  private readonly upsertOperation: StatementSync;
  private readonly maxGroupId: StatementSync;
  /** Note span_runs' and logs' largest rowids in the trace index, in each transaction that adds or removes their rows (see TRACE_INDEX). */
  private readonly noteIndexedRuns: StatementSync;
  private readonly noteIndexedLogs: StatementSync;
  /** Bring run_reach up to the runs a span write added (RUN_REACH_RAISE, else RUN_REACH_CATCH_UP). */
  private readonly raiseRunReach: StatementSync;
  private readonly catchUpRunReach: StatementSync;
  private readonly runsAdded = new RunsAdded();
  /** A retention slice deleted or narrowed a run as wide as run_reach: the last slice learns it anew (RUN_REACH_ANEW). */
  private widestRunGone = false;
  /**
   * No retention pass of this store ran yet: its first learns run_reach anew if it is wider than
   * the retention (an earlier build's retention narrowed the widest run and kept run_reach; every
   * run left spans at most the retention then, but for starts stamped in the future).
   */
  private reachUnchecked = true;
  private readonly indexLog: StatementSync;
  /** The buckets' highest severities of log records (LOG_SEVERITY): raise, note a write's rowids, catch up. */
  private readonly raiseLogSeverity: StatementSync;
  private readonly noteLogSeverity: StatementSync;
  private readonly catchUpLogSeverity: StatementSync[];
  /** The store's file as opened, when given its configured path: writes are refused once the path names it no more. */
  private readonly openedFile: OpenedFile | undefined;
  /** The -wal file was found gone and what it held is checkpointed into the store's file (walGone). */
  private walRescued = false;
  /** False after a transaction failed: the trace index may lack runs the store's file committed. */
  private indexInStep = true;
  /** The -wal files of the store's file and its trace index, with their size limits (resetOvergrownWal). */
  private readonly walFiles: { file: string; bound: number; retryAt: number; waitAt: number; held: boolean; size: number; salt: string }[] = [];
  /** Told when a checkpoint waited out the busy timeout for a read held open (the -wal file, its bytes), and with undefined once a -wal file is reset again. */
  private readonly onWalHeld: ((held: WalHeld) => void) | undefined;
  private readonly runs: SpanRunWriter;
  private readonly recordRuns: RecordRunWriter;
  /** Retention's slices (sliceEnd): the tenants, a tenant's run with the n-th oldest newest start, the n-th oldest log record's time. */
  private readonly tenants: StatementSync;
  /** The tenants with log records (LOG_TENANTS_SQL). */
  private readonly logTenants: StatementSync;
  private readonly nthRunEnd: StatementSync;
  private readonly nthLogTime: StatementSync;
  /** Rowid floors (RowidFloor), and their note before retention deletes. */
  private readonly runFloor: RowidFloor;
  private readonly logFloor: RowidFloor;
  private readonly noteFloors: StatementSync;

  /**
   * `indexAttributes: false` writes no runs' filters (storage.sqlite.attributeIndex off, or the
   * benchmark's baseline); `longTraceInts` bounds RecentTraces' sets of long traces
   * (LONG_TRACE_INTS), smaller in tests.
   */
  constructor(db: DatabaseSync, options: { indexAttributes?: boolean; longTraceInts?: number; path?: string; onWalHeld?: (held: WalHeld) => void } = {}) {
    this.db = db;
    this.onWalHeld = options.onWalHeld;
    if (options.path !== undefined) this.openedFile = new OpenedFile(db, options.path);
    for (const schema of ['main', TRACE_INDEX]) {
      const file = db.location(schema);
      const limit = (db.prepare(`PRAGMA ${schema}.journal_size_limit`).get() as { journal_size_limit: number }).journal_size_limit;
      if (file && limit > 0) this.walFiles.push({ file: `${file}-wal`, bound: limit, retryAt: limit, waitAt: 0, held: false, size: 0, salt: '' });
    }
    this.maxGroupId = db.prepare('SELECT coalesce(max(gid), 0) AS m FROM item_groups');
    this.noteIndexedRuns = db.prepare(noteIndexed(INDEXED_RUNS));
    this.catchUpRunReach = db.prepare(RUN_REACH_CATCH_UP);
    this.raiseRunReach = db.prepare(RUN_REACH_RAISE);
    this.noteIndexedLogs = db.prepare(noteIndexed(INDEXED_LOGS));
    this.indexLog = db.prepare(indexRow(INDEXED_LOGS));
    this.raiseLogSeverity = db.prepare(LOG_SEVERITY_RAISE);
    this.noteLogSeverity = db.prepare(LOG_SEVERITY_NOTE);
    this.catchUpLogSeverity = LOG_SEVERITY_CATCH_UP.split(';').map((sql) => sql.trim()).filter((sql) => sql !== '').map((sql) => db.prepare(sql));
    this.insertSpan = db.prepare(
      'INSERT OR IGNORE INTO spans (tenant, trace_id, span_id, parent_span_id, service_name, name, start_ns, end_ns, duration_ns, status_code, doc, group_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.traceRecords = db.prepare(`SELECT b.records AS records FROM span_runs r JOIN run_spans b ON b.run = r.rowid WHERE ${runOfTrace('r')}`);
    const terms = options.indexAttributes !== false ? new RunTerms() : undefined;
    // Both run writers add their runs to the trace index with one statement.
    const indexRun = db.prepare(indexRow(INDEXED_RUNS));
    this.runFloor = new RowidFloor(db, 'span_runs');
    this.logFloor = new RowidFloor(db, 'logs');
    this.noteFloors = db.prepare(NOTE_ROWID_FLOORS);
    this.runs = new SpanRunWriter(
      db.prepare('INSERT INTO span_runs (rowid, tenant, trace_id, service_name, min_start_ns, max_start_ns, first_rowid, last_rowid, attr_filter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      indexRun,
      terms,
      this.runFloor,
      this.runsAdded,
    );
    this.recordRuns = new RecordRunWriter(db, indexRun, terms, this.runFloor, this.runsAdded, options.longTraceInts);
    this.insertGroup = db.prepare('INSERT INTO item_groups (gid, max_ns, resource, scope) VALUES (?, ?, ?, ?)');
    this.upsertOperation = db.prepare(
      `INSERT INTO operations (tenant, service_name, name, kind, last_start_ns) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO UPDATE SET last_start_ns = excluded.last_start_ns WHERE excluded.last_start_ns > last_start_ns`,
    );
    this.legacyLogBatch = hasSchemaObject(db, 'log_batches') ? db.prepare('SELECT 1 FROM log_batches WHERE batch_id = ?') : undefined;
    this.insertLog = db.prepare(
      'INSERT OR IGNORE INTO logs (id, tenant, time_ns, trace_id, service_name, severity_number, doc, batch_key, seq, group_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.tenants = db.prepare(TENANTS_SQL);
    this.logTenants = db.prepare(LOG_TENANTS_SQL);
    // Through the time indexes (TIME_INDEXES, LOG_TIME_INDEXES), oldest bucket first.
    this.nthRunEnd = db.prepare(`SELECT max_start_ns AS t FROM span_runs INDEXED BY span_runs_tenant_newest WHERE tenant = ? ORDER BY ${timeBucket('max_start_ns')}, max_start_ns LIMIT 1 OFFSET ?`);
    this.nthRunEnd.setReadBigInts(true);
    this.nthLogTime = db.prepare(`SELECT time_ns AS t FROM logs INDEXED BY logs_tenant_bucket WHERE tenant = ? ORDER BY ${timeBucket('time_ns')}, time_ns LIMIT 1 OFFSET ?`);
    this.nthLogTime.setReadBigInts(true);
  }

  /**
   * Runs fn in one transaction; after one that failed, the trace index is caught up first
   * (catchUpTraceIndex: the failure may have come between the two files' commits).
   */
  private inTransaction<T>(fn: () => T): T {
    let result: T;
    try {
      // IMMEDIATE: another connection writing the file (`tracehouse migrate` filling the runs'
      // filters beside a running collector) is waited for (busy_timeout). A deferred transaction
      // that read before taking the write lock was refused at once ("database is locked"), SQLite
      // calling no busy handler for it: every write failed for as long as migrate ran.
      result = inTransaction(this.db, () => {
        if (!this.indexInStep) catchUpTraceIndex(this.db);
        return fn();
      }, 'BEGIN IMMEDIATE');
      this.indexInStep = true;
    } catch (err) {
      this.indexInStep = false;
      throw err;
    }
    this.resetOvergrownWal();
    return result;
  }

  /**
   * After a commit: a -wal file past its size limit (journal_size_limit, twice
   * storage.sqlite.checkpointMiB) is checkpointed with TRUNCATE. SQLite's own checkpoint after a
   * commit is PASSIVE: it copies back only the frames no open read needs, and the WAL starts over
   * only after one copied them all while no read was on it. With reads always in flight (two read
   * threads each serving a search that outlasts the gap between them), every commit lands inside
   * some read's snapshot and the -wal grew by every write, without bound. TRUNCATE waits (the
   * connection's busy_timeout) for the reads then in flight to end, new ones meanwhile reading the
   * database file, then empties the file. A read outlasting the wait leaves it as it was: tried
   * again once the file has grown by another checkpoint interval, not after every write, and
   * with a short wait (SHORT_CHECKPOINT_WAIT_MS) until the file has doubled. A read held open for good (another process's: a
   * sqlite3 session left in a transaction, a dashboard) made each interval's attempt wait the
   * whole busy timeout, holding the write lock: ingest stalled 5 s per 4 MiB of WAL (28 times fewer
   * spans stored under load). Now the full waits are one per doubling, and the first is told
   * (onWalHeld) so the collector says why the file grows.
   */
  private resetOvergrownWal(): void {
    let over = false;
    for (const w of this.walFiles) {
      let size = 0;
      let salt = '';
      try {
        const fd = openSync(w.file, 'r');
        try {
          size = fstatSync(fd).size;
          const head = Buffer.alloc(WAL_HEADER_BYTES);
          if (readSync(fd, head, 0, WAL_HEADER_BYTES, 0) === WAL_HEADER_BYTES) salt = head.toString('hex', 12, 24);
        } finally {
          closeSync(fd);
        }
      } catch {
        // No -wal file (just truncated, or an in-memory database): nothing to reset.
      }
      // Past its limit with the WAL not started over since the last commit (its header's
      // checkpoint sequence and salts unchanged): appended to, as reads always in flight make it.
      // A commit larger than the limit by itself (a batch of writer.maxBatchRows large spans)
      // leaves the file past it too, the WAL starting over at every commit: checkpointing that
      // waited for any read in flight, and ingest stalled for each read's length.
      if (size > w.retryAt && salt !== '' && salt === w.salt) over = true;
      // Started over by SQLite's own checkpoint (the read that held it ended): limits as at first.
      if (w.salt !== '' && salt !== w.salt) {
        w.retryAt = w.bound;
        w.waitAt = 0;
        this.walReleased(w);
      }
      w.size = size;
      w.salt = salt;
    }
    if (!over) return;
    // Waits for the reads in flight the first time, and again each time the file has doubled since.
    // Between those a short wait (a fifth of the busy timeout, at most 1 s): reads of the
    // collector's own that overlap (always one in flight) end within it, where none at all let the
    // file grow to its double after one wait a read outlasted, past the bound.
    const wait = this.walFiles.some((w) => w.size > w.retryAt && w.size >= w.waitAt);
    const timeout = wait ? 0 : (this.db.prepare('PRAGMA busy_timeout').get() as { timeout: number }).timeout;
    let busy = true;
    try {
      if (!wait) this.db.exec(`PRAGMA busy_timeout = ${Math.min(SHORT_CHECKPOINT_WAIT_MS, Math.floor(timeout / 5))}`);
      busy = (this.db.prepare('PRAGMA wal_checkpoint(TRUNCATE)').get() as { busy: number }).busy !== 0;
    } catch {
      // A checkpoint that cannot write (a full disk) is tried again as a busy one is.
    } finally {
      if (!wait) this.db.exec(`PRAGMA busy_timeout = ${timeout}`);
    }
    for (const w of this.walFiles) {
      w.retryAt = busy ? Math.max(w.bound, w.size + w.bound / 2) : w.bound;
      if (busy && wait) w.waitAt = Math.max(w.waitAt, 2 * w.size);
      if (!busy) {
        w.salt = '';
        w.waitAt = 0;
        this.walReleased(w);
      } else if (wait && !w.held && w.size > w.bound) {
        w.held = true;
        this.onWalHeld?.({ file: w.file, bytes: w.size });
      }
    }
  }

  /**
   * Why writes are refused when the store's -wal file is no longer at its path (OpenedFile.walGone),
   * once what only it holds is checkpointed into the store's file: tried at each refused write
   * until no read held part of it back.
   */
  private walGone(): string | undefined {
    const gone = this.openedFile?.walGone();
    if (gone !== undefined) this.checkpointLostWal();
    return gone;
  }

  /**
   * When the store's -wal file is no longer at its path, checkpoints what only it holds into the
   * store's file; true once done or when the file is at its path. Asked by the main thread's
   * health check: an idle collector has no write to do it.
   */
  rescueWal(): boolean {
    return this.openedFile?.walGone() === undefined || this.checkpointLostWal();
  }

  /** Checkpoints what only a lost -wal file holds into the store's file (once all of it is, not again); true once done. */
  private checkpointLostWal(): boolean {
    if (this.walRescued) return true;
    try {
      this.walRescued = (this.db.prepare('PRAGMA wal_checkpoint(TRUNCATE)').get() as { busy: number }).busy === 0;
    } catch {
      // Tried again at the next write or health check.
    }
    return this.walRescued;
  }

  /** A -wal file was reset after a read held it (onWalHeld). */
  private walReleased(w: { file: string; held: boolean }): void {
    if (!w.held) return;
    w.held = false;
    this.onWalHeld?.({ file: w.file, bytes: 0, released: true });
  }

  private transaction(fn: () => void): WriteResult {
    const moved = this.openedFile?.moved() ?? this.walGone();
    if (moved !== undefined) return { kind: 'retryable', error: new Error(moved) };
    try {
      this.inTransaction(fn);
      return { kind: 'success' };
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const code = Number((err as { errcode?: number }).errcode) & 0xff;
      if (code === SQLITE_FULL) this.checkpointWhenFull();
      if (code === SQLITE_READONLY) return { kind: 'retryable', error, denied: true };
      return TRANSIENT.has(code) ? { kind: 'retryable', error } : { kind: 'permanent', error };
    }
  }

  /**
   * After a write found the disk full. SQLite checkpoints only after a commit that took the WAL
   * past wal_autocheckpoint pages (openDatabase: storage.sqlite.checkpointMiB), and a checkpoint
   * needs room in the database file for what it moves there: on a disk with less room than that,
   * the WAL would fill it, every later write fail, and no checkpoint come to free it. So this
   * connection checkpoints every SHORT_CHECKPOINT_BYTES at most from now on (a disk that filled
   * once is tight), and moves the WAL's committed pages into the database file now, truncating
   * the WAL, so that its space goes to the retry. Best effort: a reader holding an older snapshot
   * keeps its frames, and a checkpoint that itself finds no room fails; the write is retried
   * either way.
   */
  private checkpointWhenFull(): void {
    try {
      const pages = (this.db.prepare('PRAGMA wal_autocheckpoint').get() as { wal_autocheckpoint: number }).wal_autocheckpoint;
      const short = walPages(this.db, SHORT_CHECKPOINT_BYTES);
      if (pages <= 0 || pages > short) this.db.exec(`PRAGMA wal_autocheckpoint = ${short}`);
      this.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    } catch {
      // Retried with the next write that finds the disk full.
    }
  }

  /**
   * Group ids for a batch, handed out in order inside its transaction (one writer). A group's row
   * is written after its items, with their newest time, and only when one of them was new (a
   * resent batch adds no group).
   */
  private groups(): BatchGroups {
    let next = Number((this.maxGroupId.get() as { m: number | bigint }).m);
    let open: { ref: GroupRef; id: number; resource: Uint8Array; scope: Uint8Array; max: bigint; kept: boolean } | undefined;
    const close = () => {
      if (open?.kept) this.insertGroup.run(open.id, open.max, open.resource, open.scope);
      open = undefined;
    };
    return {
      // The chunk reader hands over one GroupRef per group record: a new one opens a new group.
      id: (buf, g) => {
        if (open?.ref === g) return open.id;
        close();
        open = { ref: g, id: ++next, ...groupParts(buf, g), max: 0n, kept: false };
        return open.id;
      },
      item: (inserted, ns) => {
        if (!open || !inserted) return;
        open.kept = true;
        if (ns > open.max) open.max = ns;
      },
      close,
    };
  }

  writeSpans(chunks: readonly Uint8Array[], tenant: string = DEFAULT_TENANT): WriteResult {
    return this.transaction(() => {
      this.runs.clear();
      this.runsAdded.clear();
      this.runFloor.begin();
      const ops = new OperationsSeen();
      const groups = this.groups();
      this.recordRuns.begin(tenant, groups, ops);
      let lines: Uint8Array[] | undefined;
      for (const c of chunks) {
        if (c.length > 0 && !isOtlpChunk(c)) (lines ??= []).push(c);
        else this.writeArrivedSpans(c, groups);
      }
      this.recordRuns.finish();
      groups.close();
      if (lines) {
        this.writeSpanLines(lines, tenant, ops);
        this.recordRuns.forgetRecent();
      }
      this.runs.flush();
      ops.write(this.upsertOperation, tenant);
      this.noteIndexedRuns.run();
      const added = this.runsAdded;
      if (added.last !== 0 && Number(this.raiseRunReach.run(added.reach, added.first - 1, added.last).changes) === 0) this.catchUpRunReach.run();
    });
  }

  /** The spans of one `otlp` chunk, by runs of records. */
  private writeArrivedSpans(c: Uint8Array, groups: BatchGroups): void {
    const runs = this.recordRuns;
    readSpanChunk(c, (g, buf, r) => {
      // A run ends before its group closes (the group's row needs its newest time).
      if (!runs.continues(buf, r, g)) runs.flush();
      const start = clampNs(spanStart(buf, r));
      // Its operation is noted when the run is flushed, for the spans it stores.
      runs.add(buf, r, g, groups.id(buf, g), start);
    });
    runs.flush();
  }

  /**
   * JSON-line chunks (an older version's write-ahead log): their attributes are read from the
   * parsed document. The spans table's unique index keeps a span once among rows of spans; a span
   * already stored in a run of records (a client's resend that this version took before the
   * replay reached the line) is left out too, as a run of records leaves out rows of spans.
   */
  private writeSpanLines(chunks: readonly Uint8Array[], tenant: string, ops: OperationsSeen): void {
    /** The span ids of each trace's runs of records, read once per trace in the batch (after its runs were written). */
    const recorded = new Map<string, Set<string>>();
    for (const line of chunkLineRefs<SpanHeader>(chunks)) {
      const h = line.header;
      let ids = recorded.get(h[0]);
      if (ids === undefined) {
        const found = new Set<string>();
        for (const { records } of this.traceRecords.iterate(tenant, h[0]) as Iterable<{ records: Uint8Array }>) readSpanRecords(records, (b, r) => void found.add(spanId(b, r)));
        recorded.set(h[0], (ids = found));
      }
      if (ids.has(h[1])) continue;
      const start = clampNs(BigInt(h[5]));
      const doc = docText(line);
      const result = this.insertSpan.run(tenant, h[0], h[1], h[2], h[3], h[4], start, clampNs(BigInt(h[6])), clampNs(BigInt(h[7])), h[8], doc, null);
      if (Number(result.changes) === 0) continue;
      this.runs.add(tenant, h[0], h[3], start, Number(result.lastInsertRowid), spanFromJson(doc).attributes, h[4]);
      ops.add(h[3], h[4], h[9], start);
    }
  }

  /** Log records of one batch; written again under the same batch id, they are recognized and kept once. */
  writeLogs(chunks: readonly Uint8Array[], batchId: string, tenant: string = DEFAULT_TENANT): WriteResult {
    const key = batchKey(batchId);
    return this.transaction(() => {
      if (this.legacyLogBatch?.get(batchId) !== undefined) return;
      let seq = 0;
      const groups = this.groups();
      const floor = this.logFloor;
      floor.begin();
      const severities = new LogSeverities();
      for (const c of chunks) {
        if (c.length > 0 && !isOtlpChunk(c)) {
          for (const line of chunkLineRefs<LogHeader>([c])) {
            const h = line.header;
            const result = this.insertLog.run(floor.next, tenant, clampNs(BigInt(h[0])), h[1], h[2], h[3], docText(line), key, seq++, null);
            if (Number(result.changes) > 0) this.logStored(tenant, h[1], clampNs(BigInt(h[0])), h[3], result.lastInsertRowid, severities);
          }
          continue;
        }
        readLogChunk(c, (g, buf, r) => {
          const groupId = groups.id(buf, g);
          const time = clampNs(logTime(buf, r));
          const docStart = r + LOG_HEAD_BYTES;
          const doc = buf.subarray(docStart, docStart + buf.readUInt32LE(r + L_LEN));
          const traceId = logTraceId(buf, r);
          const severity = logSeverity(buf, r);
          const result = this.insertLog.run(floor.next, tenant, time, traceId, g.service, severity, doc, key, seq++, groupId);
          const inserted = Number(result.changes) > 0;
          if (inserted) this.logStored(tenant, traceId, time, severity, result.lastInsertRowid, severities);
          groups.item(inserted, time);
        });
      }
      groups.close();
      this.noteIndexedLogs.run();
      if (severities.first === 0) return;
      for (const [bucket, severity] of severities.buckets()) this.raiseLogSeverity.run(tenant, bucket, severity);
      if (Number(this.noteLogSeverity.run(severities.first, severities.last).changes) === 0) for (const stmt of this.catchUpLogSeverity) stmt.run();
    });
  }

  /** A log record just inserted (either chunk format): its rowid taken from the floor, its trace's index entry when it has a trace, its bucket's severity. */
  private logStored(tenant: string, traceId: string, time: bigint, severity: number, rowid: number | bigint, severities: LogSeverities): void {
    this.logFloor.used();
    if (traceId !== '') this.indexLog.run(tenant, traceId, rowid);
    severities.add(time, severity, rowid);
  }

  /** The runs of records with spans older than cutoff and newer ones keep the newer; returns how many spans went. */
  private narrowRecordRuns(oldRuns: string, cutoff: bigint): number {
    const runs = this.db.prepare(`SELECT r.rowid AS id, b.records AS records FROM span_runs r JOIN run_spans b ON b.run = r.rowid WHERE ${oldRuns} AND span_count IS NOT NULL`);
    const setRecords = this.db.prepare('UPDATE run_spans SET records = ? WHERE run = ?');
    const setRun = this.db.prepare('UPDATE span_runs SET min_start_ns = ?, span_count = ? WHERE rowid = ?');
    let gone = 0;
    for (const run of runs.all(cutoff) as { id: number; records: Uint8Array }[]) {
      const kept: Buffer[] = [];
      let min = INT64_MAX;
      readSpanRecords(run.records, (buf, r) => {
        const start = clampNs(spanStart(buf, r));
        if (start < cutoff) {
          gone++;
          return;
        }
        if (start < min) min = start;
        kept.push(buf.subarray(r, spanRecordEnd(buf, r)));
      });
      setRecords.run(Buffer.concat(kept), run.id);
      setRun.run(min, kept.length, run.id);
    }
    return gone;
  }

  /** Deletes rows older than retentionDays; returns how many. */
  applyRetention(retentionDays: number, nowMs = Date.now()): { spans: number; logs: number } {
    const cutoff = BigInt(nowMs) * 1_000_000n - BigInt(retentionDays) * NS_PER_DAY;
    // No stored time is before 1970 (the columns hold unsigned times): a retention reaching back
    // further deletes nothing, and its cutoff may be below what SQLite's INTEGER can bind.
    if (cutoff <= 0n) return { spans: 0, logs: 0 };
    // In slices, each its own transaction: every page a transaction changes goes to the WAL
    // first, so one transaction for all of it needed WAL room the size of what it deleted (the
    // first pass after the retention was lowered: most of the file), and on a disk without that
    // room every pass failed and none freed anything. Between slices the checkpoint moves the
    // WAL's pages into the file, and the next slice reuses the WAL from its start.
    const deleted = { spans: 0, logs: 0 };
    for (;;) {
      const until = this.sliceEnd(cutoff);
      // Runs that keep newer spans are narrowed once, by the last slice.
      const d = this.inTransaction(() => this.deleteBefore(until, until >= cutoff, BigInt(retentionDays) * NS_PER_DAY));
      deleted.spans += d.spans;
      deleted.logs += d.logs;
      if (until >= cutoff) {
        this.widestRunGone = false;
        return deleted;
      }
    }
  }

  /**
   * The cutoff of the next retention slice: the newest start of a tenant's run about the
   * RETENTION_SLICE_RUNS-th to have all its spans older, or the time of about the
   * RETENTION_SLICE_LOGS-th oldest log record of a tenant, if before cutoff, but after the oldest of them, so
   * that every slice deletes a run or a record. deleteBefore of increasing cutoffs, the last
   * narrowing, deletes what one of the last does: spans, runs, groups and operations alike go by
   * time.
   */
  private sliceEnd(cutoff: bigint): bigint {
    const nth = (stmt: StatementSync, n: number, ...params: string[]): bigint | undefined => (stmt.get(...params, n) as { t: bigint } | undefined)?.t;
    let end = cutoff;
    const bound = (stmt: StatementSync, n: number, ...params: string[]): void => {
      const t = nth(stmt, n, ...params);
      if (t === undefined || t >= end) return;
      const oldest = nth(stmt, 0, ...params)!;
      end = t > oldest ? t : oldest + 1n;
    };
    for (const { tenant } of this.tenants.all() as { tenant: string }[]) bound(this.nthRunEnd, RETENTION_SLICE_RUNS, tenant);
    for (const { tenant } of this.logTenants.all() as { tenant: string }[]) bound(this.nthLogTime, RETENTION_SLICE_LOGS, tenant);
    return end < cutoff ? end : cutoff;
  }

  /** Deletes rows older than cutoff (inside a transaction: spans and their runs change together). */
  private deleteBefore(cutoff: bigint, narrow = true, retentionNs?: bigint): { spans: number; logs: number } {
    // The old spans are found through the runs that hold any (their oldest start is old). A run
    // whose newest is old goes with its spans. A run of rows that keeps newer spans is narrowed to
    // those, so its range never covers rowids the table may hand out again (the largest ones, if
    // deleted); a run of records that does keeps only their records.
    this.noteFloors.run();
    this.runFloor.arm();
    this.logFloor.arm();
    const oldRuns = `tenant IN (${TENANTS_SQL}) AND ${startBefore('min_start_ns', '?1')}`;
    // Every run this slice deletes or narrows is among these: is the widest one of them?
    const widest = `SELECT 1 FROM span_runs WHERE ${oldRuns} AND max_start_ns - min_start_ns >= (SELECT ns FROM ${RUN_REACH} WHERE id = 0 AND ns > 0) LIMIT 1`;
    if (this.db.prepare(widest).get(cutoff) !== undefined) this.widestRunGone = true;
    const oldSpans = `SELECT s.rowid FROM span_runs r JOIN spans s ON s.rowid BETWEEN r.first_rowid AND r.last_rowid
      WHERE r.tenant IN (${TENANTS_SQL}) AND ${startBefore('r.min_start_ns', '?1')} AND s.start_ns < ?1`;
    let spans = Number(this.db.prepare(`DELETE FROM spans WHERE rowid IN (${oldSpans})`).run(cutoff).changes);
    const oldRecordRuns = `${oldRuns} AND max_start_ns < ?1 AND span_count IS NOT NULL`;
    spans += Number((this.db.prepare(`SELECT coalesce(sum(span_count), 0) AS n FROM span_runs WHERE ${oldRecordRuns}`).get(cutoff) as { n: number | bigint }).n);
    this.db.prepare(`DELETE FROM run_spans WHERE run IN (SELECT rowid FROM span_runs WHERE ${oldRecordRuns})`).run(cutoff);
    const goneRuns = `${oldRuns} AND max_start_ns < ?1`;
    this.db.prepare(unindexRows(INDEXED_RUNS, goneRuns)).run(cutoff);
    this.db.prepare(`DELETE FROM span_runs WHERE ${goneRuns}`).run(cutoff);
    const left = (agg: string) => `(SELECT ${agg} FROM spans WHERE rowid BETWEEN first_rowid AND last_rowid)`;
    this.db.prepare(`UPDATE span_runs SET min_start_ns = ${left('min(start_ns)')}, first_rowid = ${left('min(rowid)')}, last_rowid = ${left('max(rowid)')} WHERE ${oldRuns} AND span_count IS NULL`).run(cutoff);
    if (narrow) spans += this.narrowRecordRuns(oldRuns, cutoff);
    if (narrow && this.widestRunGone) this.db.prepare(RUN_REACH_ANEW).run(0);
    else if (narrow && this.reachUnchecked && retentionNs !== undefined) this.db.prepare(RUN_REACH_ANEW).run(retentionNs);
    if (narrow) this.reachUnchecked = false;
    const goneLogs = `tenant IN (${LOG_TENANTS_SQL}) AND ${startBefore('time_ns', '?1')}`;
    this.db.prepare(unindexRows(INDEXED_LOGS, goneLogs)).run(cutoff);
    const logs = Number(this.db.prepare(`DELETE FROM logs WHERE ${goneLogs}`).run(cutoff).changes);
    // Every tenant's records of the buckets before the cutoff's went (the cutoff's own may keep some).
    // Through the key, tenant by tenant: the bucket alone is no index's first column.
    this.db.prepare(`DELETE FROM ${LOG_SEVERITY} WHERE tenant IN (${LOG_TENANTS_SQL}) AND bucket < ${timeBucket('?1')}`).run(cutoff);
    // A group's items are all older than its max_ns: it goes with the last of them.
    this.db.prepare('DELETE FROM item_groups WHERE max_ns < ?').run(cutoff);
    // Once, by the last slice: no index leads with last_start_ns, so this reads every operation,
    // and an operation listed a little longer (only while the pass runs) is harmless.
    if (narrow) this.db.prepare('DELETE FROM operations WHERE last_start_ns < ?').run(cutoff);
    this.noteIndexedRuns.run();
    this.noteIndexedLogs.run();
    return { spans, logs };
  }
}
