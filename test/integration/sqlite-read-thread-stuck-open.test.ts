// A read thread whose database open never returns (a file on a network filesystem that stopped
// answering; here a FIFO in the trace index's place, whose open(2) blocks until a writer comes)
// kept its read waiting without limit: query.timeoutMs ran only from the thread's "started". The
// budget now runs from the read's arrival, so the reader gets a 503-worthy QueryTimeout in time,
// and a thread that has not opened the database within its start limit is replaced. The pool is
// made as the store makes it (its threads started with it, ReadPool.start) after the FIFO is put
// in place, so its thread never opens the real file.
import { execFileSync } from 'node:child_process';
import { openSync, closeSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { traceIndexPath } from '../../src/common/sqlite-path.ts';
import { ReadPool } from '../../src/storage/sqlite/read-pool.ts';
import { openDatabase } from '../../src/storage/sqlite/store.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { tempDir } from '../helpers/tmp.ts';

it('answers a read whose thread cannot open the database within query.timeoutMs', async () => {
  const path = join(tempDir(), 'stuck.db');
  const { logger, lines } = capturedLogger();
  openDatabase(path).close();
  const index = traceIndexPath(path);
  renameSync(index, `${index}.aside`);
  execFileSync('mkfifo', [index]);
  let released = false;
  // A writer lets every open blocked on the FIFO return (then reading an empty file), so the stuck threads end.
  const release = (): void => {
    if (released) return;
    released = true;
    // Read and write (r+): never blocks, whether or not a thread is blocked in its open.
    closeSync(openSync(index, 'r+'));
  };
  // The start limit shortened (READ_THREAD_START_MS is three busy timeouts: 15 s) to keep the test short.
  const pool = new ReadPool({ path, threads: 1, timeoutMs: 300, logger, onUnreadable: () => undefined, testStartLimitMs: 1_000 });
  pool.start();
  try {
    const t = performance.now();
    const read = pool.run('getServices', [TENANT]).then(
      () => 'answered',
      (e: Error) => e,
    );
    const outcome = await Promise.race([read, new Promise((r) => setTimeout(() => r('no answer after 3 s'), 3000))]);
    const ms = performance.now() - t;
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).name).toBe('QueryTimeout');
    expect((outcome as Error).message).toMatch(/query\.timeoutMs \(300 ms\)/);
    expect(ms).toBeLessThan(1500);
    // The thread that never opened the database is replaced once it has had its start limit.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(lines().filter((l) => /read thread/.test(l.msg)).map((l) => l.msg)).toContain('sqlite read thread did not open the database in time; reads go to a new one');
  } finally {
    release();
    await pool.close();
  }
}, 20_000);
