// OTLP/HTTP clients keep their connections alive and send the next export on the connection the
// last one was answered on. At a stop the receiver closed every connection it saw idle at once;
// under load its event loop has not read yet the requests clients have just written on them, so
// those requests met a closed connection (the client saw "other side closed") instead of an
// answer. Requests sent around the stop are now answered (with Connection: close), or find the
// port closed; none is cut.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { spawnCollector, storedInSqlite } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

it('cuts no kept-alive request under load at SIGTERM: each is answered or finds the port closed', async () => {
  const db = join(tempDir('http-stop-'), 'th.db');
  const c = await spawnCollector({ 'storage.sqlite.path': db, 'delivery.ack': 'queued', 'writer.flushIntervalMs': '200' });
  const acked: string[] = [];
  const failures: string[] = [];
  let sending = true;
  const loops = Array.from({ length: 8 }, async () => {
    while (sending) {
      const traceId = randomBytes(16);
      const now = String(BigInt(Date.now()) * 1_000_000n);
      const spans = Array.from({ length: 50 }, (_, k) => ({ traceId, spanId: randomBytes(8), name: `op-${k}`, startTimeUnixNano: now, endTimeUnixNano: now }));
      const body = encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'keepalive' } }] }, scopeSpans: [{ spans }] }] });
      try {
        const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
        await res.arrayBuffer();
        if (res.status === 200) acked.push(traceId.toString('hex'));
      } catch (err) {
        const code = (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
        // Refused: the port is closed, the client tries again elsewhere; nothing was sent.
        if (code === 'ECONNREFUSED') await new Promise((r) => setTimeout(r, 20));
        else failures.push(code);
      }
    }
  });
  await new Promise((r) => setTimeout(r, 1500));
  c.child.kill('SIGTERM');
  expect(await c.exited, c.output()).toBe(0);
  sending = false;
  await Promise.all(loops);
  expect(failures).toEqual([]);
  const stored = storedInSqlite(db, 'keepalive').spansByTrace;
  expect(acked.filter((t) => stored.get(t) !== 50)).toEqual([]);
}, 30_000);
