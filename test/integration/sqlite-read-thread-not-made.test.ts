// A read thread that could not be made (new Worker throwing, as when the process is at its thread
// limit) left its slot marked busy for good: the read was never answered, nor any read after it
// on a single-thread pool. The read now fails with a clear error and the slot stays free.
// The failure is brought about through ReadPool's test-only testThreadUrl: a URL new Worker refuses.
import { join } from 'node:path';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { ReadPool } from '../../src/storage/sqlite/read-pool.ts';
import { openDatabase } from '../../src/storage/sqlite/store.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { tempDir } from '../helpers/tmp.ts';

it('answers a read whose thread cannot be made with an error, and runs the next one', async () => {
  const path = join(tempDir(), 'not-made.db');
  openDatabase(path).close();
  let refuse = true;
  const real = new URL('../../src/storage/sqlite/read-thread.ts', import.meta.url);
  const pool = new ReadPool({
    path,
    threads: 1,
    timeoutMs: 0,
    logger: pino({ level: 'silent' }),
    onUnreadable: () => undefined,
    testThreadUrl: () => (refuse ? new URL('http://example.invalid/read-thread.ts') : real),
  });
  const within = <T>(p: Promise<T>): Promise<T | string> => Promise.race([p, new Promise<string>((r) => setTimeout(() => r('no answer after 5 s'), 5000))]);
  try {
    const first = await within(pool.run('getServices', [TENANT]).then(
      () => 'answered',
      (e: Error) => e.message,
    ));
    expect(first).toMatch(/^could not start a sqlite read thread: /);
    refuse = false;
    expect(await within(pool.run('getServices', [TENANT]))).toEqual([]);
  } finally {
    await pool.close();
  }
});
