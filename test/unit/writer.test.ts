// The writer against a real memory backend behind a switch that stalls or fails writes.
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { Writer, backoffMs, type WriterOptions } from '../../src/pipeline/writer.ts';
import { writerOptions } from '../../src/app.ts';
import { loadConfig } from '../../src/config/index.ts';
import type { StoreWriter, WriteBatch, WriteResult } from '../../src/storage/backend.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { gated, memoryBackend } from '../helpers/backends.ts';
import { tempDir } from '../helpers/tmp.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { join } from 'node:path';
import { makeSpan } from '../helpers/rows.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

const opts: WriterOptions = {
  maxBatchRows: 10,
  flushIntervalMs: 5,
  maxInFlightBatches: 2,
  maxQueueBytes: 1 << 20,
  retryInitialMs: 1,
  retryMaxMs: 5,
  retryMaxElapsedMs: 0,
  writeTimeoutMs: 1000,
};
const encoder = createEncoder({});

async function setup(o: Partial<WriterOptions> = {}) {
  const gate = gated(await memoryBackend());
  const metrics = createMetrics();
  const writer = new Writer(gate.backend, { ...opts, ...o }, metrics, pino({ level: 'silent' }));
  const put = (n: number, service = 'w') => {
    const spans = Array.from({ length: n }, () => makeSpan({ serviceName: service }));
    const chunks = encoder.encodeSpans(spans);
    const bytes = chunks.reduce((s, c) => s + c.data.byteLength, 0);
    const r = writer.reserve(bytes);
    expect(r).toBeDefined();
    void r!.commit('traces', chunks, TENANT);
    return spans;
  };
  const stored = async (service = 'w') => (await gate.backend.searchTraces(TENANT, { service, limit: 1000 })).length;
  const metric = async (name: string) => (await metrics.registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#')).reduce((s, l) => s + Number(l.split(' ').pop()), 0);
  return { gate, writer, metrics, put, stored, metric };
}

describe('writer', () => {
  it('batches by rows and delay and writes everything', async () => {
    const { writer, put, stored, gate, metric } = await setup();
    put(25);
    put(3);
    await writer.drain();
    expect(await stored()).toBe(28);
    // 25 rows in one chunk exceed maxBatchRows: written as one batch; the 3 wait for the interval.
    expect(gate.attempts).toBe(2);
    expect(await metric('tracehouse_writer_written_rows_total')).toBe(28);
    expect(writer.queueBytes).toBe(0);
  });

  it('writes rows committed with a caller batch id as a batch of their own under an id derived from it', async () => {
    const inner = await memoryBackend();
    const seen: { batchId: string; rows: number }[] = [];
    const spy: StoreWriter = { name: inner.name, write: (b) => (seen.push({ batchId: b.batchId, rows: b.rows }), inner.write(b)) };
    const writer = new Writer(spy, opts, createMetrics(), pino({ level: 'silent' }));
    const commit = (n: number, batchId?: string) => {
      const chunks = encoder.encodeSpans(Array.from({ length: n }, () => makeSpan({ serviceName: 'ids' })));
      void writer.reserve(chunks.reduce((s, c) => s + c.data.byteLength, 0))!.commit('traces', chunks, TENANT, batchId);
    };
    commit(2);
    commit(3, 'file-line-1');
    commit(4, 'file-line-1'); // the same content sent again keeps its id
    await writer.drain();
    const own = seen.filter((b) => b.batchId.startsWith('file-line-1'));
    expect(own).toEqual([{ batchId: 'file-line-1/0', rows: 3 }, { batchId: 'file-line-1/0', rows: 4 }]);
    expect(seen.filter((b) => !b.batchId.startsWith('file-line-1')).map((b) => b.rows)).toEqual([2]);
  });

  it('retries transient failures with backoff until they pass, losing nothing', async () => {
    const { writer, put, stored, gate, metric } = await setup();
    gate.failNext(3, { kind: 'retryable', error: new Error('connection refused') });
    put(5);
    await writer.drain();
    expect(await stored()).toBe(5);
    expect(gate.attempts).toBe(4);
    expect(await metric('tracehouse_writer_failed_batches_total')).toBe(3);
    expect(await metric('tracehouse_writer_dropped_rows_total')).toBe(0);
  });

  it('retries a backend that throws synchronously or rejects with a non-Error, without crashing', async () => {
    const inner = await memoryBackend();
    let calls = 0;
    const faulty: StoreWriter = {
      name: 'faulty',
      write: (b) => {
        calls++;
        if (calls === 1) throw 'sync string';
        if (calls === 2) return Promise.reject(undefined);
        return inner.write(b);
      },
    };
    const writer = new Writer(faulty, opts, createMetrics(), pino({ level: 'silent' }));
    const spans = Array.from({ length: 3 }, () => makeSpan({ serviceName: 'w' }));
    const chunks = encoder.encodeSpans(spans);
    void writer.reserve(chunks.reduce((s, c) => s + c.data.byteLength, 0))!.commit('traces', chunks, TENANT);
    const stored = async () => (await inner.searchTraces(TENANT, { service: 'w', limit: 1000 })).length;
    await writer.drain();
    expect(calls).toBe(3);
    expect(await stored()).toBe(3);
  });

  it("never mixes tenants in a batch: each tenant's rows are stored as its own", async () => {
    const inner = await memoryBackend();
    const seen: { tenant: string; rows: number }[] = [];
    const recording: StoreWriter = {
      name: 'recording',
      write: (b) => {
        seen.push({ tenant: b.tenant, rows: b.rows });
        return inner.write(b);
      },
    };
    // One flush for everything queued: without per-tenant pipelines the rows would share a batch.
    const writer = new Writer(recording, { ...opts, maxBatchRows: 1000, flushIntervalMs: 60_000 }, createMetrics(), pino({ level: 'silent' }));
    const put = (tenant: string, service: string, n: number) => {
      const chunks = encoder.encodeSpans(Array.from({ length: n }, () => makeSpan({ serviceName: service })));
      void writer.reserve(chunks.reduce((s, c) => s + c.data.byteLength, 0))!.commit('traces', chunks, tenant);
    };
    put('acme', 'shared-name', 2);
    put('globex', 'shared-name', 3);
    put('acme', 'shared-name', 1);
    await writer.drain();
    expect(seen.sort((a, b) => (a.tenant < b.tenant ? -1 : 1))).toEqual([
      { tenant: 'acme', rows: 3 },
      { tenant: 'globex', rows: 3 },
    ]);
    expect(await inner.searchTraces('acme', { service: 'shared-name', limit: 100 })).toHaveLength(3);
    expect(await inner.searchTraces('globex', { service: 'shared-name', limit: 100 })).toHaveLength(3);
    expect(await inner.searchTraces(TENANT, { service: 'shared-name', limit: 100 })).toHaveLength(0);
  });

  it('drops and counts a batch that fails permanently', async () => {
    const { writer, put, stored, gate, metric } = await setup();
    gate.failNext(1, { kind: 'permanent', error: new Error('bad data') });
    put(4);
    await writer.drain();
    expect(await stored()).toBe(0);
    expect(await metric('tracehouse_writer_dropped_rows_total')).toBe(4);
  });

  it('logs a batch the store refused for good once, as dropped, not as a failure it retries', async () => {
    const gate = gated(await memoryBackend());
    const { logger, lines } = capturedLogger();
    const writer = new Writer(gate.backend, opts, createMetrics(), logger);
    gate.failNext(1, { kind: 'permanent', error: new Error('bad data') });
    const chunks = encoder.encodeSpans([makeSpan({ serviceName: 'w' })]);
    expect(await writer.reserve(10)!.commit('traces', chunks, TENANT)).toEqual({ delivered: 'permanent_error', refusedRows: 1, storedRows: 0 });
    expect(lines().filter((l) => Number(l['level']) >= 40).map((l) => l.msg)).toEqual(['dropped batches of accepted rows (logged at most once a minute for each signal and reason, rows and batches: since the last such line)']);
  });

  it('gives up after retryMaxElapsedMs and counts the rows', async () => {
    const { writer, put, gate, metric } = await setup({ retryMaxElapsedMs: 30 });
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('down') });
    put(6);
    await writer.drain();
    expect(await metric('tracehouse_writer_dropped_rows_total')).toBe(6);
    expect(writer.queueBytes).toBe(0);
  });

  it('measures writer.retryMaxElapsedMs on a clock the wall clock stepping (NTP, a resumed VM) does not move', async () => {
    // Before: the elapsed time was Date.now() minus the first attempt's. A step forward of an
    // hour during a short outage gave up on the batch after one failed attempt (with queued,
    // accepted rows dropped); a step back kept retrying it for an hour past the bound.
    const realNow = Date.now.bind(Date);
    let step = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + step);
    /** A writer whose store fails `failures` times, the wall clock stepping by `jumpMs` at the first attempt. */
    const run = async (jumpMs: number, failures: number, retryMaxElapsedMs: number) => {
      step = 0;
      const inner = await memoryBackend();
      let attempts = 0;
      const store: StoreWriter = {
        name: inner.name,
        write: async (b) => {
          if (attempts++ === 0) step = jumpMs;
          return attempts <= failures ? { kind: 'retryable', error: new Error('connection refused') } : inner.write(b);
        },
      };
      const metrics = createMetrics();
      const writer = new Writer(store, { ...opts, retryMaxElapsedMs }, metrics, pino({ level: 'silent' }));
      const chunks = encoder.encodeSpans(Array.from({ length: 5 }, () => makeSpan({ serviceName: 'clock' })));
      void writer.reserve(10)!.commit('traces', chunks, TENANT);
      const drained = await Promise.race([writer.drain().then(() => true), new Promise((r) => setTimeout(() => r(false), 3000))]);
      await writer.shutdown(50);
      const dropped = (await metrics.registry.getSingleMetricAsString('tracehouse_writer_dropped_rows_total')).split('\n').filter((l) => !l.startsWith('#')).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
      return { drained, dropped, stored: (await inner.searchTraces(TENANT, { service: 'clock', limit: 10 })).length };
    };
    try {
      // An hour ahead during a short outage (stored at the third attempt, well within 10 s): kept.
      expect(await run(3_600_000, 2, 10_000)).toEqual({ drained: true, dropped: 0, stored: 5 });
      // An hour back during an outage: given up after 100 ms of retries still, not an hour later.
      expect(await run(-3_600_000, 1_000_000, 100)).toEqual({ drained: true, dropped: 5, stored: 0 });
    } finally {
      clock.mockRestore();
    }
  });

  it('times out a stalled write and retries it', async () => {
    const { writer, put, gate, stored } = await setup({ writeTimeoutMs: 100 });
    gate.close();
    put(2);
    // Waits for the retry itself: a fixed 250 ms sleep raced the 100 ms timeout plus the retry's
    // own timer when the event loop was held up past both on a loaded machine.
    await vi.waitFor(() => expect(gate.attempts).toBeGreaterThanOrEqual(2), { timeout: 5_000, interval: 10 });
    gate.open();
    await writer.drain();
    expect(await stored()).toBe(2);
  });

  it('bounds the queue: refuses reservations past maxQueueBytes while writes stall, and frees them as writes finish', async () => {
    const { writer, put, gate } = await setup({ maxQueueBytes: 20_000 });
    gate.close();
    while (writer.queueBytes < 15_000) put(1);
    expect(writer.reserve(5000)).toBeUndefined();
    const small = writer.reserve(10);
    expect(small).toBeDefined();
    small!.release();
    gate.open();
    await writer.drain();
    expect(writer.queueBytes).toBe(0);
    // The first request into an empty queue is admitted even when larger than the budget.
    expect(writer.reserve(25_000)).toBeDefined();
    expect(writer.isFull).toBe(true);
  });

  it('says it lacks room only until the queue has held less than when a request found none, even if it holds more again by the next look', async () => {
    // Readiness (lacksRoom) after a refusal: "until it shrinks". The queue drained meanwhile (the
    // stalled writes went through) and steady traffic filled it again above the level it had at
    // the refusal: the pod went on answering not ready while it took every request.
    const { writer, put, gate } = await setup({ maxQueueBytes: 20_000 });
    gate.close();
    put(1);
    const level = writer.queueBytes;
    expect(writer.reserve(20_000)).toBeUndefined();
    expect(writer.lacksRoom).toBe(true);
    gate.open();
    await writer.drain();
    expect(writer.queueBytes).toBe(0);
    // New requests arrive before the next readiness probe: the queue holds more than at the refusal.
    gate.close();
    while (writer.queueBytes <= level * 2) put(1);
    expect(writer.reserve(1000)).toBeDefined();
    expect(writer.lacksRoom).toBe(false);
    gate.open();
  });

  it('with group commit (delivery.ack = stored), writes a partial batch once no write is in flight, and what arrives during it as one batch when it ends', async () => {
    // The interval is a minute: without group commit, nothing would be written in this test's time.
    const { writer, put, stored, gate } = await setup({ groupCommit: true, flushIntervalMs: 60_000 });
    const turn = () => new Promise((r) => setImmediate(r));
    gate.close();
    put(3);
    await vi.waitFor(() => expect(gate.attempts).toBe(1));
    put(2);
    put(4);
    await turn();
    await turn();
    expect(gate.attempts).toBe(1);
    gate.open();
    await writer.drain();
    expect(await stored()).toBe(9);
    expect(gate.attempts).toBe(2);
  });

  it('commits as a group only where acknowledgements wait for the store, and not into ClickHouse with plain inserts', () => {
    const group = (flags: Record<string, string>) => writerOptions(loadConfig({ flags })).groupCommit;
    expect(group({ 'delivery.ack': 'stored' })).toBe(true);
    expect(group({ 'delivery.ack': 'stored', 'storage.backend': 'postgres' })).toBe(true);
    expect(group({ 'delivery.ack': 'durable' })).toBe(false);
    expect(group({ 'delivery.ack': 'queued' })).toBe(false);
    expect(group({ 'delivery.ack': 'stored', 'storage.backend': 'clickhouse' })).toBe(false);
    expect(group({ 'delivery.ack': 'stored', 'storage.backend': 'clickhouse', 'storage.clickhouse.asyncInsert': 'true' })).toBe(true);
  });

  it('limits writes in flight per pipeline', async () => {
    const { writer, put, gate } = await setup({ maxBatchRows: 1, maxInFlightBatches: 2 });
    gate.close();
    for (let i = 0; i < 6; i++) put(1);
    await new Promise((r) => setTimeout(r, 30));
    expect(gate.attempts).toBe(2);
    gate.open();
    await writer.drain();
    expect(gate.attempts).toBe(6);
  });

  it('on shutdown past its timeout, stops retrying and counts what is left as dropped', async () => {
    const { writer, put, gate, metric } = await setup();
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('down') });
    put(3);
    await writer.shutdown(50);
    expect(await metric('tracehouse_writer_dropped_rows_total')).toBe(3);
  });

  it('counts rows queued at the stop that run out of retries while it drains as dropped at shutdown (exit 3), not as a clean stop', async () => {
    // writer.retryMaxElapsedMs shorter than what is left of shutdown.timeoutMs: during an outage
    // every batch queued at the stop is given up while the stop waits for it. Those rows were
    // queued at the stop and not stored: the stop must say so (README, exit codes).
    const gate = gated(await memoryBackend());
    const { logger, lines } = capturedLogger();
    const metrics = createMetrics();
    const writer = new Writer(gate.backend, { ...opts, retryMaxElapsedMs: 200 }, metrics, logger);
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('down') });
    const chunks = encoder.encodeSpans(Array.from({ length: 4 }, () => makeSpan({ serviceName: 'w' })));
    void writer.reserve(10)!.commit('traces', chunks, TENANT);
    await new Promise((r) => setTimeout(r, 50));
    expect(await writer.shutdown(5000)).toBe(4);
    expect(lines().filter((l) => /^shutdown gave up on 4 accepted rows/.test(l.msg))).toHaveLength(1);
    expect(writer.queueBytes).toBe(0);
  });

  it('backs off exponentially with jitter, capped', () => {
    for (let a = 0; a < 20; a++) {
      const d = backoffMs(a, 100, 5000);
      const cap = Math.min(5000, 100 * 2 ** a);
      expect(d).toBeGreaterThanOrEqual(cap / 2);
      expect(d).toBeLessThanOrEqual(cap);
    }
  });

  it('a reservation is released once, and a committed one counts its encoded rows instead', async () => {
    const { writer, gate } = await setup();
    gate.close();
    const r = writer.reserve(1000)!;
    expect(writer.queueBytes).toBe(1000);
    r.release();
    r.release();
    expect(writer.queueBytes).toBe(0);
    const chunks = encoder.encodeSpans([makeSpan({ serviceName: 'w' })]);
    const encoded = chunks.reduce((s, c) => s + c.data.byteLength, 0);
    const c = writer.reserve(10)!;
    void c.commit('traces', chunks, TENANT);
    // After commit the queue holds the rows' own size, and a late release gives nothing back twice.
    expect(writer.queueBytes).toBe(encoded);
    c.release();
    expect(writer.queueBytes).toBe(encoded);
    expect(() => c.commit('traces', chunks, TENANT)).toThrow(/already/);
    gate.open();
    await writer.drain();
    expect(writer.queueBytes).toBe(0);
  });

  it('tells a committed request of two batches which of its rows were stored and which refused for good', async () => {
    // Partition 1's writes refused for good, partition 0's stored, or failing (given up on at once).
    const inner = await memoryBackend();
    const partitionZero: { fails?: WriteResult } = {};
    const backend: StoreWriter = Object.create(inner, {
      write: { value: (b: WriteBatch): Promise<WriteResult> => (b.partition === 1 ? Promise.resolve({ kind: 'permanent', error: new Error('refused') }) : partitionZero.fails ? Promise.resolve(partitionZero.fails) : inner.write(b)) },
    });
    const writer = new Writer(backend, { ...opts, refusedWhenGivenUp: true, retryMaxElapsedMs: 30 }, createMetrics(), pino({ level: 'silent' }));
    const request = () => {
      const [c] = encoder.encodeSpans([makeSpan({ serviceName: 'w' }), makeSpan({ serviceName: 'w' })]);
      const [d] = encoder.encodeSpans([makeSpan({ serviceName: 'w' })]);
      return writer.reserve(10)!.commit('traces', [c!, { ...d!, partition: 1 }], TENANT);
    };
    expect(await request()).toEqual({ delivered: 'permanent_error', refusedRows: 1, storedRows: 2 });
    // The rest given up on, not stored: not a partial success (ingest refuses the request whole).
    partitionZero.fails = { kind: 'retryable', error: new Error('down') };
    expect(await request()).toEqual({ delivered: 'permanent_error', refusedRows: 1, storedRows: 0 });
  });

  it('tells a committed request whether its rows were stored, or why they were dropped', async () => {
    const { writer, gate } = await setup();
    const chunks = () => encoder.encodeSpans([makeSpan({ serviceName: 'w' }), makeSpan({ serviceName: 'w' })]);
    expect(await writer.reserve(10)!.commit('traces', chunks(), TENANT)).toEqual({ delivered: true, refusedRows: 0, storedRows: 2 });
    gate.failNext(1, { kind: 'permanent', error: new Error('bad data') });
    expect(await writer.reserve(10)!.commit('traces', chunks(), TENANT)).toEqual({ delivered: 'permanent_error', refusedRows: 2, storedRows: 0 });
    expect(await writer.reserve(10)!.commit('traces', [], TENANT)).toEqual({ delivered: true, refusedRows: 0, storedRows: 0 });
  });

  it('reports how long writes have been failing and the age of the oldest unwritten row, both back to 0 on recovery', async () => {
    const { writer, put, gate, metrics } = await setup({ retryInitialMs: 20, retryMaxMs: 20 });
    const age = async () => Number((await metrics.registry.getSingleMetricAsString('tracehouse_queue_oldest_age_seconds')).split('\n').find((l) => !l.startsWith('#'))!.split(' ')[1]);
    expect(writer.writesFailingForMs).toBe(0);
    expect(await age()).toBe(0);
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('down') });
    const t0 = Date.now();
    put(3);
    // Waits for the failing state to be 50 ms old rather than sleeping 150 ms: the first attempt
    // waits for the 5 ms flush timer, and a loop held up past both timers ran them in one pass,
    // the first failure then only just before the check.
    await vi.waitFor(() => expect(writer.writesFailingForMs).toBeGreaterThanOrEqual(50), { timeout: 5_000, interval: 10 });
    await vi.waitFor(() => expect(Date.now() - t0).toBeGreaterThanOrEqual(150), { timeout: 5_000, interval: 10 });
    expect(await age()).toBeGreaterThanOrEqual(0.1);
    gate.failNext(0, { kind: 'success' });
    await writer.drain();
    expect(writer.writesFailingForMs).toBe(0);
    expect(await age()).toBe(0);
  });

  it('reports writes failing, and the oldest unwritten row\'s age, for as long as they fail though the wall clock stepped back', async () => {
    // Before: both were measured on Date.now(). A step back of an hour (NTP, a VM resumed) after a
    // write was stored made an outage that began after it look older than that write, so it was
    // not counted: the collector stayed ready through the outage (for the step's length), and the
    // queue's age read 0 or less.
    const realNow = Date.now.bind(Date);
    let step = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + step);
    try {
      const { writer, put, gate, metrics } = await setup({ retryInitialMs: 20, retryMaxMs: 20 });
      const age = async () => Number((await metrics.registry.getSingleMetricAsString('tracehouse_queue_oldest_age_seconds')).split('\n').find((l) => !l.startsWith('#'))!.split(' ')[1]);
      put(2);
      await writer.drain();
      step = -3_600_000;
      gate.failNext(1_000_000, { kind: 'retryable', error: new Error('down') });
      put(3);
      await vi.waitFor(() => expect(writer.writesFailingForMs).toBeGreaterThanOrEqual(100), { timeout: 3_000, interval: 10 });
      expect(writer.writesFailingForMs).toBeLessThan(60_000);
      expect(await age()).toBeGreaterThanOrEqual(0.1);
      expect(await age()).toBeLessThan(60);
      gate.failNext(0, { kind: 'success' });
      await writer.drain();
      expect(writer.writesFailingForMs).toBe(0);
    } finally {
      clock.mockRestore();
    }
  });

  it('counts a batch the write-ahead log hands back in the oldest row\'s age while newer batches wait ahead of it', async () => {
    // With delivery.ack = durable a batch given up after retryMaxElapsedMs goes to the log and is
    // submitted again later, to the end of its pipeline's line, behind batches queued after it.
    // Its rows are the oldest not stored, so tracehouse_queue_oldest_age_seconds must count them.
    const { writer, put, gate, metrics } = await setup({ keptByLog: true, retryMaxElapsedMs: 400, maxInFlightBatches: 1, maxBatchRows: 1, retryInitialMs: 5, retryMaxMs: 10 });
    const age = async () => Number((await metrics.registry.getSingleMetricAsString('tracehouse_queue_oldest_age_seconds')).split('\n').find((l) => !l.startsWith('#'))!.split(' ')[1]);
    const kept: WriteBatch[] = [];
    writer.onKept((b) => (kept.push(b), true));
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('down') });
    const t0 = Date.now();
    put(1);
    await new Promise((r) => setTimeout(r, 250));
    put(1);
    put(1);
    await vi.waitFor(() => expect(kept).toHaveLength(1), { timeout: 2000, interval: 5 });
    void writer.submit(kept[0]!);
    expect(await age()).toBeGreaterThanOrEqual((Date.now() - t0 - 20) / 1000);
    gate.failNext(0, { kind: 'success' });
    await writer.drain();
    expect(await age()).toBe(0);
  });

  it('is not failing once nothing retries: a dropped batch of a pipeline that sends nothing more does not keep it so', async () => {
    // Readiness goes false after 2 s of failing writes: one batch dropped for bad data, or given up
    // after retryMaxElapsedMs, must not hold it there for good.
    // A retry window wide enough to see the failing state on a loaded machine: with 30 ms a timer
    // delayed past it found the batch already given up on (and writesFailingForMs rightly 0).
    const { writer, put, gate } = await setup({ retryMaxElapsedMs: 1_000 });
    gate.failNext(1, { kind: 'permanent', error: new Error('bad data') });
    put(1);
    await writer.drain();
    expect(writer.writesFailingForMs).toBe(0);
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('down') });
    put(1);
    await vi.waitFor(() => expect(writer.writesFailingForMs).toBeGreaterThan(0), { timeout: 900, interval: 1 });
    await writer.drain();
    expect(writer.writesFailingForMs).toBe(0);
  });

  it('is not failing once a batch the write-ahead log handed back is refused for good on its rewrite', async () => {
    // delivery.ack = durable: a batch given up after retryMaxElapsedMs goes to the log, and its
    // pipeline stays failing until it is written again. Its rewrite refused for good (its rows
    // dropped, permanent_error) ends it as a drop of bad data does: nothing of the pipeline is
    // left to write, so readiness must not stay lost for good.
    const { writer, put, gate } = await setup({ keptByLog: true, retryMaxElapsedMs: 30 });
    const kept: WriteBatch[] = [];
    writer.onKept((b) => (kept.push(b), true));
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('down') });
    put(1);
    await vi.waitFor(() => expect(kept).toHaveLength(1), { timeout: 2000, interval: 5 });
    expect(writer.writesFailingForMs).toBeGreaterThan(0);
    gate.failNext(1, { kind: 'permanent', error: new Error('bad data') });
    expect(await writer.submit(kept[0]!)).toBe(false);
    await writer.drain();
    expect(writer.writesFailingForMs).toBe(0);
  });

  it('starts no write once shutdown has given up: what waited behind a stalled write is dropped unwritten', async () => {
    const { writer, put, gate, stored } = await setup({ maxBatchRows: 1, maxInFlightBatches: 1, writeTimeoutMs: 60_000 });
    gate.close();
    put(1);
    put(1);
    put(1);
    expect(await writer.shutdown(50)).toBe(3);
    // Only the write running at the timeout reached the store; the two behind it were not started.
    expect(gate.attempts).toBe(1);
    gate.open();
    await new Promise((r) => setTimeout(r, 20));
    expect(await stored()).toBeLessThanOrEqual(1);
  });

  it('shutdown gives up on a store that stays down and says how many accepted rows it dropped', async () => {
    const { writer, put, gate, metric } = await setup();
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('down') });
    put(4);
    put(3);
    expect(await writer.shutdown(100)).toBe(7);
    expect(await metric('tracehouse_writer_dropped_rows_total')).toBe(7);
    expect(writer.queueBytes).toBe(0);
  });

  it("frees a stored batch's chunks when the store copied them, not when it keeps them or a retry stored them", async () => {
    const path = join(tempDir(), 'freed.db');
    const sqlite = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': path } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await sqlite.start();
    const memory = await memoryBackend();
    const write = async (store: StoreWriter, service: string) => {
      // No write timeout within reach: a first attempt that times out is retried and leaves its
      // chunks to V8 (the third case below), and a fresh SQLite store's first write on a loaded
      // machine can take longer than the 1 s of opts.writeTimeoutMs.
      const writer = new Writer(store, { ...opts, writeTimeoutMs: 60_000 }, createMetrics(), pino({ level: 'silent' }));
      // Chunks that own their buffers, as the decode workers hand them over.
      const chunks = encoder.encodeSpans(Array.from({ length: 3 }, () => makeSpan({ serviceName: service }))).map((c) => ({ ...c, data: new Uint8Array(c.data) }));
      void writer.reserve(chunks.reduce((s, c) => s + c.data.byteLength, 0))!.commit('traces', chunks, TENANT);
      await writer.drain();
      return chunks.map((c) => c.data.buffer.detached);
    };
    try {
      expect(await write(sqlite, 'copied')).toEqual([true]);
      expect(await sqlite.searchTraces(TENANT, { service: 'copied', limit: 10 })).toHaveLength(3);
      // The memory store reads its spans from the chunks.
      expect(await write(memory, 'kept')).toEqual([false]);
      expect(await memory.searchTraces(TENANT, { service: 'kept', limit: 10 })).toHaveLength(3);
      // A first attempt that failed (or timed out, and may still be reading them) leaves them to V8.
      const gate = gated(sqlite);
      gate.failNext(1, { kind: 'retryable', error: new Error('busy') });
      expect(await write(gate.backend, 'retried')).toEqual([false]);
      expect(await sqlite.searchTraces(TENANT, { service: 'retried', limit: 10 })).toHaveLength(3);
    } finally {
      await sqlite.shutdown();
      await memory.shutdown();
    }
  });

  it("gives a batch the days of its rows when every chunk's encoder told them, and none otherwise", async () => {
    const seen: (number[] | undefined)[] = [];
    const recording: StoreWriter = { name: 'recording', write: async (b) => (seen.push(b.days), { kind: 'success' }) };
    // One flush for everything queued, so each batch is what one drain found.
    const writer = new Writer(recording, { ...opts, maxBatchRows: 1000, flushIntervalMs: 60_000 }, createMetrics(), pino({ level: 'silent' }));
    const put = (days: number[] | undefined) => {
      const chunks = encoder.encodeSpans([makeSpan({ serviceName: 'days' })]).map((c) => (days === undefined ? c : { ...c, days }));
      void writer.reserve(chunks.reduce((s, c) => s + c.data.byteLength, 0))!.commit('traces', chunks, TENANT);
    };
    put([20_000]);
    put([20_000, 20_001]);
    put([19_999]);
    await writer.drain();
    put([20_000]);
    put(undefined);
    await writer.drain();
    expect(seen.map((d) => d && [...d].sort((a, b) => a - b))).toEqual([[19_999, 20_000, 20_001], undefined]);
  });
});
