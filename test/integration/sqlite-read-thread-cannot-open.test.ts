// A read thread that fails to open the database (its trace index's file made unopenable: here a
// directory in its place) is a read's failure, not a reason to wait: the read is answered with the
// error, as it was before reads went only to threads that had opened it, and with query.timeoutMs
// = 0 too. Each read waiting starts at most one thread: a thread that cannot open is not started
// again and again for the same read. The pool is made as the store makes it (its threads started
// with it, ReadPool.start) after the file is made unopenable, so its thread never opens it.
import { mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { traceIndexPath } from '../../src/common/sqlite-path.ts';
import { ReadPool } from '../../src/storage/sqlite/read-pool.ts';
import { openDatabase } from '../../src/storage/sqlite/store.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { tempDir } from '../helpers/tmp.ts';

it('answers a read whose thread cannot open the database with the error, and starts one thread for it', async () => {
  const path = join(tempDir(), 'cannot-open.db');
  const { logger, lines } = capturedLogger();
  openDatabase(path).close();
  const index = traceIndexPath(path);
  renameSync(index, `${index}.aside`);
  mkdirSync(index);
  const pool = new ReadPool({ path, threads: 1, timeoutMs: 0, logger, onUnreadable: () => undefined });
  pool.start();
  try {
    const read = pool.run('getServices', [TENANT]).then(
      () => 'answered',
      (e: Error) => e,
    );
    const outcome = await Promise.race([read, new Promise((r) => setTimeout(() => r('no answer after 3 s'), 3000))]);
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toMatch(/open/i);
    // Named as README says, so the operator knows which file and which key to look at.
    expect((outcome as Error).message).toContain(`storage.sqlite.path = ${JSON.stringify(path)}`);
    expect(lines().filter((l) => l.msg === 'sqlite read thread stopped; reads go to a new one')).toHaveLength(1);
  } finally {
    await pool.close();
  }
});
