// The write-ahead log's replay waits for the store to run. Collector.start took the first of its
// components for the store, but that is the security component: the log opened and fed its replay
// to the writer before the backend had started, so after every crash with rows in the log the
// first writes failed ('postgres backend is not running'), were logged as a storage failure and
// counted in tracehouse_writer_failed_batches_total, and were
// retried with backoff.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect, it, onTestFinished } from 'vitest';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

/**
 * A collector on PostgreSQL killed with 50 acknowledged spans in its log and none stored (a flush
 * interval of ten minutes keeps them in the log when the kill comes); its flags, for the restart.
 */
async function crashedWithRowsInLog(database: string): Promise<Record<string, string>> {
  const url = await createTestDatabase(database);
  const walDir = join(tempDir('replay-pg-'), 'wal');
  const flags = { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'delivery.ack': 'durable', 'delivery.walDir': walDir, 'writer.flushIntervalMs': '600000' };
  const first = await spawnCollector(flags);
  const now = String(BigInt(Date.now()) * 1_000_000n);
  for (let i = 0; i < 5; i++) {
    const spans = Array.from({ length: 10 }, (_, k) => ({ traceId: randomBytes(16), spanId: randomBytes(8), name: `op-${k}`, startTimeUnixNano: now, endTimeUnixNano: now }));
    const res = await fetch(`${first.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }] }) });
    expect(res.status).toBe(200);
  }
  first.child.kill('SIGKILL');
  await first.exited;
  return flags;
}

it('replays a crashed collector\'s log into PostgreSQL once the store runs, with no failed write', async () => {
  const flags = await crashedWithRowsInLog('replay_before_store');

  const { logger, lines } = capturedLogger();
  const c = await startCollector({ ...flags, 'writer.flushIntervalMs': '20' }, { logger });
  onTestFinished(async () => void (await c.stop()));
  await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total')) === 50 ? true : undefined), 15_000, 'the replayed rows stored');
  expect(lines().filter((l) => l.msg.startsWith('storage write failed')).map((l) => l['err'])).toEqual([]);
  expect(await metricValue(c.opsUrl, 'tracehouse_writer_failed_batches_total')).toBe(0);
}, 60_000);

it('a stop while start-up waits for the store says the log\'s rows are kept for the next start, and counts them', async () => {
  const flags = await crashedWithRowsInLog('replay_stop_waiting');

  // The database still down at the restart (nothing listens where the URL points): start-up waits.
  const down = new URL(flags['storage.postgres.url']!);
  down.port = '1';
  const child = spawn(process.execPath, [CLI, ...Object.entries({ ...flags, 'storage.postgres.url': down.href, 'receiver.grpc.enabled': 'false', 'receiver.http.listen': '127.0.0.1:0', 'query.enabled': 'false', 'ops.listen': '127.0.0.1:0' }).map(([k, v]) => `--${k}=${v}`)], { stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await eventually(async () => (out.includes('storage not reachable yet') ? true : undefined), 15_000, 'start-up waiting for the store');
  child.kill('SIGTERM');
  expect(await exited, out).toBe(0);
  expect(out).toContain('50 rows of the write-ahead log\'s replay were not written before the stop; they are kept in the log');
  expect(out).toContain('"keptInLogRows":50,"msg":"tracehouse stopped"');
}, 60_000);
