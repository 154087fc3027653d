// The decode worker pool: raw request bytes go to piscina workers as transferred ArrayBuffers;
// encoded row chunks come back the same way. The main thread never parses OTLP.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { Config } from '../config/index.ts';
import type { EncodedChunk, EncoderSpec } from '../storage/backend.ts';

export type OtlpSignal = 'traces' | 'logs';
export type OtlpFormat = 'protobuf' | 'json';

export interface DecodeTask {
  signal: OtlpSignal;
  format: OtlpFormat;
  body: ArrayBuffer;
}

export type DecodeOutput =
  | { kind: 'ok'; accepted: number; rejected: number; errorMessage: string; chunks: EncodedChunk[]; seconds: number }
  | { kind: 'invalid'; message: string; seconds: number };

/** Thrown by decode() when every worker is busy and the pending-task bound is reached. */
export class PoolBusyError extends Error {
  override readonly name = 'PoolBusyError';
}

/** A bounded pool of decode workers. */
export class DecodePool {
  private pool: Piscina | undefined;
  private readonly threads: number;
  private readonly maxQueue: number;
  private readonly workerData: unknown;

  constructor(config: Config, encoder: EncoderSpec) {
    this.threads = config['workers.threads'] || availableParallelism();
    this.maxQueue = config['workers.maxPendingTasks'];
    this.workerData = { encoder, limits: { maxNestingDepth: config['receiver.maxNestingDepth'] } };
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

  /** Decodes one request. The body is copied into an ArrayBuffer of its own and transferred. */
  async decode(signal: OtlpSignal, format: OtlpFormat, body: Uint8Array): Promise<DecodeOutput> {
    const pool = this.pool;
    if (!pool) throw new Error('decode pool is not started');
    if (pool.queueSize >= this.maxQueue) throw new PoolBusyError('every decode worker is busy');
    const own = new Uint8Array(body.byteLength);
    own.set(body);
    const task: DecodeTask = { signal, format, body: own.buffer };
    return (await pool.run(task, { transferList: [own.buffer] })) as DecodeOutput;
  }

  async shutdown(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }
}
