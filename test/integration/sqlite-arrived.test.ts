// The SQLite store keeps what arrived: each span or log record as its protobuf bytes, its resource
// and scope once per request group (item_groups). These cases pin what that must not change: the
// runs' attribute filters hold every term the spans' decoded attributes give, whether they arrived
// as protobuf or as the JSON documents of older versions, a file holding rows of both kinds reads them all, a group is written once and goes
// with its last item, and a file from before the change opens, keeps its rows and takes new ones.
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LogRow, SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { decodeTracesProto } from '../../src/pipeline/decode/index.ts';
import { createEncoder as createTranscoder } from '../../src/pipeline/transcode/otlp/index.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { createEncoder as createLineEncoder } from '../../src/storage/rowjson.ts';
import { READS, getTrace, searchLogs, searchTraces } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { attributeTerm, bloomHas, renderedValue, type Term } from '../../src/storage/sqlite/terms.ts';
import { arbTraces, encodeTraces, LIMITS, type MSpan, type MTraces } from '../helpers/otlp-build.ts';
import { canonical, makeLog, makeSpan, makeTrace } from '../helpers/rows.ts';
import { writeSpanRows } from '../helpers/sqlite-rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const lines = createLineEncoder();
const proto = createProtoEncoder({});
const data = (chunks: { data: Uint8Array }[]) => chunks.map((c) => c.data);
const count = (db: DatabaseSync, sql: string) => (db.prepare(sql).get() as { n: number }).n;

/** The attribute filters of each trace's runs. */
function filtersByTrace(db: DatabaseSync): Map<string, Uint8Array[]> {
  const out = new Map<string, Uint8Array[]>();
  for (const r of db.prepare('SELECT trace_id AS t, attr_filter AS f FROM span_runs ORDER BY rowid').all() as { t: string; f: Uint8Array }[]) {
    out.set(r.t, [...(out.get(r.t) ?? []), r.f]);
  }
  return out;
}

/** Whether a filter of the trace may hold the term. */
const holds = (filters: Uint8Array[] | undefined, [h1, h2]: Term): boolean => filters?.some((f) => bloomHas(f, h1, h2)) ?? false;

/** The term of each of a span's decoded attributes (its key's alone for a value not rendered), with its trace id. */
function termsOf(rows: readonly SpanRow[]): [string, Term][] {
  return rows.flatMap((s) => s.attributes.map((a): [string, Term] => [s.traceId, attributeTerm(a.key, renderedValue(a.value))]));
}

/** The message with its spans' valid trace ids replaced by `n` shared ones in turn: runs of a trace's spans, and traces interleaved. */
function inTraces(m: MTraces, n: number): MTraces {
  const ids = Array.from({ length: n }, (_, i) => Uint8Array.from({ length: 16 }, (_, j) => (i * 31 + j * 7 + 1) & 0xff));
  let k = 0;
  const span = (s: MSpan): MSpan => (s.traceId.length === 16 ? { ...s, traceId: ids[Math.floor(k++ / 2) % n]! } : s);
  return { resources: m.resources.map((r) => ({ ...r, scopes: r.scopes.map((sc) => ({ ...sc, spans: sc.spans.map(span) })) })) };
}

describe('sqlite store of what arrived', () => {
  it('filters every run under the terms of its spans\' decoded attributes, from protobuf and from JSON documents alike', () => {
    const transcoder = createTranscoder({}, LIMITS);
    fc.assert(
      fc.property(arbTraces, fc.integer({ min: 1, max: 3 }), (generated, traces) => {
        const m = inTraces(generated, traces);
        const body = encodeTraces(m);
        const arrived = openDatabase(':memory:');
        const older = openDatabase(':memory:');
        try {
          expect(new SqliteStore(arrived).writeSpans(data(transcoder.encode('traces', 'protobuf', body).chunks)).kind).toBe('success');
          expect(new SqliteStore(older).writeSpans(data(lines.encodeSpans(decodeTracesProto(body, LIMITS).rows))).kind).toBe('success');
          const fromProto = filtersByTrace(arrived);
          const fromJson = filtersByTrace(older);
          // Every term of the decoded attributes, in a filter of its trace's runs: a search passes
          // over no run that holds it. (The protobuf may repeat a key the decoder kept once: its
          // other values' terms are in the filter too, extra candidates the documents rule out.)
          const terms = termsOf(decodeTracesProto(body, LIMITS).rows);
          expect(terms.filter(([trace, t]) => !holds(fromProto.get(trace), t))).toEqual([]);
          expect(terms.filter(([trace, t]) => !holds(fromJson.get(trace), t))).toEqual([]);
        } finally {
          arrived.close();
          older.close();
        }
      }),
      { numRuns: 60, seed: 11 },
    );
  });

  it('filters values at and past the cut, multi-byte characters, bytes and 64-bit integers alike from protobuf and JSON', () => {
    const str = (v: string) => ({ stringValue: v });
    const values = [
      str('a'.repeat(127)), str('a'.repeat(128)), str('a'.repeat(129)), str('a'.repeat(300)),
      str('a'.repeat(127) + 'é' + 'b'), str('é'.repeat(200)), str('😀'.repeat(129)), str(''),
      { bytesValue: Buffer.alloc(200, 7).toString('base64') }, { bytesValue: '' },
      { intValue: '-9223372036854775808' }, { intValue: '9223372036854775807' }, { intValue: '0' },
      { boolValue: true }, { boolValue: false }, { doubleValue: 1.5 }, {},
      { arrayValue: { values: [str('x')] } }, { kvlistValue: { values: [{ key: 'k', value: str('x') }] } },
    ];
    const keys = ['k', 'ключ', 'k'.repeat(140), ''];
    const spans = values.map((value, i) => makeSpan({ attributes: [{ key: keys[i % keys.length]!, value }, { key: 'n', value: { intValue: String(i) } }] }));
    const arrived = openDatabase(':memory:');
    const older = openDatabase(':memory:');
    expect(new SqliteStore(arrived).writeSpans(data(proto.encodeSpans(spans))).kind).toBe('success');
    expect(new SqliteStore(older).writeSpans(data(lines.encodeSpans(spans))).kind).toBe('success');
    // One span a run, two terms each: the same terms give the same filter.
    const fromJson = filtersByTrace(older);
    expect(fromJson.size).toBe(spans.length);
    expect(filtersByTrace(arrived)).toEqual(fromJson);
    // And the filters hold each value's term (doubles, arrays, maps: the key's alone).
    for (const s of spans) {
      const [a] = s.attributes;
      const rendered = 'stringValue' in a!.value ? a!.value.stringValue : 'bytesValue' in a!.value ? a!.value.bytesValue : 'intValue' in a!.value ? a!.value.intValue : 'boolValue' in a!.value ? String(a!.value.boolValue) : '';
      expect(holds(fromJson.get(s.traceId), attributeTerm(a!.key, rendered))).toBe(true);
    }
    arrived.close();
    older.close();
  });

  it('reads spans of every kind from one file: JSON documents and protobuf rows of older versions, runs of records', () => {
    const db = openDatabase(join(tempDir(), 'mixed.db'));
    const store = new SqliteStore(db);
    const oldSpan = makeSpan({ attributes: [{ key: 'k', value: { stringValue: 'v' } }] });
    const newSpan = makeSpan({ traceId: oldSpan.traceId, parentSpanId: oldSpan.spanId, attributes: [{ key: 'k', value: { stringValue: 'v' } }] });
    const rowSpan = makeSpan({ traceId: oldSpan.traceId, parentSpanId: oldSpan.spanId, attributes: [{ key: 'k', value: { stringValue: 'v' } }] });
    const oldLog = makeLog({ timeUnixNano: 1_700_000_000_000_000_000n });
    const newLog = makeLog({ timeUnixNano: 1_700_000_000_000_000_001n });
    expect(store.writeSpans(data(lines.encodeSpans([oldSpan]))).kind).toBe('success');
    expect(store.writeLogs(data(lines.encodeLogs([oldLog])), 'b1').kind).toBe('success');
    expect(store.writeSpans(data(proto.encodeSpans([newSpan]))).kind).toBe('success');
    writeSpanRows(db, [rowSpan]);
    expect(store.writeLogs(data(proto.encodeLogs([newLog])), 'b2').kind).toBe('success');
    expect(count(db, "SELECT count(*) AS n FROM spans WHERE typeof(doc) = 'text'")).toBe(1);
    expect(count(db, "SELECT count(*) AS n FROM spans WHERE typeof(doc) = 'blob'")).toBe(1);
    expect(count(db, 'SELECT count(*) AS n FROM run_spans')).toBe(1);

    const byId = (rows: SpanRow[]) => canonical([...rows].sort((a, b) => a.spanId.localeCompare(b.spanId)));
    expect(byId(getTrace(db, DEFAULT_TENANT, oldSpan.traceId))).toEqual(byId([oldSpan, newSpan, rowSpan]));
    expect(searchTraces(db, DEFAULT_TENANT, { attributes: [{ key: 'k', value: 'v' }], limit: 10 }).map((t) => [t.traceId, t.spanCount])).toEqual([[oldSpan.traceId, 3]]);
    expect(canonical(searchLogs(db, DEFAULT_TENANT, { limit: 10 }))).toEqual(canonical<LogRow[]>([newLog, oldLog]));
    const scanned = READS.scanSpans(db, [DEFAULT_TENANT, { limit: 10 }]);
    expect(byId(scanned.rows)).toEqual(byId([oldSpan, newSpan, rowSpan]));
    expect(canonical(READS.scanLogs(db, [DEFAULT_TENANT, { limit: 10 }]).rows)).toEqual(canonical<LogRow[]>([oldLog, newLog]));
    db.close();
  });

  it('keeps one copy of a span stored as a record and then replayed from an older version\'s write-ahead log line', () => {
    // An upgrade: the older version logged a request as JSON lines and acknowledged it; its client
    // sent it again (the acknowledgement lost), this version stored it, then the replay came.
    const db = openDatabase(join(tempDir(), 'resent.db'));
    const store = new SqliteStore(db);
    const spans = [makeSpan(), makeSpan()];
    spans.push(makeSpan({ traceId: spans[0]!.traceId, parentSpanId: spans[0]!.spanId }));
    const extra = makeSpan({ traceId: spans[0]!.traceId, parentSpanId: spans[0]!.spanId });
    expect(store.writeSpans(data(proto.encodeSpans(spans))).kind).toBe('success');
    expect(store.writeSpans(data(lines.encodeSpans([...spans, extra]))).kind).toBe('success');
    // And a batch carrying both: the lines after its records.
    const both = makeTrace(2);
    expect(store.writeSpans([...data(proto.encodeSpans(both)), ...data(lines.encodeSpans(both))]).kind).toBe('success');
    const byId = (rows: SpanRow[]) => canonical([...rows].sort((a, b) => a.spanId.localeCompare(b.spanId)));
    expect(byId(getTrace(db, DEFAULT_TENANT, spans[0]!.traceId))).toEqual(byId([spans[0]!, spans[2]!, extra]));
    expect(byId(getTrace(db, DEFAULT_TENANT, spans[1]!.traceId))).toEqual(byId([spans[1]!]));
    expect(byId(getTrace(db, DEFAULT_TENANT, both[0]!.traceId))).toEqual(byId(both));
    expect(count(db, 'SELECT count(*) AS n FROM spans')).toBe(1);
    db.close();
  });

  it('writes a group once per request group and none for a batch written again; retention removes it with its last item', () => {
    const db = openDatabase(join(tempDir(), 'groups.db'));
    const store = new SqliteStore(db);
    const day = 86_400_000_000_000n;
    const now = BigInt(Date.now()) * 1_000_000n;
    const old = makeSpan({ serviceName: 'a', startTimeUnixNano: now - 3n * day, endTimeUnixNano: now - 3n * day + 1n });
    const mixedOld = makeSpan({ serviceName: 'b', startTimeUnixNano: now - 3n * day, endTimeUnixNano: now - 3n * day + 1n });
    // The same resource and scope objects: one group, as the decoder gives the spans of one ScopeSpans.
    const mixedNew = makeSpan({ serviceName: 'b', resource: mixedOld.resource, scope: mixedOld.scope, startTimeUnixNano: now, endTimeUnixNano: now + 1n });
    // Two services: two resource groups in one request.
    const batch = data(proto.encodeSpans([old, mixedOld, mixedNew]));
    expect(store.writeSpans(batch).kind).toBe('success');
    expect(count(db, 'SELECT count(*) AS n FROM item_groups')).toBe(2);
    expect(store.writeSpans(batch).kind).toBe('success');
    expect(count(db, 'SELECT count(*) AS n FROM item_groups')).toBe(2);
    const log = makeLog({ timeUnixNano: now });
    const logs = data(proto.encodeLogs([log, makeLog({ resource: log.resource, scope: log.scope, timeUnixNano: now })]));
    expect(store.writeLogs(logs, 'logs-1').kind).toBe('success');
    expect(store.writeLogs(logs, 'logs-1').kind).toBe('success');
    expect(count(db, 'SELECT count(*) AS n FROM item_groups')).toBe(3);
    expect(count(db, 'SELECT count(*) AS n FROM logs')).toBe(2);

    expect(store.applyRetention(1)).toEqual({ spans: 2, logs: 0 });
    // The group of service a went with its span; b's stays for its newer span, which still reads whole.
    expect(count(db, 'SELECT count(*) AS n FROM item_groups')).toBe(2);
    expect(canonical(getTrace(db, DEFAULT_TENANT, mixedNew.traceId))).toEqual(canonical([mixedNew]));
    expect(searchLogs(db, DEFAULT_TENANT, { limit: 10 })).toHaveLength(2);
    db.close();
  });

  it('opens a file from before item groups: adds the columns, keeps its rows, and takes new ones', () => {
    const path = join(tempDir(), 'before.db');
    const db = openDatabase(path);
    const oldSpan = makeSpan();
    expect(new SqliteStore(db).writeSpans(data(lines.encodeSpans([oldSpan]))).kind).toBe('success');
    // As a file of the version before: no group columns, no group table.
    db.exec('ALTER TABLE spans DROP COLUMN group_id; ALTER TABLE logs DROP COLUMN group_id; DROP TABLE item_groups');
    db.close();

    const reopened = openDatabase(path);
    const newSpan = makeSpan({ traceId: oldSpan.traceId });
    expect(new SqliteStore(reopened).writeSpans(data(proto.encodeSpans([newSpan]))).kind).toBe('success');
    expect(count(reopened, "SELECT count(*) AS n FROM pragma_table_info('spans') WHERE name = 'group_id'")).toBe(1);
    const rows = getTrace(reopened, DEFAULT_TENANT, oldSpan.traceId).sort((a, b) => a.spanId.localeCompare(b.spanId));
    expect(canonical(rows)).toEqual(canonical([oldSpan, newSpan].sort((a, b) => a.spanId.localeCompare(b.spanId))));
    reopened.close();
  });
});
