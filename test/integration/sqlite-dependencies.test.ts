// SQLite dependencies (getDependencies) against the plain computation over the same spans: every
// child in the range whose parent is a span of its trace of another service is one call, wherever
// the parent is stored (its run, another run of the same write or a later one, a row of spans of an
// older version, before the range) and however many spans the read holds at once. A child whose
// parent was never stored calls nobody; a tenant sees its own spans only. A file with rows of spans
// and one without (whose read skips looking for them) alike.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DependencyLink } from '../../src/storage/backend.ts';
import type { SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { DEPENDENCY_PAGE, DEPENDENCY_SPANS_HELD, getDependencies, takeUnreadable } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { prng } from '../helpers/prng.ts';
import { makeSpan } from '../helpers/rows.ts';
import { writeSpanRows } from '../helpers/sqlite-rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const proto = createProtoEncoder({});
const NOW = BigInt(Date.now()) * 1_000_000n;
const SECOND = 1_000_000_000n;
const SERVICES = ['front', 'api', 'db', 'cache', 'auth'];
const OTHER = 'other-tenant';

/** The calls among `spans` (one tenant's) whose child starts in [start, end]. */
function plainDependencies(spans: readonly SpanRow[], start: bigint, end: bigint): DependencyLink[] {
  const service = new Map(spans.map((s) => [`${s.traceId}/${s.spanId}`, s.serviceName]));
  const calls = new Map<string, DependencyLink>();
  for (const s of spans) {
    if (s.parentSpanId === '' || s.startTimeUnixNano < start || s.startTimeUnixNano > end) continue;
    const parent = service.get(`${s.traceId}/${s.parentSpanId}`);
    if (parent === undefined || parent === s.serviceName) continue;
    const key = JSON.stringify([parent, s.serviceName]);
    const link = calls.get(key) ?? { parent, child: s.serviceName, callCount: 0 };
    link.callCount++;
    calls.set(key, link);
  }
  return [...calls.values()].sort((a, b) => (a.parent < b.parent ? -1 : a.parent > b.parent ? 1 : a.child < b.child ? -1 : a.child > b.child ? 1 : 0));
}

describe('sqlite dependencies', () => {
  it.each([true, false])('counts the calls the spans hold, wherever a parent is stored (rows of spans: %s)', (withRows) => {
    const db = openDatabase(join(tempDir(), 'deps.db'));
    const store = new SqliteStore(db);
    const random = prng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const written = new Map<string, SpanRow[]>([[DEFAULT_TENANT, []], [OTHER, []]]);
    // Traces over ten minutes, many in one 4.3 s bucket of the runs' time index: each span of a
    // random service under a random earlier span of its trace, some under an id never stored.
    const batches: { tenant: string; spans: SpanRow[] }[] = [];
    for (let t = 0; t < 120; t++) {
      const tenant = t % 4 === 3 ? OTHER : DEFAULT_TENANT;
      const base = NOW - 600n * SECOND + BigInt(Math.floor(random() * 600)) * SECOND;
      const root = makeSpan({ serviceName: pick(SERVICES), startTimeUnixNano: base, endTimeUnixNano: base + 10n, events: [], links: [] });
      const spans = [root];
      for (let k = 1; k < 2 + Math.floor(random() * 8); k++) {
        const parentSpanId = random() < 0.1 ? 'ab'.repeat(8) : pick(spans).spanId;
        const start = base + BigInt(Math.floor(random() * 20)) * SECOND;
        spans.push(makeSpan({ traceId: root.traceId, parentSpanId, serviceName: pick(SERVICES), startTimeUnixNano: start, endTimeUnixNano: start + 10n, events: [], links: [] }));
      }
      written.get(tenant)!.push(...spans);
      // A trace's spans in up to three writes (runs of one service in several writes, a parent in a later one).
      for (const s of spans) {
        const b = Math.floor(random() * 3);
        while (batches.length <= t * 3 + b) batches.push({ tenant: batches.length % 12 >= 9 ? OTHER : DEFAULT_TENANT, spans: [] });
        batches[t * 3 + b]!.spans.push(s);
      }
    }
    // Some spans as rows of spans (an older version's), the rest through the store's write path, in a shuffled order.
    const rows: SpanRow[] = [];
    for (const b of batches.sort(() => random() - 0.5)) {
      if (b.spans.length === 0) continue;
      if (withRows && b.tenant === DEFAULT_TENANT && random() < 0.1) rows.push(...b.spans);
      else expect(store.writeSpans(proto.encodeSpans(b.spans).map((c) => c.data), b.tenant).kind).toBe('success');
    }
    if (withRows) writeSpanRows(db, rows);
    expect(db.prepare('SELECT count(*) AS n FROM spans').get()).toEqual({ n: withRows ? expect.any(Number) : 0 });
    if (withRows) expect(rows.length).toBeGreaterThan(10);
    const ranges = [
      [NOW - 700n * SECOND, NOW + 700n * SECOND],
      [NOW - 300n * SECOND, NOW - 200n * SECOND],
      [NOW - 400n * SECOND, NOW - 399n * SECOND],
      [NOW + SECOND, NOW + 2n * SECOND],
    ] as const;
    let calls = 0;
    for (const tenant of [DEFAULT_TENANT, OTHER]) {
      for (const [start, end] of ranges) {
        const expected = plainDependencies(written.get(tenant)!, start, end);
        calls += expected.reduce((n, l) => n + l.callCount, 0);
        expect(getDependencies(db, tenant, { startNano: start, endNano: end })).toEqual(expected);
        // Resolved a few spans at a time: a parent in a batch resolved before, or not read yet, is found all the same.
        expect(getDependencies(db, tenant, { startNano: start, endNano: end }, 4)).toEqual(expected);
        // Runs read a few a page (by count, by bytes, one a page as each is larger than a page): pages end inside buckets and between them.
        for (const page of [{ runs: 3, bytes: DEPENDENCY_PAGE.bytes }, { runs: 4096, bytes: 2000 }, { runs: 4096, bytes: 1 }]) {
          expect(getDependencies(db, tenant, { startNano: start, endNano: end }, DEPENDENCY_SPANS_HELD, page)).toEqual(expected);
        }
      }
    }
    expect(calls).toBeGreaterThan(200);
    db.close();
  });

  it('counts the calls among runs of thousands of large spans, pages of many runs or one run larger than a page', () => {
    const db = openDatabase(join(tempDir(), 'deps.db'));
    const store = new SqliteStore(db);
    const random = prng(11);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const written: SpanRow[] = [];
    // A resource and scope per service, shared by its spans, and a write's spans by service: a write's spans of a trace and service are one run.
    const first = new Map(SERVICES.map((s) => [s, makeSpan({ serviceName: s })]));
    const span = (o: Partial<SpanRow> & { serviceName: string }, big: number): SpanRow => {
      const { resource, scope } = first.get(o.serviceName)!;
      return makeSpan({ ...o, resource, scope, attributes: [{ key: 'payload', value: { stringValue: 'x'.repeat(big) } }], events: [], links: [] });
    };
    for (let t = 0; t < 10; t++) {
      const base = NOW - 600n * SECOND + BigInt(t * 50) * SECOND;
      // Large traces: 1,500 spans of 1 KiB attributes (runs of ~500 spans, ~0.5 MiB) in two writes; small ones between them.
      const size = t % 2 === 0 ? 1500 : 6;
      const root = span({ serviceName: pick(SERVICES), startTimeUnixNano: base, endTimeUnixNano: base + 10n }, 1024);
      const spans = [root];
      for (let k = 1; k < size; k++) {
        const start = base + BigInt(k) * 10_000_000n;
        spans.push(span({ traceId: root.traceId, parentSpanId: pick(spans).spanId, serviceName: pick(SERVICES.slice(0, 3)), startTimeUnixNano: start, endTimeUnixNano: start + 10n }, size > 6 ? 1024 : 10));
      }
      written.push(...spans);
      const half = Math.floor(spans.length / 2);
      for (const part of [spans.slice(half), spans.slice(0, half)]) expect(store.writeSpans(proto.encodeSpans(part.sort((a, b) => (a.serviceName < b.serviceName ? -1 : 1))).map((c) => c.data)).kind).toBe('success');
    }
    const largest = db.prepare('SELECT max(length(records)) AS m, sum(length(records)) AS t FROM run_spans').get() as { m: number; t: number };
    expect(largest.m).toBeGreaterThan(256 * 1024);
    let calls = 0;
    for (const [start, end] of [[NOW - 700n * SECOND, NOW], [NOW - 500n * SECOND, NOW - 395n * SECOND]] as const) {
      const expected = plainDependencies(written, start, end);
      calls += expected.reduce((n, l) => n + l.callCount, 0);
      // Pages of all the runs, of a few runs by their bytes, of one run larger than a page alone.
      for (const page of [DEPENDENCY_PAGE, { runs: 4096, bytes: 2 * largest.m }, { runs: 4096, bytes: 64 * 1024 }]) {
        expect(getDependencies(db, DEFAULT_TENANT, { startNano: start, endNano: end }, DEPENDENCY_SPANS_HELD, page)).toEqual(expected);
      }
    }
    expect(calls).toBeGreaterThan(3000);
    db.close();
  });

  it('reads the runs around a damaged one and names it, whatever the page', () => {
    const db = openDatabase(join(tempDir(), 'deps.db'));
    const store = new SqliteStore(db);
    const front = makeSpan({ serviceName: 'front', startTimeUnixNano: NOW - 10n * SECOND, events: [], links: [] });
    const api = Array.from({ length: 6 }, (_, k) => makeSpan({ traceId: front.traceId, parentSpanId: front.spanId, serviceName: 'api', startTimeUnixNano: NOW - 9n * SECOND + BigInt(k), events: [], links: [] }));
    const db2 = makeSpan({ traceId: front.traceId, parentSpanId: api[0]!.spanId, serviceName: 'db', startTimeUnixNano: NOW - 8n * SECOND, events: [], links: [] });
    for (const part of [[front], api.map((s) => ({ ...s, resource: api[0]!.resource, scope: api[0]!.scope })), [db2]]) expect(store.writeSpans(proto.encodeSpans(part).map((c) => c.data)).kind).toBe('success');
    // The api run's last span record cut short: its first five are read, the sixth lost.
    const run = db.prepare("SELECT rowid AS id, span_count AS n FROM span_runs WHERE service_name = 'api'").get() as { id: number; n: number };
    expect(run.n).toBe(6);
    db.prepare('UPDATE run_spans SET records = substr(records, 1, length(records) - 3) WHERE run = ?').run(run.id);
    takeUnreadable();
    for (const page of [DEPENDENCY_PAGE, { runs: 1, bytes: DEPENDENCY_PAGE.bytes }, { runs: 4096, bytes: 1 }]) {
      expect(getDependencies(db, DEFAULT_TENANT, { startNano: NOW - SECOND * 60n, endNano: NOW }, DEPENDENCY_SPANS_HELD, page)).toEqual([
        { parent: 'api', child: 'db', callCount: 1 },
        { parent: 'front', child: 'api', callCount: 5 },
      ]);
      // Noted by each pass over the run's records (the store counts it once by its key).
      const found = takeUnreadable() ?? [];
      expect(found.length).toBeGreaterThan(0);
      for (const u of found) expect(u).toEqual({ key: `run ${run.id}`, signal: 'traces', lost: 1, message: expect.any(String) });
    }
    db.close();
  });
});
