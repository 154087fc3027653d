// A second signal ends a drain at once (exit 1). The operator who asked twice is told what that
// cost: how many accepted rows were not stored yet, and whether they are lost (ack = queued) or
// kept in the write-ahead log for the next start (durable). Before, the line said only "exiting
// without draining", and the stop's own count ("tracehouse stopped") never came.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { expect, it } from 'vitest';
import { eventually } from '../helpers/collector.ts';
import { sqliteCount } from '../helpers/cli.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SPANS = 10;

/**
 * Starts a collector with `flags` while another process holds the file's write lock (its writes
 * wait, its rows stay unstored), exports SPANS spans, waits for `after` in its output (when given),
 * then sends SIGTERM and a second signal; resolves to the second signal's line.
 */
async function secondSignalWhileLocked(flags: Record<string, string>, after?: string): Promise<string | undefined> {
  const c = await spawnCollector(flags);
  const locker = new DatabaseSync(flags['storage.sqlite.path']!);
  locker.exec('BEGIN IMMEDIATE');
  try {
    const traceId = randomBytes(16);
    const now = String(BigInt(Date.now()) * 1_000_000n);
    const spans = Array.from({ length: SPANS }, (_, i) => ({ traceId, spanId: randomBytes(8), name: `op-${i}`, startTimeUnixNano: now, endTimeUnixNano: now }));
    const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }] }) });
    expect(res.status).toBe(200);
    if (after !== undefined) await eventually(async () => (c.output().includes(after) ? true : undefined), 10_000, after);
    c.child.kill('SIGTERM');
    await eventually(async () => (c.output().includes('shutting down: draining accepted data') ? true : undefined), 10_000, 'the drain begun');
    c.child.kill('SIGINT');
    expect(await c.exited, c.output()).toBe(1);
  } finally {
    locker.exec('ROLLBACK');
    locker.close();
  }
  const line = c.output().split('\n').find((l) => l.includes('second signal'));
  expect(line, c.output()).toContain(`"unstoredRows":${SPANS}`);
  return line;
}

for (const ack of ['queued', 'durable'] as const) {
  it(`a second signal during the drain says how many accepted rows were not stored and where they went (${ack})`, async () => {
    const dir = tempDir('second-signal-');
    const flags = { 'storage.sqlite.path': join(dir, 'th.db'), 'delivery.ack': ack, 'delivery.walDir': join(dir, 'wal'), 'writer.flushIntervalMs': '20', 'shutdown.timeoutMs': '30000' };
    const line = await secondSignalWhileLocked(flags);
    if (ack === 'queued') {
      expect(line).toContain(`${SPANS} accepted rows not yet stored are lost`);
      return;
    }
    expect(line).toContain(`${SPANS} accepted rows not yet stored are kept in the write-ahead log and written at the next start`);
    // And they are: the next start writes them.
    const again = await spawnCollector(flags);
    await eventually(async () => (sqliteCount(flags['storage.sqlite.path'], 'spans') === SPANS ? true : undefined), 10_000, `${SPANS} spans stored after the restart`);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  }, 60_000);
}

// Durable: a batch the writer gave up on while running waits in the write-ahead log for its
// rewrite, out of the writer's queue; the line counted only the queue and said 0 for those rows.
it('a second signal counts the rows of a batch given up on while running and waiting in the log for its rewrite (durable)', async () => {
  const dir = tempDir('second-signal-kept-');
  const flags = { 'storage.sqlite.path': join(dir, 'th.db'), 'delivery.ack': 'durable', 'delivery.walDir': join(dir, 'wal'), 'writer.flushIntervalMs': '20', 'writer.writeTimeoutMs': '100', 'writer.retryMaxElapsedMs': '300', 'shutdown.timeoutMs': '30000' };
  const line = await secondSignalWhileLocked(flags, 'gave up writing a batch for now');
  expect(line).toContain(`${SPANS} accepted rows not yet stored are kept in the write-ahead log`);
}, 60_000);
