// The SQLite attribute index (span_terms, FTS5): searches find exactly what the documents
// say, whatever the index keeps (value prefixes, unrendered doubles and maps), and a search for a
// value nobody has never parses a document. Each case runs on both chunk formats the store
// writes: the decode workers' `otlp` chunks (terms read from the protobuf in the write thread) and
// JSON lines from an older version's write-ahead log (terms built by SQLite's JSON functions).
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import type { AnyValue, SpanRow } from '../../src/model/rows.ts';
import type { RowEncoder } from '../../src/storage/encoders.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { createEncoder as createLineEncoder } from '../../src/storage/rowjson.ts';
import { searchTraces } from '../../src/storage/sqlite/reads.ts';
import { ATTRIBUTE_INDEX_TABLE, SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { attributeTerm } from '../../src/storage/sqlite/terms.ts';
import { makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';

const str = (key: string, v: string) => ({ key, value: { stringValue: v } });
const MATCH_SQL = `SELECT rowid FROM ${ATTRIBUTE_INDEX_TABLE} WHERE ${ATTRIBUTE_INDEX_TABLE} MATCH ?`;

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

  it('indexes the spans of a file written before the index existed when it is opened, and forgets spans retention deletes', () => {
    const path = join(tempDir(), 'old.db');
    const db = openDatabase(path);
    const store = new SqliteStore(db);
    const old = makeSpan({ startTimeUnixNano: 1_000_000_000n, attributes: [str('k', 'old')] });
    const fresh = makeSpan({ attributes: [str('k', 'fresh')] });
    write(store, [old, fresh]);
    // As a file from before this version: no attribute table at all.
    db.exec(`DROP TABLE ${ATTRIBUTE_INDEX_TABLE}`);
    db.close();
    const reopened = openDatabase(path);
    const find = (value: string) => searchTraces(reopened, DEFAULT_TENANT, { attributes: [{ key: 'k', value }], limit: 10 }).map((t) => t.traceId);
    expect(find('old')).toEqual([old.traceId]);
    expect(find('fresh')).toEqual([fresh.traceId]);
    expect(new SqliteStore(reopened).applyRetention(1).spans).toBe(1);
    expect(reopened.prepare(MATCH_SQL).all(`"${attributeTerm('k', 'old')}"`)).toEqual([]);
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

  it('replaces the hex-term index of a file from before the hashed terms when it is opened', () => {
    const path = join(tempDir(), 'hex.db');
    const db = openDatabase(path);
    const a = makeSpan({ attributes: [str('k', 'v1')] });
    write(new SqliteStore(db), [a, makeSpan({ attributes: [str('k', 'v2')] })]);
    // As that version left the file: its index is span_attributes, terms hex(key) 'x' hex(value).
    const hex = (v: string) => Buffer.from(v).toString('hex').toUpperCase();
    db.exec(`DROP TABLE ${ATTRIBUTE_INDEX_TABLE}`);
    db.exec("CREATE VIRTUAL TABLE span_attributes USING fts5(terms, content='', contentless_delete=1, detail='none', tokenize='ascii')");
    db.prepare("INSERT INTO span_attributes (rowid, terms) SELECT rowid, ? FROM spans WHERE span_id = ?").run(`${hex('k')}x${hex('v1')}`, a.spanId);
    db.close();
    const reopened = openDatabase(path);
    expect(reopened.prepare("SELECT name FROM sqlite_master WHERE name IN ('span_attributes', ?)").all(ATTRIBUTE_INDEX_TABLE)).toEqual([{ name: ATTRIBUTE_INDEX_TABLE }]);
    expect(reopened.prepare(MATCH_SQL).all(`"${attributeTerm('k', 'v1')}"`)).toHaveLength(1);
    expect(searchTraces(reopened, DEFAULT_TENANT, { attributes: [{ key: 'k', value: 'v1' }], limit: 10 }).map((t) => t.traceId)).toEqual([a.traceId]);
    reopened.close();
  });

  it('answers a search for a value no span has without reading documents', () => {
    const path = join(tempDir(), 'plan.db');
    const db = openDatabase(path);
    const store = new SqliteStore(db);
    for (let i = 0; i < 4; i++) write(store, Array.from({ length: 5000 }, () => makeSpan({ serviceName: 'many' })));
    db.close();
    // A read-only connection, as the read threads have: the plan must go through the index.
    const ro = new DatabaseSync(path, { readOnly: true });
    const t = performance.now();
    expect(searchTraces(ro, DEFAULT_TENANT, { attributes: [{ key: 'str', value: 'no such value' }], limit: 20 })).toEqual([]);
    const ms = performance.now() - t;
    const plan = ro.prepare(`EXPLAIN QUERY PLAN SELECT trace_id FROM spans WHERE rowid IN (${MATCH_SQL}) ORDER BY start_ns DESC`).all('x') as { detail: string }[];
    ro.close();
    expect(plan.map((p) => p.detail).join('\n')).toMatch(new RegExp(`SCAN ${ATTRIBUTE_INDEX_TABLE} VIRTUAL TABLE INDEX`));
    // Parsing the 20,000 documents instead takes hundreds of milliseconds (bench/sqlite.ts compares both).
    expect(ms).toBeLessThan(100);
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
    expect((db.prepare('SELECT count(*) AS n FROM spans').get() as { n: number }).n).toBe(2);
    db.close();
  });

  it('with storage.sqlite.attributeIndex off keeps no index and still finds by the documents; turned on again, indexes what is stored', () => {
    const path = join(tempDir(), 'off.db');
    const off = openDatabase(path, { attributeIndex: false });
    const store = new SqliteStore(off, { indexAttributes: false });
    const a = makeSpan({ attributes: [str('k', 'v1')] });
    write(store, [a, makeSpan({ attributes: [str('k', 'v2')] })]);
    expect(off.prepare('SELECT 1 FROM sqlite_master WHERE name = ?').get(ATTRIBUTE_INDEX_TABLE)).toBeUndefined();
    expect(searchTraces(off, DEFAULT_TENANT, { attributes: [{ key: 'k', value: 'v1' }], limit: 10 }).map((t) => t.traceId)).toEqual([a.traceId]);
    expect(new SqliteStore(off, { indexAttributes: false }).applyRetention(1).spans).toBe(0);
    off.close();
    const on = openDatabase(path);
    expect(on.prepare(MATCH_SQL).all(`"${attributeTerm('k', 'v1')}"`)).toHaveLength(1);
    expect(searchTraces(on, DEFAULT_TENANT, { attributes: [{ key: 'k', value: 'v1' }], limit: 10 }).map((t) => t.traceId)).toEqual([a.traceId]);
    on.close();
  });
});
