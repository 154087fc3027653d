// The pipelined writer between the decode workers and the backend: one pipeline per signal and
// backend partition, each batching by rows and delay with a bounded number of writes in flight,
// retrying transient failures with jittered exponential backoff. One byte budget bounds
// everything accepted and not yet written; receivers check it before accepting a request.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/index.ts';
import type { EncodedChunk, Signal, StorageBackend, WriteBatch, WriteResult } from '../storage/backend.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';

export interface WriterOptions {
  maxBatchRows: number;
  flushIntervalMs: number;
  maxInFlightBatches: number;
  maxQueueBytes: number;
  retryInitialMs: number;
  retryMaxMs: number;
  retryMaxElapsedMs: number;
  writeTimeoutMs: number;
}

/** Writer options from the configuration. */
export function writerOptions(c: Config): WriterOptions {
  return {
    maxBatchRows: c['writer.maxBatchRows'],
    flushIntervalMs: c['writer.flushIntervalMs'],
    maxInFlightBatches: c['writer.maxInFlightBatches'],
    maxQueueBytes: c['writer.maxQueueBytes'],
    retryInitialMs: c['writer.retryInitialMs'],
    retryMaxMs: c['writer.retryMaxMs'],
    retryMaxElapsedMs: c['writer.retryMaxElapsedMs'],
    writeTimeoutMs: c['writer.writeTimeoutMs'],
  };
}

class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/** Whatever a faulty backend rejected with, as an Error the writer can log. */
function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(`backend failed with a non-error value: ${String(e)}`);
}

/** Full-jitter exponential backoff: a random delay up to min(max, initial·2^attempt). */
export function backoffMs(attempt: number, initialMs: number, maxMs: number): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(cap / 2 + (Math.random() * cap) / 2));
}

class Pipeline {
  private pending: Uint8Array[] = [];
  private pendingRows = 0;
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly ready: WriteBatch[] = [];
  private inFlight = 0;
  private failing = false;
  private readonly signal: Signal;
  private readonly partition: number;
  private readonly w: Writer;

  constructor(w: Writer, signal: Signal, partition: number) {
    this.w = w;
    this.signal = signal;
    this.partition = partition;
  }

  get idle(): boolean {
    return this.pending.length === 0 && this.ready.length === 0 && this.inFlight === 0;
  }

  add(chunk: EncodedChunk): void {
    this.pending.push(chunk.data);
    this.pendingRows += chunk.rows;
    this.pendingBytes += chunk.data.byteLength;
    if (this.pendingRows >= this.w.opts.maxBatchRows) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.w.opts.flushIntervalMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    this.ready.push({
      signal: this.signal,
      partition: this.partition,
      rows: this.pendingRows,
      bytes: this.pendingBytes,
      chunks: this.pending,
      batchId: randomUUID(),
    });
    this.pending = [];
    this.pendingRows = 0;
    this.pendingBytes = 0;
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.w.opts.maxInFlightBatches && this.ready.length > 0) {
      const batch = this.ready.shift()!;
      this.inFlight++;
      void this.deliver(batch)
        .catch((err: unknown) => this.w.drop(batch, 'writer_error', asError(err)))
        .finally(() => {
          this.inFlight--;
          this.w.release(batch.bytes);
          this.pump();
          this.w.notifyIdle();
        });
    }
  }

  private async attempt(batch: WriteBatch): Promise<WriteResult> {
    const { backend } = this.w;
    // Ends the timeout timer once the write answers, and stops waiting at once when shutdown gives up.
    const done = new AbortController();
    const signal = AbortSignal.any([done.signal, this.w.abort.signal]);
    try {
      const write = this.signal === 'spans' ? backend.writeSpans(batch) : backend.writeLogs(batch);
      const timeout = sleep(this.w.opts.writeTimeoutMs, undefined, { signal }).then(
        (): WriteResult => ({ kind: 'retryable', error: new TimeoutError(`write took over ${this.w.opts.writeTimeoutMs} ms`) }),
        (): WriteResult => ({ kind: 'retryable', error: new Error('shutting down') }),
      );
      const result = await Promise.race([write, timeout]);
      return result.kind === 'success' || result.error instanceof Error ? result : { ...result, error: asError(result.error) };
    } catch (err) {
      // The port says adapters answer with a result; a throw (even a synchronous one) is treated as transient.
      return { kind: 'retryable', error: asError(err) };
    } finally {
      done.abort();
    }
  }

  /** Writes one batch until it succeeds, fails permanently, or retrying runs out. */
  private async deliver(batch: WriteBatch): Promise<void> {
    const { metrics, opts, backend } = this.w;
    const labels = { backend: backend.name, signal: this.signal };
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      const t0 = performance.now();
      const result = await this.attempt(batch);
      metrics.batchDuration.observe(labels, (performance.now() - t0) / 1000);
      if (result.kind === 'success') {
        metrics.writtenRows.inc(labels, batch.rows);
        if (this.failing) {
          this.failing = false;
          this.w.logger.info({ ...labels, partition: this.partition, attempts: attempt + 1 }, 'storage writes recovered');
        }
        return;
      }
      metrics.failedBatches.inc({ ...labels, kind: result.kind });
      if (!this.failing) {
        this.failing = true;
        this.w.logger.warn({ ...labels, partition: this.partition, kind: result.kind, err: result.error.message }, 'storage write failed; retrying transient failures until they pass');
      }
      if (result.kind === 'permanent') return this.w.drop(batch, 'permanent_error', result.error);
      const elapsed = Date.now() - started;
      if (opts.retryMaxElapsedMs > 0 && elapsed >= opts.retryMaxElapsedMs) return this.w.drop(batch, 'retries_exhausted', result.error);
      const delay = result.retryAfterMs ?? backoffMs(attempt, opts.retryInitialMs, opts.retryMaxMs);
      try {
        await sleep(delay, undefined, { signal: this.w.abort.signal });
      } catch {
        return this.w.drop(batch, 'shutdown', result.error);
      }
    }
  }
}

/** Batches encoded rows and writes them to the backend; bounded by maxQueueBytes. */
export class Writer {
  readonly opts: WriterOptions;
  readonly backend: StorageBackend;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Aborted when shutdown gives up waiting: pending retries stop and count their rows as dropped. */
  readonly abort = new AbortController();
  private readonly pipelines = new Map<string, Pipeline>();
  private queuedBytes = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(backend: StorageBackend, opts: WriterOptions, metrics: Metrics, logger: Logger) {
    this.backend = backend;
    this.opts = opts;
    this.metrics = metrics;
    this.logger = logger;
    metrics.queueCapacity.set(opts.maxQueueBytes);
    metrics.queueSize.set(0);
  }

  /** Bytes accepted (or reserved by requests being decoded) and not yet written. */
  get queueBytes(): number {
    return this.queuedBytes;
  }

  get isFull(): boolean {
    return this.queuedBytes >= this.opts.maxQueueBytes;
  }

  /** Reserves room for a request of this many bytes before it is decoded; false when the queue is full. */
  reserve(bytes: number): boolean {
    if (this.queuedBytes + bytes > this.opts.maxQueueBytes && this.queuedBytes > 0) return false;
    this.queuedBytes += bytes;
    this.metrics.queueSize.set(this.queuedBytes);
    return true;
  }

  /** Gives back bytes: a reservation that was not used, or a batch that left the queue. */
  release(bytes: number): void {
    this.queuedBytes -= bytes;
    this.metrics.queueSize.set(this.queuedBytes);
  }

  /** Queues a decoded request's chunks in place of its reservation. */
  commit(reservedBytes: number, signal: Signal, chunks: EncodedChunk[]): void {
    let bytes = 0;
    for (const c of chunks) bytes += c.data.byteLength;
    this.queuedBytes += bytes - reservedBytes;
    this.metrics.queueSize.set(this.queuedBytes);
    for (const c of chunks) this.pipeline(signal, c.partition).add(c);
  }

  private pipeline(signal: Signal, partition: number): Pipeline {
    const key = `${signal}/${partition}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = new Pipeline(this, signal, partition);
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** Counts and logs rows that will never be stored. */
  drop(batch: WriteBatch, reason: string, error: Error): void {
    this.metrics.droppedRows.inc({ backend: this.backend.name, signal: batch.signal, reason }, batch.rows);
    this.logger.error({ signal: batch.signal, partition: batch.partition, rows: batch.rows, reason, err: error.message }, 'dropped a batch of accepted rows');
  }

  notifyIdle(): void {
    if (!this.idle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private get idle(): boolean {
    for (const p of this.pipelines.values()) if (!p.idle) return false;
    return true;
  }

  /** Writes everything queued now, without waiting for the flush interval. */
  flush(): void {
    for (const p of this.pipelines.values()) p.flush();
  }

  /** Resolves when every queued row has been written or dropped. */
  async drain(): Promise<void> {
    this.flush();
    if (this.idle) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  async start(): Promise<void> {}

  /** Flushes and waits for the queue to drain, up to timeoutMs; then stops retries (their rows counted as dropped). */
  async shutdown(timeoutMs = 30_000): Promise<void> {
    const timer = setTimeout(() => this.abort.abort(), timeoutMs);
    try {
      await this.drain();
    } finally {
      clearTimeout(timer);
    }
  }
}
