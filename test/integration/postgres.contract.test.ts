import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { describeStorageContract } from '../contract/storage-contract.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresOptions } from '../../src/storage/index.ts';

describeStorageContract('postgres', async () => {
  const url = await createTestDatabase('contract');
  const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url } });
  const b = createPostgresBackend(postgresOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await b.start();
  return b;
});
