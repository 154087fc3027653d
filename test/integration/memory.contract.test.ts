import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.ts';
import { createMemoryBackend } from '../../src/storage/memory/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { describeStorageContract } from '../contract/storage-contract.ts';
import { memoryOptions } from '../../src/storage/index.ts';

describeStorageContract('memory', async () => {
  const b = createMemoryBackend(memoryOptions(loadConfig({ flags: { 'storage.backend': 'memory' } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await b.start();
  return b;
});
