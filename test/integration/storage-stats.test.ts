// The storage stats poller: gauges follow the store, a failed measurement is counted and keeps the
// last values, and the scrape itself never measures.
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { StorageStatsPoller, storeStatsOf } from '../../src/telemetry/storage-stats.ts';
import { makeSpan, writeSpans } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

async function gauge(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values as { value: number; labels: Record<string, string> }[] | undefined)?.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

describe('storage stats poller (SQLite)', () => {
  it('sets the gauges from the store, counts a failed measurement and keeps the last values', async () => {
    const config = loadConfig({ flags: { 'storage.sqlite.path': join(tempDir(), 'stats.db') } });
    const backend = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await backend.start();
    const registry = new Registry();
    // An interval far beyond the test: every measurement here is one the test asks for.
    const poller = new StorageStatsPoller(storeStatsOf(backend)!, 'sqlite', { intervalMs: 3_600_000 }, registry, pino({ level: 'silent' }));
    await poller.start();
    await poller.refresh();
    const rows = () => gauge(registry, 'tracehouse_storage_rows', { backend: 'sqlite', signal: 'traces' });
    expect(await rows()).toBe(0);
    expect(await gauge(registry, 'tracehouse_storage_oldest_timestamp_seconds', { signal: 'traces' })).toBeUndefined();

    await writeSpans(backend, [makeSpan({ startTimeUnixNano: 1_700_000_000_500_000_000n }), makeSpan()]);
    // A scrape does not measure: the gauge still says what the last measurement found.
    expect(await rows()).toBe(0);
    await poller.refresh();
    expect(await rows()).toBe(2);
    expect(await gauge(registry, 'tracehouse_storage_oldest_timestamp_seconds', { signal: 'traces' })).toBe(1_700_000_000.5);

    await backend.shutdown();
    await poller.refresh();
    expect(await gauge(registry, 'tracehouse_storage_stats_refresh_failures_total', { backend: 'sqlite' })).toBe(1);
    expect(await rows()).toBe(2);
    await poller.shutdown();
    await poller.shutdown();
  });
});
