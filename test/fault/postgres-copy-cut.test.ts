// A COPY cut mid-stream (the connection reset while a batch's rows are being sent): the batch's
// transaction never commits, so reads see none of its rows, never part of them; the writer
// retries it on a new connection and every acknowledged row is stored once, with no restart.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { expect, it, onTestFinished } from 'vitest';
import { eventually, metricValue } from '../helpers/collector.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { spawnCollector, startLoad, type Acked } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SPANS_PER_REQUEST = 40;
const LOGS_PER_REQUEST = 10;

/** A TCP proxy to `target` that resets (RST both ways) each of the first `cuts` connections once the client has sent `afterBytes`. */
async function cuttingProxy(target: URL, cuts: number, afterBytes: number): Promise<{ port: number; cut: () => number; server: Server }> {
  let done = 0;
  const server = createServer((client: Socket) => {
    const upstream = connect(Number(target.port), target.hostname);
    let sent = 0;
    const doomed = done < cuts;
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    upstream.pipe(client);
    client.on('data', (d: Buffer) => {
      sent += d.length;
      if (doomed && sent > afterBytes && !client.destroyed) {
        done++;
        client.resetAndDestroy();
        upstream.resetAndDestroy();
        return;
      }
      upstream.write(d);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
  const addr = server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : 0, cut: () => done, server };
}

/** Requests whose rows are partly stored (never allowed), and acknowledged rows missing or stored twice. */
async function check(url: string, service: string, acked: Acked): Promise<{ partialTraces: number; partialLogRequests: number; missing: number; duplicateLogs: number }> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const spans = await db.query<{ t: string; n: number }>("SELECT encode(trace_id, 'hex') AS t, count(*)::int AS n FROM tracehouse.spans WHERE service_name = $1 GROUP BY 1", [service]);
    const partialTraces = spans.rows.filter((r) => r.n !== SPANS_PER_REQUEST).length;
    const logs = await db.query<{ b: string; n: number }>("SELECT body->>'stringValue' AS b, count(*)::int AS n FROM tracehouse.logs WHERE service_name = $1 GROUP BY 1", [service]);
    const copies = new Map(logs.rows.map((r) => [r.b, r.n]));
    const requests = new Map<string, number>();
    for (const b of copies.keys()) {
      const req = b.slice(0, b.lastIndexOf('/'));
      requests.set(req, (requests.get(req) ?? 0) + 1);
    }
    const partialLogRequests = [...requests.values()].filter((n) => n !== LOGS_PER_REQUEST).length;
    const byTrace = new Map(spans.rows.map((r) => [r.t, r.n]));
    let missing = 0;
    for (const t of acked.traces) if (!byTrace.has(t)) missing += SPANS_PER_REQUEST;
    for (const b of acked.logs) if (!copies.has(b)) missing++;
    let duplicateLogs = 0;
    for (const n of copies.values()) duplicateLogs += n - 1;
    return { partialTraces, partialLogRequests, missing, duplicateLogs };
  } finally {
    await db.end();
  }
}

it.each(['binary'])('a COPY (%s) cut mid-stream leaves no part of its batch visible, and the batch is stored once after', async (format) => {
  const url = await createTestDatabase(`copy_cut_${format}`);
  const direct = new URL(url);
  // Migrate through the direct URL first: the cuts are for the writes' COPY.
  const proxy = await cuttingProxy(direct, 6, 256 << 10);
  const viaProxy = new URL(url);
  viaProxy.port = String(proxy.port);
  const service = `copy-cut-${format}`;
  const c = await spawnCollector({
    'storage.backend': 'postgres',
    'storage.postgres.url': viaProxy.href,
    'storage.postgres.poolSize': '2',
    'storage.postgres.copyFormat': format,
    'delivery.ack': 'stored',
    'delivery.walDir': join(tempDir('copy-cut-'), 'wal'),
    'writer.maxBatchRows': '4000',
    'writer.flushIntervalMs': '200',
    'writer.retryMaxMs': '200',
    'writer.writeTimeoutMs': '3000',
  });
  const l = startLoad(c.httpUrl, { concurrency: 8, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: LOGS_PER_REQUEST, service });
  // Reads while the cuts happen: never part of a batch.
  await eventually(async () => {
    const s = await check(url, service, l.acked);
    expect(s.partialTraces).toBe(0);
    expect(s.partialLogRequests).toBe(0);
    return proxy.cut() >= 6 && l.acked.traces.length >= 200 ? true : undefined;
  }, 20_000, 'six connections cut and load acknowledged after');
  const acked = await l.stop();
  const s = await check(url, service, acked);
  expect(s).toEqual({ partialTraces: 0, partialLogRequests: 0, missing: 0, duplicateLogs: 0 });
  expect(await metricValue(c.opsUrl, 'tracehouse_writer_failed_batches_total')).toBeGreaterThan(0);
  expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
  c.child.kill('SIGTERM');
  expect(await c.exited).toBe(0);
}, 60_000);
