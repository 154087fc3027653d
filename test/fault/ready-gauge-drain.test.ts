// tracehouse_ready during a stop: the README says it is 1 while /readyz answers 200, else 0, and
// /readyz answers 503 from the SIGTERM on. The gauge was kept current only by the gRPC receiver's
// health poll and the collector's own poll, both stopped at the SIGTERM, so through a drain
// (up to shutdown.timeoutMs) /metrics went on saying 1 unless something asked /readyz.
import { join } from 'node:path';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { eventually, metricValue } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

for (const grpc of ['true', 'false']) {
  it(`reports tracehouse_ready 0 while draining after SIGTERM (OTLP/gRPC enabled: ${grpc})`, async () => {
    const url = await createTestDatabase(`ready_drain_${grpc}`);
    const c = await spawnCollector({
      'storage.backend': 'postgres',
      'storage.postgres.url': url,
      'receiver.grpc.enabled': grpc,
      'receiver.grpc.listen': '127.0.0.1:0',
      'delivery.ack': 'queued',
      'delivery.walDir': join(tempDir('ready-drain-'), 'wal'),
      'writer.flushIntervalMs': '50',
      'shutdown.timeoutMs': '6000',
    });
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_ready')) === 1 ? true : undefined), 10_000, 'ready');
    // A write that waits on a lock keeps the drain going.
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE tracehouse.spans IN ACCESS EXCLUSIVE MODE');
      const now = String(BigInt(Date.now()) * 1_000_000n);
      const spans = [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'op', startTimeUnixNano: now, endTimeUnixNano: now }];
      const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }] }) });
      expect(res.status).toBe(200);
      c.child.kill('SIGTERM');
      await eventually(async () => (c.output().includes('shutting down') ? true : undefined), 5000, 'the stop under way');
      await new Promise((r) => setTimeout(r, 1500));
      // Only /metrics is asked: a scrape must not depend on a probe having asked /readyz first.
      expect(await metricValue(c.opsUrl, 'tracehouse_ready')).toBe(0);
      // The reason an operator reads on a draining pod says so (it said 'not started').
      const readyz = await fetch(`${c.opsUrl}/readyz`);
      expect({ status: readyz.status, body: await readyz.json() }).toEqual({ status: 503, body: { status: 'not ready', reason: 'stopping: draining accepted data' } });
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
    expect(await c.exited).toBe(0);
  }, 60_000);
}
