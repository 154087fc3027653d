// SQLite log search by least severity alone reads the highest severity of each time bucket first
// (store.ts, LOG_SEVERITY) and the records of the buckets that reach it only: before, such a search
// read every record of its range when few matched (1M records over a day: 0.4 s for a FATAL
// search that found nothing). These cases check what a user sees: the right records, newest
// first, the limit, across severities, tenants, bucket edges and ranges, with records written
// through each write path (OTLP chunks, JSON lines, the collector's write thread, `import`), after
// retention, from a file written before the summary, and after an older version wrote records
// beside it; and that the search's statement goes through the summary.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import type { LogRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import type { LogQuery } from '../../src/storage/backend.ts';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createEncoder as createLineEncoder } from '../../src/storage/rowjson.ts';
import { searchLogs, tableStats } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { runTransferCommand } from '../../src/transfer/cli.ts';
import { makeLog, writeLogsAs } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const proto = createProtoEncoder({});
const lines = createLineEncoder();
const BUCKET = 1n << 32n;
const DAY = 86_400_000_000_000n;
let batch = 0;

const log = (t: bigint, severityNumber: number, body: string, service = 'svc') => makeLog({ serviceName: service, timeUnixNano: t, severityNumber, body: { stringValue: body } });

function write(store: SqliteStore, logs: LogRow[], tenant = DEFAULT_TENANT, encoding: 'proto' | 'lines' = 'proto'): void {
  const chunks = (encoding === 'proto' ? proto.encodeLogs(logs) : lines.encodeLogs(logs)).map((c) => c.data);
  expect(store.writeLogs(chunks, `b${batch++}`, tenant).kind).toBe('success');
}

const bodies = (db: DatabaseSync, minSeverity: number, q: Partial<LogQuery> = {}, tenant = DEFAULT_TENANT) =>
  searchLogs(db, tenant, { limit: 50, minSeverity, ...q }).map((l) => ('stringValue' in l.body ? l.body.stringValue : ''));

/** The query plan of every statement searchLogs prepares for q. */
function searchPlans(db: DatabaseSync, q: LogQuery): string[] {
  const prepared: string[] = [];
  const seen = new Proxy(db, {
    get(target, key) {
      if (key === 'prepare') return (sql: string) => (prepared.push(sql), target.prepare(sql));
      const value = Reflect.get(target, key) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  searchLogs(seen, DEFAULT_TENANT, q);
  return prepared.map((sql) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join(' | '));
}

describe('sqlite log search by least severity', () => {
  it('finds the right records newest first through the buckets whose highest severity reaches it', () => {
    const path = join(tempDir(), 'log-severity.db');
    let db = openDatabase(path);
    let store = new SqliteStore(db);
    const now = BigInt(Date.now()) * 1_000_000n;
    const base = (now / BUCKET) * BUCKET - 10n * BUCKET;
    // Bucket edges: records at the last nanosecond of a bucket and the first of the next; INFO
    // records fill buckets with no higher severity; written out of time order.
    write(store, [log(base + BUCKET - 1n, 17, 'e1'), log(base + BUCKET, 9, 'i2'), log(base + BUCKET + 1n, 21, 'f2')]);
    write(store, [log(base - 1n, 13, 'w0'), log(base, 9, 'i1'), log(base + 5n, 18, 'e1b')]);
    write(store, [log(base + 3n * BUCKET, 9, 'i3'), log(base + 3n * BUCKET + 9n, 9, 'i3b')], DEFAULT_TENANT, 'lines');
    write(store, [log(base + 4n * BUCKET + 2n, 17, 'e4')], DEFAULT_TENANT, 'lines');
    // Another tenant's records in the same buckets, higher: not the default tenant's.
    write(store, [log(base + 3n * BUCKET + 1n, 24, 'other-f3'), log(base + BUCKET - 2n, 17, 'other-e1')], 'other');
    const check = () => {
      expect(bodies(db, 17)).toEqual(['e4', 'f2', 'e1', 'e1b']);
      expect(bodies(db, 17, { limit: 2 })).toEqual(['e4', 'f2']);
      expect(bodies(db, 21)).toEqual(['f2']);
      expect(bodies(db, 22)).toEqual([]);
      expect(bodies(db, 13)).toEqual(['e4', 'f2', 'e1', 'e1b', 'w0']);
      expect(bodies(db, 1)).toEqual(['e4', 'i3b', 'i3', 'f2', 'i2', 'e1', 'e1b', 'i1', 'w0']);
      // Ranges that start or end inside a bucket leave out its records beyond them; both ends count.
      expect(bodies(db, 17, { startNano: base + BUCKET })).toEqual(['e4', 'f2']);
      expect(bodies(db, 17, { startNano: base + 1n, endNano: base + BUCKET - 1n })).toEqual(['e1', 'e1b']);
      expect(bodies(db, 17, { endNano: base + BUCKET })).toEqual(['e1', 'e1b']);
      expect(bodies(db, 17, { startNano: base + 6n, endNano: base + BUCKET + 1n })).toEqual(['f2', 'e1']);
      expect(bodies(db, 13, { endNano: base - 1n })).toEqual(['w0']);
      expect(bodies(db, 17, {}, 'other')).toEqual(['other-f3', 'other-e1']);
      expect(bodies(db, 22, {}, 'other')).toEqual(['other-f3']);
      expect(bodies(db, 17, {}, 'nobody')).toEqual([]);
    };
    check();

    // The search reads the summary first, then each bucket's records through the bucket index.
    const plans = searchPlans(db, { limit: 50, minSeverity: 17, startNano: base });
    expect(plans.some((p) => /SEARCH s USING PRIMARY KEY \(tenant=\? AND bucket>\?\)/.test(p) && p.includes('SEARCH logs USING INDEX logs_tenant_bucket (tenant=? AND <expr>=?)'))).toBe(true);

    // Retention takes the buckets before its cutoff's, and a record one nanosecond before the
    // cutoff in the cutoff's own bucket; a FATAL at the cutoff is still found.
    let nowMs = Number(now / 1_000_000n) + 1000;
    if ((BigInt(nowMs) * 1_000_000n - DAY) % BUCKET === 0n) nowMs++;
    const cutoff = BigInt(nowMs) * 1_000_000n - DAY;
    write(store, [log(cutoff - BUCKET, 21, 'old-f'), log(cutoff - 1n, 21, 'gone-f'), log(cutoff, 21, 'kept-f')]);
    expect(bodies(db, 21)).toEqual(['f2', 'kept-f', 'gone-f', 'old-f']);
    expect(store.applyRetention(1, nowMs).logs).toBe(2);
    expect(bodies(db, 21)).toEqual(['f2', 'kept-f']);
    expect(db.prepare('SELECT count(*) AS n FROM log_bucket_severity WHERE bucket < ?').get(cutoff >> 32n)).toEqual({ n: 0 });
    db.exec(`DELETE FROM logs WHERE time_ns < ${base - BUCKET}`);
    check();

    // An older version wrote records since (no summary rows for them): the next write covers them.
    const upto = (db.prepare('SELECT upto FROM log_bucket_severity_upto').get() as { upto: number }).upto;
    write(store, [log(base + 6n * BUCKET, 22, 'older-f6')]);
    db.exec(`DELETE FROM log_bucket_severity WHERE bucket = ${(base + 6n * BUCKET) >> 32n}; UPDATE log_bucket_severity_upto SET upto = ${upto}`);
    write(store, [log(base + 2n * BUCKET, 22, 'f2-late')]);
    expect(bodies(db, 22)).toEqual(['older-f6', 'f2-late']);
    db.exec(`DELETE FROM logs WHERE severity_number = 22`);

    // A file from before the summary: filled once when opened, in the transaction that makes it.
    db.exec('DROP TABLE log_bucket_severity; DROP TABLE log_bucket_severity_upto');
    db.close();
    db = openDatabase(path);
    check();
    // And the records an older version wrote after it closed are summed when it is opened again.
    store = new SqliteStore(db);
    write(store, [log(base + 7n * BUCKET, 23, 'older-f7')]);
    db.exec(`DELETE FROM log_bucket_severity WHERE severity = 23; UPDATE log_bucket_severity_upto SET upto = upto - 1`);
    db.close();
    db = openDatabase(path);
    expect(bodies(db, 23)).toEqual(['older-f7']);
    db.close();
  });

  it("finds records written by the collector's write thread and by import", async () => {
    const dir = tempDir();
    const path = join(dir, 'threads.db');
    const now = BigInt(Date.now()) * 1_000_000n;
    const config = loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': path } });
    const backend = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await backend.start();
    try {
      await writeLogsAs(backend, 'acme', [log(now - 3n * BUCKET, 17, 'acme-e'), log(now - 2n * BUCKET, 9, 'acme-i')]);
      expect((await backend.searchLogs('acme', { limit: 10, minSeverity: 17 })).map((l) => l.body)).toEqual([{ stringValue: 'acme-e' }]);
    } finally {
      await backend.shutdown();
    }
    const file = join(dir, 'backup.jsonl');
    const record = { timeUnixNano: String(now - BUCKET), severityNumber: 21, body: { stringValue: 'imported-f' } };
    writeFileSync(file, JSON.stringify({ resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'restored' } }] }, scopeLogs: [{ logRecords: [record] }] }] }) + '\n');
    expect(await runTransferCommand(['import', file, '--storage.backend=sqlite', `--storage.sqlite.path=${path}`, '--quiet'])).toBe(0);
    const db = openDatabase(path);
    expect(bodies(db, 21)).toEqual(['imported-f']);
    expect(bodies(db, 17, {}, 'acme')).toEqual(['acme-e']);
    db.close();
  });

  // Retention that took the records with the largest rowids (late records with old times) left
  // the summary's `upto` above every record: each open then took a write transaction to sum
  // nothing, as the trace index's catch-up took one at every open, so an open beside a process
  // writing the file (a collector, an import) waited for its write lock, and failed after
  // busy_timeout (5 s) when it was held longer. An open with nothing to do now takes none.
  it('opens a file beside a held write lock when nothing is to be caught up, also after retention took the newest records', () => {
    const path = join(tempDir(), 'late-retained.db');
    let db = openDatabase(path);
    let store = new SqliteStore(db);
    const nowMs = Date.now();
    const now = BigInt(nowMs) * 1_000_000n;
    write(store, [log(now - BUCKET, 17, 'kept-e')]);
    db.close();
    const writer = new DatabaseSync(path);
    const openBesideWriter = () => {
      writer.exec('BEGIN IMMEDIATE');
      try {
        return openDatabase(path);
      } finally {
        writer.exec('ROLLBACK');
      }
    };
    db = openBesideWriter();
    store = new SqliteStore(db);
    write(store, [log(now - 3n * DAY, 21, 'late-old-f')]);
    expect(store.applyRetention(1, nowMs).logs).toBe(1);
    db.close();

    db = openBesideWriter();
    expect(bodies(db, 17)).toEqual(['kept-e']);
    // Records written since, on rowids past the floor, are covered.
    store = new SqliteStore(db);
    write(store, [log(now - 2n * BUCKET, 22, 'new-f')]);
    expect(bodies(db, 17)).toEqual(['kept-e', 'new-f']);
    db.close();
    db = openBesideWriter();
    expect(bodies(db, 22)).toEqual(['new-f']);
    db.close();
    writer.close();
  });

  it('lists a tenant an older version wrote on rowids retention freed, so retention and the oldest record reach it', () => {
    const path = join(tempDir(), 'reused-rowids.db');
    let db = openDatabase(path);
    let store = new SqliteStore(db);
    const nowMs = Date.now();
    const now = BigInt(nowMs) * 1_000_000n;
    write(store, [log(now, 9, 'a-new')], 'a');
    // A late record with an old time holds the largest rowid; retention takes it.
    write(store, [log(now - 3n * DAY, 9, 'a-late')], 'a');
    expect(store.applyRetention(1, nowMs).logs).toBe(1);
    db.close();
    // A version from before the rowid floors and the summary writes next: SQLite hands out the
    // freed rowid again (to tenant b's record), then one past it.
    const older = new DatabaseSync(path);
    const insert = older.prepare("INSERT INTO logs (tenant, time_ns, trace_id, service_name, severity_number, doc) VALUES (?, ?, '', 'svc', 9, ?)");
    const doc = (l: LogRow) => JSON.stringify(l, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    insert.run('b', now - 2n * DAY, doc(log(now - 2n * DAY, 9, 'b-old')));
    insert.run('a', now, doc(log(now, 9, 'a-older')));
    older.close();
    db = openDatabase(path);
    store = new SqliteStore(db);
    expect(bodies(db, 9, {}, 'b')).toEqual(['b-old']);
    expect(tableStats(db).oldestLogNs).toBe(now - 2n * DAY);
    expect(store.applyRetention(1, nowMs).logs).toBe(1);
    expect(tableStats(db).logs).toBe(2);
    db.close();
  });
});
