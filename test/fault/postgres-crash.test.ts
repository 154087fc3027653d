// Crash consistency with the PostgreSQL store (a server process of its own, which outlives the
// collector as in production): the collector SIGKILLed under load with delivery.ack = durable, and
// again while its restart replays the write-ahead log under new load; then every acknowledged span
// and log record is stored, and no log record twice (log records have no natural key: the batch
// id, in batch_key, and the record's place in its batch, in seq, guard them). The kill between a
// commit and the log's mark of it, made certain: postgres-commit-unacknowledged.test.ts.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/collector.ts';
import { createTestDatabase, storedOfLoad } from '../helpers/postgres.ts';
import { spawnCollector, startLoad, type Acked } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SPANS_PER_REQUEST = 20;
const LOGS_PER_REQUEST = 10;

const stored = (url: string, service: string, acked: Acked) => storedOfLoad(url, service, acked, SPANS_PER_REQUEST);

function flagsFor(url: string, dir: string, ack: string): Record<string, string> {
  return {
    'storage.backend': 'postgres',
    'storage.postgres.url': url,
    'storage.postgres.poolSize': '4',
    'delivery.ack': ack,
    'delivery.walDir': join(dir, 'wal'),
    // Small batches, several in flight: many commits per second, so the kill lands near one.
    'writer.maxBatchRows': '200',
    'writer.flushIntervalMs': '100',
  };
}

describe.each(['durable'] as const)('PostgreSQL: SIGKILL under load with delivery.ack = %s', (ack) => {
  it('stores every acknowledged span and log record once after a restart, and after a kill during the replay', async () => {
    const url = await createTestDatabase(`crash_${ack}`);
    const dir = tempDir('pg-crash-');
    const service = `pg-kill-${ack}`;
    const flags = flagsFor(url, dir, ack);
    const runs: Acked[] = [];
    const first = await spawnCollector(flags);
    const load = startLoad(first.httpUrl, { concurrency: 8, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: LOGS_PER_REQUEST, service });
    await eventually(async () => (load.acked.traces.length >= 150 ? true : undefined), 20_000, 'acknowledged load');
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    runs.push(await load.stop());

    // The restart replays the log (durable) under load again, and is killed while it writes.
    const second = await spawnCollector(flags);
    const load2 = startLoad(second.httpUrl, { concurrency: 8, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: LOGS_PER_REQUEST, service: `${service}-2` });
    await eventually(async () => (load2.acked.traces.length >= 50 ? true : undefined), 20_000, 'acknowledged load after the restart');
    second.child.kill('SIGKILL');
    expect(await second.exited).toBeNull();
    const acked2 = await load2.stop();

    const third = await spawnCollector(flags);
    await eventually(async () => {
      const a = await stored(url, service, runs[0]!);
      const b = await stored(url, `${service}-2`, acked2);
      return a.missingSpans + a.missingLogs + b.missingSpans + b.missingLogs === 0 ? true : undefined;
    }, 20_000, 'every acknowledged row stored');
    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);
    expect(await stored(url, service, runs[0]!)).toMatchObject({ missingSpans: 0, missingLogs: 0, duplicateLogs: 0 });
    expect(await stored(url, `${service}-2`, acked2)).toMatchObject({ missingSpans: 0, missingLogs: 0, duplicateLogs: 0 });
  }, 90_000);
});
