// With delivery.ack = stored a request is answered once its rows are stored. A stop while the store
// does not take them (PostgreSQL down or a write waiting on a lock) closed the receivers'
// connections at their grace (half of shutdown.timeoutMs) with those requests still waiting: the
// clients saw their connections reset, while the writer, giving up at the deadline, logged that
// it refused them as retryable (gRPC calls ended CANCELLED). They are now answered 503 (retry;
// gRPC UNAVAILABLE) before their connections close.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { expect, it } from 'vitest';
import { encodeTraces, RawOtlpClient } from '../helpers/otlp-proto.ts';
import { createTestDatabase, untilWaitingOnLock } from '../helpers/postgres.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const TIMEOUT_MS = 4000;

it('answers 503 to requests waiting for the store when a stop comes (delivery.ack = stored), and resets none', async () => {
  const url = await createTestDatabase('stored_stop_answers');
  const c = await spawnCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': url, 'delivery.ack': 'stored', 'delivery.walDir': join(tempDir('stored-stop-'), 'wal'), 'shutdown.timeoutMs': String(TIMEOUT_MS), 'receiver.grpc.enabled': 'true', 'receiver.grpc.listen': '127.0.0.1:0' });
  const grpc = new RawOtlpClient(`127.0.0.1:${/"port":(\d+),"msg":"OTLP\/gRPC receiver listening"/.exec(c.output())![1]}`);
  // Another session holds the spans table: every write waits on it.
  const locker = new pg.Client({ connectionString: url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE tracehouse.spans IN ACCESS EXCLUSIVE MODE');
    const now = String(BigInt(Date.now()) * 1_000_000n);
    const answers = Array.from({ length: 3 }, () => {
      const spans = [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'op', startTimeUnixNano: now, endTimeUnixNano: now }];
      return fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }] }) }).then(
        (r) => r.status,
        (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message,
      );
    });
    const spans = [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'op', startTimeUnixNano: now, endTimeUnixNano: now }];
    const call = grpc.traces(encodeTraces({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }] })).then((r) => `${r.error?.code} ${r.error?.details}`);
    await untilWaitingOnLock(locker, 'the write waiting on the lock', c.output);
    const t0 = Date.now();
    c.child.kill('SIGTERM');
    expect(await Promise.all(answers), c.output()).toEqual([503, 503, 503]);
    // OTLP/gRPC: UNAVAILABLE, the stop named (a cut call is UNAVAILABLE too, as a dropped connection).
    expect(await call).toBe('14 the collector is shutting down');
    expect(await c.exited, c.output()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(TIMEOUT_MS + 3000);
  } finally {
    await locker.query('ROLLBACK').catch(() => undefined);
    await locker.end();
    grpc.close();
  }
}, 60_000);
