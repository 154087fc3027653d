// The SQLite backend's threads carry names of their own, down to the operating system's thread
// name: an operator's `top -H` or `perf` (and the bench's split of CPU by thread) tells its write
// and read threads from the decode workers, which Node names all alike (WorkerThread).
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { threadCpuSeconds } from '../../bench/harness.ts';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

/** This process's thread names, as `top -H` shows them (a thread that ends between the listing and its read is left out). */
const threadNames = (): string[] => threadCpuSeconds(process.pid).map((t) => t.name);

describe.runIf(process.platform === 'linux')('sqlite thread names', () => {
  it('names its write thread sqlite-write and its read threads sqlite-read while they run', async () => {
    const config = loadConfig({ flags: { 'storage.sqlite.path': join(tempDir(), 'names.db') } });
    const b = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await b.start();
    try {
      const span = makeSpan({ serviceName: 'names' });
      const chunks = createEncoder({}).encodeSpans([span]).map((c) => c.data);
      expect((await b.write({ signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows: 1, bytes: chunks[0]!.byteLength, chunks, batchId: 'names' })).kind).toBe('success');
      expect((await b.getTrace(DEFAULT_TENANT, span.traceId)).map((s) => s.spanId)).toEqual([span.spanId]);
      const during = threadNames();
      expect(during.filter((n) => n === 'sqlite-write')).toHaveLength(1);
      expect(during.filter((n) => n === 'sqlite-read').length).toBeGreaterThanOrEqual(1);
    } finally {
      await b.shutdown();
    }
  });
});
