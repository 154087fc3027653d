// tracehouse_queue_oldest_age_seconds is the age of the oldest accepted row not yet stored (README,
// Operations and metrics): an operator's freshness alert. With delivery.ack = durable (the default
// of every lasting store) a batch the writer gives up on after writer.retryMaxElapsedMs is kept in
// the write-ahead log and written again later; its rows are still not stored, and the gauge must
// go on counting from when they were accepted, not fall to 0 (nor start again when they are
// written again), or a store that stays down never ages past retryMaxElapsedMs.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { gated, memoryBackend } from '../helpers/backends.ts';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';

describe('the oldest queued row\'s age while the store stays down', () => {
  it('keeps growing after the writer gives the batch to the write-ahead log', async () => {
    const gate = gated(await memoryBackend());
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('store down') });
    const c = await startCollector({ 'delivery.ack': 'durable', 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40', 'writer.retryMaxElapsedMs': '300' }, { backend: gate.backend });
    try {
      const spans = [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'op', startTimeUnixNano: '1', endTimeUnixNano: '2' }];
      const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans }] }] }) });
      expect(res.status).toBe(200);
      const accepted = Date.now();
      // Past the give-up (300 ms) and past the log's first rewrite (5 s later), the row still not stored.
      const ages: number[] = [];
      await eventually(async () => {
        ages.push(await metricValue(c.opsUrl, 'tracehouse_queue_oldest_age_seconds'));
        return Date.now() - accepted > 7_000 ? true : undefined;
      }, 15_000);
      const elapsed = (Date.now() - accepted) / 1000;
      expect(await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total')).toBe(0);
      expect(ages.at(-1)!).toBeGreaterThan(elapsed - 1);
      // Never back to 0 on the way: the row was waiting all along.
      expect(ages.slice(5).filter((a) => a === 0)).toEqual([]);

      // Once the store is back and the log wrote the batch again: nothing waits, 0.
      gate.failNext(0, { kind: 'success' });
      await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total')) === 1 ? true : undefined), 15_000, 'the kept row stored');
      expect(await metricValue(c.opsUrl, 'tracehouse_queue_oldest_age_seconds')).toBe(0);
    } finally {
      gate.failNext(0, { kind: 'success' });
      await c.stop();
    }
  });
});
