// The read threads were started by the first read, whose budget (query.timeoutMs, from its
// arrival) paid their start (~150 ms: the Worker's, opening the database, attaching the trace
// index): with a small query.timeoutMs the first read after start-up (or after a thread was
// replaced) timed out, and every first load of the UI after a restart was slow. The store now
// starts them with itself, and replaces a stopped thread at once.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { tempDir } from '../helpers/tmp.ts';

/** The pool's slots (read-pool.ts), looked into to wait for its threads without a timed race. */
type Slots = { ready: boolean; worker: unknown }[];
const slotsOf = (b: StorageBackend): Slots => (b as unknown as { readPool: { slots: Slots } }).readPool.slots;

/**
 * Waits (up to 10 s, generous for a loaded host) until every read thread has opened the database,
 * with no read asked for: they were started by the store, not by a read.
 */
async function settle(b: StorageBackend): Promise<void> {
  const until = Date.now() + 10_000;
  while (!slotsOf(b).every((s) => s.ready) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  expect(slotsOf(b).map((s) => s.ready)).toEqual(slotsOf(b).map(() => true));
}

// A small budget, yet far above a read of an empty store on a thread that is up, so that a loaded
// host does not fail it; that no read pays a thread's start is checked by settle(), which finds
// the threads up before any read is asked for.
const SMALL_TIMEOUT_MS = '500';

function backend(flags: Record<string, string>) {
  const { logger, lines } = capturedLogger();
  const config = loadConfig({ flags: { 'storage.sqlite.path': join(tempDir(), 'ready.db'), ...flags } });
  return { b: createSqliteBackend(sqliteOptions(config), { logger, metrics: createMetrics() }), lines };
}

it('answers the first read after start-up within a small query.timeoutMs', async () => {
  const { b } = backend({ 'query.timeoutMs': SMALL_TIMEOUT_MS, 'storage.sqlite.readThreads': '2' });
  await b.start();
  try {
    await settle(b);
    expect(await b.getServices(TENANT)).toEqual([]);
    expect(await Promise.all([b.getServices(TENANT), b.getServices(TENANT)])).toEqual([[], []]);
  } finally {
    await b.shutdown();
  }
}, 20_000);

it('answers the first read after a thread was replaced within a small query.timeoutMs', async () => {
  const { b } = backend({ 'query.timeoutMs': SMALL_TIMEOUT_MS, 'storage.sqlite.readThreads': '1' });
  await b.start();
  try {
    // The thread is up: a read has been answered on it.
    const until = Date.now() + 10_000;
    while (!(await b.getServices(TENANT).then(() => true, () => false)) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const [slot] = slotsOf(b);
    const first = slot!.worker;
    expect(slot!.ready).toBe(true);
    // A read whose reader leaves stops its thread (as one past its budget does).
    const gone = new AbortController();
    const left = b.searchTraces(TENANT, { limit: 20 }, gone.signal).catch((e: Error) => e.name);
    gone.abort();
    expect(await left).toBe('ReadAborted');
    expect(slot!.worker).not.toBe(first);
    await settle(b);
    expect(await b.getServices(TENANT)).toEqual([]);
  } finally {
    await b.shutdown();
  }
}, 20_000);

it('stops its read threads when closed at once after start-up', async () => {
  const { b, lines } = backend({ 'storage.sqlite.readThreads': '4' });
  await b.start();
  const slots = slotsOf(b);
  expect(slots.filter((s) => s.worker !== undefined)).toHaveLength(4);
  await b.shutdown();
  expect(slots.filter((s) => s.worker !== undefined)).toHaveLength(0);
  // Nothing is logged of the threads stopped by the close.
  expect(lines().filter((l) => /read thread/.test(l.msg))).toEqual([]);
}, 20_000);
