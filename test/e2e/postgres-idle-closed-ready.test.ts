// A PostgreSQL collector whose idle connections the server side ends (idle_session_timeout set on
// the role, a proxy's or pgbouncer's idle timeout, a NAT entry expired): the health check's next
// query goes out on a connection already gone and fails, though the database answers at once on a
// new one. That one failure made /readyz answer 503 (a readiness flap) and logged "storage
// unhealthy"; the check now tries once more on a fresh connection. A proxy stands between the
// collector and the server and cuts an idle connection when its next query arrives: the race
// idle_session_timeout loses about once a second when the check runs every second, made certain.
import { createServer, connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { freePort } from '../helpers/os.ts';
import { createTestDatabase } from '../helpers/postgres.ts';

/** A TCP proxy to `target`; cutIdle() makes every open connection be cut when the client next writes to it. */
async function idleCutter(target: URL) {
  const open = new Set<{ client: Socket; server: Socket; dead: boolean }>();
  const proxy = createServer((client) => {
    const server = connect(Number(target.port), target.hostname);
    const pair = { client, server, dead: false };
    open.add(pair);
    client.on('data', (d: Buffer) => {
      if (pair.dead) {
        client.destroy();
        server.destroy();
        return;
      }
      server.write(d);
    });
    server.on('data', (d: Buffer) => client.write(d));
    const end = (): void => {
      open.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('close', end).on('error', end);
    server.on('close', end).on('error', end);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    cutIdle: () => {
      for (const p of open) p.dead = true;
    },
    close: () => {
      for (const p of open) p.client.destroy();
      return new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}

describe('postgres: idle connections ended on the server side', () => {
  let cutter: Awaited<ReturnType<typeof idleCutter>>;
  beforeAll(async () => {
    cutter = await idleCutter(new URL(await createTestDatabase('idle_closed_ready')));
  });
  afterAll(() => cutter?.close());

  it('the first health check after it still finds the store healthy: /readyz stays 200, nothing logged unhealthy', async () => {
    const { logger, lines } = capturedLogger();
    const c = await startCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': cutter.url }, { logger });
    try {
      expect((await fetch(c.opsUrl + '/readyz')).status).toBe(200);
      cutter.cutIdle();
      const res = await fetch(c.opsUrl + '/readyz');
      expect({ status: res.status, body: await res.text() }).toMatchObject({ status: 200 });
      expect(lines().filter((l) => l.msg === 'storage unhealthy')).toEqual([]);
    } finally {
      await c.stop();
    }
  }, 20_000);
});
