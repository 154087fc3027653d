// PostgreSQL itself killed hard (immediate shutdown: crash recovery at its next start) while a
// collector process writes under load, under each delivery.ack: nothing acknowledged is lost or
// stored twice, the collector says it is not ready meanwhile and is ready again by itself, with
// no restart of its own, and counts no drop.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue } from '../helpers/collector.ts';
import { createTestDatabase, startEmbeddedPostgres, type EmbeddedServer, storedOfLoad } from '../helpers/postgres.ts';
import { spawnCollector, startLoad, type Acked } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SPANS_PER_REQUEST = 20;
const LOGS_PER_REQUEST = 5;

const stored = (url: string, service: string, acked: Acked) => storedOfLoad(url, service, acked, SPANS_PER_REQUEST);

const ready = async (opsUrl: string): Promise<number> => (await fetch(`${opsUrl}/readyz`)).status;

describe('PostgreSQL killed hard under load', () => {
  let server: EmbeddedServer;
  beforeAll(async () => {
    // Commits flushed (synchronous_commit on): what the server said was committed survives its crash.
    server = await startEmbeddedPostgres({ fast: false });
  }, 60_000);
  afterAll(async () => {
    await server?.destroy();
  });

  it.each(['durable', 'stored', 'queued'])('delivery.ack = %s: every acknowledged row stored once, ready again without a restart', async (ack) => {
    const url = await createTestDatabase(`pgkill_${ack}`, server.url);
    const service = `pgkill-${ack}`;
    const c = await spawnCollector({
      'storage.backend': 'postgres',
      'storage.postgres.url': url,
      'storage.postgres.poolSize': '4',
      'delivery.ack': ack,
      'delivery.walDir': join(tempDir('pg-kill-'), 'wal'),
      'writer.maxBatchRows': '200',
      'writer.flushIntervalMs': '50',
      'writer.retryMaxMs': '300',
      'writer.writeTimeoutMs': '3000',
    });
    const l = startLoad(c.httpUrl, { concurrency: 6, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: LOGS_PER_REQUEST, service });
    await eventually(async () => (l.acked.traces.length >= 50 ? true : undefined), 20_000, 'load before the crash');
    // SIGQUIT to the postmaster: an immediate shutdown, no checkpoint; the next start recovers from its WAL.
    process.kill(server.pid()!, 'SIGQUIT');
    await server.stop();
    await eventually(async () => ((await ready(c.opsUrl)) === 503 ? true : undefined), 10_000, 'not ready while the database is down');
    expect(await metricValue(c.opsUrl, 'tracehouse_ready')).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    await server.start();
    await eventually(async () => ((await ready(c.opsUrl)) === 200 ? true : undefined), 15_000, 'ready again');
    const before = l.acked.traces.length;
    await eventually(async () => (l.acked.traces.length >= before + 20 ? true : undefined), 15_000, 'load after the crash');
    const acked = await l.stop();
    await eventually(async () => {
      const m = await stored(url, service, acked);
      return m.missingSpans + m.missingLogs === 0 ? true : undefined;
    }, 20_000, 'every acknowledged row stored');
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_failed_batches_total')).toBeGreaterThan(0);
    expect(await metricValue(c.opsUrl, 'tracehouse_ready')).toBe(1);
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_queue_oldest_age_seconds')) === 0 ? true : undefined), 10_000, 'nothing left waiting');
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);
    expect(await stored(url, service, acked)).toMatchObject({ missingSpans: 0, missingLogs: 0, duplicateLogs: 0 });
  }, 90_000);
});
