// A write the SQLite backend has not answered when it shuts down settles (retryable: it may have
// committed), and writing the batch again under its id after a restart stores each span once.
// Before, the write thread was stopped with the write's promise left pending for good.
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import type { WriteBatch, WriteResult } from '../../src/storage/backend.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { makeTrace } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('sqlite shutdown', () => {
  it('settles a write in flight when it shuts down, and the batch written again is stored once', async () => {
    const config = loadConfig({ flags: { 'storage.sqlite.path': join(tempDir(), 'shutdown.db') } });
    const backend = () => createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    // Large enough that the write thread is still at it when shutdown stops it.
    const traces = Array.from({ length: 400 }, () => makeTrace(50, { serviceName: 'shutdown' }));
    const chunks = createEncoder({}).encodeSpans(traces.flat()).map((c) => c.data);
    const batch: WriteBatch = { signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows: 20_000, bytes: chunks.reduce((n, c) => n + c.byteLength, 0), chunks, batchId: 'in-flight' };

    const first = backend();
    await first.start();
    const write = first.write(batch);
    await first.shutdown();
    const outcome = await Promise.race([write, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), 5000))]);
    expect(outcome === 'pending' ? outcome : (outcome as WriteResult).kind).toMatch(/^(success|retryable)$/);

    const second = backend();
    await second.start();
    try {
      expect((await second.write(batch)).kind).toBe('success');
      for (const trace of [traces[0]!, traces[399]!]) {
        expect((await second.getTrace(DEFAULT_TENANT, trace[0]!.traceId)).map((s) => s.spanId).sort()).toEqual(trace.map((s) => s.spanId).sort());
      }
      expect((await second.stats!()).signals.find((s) => s.signal === 'traces')?.rows).toBe(20_000);
    } finally {
      await second.shutdown();
    }
  });
});
