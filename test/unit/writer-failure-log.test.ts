// A store whose writes fail now and then (a PostgreSQL deadlock or serialization failure, a
// ClickHouse "too many parts" in a merge backlog), each failure passing at its first retry. The
// failures are counted in tracehouse_writer_failed_batches_total; the log says so once with a
// count (DESIGN: count, don't log per item), not a warning and a "recovered" line per failed write,
// which at a store failing one write in a hundred of a hundred a second is two lines a second for ever.
import { describe, expect, it } from 'vitest';
import { Writer, type WriterOptions } from '../../src/pipeline/writer.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { gated, memoryBackend } from '../helpers/backends.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { makeSpan } from '../helpers/rows.ts';

const opts: WriterOptions = { maxBatchRows: 5, flushIntervalMs: 5, maxInFlightBatches: 1, maxQueueBytes: 1 << 20, retryInitialMs: 1, retryMaxMs: 2, retryMaxElapsedMs: 0, writeTimeoutMs: 1000 };
const encoder = createEncoder({});

describe('writer: transient write failures now and then', () => {
  it('are counted each, and logged once with their count, not a line pair per failure', async () => {
    const gate = gated(await memoryBackend());
    const metrics = createMetrics();
    const { logger, lines } = capturedLogger();
    const writer = new Writer(gate.backend, opts, metrics, logger);
    const FAILURES = 20;
    for (let i = 0; i < FAILURES; i++) {
      // One write fails, its retry and the next batches are stored.
      gate.failNext(1, { kind: 'retryable', error: new Error('deadlock detected') });
      for (let b = 0; b < 3; b++) {
        const chunks = encoder.encodeSpans(Array.from({ length: 5 }, () => makeSpan({ serviceName: 'flap' })));
        void writer.reserve(chunks.reduce((s, c) => s + c.data.byteLength, 0))!.commit('traces', chunks, TENANT);
      }
      await writer.drain();
    }
    const failed = (await metrics.failedBatches.get()).values.reduce((s, v) => s + v.value, 0);
    expect(failed).toBe(FAILURES);
    expect((await metrics.writtenRows.get()).values.reduce((s, v) => s + v.value, 0)).toBe(FAILURES * 15);
    const warned = lines().filter((l) => l.msg.startsWith('storage write failed'));
    const recovered = lines().filter((l) => l.msg.startsWith('storage writes recovered'));
    expect({ warned: warned.length, recovered: recovered.length }).toEqual({ warned: 1, recovered: 1 });
  });
});

describe('writer: an outage longer than the retries', () => {
  // The first failure is logged; its batch is given up after retryMaxElapsedMs; the next batch
  // fails too (within the minute: not logged again) and then is stored. The operator saw "storage
  // write failed" and "dropped a batch", and nothing ever said the store took writes again.
  it('logs "storage writes recovered" once the store takes writes again after a batch was given up', async () => {
    const gate = gated(await memoryBackend());
    const metrics = createMetrics();
    const { logger, lines } = capturedLogger();
    const writer = new Writer(gate.backend, { ...opts, retryMaxElapsedMs: 30 }, metrics, logger);
    const send = () => {
      const chunks = encoder.encodeSpans(Array.from({ length: 5 }, () => makeSpan({ serviceName: 'outage' })));
      void writer.reserve(chunks.reduce((s, c) => s + c.data.byteLength, 0))!.commit('traces', chunks, TENANT);
    };
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('disk full') });
    send();
    await writer.drain();
    expect(lines().filter((l) => l.msg.startsWith('dropped a batch'))).toHaveLength(1);
    gate.failNext(1, { kind: 'retryable', error: new Error('disk full') });
    send();
    await writer.drain();
    expect((await metrics.writtenRows.get()).values.reduce((s, v) => s + v.value, 0)).toBe(5);
    expect(lines().filter((l) => l.msg.startsWith('storage write failed'))).toHaveLength(1);
    expect(lines().filter((l) => l.msg.startsWith('storage writes recovered'))).toHaveLength(1);
  });
});
