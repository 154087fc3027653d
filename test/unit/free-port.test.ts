// freePort (test/helpers/os.ts) gives the port a server started later binds: PostgreSQL after
// initdb or after an outage, or an address a test needs to refuse connections. With three forks,
// the collectors of the others listen on ports the kernel chooses all the while (listen(0), from
// the ephemeral range): the port must not be one the kernel may hand them in between.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { expect, it } from 'vitest';
import { freePort } from '../helpers/os.ts';

const listen = (s: Server, port: number): Promise<void> =>
  new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve());
  });

it('gives ports below the kernel\'s ephemeral range, a new one each call, free to listen on', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const ports = [await freePort(), await freePort(), await freePort()];
  expect(new Set(ports).size).toBe(3);
  for (const port of ports) {
    expect(port).toBeLessThan(low);
    const s = createServer();
    await listen(s, port);
    await new Promise((r) => s.close(r));
  }
});
