// With delivery.ack = stored, from 250 ms before the receivers' grace ends a stop answers 503
// `shutting_down` to every request waiting for the store (e899d59). A request whose body finished
// arriving in that moment was answered 503 too, yet its rows had been queued first: the drain
// stored them, and the client, told to retry, sent them again to the next collector (spans stored
// twice, and counted both refused and written). Such a request is now refused before its rows are
// queued, as one decoded after the drain began is.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { spawnCollector, storedInSqlite } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

it('stores nothing of a request it answers 503 shutting_down at a stop (delivery.ack = stored)', async () => {
  const dir = tempDir('stored-stop-late-');
  const db = join(dir, 'th.db');
  // shutdown.timeoutMs 4000: the receivers' grace is 2000 ms, the waits end at 1750 ms.
  const c = await spawnCollector({ 'storage.sqlite.path': db, 'delivery.ack': 'stored', 'delivery.walDir': join(dir, 'wal'), 'shutdown.timeoutMs': '4000' });
  const now = String(BigInt(Date.now()) * 1_000_000n);
  const traceId = randomBytes(16);
  const body = Buffer.from(encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'late-at-stop' } }] }, scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8), name: 'op', startTimeUnixNano: now, endTimeUnixNano: now }] }] }] }));
  const url = new URL(`${c.httpUrl}/v1/traces`);
  const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } });
  const status = new Promise<number | string>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  req.write(body.subarray(0, 10));
  await new Promise((r) => setTimeout(r, 200));
  c.child.kill('SIGTERM');
  // The rest of the body in the last 250 ms of the grace.
  await new Promise((r) => setTimeout(r, 1850));
  req.end(body.subarray(10));
  expect(await status, c.output()).toBe(503);
  expect(await c.exited, c.output()).toBe(0);
  // Told to retry: none of its spans may be in the store.
  expect(storedInSqlite(db, 'late-at-stop').spansByTrace.get(traceId.toString('hex')) ?? 0).toBe(0);
}, 30_000);
