// The decode worker pool: raw request bytes go to piscina workers as transferred ArrayBuffers;
// encoded row chunks come back the same way. The main thread never parses OTLP.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { Signal } from '../model/signal.ts';
import type { EncodedChunk } from '../storage/backend.ts';
import type { EncoderSpec } from '../storage/encoders.ts';
import type { DecodeLimits } from './decode/index.ts';

export type OtlpFormat = 'protobuf' | 'json';

export interface DecodeTask {
  signal: Signal;
  format: OtlpFormat;
  /** The request is bytes [bodyOffset, bodyOffset + bodyLength) of this buffer. */
  body: ArrayBuffer;
  bodyOffset: number;
  bodyLength: number;
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
  | { kind: 'invalid'; message: string; seconds: number; heap: WorkerHeap };

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

  constructor(options: PoolOptions, encoder: EncoderSpec) {
    this.threads = options.threads || availableParallelism();
    this.maxQueue = options.maxPendingTasks;
    this.workerData = { encoder, limits: { maxNestingDepth: options.maxNestingDepth } };
  }

  async start(): Promise<void> {
    this.pool ??= new Piscina({
      filename: new URL('./worker.ts', import.meta.url).href,
      minThreads: this.threads,
      maxThreads: this.threads,
      maxQueue: this.maxQueue,
      idleTimeout: 60_000,
      workerData: this.workerData,
      recordTiming: false,
    });
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
    if (pool.queueSize >= this.maxQueue) throw new PoolBusyError('every decode worker is busy');
    const movable = owned && body.buffer instanceof ArrayBuffer && body.buffer.byteLength - body.byteLength <= MOVABLE_SLACK_BYTES;
    const buffer = movable ? (body.buffer as ArrayBuffer) : new Uint8Array(body).buffer;
    const task: DecodeTask = { signal, format, body: buffer, bodyOffset: movable ? body.byteOffset : 0, bodyLength: body.byteLength };
    return (await pool.run(task, { transferList: [buffer] })) as DecodeOutput;
  }

  async shutdown(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }
}
