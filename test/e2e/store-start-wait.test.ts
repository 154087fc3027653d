// A collector started beside its database (docker compose, a pod and its PostgreSQL starting
// together) found nothing listening and exited 1 at once: without a supervisor that restarts it,
// the collector stayed down. Start-up now waits for a store it cannot reach (storage.startWaitMs),
// while a refused login still stops it at once. `tracehouse migrate` (the chart's pre-install Job)
// waits the same way, and when the wait ends the message names the key and value it looked at.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { promisify } from 'node:util';
import { CLI } from '../helpers/cli.ts';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { freePort } from '../helpers/os.ts';


/** Forwards connections on port to target (the database "coming up" there). */
function forward(port: number, target: URL): Promise<{ server: Server; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () =>
      resolve({
        server,
        close: () => {
          for (const s of sockets) s.destroy();
          return new Promise<void>((r) => server.close(() => r()));
        },
      }),
    );
  });
}

function traces(traceId: Buffer): Uint8Array {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spans = [0, 1, 2].map((i) => ({ traceId, spanId: randomBytes(8), name: `s${i}`, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n) }));
  return encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'late-db' } }] }, scopeSpans: [{ spans }] }] });
}

describe('start-up with a store not reachable yet', () => {
  let db: URL;
  beforeAll(async () => {
    db = new URL(await createTestDatabase('start_wait'));
  });

  it('waits for a PostgreSQL that comes up after the collector, then stores', async () => {
    const port = await freePort();
    const url = new URL(db);
    url.host = `127.0.0.1:${port}`;
    const t0 = Date.now();
    const starting = startCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': url.toString(), 'storage.postgres.schema': 'late', 'storage.startWaitMs': '30000' });
    let c: TestCollector | undefined;
    await new Promise((r) => setTimeout(r, 1500));
    const proxy = await forward(port, db);
    try {
      c = await starting;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
      const client = new RawOtlpClient(c.grpcAddress);
      const traceId = randomBytes(16);
      try {
        expect((await client.traces(traces(traceId))).error).toBeNull();
      } finally {
        client.close();
      }
      // Acknowledged once in the write-ahead log: stored a moment later.
      const spans = await eventually(async () => {
        const r = await getJson(c!.queryUrl, `/v1/traces/${traceId.toString('hex')}`);
        return r.status === 200 ? r.body.resourceSpans[0].scopeSpans[0].spans : undefined;
      });
      expect(spans).toHaveLength(3);
    } finally {
      await c?.stop();
      await starting.catch(() => undefined);
      await proxy.close();
    }
  }, 40_000);

  it('fails at once on a refused login, and with storage.startWaitMs 0 on nothing listening', async () => {
    const stranger = new URL(db);
    stranger.username = 'nobody_at_all';
    const t0 = Date.now();
    await expect(startCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': stranger.toString(), 'storage.startWaitMs': '30000' })).rejects.toThrow(/nobody_at_all/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const closed = new URL(db);
    closed.host = `127.0.0.1:${await freePort()}`;
    // The key and its value (password hidden), and the option that would have waited.
    const failed = await startCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': closed.toString(), 'storage.startWaitMs': '0' }).then(
      (c) => c.stop(),
      (err: Error) => err.message,
    );
    expect(failed).toMatch(new RegExp(`^storage\\.postgres\\.url = "postgres://[^"]*127\\.0\\.0\\.1:${closed.port}/[^"]+": not reachable \\(storage\\.startWaitMs = 0: no wait\\): .*ECONNREFUSED`));
    if (closed.password) expect(failed).not.toContain(closed.password);
  }, 30_000);

  it('has `tracehouse migrate` wait for a PostgreSQL that comes up after it', async () => {
    const port = await freePort();
    const url = new URL(db);
    url.host = `127.0.0.1:${port}`;
    const t0 = Date.now();
    const migrate = promisify(execFile)(process.execPath, [CLI, 'migrate', '--storage.backend=postgres', `--storage.postgres.url=${url.toString()}`, '--storage.postgres.schema=late_migrate', '--storage.startWaitMs=30000'], {
      env: { ...process.env, TRACEHOUSE_CONFIG: '' },
    });
    await new Promise((r) => setTimeout(r, 1500));
    const proxy = await forward(port, db);
    try {
      // Exits 0 (execFile rejects otherwise, with the command's output).
      await migrate;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    } finally {
      await proxy.close();
    }
    // Migrated: a collector that applies no migration of its own starts on that schema.
    const c = await startCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': db.toString(), 'storage.postgres.schema': 'late_migrate', 'storage.postgres.autoMigrate': 'false' });
    await c.stop();
  }, 40_000);

  it('waits for ClickHouse the same way, and names the refused connection when the wait ends', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    for (const autoMigrate of ['true', 'false']) {
      const t0 = Date.now();
      await expect(
        startCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': closed, 'storage.clickhouse.autoMigrate': autoMigrate, 'storage.clickhouse.requestTimeoutMs': '1000', 'storage.startWaitMs': '1500' }),
        autoMigrate,
      ).rejects.toThrow(new RegExp(`^storage\\.clickhouse\\.urls = "${closed}": not reachable within storage\\.startWaitMs = 1500 ms: .*ECONNREFUSED`));
      expect(Date.now() - t0, autoMigrate).toBeGreaterThanOrEqual(1400);
    }
    // A server that takes the connection and never answers: the client's request timeout.
    const held = new Set<Socket>();
    const silent = createServer((s) => {
      held.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      // With autoMigrate off too: a schema check not answered says nothing of the schema's version.
      for (const autoMigrate of ['true', 'false']) {
        const t0 = Date.now();
        await expect(
          startCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': `http://127.0.0.1:${(silent.address() as { port: number }).port}`, 'storage.clickhouse.autoMigrate': autoMigrate, 'storage.clickhouse.requestTimeoutMs': '300', 'storage.startWaitMs': '1500' }),
          autoMigrate,
        ).rejects.toThrow(/Timeout error/);
        expect(Date.now() - t0, autoMigrate).toBeGreaterThanOrEqual(1400);
      }
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  }, 30_000);
});
