// Connects the write-ahead log to the writer without the writer knowing about it: a wrapper
// around the backend's writes (cross-cutting behaviour wraps, DESIGN.md convention 4).
//
// The writer puts each chunk's bytes (the same Uint8Array object) into the batch it forms, so the
// chunk objects identify where in the log each chunk lives. Before a batch's first write attempt
// the wrapper records it (BATCH record, fsynced) under the writer's batch id; a retry of the same
// id is not recorded again. When the store answers success, or a permanent failure (the writer
// drops and counts those rows), the batch is marked stored. A retryable answer leaves it in the
// log: if the writer gives up at shutdown or after retryMaxElapsedMs, the rows are replayed at
// the next start instead of being lost.
//
// Batches whose chunks the wrapper was not told about (acknowledged in `queued` mode, say) are
// written through untouched: recording a batch of which only some chunks are in the log would
// let a replay reuse its id for other rows.
import type { EncodedChunk, StoreWriter, WriteBatch, WriteResult } from '../storage/backend.ts';
import type { ReplayPlan, WalChunkRef, WriteAheadLog } from './wal/index.ts';

/** What the attempt that ended a batch the writer had given up on did with its rows. */
export interface LateEnd {
  /** Rows stored. */
  written: number;
  /** Rows refused for good (all of them, or some requests' rows: WriteResult dropped), and why. */
  refused?: { rows: number; error: Error };
}

/** Records the writer's batches in the write-ahead log around a backend's writes. */
export class WalRecorder {
  private readonly wal: WriteAheadLog;
  private readonly refs = new WeakMap<Uint8Array, WalChunkRef>();
  /** Batch id → its record's sequence number, while the batch is being written. */
  private readonly recorded = new Map<string, Promise<number>>();
  /** Batches the writer gave up on (watch), with what an attempt still running then did once it ended. */
  private readonly watched = new Map<string, LateEnd | undefined>();
  /**
   * Batches (the writer's objects, which it hands to every attempt) an attempt ended: stored or
   * refused for good. A later attempt of one (begun after an earlier one timed out, then landed)
   * writes through: recorded again, its record would name chunks the log has let go of, and hold
   * its segment, and every later one, for good.
   */
  private readonly ended = new WeakSet<WriteBatch>();

  constructor(wal: WriteAheadLog) {
    this.wal = wal;
  }

  /** Remembers where an appended entry's chunks live; call before handing the chunks to the writer. */
  track(entrySeq: number, chunks: readonly EncodedChunk[]): void {
    chunks.forEach((c, index) => this.refs.set(c.data, { entry: entrySeq, index }));
  }

  /**
   * Takes over what the log's opening found: replayed batches are known by id (write them as they
   * are, not re-batched); replayed chunks are tracked once read back (retrack).
   */
  adopt(replay: ReplayPlan): void {
    for (const b of replay.batches) this.recorded.set(b.batch.batchId, Promise.resolve(b.seq));
  }

  /**
   * Lets go of a batch the writer gave up on while running (retries exhausted): its rows leave the
   * log and are lost (the writer counts them as dropped). Without this they stay until a restart
   * replays them, and a batch no store will ever take keeps every later segment from being
   * deleted, so the log fills and ingest refuses. Which of the two a deployment wants is policy;
   * at shutdown, never call it: the rows are for the next start.
   */
  async abandon(batchId: string): Promise<void> {
    const record = this.recorded.get(batchId);
    if (!record) return;
    this.recorded.delete(batchId);
    const seq = await record.catch(() => undefined);
    if (seq !== undefined) this.wal.markStored(seq);
  }

  /** Whether a batch is recorded and not stored (a batch the writer gave up on for now, say). */
  isRecorded(batchId: string): boolean {
    return this.recorded.has(batchId);
  }

  /**
   * Follows a batch the writer gave up on while an attempt of it may still be running: that
   * attempt may end it (isRecorded turns false) by storing it or by being refused for good.
   */
  watch(batchId: string): void {
    this.watched.set(batchId, undefined);
  }

  /**
   * What the attempt that ended a watched batch did with its rows (stored, refused for good, or
   * some of each), undefined when none ended it; stops watching it.
   */
  endedLate(batchId: string): LateEnd | undefined {
    const end = this.watched.get(batchId);
    this.watched.delete(batchId);
    return end;
  }

  /** Where in the log each of a batch's chunks lives; undefined when one is not in the log. */
  refsOf(chunks: readonly Uint8Array[]): WalChunkRef[] | undefined {
    const refs: WalChunkRef[] = [];
    for (const c of chunks) {
      const r = this.refs.get(c);
      if (!r) return undefined;
      refs.push(r);
    }
    return refs;
  }

  /** Chunks read back from the log (WriteAheadLog.reread) are where they were read from. */
  retrack(chunks: readonly Uint8Array[], refs: readonly WalChunkRef[]): void {
    chunks.forEach((c, i) => this.refs.set(c, refs[i]!));
  }

  /** The store's writes, recorded in the log (the writer sees only this). */
  wrap(inner: StoreWriter): StoreWriter {
    return { name: inner.name, copiesChunks: inner.copiesChunks === true, write: (b) => this.write(b, () => inner.write(b)) };
  }

  private async write(batch: WriteBatch, write: () => Promise<WriteResult>): Promise<WriteResult> {
    let record = this.recorded.get(batch.batchId);
    if (!record) {
      if (this.ended.has(batch)) return write();
      const refs = this.refsOf(batch.chunks);
      if (!refs) return write();
      record = this.wal.recordBatch(batch, refs);
      this.recorded.set(batch.batchId, record);
    }
    let seq: number;
    try {
      seq = await record;
    } catch (err) {
      // Not recorded (disk error, log shut down): writing now could store rows a replay would
      // store again under another id. The writer retries; the record is attempted again.
      this.recorded.delete(batch.batchId);
      return { kind: 'retryable', error: err instanceof Error ? err : new Error(String(err)) };
    }
    const result = await write();
    if (result.kind !== 'retryable') {
      if (this.watched.has(batch.batchId)) {
        if (result.kind === 'permanent') this.watched.set(batch.batchId, { written: 0, refused: { rows: batch.rows, error: result.error } });
        else this.watched.set(batch.batchId, { written: batch.rows - (result.dropped?.rows ?? 0), ...(result.dropped && { refused: { rows: result.dropped.rows, error: result.dropped.error } }) });
      }
      this.wal.markStored(seq);
      this.recorded.delete(batch.batchId);
      this.ended.add(batch);
    }
    return result;
  }
}
