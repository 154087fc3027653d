// The pipelined writer between the decode workers and the store: one batching pipeline per
// signal, store partition and tenant (so a batch is one tenant's and the store writes the tenant
// per batch, leaving encoders and the workers untouched), each with a bounded number of writes in flight; every write is
// retried with jittered backoff and bounded by a timeout (retry.ts). One byte budget bounds
// everything accepted and not yet written: requests reserve room before they are decoded and
// hand it over to their encoded rows when they are queued (Reservation).
import { randomUUID } from 'node:crypto';
import type { Signal } from '../model/signal.ts';
import type { EncodedChunk, StoreWriter, WriteBatch } from '../storage/backend.ts';
import { RecurringLog, RecurringLogs, type Logger } from '../telemetry/logger.ts';
import { initWriterMetrics, type DROP_REASONS, type Metrics } from '../telemetry/metrics.ts';
import { releaseBuffer, soleUser } from '../common/release.ts';
import { asError, attemptWithTimeout, retryWithBackoff, type RetryPolicy } from './retry.ts';

export { backoffMs } from './retry.ts';

/** How rows are grouped into writes. */
export interface BatchOptions {
  maxBatchRows: number;
  flushIntervalMs: number;
  maxInFlightBatches: number;
  /**
   * Group commit, for callers that wait for their rows to be stored (delivery.ack = stored): a
   * partial batch is written at the end of the event-loop turn when its pipeline has no write in
   * flight, and rows that arrive while one is in flight are written together when it ends. Off, a
   * partial batch waits up to flushIntervalMs for more rows, so each acknowledgement would wait
   * that long.
   */
  groupCommit?: boolean;
}

export interface WriterOptions extends BatchOptions, RetryPolicy {
  maxQueueBytes: number;
  writeTimeoutMs: number;
  /**
   * Rows the writer gives up on stay in a write-ahead log (delivery.ack = durable) and are
   * replayed at the next start: counted and logged as kept, not as lost.
   */
  keptByLog?: boolean;
  /**
   * Every row's request waits for its write and is refused (503 not_stored) when the writer gives
   * up on it (delivery.ack = stored): the client still holds those rows, so they are not lost.
   * Rows the store refused for good (permanent_error) are refused as not retryable: dropped.
   */
  refusedWhenGivenUp?: boolean;
  /**
   * A write the store refused for want of a privilege (WriteResult denied) is refused for good,
   * not retried: import and copy, whose rows no log keeps and whose operator is waiting.
   */
  deniedIsPermanent?: boolean;
}

/** The key of a batch's pipeline (signal, partition, tenant) in the writer's maps. */
function pipelineKey(b: Pick<WriteBatch, 'signal' | 'partition' | 'tenant'>): string {
  return `${b.signal}/${b.partition}/${b.tenant}`;
}

/** Room taken in the queue budget for one request, from before it is decoded until its rows are queued. */
export interface Reservation {
  readonly bytes: number;
  /** Takes more room as a request's bytes arrive; false (holding what it had) when the queue has none. */
  grow(bytes: number): boolean;
  /**
   * Queues the request's encoded rows in place of the reservation (their own size is counted
   * from now on). The promise says whether every row was stored (true) or why some were not (a
   * drop reason: permanent_error before the others), and how many rows the store refused for good
   * (`refusedRows`: those of chunks it left out, the rest of the request's rows stored, or all);
   * callers that acknowledge on queueing need not wait for it. With a batchId the rows become
   * batches of their own, one per partition, with ids derived from it: a caller replaying the same
   * data (import) gets the same ids, which the stores recognize.
   */
  commit(signal: Signal, chunks: readonly EncodedChunk[], tenant: string, batchId?: string): Promise<Committed>;
  /** Gives the room back; does nothing after commit() or a first release(). */
  release(): void;
}

/** What became of a batch: stored (true), or why not. */
export type Delivered = true | DropReason;

/** What became of a request's rows (Reservation.commit). */
export interface Committed {
  delivered: Delivered;
  /**
   * Rows the store refused for good (delivered is then permanent_error): some of the request's, or
   * all (of a chunk split for a proxy, those rows the store named, its others counted stored).
   * Under a batchId (import), all of a partition's batch when the store refused any of it.
   */
  refusedRows: number;
  /**
   * Rows stored: with refusedRows, all of the request's when nothing else became of any (without
   * refusedWhenGivenUp, rows of a batch stored but for some are counted stored: nothing waits).
   */
  storedRows: number;
}
type DropReason = (typeof DROP_REASONS)[number];

/**
 * Told once what became of the batch holding a chunk; `refused`: with permanent_error, how many of
 * the chunk's rows the store refused when not all (the others stored).
 */
type Listener = (delivered: Delivered, refused?: number) => void;

/** A batch on its way to the store, with when its oldest row was queued and who waits for it. */
interface QueuedBatch {
  batch: WriteBatch;
  sinceMs: number;
  /** One per chunk of a batch the pipeline formed (perChunk), else one for the whole batch. */
  listeners: Listener[];
  perChunk?: boolean;
}

/** Stored but for rows of these chunks (indexes in the batch), which the store can never take (ack = stored). */
interface LeftOutChunks {
  leftOut: readonly number[];
  /** Rows of each (same order) the store left out, when it told them (WriteResult dropped chunkRows). */
  leftRows?: readonly number[];
}

/** What a batching pipeline needs from its writer: where full batches go. */
interface PipelineContext {
  readonly opts: BatchOptions;
  /** Stores a batch (retrying as needed); resolves true once stored, the reason once dropped. `shared`: whether it holds several requests' rows (asked only when dropped). */
  deliver(batch: WriteBatch, shared: () => boolean, sinceMs: number): Promise<Delivered | LeftOutChunks>;
  /** Called after each delivery has left the pipeline. */
  settled(): void;
}

/** Adds a chunk's days to those of the chunks before it; undefined once one of them has none. */
function withDays(days: Set<number> | undefined, chunk: EncodedChunk): Set<number> | undefined {
  if (days === undefined || chunk.days === undefined) return undefined;
  for (const d of chunk.days) days.add(d);
  return days;
}

/** Groups chunks of one signal and partition into batches and keeps a bounded number in flight. */
class Pipeline {
  private pending: Uint8Array[] = [];
  /** The pending chunks' days (EncodedChunk.days); undefined when one of them has none. */
  private pendingDays: Set<number> | undefined = new Set();
  private pendingRows = 0;
  private pendingBytes = 0;
  private pendingSinceMs = 0;
  private pendingListeners: Listener[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** A group-commit flush is scheduled for the end of this event-loop turn. */
  private flushScheduled = false;
  private readonly ready: QueuedBatch[] = [];
  private readonly inFlight = new Set<QueuedBatch>();
  private readonly ctx: PipelineContext;
  private readonly signal: Signal;
  private readonly partition: number;
  private readonly tenant: string;

  constructor(ctx: PipelineContext, signal: Signal, partition: number, tenant: string) {
    this.ctx = ctx;
    this.signal = signal;
    this.partition = partition;
    this.tenant = tenant;
  }

  get idle(): boolean {
    return this.pending.length === 0 && this.ready.length === 0 && this.inFlight.size === 0;
  }

  /**
   * When the oldest row not yet stored was queued (epoch ms), or undefined when nothing waits.
   * Every waiting batch is looked at, not the first only: one submitted again (a batch the
   * write-ahead log kept) joins the end of the line with the time its rows were first queued.
   */
  get oldestSinceMs(): number | undefined {
    let oldest = this.pending.length > 0 ? this.pendingSinceMs : undefined;
    for (const q of this.inFlight) if (oldest === undefined || q.sinceMs < oldest) oldest = q.sinceMs;
    for (const q of this.ready) if (oldest === undefined || q.sinceMs < oldest) oldest = q.sinceMs;
    return oldest;
  }

  /** Bytes of the rows queued here and not yet stored. */
  get bytes(): number {
    let bytes = this.pendingBytes;
    for (const q of this.ready) bytes += q.batch.bytes;
    for (const q of this.inFlight) bytes += q.batch.bytes;
    return bytes;
  }

  /** Rows queued here and not yet stored: pending, waiting for a write, or being written. */
  get rows(): number {
    let rows = this.pendingRows;
    for (const q of this.ready) rows += q.batch.rows;
    for (const q of this.inFlight) rows += q.batch.rows;
    return rows;
  }

  /** Queues a batch formed elsewhere (a write-ahead log replay) as it is, keeping its id; sinceMs: when its rows were queued. */
  submit(batch: WriteBatch, listener: Listener, sinceMs: number): void {
    this.ready.push({ batch, sinceMs, listeners: [listener] });
    this.pump();
  }

  add(chunk: EncodedChunk, listener?: Listener): void {
    if (this.pending.length === 0) this.pendingSinceMs = performance.now();
    if (listener) this.pendingListeners.push(listener);
    this.pending.push(chunk.data);
    this.pendingDays = withDays(this.pendingDays, chunk);
    this.pendingRows += chunk.rows;
    this.pendingBytes += chunk.data.byteLength;
    if (this.pendingRows >= this.ctx.opts.maxBatchRows) this.flush();
    else if (this.ctx.opts.groupCommit && this.inFlight.size === 0) this.flushAtTurnEnd();
    else this.timer ??= setTimeout(() => this.flush(), this.ctx.opts.flushIntervalMs);
  }

  /** Flushes once the requests decoded in this event-loop turn have added their rows. */
  private flushAtTurnEnd(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.inFlight.size === 0) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.ctx.opts.flushIntervalMs);
    });
  }

  /** Queues chunks as one batch of their own under a caller's id, beside the batching. */
  addBatch(chunks: readonly EncodedChunk[], batchId: string, listener: Listener): void {
    let rows = 0;
    let bytes = 0;
    let days: Set<number> | undefined = new Set();
    for (const c of chunks) {
      rows += c.rows;
      bytes += c.data.byteLength;
      days = withDays(days, c);
    }
    const batch: WriteBatch = { signal: this.signal, partition: this.partition, tenant: this.tenant, rows, bytes, chunks: chunks.map((c) => c.data), batchId, ...(days && { days: [...days] }) };
    this.ready.push({ batch, sinceMs: performance.now(), listeners: [listener] });
    this.pump();
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const batch: WriteBatch = {
      signal: this.signal,
      partition: this.partition,
      tenant: this.tenant,
      rows: this.pendingRows,
      bytes: this.pendingBytes,
      chunks: this.pending,
      batchId: randomUUID(),
      ...(this.pendingDays && { days: [...this.pendingDays] }),
    };
    this.ready.push({ batch, sinceMs: this.pendingSinceMs, listeners: this.pendingListeners, perChunk: this.pendingListeners.length === this.pending.length });
    this.pending = [];
    this.pendingDays = new Set();
    this.pendingListeners = [];
    this.pendingRows = 0;
    this.pendingBytes = 0;
    this.pump();
  }

  private pump(): void {
    while (this.inFlight.size < this.ctx.opts.maxInFlightBatches && this.ready.length > 0) {
      const q = this.ready.shift()!;
      this.inFlight.add(q);
      const shared = (): boolean => new Set(q.listeners).size > 1;
      void this.ctx.deliver(q.batch, shared, q.sinceMs).then((delivered) => {
        this.inFlight.delete(q);
        if (typeof delivered === 'object') {
          // Stored but for rows the store can never take (ack = stored): the requests holding
          // them are refused for good, the others were stored whole (refused, they would be sent
          // again and stored twice). A batch not formed here has one listener.
          // A chunk of which the store left out some rows only is told how many (partial success).
          q.listeners.forEach((l, i) => {
            const at = q.perChunk ? delivered.leftOut.indexOf(i) : 0;
            if (at < 0) l(true);
            else l('permanent_error', q.perChunk ? delivered.leftRows?.[at] : undefined);
          });
        } else {
          // Refused for good with several requests' rows: which request's rows the store refused is
          // unknown, so none is told they can never be stored; each one's resend is judged alone.
          const told: Delivered = delivered === 'permanent_error' && shared() ? 'retries_exhausted' : delivered;
          for (const l of q.listeners) l(told);
        }
        // Group commit: what arrived during the write goes out now, as one batch.
        if (this.ctx.opts.groupCommit && this.inFlight.size === 0 && this.ready.length === 0) this.flush();
        this.pump();
        this.ctx.settled();
      });
    }
  }
}

/** Batches encoded rows and writes them to the store; bounded by maxQueueBytes. */
export class Writer {
  private readonly opts: WriterOptions;
  private readonly store: StoreWriter;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  /** Aborted when shutdown gives up waiting: pending retries stop and count their rows as dropped. */
  private readonly abort = new AbortController();
  private readonly pipelines = new Map<string, Pipeline>();
  private readonly ctx: PipelineContext;
  /** Pipelines whose writes are failing, with when the failures began (readiness). */
  private readonly failing = new Map<string, number>();
  /**
   * Pipelines whose failure was logged (only those are logged as recovered). A failure is logged
   * at most once a minute, with the failed attempts since the last line: a store failing one write
   * now and then, each passing at its retry, would otherwise log two lines per failed write.
   */
  private readonly failureLogged = new Set<string>();
  /** Failed attempts (each counted in tracehouse_writer_failed_batches_total), logged at most once a minute. */
  private readonly failures = new RecurringLog();
  /** Batches of each pipeline between their first failed attempt and their end (stored or dropped). */
  private readonly retrying = new Map<string, number>();
  /**
   * Rows given up at shutdown (cut off at its timeout, or given up for another reason while it
   * drains: they were queued at the stop and are not stored): logged once, in total, when
   * shutdown ends, and its result (exit code 3).
   */
  private droppedAtShutdown = 0;
  /**
   * Batches given up after retries (retries_exhausted) since the first one of an outage, by
   * signal: the first is logged, the rest counted here and logged in total once writes of the
   * signal recover (or at shutdown). A store down for longer than writer.retryMaxElapsedMs (a
   * full disk) drops a batch every few requests: one error line each flooded the log.
   */
  private readonly droppedUnlogged = new Map<Signal, { rows: number; batches: number }>();
  /**
   * Rows dropped for good (refused by the store, whole batches or some of their rows; a writer
   * error), by signal and reason: logged at most once a minute, with the rows and batches since
   * the last line (droppedRowsSince). A store that refuses every batch (a constraint, a schema
   * mismatch) logged one line per batch. tracehouse_writer_dropped_rows_total counts each row.
   */
  private readonly droppedLogs = new RecurringLogs<string>();
  private readonly droppedRowsSince = new Map<string, number>();
  /** shutdown() has begun: rows dropped from now on were queued at the stop. */
  private stopping = false;
  /** Rows given up (at shutdown, or after retries with no one to write them again) that the write-ahead log keeps for the next start. */
  private keptInLog = 0;
  /** Takes batches given up after retries that the write-ahead log keeps, to write them again (onKept). */
  private keeper: ((batch: WriteBatch) => boolean) | undefined;
  /**
   * When the rows of each batch handed to the keeper were first queued, by batch id, until it is
   * submitted again (which queues it under that time) or forgotten (forgetKept): its rows are
   * still not stored, so tracehouse_queue_oldest_age_seconds goes on counting them.
   */
  private readonly keptSince = new Map<string, number>();
  /**
   * The pipeline (key) of each batch handed to the keeper and not yet submitted again or
   * forgotten: its failure has not ended (no write of it succeeded), so its pipeline stays failing
   * for readiness until one does, or until the batch is let go of (forgetKept).
   */
  private readonly keptFrom = new Map<string, string>();
  private queuedBytes = 0;
  /** When a write (of any pipeline) last stored a batch: a failure that began before it is one signal's or tenant's, not the store's (readiness). */
  private lastStoredMs = 0;
  /**
   * The queue's bytes (less the refused request's own) when a request last found no room in it,
   * until the queue holds less: readiness says full meanwhile (lacksRoom), as a queue stopped
   * short of maxQueueBytes by less than a request's charge refuses every request all the same.
   */
  private refusedAtBytes: number | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(store: StoreWriter, opts: WriterOptions, metrics: Metrics, logger: Logger) {
    this.store = store;
    this.opts = opts;
    this.metrics = metrics;
    this.logger = logger;
    this.ctx = { opts, deliver: (batch, shared, sinceMs) => this.deliver(batch, shared, sinceMs), settled: () => this.notifyIdle() };
    metrics.queueCapacity.set(opts.maxQueueBytes);
    metrics.queueSize.set(0);
    initWriterMetrics(metrics, store.name);
    metrics.queueAge.seconds = () => {
      const since = this.oldestSinceMs;
      return since === undefined ? 0 : (performance.now() - since) / 1000;
    };
  }

  /** Bytes accepted (or reserved by requests being decoded) and not yet written. */
  get queueBytes(): number {
    return this.queuedBytes;
  }

  /** Rows accepted and not yet stored (those of requests still being decoded are not rows yet; batches the keeper holds are in the log). */
  get queuedRows(): number {
    let rows = 0;
    for (const p of this.pipelines.values()) rows += p.rows;
    return rows;
  }

  get isFull(): boolean {
    return this.queuedBytes >= this.opts.maxQueueBytes;
  }

  /** Full, or a request found no room and nothing has been stored (or let go of) since: readiness. */
  get lacksRoom(): boolean {
    return this.isFull || this.refusedAtBytes !== undefined;
  }

  /**
   * Whether `signal`'s writes are failing and its queued rows take half of maxQueueBytes or more
   * while the collector takes the other signal too (it has a pipeline: rows of it were queued
   * since the start): its new requests are then refused (queue_full), so that the rows of a signal
   * the store cannot take (one table refusing writes) leave the other half of the queue to the
   * signal it takes, as the Go Collector's queue per pipeline does. A collector sent one signal
   * only keeps the whole queue for it through an outage. Rows accepted before a restart are not
   * refused.
   */
  failingShareFull(signal: Signal): boolean {
    let failing = false;
    for (const key of this.failing.keys()) if (key.startsWith(`${signal}/`)) failing = true;
    if (!failing) return false;
    let bytes = 0;
    let otherSignal = false;
    for (const [key, p] of this.pipelines) {
      if (key.startsWith(`${signal}/`)) bytes += p.bytes;
      else otherSignal = true;
    }
    return otherSignal && bytes >= this.opts.maxQueueBytes / 2;
  }

  /**
   * How long writes of some pipeline have been failing with no write of any pipeline stored since
   * (0: none failing). A pipeline failing while another's writes are stored (the store refusing
   * the logs table alone) is not counted: unready, every pod on that store would leave its
   * Service, and the signal it takes with it.
   */
  get writesFailingForMs(): number {
    let first: number | undefined;
    for (const t of this.failing.values()) if (t >= this.lastStoredMs && (first === undefined || t < first)) first = t;
    return first === undefined ? 0 : performance.now() - first;
  }

  /** When the oldest accepted row not yet stored was queued (performance.now(), which the wall clock stepping does not move), or undefined; batches the keeper holds count too. */
  private get oldestSinceMs(): number | undefined {
    let oldest: number | undefined;
    for (const t of this.keptSince.values()) if (oldest === undefined || t < oldest) oldest = t;
    for (const p of this.pipelines.values()) {
      const t = p.oldestSinceMs;
      if (t !== undefined && (oldest === undefined || t < oldest)) oldest = t;
    }
    return oldest;
  }

  /**
   * Takes room for a request of this many bytes before it is decoded; undefined when the queue
   * is full. A request larger than the whole budget is admitted into an empty queue, so it can
   * never be refused forever. Rows accepted before a restart (a write-ahead log replay) always
   * get theirs, as submit() does: they count against the budget, and new requests wait.
   */
  reserve(bytes: number, acceptedBefore = false): Reservation | undefined {
    if (!acceptedBefore && this.queuedBytes + bytes > this.opts.maxQueueBytes && this.queuedBytes > 0) {
      this.refusedAtBytes = this.queuedBytes;
      return undefined;
    }
    this.account(bytes);
    let held = bytes;
    let open = true;
    return {
      get bytes() {
        return held;
      },
      grow: (more) => {
        if (!open) return false;
        // Like reserve(): a request alone in the queue may grow past the budget, never starve.
        if (this.queuedBytes + more > this.opts.maxQueueBytes && this.queuedBytes > held) {
          this.refusedAtBytes = this.queuedBytes - held;
          return false;
        }
        held += more;
        this.account(more);
        return true;
      },
      commit: (signal, chunks, tenant, batchId) => {
        if (!open) throw new Error('reservation already committed or released');
        open = false;
        let encoded = 0;
        for (const c of chunks) encoded += c.data.byteLength;
        this.account(encoded - held);
        if (chunks.length === 0) return Promise.resolve({ delivered: true, refusedRows: 0, storedRows: 0 });
        return new Promise<Committed>((resolve) => {
          let outcome: Delivered = true;
          let refusedRows = 0;
          let storedRows = 0;
          let waiting = 0;
          // Told once per chunk (or per partition's batch), with its rows.
          const listener = (rows: number): Listener => (delivered, refused = rows) => {
            if (delivered === true) storedRows += rows;
            else if (delivered === 'permanent_error') {
              // Some of the chunk's rows refused, the others stored (a split for a proxy).
              const r = Math.min(refused, rows);
              refusedRows += r;
              storedRows += rows - r;
            }
            if (delivered !== true && outcome !== 'permanent_error') outcome = delivered;
            if (--waiting === 0) resolve({ delivered: outcome, refusedRows, storedRows });
          };
          if (batchId === undefined) {
            waiting = chunks.length;
            for (const c of chunks) this.pipeline(signal, c.partition, tenant).add(c, listener(c.rows));
            return;
          }
          const byPartition = new Map<number, EncodedChunk[]>();
          for (const c of chunks) byPartition.set(c.partition, [...(byPartition.get(c.partition) ?? []), c]);
          waiting = byPartition.size;
          for (const [partition, cs] of byPartition) this.pipeline(signal, partition, tenant).addBatch(cs, `${batchId}/${partition}`, listener(cs.reduce((n, c) => n + c.rows, 0)));
        });
      },
      release: () => {
        if (!open) return;
        open = false;
        this.account(-held);
      },
    };
  }

  /**
   * Queues a batch recorded before (a write-ahead log replay) as it is: same id, same chunks, so
   * a store that already holds it keeps one copy. Its bytes count against the budget but are
   * never refused: they were accepted before the restart. Resolves true once stored.
   */
  submit(batch: WriteBatch): Promise<boolean> {
    this.account(batch.bytes);
    // A batch given up on before keeps the time its rows were first queued.
    const sinceMs = this.keptSince.get(batch.batchId) ?? performance.now();
    this.keptSince.delete(batch.batchId);
    this.keptFrom.delete(batch.batchId);
    return new Promise<boolean>((resolve) => this.pipeline(batch.signal, batch.partition, batch.tenant).submit(batch, (delivered) => resolve(delivered === true), sinceMs));
  }

  /** A batch handed to the keeper ended without being submitted again (stored or refused by an earlier attempt after all). */
  forgetKept(batchId: string): void {
    this.keptSince.delete(batchId);
    const key = this.keptFrom.get(batchId);
    this.keptFrom.delete(batchId);
    if (key !== undefined && !this.retrying.has(key) && !this.holdsKept(key)) this.endFailure(key);
  }

  /** Whether a batch of pipeline `key` is with the keeper, waiting to be written again. */
  private holdsKept(key: string): boolean {
    for (const k of this.keptFrom.values()) if (k === key) return true;
    return false;
  }

  /** Rows given up so far that the write-ahead log keeps for the next start (keptByLog). */
  get keptRows(): number {
    return this.keptInLog;
  }

  /**
   * With keptByLog: hands each batch given up after retries (retryMaxElapsedMs) to `keep`, which
   * writes it again later from the log (DurableLog), instead of leaving it for the next start; a
   * batch it does not take (false: stopping) is counted as kept for the next start.
   */
  onKept(keep: (batch: WriteBatch) => boolean): void {
    this.keeper = keep;
  }

  private account(delta: number): void {
    this.queuedBytes += delta;
    // The queue held less than at the last refusal: room again, whatever it holds by the next look.
    if (this.refusedAtBytes !== undefined && this.queuedBytes < this.refusedAtBytes) this.refusedAtBytes = undefined;
    this.metrics.queueSize.set(this.queuedBytes);
  }

  private pipeline(signal: Signal, partition: number, tenant: string): Pipeline {
    // Tenants are bounded by the tokens file, so the number of pipelines is too.
    const key = pipelineKey({ signal, partition, tenant });
    let p = this.pipelines.get(key);
    if (!p) {
      p = new Pipeline(this.ctx, signal, partition, tenant);
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** Stores one batch with retries and a timeout per attempt, then gives its bytes back; true when stored, else why not. */
  private async deliver(batch: WriteBatch, shared: () => boolean, sinceMs: number): Promise<Delivered | LeftOutChunks> {
    const labels = { backend: this.store.name, signal: batch.signal };
    const key = pipelineKey(batch);
    const attempt = async () => {
      const t0 = performance.now();
      const result = await attemptWithTimeout(() => this.store.write(batch), this.opts.writeTimeoutMs, this.abort.signal);
      this.metrics.batchDuration.observe(labels, (performance.now() - t0) / 1000);
      return this.opts.deniedIsPermanent && result.kind === 'retryable' && result.denied ? { kind: 'permanent' as const, error: result.error } : result;
    };
    let failedOnce = false;
    try {
      const outcome = await retryWithBackoff(attempt, this.opts, this.abort.signal, (failed) => {
        this.metrics.failedBatches.inc({ ...labels, kind: failed.kind });
        // Refused for good: the batch's fault, not a store to wait for. Nothing is retried and
        // drop() logs it, once; the pipeline is not failing for readiness either.
        if (failed.kind === 'permanent') return;
        if (!failedOnce) {
          failedOnce = true;
          this.retrying.set(key, (this.retrying.get(key) ?? 0) + 1);
        }
        if (!this.failing.has(key)) this.failing.set(key, performance.now());
        this.failures.count();
        if (this.failureLogged.has(key)) return;
        const failedWrites = this.failures.take();
        if (failedWrites === undefined) return;
        this.failureLogged.add(key);
        this.logger.warn(
          { ...labels, partition: batch.partition, kind: failed.kind, err: failed.error.message, failedWrites },
          'storage write failed; retrying transient failures until they pass (logged at most once a minute, failedWrites: failed attempts since the last such line)',
        );
      });
      if (outcome.kind === 'dropped') {
        this.drop(batch, outcome.reason, outcome.error, shared, sinceMs);
        return outcome.reason;
      }
      this.lastStoredMs = performance.now();
      const left = outcome.dropped?.rows ?? 0;
      this.metrics.writtenRows.inc(labels, batch.rows - left);
      // With ack=stored such rows are not acknowledged: the requests holding them are refused as
      // not retryable (Pipeline.pump, from the chunks the store names), the others acknowledged.
      if (outcome.dropped) {
        // The store took the batch but for rows it can never take: lost, counted and logged here.
        this.metrics.droppedRows.inc({ ...labels, reason: 'permanent_error' }, left);
        const err = outcome.dropped.error.message;
        this.logDropped(`stored-part/${batch.signal}`, left, (rows, batches) =>
          this.logger.error(
            { ...labels, rows, batches, reason: 'permanent_error', err },
            'dropped rows of batches the store refused for good; the rest of those batches was stored (logged at most once a minute for each signal, rows and batches: since the last such line)',
          ),
        );
      }
      // Freed now, not at V8's next full collection, which every 64 MiB of them would start
      // (common/release.ts). Only when the first attempt stored them: one that timed out may
      // still be reading its chunks while a later one succeeds (as may a request the store was
      // answered before it had sent them all: chunksInUse).
      if (this.store.copiesChunks && outcome.attempts === 1 && !outcome.chunksInUse) for (const c of batch.chunks) if (soleUser(c)) releaseBuffer(c.buffer);
      const logged = this.failureLogged.delete(key);
      if (this.failing.delete(key) && logged) this.logger.info({ ...labels, partition: batch.partition, attempts: outcome.attempts }, 'storage writes recovered');
      this.logDroppedSince(batch.signal);
      return outcome.dropped && this.opts.refusedWhenGivenUp ? { leftOut: outcome.dropped.chunks, ...(outcome.dropped.chunkRows && { leftRows: outcome.dropped.chunkRows }) } : true;
    } catch (err) {
      this.drop(batch, 'writer_error', asError(err));
      return 'writer_error';
    } finally {
      this.account(-batch.bytes);
      if (failedOnce) this.doneRetrying(key);
      // A batch the write-ahead log handed back (its pipeline failing since) that ends at its first
      // attempt, refused for good: nothing of the pipeline is left to write, so the failure ends too.
      else if (this.failing.has(key) && !this.retrying.has(key) && !this.holdsKept(key)) this.endFailure(key);
    }
  }

  /**
   * A batch of pipeline `key` that had failed is stored or dropped. With none of its batches left
   * retrying, the pipeline is not failing any more: a batch dropped (bad data, retries exhausted)
   * of a pipeline that then sends nothing would otherwise keep the collector unready for good. An
   * unreachable store still shows in readiness, through its health check.
   */
  private doneRetrying(key: string): void {
    const left = this.retrying.get(key)! - 1;
    if (left > 0) return void this.retrying.set(key, left);
    this.retrying.delete(key);
    // A batch the write-ahead log took to write again later is still failing: not stored yet.
    if (!this.holdsKept(key)) this.endFailure(key);
  }

  /**
   * The pipeline's writes are no longer failing (readiness), without a success to log as recovered:
   * a logged failure stays logged, so the next success says "recovered" (a batch given up after
   * retries ends the failure for readiness while the store is still down).
   */
  private endFailure(key: string): void {
    this.failing.delete(key);
  }

  /** Counts and logs rows that will never be stored (at shutdown: logged once, in total, by shutdown()). */
  private drop(batch: WriteBatch, reason: (typeof DROP_REASONS)[number], error: Error, shared: () => boolean = () => false, sinceMs = performance.now()): void {
    if (this.opts.keptByLog && (reason === 'shutdown' || reason === 'retries_exhausted')) {
      // Not lost: the batch stays in the write-ahead log (WalRecorder marks only stored or
      // permanently failed batches), which writes it again under the same id: later while
      // running (onKept), else at the next start.
      if (reason === 'retries_exhausted') this.keptSince.set(batch.batchId, sinceMs);
      if (reason === 'retries_exhausted' && this.keeper?.(batch)) {
        this.keptFrom.set(batch.batchId, pipelineKey(batch));
        this.logger.error({ signal: batch.signal, partition: batch.partition, rows: batch.rows, err: error.message }, 'gave up writing a batch for now; its rows stay in the write-ahead log, which writes them again');
        return;
      }
      this.keptSince.delete(batch.batchId);
      this.keptInLog += batch.rows;
      if (reason !== 'shutdown') this.logger.error({ signal: batch.signal, partition: batch.partition, rows: batch.rows, err: error.message }, 'gave up writing a batch for now; its rows stay in the write-ahead log and are written at the next start');
      return;
    }
    if (this.opts.refusedWhenGivenUp && (reason !== 'permanent_error' || shared())) {
      // Not acknowledged, not lost: ingest refuses the requests as retryable (counted there). Rows
      // the store refused for good are refused as not retryable, so the client lets them go:
      // those are lost, and counted below; unless the batch held several requests' rows, which
      // are all refused as retryable (Pipeline.pump).
      this.logger.warn({ signal: batch.signal, partition: batch.partition, rows: batch.rows, reason, err: error.message }, 'gave up writing a batch; its requests are refused as retryable');
      return;
    }
    this.metrics.droppedRows.inc({ backend: this.store.name, signal: batch.signal, reason }, batch.rows);
    // With refusedWhenGivenUp the rows' requests were refused, not acknowledged: not the stop's to count.
    if (reason === 'shutdown' || (this.stopping && !this.opts.refusedWhenGivenUp)) this.droppedAtShutdown += batch.rows;
    if (reason === 'shutdown') return;
    if (reason === 'retries_exhausted') {
      const unlogged = this.droppedUnlogged.get(batch.signal);
      if (unlogged) {
        unlogged.rows += batch.rows;
        unlogged.batches++;
        return;
      }
      this.droppedUnlogged.set(batch.signal, { rows: 0, batches: 0 });
      this.logger.error({ signal: batch.signal, partition: batch.partition, rows: batch.rows, reason, err: error.message }, 'dropped a batch of accepted rows');
      return;
    }
    const signal = batch.signal;
    this.logDropped(`${signal}/${reason}`, batch.rows, (rows, batches) =>
      this.logger.error({ signal, rows, batches, reason, err: error.message }, 'dropped batches of accepted rows (logged at most once a minute for each signal and reason, rows and batches: since the last such line)'),
    );
  }

  /** Counts `rows` dropped under `key` and logs them with the others since its last line, once a minute (droppedLogs); flushRecurringLogs writes the rest at a stop. */
  private logDropped(key: string, rows: number, line: (rows: number, batches: number) => void): void {
    this.droppedRowsSince.set(key, (this.droppedRowsSince.get(key) ?? 0) + rows);
    this.droppedLogs.log(key, (batches) => {
      const since = this.droppedRowsSince.get(key) ?? 0;
      this.droppedRowsSince.delete(key);
      line(since, batches);
    });
  }

  /** Logs, in total, the batches of `signal` given up after retries since the first one was logged (droppedUnlogged). */
  private logDroppedSince(signal: Signal): void {
    const unlogged = this.droppedUnlogged.get(signal);
    if (!unlogged) return;
    this.droppedUnlogged.delete(signal);
    if (unlogged.batches > 0) this.logger.error({ signal, rows: unlogged.rows, batches: unlogged.batches, reason: 'retries_exhausted' }, 'dropped more accepted rows after the first, while storage writes failed');
  }

  private notifyIdle(): void {
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

  /**
   * The stop has begun (the receivers are finishing their requests before shutdown() drains):
   * rows dropped from now on were queued at the stop, and count in shutdown()'s result.
   */
  stopBegun(): void {
    this.stopping = true;
  }

  /**
   * Flushes and waits for the queue to drain, up to timeoutMs; then stops retries, their rows
   * counted as dropped. Resolves to the number of accepted rows dropped meanwhile: those and any
   * given up while it drained (retries exhausted, refused for good), all queued at the stop.
   */
  async shutdown(timeoutMs = 30_000): Promise<number> {
    this.stopBegun();
    const timer = setTimeout(() => this.abort.abort(), timeoutMs);
    try {
      await this.drain();
    } finally {
      clearTimeout(timer);
    }
    for (const signal of [...this.droppedUnlogged.keys()]) this.logDroppedSince(signal);
    if (this.keptInLog > 0) {
      this.logger.warn({ rows: this.keptInLog, timeoutMs }, `${this.keptInLog} accepted rows could not be stored; they are kept in the write-ahead log and written at the next start`);
    }
    if (this.droppedAtShutdown > 0) {
      this.logger.error({ rows: this.droppedAtShutdown, timeoutMs }, `shutdown gave up on ${this.droppedAtShutdown} accepted rows that could not be stored in time`);
    }
    return this.droppedAtShutdown;
  }
}
