// What both receivers do with a request once its bytes are in hand: admit it against the queue
// budget, decode it on a worker, queue the rows and say what the client should be told.
// Transports only map the outcome to their status codes.
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics, Transport } from '../telemetry/metrics.ts';
import { PoolBusyError, type DecodePool, type OtlpFormat, type OtlpSignal, type WorkerHeap } from '../pipeline/pool.ts';
import type { Writer } from '../pipeline/writer.ts';

export type IngestOutcome =
  /** Queued for storage (rejected > 0 or a message: partial success). */
  | { kind: 'ok'; accepted: number; rejected: number; errorMessage: string }
  /** Undecodable: 400 / INVALID_ARGUMENT, not retried. */
  | { kind: 'invalid'; message: string }
  /** Overloaded: 503 / UNAVAILABLE with a retry delay. */
  | { kind: 'unavailable'; message: string; retryAfterMs: number };

/** How long clients are asked to wait when the queue is full. */
const RETRY_AFTER_MS = 1000;

/** Shared request handling for the OTLP receivers. */
export class Ingest {
  private readonly pool: DecodePool;
  private readonly writer: Writer;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private loggedOverload = 0;
  private loggedWorkerFailure = 0;
  private closed = false;

  constructor(pool: DecodePool, writer: Writer, metrics: Metrics, logger: Logger) {
    this.pool = pool;
    this.writer = writer;
    this.metrics = metrics;
    this.logger = logger;
  }

  /** True while new requests would be refused for lack of queue room. */
  get overloaded(): boolean {
    return this.writer.isFull;
  }

  private refuseRequest(transport: Transport, reason: string, message: string): IngestOutcome {
    this.metrics.refusedRequests.inc({ transport, reason });
    const now = Date.now();
    // Overload is logged at most once a minute; the counter has the rest.
    if (now - this.loggedOverload > 60_000) {
      this.loggedOverload = now;
      this.logger.warn({ transport, reason, queueBytes: this.writer.queueBytes }, 'refusing requests: ' + message);
    }
    return { kind: 'unavailable', message, retryAfterMs: RETRY_AFTER_MS };
  }

  private readonly workerHeaps = new Map<number, number>();

  /** Keeps the worker-heap gauge at the sum of each worker's latest report. */
  private noteWorkerHeap(h: WorkerHeap): void {
    this.workerHeaps.set(h.threadId, h.bytes);
    let sum = 0;
    for (const b of this.workerHeaps.values()) sum += b;
    this.metrics.workerHeapBytes.set(sum);
  }

  /** Refuses all further requests (shutdown: the writer is about to drain). */
  close(): void {
    this.closed = true;
  }

  /**
   * Reserves queue room for a body before it is read (its declared length), so concurrent
   * uploads count against writer.maxQueueBytes while they arrive; false when the queue is full.
   * Pass the reservation to handle(), or give it back with releaseBody() if the body never arrives.
   */
  reserveBody(bytes: number): boolean {
    return !this.closed && this.writer.reserve(bytes);
  }

  releaseBody(bytes: number): void {
    this.writer.release(bytes);
  }

  /** Counts a request refused before decoding (oversized, bad content type …). */
  countRefusedRequest(transport: Transport, reason: string): void {
    this.metrics.refusedRequests.inc({ transport, reason });
  }

  /**
   * Admits, decodes and queues one request. `owned`: the caller will not touch body again, so its
   * memory may move to the worker. `reservedBytes`: room already taken with reserveBody().
   */
  async handle(transport: Transport, signal: OtlpSignal, format: OtlpFormat, body: Uint8Array, owned = false, reservedBytes?: number): Promise<IngestOutcome> {
    const reserved = reservedBytes ?? body.byteLength;
    if (this.closed) {
      if (reservedBytes !== undefined) this.writer.release(reservedBytes);
      return this.refuseRequest(transport, 'shutting_down', 'the collector is shutting down');
    }
    if (reservedBytes === undefined && !this.writer.reserve(reserved)) return this.refuseRequest(transport, 'queue_full', 'the write queue is full');
    let out;
    try {
      out = await this.pool.decode(signal, format, body, owned);
    } catch (err) {
      this.writer.release(reserved);
      if (err instanceof PoolBusyError) return this.refuseRequest(transport, 'workers_busy', err.message);
      // A worker that died (out of memory, a bug) is not the client's fault: ask it to retry.
      this.metrics.refusedRequests.inc({ transport, reason: 'worker_failed' });
      const now = Date.now();
      if (now - this.loggedWorkerFailure > 60_000) {
        this.loggedWorkerFailure = now;
        this.logger.error({ transport, signal, err: (err as Error).message }, 'a decode worker failed; the request was refused as retryable');
      }
      return { kind: 'unavailable', message: 'decoding failed on the server; retry', retryAfterMs: RETRY_AFTER_MS };
    }
    if (this.closed) {
      // Decoded after the writer began draining: the client is told to retry, nothing is queued.
      this.writer.release(reserved);
      return this.refuseRequest(transport, 'shutting_down', 'the collector is shutting down');
    }
    this.metrics.decodeDuration.observe({ signal }, out.seconds);
    this.noteWorkerHeap(out.heap);
    const accepted = signal === 'traces' ? this.metrics.acceptedSpans : this.metrics.acceptedLogs;
    const refused = signal === 'traces' ? this.metrics.refusedSpans : this.metrics.refusedLogs;
    if (out.kind === 'invalid') {
      this.writer.release(reserved);
      this.metrics.refusedRequests.inc({ transport, reason: 'undecodable' });
      return { kind: 'invalid', message: out.message };
    }
    this.writer.commit(reserved, signal === 'traces' ? 'spans' : 'logs', out.chunks);
    if (out.accepted > 0) accepted.inc({ transport }, out.accepted);
    if (out.rejected > 0) refused.inc({ transport, reason: 'invalid_item' }, out.rejected);
    return { kind: 'ok', accepted: out.accepted, rejected: out.rejected, errorMessage: out.errorMessage };
  }
}
