// Several ingest instances writing overlapping spans to one PostgreSQL at once (a client resends
// to another pod, or two pods retry the same data) must never deadlock: each instance takes its
// row locks in key order, so they queue up behind one another instead of waiting in a circle.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend, WriteResult } from '../../src/storage/backend.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend, spanBatch } from '../helpers/postgres-store.ts';
import { makeTrace } from '../helpers/rows.ts';

const INSTANCES = 4;
const ROUNDS = 6;
const TRACES = 60;
const SPANS_PER_TRACE = 10;

const backend = (url: string): StorageBackend => postgresBackend(url, { 'storage.postgres.poolSize': '3' });

function shuffled<T>(xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

async function deadlocksSoFar(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // Statistics reach the shared counters when a backend flushes them; ask for a fresh snapshot.
    await c.query('SELECT pg_stat_clear_snapshot()');
    const r = await c.query<{ deadlocks: string }>('SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()');
    return Number(r.rows[0]?.deadlocks ?? 0);
  } finally {
    await c.end();
  }
}

async function countSpans(url: string): Promise<{ spans: number; distinct: number; traces: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ spans: string; distinct: string; traces: string }>(
      `SELECT (SELECT count(*) FROM tracehouse.spans) AS spans,
              (SELECT count(*) FROM (SELECT DISTINCT trace_id, span_id FROM tracehouse.spans) d) AS distinct,
              (SELECT count(*) FROM tracehouse.trace_index) AS traces`,
    );
    const row = r.rows[0]!;
    return { spans: Number(row.spans), distinct: Number(row.distinct), traces: Number(row.traces) };
  } finally {
    await c.end();
  }
}

describe('postgres: concurrent instances with overlapping rows', () => {
  let url: string;
  const instances: StorageBackend[] = [];

  beforeAll(async () => {
    url = await createTestDatabase('pgdeadlock');
    const first = backend(url);
    await first.start();
    instances.push(first);
    for (let i = 1; i < INSTANCES; i++) instances.push(backend(url));
    await Promise.all(instances.slice(1).map((b) => b.start()));
  });

  afterAll(async () => {
    await Promise.all(instances.map((b) => b.shutdown()));
  });

  it('store every span once and never hit "deadlock detected"', async () => {
    const traces = Array.from({ length: TRACES }, () => makeTrace(SPANS_PER_TRACE));
    const all = traces.flat();
    const before = await deadlocksSoFar(url);
    const failures: WriteResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Every instance writes all the spans, each in its own random order, split into two batches
      // per instance so connections of one instance contend too.
      await Promise.all(
        instances.flatMap((b) => {
          const rows = shuffled(all);
          const half = rows.length >> 1;
          return [rows.slice(0, half), rows.slice(half)].map(async (part) => {
            const r = await b.write(spanBatch(part));
            if (r.kind !== 'success') failures.push(r);
          });
        }),
      );
    }
    expect(failures.map((f) => (f.kind === 'success' ? '' : f.error.message))).toEqual([]);
    expect(await countSpans(url)).toEqual({ spans: all.length, distinct: all.length, traces: TRACES });
    // The server's own count: nothing deadlocked even where a retry would have hidden it.
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await deadlocksSoFar(url)) - before).toBe(0);
  });
});
