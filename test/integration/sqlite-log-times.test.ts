// SQLite log records by time: their time indexes key a record by its time's bucket of 2^32 ns, then
// its rowid (store.ts, LOG_TIME_INDEXES), so searches order by bucket, then time. These cases put
// records on both sides of bucket edges, written against time order, and check what a user sees:
// newest first, ranges that start and end inside a bucket, the oldest record, retention at its
// cutoff, and a file from before the buckets opened with the same answers.
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import type { LogRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { searchLogs, tableStats } from '../../src/storage/sqlite/reads.ts';
import { LOG_TENANTS_SQL, SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { makeLog } from '../helpers/rows.ts';
import { indexNames } from '../helpers/sqlite-rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const proto = createProtoEncoder({});
const BUCKET = 1n << 32n;
const DAY = 86_400_000_000_000n;
let batch = 0;

function write(store: SqliteStore, logs: LogRow[]): void {
  expect(store.writeLogs(proto.encodeLogs(logs).map((c) => c.data), `b${batch++}`).kind).toBe('success');
}

const bodies = (db: DatabaseSync, q: Partial<Parameters<typeof searchLogs>[2]> = {}) =>
  searchLogs(db, DEFAULT_TENANT, { limit: 20, ...q }).map((l) => ('stringValue' in l.body ? l.body.stringValue : ''));

describe('sqlite log records by time', () => {
  it('ranks, bounds and ages out records by their times across the buckets, and opens a file whose indexes are keyed by the times', () => {
    const path = join(tempDir(), 'log-times.db');
    let db = openDatabase(path);
    const store = new SqliteStore(db);
    const now = BigInt(Date.now()) * 1_000_000n;
    const base = (now / BUCKET) * BUCKET;
    const times = [base - BUCKET - 1n, base - 1n, base, base + 1n, base + BUCKET - 1n, base + BUCKET, base + 3n * BUCKET + 7n];
    const logs = times.map((t, i) => makeLog({ serviceName: i % 2 === 0 ? 'even' : 'odd', timeUnixNano: t, body: { stringValue: `r${i}` } }));
    // Written out of time order, within a bucket too: rowids do not rank.
    for (const k of [4, 0, 2, 6, 3, 1, 5]) write(store, [logs[k]!]);
    // Two records at one time rank by rowid, the later written first.
    write(store, [makeLog({ serviceName: 'even', timeUnixNano: base, body: { stringValue: 'r2b' } })]);
    const check = () => {
      expect(bodies(db)).toEqual(['r6', 'r5', 'r4', 'r3', 'r2b', 'r2', 'r1', 'r0']);
      expect(bodies(db, { service: 'even', limit: 3 })).toEqual(['r6', 'r4', 'r2b']);
      // Ranges that start or end inside a bucket leave out that bucket's records beyond them; both ends count.
      expect(bodies(db, { startNano: base + 1n })).toEqual(['r6', 'r5', 'r4', 'r3']);
      expect(bodies(db, { startNano: base, endNano: base + BUCKET - 1n })).toEqual(['r4', 'r3', 'r2b', 'r2']);
      expect(bodies(db, { endNano: base - 1n })).toEqual(['r1', 'r0']);
      expect(bodies(db, { service: 'odd', startNano: base - 1n, endNano: base + 1n })).toEqual(['r3', 'r1']);
      expect(tableStats(db).oldestLogNs).toBe(times[0]);
    };
    check();
    // Retention takes a record one nanosecond before its cutoff, in the cutoff's own bucket, and keeps one at it.
    let nowMs = Number(now / 1_000_000n) + 1000;
    if ((BigInt(nowMs) * 1_000_000n - DAY) % BUCKET === 0n) nowMs++;
    const cutoff = BigInt(nowMs) * 1_000_000n - DAY;
    write(store, [makeLog({ serviceName: 'edge', timeUnixNano: cutoff - 1n, body: { stringValue: 'gone' } })]);
    write(store, [makeLog({ serviceName: 'edge', timeUnixNano: cutoff, body: { stringValue: 'kept' } })]);
    expect(store.applyRetention(1, nowMs).logs).toBe(1);
    expect(bodies(db, { service: 'edge' })).toEqual(['kept']);
    expect(tableStats(db).oldestLogNs).toBe(cutoff);
    db.exec(`DELETE FROM logs WHERE service_name = 'edge'`);
    check();
    // The file as a version before the buckets left it: time indexes keyed by the times themselves.
    db.exec(`DROP INDEX logs_tenant_service_bucket; DROP INDEX logs_tenant_bucket;
             CREATE INDEX logs_tenant_service_time ON logs (tenant, service_name, time_ns);
             CREATE INDEX logs_tenant_time ON logs (tenant, time_ns); CREATE INDEX logs_time ON logs (time_ns);`);
    db.close();
    db = openDatabase(path);
    const indexes = indexNames(db, 'logs');
    expect(indexes).toEqual(['logs_batch', 'logs_tenant_bucket', 'logs_tenant_service_bucket']);
    check();
    // The file as the version before this one left it (or as it makes it again when it opens it
    // since): an index of the bucket alone beside them, which every write paid for.
    db.exec(`CREATE INDEX logs_bucket ON logs ((time_ns >> 32))`);
    db.close();
    db = openDatabase(path);
    expect(indexNames(db, 'logs')).toEqual(['logs_batch', 'logs_tenant_bucket', 'logs_tenant_service_bucket']);
    check();
    db.close();
  });

  it('reads newest first through a bucketed index, each bucket sorted as it is reached, and the oldest record from the oldest bucket', () => {
    const db = openDatabase(join(tempDir(), 'log-plans.db'));
    const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join(' | ');
    const newest = "SELECT id FROM logs WHERE tenant = 't' AND (time_ns >> 32) >= (1 >> 32) AND time_ns >= 1 ORDER BY (time_ns >> 32) DESC, time_ns DESC, logs.id DESC LIMIT 20";
    expect(plan(newest)).toBe('SEARCH logs USING INDEX logs_tenant_bucket (tenant=? AND <expr>>?) | USE TEMP B-TREE FOR LAST 2 TERMS OF ORDER BY');
    expect(plan(newest.replace("tenant = 't'", "tenant = 't' AND service_name = 's'"))).toContain('logs_tenant_service_bucket (tenant=? AND service_name=? AND <expr>>?)');
    // Over every tenant (tableStats' oldest record, retention's deletes): a tenant at a time.
    expect(plan(`SELECT min((SELECT time_ns FROM logs l INDEXED BY logs_tenant_bucket WHERE l.tenant = t.tenant ORDER BY (time_ns >> 32), time_ns LIMIT 1)) FROM (${LOG_TENANTS_SQL}) t`)).toContain('SEARCH l USING INDEX logs_tenant_bucket (tenant=?)');
    expect(plan(`DELETE FROM logs WHERE tenant IN (${LOG_TENANTS_SQL}) AND (time_ns >> 32) <= (5 >> 32) AND time_ns < 5`)).toContain('logs_tenant_bucket (tenant=? AND <expr><?)');
    db.close();
  });
});
