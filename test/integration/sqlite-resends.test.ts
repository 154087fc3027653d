// The SQLite store keeps each span once however its trace arrives: whole, a service at a time,
// resent, from another connection to the same file, or longer than the store remembers. It tells
// spans stored before from new ones without reading the trace's stored spans when it wrote the
// trace lately (RecentTraces in src/storage/sqlite/store.ts); these cases check that it never
// takes a stored span for a new one.
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../src/model/rows.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { createEncoder as createLineEncoder } from '../../src/storage/rowjson.ts';
import { getTrace } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const proto = createProtoEncoder({});
const NOW = BigInt(Date.now()) * 1_000_000n;
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
const id = (t: number, s: number) => hex(s + 1, 8) + hex(t + 1, 8);
const spanNumber = (spanId: string) => parseInt(spanId.slice(0, 8), 16) - 1;
const groups = new Map<string, SpanRow>();

function write(store: SqliteStore, spans: SpanRow[], tenant: string): void {
  expect(store.writeSpans(proto.encodeSpans(spans).map((c) => c.data), tenant).kind).toBe('success');
}

/**
 * Span `s` of trace `t`, of one of three services (or `service`). Its id's first word (the one the
 * store compares first) is the same in every trace, the second is the trace's.
 */
function span(t: number, s: number, service = `svc-${s % 3}`): SpanRow {
  // One resource and scope object per service, as a request has: its spans form runs.
  let shared = groups.get(service);
  if (!shared) groups.set(service, (shared = makeSpan({ serviceName: service })));
  return makeSpan({
    resource: shared.resource,
    scope: shared.scope,
    traceId: hex(t + 1, 32),
    spanId: id(t, s),
    parentSpanId: s === 0 ? '' : id(t, 0),
    serviceName: service,
    startTimeUnixNano: NOW + BigInt(t * 1000 + s),
    endTimeUnixNano: NOW + BigInt(t * 1000 + s + 10),
  });
}

describe('sqlite span resends', () => {
  it('stores each span once over random batches, tenants, services, repeats and a second connection', () => {
    // One item: [connection (0 or 1), tenant, trace, span] — each batch a list of them.
    const item = fc.tuple(fc.nat(3), fc.nat(1), fc.nat(3), fc.nat(7));
    fc.assert(
      fc.property(fc.array(fc.array(item, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 12 }), (batches) => {
        const path = join(tempDir(), 'resends.db');
        const dbs = [openDatabase(path), openDatabase(path)];
        const stores = dbs.map((db) => new SqliteStore(db));
        try {
          const written = new Map<string, Set<number>>();
          for (const batch of batches) {
            // A batch goes through one connection (the second for one in four) and one tenant at a time.
            const conn = batch[0]![0] === 3 ? 1 : 0;
            for (const tenant of ['t0', 't1']) {
              const mine = batch.filter(([, tn]) => `t${tn}` === tenant);
              if (mine.length === 0) continue;
              write(stores[conn]!, mine.map(([, , t, s]) => span(t, s)), tenant);
              for (const [, , t, s] of mine) {
                const key = `${tenant}/${t}`;
                written.set(key, (written.get(key) ?? new Set()).add(s));
              }
            }
          }
          for (const [key, spans] of written) {
            const [tenant, t] = key.split('/') as [string, string];
            const stored = getTrace(dbs[0]!, tenant, hex(Number(t) + 1, 32)).map((s) => spanNumber(s.spanId));
            expect(stored.sort((a, b) => a - b)).toEqual([...spans].sort((a, b) => a - b));
          }
        } finally {
          for (const db of dbs) db.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  it('keeps a span another connection stored out of a resend through this one', () => {
    const path = join(tempDir(), 'two.db');
    const [a, b] = [openDatabase(path), openDatabase(path)];
    const [sa, sb] = [new SqliteStore(a), new SqliteStore(b)];
    try {
      write(sa, [span(0, 0)], 't');
      write(sb, [span(0, 1)], 't');
      // Through the first connection again, the span the second one stored is not new.
      write(sa, [span(0, 1), span(0, 2)], 't');
      expect(getTrace(a, 't', hex(1, 32)).map((s) => spanNumber(s.spanId)).sort()).toEqual([0, 1, 2]);
    } finally {
      a.close();
      b.close();
    }
  });

  it('keeps a span an older version\'s log replayed as a JSON line out of a resend', () => {
    const db = openDatabase(join(tempDir(), 'lines.db'));
    const store = new SqliteStore(db);
    try {
      write(store, [span(0, 0)], 't');
      const line = createLineEncoder().encodeSpans([span(0, 1)]).map((c) => c.data);
      expect(store.writeSpans(line, 't').kind).toBe('success');
      write(store, [span(0, 1), span(0, 2)], 't');
      expect(getTrace(db, 't', hex(1, 32)).map((s) => spanNumber(s.spanId)).sort()).toEqual([0, 1, 2]);
    } finally {
      db.close();
    }
  });

  it('stores each span of long traces once, fed as they run, with resends, a second connection and room for two', () => {
    // Traces past RecentTraces' length (4,096 spans) have sets of their own; this bound holds two of
    // these traces' sets, so the third forgets the least recently used one.
    const TRACES = 3;
    const LENGTH = 6000;
    // One step: [trace, resend (0) or the next spans (1-3), spans, how far back a resend starts, connection (15: the second)].
    const step = fc.tuple(fc.nat(TRACES - 1), fc.nat(3), fc.integer({ min: 1, max: 900 }), fc.nat(3000), fc.nat(15));
    fc.assert(
      fc.property(fc.array(step, { minLength: 60, maxLength: 90 }), (steps) => {
        const path = join(tempDir(), 'long-random.db');
        const dbs = [openDatabase(path), openDatabase(path)];
        const stores = dbs.map((db) => new SqliteStore(db, { longTraceInts: 1 << 16 }));
        try {
          const next = new Array<number>(TRACES).fill(0);
          for (const [t, kind, n, back, conn] of steps) {
            // A resend repeats spans sent before (a retried export): a range ending at most where the trace is.
            const from = kind === 0 ? Math.max(0, next[t]! - n - back) : next[t]!;
            const to = Math.min(LENGTH, from + n, kind === 0 ? next[t]! : LENGTH);
            if (to <= from) continue;
            write(stores[conn === 15 ? 1 : 0]!, Array.from({ length: to - from }, (_, k) => span(t, from + k, 'svc')), 't');
            next[t] = Math.max(next[t]!, to);
          }
          for (let t = 0; t < TRACES; t++) {
            const stored = getTrace(dbs[0]!, 't', hex(t + 1, 32)).map((s) => spanNumber(s.spanId));
            expect(stored.sort((a, b) => a - b)).toEqual(Array.from({ length: next[t]! }, (_, s) => s));
          }
        } finally {
          for (const db of dbs) db.close();
        }
      }),
      { numRuns: 6 },
    );
  });

  it('stores each span of a trace longer than it remembers once, a batch of it resent', () => {
    const db = openDatabase(join(tempDir(), 'long.db'));
    const store = new SqliteStore(db);
    try {
      const spans = Array.from({ length: 5000 }, (_, s) => span(0, s, 'svc'));
      for (let i = 0; i < spans.length; i += 500) write(store, spans.slice(i, i + 500), 't');
      write(store, spans.slice(2000, 2500), 't');
      write(store, [span(0, 5000, 'svc'), ...spans.slice(4500)], 't');
      expect(getTrace(db, 't', hex(1, 32))).toHaveLength(5001);
    } finally {
      db.close();
    }
  });
});
