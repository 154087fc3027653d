// The kill lands after PostgreSQL committed a batch and before the collector heard of it (so the
// write-ahead log still holds the batch as unstored), and again during the restart's replay of
// that batch: a proxy passes everything until a connection that ran a COPY sends COMMIT, then
// lets no answer through. Every replay writes batches PostgreSQL already holds, under their ids:
// every acknowledged row is stored, and no log record twice.
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { eventually } from '../helpers/collector.ts';
import { createTestDatabase, storedOfLoad } from '../helpers/postgres.ts';
import { spawnCollector, startLoad, type Acked } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SPANS_PER_REQUEST = 20;
const LOGS_PER_REQUEST = 10;

/** A proxy to `target` whose connections, once one has sent a COPY and then COMMIT, pass no more answers. */
async function commitSwallowingProxy(target: URL): Promise<{ port: number; swallowed: () => number }> {
  let swallowed = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client: Socket) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let copied = false;
    let frozen = false;
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    upstream.on('data', (d: Buffer) => {
      if (!frozen) client.write(d);
    });
    client.on('data', (d: Buffer) => {
      if (d.includes('COPY ')) copied = true;
      if (copied && !frozen && d.includes('COMMIT\0')) {
        frozen = true;
        swallowed++;
      }
      upstream.write(d);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const addr = server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : 0, swallowed: () => swallowed };
}

const stored = (url: string, service: string, acked: Acked) => storedOfLoad(url, service, acked, SPANS_PER_REQUEST);

it('batches committed but not heard of, then killed again in their replay, are stored once after the next restart', async () => {
  const url = await createTestDatabase('commit_unheard');
  const proxy = await commitSwallowingProxy(new URL(url));
  const viaProxy = new URL(url);
  viaProxy.port = String(proxy.port);
  const service = 'commit-unheard';
  const walDir = join(tempDir('commit-unheard-'), 'wal');
  const flags = (u: string): Record<string, string> => ({
    'storage.backend': 'postgres',
    'storage.postgres.url': u,
    'storage.postgres.poolSize': '8',
    'delivery.ack': 'durable',
    'delivery.walDir': walDir,
    'writer.maxBatchRows': '200',
    'writer.flushIntervalMs': '50',
    'writer.writeTimeoutMs': '1000',
    'writer.retryMaxMs': '200',
  });

  const first = await spawnCollector(flags(viaProxy.href));
  const load = startLoad(first.httpUrl, { concurrency: 4, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: LOGS_PER_REQUEST, service });
  await eventually(async () => ((await stored(url, service, load.acked)).logs >= 20 && load.acked.logs.length >= 100 ? true : undefined), 20_000, 'batches committed unheard of');
  first.child.kill('SIGKILL');
  await first.exited;
  const acked = await load.stop();
  const swallowedFirst = proxy.swallowed();

  // The replay writes them again: committed again (nothing new), unheard of again, and killed.
  const second = await spawnCollector(flags(viaProxy.href));
  expect(second.output()).toContain('write-ahead log: replaying rows accepted before the last stop');
  await eventually(async () => (proxy.swallowed() >= swallowedFirst + 2 ? true : undefined), 20_000, 'replayed batches committed unheard of');
  second.child.kill('SIGKILL');
  await second.exited;
  expect(await stored(url, service, acked)).toMatchObject({ duplicateLogs: 0 });

  const third = await spawnCollector(flags(url));
  await eventually(async () => ((s) => (s.missingSpans + s.missingLogs === 0 ? true : undefined))(await stored(url, service, acked)), 20_000, 'every acknowledged row stored');
  third.child.kill('SIGTERM');
  expect(await third.exited).toBe(0);
  expect(await stored(url, service, acked)).toMatchObject({ missingSpans: 0, missingLogs: 0, duplicateLogs: 0 });
}, 60_000);
