// delivery.ack = durable: the write-ahead log between decode and acknowledgement, wired to the
// writer. Start-up opens the log and replays what it holds into the writer; ingest appends each
// decoded request (fsynced, group commit) before it is acknowledged; shutdown closes the log
// after the writer, so its last stored marks reach the disk and whatever the writer could not
// store stays for the next start.
//
// Policy for batches the writer gives up on while running (retries exhausted after
// writer.retryMaxElapsedMs): they are kept in the log, not abandoned, and written again. A user
// who asked for `durable` asked not to lose acknowledged rows; keeping them costs log space (a
// long outage fills the log and ingest answers 503) but never data. The writer counts them as
// kept, not dropped (Writer keptByLog), and hands them here (Writer.onKept): after KEPT_RETRY_MS
// their chunks are read back from the log and submitted again under their own ids, a slice of
// the queue budget at a time, until stored. Before, they waited for the next start, and as the
// log deletes segments only from its oldest, a batch given up in a short outage kept every later
// segment: the log filled while the store took every write, and ingest refused until a restart.
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../config/index.ts';
import type { EncodedChunk, StoreWriter, WriteBatch } from '../storage/backend.ts';
import type { EncoderSpec } from '../storage/encoders.ts';
import type { Signal } from '../model/signal.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { WalRecorder } from './wal-backend.ts';
import { bytesOf } from './wal/records.ts';
import { SEGMENT_NAME, WalEntryTooLargeError, WalFullError, WriteAheadLog, type PlannedChunk, type ReplayPlan, type WalChunkRef, type WalCorruption } from './wal/index.ts';
import type { AppendRefusal } from './ingest.ts';
import type { Writer } from './writer.ts';

export interface DurableLogOptions {
  dir: string;
  maxBytes: number;
  segmentBytes: number;
  /** Refuse a second process on the same directory (WalOptions.exclusive). */
  exclusive?: boolean;
  /**
   * How the store encodes rows: the log holds chunks in it, which another store cannot take.
   * Written beside the segments (ENCODING_NAME); a start whose store encodes otherwise while the
   * log holds rows stops (DurableLog.start).
   */
  encoder?: EncoderSpec;
}

/** The file in the log's directory naming the encoding of the rows in it: {"store", "encoder"}. */
const ENCODING_NAME = 'encoding.json';

/** How long a batch the writer gave up on waits before it is written again (its retries took retryMaxElapsedMs already). */
const KEPT_RETRY_MS = 5000;

/** A batch the writer gave up on, to be written again (DurableLog.keep). */
interface KeptBatch {
  batch: WriteBatch;
  /** Where its chunks are in the log; absent for chunks the log does not hold, kept in the batch. */
  refs?: WalChunkRef[];
  /** Its own record was written: once the recorder no longer knows it, it was stored. */
  recorded: boolean;
}

/** Items from `from` on whose sizes add up to at most `max` (at least one): a slice of a replay. */
function sliceOf<T>(items: readonly T[], from: number, max: number, size: (item: T) => number): T[] {
  let bytes = 0;
  let to = from;
  while (to < items.length && (to === from || bytes + size(items[to]!) <= max)) bytes += size(items[to++]!);
  return items.slice(from, to);
}

/** The rows a replay plan holds: its batches' and its loose chunks'. */
function planRows(plan: ReplayPlan): number {
  return plan.batches.reduce((n, b) => n + b.batch.rows, 0) + plan.chunks.reduce((n, c) => n + c.rows, 0);
}

/** Counts damaged records a log's opening cut (tracehouse_wal_corrupt_bytes_total), for every opening of a log. */
function countCorruption(metrics: Metrics): (c: WalCorruption) => void {
  return (c) => metrics.walCorruptBytes.inc({ kind: c.kind }, c.bytes);
}

/**
 * Accepted rows a write-ahead log in dir still holds, for a start with delivery.ack = queued or
 * stored: that start neither opens the log nor replays it, so rows a durable run left there (a
 * crash, a stop during an outage) would wait unwritten without a word. 0 when dir holds no
 * segment, or when another process has the log open (its log, not this start's to read).
 */
export async function rowsLeftInLog(dir: string, logger: Logger, metrics: Metrics): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  if (!names.some((n) => SEGMENT_NAME.test(n))) return 0;
  // Bounds only matter for appends, which this never makes.
  // Damaged records found here are counted as a durable start counts them (the rows in them are
  // lost, and the segments holding them may go now): tracehouse_wal_corrupt_bytes_total.
  const wal = new WriteAheadLog({ dir, exclusive: true, maxBytes: 2 ** 40, segmentBytes: 64 << 20, logger, onCorruption: countCorruption(metrics) });
  try {
    return planRows(await wal.open());
  } catch {
    return 0;
  } finally {
    await wal.shutdown().catch(() => undefined);
  }
}

/** The write-ahead log as the collector uses it: replay at start, append before acknowledging. */
export class DurableLog {
  private readonly wal: WriteAheadLog;
  private readonly recorder: WalRecorder;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  /** The store's name (the dropped_rows backend label), known once wrap() is given it. */
  private storeName = '';
  private readonly dir: string;
  private readonly opts: DurableLogOptions;
  private replay: ReplayPlan | undefined;
  private replaying: Promise<void> | undefined;
  /** Rows of the start-up replay not yet handed to the writer (at a stop, kept for the next start). */
  private unfed = 0;
  private stopped = false;
  private loggedFailure = 0;
  /** Batches the writer gave up on while running, oldest first: without their chunks, which the log has (refs), unless they are not in it. */
  private kept: KeptBatch[] = [];
  private rewriting: Promise<void> | undefined;
  /** Ends the wait before a rewrite when the collector stops. */
  private readonly stopping = new AbortController();
  /** Why the last append was refused (and the log's size then), until an append succeeds or the log shrinks. */
  private refused: { reason: AppendRefusal; bytes: number } | undefined;

  constructor(opts: DurableLogOptions, metrics: Metrics, logger: Logger) {
    this.logger = logger;
    this.metrics = metrics;
    this.dir = opts.dir;
    this.opts = opts;
    this.wal = new WriteAheadLog({
      ...opts,
      logger,
      onCorruption: countCorruption(metrics),
    });
    this.recorder = new WalRecorder(this.wal);
    metrics.walState.read = () => ({ bytes: this.wal.bytes, maxBytes: opts.maxBytes, pendingEntries: this.wal.pendingEntries, fsyncs: this.wal.stats.fsyncs });
  }

  /** The store's writes, recorded in the log: give this to the writer instead of the store. */
  wrap(store: StoreWriter): StoreWriter {
    this.storeName = store.name;
    return this.recorder.wrap(store);
  }

  /** Opens the log (cutting a torn tail) and keeps what must be replayed for feed(). */
  async start(): Promise<void> {
    try {
      this.replay = await this.wal.open();
    } catch (err) {
      // A file where the directory (or one above it) should be is a setting to correct, as a
      // storage.sqlite.path under a file is (exit 2), and said so: the system's words for it were
      // "EEXIST: file already exists, mkdir …", start-up failed, exit 1.
      const code = (err as { code?: unknown }).code;
      if (code === 'EEXIST' || code === 'ENOTDIR') {
        throw new ConfigError(`invalid configuration: delivery.walDir = ${JSON.stringify(this.dir)}: cannot open the write-ahead log: it or a directory above it is a file, not a directory (${(err as Error).message})`, { cause: err });
      }
      // Say which setting points at the unusable directory.
      throw new Error(`delivery.walDir = ${JSON.stringify(this.dir)}: cannot open the write-ahead log: ${(err as Error).message}`, { cause: err });
    }
    const { batches, chunks } = this.replay;
    const rows = planRows(this.replay);
    await this.checkEncoding(rows);
    this.recorder.adopt(this.replay);
    if (batches.length + chunks.length > 0) {
      this.logger.info({ batches: batches.length, chunks: chunks.length, rows }, 'write-ahead log: replaying rows accepted before the last stop');
    }
  }

  /**
   * Stops a start whose store cannot take the rows the log holds: they were encoded for the store
   * configured when they were accepted (storage.backend changed from sqlite to postgres, say, with
   * rows still in the log after a crash or an outage), and every replayed batch would be refused
   * for good, acknowledged rows dropped. The operator decides: start once with the old store to
   * write them, or move the directory away. A log without rows takes the new encoding.
   */
  private async checkEncoding(rows: number): Promise<void> {
    const encoder = this.opts.encoder;
    if (!encoder) return;
    const path = join(this.dir, ENCODING_NAME);
    const current = JSON.stringify({ store: this.storeName, encoder });
    let was: { store?: string; encoder?: unknown } | undefined;
    try {
      was = JSON.parse(await readFile(path, 'utf8')) as typeof was;
    } catch {
      // None (a new log, or one written before this file was), or unreadable: nothing to compare.
    }
    if (rows > 0 && was !== undefined && JSON.stringify(was.encoder) !== JSON.stringify(encoder)) {
      throw new ConfigError(
        `delivery.walDir = ${JSON.stringify(this.dir)} holds ${rows} accepted rows encoded for the ${String(was.store)} store (${JSON.stringify(was.encoder)}), ` +
          `which storage.backend = ${JSON.stringify(this.storeName)} (${JSON.stringify(encoder)}; the shard count of storage.clickhouse.urls counts too) cannot take; ` +
          `start once with the store they were accepted for to write them, or move the directory away (the rows are then lost)`,
      );
    }
    if (was !== undefined && JSON.stringify(was) === current) return;
    await writeFile(path + '.tmp', current);
    await rename(path + '.tmp', path);
  }

  /**
   * Hands the replay to the writer without blocking start-up (a store that is down would hold
   * the receivers closed), a slice of half the queue budget at a time, read back from the log
   * only then (after a long outage the log holds up to delivery.walMaxBytes, as much as a pod's
   * memory): recorded batches as they are, then loose chunks batched anew, the next slice once the
   * last is stored (or given up on), never once the writer is idle, which a steady load never lets
   * it be. Each slice takes its room whether or not new requests left any: its rows were accepted
   * before the restart, and new requests wait instead.
   */
  feed(writer: Writer, maxQueueBytes: number): void {
    writer.onKept((batch) => this.keep(writer, batch, maxQueueBytes));
    const plan = this.replay;
    this.replay = undefined;
    if (!plan) return;
    this.unfed = planRows(plan);
    const slice = Math.max(1, Math.floor(maxQueueBytes / 2));
    this.replaying = (async () => {
      for (let i = 0; i < plan.batches.length && !this.stopped; ) {
        const part = sliceOf(plan.batches, i, slice, (b) => b.batch.bytes);
        i += part.length;
        const data = await this.readBack(part.map((b) => b.refs), 'rows to replay');
        // Stopped while reading: the writer may have drained already, and nothing would bound a
        // write handed to it now; the rows stay in the log for the next start.
        if (!data || this.stopped) return;
        this.unfed -= part.reduce((n, b) => n + b.batch.rows, 0);
        await Promise.all(part.map((b, j) => {
          const chunks = data[j];
          if (!chunks) return this.unreadable(b.batch.rows);
          this.recorder.retrack(chunks, b.refs);
          return writer.submit({ ...b.batch, chunks });
        }));
      }
      const groups = new Map<string, { signal: Signal; tenant: string; chunks: PlannedChunk[] }>();
      for (const c of plan.chunks) {
        const k = `${c.signal}/${c.tenant}`;
        let g = groups.get(k);
        if (!g) groups.set(k, (g = { signal: c.signal, tenant: c.tenant, chunks: [] }));
        g.chunks.push(c);
      }
      for (const { signal, tenant, chunks } of groups.values()) {
        for (let i = 0; i < chunks.length && !this.stopped; ) {
          const part = sliceOf(chunks, i, slice, (c) => c.bytes);
          i += part.length;
          const data = await this.readBack(part.map((c) => [c.ref]), 'rows to replay');
          if (!data || this.stopped) return;
          this.unfed -= part.reduce((n, c) => n + c.rows, 0);
          const read: EncodedChunk[] = [];
          part.forEach(({ bytes: _bytes, signal: _signal, tenant: _tenant, ref, ...shape }, j) => {
            const bytes = data[j]?.[0];
            if (!bytes) return this.unreadable(shape.rows);
            this.recorder.retrack([bytes], [ref]);
            read.push({ ...shape, data: bytes });
          });
          await writer.reserve(bytesOf(read.map((c) => c.data)), true)!.commit(signal, read, tenant);
        }
      }
    })();
  }

  /** Chunks read back from the log (rows to replay, or batches given up on), tried again after a failed read; undefined once stopping. */
  private async readBack(refs: readonly (readonly WalChunkRef[])[], what: string): Promise<(Uint8Array[] | undefined)[] | undefined> {
    while (!this.stopped) {
      try {
        return await this.wal.reread(refs);
      } catch (err) {
        // The rows stay in the log meanwhile (and for the next start, should this one stop).
        this.logger.error({ err: (err as Error).message, lists: refs.length }, `write-ahead log: could not read back ${what}; trying again`);
        await sleep(KEPT_RETRY_MS, undefined, { signal: this.stopping.signal }).catch(() => {});
      }
    }
    return undefined;
  }

  /** Rows of the replay whose chunks the log no longer holds whole: left to the next start's reading, and said. */
  private unreadable(rows: number): void {
    this.logger.error({ rows }, 'write-ahead log: rows to replay could not be read back whole; left in the log for the next start');
  }

  /** Appends a decoded request's chunks (fsynced) and tells the recorder where they are; resolves to a refusal reason instead of throwing. */
  async append(signal: Signal, chunks: readonly EncodedChunk[], tenant: string): Promise<AppendRefusal | undefined> {
    try {
      const seq = await this.wal.append(signal, chunks, tenant);
      this.recorder.track(seq, chunks);
      this.refused = undefined;
      return undefined;
    } catch (err) {
      // Not the log's state: other requests are taken as before.
      if (err instanceof WalEntryTooLargeError) return 'too_large';
      this.refused = { reason: err instanceof WalFullError ? 'wal_full' : 'wal_unavailable', bytes: this.wal.bytes };
      if (err instanceof WalFullError) return 'wal_full';
      const now = Date.now();
      if (now - this.loggedFailure > 60_000) {
        this.loggedFailure = now;
        this.logger.error({ err: (err as Error).message }, 'write-ahead log append failed; refusing requests as retryable');
      }
      return 'wal_unavailable';
    }
  }

  /** Rows of batches given up on and waiting to be written again: at shutdown, kept for the next start. */
  get keptRows(): number {
    return this.kept.reduce((n, k) => n + k.batch.rows, 0);
  }

  /** Rows of the start-up replay not handed to the writer yet: at shutdown, kept for the next start. */
  get unfedRows(): number {
    // A stop before feed() (start-up still waiting for the store) leaves the whole replay unfed.
    return this.unfed + (this.replay ? planRows(this.replay) : 0);
  }

  /**
   * A batch the writer gave up on: written again later, after the ones before it, its chunks let go
   * meanwhile and read back from the log. False when stopping (the writer counts it as kept for the
   * next start).
   */
  private keep(writer: Writer, batch: WriteBatch, maxQueueBytes: number): boolean {
    if (this.stopped) return false;
    // Where its chunks are: a batch whose own record was never written (the disk full for as long
    // as the writer retried) is found by them too.
    const refs = this.recorder.refsOf(batch.chunks);
    const recorded = refs !== undefined && this.recorder.isRecorded(batch.batchId);
    if (recorded) this.recorder.watch(batch.batchId);
    this.kept.push(refs ? { batch: { ...batch, chunks: [] }, refs, recorded } : { batch, recorded: false });
    this.startRewrite(writer, Math.max(1, Math.floor(maxQueueBytes / 2)));
    return true;
  }

  private startRewrite(writer: Writer, slice: number): void {
    if (this.rewriting || this.stopped) return;
    this.rewriting = this.rewrite(writer, slice).finally(() => {
      this.rewriting = undefined;
      // One kept between the loop's last look and now.
      if (this.kept.length > 0) this.startRewrite(writer, slice);
    });
  }

  /**
   * Writes the kept batches again, oldest first, in slices of `slice` bytes: each slice's chunks read
   * from the log at once, submitted under their own ids, and the next slice once these are stored or
   * given up on again (the writer then hands them back, to the end of the line).
   */
  private async rewrite(writer: Writer, slice: number): Promise<void> {
    // A wait before the first slice, and after one the writer gave up on again; the store took
    // the last one: the next goes at once.
    let wait = true;
    while (this.kept.length > 0 && !this.stopped) {
      if (wait) await sleep(KEPT_RETRY_MS, undefined, { signal: this.stopping.signal }).catch(() => {});
      if (this.stopped) return;
      const part = sliceOf(this.kept, 0, slice, (k) => k.batch.bytes);
      this.kept.splice(0, part.length);
      const chunks = await this.readBack(part.map((k) => k.refs ?? []), 'batches given up on');
      if (!chunks || this.stopped) {
        // Left for the next start, which replays them.
        this.kept.unshift(...part);
        return;
      }
      const stored = await Promise.all(part.map((k, i) => {
        if (!k.refs) return writer.submit(k.batch);
        const c = chunks[i];
        // Ended meanwhile by an attempt that had timed out: stored after all (nothing left to
        // write), or refused for good, whole or some requests' rows of it (the rest stored), those
        // rows dropped: counted (written, dropped) and logged as the writer would.
        if (c === undefined || this.endedMeanwhile(k)) {
          writer.forgetKept(k.batch.batchId);
          this.countLateEnd(k);
          return undefined;
        }
        if (k.recorded) this.recorder.endedLate(k.batch.batchId);
        this.recorder.retrack(c, k.refs);
        return writer.submit({ ...k.batch, chunks: c, bytes: bytesOf(c) });
      }));
      wait = stored.includes(false);
    }
  }

  /** Whether an attempt that had timed out ended the kept batch since (the log let it go): nothing is left to write. */
  private endedMeanwhile(k: KeptBatch): boolean {
    return k.recorded && !this.recorder.isRecorded(k.batch.batchId);
  }

  /**
   * Counts (written, dropped) and logs what the attempt that ended a kept batch after the writer
   * gave up on it did with its rows, as the writer would have.
   */
  private countLateEnd(k: KeptBatch): void {
    const end = k.recorded ? this.recorder.endedLate(k.batch.batchId) : undefined;
    if (end && end.written > 0) this.metrics.writtenRows.inc({ backend: this.storeName, signal: k.batch.signal }, end.written);
    const refused = end?.refused;
    if (refused) {
      const { signal, partition } = k.batch;
      this.metrics.droppedRows.inc({ backend: this.storeName, signal, reason: 'permanent_error' }, refused.rows);
      this.logger.error({ signal, partition, rows: refused.rows, reason: 'permanent_error', err: refused.error.message }, 'dropped rows of a batch given up on: the store refused them for good to an attempt that had timed out');
    }
  }

  /** Why appends are being refused (readiness), or undefined: cleared by a successful append, once the log has shrunk, or once its disk takes entries again. */
  get refusing(): AppendRefusal | undefined {
    if (this.refused && this.wal.bytes < this.refused.bytes) this.refused = undefined;
    // A disk with room again is found without waiting for an export to try it.
    if (this.refused?.reason === 'wal_unavailable' && this.wal.takesEntries()) this.refused = undefined;
    return this.refused?.reason;
  }

  /** Stops feeding the replay and writing kept batches again; call before the writer shuts down. */
  stopFeeding(): void {
    this.stopped = true;
    this.stopping.abort();
  }

  /** Waits for the replay feed and the rewrites to end, then writes the last marks and closes the log. */
  async shutdown(): Promise<void> {
    this.stopFeeding();
    await Promise.all([this.replaying, this.rewriting]);
    // Kept batches an attempt that had timed out ended before the rewrite looked at them (it waits
    // KEPT_RETRY_MS first): the log let them go, so they are not kept for the next start; what that
    // attempt stored or was refused is counted and logged now, or never.
    this.kept = this.kept.filter((k) => {
      if (!this.endedMeanwhile(k)) return true;
      this.countLateEnd(k);
      return false;
    });
    await this.wal.shutdown();
  }
}
