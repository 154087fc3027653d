// SQLite listings beside the contract: the operations table answers from its key, dependencies
// from the span indexes, retention prunes listings, and a file from before the table gets it filled.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEncoder as createRecordEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { createEncoder } from '../../src/storage/rowjson.ts';
import { DEPENDENCIES_SQL, getOperations, getServices, getTrace } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const DAY = 86_400_000_000_000n;

describe('sqlite listings', () => {
  it('answers services and operations from the operations key and dependencies from span indexes', () => {
    const db = openDatabase(join(tempDir(), 'plan.db'));
    const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join(' | ');
    expect(plan("SELECT DISTINCT service_name FROM operations WHERE tenant = 't' ORDER BY service_name")).not.toMatch(/spans|TEMP B-TREE/);
    expect(plan("SELECT name, kind FROM operations WHERE tenant = 't' AND service_name = 'a' ORDER BY name, kind")).toMatch(/SEARCH operations USING PRIMARY KEY \(tenant=\? AND service_name=\?\)/);
    const deps = plan(DEPENDENCIES_SQL);
    expect(deps).toMatch(/SEARCH r USING INDEX span_runs_tenant_newest \(tenant=\? AND <expr>>\? AND <expr><\?\)/);
    expect(deps).toMatch(/SEARCH c USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/);
    expect(deps).toMatch(/SEARCH p USING INDEX spans_tenant_trace_span \(tenant=\? AND trace_id=\? AND span_id=\?\)/);
    expect(deps).not.toMatch(/SCAN (r|c|p)\b/);
  });

  it('keeps one operations row per service, name and kind, pruned with the spans by retention', () => {
    const db = openDatabase(join(tempDir(), 'ops.db'));
    const store = new SqliteStore(db);
    const now = BigInt(Date.now()) * 1_000_000n;
    const spans = [
      makeSpan({ serviceName: 'old', name: 'gone', startTimeUnixNano: now - 10n * DAY }),
      ...Array.from({ length: 50 }, () => makeSpan({ serviceName: 'new', name: 'op', kind: 2, startTimeUnixNano: now - DAY })),
    ];
    expect(store.writeSpans(createEncoder().encodeSpans(spans).map((c) => c.data)).kind).toBe('success');
    const ops = () => db.prepare('SELECT service_name, name, kind FROM operations ORDER BY 1').all();
    expect(ops()).toEqual([
      { service_name: 'new', name: 'op', kind: 2 },
      { service_name: 'old', name: 'gone', kind: 2 },
    ]);
    store.applyRetention(7);
    expect(ops()).toEqual([{ service_name: 'new', name: 'op', kind: 2 }]);
  });

  it('lists only what stored spans hold: a span sent again with another name, kind or service adds no operation or service', async () => {
    // The store keeps a span's first copy; a later one under the same id (a client that reuses
    // span ids, or rewrote a span before sending it again) is left out, and so is its operation:
    // listed, a search for it would find nothing.
    const db = openDatabase(join(tempDir(), 'resent-ops.db'));
    const store = new SqliteStore(db);
    const enc = createRecordEncoder({});
    const first = makeSpan({ serviceName: 'shop', name: 'checkout', kind: 2 });
    const sibling = makeSpan({ traceId: first.traceId, resource: first.resource, scope: first.scope, serviceName: 'shop', name: 'pay', kind: 3 });
    expect(store.writeSpans(enc.encodeSpans([first]).map((c) => c.data)).kind).toBe('success');
    const resent = [
      { ...first, name: 'renamed' },
      { ...first, kind: 4 },
      { ...makeSpan({ serviceName: 'elsewhere', name: 'checkout', kind: 2 }), traceId: first.traceId, spanId: first.spanId },
    ];
    for (const again of resent) expect(store.writeSpans(enc.encodeSpans([again, sibling]).map((c) => c.data)).kind).toBe('success');
    expect(getTrace(db, 'default', first.traceId).map((s) => [s.serviceName, s.name, s.kind]).sort()).toEqual([['shop', 'checkout', 2], ['shop', 'pay', 3]]);
    expect(getServices(db, 'default')).toEqual(['shop']);
    expect(getOperations(db, 'default', { service: 'shop' })).toEqual([{ name: 'checkout', kind: 2 }, { name: 'pay', kind: 3 }]);
  });

  it('keeps the newest start of every operation of span records, however many a batch holds', () => {
    // More operations than the store's cache of them has slots, each met first with an old span and
    // again, after all the others, with a recent one: retention must keep every one of them.
    const db = openDatabase(join(tempDir(), 'many-ops.db'));
    const store = new SqliteStore(db);
    const now = BigInt(Date.now()) * 1_000_000n;
    const names = Array.from({ length: 6000 }, (_, i) => `op-${i}`);
    const spans = [
      ...names.map((name) => makeSpan({ serviceName: 'svc', name, startTimeUnixNano: now - 10n * DAY })),
      ...names.map((name) => makeSpan({ serviceName: 'svc', name, startTimeUnixNano: now - DAY })),
    ];
    const chunks = createRecordEncoder({}).encodeSpans(spans).map((c) => c.data);
    expect(store.writeSpans(chunks).kind).toBe('success');
    store.applyRetention(7);
    const kept = db.prepare("SELECT name FROM operations WHERE service_name = 'svc'").all() as { name: string }[];
    expect(kept.map((r) => r.name).sort()).toEqual([...names].sort());
  });

  it('fills the operations table of a file written before it existed', () => {
    const path = join(tempDir(), 'upgrade.db');
    let db = openDatabase(path);
    const spans = [makeSpan({ serviceName: 'legacy', name: 'a', kind: 4 }), makeSpan({ serviceName: 'legacy', name: 'b', kind: 5 })];
    new SqliteStore(db).writeSpans(createEncoder().encodeSpans(spans).map((c) => c.data));
    db.exec('DROP TABLE operations');
    db.close();
    db = openDatabase(path);
    expect(db.prepare('SELECT service_name, name, kind FROM operations ORDER BY name').all()).toEqual([
      { service_name: 'legacy', name: 'a', kind: 4 },
      { service_name: 'legacy', name: 'b', kind: 5 },
    ]);
  });

  it('fills the operations table of a file written before it existed when the first open of it stopped half way', () => {
    const path = join(tempDir(), 'upgrade-stopped.db');
    let db = openDatabase(path);
    const old = BigInt(Date.now()) * 1_000_000n - 10n * DAY;
    const spans = [makeSpan({ serviceName: 'legacy', name: 'a', kind: 4, startTimeUnixNano: old, endTimeUnixNano: old + 1n }), makeSpan({ serviceName: 'legacy', name: 'b', kind: 5 })];
    new SqliteStore(db).writeSpans(createEncoder().encodeSpans(spans).map((c) => c.data));
    db.exec('DROP TABLE operations');
    db.close();
    // The first open of the upgraded file fails after it made the table and before it filled it
    // (here the trace index's file cannot be opened; a full disk or a kill during a long open
    // stops it there too). The next open fills it: the services and operations are listed, and
    // retention, which finds tenants through the table, reaches the spans.
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}-traces${suffix}`, { force: true });
    mkdirSync(`${path}-traces`);
    expect(() => openDatabase(path)).toThrow();
    rmSync(`${path}-traces`, { recursive: true });
    db = openDatabase(path);
    expect(getServices(db, 'default')).toEqual(['legacy']);
    expect(getOperations(db, 'default', { service: 'legacy' })).toEqual([{ name: 'a', kind: 4 }, { name: 'b', kind: 5 }]);
    expect(new SqliteStore(db).applyRetention(7).spans).toBe(1);
    db.close();
  });
});
