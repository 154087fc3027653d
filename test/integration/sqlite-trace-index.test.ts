// The SQLite store's trace index: a file of its own beside the store's (`<path>-traces`), which
// SQLite commits apart from the store's. These cases take it out of step with the store as a crash
// between the two commits, a lost file or an older copy would, and check that every trace is found
// whole once the store is opened again, that retention keeps it to the store's runs, and that a
// file from before it gives its in-file index up.
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import type { LogRow, SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { createEncoder as createLineEncoder } from '../../src/storage/rowjson.ts';
import { getTrace, searchLogs } from '../../src/storage/sqlite/reads.ts';
import { traceIndexPath } from '../../src/common/sqlite-path.ts';
import { SqliteStore, openDatabase, openReadOnly } from '../../src/storage/sqlite/store.ts';
import { makeLog, makeTrace } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const proto = createProtoEncoder({});
const lines = createLineEncoder();
const NOW = BigInt(Date.now()) * 1_000_000n;

function write(store: SqliteStore, spans: SpanRow[]): void {
  expect(store.writeSpans(proto.encodeSpans(spans).map((c) => c.data)).kind).toBe('success');
}

/** Each trace's span ids as getTrace finds them, against the spans written. */
function expectWhole(db: DatabaseSync, traces: SpanRow[][]): void {
  for (const t of traces) expect(getTrace(db, DEFAULT_TENANT, t[0]!.traceId).map((s) => s.spanId).sort()).toEqual(t.map((s) => s.spanId).sort());
}

/** The index's entries and the store's runs, as (tenant, trace, run) triples. */
function entries(db: DatabaseSync): { index: string[]; runs: string[] } {
  const all = (sql: string) => (db.prepare(sql).all() as { k: string }[]).map((r) => r.k).sort();
  return {
    index: all("SELECT tenant || ' ' || trace_id || ' ' || run AS k FROM trace_index.trace_runs"),
    runs: all("SELECT tenant || ' ' || trace_id || ' ' || rowid AS k FROM span_runs"),
  };
}

/** The index holds the store's runs, and notes the largest rowid it holds (what a start indexes past). */
function expectInStep(db: DatabaseSync): void {
  const { index, runs } = entries(db);
  expect(runs.length).toBeGreaterThan(0);
  expect(index).toEqual(runs);
  expect(db.prepare("SELECT max_rowid AS n FROM trace_index.state WHERE tbl = 'span_runs'").get()).toEqual(db.prepare('SELECT max(rowid) AS n FROM span_runs').get());
}

/** Opens the index's file alone, as another process would find it. */
function indexFile(path: string): DatabaseSync {
  return new DatabaseSync(traceIndexPath(path));
}

const removeIndexFile = (path: string) => {
  for (const suffix of ['', '-wal', '-shm']) rmSync(traceIndexPath(path) + suffix, { force: true });
};

describe('sqlite trace index', () => {
  it('finds every trace whole after its index missed the store\'s last commit, was lost, or is newer than the store', () => {
    const path = join(tempDir(), 'index.db');
    let db = openDatabase(path);
    let store = new SqliteStore(db);
    // Each trace's spans in two writes: two runs of records each, in different commits.
    const traces = Array.from({ length: 6 }, (_, i) => makeTrace(4, { serviceName: `s${i % 2}`, startTimeUnixNano: NOW + BigInt(i) }));
    for (const half of [0, 1]) for (const t of traces) write(store, t.slice(half * 2, half * 2 + 2));
    expect(existsSync(traceIndexPath(path))).toBe(true);
    expectInStep(db);
    expectWhole(db, traces);
    const runs = entries(db).runs.length;
    db.close();

    // A crash between the two commits: the store's file committed the last runs, the index's did not.
    let f = indexFile(path);
    const keep = Math.floor(runs / 2);
    f.prepare('DELETE FROM trace_runs WHERE run > ?').run(keep);
    f.prepare("UPDATE state SET max_rowid = ? WHERE tbl = 'span_runs'").run(keep);
    f.close();
    db = openDatabase(path);
    expectInStep(db);
    expectWhole(db, traces);
    db.close();

    // The index's file lost (a copy of the store's file alone): made anew from the runs.
    removeIndexFile(path);
    db = openDatabase(path);
    expectInStep(db);
    expectWhole(db, traces);
    db.close();

    // An index newer than the store (an older copy of the store's file put back): made anew, its
    // entries for runs the store lacks gone; the rowids they name are handed out again.
    f = indexFile(path);
    f.prepare('INSERT INTO trace_runs (tenant, trace_id, run) VALUES (?, ?, ?)').run(DEFAULT_TENANT, traces[0]![0]!.traceId, runs + 1);
    f.prepare("UPDATE state SET max_rowid = ? WHERE tbl = 'span_runs'").run(runs + 5);
    f.close();
    db = openDatabase(path);
    expectInStep(db);
    store = new SqliteStore(db);
    const later = makeTrace(3, { serviceName: 's9', startTimeUnixNano: NOW + 100n });
    write(store, later);
    expectInStep(db);
    expectWhole(db, [...traces, later]);
    // A read-only connection, as the read threads open, reads through the same index.
    const ro = openReadOnly(path);
    expectWhole(ro, [...traces, later]);
    ro.close();
    db.close();
  });

  it('catches the index up in the write after one that failed, so a batch written again is stored once', () => {
    const path = join(tempDir(), 'failed.db');
    const db = openDatabase(path);
    const store = new SqliteStore(db);
    const trace = makeTrace(4, { serviceName: 'retried', startTimeUnixNano: NOW });
    write(store, trace);
    // A commit that failed between the files (the disk full, say): the store's file has the runs, the index not.
    const f = indexFile(path);
    f.exec("DELETE FROM trace_runs; UPDATE state SET max_rowid = 0 WHERE tbl = 'span_runs'");
    f.close();
    // The write fails (here: the file locked by another process), and the writer retries the batch.
    const other = new DatabaseSync(path);
    other.exec('BEGIN IMMEDIATE');
    db.exec('PRAGMA busy_timeout = 1');
    expect(store.writeSpans(proto.encodeSpans(trace).map((c) => c.data)).kind).toBe('retryable');
    other.exec('ROLLBACK');
    other.close();
    write(store, trace);
    expectWhole(db, [trace]);
    expectInStep(db);
    db.close();
  });

  it('keeps a resent trace\'s spans once and lets retention take its entries with its runs', () => {
    const path = join(tempDir(), 'retention.db');
    const db = openDatabase(path);
    const store = new SqliteStore(db);
    const DAY = 86_400_000_000_000n;
    const old = makeTrace(3, { serviceName: 'old', startTimeUnixNano: NOW - 3n * DAY });
    const kept = makeTrace(3, { serviceName: 'new', startTimeUnixNano: NOW });
    write(store, [...old, ...kept]);
    // Sent again whole in another commit: found through the index, stored once.
    write(store, kept);
    expectWhole(db, [old, kept]);
    expect(store.applyRetention(1).spans).toBe(3);
    expectInStep(db);
    expect(getTrace(db, DEFAULT_TENANT, old[0]!.traceId)).toEqual([]);
    expectWhole(db, [kept]);
    db.close();
  });

  it('indexes runs written after retention freed the largest rowids, when a crash kept them from the index', () => {
    const path = join(tempDir(), 'reused.db');
    let db = openDatabase(path);
    const store = new SqliteStore(db);
    const DAY = 86_400_000_000_000n;
    const kept = makeTrace(2, { serviceName: 'kept', startTimeUnixNano: NOW });
    // Written last, so its run has the largest rowid: retention deletes it (the next run's rowid is still above it: rowid_floor).
    const late = makeTrace(2, { serviceName: 'late', startTimeUnixNano: NOW - 3n * DAY });
    write(store, kept);
    write(store, late);
    const largest = () => Number((db.prepare('SELECT max(rowid) AS n FROM span_runs').get() as { n: number }).n);
    const before = largest();
    expect(store.applyRetention(1).spans).toBe(2);
    const state = () => Number((db.prepare("SELECT max_rowid AS n FROM trace_index.state WHERE tbl = 'span_runs'").get() as { n: number }).n);
    const afterRetention = state();
    expect(afterRetention).toBeLessThan(before);
    const next = makeTrace(2, { serviceName: 'next', startTimeUnixNano: NOW + 1n });
    write(store, next);
    expect(largest()).toBeGreaterThan(before);
    db.close();
    // The crash: the store's file committed the write, the index's file did not.
    const f = indexFile(path);
    f.prepare('DELETE FROM trace_runs WHERE run > ?').run(afterRetention);
    f.prepare("UPDATE state SET max_rowid = ? WHERE tbl = 'span_runs'").run(afterRetention);
    f.close();
    db = openDatabase(path);
    expectInStep(db);
    expectWhole(db, [kept, next]);
    db.close();
  });

  it('finds a trace\'s rows of spans (an older version\'s log replayed) through it: the same spans sent again are stored once', () => {
    const path = join(tempDir(), 'rows.db');
    const db = openDatabase(path);
    const store = new SqliteStore(db);
    const trace = makeTrace(4, { serviceName: 'rows', startTimeUnixNano: NOW });
    // Its first half as JSON lines (rows of spans), then the whole trace as it arrives now (runs of records).
    expect(store.writeSpans(lines.encodeSpans(trace.slice(0, 2)).map((c) => c.data)).kind).toBe('success');
    write(store, trace);
    expectInStep(db);
    expect(getTrace(db, DEFAULT_TENANT, trace[0]!.traceId).map((s) => s.spanId).sort()).toEqual(trace.map((s) => s.spanId).sort());
    db.close();
  });

  it('finds a trace\'s log records after the index missed the store\'s last commit or was lost, and ages their entries out with them', () => {
    const path = join(tempDir(), 'logs.db');
    let db = openDatabase(path);
    const store = new SqliteStore(db);
    const DAY = 86_400_000_000_000n;
    const [a, b] = [makeTrace(1)[0]!.traceId, makeTrace(1)[0]!.traceId];
    const log = (traceId: string, body: string, timeUnixNano = NOW) => makeLog({ serviceName: 'l', traceId, timeUnixNano, body: { stringValue: body } });
    const writeLogs = (logs: LogRow[], id: string) => expect(store.writeLogs(proto.encodeLogs(logs).map((c) => c.data), id).kind).toBe('success');
    writeLogs([log(a, 'a1', NOW - 3n * DAY), log(b, 'b1'), log('', 'none')], 'first');
    writeLogs([log(a, 'a2'), log(b, 'b2', NOW + 1n)], 'second');
    const bodies = (d: DatabaseSync, q: Partial<Parameters<typeof searchLogs>[2]>) => searchLogs(d, DEFAULT_TENANT, { limit: 10, ...q }).map((l) => ('stringValue' in l.body ? l.body.stringValue : ''));
    const logsInStep = (d: DatabaseSync) => {
      const all = (sql: string) => (d.prepare(sql).all() as { k: string }[]).map((r) => r.k).sort();
      // Every record of a trace has its entry; one without a trace (no read asks for trace '') has none.
      expect(all("SELECT tenant || ' ' || trace_id || ' ' || log AS k FROM trace_index.log_traces")).toEqual(all("SELECT tenant || ' ' || trace_id || ' ' || id AS k FROM logs WHERE trace_id <> ''"));
      expect(d.prepare("SELECT max_rowid AS n FROM trace_index.state WHERE tbl = 'logs'").get()).toEqual(d.prepare('SELECT max(id) AS n FROM logs').get());
    };
    const check = (d: DatabaseSync) => {
      expect(bodies(d, { traceId: a })).toEqual(['a2', 'a1']);
      expect(bodies(d, { traceId: b, service: 'l', startNano: NOW, endNano: NOW })).toEqual(['b1']);
      expect(bodies(d, { service: 'l', startNano: NOW, endNano: NOW })).toEqual(['a2', 'none', 'b1']);
      logsInStep(d);
    };
    check(db);
    db.close();
    // The store's file committed the second batch, the index's file did not.
    const f = indexFile(path);
    f.exec("DELETE FROM log_traces WHERE log > 3; UPDATE state SET max_rowid = 3 WHERE tbl = 'logs'");
    f.close();
    db = openDatabase(path);
    check(db);
    db.close();
    removeIndexFile(path);
    db = openDatabase(path);
    check(db);
    expect(new SqliteStore(db).applyRetention(1).logs).toBe(1);
    expect(bodies(db, { traceId: a })).toEqual(['a2']);
    logsInStep(db);
    db.close();
  });

  it('opens a file from before the index: its runs indexed, the in-file index dropped', () => {
    const path = join(tempDir(), 'before.db');
    let db = openDatabase(path);
    const traces = Array.from({ length: 3 }, (_, i) => makeTrace(2, { serviceName: 's', startTimeUnixNano: NOW + BigInt(i) }));
    write(new SqliteStore(db), traces.flat());
    db.close();
    // As a version before it left the file: the runs' trace index inside, no index file.
    removeIndexFile(path);
    const raw = new DatabaseSync(path);
    raw.exec('CREATE INDEX span_runs_tenant_trace ON span_runs (tenant, trace_id)');
    raw.close();
    db = openDatabase(path);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'span_runs_tenant_trace'").all()).toEqual([]);
    expectInStep(db);
    expectWhole(db, traces);
    db.close();
  });
  it('indexes a store\'s file restored alone beside the -traces file of another store, so each of its traces is found whole', () => {
    // A backup of the store's file alone (SQLite's backup, VACUUM INTO) put back into a data
    // directory where another store ran meanwhile, with fewer runs than the backup: its index
    // noted a rowid below the backup's largest, so only the backup's runs above it were indexed.
    const dir = tempDir();
    const backup = join(dir, 'backup.db');
    let db = openDatabase(backup);
    let store = new SqliteStore(db);
    const old = Array.from({ length: 20 }, (_, i) => makeTrace(3, { serviceName: 'backed-up', startTimeUnixNano: NOW + BigInt(i) }));
    for (const t of old) write(store, t);
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    db.close();
    const live = join(dir, 'tracehouse.db');
    db = openDatabase(live);
    store = new SqliteStore(db);
    const other = Array.from({ length: 5 }, (_, i) => makeTrace(3, { serviceName: 'other', startTimeUnixNano: NOW + BigInt(i) }));
    for (const t of other) write(store, t);
    db.close();
    copyFileSync(backup, live);
    db = openDatabase(live);
    expectInStep(db);
    expectWhole(db, old);
    expect(getTrace(db, DEFAULT_TENANT, other[0]![0]!.traceId)).toEqual([]);
    // A resend of a backed-up trace is recognised, not stored again.
    write(new SqliteStore(db), old[0]!);
    expect(getTrace(db, DEFAULT_TENANT, old[0]![0]!.traceId)).toHaveLength(3);
    db.close();
    // Opened again, the index is the store's own: kept as it is.
    const f = indexFile(live);
    f.prepare('INSERT INTO trace_runs (tenant, trace_id, run) VALUES (?, ?, ?)').run(DEFAULT_TENANT, 'kept-mark', 1);
    f.close();
    db = openDatabase(live);
    expect(db.prepare("SELECT count(*) AS n FROM trace_index.trace_runs WHERE trace_id = 'kept-mark'").get()).toEqual({ n: 1 });
    db.close();
  });
});
