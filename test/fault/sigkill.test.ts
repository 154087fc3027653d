// SIGKILL under load, then a restart on the same files: with delivery.ack = durable (the
// write-ahead log) and with stored, every acknowledged span and log record is stored, and none
// twice. SQLite stores a span once by (trace id, span id) whatever happens, so duplicates are
// checked on log records, which have no natural key (only their batch id guards them).
import { randomBytes } from 'node:crypto';
import { appendFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventually, metricValue } from '../helpers/collector.ts';
import { spawnCollector, startLoad, storedInSqlite, type Acked, type CollectorChild } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SPANS_PER_REQUEST = 40;

/** Every acknowledged row is stored (exactly once for logs); returns what is missing, for the message. */
function missing(acked: Acked, db: string, service: string): { spans: number; logs: number; duplicateLogs: number } {
  const { spansByTrace, logCopies } = storedInSqlite(db, service);
  let spans = 0;
  for (const t of acked.traces) spans += SPANS_PER_REQUEST - (spansByTrace.get(t) ?? 0);
  let logs = 0;
  for (const b of acked.logs) if (!logCopies.has(b)) logs++;
  let duplicateLogs = 0;
  for (const n of logCopies.values()) if (n > 1) duplicateLogs += n - 1;
  return { spans, logs, duplicateLogs };
}

/** Waits until the restarted collector has stored every acknowledged row, stops it, and checks none is stored twice. */
async function storesEverythingOnce(c: CollectorChild, acked: Acked, db: string, service: string): Promise<void> {
  await eventually(async () => {
    const m = missing(acked, db, service);
    return m.spans === 0 && m.logs === 0 ? true : undefined;
  }, 20_000, 'every acknowledged row stored');
  c.child.kill('SIGTERM');
  expect(await c.exited).toBe(0);
  expect(missing(acked, db, service)).toEqual({ spans: 0, logs: 0, duplicateLogs: 0 });
}

describe.each(['durable', 'stored'] as const)('SIGKILL under load with delivery.ack = %s', (ack) => {
  it('loses no acknowledged span or log record and stores none twice after a restart on the same files', async () => {
    const dir = tempDir('fault-kill-');
    const db = join(dir, 'th.db');
    const service = `kill-${ack}`;
    // A long flush interval keeps rows queued (or in the log) when the kill comes.
    const flags = { 'storage.sqlite.path': db, 'delivery.ack': ack, 'writer.flushIntervalMs': '300', 'writer.maxBatchRows': '2000' };
    const first = await spawnCollector(flags);
    const load = startLoad(first.httpUrl, { concurrency: 8, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: 10, service });
    await eventually(async () => (load.acked.traces.length >= 100 ? true : undefined), 20_000, 'acknowledged load');
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    const acked = await load.stop();
    expect(acked.traces.length).toBeGreaterThanOrEqual(100);
    expect(acked.logs.length).toBeGreaterThan(0);

    const second = await spawnCollector(flags);
    // The kill came with rows acknowledged and not yet stored: the restart found them in the log.
    if (ack === 'durable') expect(second.output()).toContain('write-ahead log: replaying rows accepted before the last stop');
    // The log's replay is written after the restart; stored mode has nothing to replay.
    await storesEverythingOnce(second, acked, db, service);
  }, 60_000);
});

describe('SIGKILL under load while the write-ahead log writes segments into stored segments\' files', () => {
  it('loses no acknowledged span or log record and stores none twice, after two kills in a row', async () => {
    const dir = tempDir('fault-reuse-');
    const db = join(dir, 'th.db');
    // 512 KiB segments: the log rotates every second or so under this load and writes new segments into
    // stored segments' files (a file lives long enough as one segment to be seen under its next name).
    const flags = { 'storage.sqlite.path': db, 'delivery.ack': 'durable', 'delivery.walSegmentBytes': String(512 << 10), 'writer.flushIntervalMs': '300', 'writer.maxBatchRows': '2000' };
    // A file seen under two segment names (same inode and birth time: a deleted file's inode can
    // come back for a new file, with a new birth time) was stored, kept, and written again.
    const names = new Map<string, Set<string>>();
    const reused = (): boolean => {
      for (const n of readdirSync(join(dir, 'wal')).filter((f) => f.endsWith('.wal'))) {
        try {
          const st = statSync(join(dir, 'wal', n));
          const key = `${st.ino}:${st.birthtimeMs}`;
          names.set(key, (names.get(key) ?? new Set()).add(n));
        } catch {
          // Renamed or deleted between the listing and the stat.
        }
      }
      return [...names.values()].some((s) => s.size >= 2);
    };
    // Each run's load under a service of its own: its log bodies repeat from one load to the next.
    const runs: { acked: Acked; service: string }[] = [];
    for (let kill = 0; kill < 2; kill++) {
      const service = `kill-reuse-${kill}`;
      const c = await spawnCollector(flags);
      const load = startLoad(c.httpUrl, { concurrency: 8, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: 10, service });
      names.clear();
      await eventually(async () => (reused() && load.acked.traces.length >= 100 ? true : undefined), 20_000, 'acknowledged load and a segment file written again');
      c.child.kill('SIGKILL');
      expect(await c.exited).toBeNull();
      runs.push({ acked: await load.stop(), service });
    }
    const last = await spawnCollector(flags);
    await eventually(async () => (runs.every((r) => missing(r.acked, db, r.service).spans + missing(r.acked, db, r.service).logs === 0) ? true : undefined), 20_000, 'every acknowledged row stored');
    last.child.kill('SIGTERM');
    expect(await last.exited).toBe(0);
    for (const r of runs) expect(missing(r.acked, db, r.service)).toEqual({ spans: 0, logs: 0, duplicateLogs: 0 });
  }, 60_000);
});

describe('a torn write-ahead log tail (a crash mid-append)', () => {
  it('is cut, counted and logged at the restart, which stores every acknowledged row', async () => {
    const dir = tempDir('fault-torn-');
    const db = join(dir, 'th.db');
    const service = 'torn';
    const flags = { 'storage.sqlite.path': db, 'writer.flushIntervalMs': '300', 'writer.maxBatchRows': '2000' };
    const first = await spawnCollector(flags);
    const load = startLoad(first.httpUrl, { concurrency: 4, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: 10, service });
    await eventually(async () => (load.acked.traces.length >= 50 ? true : undefined), 20_000, 'acknowledged load');
    first.child.kill('SIGKILL');
    await first.exited;
    const acked = await load.stop();
    // What a crash in the middle of a write leaves: the start of a record, never fsynced, never acknowledged.
    const segments = readdirSync(join(dir, 'wal')).filter((n) => n.endsWith('.wal')).sort();
    const torn = randomBytes(777);
    appendFileSync(join(dir, 'wal', segments.at(-1)!), torn);

    const second = await spawnCollector(flags);
    expect(second.output()).toContain('write-ahead log: cut a torn tail left by a crash mid-append');
    expect(await metricValue(second.opsUrl, 'tracehouse_wal_corrupt_bytes_total', { kind: 'torn_tail' })).toBe(torn.length);
    expect(await metricValue(second.opsUrl, 'tracehouse_wal_corrupt_bytes_total', { kind: 'corrupt' })).toBe(0);
    await storesEverythingOnce(second, acked, db, service);
  }, 60_000);
});
