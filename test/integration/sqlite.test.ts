// SQLite-specific behaviour beside the contract: retention and the file it writes.
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { createEncoder } from '../../src/storage/rowjson.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { tableStats } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, logOfTrace, openDatabase, runOfTrace } from '../../src/storage/sqlite/store.ts';
import { makeLog, makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const DAY = 86_400_000_000_000n;

describe('sqlite store', () => {
  it('uses WAL and deletes rows older than the retention, of every tenant, and reports the oldest span left', () => {
    const db = openDatabase(join(tempDir(), 'r.db'));
    expect((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode).toBe('wal');
    const store = new SqliteStore(db);
    const now = BigInt(Date.now()) * 1_000_000n;
    const enc = createProtoEncoder({});
    const spans = (tenant: string, freshStart: bigint) => {
      const old = makeSpan({ startTimeUnixNano: now - 10n * DAY, endTimeUnixNano: now - 10n * DAY + 1n });
      const fresh = makeSpan({ startTimeUnixNano: freshStart, endTimeUnixNano: freshStart + 1n });
      expect(store.writeSpans(enc.encodeSpans([old, fresh]).map((c) => c.data), tenant).kind).toBe('success');
      return fresh;
    };
    const a = spans('a', now - DAY);
    const b = spans('b', now - 2n * DAY);
    expect(store.writeLogs(enc.encodeLogs([makeLog({ timeUnixNano: now - 9n * DAY }), makeLog({ timeUnixNano: now })]).map((c) => c.data), 'retention-test').kind).toBe('success');
    expect(tableStats(db).oldestSpanNs).toBe(now - 10n * DAY);
    expect(store.applyRetention(7)).toEqual({ spans: 2, logs: 1 });
    const left = db.prepare('SELECT tenant, trace_id, span_count FROM span_runs ORDER BY tenant').all() as { tenant: string; trace_id: string; span_count: number }[];
    expect(left.map((r) => [r.tenant, r.trace_id, r.span_count])).toEqual([['a', a.traceId, 1], ['b', b.traceId, 1]]);
    expect((db.prepare('SELECT count(*) AS n FROM run_spans').get() as { n: number }).n).toBe(2);
    expect(tableStats(db)).toMatchObject({ spans: 2, logs: 1, oldestSpanNs: now - 2n * DAY });
  });

  it('keeps everything, without failing, under a retention longer than the time since 1970 (storage.sqlite.retentionDays = 999999)', () => {
    // The option has no upper bound, and a large number reads as "keep for good"; its cutoff went
    // past what SQLite's INTEGER binds, so every pass failed and logged an error once a minute.
    const db = openDatabase(join(tempDir(), 'long.db'));
    const store = new SqliteStore(db);
    const enc = createProtoEncoder({});
    expect(store.writeSpans(enc.encodeSpans([makeSpan({ startTimeUnixNano: 1n, endTimeUnixNano: 2n })]).map((c) => c.data)).kind).toBe('success');
    expect(store.writeLogs(enc.encodeLogs([makeLog({ timeUnixNano: 1n })]).map((c) => c.data), 'long-retention').kind).toBe('success');
    for (const days of [25_000, 200_000, 999_999]) expect(store.applyRetention(days)).toEqual({ spans: 0, logs: 0 });
    expect(tableStats(db)).toMatchObject({ spans: 1, logs: 1 });
  });

  it('gives the write connection the page cache it is configured with, other connections SQLite\'s default', () => {
    const path = join(tempDir(), 'cache.db');
    const cacheKiB = (db: DatabaseSync) => -(db.prepare('PRAGMA cache_size').get() as { cache_size: number }).cache_size;
    const write = openDatabase(path, { cacheMiB: 48 });
    const other = openDatabase(path);
    expect(cacheKiB(write)).toBe(48 * 1024);
    expect(cacheKiB(other)).toBe(2000);
    write.close();
    other.close();
  });

  it('syncs every commit, so what a commit stored survives a power loss (synchronous = FULL, not NORMAL\'s sync at checkpoints)', () => {
    const db = openDatabase(join(tempDir(), 'sync.db'));
    expect((db.prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous).toBe(2);
    db.close();
  });

  it('checkpoints the write connection\'s WAL every storage.sqlite.checkpointMiB, in pages of the file, and bounds the file to twice that', () => {
    const pragma = (db: DatabaseSync, name: string) => Object.values(db.prepare(`PRAGMA ${name}`).get() as Record<string, number>)[0];
    const path = join(tempDir(), 'checkpoint.db');
    const write = openDatabase(path, { checkpointMiB: 64 });
    const other = openDatabase(path);
    expect([pragma(write, 'wal_autocheckpoint'), pragma(write, 'journal_size_limit')]).toEqual([2048, 128 * 2 ** 20]);
    expect([pragma(other, 'wal_autocheckpoint'), pragma(other, 'journal_size_limit')]).toEqual([256, 16 * 2 ** 20]);
    write.close();
    other.close();
    // A file made with 4 KiB pages (an older build's): the same bytes are more pages.
    const small = join(tempDir(), 'small-pages.db');
    const pre = new DatabaseSync(small);
    pre.exec('PRAGMA page_size = 4096; CREATE TABLE t (a); DROP TABLE t;');
    pre.close();
    const db = openDatabase(small, { checkpointMiB: 8 });
    expect(pragma(db, 'page_size')).toBe(4096);
    expect(pragma(db, 'wal_autocheckpoint')).toBe(2048);
    db.close();
  });

  it('answers a full disk as retryable, keeping the real error (SQLite rolls back by itself)', () => {
    const db = openDatabase(join(tempDir(), 'full.db'));
    const store = new SqliteStore(db);
    const pages = (db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count;
    db.exec(`PRAGMA max_page_count = ${pages + 2}`);
    const spans = Array.from({ length: 200 }, () => makeSpan());
    const r = store.writeSpans(createEncoder().encodeSpans(spans).map((c) => c.data));
    expect(r.kind).toBe('retryable');
    expect(r.kind !== 'success' && r.error.message).toMatch(/full/i);
    db.exec('PRAGMA max_page_count = 1000000');
    expect(store.writeSpans(createEncoder().encodeSpans(spans).map((c) => c.data)).kind).toBe('success');
  });

  it('answers a database it may not write as retryable: the store is at fault, not the rows', () => {
    // SQLITE_READONLY: a file system remounted read-only after an error, the file's mode or owner
    // changed, the file moved or deleted under the collector (READONLY_DBMOVED). Refused for good,
    // every acknowledged row was dropped while the collector went on taking more; retried, the
    // write-ahead log keeps them and clients are told to wait once it fills. query_only is the
    // way a test makes SQLite answer that code.
    const db = openDatabase(join(tempDir(), 'ro.db'));
    const store = new SqliteStore(db);
    const spans = Array.from({ length: 20 }, () => makeSpan());
    db.exec('PRAGMA query_only = 1');
    const r = store.writeSpans(createEncoder().encodeSpans(spans).map((c) => c.data));
    expect(r.kind).toBe('retryable');
    expect(r.kind !== 'success' && r.error.message).toMatch(/readonly/i);
    db.exec('PRAGMA query_only = 0');
    expect(store.writeSpans(createEncoder().encodeSpans(spans).map((c) => c.data)).kind).toBe('success');
    expect(tableStats(db).spans).toBe(20);
  });

  it('answers trace-by-id and service+time searches from indexes', () => {
    const db = openDatabase(join(tempDir(), 'i.db'));
    const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join(' | ');
    expect(plan("SELECT doc FROM spans WHERE tenant = 't' AND trace_id = 'x'")).toContain('spans_tenant_trace_span (tenant=? AND trace_id=?)');
    // A trace's runs through the trace index's file, then each run and its records by rowid.
    expect(plan(`SELECT b.records FROM span_runs r JOIN run_spans b ON b.run = r.rowid WHERE ${runOfTrace('r')}`)).toMatch(
      /SEARCH r USING INTEGER PRIMARY KEY \(rowid=\?\) \| LIST SUBQUERY \d+ \| SEARCH trace_index.trace_runs USING PRIMARY KEY \(tenant=\? AND trace_id=\?\) \| SEARCH b USING INTEGER PRIMARY KEY/,
    );
    // Runs newest first, as searchTraces reads them: through a time index, each bucket's runs sorted as it is reached, not the whole range.
    const runs = (where: string) => plan(`SELECT first_rowid FROM span_runs WHERE tenant = 't' ${where} AND (max_start_ns >> 32) >= (1 >> 32) AND max_start_ns >= 1 AND min_start_ns <= 2 ORDER BY (max_start_ns >> 32) DESC, max_start_ns DESC`);
    expect(runs("AND service_name = 'a'")).toContain('span_runs_tenant_service_newest (tenant=? AND service_name=? AND <expr>>?)');
    expect(runs('')).toContain('span_runs_tenant_newest (tenant=? AND <expr>>?)');
    expect(runs('')).toContain('USE TEMP B-TREE FOR LAST TERM OF ORDER BY');
    expect(runs('')).not.toMatch(/TEMP B-TREE FOR ORDER BY/);
    // Opening a file looks for runs without an attribute filter: one seek, not a scan of every run.
    expect(plan('SELECT rowid FROM span_runs WHERE attr_filter IS NULL')).toContain('span_runs_unfiltered');
    // A trace's log records through the trace index's file too, then each by id.
    expect(plan(`SELECT doc FROM logs WHERE ${logOfTrace} ORDER BY (time_ns >> 32) DESC, time_ns DESC, logs.id DESC LIMIT 5`)).toMatch(
      /SEARCH logs USING INTEGER PRIMARY KEY \(rowid=\?\) \| LIST SUBQUERY \d+ \| SEARCH trace_index.log_traces USING PRIMARY KEY \(tenant=\? AND trace_id=\?\)/,
    );
  });

  it('upgrades a file from before the log idempotency key in place, keeping its rows', () => {
    const path = join(tempDir(), 'old.db');
    const old = new DatabaseSync(path);
    old.exec('CREATE TABLE logs (id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, trace_id TEXT NOT NULL, service_name TEXT NOT NULL, severity_number INTEGER NOT NULL, doc TEXT NOT NULL)');
    old.exec("INSERT INTO logs (time_ns, trace_id, service_name, severity_number, doc) VALUES (1, '', 'svc', 9, '{}')");
    old.close();
    const db = openDatabase(path);
    const store = new SqliteStore(db);
    const chunks = createEncoder().encodeLogs([makeLog(), makeLog()]).map((c) => c.data);
    expect(store.writeLogs(chunks, 'batch-1').kind).toBe('success');
    expect(store.writeLogs(chunks, 'batch-1').kind).toBe('success');
    expect((db.prepare('SELECT count(*) AS n FROM logs').get() as { n: number }).n).toBe(3);
    // A second process opening the upgraded file finds nothing to do.
    openDatabase(path).close();
    db.close();
  });
});
