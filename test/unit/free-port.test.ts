// freePort (test/helpers/os.ts) gives the port a server started later binds: PostgreSQL after
// initdb or after an outage, or an address a test needs to refuse connections. With three forks,
// the collectors of the others listen on ports the kernel chooses all the while; the port must not
// be one the kernel may hand them in between.
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { expect, it } from 'vitest';
import { freePort } from '../helpers/os.ts';

const listen = (s: Server, port: number): Promise<void> =>
  new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve());
  });

it('gives a port that no listen(0) takes while it waits for its server', async (ctx) => {
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number) as [number, number];
  const port = await freePort();
  // Listens on kernel-chosen ports, holding each, until they have filled the part of the range the
  // kernel draws them from first (the lower half, odd ports: ~7,000 with the default range).
  const held: Server[] = [];
  try {
    for (let i = 0; i < Math.ceil((high + 1 - low) / 4) + 200; i++) {
      const s = createServer();
      try {
        await listen(s, 0);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EMFILE') ctx.skip(`no file descriptors for ${i + 1} listeners`);
        throw err;
      }
      held.push(s);
      expect((s.address() as AddressInfo).port).not.toBe(port);
    }
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
  const s = createServer();
  await listen(s, port);
  await new Promise((r) => s.close(r));
}, 30_000);
