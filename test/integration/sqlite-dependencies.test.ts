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
import { getDependencies } from '../../src/storage/sqlite/reads.ts';
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
      }
    }
    expect(calls).toBeGreaterThan(200);
    db.close();
  });
});
