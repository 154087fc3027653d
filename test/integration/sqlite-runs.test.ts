// SQLite span runs (span_runs): searches, dependencies and retention reach spans through the runs
// of a trace's spans a write stored together, not through an index entry per span. These cases pin
// what runs must not change: a run holds one trace and one service, searches rank traces by their
// newest matching span whatever run it is in, retention takes old spans out of a run that keeps
// newer ones without letting the run cover rows written later, and a file from before runs opens
// with every span searchable.
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { getDependencies, searchTraces, tableStats } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const proto = createProtoEncoder({});
const DAY = 86_400_000_000_000n;
const NOW = BigInt(Date.now()) * 1_000_000n;

function write(store: SqliteStore, spans: SpanRow[], tenant = DEFAULT_TENANT): void {
  expect(store.writeSpans(proto.encodeSpans(spans).map((c) => c.data), tenant).kind).toBe('success');
}

const at = (o: Partial<SpanRow> & { startTimeUnixNano: bigint }) => makeSpan({ endTimeUnixNano: o.startTimeUnixNano + 10n, ...o });
const found = (db: DatabaseSync, q: Parameters<typeof searchTraces>[2]) => searchTraces(db, DEFAULT_TENANT, q).map((t) => t.traceId);
const runs = (db: DatabaseSync) => db.prepare('SELECT service_name AS service, first_rowid AS first, last_rowid AS last FROM span_runs ORDER BY first_rowid').all();

describe('sqlite span runs', () => {
  it('keeps one run per trace and service, so a service or name condition never matches another service\'s span', () => {
    const db = openDatabase(join(tempDir(), 'services.db'));
    const store = new SqliteStore(db);
    // One trace across two services, its spans one after another in the request.
    const a = at({ serviceName: 'front', name: 'GET /', startTimeUnixNano: NOW });
    const b = at({ serviceName: 'back', name: 'SELECT', traceId: a.traceId, parentSpanId: a.spanId, startTimeUnixNano: NOW + 1n });
    write(store, [a, b]);
    expect(runs(db)).toEqual([
      { service: 'front', first: 1, last: 1 },
      { service: 'back', first: 2, last: 2 },
    ]);
    expect(found(db, { service: 'front', name: 'GET /', limit: 5 })).toEqual([a.traceId]);
    expect(found(db, { service: 'back', name: 'SELECT', limit: 5 })).toEqual([a.traceId]);
    expect(found(db, { service: 'front', name: 'SELECT', limit: 5 })).toEqual([]);
    expect(getDependencies(db, DEFAULT_TENANT, { startNano: NOW - DAY, endNano: NOW + DAY })).toEqual([{ parent: 'front', child: 'back', callCount: 1 }]);
    db.close();
  });

  it('ranks traces by their newest matching span, not by the newest span of its run', () => {
    const db = openDatabase(join(tempDir(), 'rank.db'));
    const store = new SqliteStore(db);
    // Trace x: one run whose newest span (NOW) is not a match; its matching span is old.
    const xMatch = at({ serviceName: 's', name: 'match', startTimeUnixNano: NOW - 1000n });
    const xNewest = at({ serviceName: 's', name: 'other', traceId: xMatch.traceId, startTimeUnixNano: NOW });
    // Trace y: a run older than x's newest, its match newer than x's match.
    const y = at({ serviceName: 's', name: 'match', startTimeUnixNano: NOW - 10n });
    // Trace z: all older.
    const z = at({ serviceName: 's', name: 'match', startTimeUnixNano: NOW - 5000n });
    write(store, [xMatch, xNewest]);
    write(store, [y]);
    write(store, [z]);
    expect(found(db, { service: 's', name: 'match', limit: 1 })).toEqual([y.traceId]);
    expect(found(db, { name: 'match', limit: 2 }).sort()).toEqual([xMatch.traceId, y.traceId].sort());
    expect(found(db, { name: 'match', limit: 5 })).toHaveLength(3);
    // A time range cuts spans, not runs: x's run reaches into it, its match does not.
    expect(found(db, { name: 'match', startNano: NOW - 100n, limit: 5 })).toEqual([y.traceId]);
    expect(found(db, { name: 'other', endNano: NOW - 1n, limit: 5 })).toEqual([]);
    db.close();
  });

  it('takes old spans out of a run that keeps newer ones, and the run never covers rows written after', () => {
    const db = openDatabase(join(tempDir(), 'retention.db'));
    const store = new SqliteStore(db);
    // One run: a new span first, then an old one (the table's largest rowid, freed by retention).
    const fresh = at({ serviceName: 'kept', name: 'fresh', startTimeUnixNano: NOW });
    const stale = at({ serviceName: 'kept', name: 'stale', traceId: fresh.traceId, startTimeUnixNano: NOW - 3n * DAY });
    write(store, [fresh, stale]);
    expect(runs(db)).toEqual([{ service: 'kept', first: 1, last: 2 }]);
    expect(tableStats(db).oldestSpanNs).toBe(NOW - 3n * DAY);
    expect(store.applyRetention(1)).toEqual({ spans: 1, logs: 0 });
    expect(runs(db)).toEqual([{ service: 'kept', first: 1, last: 1 }]);
    expect(tableStats(db).oldestSpanNs).toBe(NOW);
    // The next span takes rowid 2 again: another service's, found under its own service only.
    const later = at({ serviceName: 'later', name: 'fresh', startTimeUnixNano: NOW + 5n });
    write(store, [later]);
    expect(found(db, { service: 'kept', limit: 5 })).toEqual([fresh.traceId]);
    expect(found(db, { service: 'later', limit: 5 })).toEqual([later.traceId]);
    expect(found(db, { service: 'kept', name: 'stale', limit: 5 })).toEqual([]);
    // A run all older than the cutoff goes whole.
    write(store, [at({ serviceName: 'gone', startTimeUnixNano: NOW - 2n * DAY })]);
    expect(store.applyRetention(1).spans).toBe(1);
    expect(runs(db).map((r) => (r as { service: string }).service)).toEqual(['kept', 'later']);
    db.close();
  });

  it('gives every span of a file from before runs a run when it is opened, and drops the per-span time indexes', () => {
    const path = join(tempDir(), 'before.db');
    let db = openDatabase(path);
    const spans = [at({ serviceName: 'old', name: 'a', startTimeUnixNano: NOW - 20n }), at({ serviceName: 'old', name: 'b', startTimeUnixNano: NOW - 10n })];
    write(new SqliteStore(db), spans);
    // The file as the previous version left it: per-span time indexes, no runs.
    db.exec(`DROP TABLE span_runs; CREATE INDEX spans_tenant_service_start ON spans (tenant, service_name, start_ns);
             CREATE INDEX spans_tenant_start ON spans (tenant, start_ns);`);
    db.close();
    db = openDatabase(path);
    expect(runs(db)).toEqual([
      { service: 'old', first: 1, last: 1 },
      { service: 'old', first: 2, last: 2 },
    ]);
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'spans'").all() as { name: string }[]).map((r) => r.name);
    expect(indexes).toEqual(['spans_tenant_trace_span']);
    expect(found(db, { service: 'old', limit: 5 })).toEqual([spans[1]!.traceId, spans[0]!.traceId]);
    const store = new SqliteStore(db);
    const next = at({ serviceName: 'old', name: 'c', startTimeUnixNano: NOW });
    write(store, [next]);
    expect(found(db, { service: 'old', limit: 1 })).toEqual([next.traceId]);
    // An older version opens the file again: it makes its time index anew and writes a span
    // without a run. Opened by this version once more, that span is found too.
    const older = at({ serviceName: 'old', name: 'd', startTimeUnixNano: NOW + 1n });
    db.exec('CREATE INDEX spans_tenant_start ON spans (tenant, start_ns)');
    write(store, [older]);
    db.exec(`DELETE FROM span_runs WHERE first_rowid = (SELECT max(rowid) FROM spans)`);
    expect(found(db, { service: 'old', limit: 1 })).toEqual([next.traceId]);
    db.close();
    db = openDatabase(path);
    expect(found(db, { service: 'old', limit: 1 })).toEqual([older.traceId]);
    expect(runs(db)).toHaveLength(4);
    // Runs without their trace (as a build of this change before it made them) are made anew too.
    db.exec('ALTER TABLE span_runs DROP COLUMN trace_id');
    db.close();
    db = openDatabase(path);
    expect(found(db, { service: 'old', limit: 1 })).toEqual([older.traceId]);
    expect(runs(db)).toHaveLength(4);
    db.close();
  });
});
