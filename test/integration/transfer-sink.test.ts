// import and copy report every accepted row the writer gave up on. With the default configuration
// of a store that keeps data (delivery.ack = durable) the sink's writer took the rows it gave up on
// as kept by a write-ahead log, which the transfer commands do not have: lost, and not counted.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { createBackend } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { TransferSink } from '../../src/transfer/sink.ts';
import { gated } from '../helpers/backends.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { tempDir } from '../helpers/tmp.ts';

const silent = pino({ level: 'silent' });

describe('transfer sink into SQLite', () => {
  // durable (the default): no write-ahead log keeps them; stored: no client is told to send them again.
  it.each(['durable', 'stored'])('counts rows it gave up on after retries as dropped, with delivery.ack = %s', async (ack) => {
    const config = loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': join(tempDir(), 'th.db'), 'delivery.ack': ack, 'workers.threads': '1', 'writer.flushIntervalMs': '20', 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40', 'writer.retryMaxElapsedMs': '200' } });
    const inner = await createBackend(config, { logger: silent, metrics: createMetrics() });
    await inner.start();
    const gate = gated(inner);
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('database unreachable') });
    const sink = new TransferSink(config, gate.backend, createMetrics(), silent);
    await sink.start();
    try {
      const traceId = randomBytes(16);
      const spans = Array.from({ length: 5 }, (_, i) => ({ traceId, spanId: randomBytes(8), name: `s${i}`, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' }));
      const body = Buffer.from(encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'imp' } }] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] }));
      let accepted = 0;
      await sink.send('traces', 'protobuf', body, (out) => {
        if (out.kind === 'ok') accepted += out.accepted;
      });
      await sink.drain();
      expect(accepted).toBe(5);
      expect(gate.attempts).toBeGreaterThan(1);
      // Nothing stored them: import's report (importFiles reads sink.dropped()) must say so.
      expect(await inner.getTrace('default', traceId.toString('hex'))).toHaveLength(0);
      expect((await sink.dropped()).traces).toBe(5);
    } finally {
      gate.failNext(0, { kind: 'success' });
      await sink.shutdown();
    }
  });
});
