// A read thread's start limit (how long it may take to open the database before it is replaced)
// was 5 s, the busy_timeout of its connection: a thread that waited the whole busy_timeout for a
// lock (for the file's schema, or at the ATTACH of the trace index) could be replaced just before
// it opened, and its read failed as if the filesystem had stopped answering. The limit is now
// derived from the busy_timeout and exceeds two such waits.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { READ_THREAD_START_MS } from '../../src/storage/sqlite/read-pool.ts';
import { openDatabase, openReadOnly } from '../../src/storage/sqlite/store.ts';
import { tempDir } from '../helpers/tmp.ts';

it("gives a read thread longer to open the database than its connection's lock waits", () => {
  const path = join(tempDir(), 'start-limit.db');
  openDatabase(path).close();
  // The connection a read thread opens, and the busy_timeout it waits for a lock.
  const db = openReadOnly(path);
  try {
    const { timeout } = db.prepare('PRAGMA busy_timeout').get() as { timeout: number };
    expect(timeout).toBeGreaterThan(0);
    expect(READ_THREAD_START_MS).toBeGreaterThan(2 * timeout);
  } finally {
    db.close();
  }
});
