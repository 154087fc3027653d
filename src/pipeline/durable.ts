// delivery.ack = durable: the write-ahead log between decode and acknowledgement, wired to the
// writer. Start-up opens the log and replays what it holds into the writer; ingest appends each
// decoded request (fsynced, group commit) before it is acknowledged; shutdown closes the log
// after the writer, so its last stored marks reach the disk and whatever the writer could not
// store stays for the next start.
//
// Policy for batches the writer gives up on while running (retries exhausted after
// writer.retryMaxElapsedMs): they are kept in the log, not abandoned. A user who asked for
// `durable` asked not to lose acknowledged rows; keeping them costs log space (a long outage
// fills the log and ingest answers 503 until the store is back and the collector restarts) but
// never data. The writer counts them as kept, not dropped (Writer keptByLog).
import type { EncodedChunk, StoreWriter } from '../storage/backend.ts';
import type { Signal } from '../model/signal.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { WalRecorder } from './wal-backend.ts';
import { WalFullError, WriteAheadLog, type WalReplay } from './wal/index.ts';
import type { Writer } from './writer.ts';

export interface DurableLogOptions {
  dir: string;
  maxBytes: number;
  segmentBytes: number;
}

/** Why an append was refused: the log is full (wait for the store) or the disk failed. */
export type AppendRefusal = 'wal_full' | 'wal_unavailable';

/** The write-ahead log as the collector uses it: replay at start, append before acknowledging. */
export class DurableLog {
  private readonly wal: WriteAheadLog;
  private readonly recorder: WalRecorder;
  private readonly logger: Logger;
  private readonly dir: string;
  private replay: WalReplay | undefined;
  private replaying: Promise<void> | undefined;
  private stopped = false;
  private loggedFailure = 0;

  constructor(opts: DurableLogOptions, metrics: Metrics, logger: Logger) {
    this.logger = logger;
    this.dir = opts.dir;
    this.wal = new WriteAheadLog({
      ...opts,
      logger,
      onCorruption: (c) => metrics.walCorruptBytes.inc({ kind: c.kind }, c.bytes),
    });
    this.recorder = new WalRecorder(this.wal);
    metrics.walState.read = () => ({ bytes: this.wal.bytes, pendingEntries: this.wal.pendingEntries, fsyncs: this.wal.stats.fsyncs });
  }

  /** The store's writes, recorded in the log: give this to the writer instead of the store. */
  wrap(store: StoreWriter): StoreWriter {
    return this.recorder.wrap(store);
  }

  /** Opens the log (cutting a torn tail) and keeps what must be replayed for feed(). */
  async start(): Promise<void> {
    try {
      this.replay = await this.wal.start();
    } catch (err) {
      // Say which setting points at the unusable directory.
      throw new Error(`delivery.walDir = ${JSON.stringify(this.dir)}: cannot open the write-ahead log: ${(err as Error).message}`, { cause: err });
    }
    this.recorder.adopt(this.replay);
    const { batches, chunks } = this.replay;
    if (batches.length + chunks.length > 0) {
      const rows = batches.reduce((n, b) => n + b.batch.rows, 0) + chunks.reduce((n, c) => n + c.rows, 0);
      this.logger.info({ batches: batches.length, chunks: chunks.length, rows }, 'write-ahead log: replaying rows accepted before the last stop');
    }
  }

  /**
   * Hands the replay to the writer without blocking start-up (a store that is down would hold
   * the receivers closed): recorded batches as they are, loose chunks in slices of half the
   * queue budget, one at a time: the next once the last is stored (or given up on), never once
   * the writer is idle, which a steady load never lets it be. Each slice takes its room whether
   * or not new requests left any: its rows were accepted before the restart, and new requests
   * wait instead.
   */
  feed(writer: Writer, maxQueueBytes: number): void {
    const replay = this.replay;
    this.replay = undefined;
    if (!replay) return;
    for (const b of replay.batches) void writer.submit(b.batch);
    const slice = Math.max(1, Math.floor(maxQueueBytes / 2));
    this.replaying = (async () => {
      const groups = new Map<string, { signal: Signal; tenant: string; chunks: EncodedChunk[] }>();
      for (const c of replay.chunks) {
        const k = `${c.signal}/${c.tenant}`;
        let g = groups.get(k);
        if (!g) groups.set(k, (g = { signal: c.signal, tenant: c.tenant, chunks: [] }));
        g.chunks.push(c);
      }
      for (const { signal, tenant, chunks } of groups.values()) {
        let i = 0;
        while (i < chunks.length && !this.stopped) {
          let bytes = 0;
          const part: EncodedChunk[] = [];
          while (i < chunks.length && (part.length === 0 || bytes + chunks[i]!.data.byteLength <= slice)) {
            bytes += chunks[i]!.data.byteLength;
            part.push(chunks[i++]!);
          }
          await writer.reserve(bytes, true)!.commit(signal, part, tenant);
        }
      }
    })();
  }

  /** Appends a decoded request's chunks (fsynced) and tells the recorder where they are; resolves to a refusal reason instead of throwing. */
  async append(signal: Signal, chunks: readonly EncodedChunk[], tenant: string): Promise<AppendRefusal | undefined> {
    try {
      const seq = await this.wal.append(signal, chunks, tenant);
      this.recorder.track(seq, chunks);
      return undefined;
    } catch (err) {
      if (err instanceof WalFullError) return 'wal_full';
      const now = Date.now();
      if (now - this.loggedFailure > 60_000) {
        this.loggedFailure = now;
        this.logger.error({ err: (err as Error).message }, 'write-ahead log append failed; refusing requests as retryable');
      }
      return 'wal_unavailable';
    }
  }

  /** Stops feeding the replay; call before the writer shuts down. */
  stopFeeding(): void {
    this.stopped = true;
  }

  /** Waits for the replay feed to end, then writes the last marks and closes the log. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    await this.replaying;
    await this.wal.shutdown();
  }
}
