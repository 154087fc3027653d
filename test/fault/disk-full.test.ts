// Disk full, on a real tiny filesystem (tmpfs; the suite runs as root in CI, where mounting
// works; elsewhere these tests are skipped and say why). The write-ahead log's disk filling up
// and the SQLite file's disk filling up: exports are refused as retryable, nothing acknowledged
// is lost, and once space returns everything acknowledged is stored, once.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { gated } from '../helpers/backends.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { eventually, getJson, metricValue, startCollector } from '../helpers/collector.ts';
import { startLoad, storedInSqlite, type Acked } from '../helpers/process.ts';
import { makeSpan, writeSpans } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const SPANS_PER_REQUEST = 20;
const DAY = 86_400_000_000_000n;
const mounts: string[] = [];

/** A fresh tmpfs of this size, or the reason there cannot be one. */
function tinyFs(size: string): string | Error {
  const dir = tempDir('fault-fs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    return err as Error;
  }
  mounts.push(dir);
  return dir;
}

const probe = tinyFs('64k');
const canMount = typeof probe === 'string';

afterEach(() => {
  for (const m of mounts.splice(0)) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'pipe' });
    } catch {
      // Already gone.
    }
  }
});

/** Fills a filesystem with a ballast file until it refuses; returns its path. */
function fill(dir: string): string {
  const path = join(dir, 'ballast');
  const mib = Buffer.alloc(64 * 1024, 1);
  let n = 0;
  for (;;) {
    try {
      writeFileSync(path, mib, { flag: n === 0 ? 'w' : 'a' });
      n++;
    } catch {
      return path;
    }
  }
}

/** A collector on SQLite (db) whose write-ahead log is on the tiny filesystem walFs. */
function walOnTinyFs(walFs: string, db: string): Record<string, string> {
  return {
    'storage.backend': 'sqlite',
    'storage.sqlite.path': db,
    'delivery.walDir': join(walFs, 'wal'),
    // The filesystem (2 MiB) fills long before the log's own bound would refuse.
    'delivery.walMaxBytes': String(64 << 20),
    'delivery.walSegmentBytes': String(64 << 10),
    'receiver.maxMessageBytes': String(1 << 20),
  };
}

function expectAllStoredOnce(acked: Acked, db: string, service: string): void {
  const { spansByTrace, logCopies } = storedInSqlite(db, service);
  expect(acked.traces.filter((t) => spansByTrace.get(t) !== SPANS_PER_REQUEST)).toEqual([]);
  expect(acked.logs.filter((b) => logCopies.get(b) !== 1)).toEqual([]);
  expect([...logCopies.values()].every((n) => n === 1)).toBe(true);
}

describe.skipIf(!canMount)(`disk full (tmpfs${canMount ? '' : `: cannot mount here: ${(probe as Error).message.split('\n')[0]}`})`, () => {
  it('write-ahead log disk full: refuses as retryable, loses nothing, accepts again once stored segments free space', async () => {
    const walFs = tinyFs('2m') as string;
    const dir = tempDir('fault-disk-');
    const db = join(dir, 'th.db');
    const config = loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': db } });
    const sqlite = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await sqlite.start();
    const gate = gated(sqlite);
    const c = await startCollector(walOnTinyFs(walFs, db), { backend: gate.backend });
    // The store stalls, so nothing leaves the log and its disk fills.
    gate.close();
    const service = 'wal-disk-full';
    const l = startLoad(c.httpUrl, { concurrency: 4, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: 5, service });
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'wal_unavailable' })) > 0 ? true : undefined), 20_000, 'refusals once the disk is full');
    const ackedWhileFull = l.acked.traces.length;
    expect(ackedWhileFull).toBeGreaterThan(0);
    // Space returns as the store takes the rows and whole segments are deleted.
    gate.open();
    // The backlog is stored first and a segment is deleted only once all of it is stored: on a
    // busy CI machine that took more than 20 s once.
    await eventually(async () => (l.acked.traces.length >= ackedWhileFull + 50 ? true : undefined), 45_000, 'accepting again');
    const acked = await l.stop();
    expect(acked.refused).toBeGreaterThan(0);
    expect(acked.unanswered).toBe(0);
    expect(await c.stop()).toBe(0);
    expectAllStoredOnce(acked, db, service);
  }, 100_000);

  it('write-ahead log disk filled by another file: accepts again once that file is gone, with no segment deleted', async () => {
    const walFs = tinyFs('2m') as string;
    const db = join(tempDir('fault-disk-'), 'th.db');
    const c = await startCollector(walOnTinyFs(walFs, db));
    const service = 'wal-disk-other-file';
    const l = startLoad(c.httpUrl, { concurrency: 2, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: 5, service });
    await eventually(async () => (l.acked.traces.length >= 10 ? true : undefined), 20_000, 'accepting');
    // Another file on the log's volume takes its room (a database beside it, say); the store keeps
    // up, so the log soon holds nothing unstored, and no segment of it is left to delete.
    const ballast = fill(walFs);
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'wal_unavailable' })) > 0 ? true : undefined), 20_000, 'refusals once the disk is full');
    rmSync(ballast);
    const before = l.acked.traces.length;
    await eventually(async () => (l.acked.traces.length >= before + 20 ? true : undefined), 20_000, 'accepting again once the other file is gone');
    const acked = await l.stop();
    expect(acked.unanswered).toBe(0);
    expect(await c.stop()).toBe(0);
    expectAllStoredOnce(acked, db, service);
  }, 60_000);

  it('SQLite disk full: writes retried, exports refused once the queue is full, everything acknowledged stored once space returns', async () => {
    // Room for the rows sent after space returns; the ballast takes all of it before.
    const dbFs = tinyFs('32m') as string;
    mkdirSync(join(dbFs, 'data'));
    const db = join(dbFs, 'data', 'th.db');
    const flags = {
      'storage.backend': 'sqlite',
      'storage.sqlite.path': db,
      'delivery.walDir': join(tempDir('fault-disk-'), 'wal'),
      'writer.maxQueueBytes': String(2 << 20),
      'writer.retryMaxMs': '100',
      // More WAL between checkpoints than the disk holds: SQLite would never reach a checkpoint,
      // and its WAL would keep the disk full, had the store not gone back to short ones.
      'storage.sqlite.checkpointMiB': '64',
    };
    const c = await startCollector(flags);
    const ballast = fill(dbFs);
    const service = 'sqlite-disk-full';
    const l = startLoad(c.httpUrl, { concurrency: 4, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: 5, service });
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'queue_full' })) > 0 ? true : undefined), 20_000, 'refusals once the queue is full');
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_failed_batches_total', { kind: 'retryable' })).toBeGreaterThan(0);
    await eventually(async () => ((await getJson(c.opsUrl, '/readyz')).status === 503 ? true : undefined), 10_000, 'not ready');
    const before = l.acked.traces.length;
    rmSync(ballast);
    await eventually(async () => (l.acked.traces.length >= before + 50 ? true : undefined), 20_000, 'accepting again');
    const acked = await l.stop();
    // Under full load the queue may be full at any moment; once it drains, the collector is ready.
    await eventually(async () => ((await getJson(c.opsUrl, '/readyz')).status === 200 ? true : undefined), 20_000, 'ready again');
    expect(acked.refused).toBeGreaterThan(0);
    expect(acked.unanswered).toBe(0);
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
    expect(await c.stop()).toBe(0);
    // With ack=durable, what the store had not taken when the collector stopped (a busy machine
    // makes that likely here) stays in the write-ahead log and is stored by the next start.
    await (await startCollector(flags)).stop();
    expectAllStoredOnce(acked, db, service);
  }, 90_000);

  it('SQLite retention on a full disk: the failed pass is logged as such and the write thread goes on', async () => {
    // Deleting rows writes pages into SQLite's WAL, so on a full disk a retention pass fails;
    // before, it threw on the write thread, which died and was started again.
    const dbFs = tinyFs('32m') as string;
    const path = join(dbFs, 'th.db');
    const sqlite = (retentionDays: number, logger = pino({ level: 'silent' })) =>
      createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': path, 'storage.sqlite.retentionDays': String(retentionDays) } })), { logger, metrics: createMetrics() });
    const now = BigInt(Date.now()) * 1_000_000n;
    const old = Array.from({ length: 3000 }, (_, i) => makeSpan({ name: `old ${i}`, startTimeUnixNano: now - 10n * DAY + BigInt(i), endTimeUnixNano: now - 10n * DAY + BigInt(i) + 1n }));
    const first = sqlite(0);
    await first.start();
    await writeSpans(first, old);
    await first.shutdown();
    const ballast = fill(dbFs);
    // Room for the connections' shared memory, not for the deletions.
    truncateSync(ballast, Math.max(0, statSync(ballast).size - (256 << 10)));
    const { logger, lines } = capturedLogger();
    const backend = sqlite(7, logger);
    await backend.start();
    try {
      const failed = await eventually(async () => lines().find((l) => l.msg.startsWith('sqlite retention failed')), 20_000, 'the retention pass to fail');
      expect(failed).toMatchObject({ level: 50, retentionDays: 7, err: expect.stringMatching(/full/i) });
      rmSync(ballast);
      const fresh = makeSpan({ startTimeUnixNano: now, endTimeUnixNano: now + 1n });
      await writeSpans(backend, [fresh]);
      expect(lines().filter((l) => /write thread stopped/.test(l.msg))).toEqual([]);
      expect((await backend.getTrace('default', old[0]!.traceId)).map((s) => s.name)).toEqual(['old 0']);
      expect((await backend.getTrace('default', fresh.traceId)).map((s) => s.spanId)).toEqual([fresh.spanId]);
    } finally {
      await backend.shutdown();
    }
  }, 60_000);
});
