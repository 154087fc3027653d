// A read thread that cannot be made (new Worker throwing, as at the process's thread limit) for a
// slot left empty (its thread stopped with a read whose client left) failed the next read with
// "could not start a sqlite read thread" although another thread was up and idle: the empty slot
// was tried first. The read now goes to the thread that is up.
// The failure is brought about through ReadPool's test-only testThreadUrl: a URL new Worker refuses.
import { join } from 'node:path';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { ReadPool } from '../../src/storage/sqlite/read-pool.ts';
import { openDatabase } from '../../src/storage/sqlite/store.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { tempDir } from '../helpers/tmp.ts';

it('runs a read on a thread that is up when another cannot be made', async () => {
  const path = join(tempDir(), 'not-made-other.db');
  openDatabase(path).close();
  let refuse = false;
  const real = new URL('../../src/storage/sqlite/read-thread.ts', import.meta.url);
  const pool = new ReadPool({
    path,
    threads: 2,
    timeoutMs: 0,
    logger: pino({ level: 'silent' }),
    onUnreadable: () => undefined,
    testThreadUrl: () => (refuse ? new URL('http://example.invalid/read-thread.ts') : real),
  });
  const slots = (pool as unknown as { slots: { ready: boolean; worker: unknown }[] }).slots;
  const within = <T>(p: Promise<T>): Promise<T | string> => Promise.race([p, new Promise<string>((r) => setTimeout(() => r('no answer after 5 s'), 5000))]);
  try {
    // Both threads up (the first read starts them both).
    expect(await within(pool.run('getServices', [TENANT]))).toEqual([]);
    const until = Date.now() + 10_000;
    while (!slots.every((s) => s.ready) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(slots.map((s) => s.ready)).toEqual([true, true]);
    // No thread can be made any more; a read whose client leaves stops its thread: its slot is
    // left empty (its new thread cannot be made), the other thread idle.
    refuse = true;
    const gone = new AbortController();
    const left = pool.run('getServices', [TENANT], gone.signal).catch((e: Error) => e.name);
    gone.abort();
    expect(await left).toBe('ReadAborted');
    expect(slots.filter((s) => s.worker !== undefined)).toHaveLength(1);
    // The idle one answers.
    const next = await within(pool.run('getServices', [TENANT]).catch((e: Error) => e.message));
    expect(next).toEqual([]);
  } finally {
    await pool.close();
  }
});
