// Log records an older version stored in SQLite, whose write-ahead log still names their batch:
// versions of 2026-12-01 kept the ids of stored log batches in a table of their own (log_batches)
// instead of a key on each record. A replay after the upgrade of a batch such a version stored
// just before it was stopped (kill -9 between the commit and the log's STORED mark) comes under
// that id again, and must store nothing, as that version's own replay did.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { traceIndexPath } from '../../src/common/sqlite-path.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { searchLogs } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { makeLog } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const enc = createEncoder({});

describe('log batches an older version recorded in log_batches', () => {
  it('stores a batch replayed under a recorded id nothing again, and a new batch as usual', () => {
    const path = join(tempDir(), 'old.db');
    const traceId = 'ab'.repeat(16);
    const logs = [0, 1].map((i) => makeLog({ traceId, serviceName: 'svc', body: { stringValue: `rec-${i}` } }));
    const chunks = () => enc.encodeLogs(logs).map((c) => c.data);
    // A file as such a version left it: the records without a batch key, the batch's id in
    // log_batches (written in the records' transaction), no trace index file.
    {
      const db = openDatabase(path);
      const store = new SqliteStore(db);
      expect(store.writeLogs(chunks(), 'batch-1').kind).toBe('success');
      db.exec(`DROP INDEX logs_batch; ALTER TABLE logs DROP COLUMN batch_key; ALTER TABLE logs DROP COLUMN seq;
               CREATE TABLE log_batches (batch_id TEXT NOT NULL UNIQUE, stored_ms INTEGER NOT NULL);
               CREATE INDEX log_batches_stored ON log_batches (stored_ms);`);
      db.prepare('INSERT INTO log_batches (batch_id, stored_ms) VALUES (?, ?)').run('batch-1', Date.now());
      db.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(traceIndexPath(path) + suffix, { force: true });
    }
    const db = openDatabase(path);
    const store = new SqliteStore(db);
    try {
      const bodies = () => searchLogs(db, DEFAULT_TENANT, { traceId, limit: 10 }).map((l) => l.body);
      expect(bodies()).toHaveLength(2);
      // The replay of the write-ahead log: the same batch under its id.
      expect(store.writeLogs(chunks(), 'batch-1').kind).toBe('success');
      expect(bodies()).toHaveLength(2);
      // Another batch of the same records is other records: stored.
      expect(store.writeLogs(chunks(), 'batch-2').kind).toBe('success');
      expect(bodies()).toHaveLength(4);
    } finally {
      db.close();
    }
  });
});
