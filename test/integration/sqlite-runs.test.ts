// SQLite span runs (span_runs): spans are stored by runs of a trace's spans a write stored together
// (runs of records), and searches, dependencies and retention reach them through the runs, as they
// reach the rows of spans of older versions (runs of rows). These cases pin what runs must not
// change: a run holds one trace and one service, searches rank traces by their newest matching
// span whatever run it is in, retention takes old spans out of a run that keeps newer ones (a run
// of rows never comes to cover rows written later), and a file from before runs, or with rows and
// records, opens with every span searchable.
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { getDependencies, getTrace, READS, searchTraces, tableStats, takeUnreadable } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { makeSpan } from '../helpers/rows.ts';
import { indexNames, writeSpanRows } from '../helpers/sqlite-rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const proto = createProtoEncoder({});
const DAY = 86_400_000_000_000n;
const NOW = BigInt(Date.now()) * 1_000_000n;

function write(store: SqliteStore, spans: SpanRow[], tenant = DEFAULT_TENANT): void {
  expect(store.writeSpans(proto.encodeSpans(spans).map((c) => c.data), tenant).kind).toBe('success');
}

const at = (o: Partial<SpanRow> & { startTimeUnixNano: bigint }) => makeSpan({ endTimeUnixNano: o.startTimeUnixNano + 10n, ...o });
const found = (db: DatabaseSync, q: Parameters<typeof searchTraces>[2]) => searchTraces(db, DEFAULT_TENANT, q).map((t) => t.traceId);
/** Each run's service and spans: a run of records with its count, a run of rows with its rowid range. */
const runs = (db: DatabaseSync) =>
  db.prepare(`SELECT service_name AS service, CASE WHEN span_count IS NULL THEN 'rows ' || first_rowid || '-' || last_rowid ELSE span_count || ' records' END AS spans
              FROM span_runs ORDER BY rowid`).all();
const spanIds = (db: DatabaseSync, traceId: string) => getTrace(db, DEFAULT_TENANT, traceId).map((s) => s.spanId).sort();

describe('sqlite span runs', () => {
  it('keeps one run per trace and service, so a service or name condition never matches another service\'s span', () => {
    const db = openDatabase(join(tempDir(), 'services.db'));
    const store = new SqliteStore(db);
    // One trace across two services, its spans one after another in the request.
    const a = at({ serviceName: 'front', name: 'GET /', startTimeUnixNano: NOW });
    const b = at({ serviceName: 'back', name: 'SELECT', traceId: a.traceId, parentSpanId: a.spanId, startTimeUnixNano: NOW + 1n });
    write(store, [a, b]);
    // A batch's runs are written in the order that fills pages (packRuns), not as they arrived.
    expect(runs(db)).toHaveLength(2);
    expect(runs(db)).toEqual(
      expect.arrayContaining([
        { service: 'front', spans: '1 records' },
        { service: 'back', spans: '1 records' },
      ]),
    );
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

  it('ranks, bounds and ages out runs by their starts across the time indexes\' buckets, and opens a file whose indexes are keyed by the starts', () => {
    const path = join(tempDir(), 'buckets.db');
    let db = openDatabase(path);
    const store = new SqliteStore(db);
    // The time indexes key a run by its start's bucket of 2^32 ns, then its rowid (store.ts, TIME_INDEXES).
    const BUCKET = 1n << 32n;
    const base = (NOW / BUCKET) * BUCKET;
    const starts = [base - BUCKET - 1n, base - 1n, base, base + 1n, base + BUCKET - 1n, base + BUCKET, base + 3n * BUCKET + 7n];
    const spans = starts.map((t) => at({ serviceName: 's', startTimeUnixNano: t }));
    // Written out of time order, within a bucket too (base + BUCKET - 1 before base and base + 1): rowids do not rank.
    for (const k of [4, 0, 2, 6, 3, 1, 5]) write(store, [spans[k]!]);
    const ids = (...ks: number[]) => ks.map((k) => spans[k]!.traceId);
    const newestFirst = ids(6, 5, 4, 3, 2, 1, 0);
    const check = () => {
      expect(found(db, { limit: 10 })).toEqual(newestFirst);
      expect(found(db, { service: 's', limit: 3 })).toEqual(ids(6, 5, 4));
      // A range that starts or ends inside a bucket leaves out that bucket's runs beyond it.
      expect(found(db, { startNano: base + 1n, limit: 10 })).toEqual(ids(6, 5, 4, 3));
      expect(found(db, { service: 's', startNano: base, endNano: base + BUCKET - 1n, limit: 10 })).toEqual(ids(4, 3, 2));
      expect(found(db, { startNano: base - 1n, endNano: base - 1n, limit: 10 })).toEqual(ids(1));
      expect(tableStats(db).oldestSpanNs).toBe(starts[0]);
    };
    check();
    // Retention takes a run that starts just before its cutoff, in the cutoff's own bucket.
    let nowMs = Date.now();
    if ((BigInt(nowMs) * 1_000_000n - DAY) % BUCKET === 0n) nowMs++;
    const cutoff = BigInt(nowMs) * 1_000_000n - DAY;
    write(store, [at({ serviceName: 'edge', startTimeUnixNano: cutoff - 1n })]);
    expect(store.applyRetention(1, nowMs).spans).toBe(1);
    expect(found(db, { service: 'edge', limit: 5 })).toEqual([]);
    check();
    // The file as a version before the buckets left it: time indexes keyed by the starts themselves.
    db.exec(`DROP INDEX span_runs_tenant_service_newest; DROP INDEX span_runs_tenant_newest; DROP INDEX span_runs_tenant_oldest;
             CREATE INDEX span_runs_tenant_service_max ON span_runs (tenant, service_name, max_start_ns);
             CREATE INDEX span_runs_tenant_max ON span_runs (tenant, max_start_ns); CREATE INDEX span_runs_tenant_min ON span_runs (tenant, min_start_ns);`);
    db.close();
    db = openDatabase(path);
    const indexes = indexNames(db, 'span_runs');
    expect(indexes).toEqual(['span_runs_tenant_newest', 'span_runs_tenant_oldest', 'span_runs_tenant_service_newest', 'span_runs_unfiltered']);
    check();
    db.close();
  });

  it('takes old spans out of a run of records that keeps newer ones, and drops a run all older', () => {
    const db = openDatabase(join(tempDir(), 'retention.db'));
    const store = new SqliteStore(db);
    // One resource and scope: one group, so one run.
    const fresh = at({ serviceName: 'kept', name: 'fresh', startTimeUnixNano: NOW });
    const same = { serviceName: 'kept', traceId: fresh.traceId, resource: fresh.resource, scope: fresh.scope };
    const stale = at({ ...same, name: 'stale', startTimeUnixNano: NOW - 3n * DAY });
    const fresher = at({ ...same, name: 'fresher', startTimeUnixNano: NOW + 1n });
    write(store, [fresh, stale, fresher]);
    expect(runs(db)).toEqual([{ service: 'kept', spans: '3 records' }]);
    expect(tableStats(db)).toMatchObject({ spans: 3, oldestSpanNs: NOW - 3n * DAY });
    expect(store.applyRetention(1)).toEqual({ spans: 1, logs: 0 });
    expect(runs(db)).toEqual([{ service: 'kept', spans: '2 records' }]);
    expect(tableStats(db)).toMatchObject({ spans: 2, oldestSpanNs: NOW });
    expect(spanIds(db, fresh.traceId)).toEqual([fresh.spanId, fresher.spanId].sort());
    expect(found(db, { service: 'kept', name: 'stale', limit: 5 })).toEqual([]);
    expect(found(db, { service: 'kept', name: 'fresher', limit: 5 })).toEqual([fresh.traceId]);
    // A run all older than the cutoff goes whole, its records with it.
    write(store, [at({ serviceName: 'gone', startTimeUnixNano: NOW - 2n * DAY })]);
    expect(store.applyRetention(1).spans).toBe(1);
    expect(runs(db)).toEqual([{ service: 'kept', spans: '2 records' }]);
    expect((db.prepare('SELECT count(*) AS n FROM run_spans').get() as { n: number }).n).toBe(1);
    db.close();
  });

  it('takes old spans out of a run of rows that keeps newer ones, and the run never covers rows written after', () => {
    const db = openDatabase(join(tempDir(), 'retention-rows.db'));
    const store = new SqliteStore(db);
    // One run of rows (an older version's): a new span first, then an old one (the table's largest rowid, freed by retention).
    const fresh = at({ serviceName: 'kept', name: 'fresh', startTimeUnixNano: NOW });
    const stale = at({ serviceName: 'kept', name: 'stale', traceId: fresh.traceId, startTimeUnixNano: NOW - 3n * DAY });
    writeSpanRows(db, [fresh, stale]);
    expect(runs(db)).toEqual([{ service: 'kept', spans: 'rows 1-2' }]);
    expect(tableStats(db).oldestSpanNs).toBe(NOW - 3n * DAY);
    expect(store.applyRetention(1)).toEqual({ spans: 1, logs: 0 });
    expect(runs(db)).toEqual([{ service: 'kept', spans: 'rows 1-1' }]);
    expect(tableStats(db).oldestSpanNs).toBe(NOW);
    // The next row of spans takes rowid 2 again: another service's, found under its own service only.
    const later = at({ serviceName: 'later', name: 'fresh', startTimeUnixNano: NOW + 5n });
    writeSpanRows(db, [later]);
    expect(found(db, { service: 'kept', limit: 5 })).toEqual([fresh.traceId]);
    expect(found(db, { service: 'later', limit: 5 })).toEqual([later.traceId]);
    expect(found(db, { service: 'kept', name: 'stale', limit: 5 })).toEqual([]);
    writeSpanRows(db, [at({ serviceName: 'gone', startTimeUnixNano: NOW - 2n * DAY })]);
    expect(store.applyRetention(1).spans).toBe(1);
    expect(runs(db).map((r) => (r as { service: string }).service)).toEqual(['kept', 'later']);
    db.close();
  });

  it('stores a span once: sent again, in another run of its trace, twice in a run, or already a row of spans', () => {
    const db = openDatabase(join(tempDir(), 'once.db'));
    const store = new SqliteStore(db);
    const a = at({ serviceName: 's', name: 'a', startTimeUnixNano: NOW });
    const same = { serviceName: 's', traceId: a.traceId, resource: a.resource, scope: a.scope };
    const b = at({ ...same, name: 'b', startTimeUnixNano: NOW + 1n });
    const c = at({ ...same, name: 'c', startTimeUnixNano: NOW + 2n });
    const old = at({ ...same, name: 'old', startTimeUnixNano: NOW - 1n });
    writeSpanRows(db, [old]);
    write(store, [a, b]);
    // Sent again whole, again with a new span, with a span twice, and with the older version's row.
    write(store, [a, b]);
    write(store, [b, c, c, old]);
    expect(spanIds(db, a.traceId)).toEqual([a.spanId, b.spanId, c.spanId, old.spanId].sort());
    expect(runs(db)).toEqual([
      { service: 's', spans: 'rows 1-1' },
      { service: 's', spans: '2 records' },
      { service: 's', spans: '1 records' },
    ]);
    expect(tableStats(db).spans).toBe(4);
    // The run of c keeps c's newest start and its terms alone.
    expect(found(db, { name: 'c', startNano: NOW + 2n, limit: 5 })).toEqual([a.traceId]);
    expect(searchTraces(db, DEFAULT_TENANT, { limit: 5 })[0]).toMatchObject({ traceId: a.traceId, spanCount: 4 });
    // A new trace's span twice in one batch, in two runs of it (another trace's span between
    // them): the batch's runs are written when it ends, so the second finds the first among them.
    const d = at({ serviceName: 's', name: 'd', startTimeUnixNano: NOW + 3n });
    const e = at({ serviceName: 's', traceId: d.traceId, resource: d.resource, scope: d.scope, name: 'e', startTimeUnixNano: NOW + 4n });
    write(store, [d, at({ serviceName: 's', startTimeUnixNano: NOW }), d, e]);
    expect(spanIds(db, d.traceId)).toEqual([d.spanId, e.spanId].sort());
    expect(tableStats(db).spans).toBe(7);
    db.close();
  });

  it('fills the pages of span records with the runs of each batch, whatever sizes they arrive in', () => {
    const db = openDatabase(join(tempDir(), 'pages.db'));
    const store = new SqliteStore(db);
    // Runs of one span each, 4 to 20 KB of records (a 32 KiB page holds one to seven), in batches.
    let seed = 7;
    const size = () => 4_000 + ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) % 16_000);
    const written: SpanRow[] = [];
    for (let batch = 0; batch < 6; batch++) {
      const spans = Array.from({ length: 24 }, (_, i) => at({ serviceName: 's', startTimeUnixNano: NOW + BigInt(batch * 24 + i), attributes: [{ key: 'pad', value: { stringValue: 'x'.repeat(size()) } }] }));
      write(store, spans);
      written.push(...spans);
    }
    const leaves = db.prepare("SELECT pgsize, unused FROM dbstat WHERE name = 'run_spans' AND pagetype = 'leaf'").all() as { pgsize: number; unused: number }[];
    const unused = leaves.reduce((n, p) => n + p.unused, 0) - Math.max(...leaves.map((p) => p.unused));
    const bytes = leaves.reduce((n, p) => n + p.pgsize, 0);
    // In arrival order a row that does not fit the last page starts a new one: ~20 % left free here (0.21; 0.04 packed).
    expect(unused / bytes).toBeLessThan(0.08);
    for (const s of written.slice(0, 30)) expect(spanIds(db, s.traceId)).toEqual([s.spanId]);
    expect(tableStats(db).spans).toBe(written.length);
    db.close();
  });

  it('scans the rows of spans and then the runs of records page by page, each span once', () => {
    const db = openDatabase(join(tempDir(), 'scan.db'));
    const store = new SqliteStore(db);
    const rows = [0, 1, 2].map((i) => at({ serviceName: 's', startTimeUnixNano: NOW + BigInt(i) }));
    writeSpanRows(db, rows);
    const first = at({ serviceName: 's', startTimeUnixNano: NOW + 10n });
    const records = [
      first,
      ...[1, 2, 3, 4].map((i) => at({ ...(i % 2 ? { serviceName: 's', resource: first.resource, scope: first.scope } : { serviceName: 'other' }), traceId: first.traceId, startTimeUnixNano: NOW + 10n + BigInt(i) })),
    ];
    write(store, records);
    const seen: string[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = READS.scanSpans(db, [DEFAULT_TENANT, { service: 's', limit: 2, ...(after === undefined ? {} : { after }) }]);
      seen.push(...page.rows.map((s) => s.spanId));
      after = page.next;
      if (page.done) break;
    }
    // The rows first, then the runs, of one batch in the order they were written (packRuns).
    const ids = (spans: SpanRow[]) => spans.map((s) => s.spanId);
    expect(seen.slice(0, rows.length)).toEqual(ids(rows));
    expect(seen.slice(rows.length).sort()).toEqual(ids(records.filter((s) => s.serviceName === 's')).sort());
    // Spans written after the scan's end are found from its last cursor.
    const later = at({ serviceName: 's', startTimeUnixNano: NOW + 20n });
    write(store, [later]);
    expect(READS.scanSpans(db, [DEFAULT_TENANT, { service: 's', limit: 5, after: after! }]).rows.map((s) => s.spanId)).toEqual([later.spanId]);
    // A time range cuts spans inside a run.
    const windowed = READS.scanSpans(db, [DEFAULT_TENANT, { startNano: NOW + 11n, endNano: NOW + 13n, limit: 10 }]).rows.map((s) => s.spanId);
    expect(windowed.sort()).toEqual(ids(records.slice(1, 4)).sort());
    expect(() => READS.scanSpans(db, [DEFAULT_TENANT, { limit: 1, after: 'r1' }])).toThrow(/not a sqlite scan cursor/);
    db.close();
  });

  it('finds a call\'s parent in another run, outside the range, or among rows of spans', () => {
    const db = openDatabase(join(tempDir(), 'deps.db'));
    const store = new SqliteStore(db);
    // Parents: a row of spans (an older version's), and a run older than the range.
    const rowParent = at({ serviceName: 'rows', startTimeUnixNano: NOW });
    writeSpanRows(db, [rowParent]);
    const oldParent = at({ serviceName: 'old', startTimeUnixNano: NOW - DAY });
    write(store, [oldParent]);
    // Children in the range, each in a run of its own service, with a sibling of the same service.
    const a = at({ serviceName: 'a', traceId: rowParent.traceId, parentSpanId: rowParent.spanId, startTimeUnixNano: NOW + 1n });
    const a2 = at({ serviceName: 'a', traceId: rowParent.traceId, parentSpanId: a.spanId, resource: a.resource, scope: a.scope, startTimeUnixNano: NOW + 2n });
    const b = at({ serviceName: 'b', traceId: oldParent.traceId, parentSpanId: oldParent.spanId, startTimeUnixNano: NOW + 3n });
    const c = at({ serviceName: 'c', traceId: oldParent.traceId, parentSpanId: b.spanId, startTimeUnixNano: NOW + 4n });
    write(store, [a, a2, b]);
    write(store, [c]);
    // Children that are rows of spans (as in a file upgraded in the middle of a trace), their
    // parents in a run of records in the range and in one before it.
    const rowChild = at({ serviceName: 'rows-child', traceId: oldParent.traceId, parentSpanId: c.spanId, startTimeUnixNano: NOW + 5n });
    const rowChildOfOld = at({ serviceName: 'rows-child', traceId: oldParent.traceId, parentSpanId: oldParent.spanId, startTimeUnixNano: NOW + 6n });
    writeSpanRows(db, [rowChild, rowChildOfOld]);
    const range = { startNano: NOW - 10n, endNano: NOW + 10n };
    const expected = [
      { parent: 'b', child: 'c', callCount: 1 },
      { parent: 'c', child: 'rows-child', callCount: 1 },
      { parent: 'old', child: 'b', callCount: 1 },
      { parent: 'old', child: 'rows-child', callCount: 1 },
      { parent: 'rows', child: 'a', callCount: 1 },
    ];
    expect(getDependencies(db, DEFAULT_TENANT, range)).toEqual(expected);
    // Read in batches of a span or two (a busy day's window is read 65,536 spans at a time): a
    // parent in a batch resolved before, or not read yet, is found all the same.
    expect(getDependencies(db, DEFAULT_TENANT, range, 1)).toEqual(expected);
    expect(getDependencies(db, DEFAULT_TENANT, range, 2)).toEqual(expected);
    db.close();
  });

  it('passes over runs of records that cannot hold a wanted name or duration without reading their records', () => {
    const db = openDatabase(join(tempDir(), 'skip.db'));
    const store = new SqliteStore(db);
    const slow = at({ serviceName: 's', name: 'slow op', startTimeUnixNano: NOW, endTimeUnixNano: NOW + 5_000_000_000n });
    const others = Array.from({ length: 20 }, (_, i) => at({ serviceName: 's', name: `op ${i}`, startTimeUnixNano: NOW + BigInt(i + 1) }));
    write(store, [slow, ...others]);
    // The other runs' records are overwritten with bytes that are not span records: a search that
    // read one would report it unreadable.
    db.prepare('UPDATE run_spans SET records = ? WHERE run <> (SELECT rowid FROM span_runs WHERE trace_id = ?)').run(Buffer.from('not records'), slow.traceId);
    expect(found(db, { service: 's', name: 'slow op', limit: 5 })).toEqual([slow.traceId]);
    expect(found(db, { minDurationNano: 1_000_000_000n, limit: 5 })).toEqual([slow.traceId]);
    expect(takeUnreadable()).toBeUndefined();
    // The run that may hold the name is read: its span is lost, and the search answers without it.
    expect(found(db, { service: 's', name: 'op 3', limit: 5 })).toEqual([]);
    const op3 = (db.prepare('SELECT rowid AS id FROM span_runs WHERE trace_id = ?').get(others[3]!.traceId) as { id: number }).id;
    expect(takeUnreadable()).toEqual([{ key: `run ${op3}`, signal: 'traces', lost: 1, message: 'not a span record at byte 0' }]);
    db.close();
  });

  it('gives every span of a file from before runs a run when it is opened, and drops the per-span time indexes', () => {
    const path = join(tempDir(), 'before.db');
    let db = openDatabase(path);
    const spans = [at({ serviceName: 'old', name: 'a', startTimeUnixNano: NOW - 20n }), at({ serviceName: 'old', name: 'b', startTimeUnixNano: NOW - 10n })];
    // The file as a version before runs left it: rows of spans, per-span time indexes, no runs.
    db.exec(`DROP TABLE span_runs; CREATE INDEX spans_tenant_service_start ON spans (tenant, service_name, start_ns);
             CREATE INDEX spans_tenant_start ON spans (tenant, start_ns);`);
    writeSpanRows(db, spans, { runs: false });
    db.close();
    db = openDatabase(path);
    expect(runs(db)).toEqual([
      { service: 'old', spans: 'rows 1-1' },
      { service: 'old', spans: 'rows 2-2' },
    ]);
    const indexes = indexNames(db, 'spans');
    expect(indexes).toEqual(['spans_tenant_trace_span']);
    expect(found(db, { service: 'old', limit: 5 })).toEqual([spans[1]!.traceId, spans[0]!.traceId]);
    // A row of spans has no kind column: a kind condition reads its document.
    expect(found(db, { service: 'old', kind: spans[0]!.kind, limit: 5 })).toEqual([spans[1]!.traceId, spans[0]!.traceId]);
    expect(found(db, { service: 'old', kind: 4, limit: 5 })).toEqual([]);
    // Runs without their trace (as a build of runs before it made them) are made anew.
    // (Through a connection of its own: this version's keeps the trace index by triggers that read the trace.)
    db.close();
    db = new DatabaseSync(path);
    db.exec('ALTER TABLE span_runs DROP COLUMN trace_id; ALTER TABLE span_runs DROP COLUMN group_id; ALTER TABLE span_runs DROP COLUMN span_count; ALTER TABLE span_runs DROP COLUMN max_duration_ns');
    db.close();
    db = openDatabase(path);
    expect(found(db, { service: 'old', limit: 1 })).toEqual([spans[1]!.traceId]);
    expect(runs(db)).toHaveLength(2);
    // This version writes runs of records beside them.
    const store = new SqliteStore(db);
    const next = at({ serviceName: 'old', name: 'c', startTimeUnixNano: NOW });
    write(store, [next]);
    expect(found(db, { service: 'old', limit: 1 })).toEqual([next.traceId]);
    // An older version (before runs) opens the file again: it makes its time index anew and writes
    // a row of spans without a run. Opened by this version once more, the runs of rows are made
    // anew and that span is found too; the run of records stays.
    const older = at({ serviceName: 'old', name: 'd', startTimeUnixNano: NOW + 1n });
    db.exec('CREATE INDEX spans_tenant_start ON spans (tenant, start_ns)');
    writeSpanRows(db, [older], { runs: false });
    expect(found(db, { service: 'old', limit: 1 })).toEqual([next.traceId]);
    db.close();
    db = openDatabase(path);
    expect(found(db, { service: 'old', limit: 1 })).toEqual([older.traceId]);
    expect(runs(db)).toEqual([
      { service: 'old', spans: '1 records' },
      { service: 'old', spans: 'rows 1-1' },
      { service: 'old', spans: 'rows 2-2' },
      { service: 'old', spans: 'rows 3-3' },
    ]);
    expect(found(db, { service: 'old', limit: 5 })).toHaveLength(4);
    expect(tableStats(db).spans).toBe(4);
    db.close();
  });

  it('finds, and retention deletes, the spans a first-release version (before tenants) wrote after a downgrade', () => {
    const path = join(tempDir(), 'rollback.db');
    let db = openDatabase(path);
    const store = new SqliteStore(db);
    const next = at({ serviceName: 'new', name: 'c', startTimeUnixNano: NOW });
    write(store, [next]);
    db.close();
    // The version of 2026-11-23 opens the file: it makes its own indexes anew (none led by the
    // tenant, whose column it does not know: its rows take the column's default) and writes rows
    // of spans without runs, one of them older than the retention.
    db = new DatabaseSync(path);
    db.exec(`CREATE UNIQUE INDEX spans_trace_span ON spans (trace_id, span_id);
             CREATE INDEX spans_service_start ON spans (service_name, start_ns);
             CREATE INDEX spans_start ON spans (start_ns);`);
    const DAY = 86_400_000_000_000n;
    const older = [at({ serviceName: 'rolled back', name: 'd', startTimeUnixNano: NOW + 1n }), at({ serviceName: 'rolled back', name: 'e', startTimeUnixNano: NOW - 3n * DAY })];
    writeSpanRows(db, older, { runs: false });
    db.close();
    // This version again: its searches find them, and its retention deletes the old one.
    db = openDatabase(path);
    expect(found(db, { service: 'rolled back', startNano: NOW - 4n * DAY, limit: 5 })).toEqual([older[0]!.traceId, older[1]!.traceId]);
    expect(found(db, { limit: 1 })).toEqual([older[0]!.traceId]);
    expect(new SqliteStore(db).applyRetention(1, Number(NOW / 1_000_000n))).toEqual({ spans: 1, logs: 0 });
    expect(tableStats(db).spans).toBe(2);
    expect(found(db, { service: 'rolled back', startNano: NOW - 4n * DAY, limit: 5 })).toEqual([older[0]!.traceId]);
    // Its indexes not led by the tenant are gone (a unique one on the ids alone would refuse
    // another tenant's span of the same ids).
    expect(indexNames(db, 'spans')).toEqual(['spans_tenant_trace_span']);
    db.close();
  });
});
