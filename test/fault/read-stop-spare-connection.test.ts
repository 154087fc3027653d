// Browsers and proxies open spare connections ahead of use: connected, nothing sent yet. At a stop
// such a connection on the read API was not "idle" to Node (it waits for its first headers), so it
// held the stop until Node's headers timeout closed it, 10 s, since the read API's grace became
// what is left of shutdown.timeoutMs (0ef274c; it was 2 s). A connection on which nothing was
// received is closed with the idle ones now.
import { connect } from 'node:net';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

it('does not let a spare connection to the read API (nothing sent) hold the stop', async () => {
  const c = await spawnCollector({ 'storage.sqlite.path': join(tempDir('read-stop-spare-'), 'th.db'), 'query.enabled': 'true', 'query.listen': '127.0.0.1:0', 'shutdown.timeoutMs': '20000' });
  const port = Number(/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]);
  const spare = connect(port, '127.0.0.1');
  spare.on('error', () => undefined);
  const closed = new Promise((r) => spare.once('close', r));
  await new Promise((r) => spare.once('connect', r));
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  c.child.kill('SIGTERM');
  try {
    expect(await c.exited, c.output()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3000);
    await closed;
  } finally {
    spare.destroy();
  }
}, 30_000);
