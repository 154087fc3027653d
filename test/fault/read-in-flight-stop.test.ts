// A read in flight when the collector is told to stop (a Grafana panel loading as the pod is
// replaced) is answered while shutdown.timeoutMs lasts. The read API's listener was closed with a
// grace of its own of 2 s, whatever the stop had left: a read waiting longer on the store (a lock,
// a slow disk) was cut (the client saw its connection reset) although the stop then waited for
// the store to finish that very read before it exited.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { expect, it } from 'vitest';
import { eventually } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { createTestDatabase, untilWaitingOnLock } from '../helpers/postgres.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const TIMEOUT_MS = 10_000;

it('answers a read that waits on the store past 2 s after SIGTERM, and exits 0 once it is answered', async () => {
  const url = await createTestDatabase('read_in_flight_stop');
  const c = await spawnCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': url, 'delivery.walDir': join(tempDir('read-stop-'), 'wal'), 'query.enabled': 'true', 'query.listen': '127.0.0.1:0', 'writer.flushIntervalMs': '20', 'shutdown.timeoutMs': String(TIMEOUT_MS) });
  const readUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
  const traceId = randomBytes(16);
  const now = String(BigInt(Date.now()) * 1_000_000n);
  const spans = [{ traceId, spanId: randomBytes(8), name: 'op', startTimeUnixNano: now, endTimeUnixNano: now }];
  const sent = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }] }) });
  expect(sent.status).toBe(200);
  const path = `${readUrl}/v1/traces/${traceId.toString('hex')}`;
  await eventually(async () => ((await fetch(path)).status === 200 ? true : undefined), 10_000, 'the span stored');

  // Another session holds the tables a trace read reads: the read waits.
  const locker = new pg.Client({ connectionString: url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE tracehouse.spans, tracehouse.trace_index IN ACCESS EXCLUSIVE MODE');
    const read = fetch(path).then(
      (r) => r.status,
      (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message,
    );
    await untilWaitingOnLock(locker, 'the read waiting on the lock', c.output);
    const t0 = Date.now();
    c.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 3000));
    await locker.query('ROLLBACK');
    expect(await read, c.output()).toBe(200);
    expect(await c.exited, c.output()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(TIMEOUT_MS);
  } finally {
    await locker.end();
  }
}, 60_000);

it('does not let a client reading in a loop on a kept-alive connection hold the stop', async () => {
  const c = await spawnCollector({ 'storage.sqlite.path': join(tempDir('read-stop-'), 'th.db'), 'query.enabled': 'true', 'query.listen': '127.0.0.1:0', 'shutdown.timeoutMs': String(TIMEOUT_MS) });
  const readUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
  let reading = true;
  const loops = Array.from({ length: 4 }, async () => {
    while (reading) await fetch(`${readUrl}/v1/traces?limit=5`).then((r) => r.arrayBuffer(), () => new Promise((r) => setTimeout(r, 20)));
  });
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  c.child.kill('SIGTERM');
  expect(await c.exited, c.output()).toBe(0);
  const took = Date.now() - t0;
  reading = false;
  await Promise.all(loops);
  // Before, such connections were closed at the read API's grace (2 s), with reads in flight cut.
  expect(took).toBeLessThan(1500);
}, 30_000);
