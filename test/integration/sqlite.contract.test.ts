import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { describeStorageContract } from '../contract/storage-contract.ts';
import { tempDir } from '../helpers/tmp.ts';
import { sqliteOptions } from '../../src/storage/index.ts';

describeStorageContract('sqlite', async () => {
  const config = loadConfig({ flags: { 'storage.sqlite.path': join(tempDir(), 'contract.db') } });
  const b = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await b.start();
  return b;
});
