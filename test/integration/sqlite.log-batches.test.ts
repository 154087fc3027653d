// SQLite keeps one copy of a log batch that comes again under its id: log records have no
// natural key, so without this a WAL replay of a batch stored just before a crash (or a retry
// whose reply was lost) would store its records twice.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { createEncoder } from '../../src/storage/rowjson.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { makeLog, writeLogs } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

describe('sqlite: log batches stored once', () => {
  it('ignores a log batch whose id is already stored, and stores the same rows under a new id', () => {
    const db = openDatabase(join(tempDir(), 'b.db'));
    const store = new SqliteStore(db);
    const chunks = createEncoder().encodeLogs(Array.from({ length: 20 }, () => makeLog())).map((c) => c.data);
    const count = () => Number((db.prepare('SELECT count(*) AS n FROM logs').get() as { n: number }).n);
    const id = randomUUID();
    expect(store.writeLogs(chunks, id).kind).toBe('success');
    expect(store.writeLogs(chunks, id).kind).toBe('success');
    expect(count()).toBe(20);
    expect(store.writeLogs(chunks, randomUUID()).kind).toBe('success');
    expect(count()).toBe(40);
  });

  it('through the backend: a batch written twice under one id is one set of records', async () => {
    const config = loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': join(tempDir(), 'k.db') } });
    const backend = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await backend.start();
    try {
      const service = 'once-' + randomUUID();
      const logs = Array.from({ length: 7 }, () => makeLog({ serviceName: service }));
      const id = randomUUID();
      await writeLogs(backend, logs, id);
      await writeLogs(backend, logs, id);
      expect(await backend.searchLogs(TENANT, { service, limit: 100 })).toHaveLength(7);
    } finally {
      await backend.shutdown();
    }
  });
});
