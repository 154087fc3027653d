// The decode worker pool: raw request bytes go to piscina workers as transferred ArrayBuffers;
// encoded row chunks come back the same way. The main thread never parses OTLP.
//
// Requests are handed over in batches, one task per worker at a time: a free worker gets what
// waits at the end of the event-loop turn (setImmediate), and while every worker is busy requests
// wait here, for the next worker to finish to take them all in one task (at most
// DISPATCH_MAX_REQUESTS or DISPATCH_MAX_BYTES). No request waits longer than it would have in
// piscina's queue, and the busier the collector, the more requests share a task. A piscina task
// costs the main thread ~40 µs and the worker more (a postMessage each way, a futex wake; the
// pool alone, bench/dispatch.ts: 65 against 36 µs of main-thread CPU per 100-span request, 3.45
// against 2.9 µs of process CPU per span).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { giveBuffer, wholeBuffer } from '../common/release.ts';
import type { Signal } from '../model/signal.ts';
import type { EncodedChunk } from '../storage/backend.ts';
import type { EncoderSpec } from '../storage/encoders.ts';
import { Outage, type Logger } from '../telemetry/logger.ts';
import type { DecodeLimits } from './decode/index.ts';

export type OtlpFormat = 'protobuf' | 'json';

/**
 * The V8 old generation of this process's threads (the main thread's and each decode worker's: V8's
 * flags are the process's), measured in a short-lived worker. A thread's heap limit counts its young
 * generation too (192 of 288 MiB under --max-old-space-size=96 on Node 24), whose size only a worker
 * is told (resourceLimits).
 */
export function oldSpaceOfThreads(): Promise<number> {
  measuredOldSpace ??= probeOldSpace().catch((err: unknown) => {
    measuredOldSpace = undefined;
    throw err;
  });
  return measuredOldSpace;
}

/** How long after a worker failed to start the pool is started again (DecodePool.workerFailed). */
const WORKER_RESTART_MS = 1_000;

/** The measurement, made once per process (V8's flags do not change). */
let measuredOldSpace: Promise<number> | undefined;

async function probeOldSpace(): Promise<number> {
  const worker = new Worker(new URL('./heap-probe.ts', import.meta.url));
  try {
    return await new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  } finally {
    await worker.terminate();
  }
}

export interface DecodeTask {
  signal: Signal;
  format: OtlpFormat;
  /** The request is bytes [bodyOffset, bodyOffset + bodyLength) of this buffer. */
  body: ArrayBuffer;
  bodyOffset: number;
  bodyLength: number;
}

/** What one piscina task carries: the requests of one dispatch for one worker. */
export interface DecodeBatch {
  tasks: DecodeTask[];
}

/** Requests one task carries at most. */
const DISPATCH_MAX_REQUESTS = 32;
/**
 * Request bytes one task carries at most (a larger request goes alone). A task's requests are in
 * the worker together and their outputs held until the last is done, so this bounds what batching
 * adds to a worker's memory; past ~1 MiB the round trip saved is a small share of the decoding.
 */
const DISPATCH_MAX_BYTES = 2 ** 20;

/** A request waiting for a free worker, and its caller. */
interface Waiting {
  task: DecodeTask;
  resolve: (out: DecodeOutput) => void;
  reject: (err: unknown) => void;
}

/** Bytes of a buffer outside the body that still let it move whole: a gRPC message's 5-byte frame header, never a pooled slab's neighbours (pooled Buffers are under 4 KiB of an 8 KiB slab). */
const MOVABLE_SLACK_BYTES = 64;

/** A worker's V8 heap size after a task. */
export interface WorkerHeap {
  threadId: number;
  bytes: number;
}

export type DecodeOutput =
  | { kind: 'ok'; accepted: number; rejected: number; errorMessage: string; chunks: EncodedChunk[]; seconds: number; heap: WorkerHeap }
  | { kind: 'invalid'; message: string; seconds: number; heap: WorkerHeap }
  /** Its store bytes would pass their bound (OutputTooLargeError): refused as too large. */
  | { kind: 'too_large'; message: string; seconds: number; heap: WorkerHeap };

/** What a worker answers for one request of a batch: its output, or the error that request alone met (a bug, not the client's). */
export type TaskOutput = DecodeOutput | { kind: 'failed'; message: string };

/**
 * Every chunk a worker returns is the only user of its buffer (the worker copies any that is not,
 * worker.ts). One handed over with its unused tail (ByteOut.take) is marked again on this thread,
 * where the store that frees buffers (the memory store) looks for the mark: marks stay with the
 * thread that made them.
 */
function ownedHere(c: EncodedChunk): void {
  if (!wholeBuffer(c.data)) giveBuffer(c.data);
}

/** Thrown by decode() when every worker is busy and the pending-task bound is reached. */
export class PoolBusyError extends Error {
  override readonly name = 'PoolBusyError';
}

/** The decode pool's settings. */
export interface PoolOptions {
  /** Worker threads (0: one per core). */
  threads: number;
  /** Requests waiting for a worker before decode() refuses with PoolBusyError. */
  maxPendingTasks: number;
  maxNestingDepth: number;
  /** The writer's queue budget: a request's store bytes past it (and past 64 times its size) are refused (DecodeLimits). */
  maxStoreBytes?: number;
}

/** What each worker is started with. */
export interface WorkerSetup {
  encoder: EncoderSpec;
  limits: DecodeLimits;
}

/** A bounded pool of decode workers. */
export class DecodePool {
  private pool: Piscina | undefined;
  private readonly threads: number;
  private readonly maxQueue: number;
  private readonly workerData: WorkerSetup;
  /** Requests given to decode() and not answered yet: queued here, queued in piscina, or decoding. */
  private inFlight = 0;
  private waiting: Waiting[] = [];
  private dispatchScheduled = false;
  /** Tasks sent to piscina and not finished: at most one per worker. */
  private running = 0;
  /** Tasks handed to the workers so far: against the requests decoded, what batching saves. */
  tasks = 0;
  private readonly logger: Logger | undefined;
  /** A new pool is due (a worker could not start, workerFailed). */
  private restartTimer: NodeJS.Timeout | undefined;
  /** Workers failed (or could not start) since the pool last decoded something: the first is logged, and the count once it decodes. */
  private readonly startFailures = new Outage();

  constructor(options: PoolOptions, encoder: EncoderSpec, logger?: Logger) {
    this.logger = logger;
    this.threads = options.threads || availableParallelism();
    this.maxQueue = options.maxPendingTasks;
    this.workerData = { encoder, limits: { maxNestingDepth: options.maxNestingDepth, ...(options.maxStoreBytes === undefined ? {} : { maxStoreBytes: options.maxStoreBytes }) } };
  }

  /** The thread ids of the workers running now (piscina replaces one that dies with a new thread). */
  liveThreadIds(): Set<number> {
    return new Set(this.pool?.threads.map((w) => w.threadId) ?? []);
  }

  /** The store format the workers write. */
  get encoder(): EncoderSpec {
    return this.workerData.encoder;
  }

  async start(): Promise<void> {
    this.pool ??= this.createPool();
  }

  private createPool(): Piscina {
    const pool = new Piscina({
      filename: new URL('./worker.ts', import.meta.url).href,
      minThreads: this.threads,
      maxThreads: this.threads,
      maxQueue: this.maxQueue,
      idleTimeout: 60_000,
      workerData: this.workerData,
      recordTiming: false,
    });
    pool.on('error', (err: unknown) => this.workerFailed(pool, err));
    return pool;
  }

  /**
   * Piscina's 'error': mostly a worker that could not start (the process at its open-files or
   * thread limit: "Worker initialization failure: EMFILE"). Unheard, it ended the process. Piscina
   * then starts no other worker, and the tasks queued for one wait for ever (and, those holding
   * every dispatch slot, so does every later request): after a pause, a pool that is still short
   * of workers is replaced by a new one, its queued tasks refused as retryable.
   */
  private workerFailed(pool: Piscina, err: unknown): void {
    if (pool !== this.pool) return;
    if (this.startFailures.failed()) this.logger?.error({ err: err instanceof Error ? err.message : String(err), threads: this.threads }, 'a decode worker failed or could not start; starting the decode workers again every second until they run');
    this.restartTimer ??= setTimeout(() => {
      this.restartTimer = undefined;
      if (this.pool !== pool || pool.threads.length >= this.threads) return;
      this.pool = this.createPool();
      void pool.destroy().catch(() => undefined);
    }, WORKER_RESTART_MS).unref();
  }

  /**
   * Decodes one request on a worker. The bytes are transferred, never cloned: an owned body that
   * fills its ArrayBuffer (but for a few bytes, such as the gRPC frame header grpc-js assembles a
   * message with) moves as it is; anything else (a slice of a pooled or larger buffer) is copied
   * into an ArrayBuffer of its own first.
   */
  async decode(signal: Signal, format: OtlpFormat, body: Uint8Array, owned = false): Promise<DecodeOutput> {
    const pool = this.pool;
    if (!pool) throw new Error('decode pool is not started');
    // Requests held: maxPendingTasks waiting besides one decoding per worker (the bound of one request per task).
    if (this.inFlight >= this.maxQueue + this.threads) throw new PoolBusyError('every decode worker is busy');
    const movable = owned && body.buffer instanceof ArrayBuffer && body.buffer.byteLength - body.byteLength <= MOVABLE_SLACK_BYTES;
    const buffer = movable ? (body.buffer as ArrayBuffer) : new Uint8Array(body).buffer;
    const task: DecodeTask = { signal, format, body: buffer, bodyOffset: movable ? body.byteOffset : 0, bodyLength: body.byteLength };
    this.inFlight++;
    try {
      return await new Promise<DecodeOutput>((resolve, reject) => {
        this.waiting.push({ task, resolve, reject });
        if (!this.dispatchScheduled) {
          this.dispatchScheduled = true;
          setImmediate(() => {
            this.dispatchScheduled = false;
            this.dispatch();
          });
        }
      });
    } finally {
      this.inFlight--;
    }
  }

  /** Sends waiting requests to the free workers, one task each, split in arrival order by bytes. */
  private dispatch(): void {
    const free = this.threads - this.running;
    if (this.waiting.length === 0 || free <= 0) return;
    const pool = this.pool;
    const parts = Math.min(free, this.waiting.length);
    let share = 0;
    for (let i = 0; i < this.waiting.length && i < DISPATCH_MAX_REQUESTS * parts; i++) share += this.waiting[i]!.task.bodyLength;
    share = Math.min(DISPATCH_MAX_BYTES, share / parts);
    for (let p = 0; p < parts && this.waiting.length > 0; p++) {
      let n = 0;
      let bytes = 0;
      for (; n < this.waiting.length && n < DISPATCH_MAX_REQUESTS; n++) {
        const len = this.waiting[n]!.task.bodyLength;
        if (n > 0 && (bytes >= share || bytes + len > DISPATCH_MAX_BYTES)) break;
        bytes += len;
      }
      this.send(pool, this.waiting.splice(0, n));
    }
  }

  private send(pool: Piscina | undefined, batch: Waiting[]): void {
    if (!pool) {
      for (const w of batch) w.reject(new Error('decode pool is shut down'));
      return;
    }
    const tasks = batch.map((w) => w.task);
    this.running++;
    this.tasks++;
    pool
      .run({ tasks } satisfies DecodeBatch, { transferList: tasks.map((t) => t.body) })
      .then(
        (outs: TaskOutput[]) => {
          const failures = this.startFailures.ended();
          if (failures > 0) this.logger?.info({ failures }, 'decode workers running again');
          batch.forEach((w, i) => {
            const out = outs[i]!;
            if (out.kind === 'failed') return w.reject(new Error(out.message));
            if (out.kind === 'ok') out.chunks.forEach(ownedHere);
            w.resolve(out);
          });
        },
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        this.running--;
        this.dispatch();
      });
  }

  async shutdown(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    // Requests still waiting for a worker are answered (refused), not left hanging.
    for (const w of this.waiting.splice(0)) w.reject(new Error('decode pool is shut down'));
    await pool?.close();
  }
}
