// A spare connection to a TLS listener (a browser's, its handshake done and nothing asked yet), or
// one whose handshake never finished, held the read API's stop: Node waits for the first headers
// (its headers timeout, 10 s) or for the handshake (120 s), and the read API's grace is what is
// left of shutdown.timeoutMs. Such connections are closed with the idle ones now.
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { makeCa, makeCert } from '../helpers/certs.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

it.each(['handshake done', 'handshake begun'])('does not let a spare TLS connection to the read API (%s, nothing asked) hold the stop', async (kind) => {
  const dir = tempDir('read-stop-spare-tls-');
  const ca = makeCa(dir, 'ca');
  const server = makeCert(dir, ca, 'server');
  const c = await spawnCollector({ 'storage.sqlite.path': join(dir, 'th.db'), 'query.enabled': 'true', 'query.listen': '127.0.0.1:0', 'query.tls.certFile': server.certFile, 'query.tls.keyFile': server.keyFile, 'shutdown.timeoutMs': '20000' });
  const port = Number(/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]);
  const spare = kind === 'handshake done' ? tlsConnect({ port, host: '127.0.0.1', ca: ca.cert }) : connect(port, '127.0.0.1');
  spare.on('error', () => undefined);
  await new Promise((r) => spare.once(kind === 'handshake done' ? 'secureConnect' : 'connect', r));
  // The first bytes of a ClientHello, and no more.
  if (kind === 'handshake begun') spare.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  c.child.kill('SIGTERM');
  try {
    expect(await c.exited, c.output()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3000);
  } finally {
    spare.destroy();
  }
}, 40_000);
