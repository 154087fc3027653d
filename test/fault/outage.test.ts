// PostgreSQL going away under load, with a real collector process: stopped and restarted while
// the collector runs (everything acknowledged is stored once, by itself), and stopped while the
// collector is told to shut down (SIGTERM): with the write-ahead log nothing acknowledged is lost
// and the exit is 0; without it the exit code says rows were dropped and the log says how many.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue } from '../helpers/collector.ts';
import { createTestDatabase, startEmbeddedPostgres, type EmbeddedServer, storedOfLoad } from '../helpers/postgres.ts';
import { spawnCollector, startLoad, type Acked, type CollectorChild } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SPANS_PER_REQUEST = 20;
const LOGS_PER_REQUEST = 5;

const stored = (url: string, service: string, acked: Acked) => storedOfLoad(url, service, acked, SPANS_PER_REQUEST);

/** Waits until PostgreSQL holds every acknowledged span and log record. */
async function allStored(url: string, service: string, acked: Acked, what: string): Promise<void> {
  await eventually(async () => {
    const s = await stored(url, service, acked);
    return s.missingSpans === 0 && s.missingLogs === 0 ? s : undefined;
  }, 30_000, what);
}

/** Stops the collector (SIGTERM: exit 0) and checks that nothing acknowledged is missing or stored twice. */
async function stopsStoredOnce(c: CollectorChild, url: string, service: string, acked: Acked): Promise<void> {
  c.child.kill('SIGTERM');
  expect(await c.exited).toBe(0);
  expect(await stored(url, service, acked)).toMatchObject({ missingSpans: 0, missingLogs: 0, duplicateLogs: 0 });
}

describe('PostgreSQL outages with a real collector process', () => {
  let server: EmbeddedServer;
  beforeAll(async () => {
    server = await startEmbeddedPostgres();
  }, 60_000);
  afterAll(async () => {
    await server?.destroy();
  });

  const flagsFor = (url: string, dir: string, ack: string): Record<string, string> => ({
    'storage.backend': 'postgres',
    'storage.postgres.url': url,
    'storage.postgres.poolSize': '2',
    'delivery.ack': ack,
    'delivery.walDir': join(dir, 'wal'),
    'writer.maxQueueBytes': String(4 << 20),
    'writer.maxBatchRows': '500',
    'writer.flushIntervalMs': '50',
    'writer.retryMaxMs': '200',
    'writer.writeTimeoutMs': '3000',
    'shutdown.timeoutMs': '2000',
  });
  const load = (url: string, service: string) => startLoad(url, { concurrency: 4, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: LOGS_PER_REQUEST, service });
  const ackedRows = (a: Acked) => a.traces.length * SPANS_PER_REQUEST + a.logs.length;

  it('PostgreSQL down and back under load: every acknowledged row stored once, without a restart', async () => {
    const url = await createTestDatabase('fault_outage', server.url);
    const service = 'outage-live';
    const c = await spawnCollector(flagsFor(url, tempDir('fault-pg-'), 'durable'));
    const l = load(c.httpUrl, service);
    await eventually(async () => (l.acked.traces.length >= 20 ? true : undefined), 20_000, 'load before the outage');
    await server.stop();
    const before = l.acked.traces.length;
    await eventually(async () => (l.acked.traces.length >= before + 20 || l.acked.refused > 0 ? true : undefined), 20_000, 'load during the outage');
    await new Promise((r) => setTimeout(r, 1000));
    await server.start();
    await new Promise((r) => setTimeout(r, 1000));
    const acked = await l.stop();
    expect(acked.refused + acked.traces.length).toBeGreaterThan(before);
    await allStored(url, service, acked, 'every acknowledged row stored');
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
    await stopsStoredOnce(c, url, service, acked);
  }, 60_000);

  it('SIGTERM while the database is down with the write-ahead log: exit 0, rows kept, a restart stores them once', async () => {
    const url = await createTestDatabase('fault_sigterm_wal', server.url);
    const service = 'sigterm-wal';
    const dir = tempDir('fault-pg-');
    const c = await spawnCollector(flagsFor(url, dir, 'durable'));
    const l = load(c.httpUrl, service);
    await eventually(async () => (l.acked.traces.length >= 20 ? true : undefined), 20_000, 'load before the outage');
    await server.stop();
    try {
      const before = l.acked.traces.length;
      await eventually(async () => (l.acked.traces.length >= before + 20 ? true : undefined), 20_000, 'acknowledged during the outage');
      c.child.kill('SIGTERM');
      expect(await c.exited).toBe(0);
      expect(c.output()).toMatch(/accepted rows could not be stored; they are kept in the write-ahead log/);
    } finally {
      await server.start();
    }
    const acked = await l.stop();
    const atStop = await stored(url, service, acked);
    expect(atStop.missingSpans + atStop.missingLogs).toBeGreaterThan(0);

    const again = await spawnCollector(flagsFor(url, dir, 'durable'));
    await allStored(url, service, acked, 'the kept rows stored after the restart');
    await stopsStoredOnce(again, url, service, acked);
  }, 60_000);

  it('SIGTERM while the database is down without a write-ahead log (queued): exit 3, the dropped count logged once and exact', async () => {
    const url = await createTestDatabase('fault_sigterm_queued', server.url);
    const service = 'sigterm-queued';
    const c = await spawnCollector(flagsFor(url, tempDir('fault-pg-'), 'queued'));
    const l = load(c.httpUrl, service);
    await eventually(async () => (l.acked.traces.length >= 20 ? true : undefined), 20_000, 'load before the outage');
    await server.stop();
    try {
      const before = l.acked.traces.length;
      await eventually(async () => (l.acked.traces.length >= before + 20 ? true : undefined), 20_000, 'acknowledged during the outage');
      c.child.kill('SIGTERM');
      expect(await c.exited).toBe(3);
    } finally {
      await server.start();
    }
    const acked = await l.stop();
    const lines = c.output().split('\n').filter((x) => x.includes('shutdown gave up on'));
    expect(lines).toHaveLength(1);
    const dropped = Number(/"rows":(\d+)/.exec(lines[0]!)![1]);
    const s = await stored(url, service, acked);
    expect(s.duplicateLogs).toBe(0);
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBe(ackedRows(acked) - s.spans - s.logs);
  }, 60_000);
});
