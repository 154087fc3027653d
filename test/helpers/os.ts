// What tests ask of the machine: a TCP port nothing listens on, and whether `prlimit` is there.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where the kernel's ephemeral ports begin: listen(0) and outgoing connections take ports from there up. */
const EPHEMERAL_LOW = ((): number => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
})();

/** Ports each process picks from: a slice of its own per vitest fork (VITEST_POOL_ID; 0 for the main process's global setup). */
const SLICE = 256;
const SLOT = Number(process.env['VITEST_POOL_ID'] ?? 0) % 16;
const SLICE_LOW = EPHEMERAL_LOW - SLICE * (SLOT + 1);
let nextInSlice = Math.floor(Math.random() * SLICE);

/** Whether port can be listened on at 127.0.0.1 now (and is left free). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A TCP port on 127.0.0.1 that nothing listens on (yet), for a server started later (PostgreSQL
 * after initdb, or again after an outage) or for an address that must refuse connections. Not
 * one the kernel chose (listen(0)): the kernel hands that port to any other listen(0) meanwhile
 * (the suite's collectors in the other forks bind thousands), about one in 7,000 each (the lower
 * half of the ephemeral range, odd ports), and then PostgreSQL could not bind it or the "closed"
 * address answered. The ports here are below the ephemeral range, where neither listen(0) nor
 * an outgoing connection lands, in a slice per fork, taken in turn.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < SLICE; i++) {
    const port = SLICE_LOW + (nextInSlice++ % SLICE);
    if (await canListen(port)) return port;
  }
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether util-linux's `prlimit` (a running process's limits set from outside) is installed. */
export const hasPrlimit = ((): boolean => {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
