// The SQLite attribute index (a Bloom filter of its spans' attribute terms on each span run):
// searches find exactly what the documents say, whatever the filters keep (value prefixes,
// unrendered doubles and maps), and a search for a value nobody has parses no document. Each case
// runs on both chunk formats the store writes: the decode workers' `otlp` chunks (terms read from
// the protobuf in the write thread) and JSON lines from an older version's write-ahead log (terms
// from the parsed documents).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import type { AnyValue, SpanRow } from '../../src/model/rows.ts';
import type { RowEncoder } from '../../src/storage/encoders.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { createEncoder as createLineEncoder } from '../../src/storage/rowjson.ts';
import { getTrace, searchTraces, takeUnreadable } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase, openReadOnly } from '../../src/storage/sqlite/store.ts';
import { attributeTerm, bloomHas } from '../../src/storage/sqlite/terms.ts';
import { makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';

const str = (key: string, v: string) => ({ key, value: { stringValue: v } });
/** The runs' filters (null: a run without one). */
const filters = (db: DatabaseSync) => (db.prepare('SELECT attr_filter AS f FROM span_runs').all() as { f: Uint8Array | null }[]).map((r) => r.f);
/** How many runs' filters may hold the term of this key and value. */
const holding = (db: DatabaseSync, key: string, value: string) => {
  const [h1, h2] = attributeTerm(key, value);
  return filters(db).filter((f) => f !== null && bloomHas(f, h1, h2)).length;
};
/** Makes the file as a version from before the filters left it: runs without the column, the FTS5 attribute index of that version (or of the one before). */
function asBeforeFilters(db: DatabaseSync, ftsTable: 'span_terms' | 'span_attributes'): void {
  db.exec('DROP INDEX span_runs_unfiltered; ALTER TABLE span_runs DROP COLUMN attr_filter');
  db.exec(`CREATE VIRTUAL TABLE ${ftsTable} USING fts5(terms, content='', contentless_delete=1, detail='none', tokenize='ascii')`);
}

const FORMATS: [string, () => RowEncoder][] = [
  ['otlp chunks', () => createProtoEncoder({})],
  ['JSON lines of an older version', createLineEncoder],
];

describe.each(FORMATS)('sqlite attribute index, %s', (_format, createEncoder) => {
  function write(store: SqliteStore, spans: SpanRow[]): void {
    expect(store.writeSpans(createEncoder().encodeSpans(spans).map((c) => c.data)).kind).toBe('success');
  }

  it('finds exact values beyond the indexed prefix, astral characters included, and never a prefix twin', () => {
    const db = openDatabase(join(tempDir(), 'attrs.db'));
    const store = new SqliteStore(db);
    const prefix = '😀'.repeat(127) + 'x'.repeat(10);
    const a = makeSpan({ attributes: [str('sql', prefix + 'A')] });
    const b = makeSpan({ attributes: [str('sql', prefix + 'B')] });
    const c = makeSpan({ attributes: [str('emoji', '😀'.repeat(200))] });
    write(store, [a, b, c]);
    const find = (key: string, value: string) => searchTraces(db, DEFAULT_TENANT, { attributes: [{ key, value }], limit: 10 }).map((t) => t.traceId);
    expect(find('sql', prefix + 'A')).toEqual([a.traceId]);
    expect(find('sql', prefix + 'B')).toEqual([b.traceId]);
    expect(find('sql', prefix)).toEqual([]);
    expect(find('emoji', '😀'.repeat(200))).toEqual([c.traceId]);
    expect(find('emoji', '😀'.repeat(199))).toEqual([]);
    db.close();
  });

  it('answers doubles, arrays and maps from the documents, and needs every condition to hold on one span', () => {
    const db = openDatabase(join(tempDir(), 'attrs.db'));
    const store = new SqliteStore(db);
    const s = makeSpan({ attributes: [{ key: 'ratio', value: { doubleValue: 0.25 } }, { key: 'tags', value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '2' }] } } }, str('env', 'prod')] });
    const other = makeSpan({ traceId: s.traceId, attributes: [str('region', 'eu')] });
    write(store, [s, other]);
    const find = (attributes: { key: string; value: string }[]) => searchTraces(db, DEFAULT_TENANT, { attributes, limit: 10 }).map((t) => t.traceId);
    expect(find([{ key: 'ratio', value: '0.25' }])).toEqual([s.traceId]);
    expect(find([{ key: 'tags', value: '["a",2]' }])).toEqual([s.traceId]);
    expect(find([{ key: 'env', value: 'prod' }, { key: 'ratio', value: '0.25' }])).toEqual([s.traceId]);
    // Both hold in the trace, but on different spans: no match, as on every other store.
    expect(find([{ key: 'env', value: 'prod' }, { key: 'region', value: 'eu' }])).toEqual([]);
    db.close();
  });

  it('filters the runs of a file written before the filters existed when it is opened, and forgets spans retention deletes', () => {
    const path = join(tempDir(), 'old.db');
    const db = openDatabase(path);
    const store = new SqliteStore(db);
    const old = makeSpan({ startTimeUnixNano: 1_000_000_000n, attributes: [str('k', 'old')] });
    const fresh = makeSpan({ attributes: [str('k', 'fresh')] });
    write(store, [old, fresh]);
    asBeforeFilters(db, 'span_terms');
    db.close();
    const reopened = openDatabase(path);
    expect(filters(reopened).every((f) => f !== null)).toBe(true);
    const find = (value: string) => searchTraces(reopened, DEFAULT_TENANT, { attributes: [{ key: 'k', value }], limit: 10 }).map((t) => t.traceId);
    expect(find('old')).toEqual([old.traceId]);
    expect(find('fresh')).toEqual([fresh.traceId]);
    expect(new SqliteStore(reopened).applyRetention(1).spans).toBe(1);
    expect(holding(reopened, 'k', 'old')).toBe(0);
    expect(find('fresh')).toEqual([fresh.traceId]);
    reopened.close();
  });

  it('finds each span of a trace written together by its own attributes, also after retention took the trace\'s older spans', () => {
    const db = openDatabase(join(tempDir(), 'runs.db'));
    const store = new SqliteStore(db);
    const day = 86_400_000_000_000n;
    const now = BigInt(Date.now()) * 1_000_000n;
    const t = makeSpan({ startTimeUnixNano: now - 3n * day, endTimeUnixNano: now - 3n * day + 5n, attributes: [str('k', 'old')] });
    const newer = makeSpan({ traceId: t.traceId, startTimeUnixNano: now, endTimeUnixNano: now + 5n, attributes: [str('k', 'new')] });
    const other = makeSpan({ startTimeUnixNano: now, endTimeUnixNano: now + 5n, attributes: [str('k', 'other')] });
    // One run of the trace, then another trace, then the trace again (a second run).
    const again = makeSpan({ traceId: t.traceId, startTimeUnixNano: now - 1000n, endTimeUnixNano: now, attributes: [str('k', 'again')] });
    write(store, [t, newer, other, again]);
    const find = (value: string) => searchTraces(db, DEFAULT_TENANT, { attributes: [{ key: 'k', value }], limit: 10 }).map((x) => x.traceId);
    for (const v of ['old', 'new', 'again']) expect(find(v)).toEqual([t.traceId]);
    expect(find('other')).toEqual([other.traceId]);
    expect(store.applyRetention(1).spans).toBe(1);
    expect(find('old')).toEqual([]);
    expect(find('new')).toEqual([t.traceId]);
    expect(find('again')).toEqual([t.traceId]);
    db.close();
  });

  it('drops the FTS5 attribute index of a file from before the filters when it is opened', () => {
    const path = join(tempDir(), 'hex.db');
    const db = openDatabase(path);
    const a = makeSpan({ attributes: [str('k', 'v1')] });
    write(new SqliteStore(db), [a, makeSpan({ attributes: [str('k', 'v2')] })]);
    // The version before the hashed terms kept hex terms in span_attributes.
    asBeforeFilters(db, 'span_attributes');
    db.close();
    const reopened = openDatabase(path);
    expect(reopened.prepare("SELECT name FROM sqlite_master WHERE name LIKE 'span_attributes%' OR name LIKE 'span_terms%'").all()).toEqual([]);
    expect(holding(reopened, 'k', 'v1')).toBe(1);
    expect(searchTraces(reopened, DEFAULT_TENANT, { attributes: [{ key: 'k', value: 'v1' }], limit: 10 }).map((t) => t.traceId)).toEqual([a.traceId]);
    reopened.close();
  });

  it('answers a search for a value no span has from the runs\' filters, reading no document', () => {
    const path = join(tempDir(), 'plan.db');
    const db = openDatabase(path);
    const store = new SqliteStore(db);
    for (let i = 0; i < 4; i++) write(store, Array.from({ length: 5000 }, () => makeSpan({ serviceName: 'many' })));
    db.close();
    // A read-only connection, as the read threads have. The documents are made unreadable
    // (their bytes are not a span): a search that read one would report it.
    const rw = new DatabaseSync(path);
    rw.exec("UPDATE spans SET doc = x'ff'");
    rw.close();
    const ro = openReadOnly(path);
    expect(holding(ro, 'str', 'no such value') + holding(ro, 'str', '')).toBe(0);
    expect(searchTraces(ro, DEFAULT_TENANT, { attributes: [{ key: 'str', value: 'no such value' }], limit: 20 })).toEqual([]);
    expect(takeUnreadable()).toBeUndefined();
    ro.close();
  });

  it('stores a span nested beyond SQLite\'s JSON depth limit instead of failing its batch', () => {
    const db = openDatabase(join(tempDir(), 'deep.db'));
    const store = new SqliteStore(db);
    // receiver.maxNestingDepth allows 1000 levels; SQLite's JSON parser stops at 1000 JSON levels.
    let v: AnyValue = { stringValue: 'bottom' };
    for (let i = 0; i < 400; i++) v = { kvlistValue: { values: [{ key: 'k', value: v }] } };
    const deep = makeSpan({ attributes: [str('env', 'deep'), { key: 'nested', value: v }] });
    const flat = makeSpan({ attributes: [str('env', 'flat')] });
    write(store, [deep, flat]);
    expect(searchTraces(db, DEFAULT_TENANT, { attributes: [{ key: 'env', value: 'flat' }], limit: 10 }).map((t) => t.traceId)).toEqual([flat.traceId]);
    expect(getTrace(db, DEFAULT_TENANT, deep.traceId).map((s) => s.spanId)).toEqual([deep.spanId]);
    db.close();
  });

  it('with storage.sqlite.attributeIndex off writes no filters and still finds by the documents; turned on again, filters what is stored', () => {
    const path = join(tempDir(), 'off.db');
    const off = openDatabase(path, { attributeIndex: false });
    const store = new SqliteStore(off, { indexAttributes: false });
    const a = makeSpan({ attributes: [str('k', 'v1')] });
    write(store, [a, makeSpan({ attributes: [str('k', 'v2')] })]);
    expect(filters(off)).toEqual([null, null]);
    expect(searchTraces(off, DEFAULT_TENANT, { attributes: [{ key: 'k', value: 'v1' }], limit: 10 }).map((t) => t.traceId)).toEqual([a.traceId]);
    expect(new SqliteStore(off, { indexAttributes: false }).applyRetention(1).spans).toBe(0);
    off.close();
    const on = openDatabase(path);
    expect(holding(on, 'k', 'v1')).toBe(1);
    expect(searchTraces(on, DEFAULT_TENANT, { attributes: [{ key: 'k', value: 'v1' }], limit: 10 }).map((t) => t.traceId)).toEqual([a.traceId]);
    on.close();
  });
});

describe('sqlite attribute index filled at open', () => {
  it('fills the filters of many runs within a small heap', () => {
    // A file of 300,000 runs without filters (a version from before them: one run per stored
    // span; or storage.sqlite.attributeIndex off for a while), opened by a process whose heap
    // (32 MiB here) cannot hold them all at once: a large file's, in a pod's default heap.
    const path = join(tempDir(), 'many.db');
    const db = openDatabase(path);
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
             INSERT INTO span_runs (tenant, trace_id, service_name, min_start_ns, max_start_ns, first_rowid, last_rowid)
             SELECT '${DEFAULT_TENANT}', printf('%032x', i), 'svc', i, i, 0, 0 FROM n`);
    db.close();
    const store = new URL('../../src/storage/sqlite/store.ts', import.meta.url).pathname;
    const open = `import { openDatabase } from ${JSON.stringify(store)}; openDatabase(${JSON.stringify(path)}).close();`;
    execFileSync(process.execPath, ['--max-old-space-size=32', '--input-type=module', '-e', open], { stdio: 'pipe' });
    const after = new DatabaseSync(path);
    expect(after.prepare('SELECT count(*) AS n, count(attr_filter) AS filtered FROM span_runs').get()).toEqual({ n: 300000, filtered: 300000 });
    after.close();
  }, 60_000);
});
