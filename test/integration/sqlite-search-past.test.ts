// A trace search of a past range (Grafana's time picker, the Jaeger UI's custom range, /v1/traces
// with an `end`) reads the runs that reach into that range, not every run stored since: the walk
// of the runs' time index is bounded above by the range's end, as well as below by its start.
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import type { TraceQuery } from '../../src/storage/backend.ts';
import { createEncoder } from '../../src/storage/rowjson.ts';
import { getDependencies, searchTraces } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { hex, makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { SpanRow } from '../../src/model/rows.ts';

const MINUTE = 60_000_000_000n;
const HOUR = 60n * MINUTE;
const DAY = 24n * HOUR;
const STEP = 3n * MINUTE;
const NOW = BigInt(Date.now()) * 1_000_000n;

function write(store: SqliteStore, spans: SpanRow[]): void {
  const enc = createEncoder();
  for (let i = 0; i < spans.length; i += 5000) expect(store.writeSpans(enc.encodeSpans(spans.slice(i, i + 5000)).map((c) => c.data)).kind).toBe('success');
}

/** What read() answers, and the statements it prepared with the plan SQLite gives each. */
/**
 * A client's span with its start unset (1970) beside one of now, in one batch (one run of 56
 * years), then a job's run of two days, which a 7-day retention keeps; the job's trace id.
 */
function writeUnsetAndJob(store: SqliteStore): string {
  const unset = makeSpan({ serviceName: 'api', name: 'unset', startTimeUnixNano: 0n });
  write(store, [unset, makeSpan({ traceId: unset.traceId, serviceName: 'api', name: 'now', startTimeUnixNano: NOW })]);
  const job = hex(16);
  write(store, [makeSpan({ traceId: job, serviceName: 'batch-job', startTimeUnixNano: NOW - 2n * DAY }), makeSpan({ traceId: job, serviceName: 'batch-job', startTimeUnixNano: NOW })]);
  return job;
}

/** The file's run_reach: the longest reach of any run. */
function reachOf(db: DatabaseSync): bigint {
  const stmt = db.prepare('SELECT ns FROM run_reach');
  stmt.setReadBigInts(true);
  return (stmt.get() as { ns: bigint }).ns;
}

function withPlans<T>(db: DatabaseSync, read: () => T): { plans: Map<string, string>; found: T } {
  const prepared: string[] = [];
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    prepared.push(sql);
    return prepare(sql);
  }) as typeof db.prepare;
  let found: T;
  try {
    found = read();
  } finally {
    delete (db as { prepare?: unknown }).prepare;
  }
  const plans = new Map(prepared.map((sql) => [sql, (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join(' | ')]));
  return { plans, found };
}

/** The plan SQLite gives a search's walk of the runs, and what the search found. */
function runWalkPlan(db: DatabaseSync, q: TraceQuery): { plan: string; found: ReturnType<typeof searchTraces> } {
  const { plans, found } = withPlans(db, () => searchTraces(db, TENANT, q));
  const walk = [...plans.keys()].find((sql) => /FROM span_runs .*ORDER BY/.test(sql));
  expect(walk).toBeDefined();
  return { plan: plans.get(walk!)!, found };
}

describe('sqlite: a trace search of a past range', () => {
  let db: DatabaseSync | undefined;
  afterEach(() => db?.close());

  it('walks the service runs of that range, not those of every day since', () => {
    db = openDatabase(join(tempDir(), 'past.db'));
    const store = new SqliteStore(db);
    // A trace every three minutes for three days, of one service among others.
    const spans: SpanRow[] = [];
    for (let m = 0n; m < 3n * DAY; m += STEP) {
      spans.push(makeSpan({ serviceName: 'checkout', startTimeUnixNano: NOW - m }));
      spans.push(makeSpan({ serviceName: `other-${(m / STEP) % 7n}`, startTimeUnixNano: NOW - m }));
    }
    write(store, spans);
    // An hour two days ago.
    const q: TraceQuery = { service: 'checkout', startNano: NOW - 2n * DAY - HOUR, endNano: NOW - 2n * DAY, limit: 20 };
    const { plan, found } = runWalkPlan(db, q);
    expect(found).toHaveLength(20);
    for (const t of found) expect(t.startTimeUnixNano <= q.endNano! && t.startTimeUnixNano >= q.startNano!).toBe(true);
    expect(found[0]!.startTimeUnixNano).toBe(q.endNano);
    // Bounded on both sides of the time bucket: not every run newer than the range's start.
    expect(plan).toMatch(/span_runs_tenant_service_newest \(tenant=\? AND service_name=\? AND <expr>>\? AND <expr><\?\)/);
    // The same without a service: the tenant's time index, bounded alike.
    const any = runWalkPlan(db, { startNano: q.startNano!, endNano: q.endNano!, limit: 20 });
    expect(any.found).toHaveLength(20);
    expect(any.plan).toMatch(/span_runs_tenant_newest \(tenant=\? AND <expr>>\? AND <expr><\?\)/);
  });

  it('reads the calls between services of a past range from the runs of that range', () => {
    db = openDatabase(join(tempDir(), 'deps.db'));
    const store = new SqliteStore(db);
    // A call from web to checkout every three minutes for three days.
    const spans: SpanRow[] = [];
    for (let m = 0n; m < 3n * DAY; m += STEP) {
      const parent = makeSpan({ serviceName: 'web', startTimeUnixNano: NOW - m });
      spans.push(parent, makeSpan({ traceId: parent.traceId, parentSpanId: parent.spanId, serviceName: 'checkout', startTimeUnixNano: NOW - m + 1000n }));
    }
    write(store, spans);
    const d = db;
    const { plans, found } = withPlans(d, () => getDependencies(d, TENANT, { startNano: NOW - 2n * DAY - HOUR, endNano: NOW - 2n * DAY }));
    expect(found).toEqual([{ parent: 'web', child: 'checkout', callCount: 20 }]);
    const walks = [...plans.values()].filter((p) => /span_runs_tenant_newest/.test(p));
    // The runs of records, the rows of spans joined to their parent, and the rows without one.
    expect(walks).toHaveLength(3);
    for (const p of walks) expect(p).toMatch(/span_runs_tenant_newest \(tenant=\? AND <expr>>\? AND <expr><\?\)/);
  });

  it('still finds a span of the range in a run whose newest span is days later, also in a file from before the bound', () => {
    const path = join(tempDir(), 'spread.db');
    db = openDatabase(path);
    // One batch holding a trace's span of two days ago and its span of now: one run of both.
    const trace = hex(16);
    const old = makeSpan({ traceId: trace, serviceName: 'batch-job', name: 'old', startTimeUnixNano: NOW - 2n * DAY - 30n * MINUTE });
    const fresh = makeSpan({ traceId: trace, serviceName: 'batch-job', name: 'fresh', startTimeUnixNano: NOW });
    write(new SqliteStore(db), [old, fresh]);
    expect((db.prepare('SELECT count(*) AS n FROM span_runs').get() as { n: number }).n).toBe(1);
    const q: TraceQuery = { service: 'batch-job', startNano: NOW - 2n * DAY - HOUR, endNano: NOW - 2n * DAY, limit: 20 };
    expect(searchTraces(db, TENANT, q).map((t) => t.traceId)).toEqual([trace]);
    // Runs written past what run_reach covers (an older version's, after a downgrade): read too,
    // and learnt by the next write, which does not pass over them.
    db.exec('UPDATE run_reach SET ns = 0, upto = 0');
    expect(searchTraces(db, TENANT, q).map((t) => t.traceId)).toEqual([trace]);
    write(new SqliteStore(db), [makeSpan({ serviceName: 'other', startTimeUnixNano: NOW })]);
    expect(db.prepare('SELECT ns FROM run_reach').get()).toEqual({ ns: Number(2n * DAY + 30n * MINUTE) });
    expect(searchTraces(db, TENANT, q).map((t) => t.traceId)).toEqual([trace]);
    // A file written before the store kept its runs' longest reach: learnt at the next open.
    db.exec('DROP TABLE run_reach');
    db.close();
    db = openDatabase(path);
    expect(searchTraces(db, TENANT, q).map((t) => t.traceId)).toEqual([trace]);
  });

  it('bounds the walk again by the runs left once retention took the widest run away', () => {
    db = openDatabase(join(tempDir(), 'narrowed.db'));
    const store = new SqliteStore(db);
    // A client that left a span's start unset (1970) beside one of now: one run of 56 years. A
    // search of any past range then walks every run written since its start. And a job's run of two days.
    const job = writeUnsetAndJob(store);
    const reach = (): bigint => reachOf(db!);
    expect(reach() > 50n * 365n * DAY).toBe(true);
    // Retention deletes the span of 1970: the longest reach left is the job's, and the walk of a past range is bounded by it.
    store.applyRetention(7);
    expect(reach()).toBe(2n * DAY);
    const q: TraceQuery = { startNano: NOW - 2n * DAY - HOUR, endNano: NOW - 2n * DAY, limit: 20 };
    expect(searchTraces(db, TENANT, q).map((t) => t.traceId)).toEqual([job]);
    // A write after it raises it again from there.
    const later = hex(16);
    write(store, [makeSpan({ traceId: later, serviceName: 'api', startTimeUnixNano: NOW - 3n * DAY }), makeSpan({ traceId: later, serviceName: 'api', startTimeUnixNano: NOW })]);
    expect(reach()).toBe(3n * DAY);
  });

  it('bounds the walk again in a file an earlier build left with run_reach wider than any run', () => {
    const path = join(tempDir(), 'upgraded.db');
    db = openDatabase(path);
    let store = new SqliteStore(db);
    writeUnsetAndJob(store);
    const reach = (): bigint => reachOf(db!);
    const wide = reach();
    expect(wide > 50n * 365n * DAY).toBe(true);
    // An earlier build's retention deleted the span of 1970 and narrowed its run, but kept
    // run_reach: the file as such a build left it.
    store.applyRetention(7);
    db.prepare('UPDATE run_reach SET ns = ? WHERE id = 0').run(wide);
    db.close();
    // This build opens it: its retention brings run_reach back to the runs left.
    db = openDatabase(path);
    store = new SqliteStore(db);
    store.applyRetention(7);
    expect(reach()).toBe(2n * DAY);
  });
});
