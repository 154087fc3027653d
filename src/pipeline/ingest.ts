// The pipeline's front door: what both receivers do with a request once its bytes are in hand.
// Admit it against the queue budget, decode it on a worker, queue the rows, and say what the
// client should be told. Transports only map the outcome to their status codes (REFUSALS).
import { REFUSALS, RETRY_AFTER_MS, type RefusalReason } from '../common/refusals.ts';
import type { Signal } from '../model/signal.ts';
import type { EncodedChunk } from '../storage/backend.ts';
import { STORE_BYTES_PER_REQUEST_BYTE } from '../storage/encoders.ts';
import { RecurringLog, RecurringLogs, type Logger } from '../telemetry/logger.ts';
import type { ITEM_REFUSAL_REASONS, Metrics, Transport } from '../telemetry/metrics.ts';
import { PoolBusyError, type DecodePool, type OtlpFormat, type WorkerHeap } from './pool.ts';
import { JSON_DECODE_CHARGE } from './decode/common.ts';
import type { Reservation, Writer } from './writer.ts';

export type IngestOutcome =
  /** Queued for storage (rejected > 0 or a message: partial success). */
  | { kind: 'ok'; accepted: number; rejected: number; errorMessage: string }
  /** Refused as a whole; REFUSALS[reason] says what each transport answers. */
  | { kind: 'refused'; reason: RefusalReason; message: string };

/** One request for Ingest.handle. */
export interface IngestRequest {
  transport: Transport;
  signal: Signal;
  format: OtlpFormat;
  body: Uint8Array;
  /** The caller will not touch body again, so its memory may move to the worker without a copy. */
  owned?: boolean;
  /** Whose data this is (from the bearer token; DEFAULT_TENANT without authentication). */
  tenant: string;
  /** Room already taken for this request (HTTP takes it before reading the body); else taken here. */
  reservation?: Reservation;
  /** Write the rows as their own batches under ids derived from this (import: the same file content gets the same ids). */
  batchId?: string;
}

/**
 * The refusals import and copy (transport 'file') wait out and offer the request again
 * (TransferSink): back-pressure of their own, not a refusal, so not logged for them. A restore
 * reads faster than a store writes, and "refusing requests: the write queue is full" on its
 * stderr (through --quiet) said something was refused when nothing was.
 */
export const WAITED_OUT: ReadonlySet<RefusalReason> = new Set<RefusalReason>(['queue_full', 'workers_busy']);

/** When a request is acknowledged: once queued in memory, once fsynced in the write-ahead log, or once its rows are stored. */
export type AckMode = 'queued' | 'durable' | 'stored';

/** Why an append was refused: the log is full (wait for the store), the disk failed, or the request's rows are larger than the whole log (never taken). */
export type AppendRefusal = 'wal_full' | 'wal_unavailable' | 'too_large';

/** What ingest needs for ack = durable: an fsynced append, refused with a reason instead of throwing. */
export interface IngestLog {
  append(signal: Signal, chunks: readonly EncodedChunk[], tenant: string): Promise<AppendRefusal | undefined>;
}

/** Optional parts of Ingest: the log for ack = durable, and the memory limiter. */
export interface IngestParts {
  log?: IngestLog;
  memory?: { readonly overLimit: boolean; readonly retryAfterMs: number };
}

/** Shared request handling for the OTLP receivers. */
export class Ingest {
  private readonly ack: AckMode;
  private readonly pool: DecodePool;
  private readonly writer: Writer;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  /**
   * When each retryable refusal reason was last logged, per transport: one line a minute for each,
   * so one reason never hides another, and a line's count is of the transport it names.
   */
  private readonly overloadLogs = new RecurringLogs<`${Transport}/${RefusalReason}`>();
  private readonly workerFailures = new RecurringLog();
  /** Per transport and answer, so a line's count is of what it names. */
  private readonly unansweredLogs = new RecurringLogs<string>();
  private closed = false;
  /** Ends the waits of requests whose rows are not stored yet (ack = stored), at a stop; set once stopWaiting() ran. */
  private readonly storeWaits = new Set<() => void>();
  private waitsStopped = false;
  private readonly workerHeaps = new Map<number, number>();
  private readonly parts: IngestParts;

  constructor(pool: DecodePool, writer: Writer, metrics: Metrics, logger: Logger, ack: AckMode = 'queued', parts: IngestParts = {}) {
    if (ack === 'durable' && !parts.log) throw new Error('ack = durable needs a write-ahead log');
    this.ack = ack;
    this.parts = parts;
    this.pool = pool;
    this.writer = writer;
    this.metrics = metrics;
    this.logger = logger;
  }

  /**
   * Queue-budget bytes a request of this format is charged per byte of its body until its rows
   * are queued: OTLP/JSON what decoding it takes (JSON_DECODE_CHARGE), OTLP/protobuf what its rows
   * will take in the store's format (STORE_BYTES_PER_REQUEST_BYTE: COPY tuples are four times
   * the protobuf, and charged only the body, the queue grew past its bound as they arrived).
   */
  decodeCharge(format: OtlpFormat): number {
    return format === 'json' ? JSON_DECODE_CHARGE : STORE_BYTES_PER_REQUEST_BYTE[this.pool.encoder.name];
  }

  /** True while new requests would be refused for lack of queue room or memory. */
  get overloaded(): boolean {
    return this.admissionRefusal() !== undefined;
  }

  /** Why a request arriving now would be refused before its body is read, if it would. */
  admissionRefusal(): RefusalReason | undefined {
    if (this.closed) return 'shutting_down';
    if (this.parts.memory?.overLimit) return 'memory_limited';
    return this.writer.isFull ? 'queue_full' : undefined;
  }

  /**
   * How long a client refused for `reason` is asked to wait: the memory limiter's own hint (two of
   * its samples, so the retry meets a fresh one), the transports' default otherwise.
   */
  retryAfterMs(reason: RefusalReason): number {
    return reason === 'memory_limited' && this.parts.memory ? this.parts.memory.retryAfterMs : RETRY_AFTER_MS;
  }

  /** Refuses all further requests (shutdown: the writer is about to drain). */
  close(): void {
    this.closed = true;
  }

  /**
   * Answers every request still waiting for its rows to be stored (ack = stored) as refused for
   * the stop (retryable): called before the receivers' grace ends, so that they are answered rather
   * than cut with their connections. Their rows stay queued: the drain may still store them.
   * Requests decoded from now on are refused the same way before their rows are queued.
   */
  stopWaiting(): void {
    this.waitsStopped = true;
    for (const end of this.storeWaits) end();
    this.storeWaits.clear();
  }

  /** Takes queue room for a body before it is read; undefined when the queue is full or closed. */
  reserve(bytes: number): Reservation | undefined {
    return this.closed ? undefined : this.writer.reserve(bytes);
  }

  /** Counts a refusal and builds its outcome; overload is logged at most once a minute for each reason (the counter has the rest). */
  refuse(transport: Transport, reason: RefusalReason, message: string = REFUSALS[reason].message): IngestOutcome {
    if (REFUSALS[reason].counted) this.metrics.refusedRequests.inc({ transport, reason });
    if (REFUSALS[reason].retryable && reason !== 'worker_failed' && !(transport === 'file' && WAITED_OUT.has(reason))) {
      const queueBytes = this.writer.queueBytes;
      this.overloadLogs.log(`${transport}/${reason}`, (refused) => this.logger.warn({ transport, reason, queueBytes, refused }, 'refusing requests: ' + message));
    }
    return { kind: 'refused', reason, message };
  }

  /**
   * Counts an export answered after its client had gone (a deadline passed, a cancel, a closed
   * connection): its rows were taken or refused as `out` says, and the client, not knowing, may
   * send them again. Logged at most once a minute.
   */
  unanswered(transport: Transport, out: IngestOutcome): void {
    this.metrics.unansweredRequests.inc({ transport });
    const answer = out.kind === 'ok' ? 'taken' : out.reason;
    this.unansweredLogs.log(`${transport}/${answer}`, (unanswered) =>
      this.logger.warn({ transport, answer, unanswered }, 'exports answered after their clients had gone (a deadline passed or the connection closed): clients may send them again; a slow store under delivery.ack = stored, or an exporter timeout shorter than the collector needs'),
    );
  }

  /**
   * Counts refused items of a decoded request: its invalid ones (invalid_item), or all of them when
   * it is refused whole (a request refused before decoding has no count: refused_requests_total only).
   */
  private countRefusedItems(transport: Transport, signal: Signal, reason: (typeof ITEM_REFUSAL_REASONS)[number], items: number): void {
    if (items > 0) (signal === 'traces' ? this.metrics.refusedSpans : this.metrics.refusedLogs).inc({ transport, reason }, items);
  }

  /** Keeps the worker-heap gauge at the sum of each live worker's latest report. */
  private noteWorkerHeap(h: WorkerHeap): void {
    // A worker that died (out of memory, a bug) is replaced by one with a thread id of its own:
    // the dead ones' reports leave when a new one first reports, or the gauge (and this map)
    // would grow by a worker's heap at every death, for as long as the process runs.
    if (!this.workerHeaps.has(h.threadId)) {
      const live = this.pool.liveThreadIds();
      for (const id of this.workerHeaps.keys()) if (!live.has(id)) this.workerHeaps.delete(id);
    }
    this.workerHeaps.set(h.threadId, h.bytes);
    let sum = 0;
    for (const b of this.workerHeaps.values()) sum += b;
    this.metrics.workerHeapBytes.set(sum);
  }

  /** Admits, decodes and queues one request. */
  async handle(req: IngestRequest): Promise<IngestOutcome> {
    const { transport, signal } = req;
    if (this.closed) {
      req.reservation?.release();
      return this.refuse(transport, 'shutting_down');
    }
    if (!req.reservation && this.parts.memory?.overLimit) return this.refuse(transport, 'memory_limited');
    if (this.writer.failingShareFull(signal)) {
      req.reservation?.release();
      return this.refuse(transport, 'queue_full', `the write queue's share for ${signal} is full while its storage writes fail; retry later`);
    }
    const charge = Math.ceil(this.decodeCharge(req.format) * req.body.byteLength);
    const reservation = req.reservation ?? this.writer.reserve(charge);
    if (!reservation) return this.refuse(transport, 'queue_full');
    if (charge > reservation.bytes && !reservation.grow(charge - reservation.bytes)) {
      reservation.release();
      return this.refuse(transport, 'queue_full');
    }
    let out;
    try {
      out = await this.pool.decode(signal, req.format, req.body, req.owned ?? false);
    } catch (err) {
      reservation.release();
      if (err instanceof PoolBusyError) return this.refuse(transport, 'workers_busy');
      // A worker that died (out of memory, a bug) is not the client's fault: ask it to retry.
      this.workerFailures.log((failed) => this.logger.error({ transport, signal, err: (err as Error).message, failed }, 'a decode worker failed; the request was refused as retryable'));
      return this.refuse(transport, 'worker_failed');
    }
    // Decoded after the writer began draining, or (ack = stored) once the waits for the store
    // were ended by the stop: the client is told to retry, nothing is queued (queued, its rows
    // could be stored by the drain and stored again when the client resends them).
    if (this.closed || (this.ack === 'stored' && this.waitsStopped)) {
      reservation.release();
      if (out.kind === 'ok') this.countRefusedItems(transport, signal, 'shutting_down', out.accepted + out.rejected);
      return this.refuse(transport, 'shutting_down');
    }
    this.metrics.decodeDuration.observe({ signal }, out.seconds);
    this.noteWorkerHeap(out.heap);
    if (out.kind === 'invalid') {
      reservation.release();
      return this.refuse(transport, 'undecodable', out.message);
    }
    if (out.kind === 'too_large') {
      reservation.release();
      return this.refuse(transport, 'too_large', out.message);
    }
    if (this.ack === 'durable' && out.chunks.length > 0) {
      // In the log and fsynced before the writer sees the rows, or not acknowledged at all.
      const refused = await this.parts.log!.append(signal, out.chunks, req.tenant);
      if (refused) {
        reservation.release();
        this.countRefusedItems(transport, signal, refused, out.accepted + out.rejected);
        // Within receiver.maxMessageBytes, yet never to be taken: say which bound it is over.
        if (refused === 'too_large') return this.refuse(transport, refused, 'the request\'s rows are larger than the whole write-ahead log (delivery.walMaxBytes): it can never be taken; send smaller requests');
        return this.refuse(transport, refused);
      }
    }
    const stored = reservation.commit(signal, out.chunks, req.tenant, req.batchId);
    // With ack=stored the client hears back only once the write holding its rows committed; rows
    // the writer gave up on are refused as retryable rather than acknowledged, and rows the store
    // refused for good as not retryable (the writer counts those as dropped): the whole request
    // when they are all of its rows, else as a partial success naming how many (the store kept the
    // rest: a request's rows across ClickHouse shards, or in several chunks, one of them refused).
    let refusedByStore = 0;
    if (this.ack === 'stored') {
      let end!: () => void;
      const ended = new Promise<'stop'>((resolve) => (end = () => resolve('stop')));
      if (this.waitsStopped) end();
      else this.storeWaits.add(end);
      const committed = await Promise.race([stored, ended]);
      this.storeWaits.delete(end);
      if (committed === 'stop') {
        this.countRefusedItems(transport, signal, 'shutting_down', out.accepted + out.rejected);
        return this.refuse(transport, 'shutting_down');
      }
      const { delivered, refusedRows, storedRows } = committed;
      // Some refused for good and the rest stored: a partial success. A rest given up on (not stored)
      // refuses the request whole, as one refused for good.
      if (delivered === 'permanent_error' && storedRows > 0 && storedRows + refusedRows === out.accepted) refusedByStore = refusedRows;
      else if (delivered !== true) {
        const reason = delivered === 'permanent_error' ? 'rejected_by_store' : 'not_stored';
        this.countRefusedItems(transport, signal, reason, out.accepted + out.rejected);
        return this.refuse(transport, reason);
      }
    }
    const accepted = signal === 'traces' ? this.metrics.acceptedSpans : this.metrics.acceptedLogs;
    if (out.accepted > refusedByStore) accepted.inc({ transport }, out.accepted - refusedByStore);
    this.countRefusedItems(transport, signal, 'invalid_item', out.rejected);
    this.countRefusedItems(transport, signal, 'rejected_by_store', refusedByStore);
    this.metrics.acceptedRequests.inc({ transport });
    if (refusedByStore === 0) return { kind: 'ok', accepted: out.accepted, rejected: out.rejected, errorMessage: out.errorMessage };
    const what = signal === 'traces' ? 'spans' : 'log records';
    const storeMessage = `${refusedByStore} ${what} refused for good by the store (${REFUSALS.rejected_by_store.message}); the request's others are stored`;
    return { kind: 'ok', accepted: out.accepted - refusedByStore, rejected: out.rejected + refusedByStore, errorMessage: out.errorMessage ? `${out.errorMessage}; ${storeMessage}` : storeMessage };
  }
}
