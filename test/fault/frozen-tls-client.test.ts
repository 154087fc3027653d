// The stop of a collector serving TLS is not held by a client that opened a connection and then
// froze before its TLS handshake finished (a frozen or vanished host, a stuck proxy): the README
// promises such a client is cut off after the receivers' grace. Before, Node's https server kept
// waiting for that socket until its own handshake timeout (120 s): closeAllConnections() only
// knows connections that reached HTTP, so SIGTERM's drain ran into the supervisor's SIGKILL.
import { connect, type Socket } from 'node:net';
import { expect, it, onTestFinished } from 'vitest';
import { makeCa, makeCert } from '../helpers/certs.ts';
import { startCollector } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

const TIMEOUT_MS = 2000;

/** A TCP connection that never sends its ClientHello. */
async function silent(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  onTestFinished(() => void s.destroy());
  await new Promise((resolve) => s.once('connect', resolve));
  return s;
}

it('stops within shutdown.timeoutMs while clients hold TLS ports without finishing the handshake', async () => {
  const dir = tempDir('tracehouse-frozen-tls-');
  const server = makeCert(dir, makeCa(dir, 'ca'), 'localhost');
  const c = await startCollector({ 'tls.certFile': server.certFile, 'tls.keyFile': server.keyFile, 'shutdown.timeoutMs': String(TIMEOUT_MS) });
  const sockets = await Promise.all([c.collector.http!.boundPort, c.collector.query!.boundPort, c.collector.ops.boundPort].map(silent));
  const t0 = Date.now();
  const stopped = c.stop();
  onTestFinished(async () => {
    for (const s of sockets) s.destroy();
    await stopped;
  });
  const outcome = await Promise.race([stopped.then(() => 'stopped'), new Promise<string>((r) => setTimeout(() => r('still stopping'), 4 * TIMEOUT_MS))]);
  expect(outcome).toBe('stopped');
  expect(Date.now() - t0).toBeLessThan(TIMEOUT_MS + 3000);
  // The frozen clients were cut off.
  const closed = await Promise.race([Promise.all(sockets.map((s) => (s.closed ? true : new Promise((r) => s.once('close', () => r(true)))))), new Promise((r) => setTimeout(() => r(false), 2000))]);
  expect(closed).not.toBe(false);
}, 60_000);
