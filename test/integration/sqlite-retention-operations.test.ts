// A SQLite retention pass deletes in slices (a transaction each), and each slice's statements
// found the tenants with SELECT DISTINCT over the operations table (one row per service, span name
// and kind) and the log severity summary (one per tenant and ~4.3 s of records), and deleted old
// operations and summary rows by a column no index leads with: every slice read every row of both.
// With many span names (names that carry ids: "GET /users/1234") a pass took slices × operations:
// 200,000 spans of 40,000 names, 70 s, against 7.7 s without those reads, and the write thread
// (every write) waited for all of it.
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { getServices, searchLogs, tableStats } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { makeLog, makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const DAY = 86_400_000_000_000n;
const SECOND = 1_000_000_000n;

/** Counts the runs of each statement prepared on db from now on, by SQL text, until restore(). */
function countRuns(db: DatabaseSync): { runs: Map<string, number>; restore: () => void } {
  const runs = new Map<string, number>();
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const stmt = prepare(sql);
    for (const m of ['run', 'get', 'all'] as const) {
      const f = stmt[m].bind(stmt) as (...a: unknown[]) => unknown;
      (stmt as unknown as Record<string, unknown>)[m] = (...a: unknown[]) => {
        runs.set(sql, (runs.get(sql) ?? 0) + 1);
        return f(...a);
      };
    }
    return stmt;
  }) as typeof db.prepare;
  return { runs, restore: () => (db.prepare = prepare) };
}

describe('sqlite retention over many operations', () => {
  it('reads the operations and the severity summary whole at most once a pass, not once a slice', () => {
    const path = join(tempDir(), 'ops.db');
    const db = openDatabase(path);
    const enc = createProtoEncoder({});
    const now = BigInt(Date.now()) * 1_000_000n;
    const old = now - 10n * DAY;
    // Before the store prepares its statements: those it prepares at construction are counted too.
    const { runs, restore } = countRuns(db);
    const store = new SqliteStore(db);
    for (const tenant of ['a', 'b']) {
      // 1,500 old traces a tenant, each its own span name and run (about six slices of runs),
      // 6,000 old log records a second apart, and a span and a record of now.
      for (let b = 0; b < 15; b++) {
        const spans = Array.from({ length: 100 }, (_, i) => makeSpan({ serviceName: `svc-${tenant}`, name: `GET /users/${b * 100 + i}`, startTimeUnixNano: old + BigInt(b * 100 + i) * SECOND }));
        expect(store.writeSpans(enc.encodeSpans(spans).map((c) => c.data), tenant).kind).toBe('success');
      }
      const logs = Array.from({ length: 6000 }, (_, i) => makeLog({ serviceName: `svc-${tenant}`, timeUnixNano: old + BigInt(i) * SECOND }));
      expect(store.writeLogs(enc.encodeLogs(logs).map((c) => c.data), `old-${tenant}`, tenant).kind).toBe('success');
      expect(store.writeSpans(enc.encodeSpans([makeSpan({ serviceName: `svc-${tenant}`, name: 'fresh', startTimeUnixNano: now })]).map((c) => c.data), tenant).kind).toBe('success');
      expect(store.writeLogs(enc.encodeLogs([makeLog({ serviceName: `svc-${tenant}`, timeUnixNano: now })]).map((c) => c.data), `new-${tenant}`, tenant).kind).toBe('success');
    }
    runs.clear();
    const result = store.applyRetention(7);
    restore();
    expect(result).toEqual({ spans: 3000, logs: 12_000 });
    expect(tableStats(db)).toMatchObject({ spans: 2, logs: 2, oldestSpanNs: now, oldestLogNs: now });
    for (const tenant of ['a', 'b']) {
      expect(getServices(db, tenant)).toEqual([`svc-${tenant}`]);
      expect(searchLogs(db, tenant, { limit: 10 }).map((r) => r.timeUnixNano)).toEqual([now]);
    }
    expect((db.prepare('SELECT count(*) AS n FROM operations').get() as { n: number }).n).toBe(2);

    // It took several slices (a transaction each)...
    const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join(' | ');
    const slices = Math.max(...[...runs].filter(([sql]) => sql.startsWith('DELETE FROM item_groups')).map(([, n]) => n));
    expect(slices).toBeGreaterThan(4);
    // ...and read every row of the two tables at most once in all (the operations' own delete).
    const whole = [...runs].filter(([sql]) => /\bSCAN (operations|log_bucket_severity)\b/.test(plan(sql)));
    expect(whole.reduce((n, [, k]) => n + k, 0), whole.map(([sql, k]) => `${k} × ${plan(sql)} ← ${sql.replace(/\s+/g, ' ').slice(0, 100)}`).join('\n')).toBeLessThanOrEqual(1);
    db.close();
  });
});
