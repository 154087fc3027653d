// delivery.ack = durable after a long outage: the write-ahead log holds far more than the writer's
// queue budget (up to delivery.walMaxBytes, 1 GiB by default, the chart's whole memory limit). The
// next start must read that backlog back a slice at a time, not all of it into memory and the
// queue at once, and still store every acknowledged row once.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { gated } from '../helpers/backends.ts';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { storedInSqlite } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SERVICE = 'wal-backlog';
const MiB = 1024 * 1024;
const REQUESTS = 24;

async function sqlite(db: string) {
  const b = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': db } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await b.start();
  return b;
}

describe('delivery.ack=durable: a start after a long outage', () => {
  it('reads the backlog back a slice at a time: the queue stays within its budget, and every row is stored once', async () => {
    const dir = tempDir('wal-backlog-');
    const db = join(dir, 'th.db');
    const wal = join(dir, 'wal');
    const flags = { 'storage.backend': 'sqlite', 'storage.sqlite.path': db, 'delivery.walDir': wal, 'delivery.ack': 'durable', 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40' };

    // The store is down for the whole first run: every batch is given up on and kept in the log.
    const down = gated(await sqlite(db));
    down.failNext(Number.MAX_SAFE_INTEGER, { kind: 'retryable', error: new Error('store down') });
    const first = await startCollector({ ...flags, 'writer.retryMaxElapsedMs': '200', 'shutdown.timeoutMs': '2000' }, { backend: down.backend });
    const traceIds: string[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const traceId = randomBytes(16);
      traceIds.push(traceId.toString('hex'));
      const spans = Array.from({ length: 4 }, () => ({ traceId, spanId: randomBytes(8), name: 'op', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000', attributes: [{ key: 'blob', value: { stringValue: 'x'.repeat(MiB / 4) } }] }));
      const body = encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: SERVICE } }] }, scopeSpans: [{ spans }] }] });
      expect((await fetch(first.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body })).status).toBe(200);
    }
    await first.stop();

    // The next start, with a queue budget of a third of the backlog, on a store that hangs at first.
    const slow = gated(await sqlite(db));
    slow.close();
    const next = await startCollector({ ...flags, 'writer.maxQueueBytes': String(8 * MiB) }, { backend: slow.backend });
    try {
      await eventually(async () => (slow.attempts > 0 ? true : undefined), 10_000, 'the replay writing');
      await new Promise((r) => setTimeout(r, 500));
      const queued = await metricValue(next.opsUrl, 'tracehouse_queue_size_bytes');
      expect(queued).toBeGreaterThan(0);
      expect(queued).toBeLessThanOrEqual(8 * MiB);
      slow.open();
      await eventually(async () => (storedInSqlite(db, SERVICE).spansByTrace.size === REQUESTS ? true : undefined), 30_000, 'every trace stored');
      const { spansByTrace } = storedInSqlite(db, SERVICE);
      expect(traceIds.map((t) => spansByTrace.get(t))).toEqual(traceIds.map(() => 4));
    } finally {
      slow.open();
      await next.stop();
    }
  }, 90_000);
});
