// A store failing 70% of writes at random (the Collector testbed's TestRetrying): half of the
// failures before the write, half after it committed (the answer lost, so the retry writes the
// same batch again). Exact counts: every acknowledged span and log record stored, none twice,
// in each acknowledgement mode.
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { StorageBackend, WriteBatch, WriteResult } from '../../src/storage/backend.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { startLoad, storedInSqlite } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SPANS_PER_REQUEST = 20;

/** The real SQLite store behind a switch that fails 70% of writes, before or after writing. */
function flaky(inner: StorageBackend): { backend: StorageBackend; counts: { attempts: number; failedBefore: number; failedAfter: number } } {
  const counts = { attempts: 0, failedBefore: 0, failedAfter: 0 };
  const fail = (what: string): WriteResult => ({ kind: 'retryable', error: new Error(what) });
  const backend: StorageBackend = Object.create(inner, {
    write: {
      value: async (b: WriteBatch): Promise<WriteResult> => {
        counts.attempts++;
        const roll = Math.random();
        if (roll < 0.35) {
          counts.failedBefore++;
          return fail('injected failure before the write');
        }
        const res = await inner.write(b);
        if (roll < 0.7 && res.kind === 'success') {
          counts.failedAfter++;
          return fail('injected failure after the write committed');
        }
        return res;
      },
    },
  });
  return { backend, counts };
}

describe.each(['durable', 'stored', 'queued'] as const)('a store failing 70 percent of writes, delivery.ack = %s', (ack) => {
  it('stores every acknowledged row exactly once', async () => {
    const dir = tempDir('fault-flaky-');
    const db = join(dir, 'th.db');
    const config = loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': db } });
    const sqlite = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    // Started here: the wrapper's start() would set its state on the wrapper, not on the store
    // (the collector's shutdown closes it through the wrapper).
    await sqlite.start();
    const { backend, counts } = flaky(sqlite);
    const c = await startCollector(
      { 'storage.backend': 'sqlite', 'storage.sqlite.path': db, 'delivery.ack': ack, 'writer.retryInitialMs': '5', 'writer.retryMaxMs': '50', 'writer.maxBatchRows': '300' },
      { backend },
    );
    const service = `flaky-${ack}`;
    const l = startLoad(c.httpUrl, { concurrency: 6, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: 5, service });
    await eventually(async () => (l.acked.traces.length >= 150 ? true : undefined), 30_000, 'acknowledged load');
    const acked = await l.stop();
    expect(acked.unanswered).toBe(0);
    const rows = acked.traces.length * SPANS_PER_REQUEST + acked.logs.length;
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total')) >= rows ? true : undefined), 30_000, 'every acknowledged row written');
    expect(await c.stop()).toBe(0);
    expect(counts.failedBefore).toBeGreaterThan(0);
    expect(counts.failedAfter).toBeGreaterThan(0);

    const { spansByTrace, logCopies } = storedInSqlite(db, service);
    expect(acked.traces.every((t) => spansByTrace.get(t) === SPANS_PER_REQUEST)).toBe(true);
    expect([...spansByTrace.values()].reduce((a, b) => a + b, 0)).toBe(acked.traces.length * SPANS_PER_REQUEST);
    expect(acked.logs.every((b) => logCopies.get(b) === 1)).toBe(true);
    expect(logCopies.size).toBe(acked.logs.length);
  }, 60_000);
});
