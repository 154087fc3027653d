// delivery.ack = durable: a batch the writer gave up on (retries exhausted) is kept in the log and
// written again. If an attempt that had timed out answers late with a permanent failure, the
// rows must still end up stored or counted as dropped: never neither.
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import type { StorageBackend, WriteBatch, WriteResult } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { eventually, getJson, metricValue, startCollector } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';

it('rows of a kept batch whose timed-out attempt answers "permanent" late are stored or counted as dropped', async () => {
  const inner = await memoryBackend();
  let calls = 0;
  let healthy = false;
  // The first write is slow and then refused for good; the next ones find the store down until
  // it recovers, then go through.
  const backend: StorageBackend = Object.create(inner, {
    write: {
      value: async (b: WriteBatch): Promise<WriteResult> => {
        if (++calls === 1) {
          await new Promise((r) => setTimeout(r, 1200));
          return { kind: 'permanent', error: new Error('refused for good, late') };
        }
        if (!healthy) return { kind: 'retryable', error: new Error('store down') };
        return inner.write(b);
      },
    },
  });
  const { logger, lines } = capturedLogger();
  const c = await startCollector({ 'writer.writeTimeoutMs': '300', 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40', 'writer.retryMaxElapsedMs': '600' }, { backend, logger });
  try {
    const traceId = randomBytes(16);
    const spans = Array.from({ length: 3 }, (_, k) => ({ traceId, spanId: randomBytes(8), name: `op-${k}`, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }));
    const res = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans }] }] }) });
    expect(res.status).toBe(200);
    await eventually(async () => (lines().some((l) => /gave up writing a batch/.test(l.msg)) ? true : undefined), 5000, 'given up and kept');
    // The late answer lands at 1.2 s; the store is back before the rewrite (5 s after the give-up).
    await new Promise((r) => setTimeout(r, 1500));
    healthy = true;
    // The rewrite comes 5 s after the give-up (KEPT_RETRY_MS), or 5 s later still if a loaded
    // machine let it run before `healthy` was set: wait for the rows to be accounted for, not a
    // fixed 5.5 s that left 2 s for the rewrite. Rows neither stored nor dropped still time out.
    const accounted = async () => {
      const got = await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`);
      const stored: number = got.status === 200 ? got.body.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans)).length : 0;
      const dropped = await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total');
      return { stored, dropped, accounted: stored + dropped };
    };
    await eventually(async () => ((await accounted()).accounted >= 3 ? true : undefined), 20_000, 'the rows stored or counted as dropped');
    expect(await accounted()).toMatchObject({ accounted: 3 });
  } finally {
    await c.stop();
  }
}, 40_000);
