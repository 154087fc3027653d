// Write-ahead log of encoded row chunks: what `delivery.ack = durable` acknowledges.
//
// Design
//
// What the stores dedupe on decides what a replay must reproduce:
// - PostgreSQL: spans by (trace_id, span_id, start time); log records by (time, hash(batchId),
//   position of the row in the batch). A log record replayed in another batch, or at another
//   position, is stored twice.
// - ClickHouse: insert_deduplication_token = batchId (within the table's deduplication window):
//   the same id with the same rows lands once; other ids always land.
// - SQLite: spans by (trace id, span id); log records by batch id (its log_batches table).
// - memory: nothing survives a restart, so a replay never meets rows stored before it.
// So a replay must rebuild every batch that may have reached the store with the same id and the
// same chunks in the same order. The writer's batches depend on timing (flush interval), so they
// cannot be recomputed from the entries: each batch is written down instead.
//
// Records (all framed alike, see below), in one sequence-numbered log:
// - ENTRY  seq, signal, chunks: one accepted request's encoded chunks. append() resolves once the
//   record is fsynced: that is the acknowledgement.
// - BATCH  seq, batch id, signal, partition, [(entry seq, chunk index)…]: which chunks form a write
//   batch, in order. recordBatch() resolves once it is fsynced, and the writer sends the batch to
//   the store only then, so any batch the store may hold is on disk with its id.
// - STORED [batch seq…]: batches the store committed (or the writer gave up on for good). Written
//   lazily with the next group commit: if a crash loses it, the batch is replayed under its own id
//   and the store keeps one copy.
// On start the log is read in order: batches not stored are returned whole, with their ids; chunks
// of entries that no batch holds are returned to be batched anew (no store ever saw them).
//
// Group commit: records queue up while an fsync runs; the next round writes them all with one
// writev and one fdatasync. Concurrent appenders share fsyncs instead of queueing behind them.
//
// Segments: records go to the active segment file, named by a 20-digit number that sorts it after
// every older one; a new one starts once a round takes it past segmentBytes (at most a quarter of
// maxBytes). A segment is
// deleted when every entry and batch in it is stored, and only after every older segment is gone,
// so a STORED record never outlives the batch it names out of order. Deleted, or kept as a spare
// (up to MAX_SPARES, while they fit in maxBytes): a new segment is a spare renamed and written
// again from its first byte, whose pages are in the page cache already. A new file's pages have
// to be allocated as they are written, and writing into them cost the collector's I/O threads
// ~2.5 times the CPU (docs/performance.md, phase AD). The old records past the new ones are told
// apart by their checksums, which cover the segment's number (records.ts). maxBytes bounds the files
// plus what is queued: an entry beyond it is refused with WalFullError (the caller answers
// UNAVAILABLE/503, the client retries); control records are never refused, or a full log could
// not drain.
//
// A full disk: the log keeps a reserve file (RESERVE_NAME, reserveBytes()) beside its segments.
// The first write that finds no space deletes it and refuses entries from then on, so the space
// it frees takes only BATCH and STORED records: the writer can still record and store what the
// log holds, stored segments are deleted, and once the reserve can be written again entries are
// taken again: tried when a stored segment is deleted, and by refused appends at most once a
// second (space can come back from another file on the volume, with no segment to delete).
// Without it a disk filled by entries holds only batches nobody can record.
//
// Framing and the reading of damaged segments: see records.ts.
//
// Use: append → acknowledge; recordBatch → write to the store → markStored on success or a
// permanent failure, nothing on a retryable one (the rows stay for the next start). Shut the
// writer down before the log, so its last stored marks are written.
import { DEFAULT_TENANT } from '../../model/tenant.ts';
import { fileId, sameFile, type FileId } from '../../common/file-id.ts';
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { Signal } from '../../model/signal.ts';
import type { EncodedChunk, WriteBatch } from '../../storage/backend.ts';
import { Outage, type Logger } from '../../telemetry/logger.ts';
import { BATCH, ENTRY, baseSeed, bytesOf, encodeBatch, encodeEntry, encodeStored, scanSegment, seal, type WalChunkRef } from './records.ts';

/** A segment's file name: its first sequence number, 20 digits, so that names sort as segments do. */
export const SEGMENT_NAME = /^(\d{20})\.wal$/;
const RESERVE_NAME = 'reserve';
/** SQLite's primary result codes of a lock another connection holds: SQLITE_BUSY, SQLITE_LOCKED. */
const LOCK_HELD = new Set([5, 6]);
/**
 * Longest a full disk's refused appends wait between tries of the reserve (space can come back
 * without a segment deleted), on performance.now(): the wall clock steps (NTP, a VM resumed), and
 * a step back refused every append for as long as the step.
 */
const RESERVE_RETRY_MS = 1000;
/** A stored segment's file kept for reuse (not a segment: never read at start). */
const SPARE_NAME = /^spare-\d+$/;
/** Stored segments' files kept for reuse: one per rotation is what a steady load frees. */
const MAX_SPARES = 2;

/** Room kept for control records: enough to record a full log's batches (a few dozen bytes each). */
export function reserveBytes(maxBytes: number): number {
  return Math.min(4 << 20, Math.max(64 << 10, Math.floor(maxBytes / 256)));
}

/** Whether a write failed for want of space (a short write is one: the disk took what it had). */
const noSpace = (err: unknown): boolean => ['ENOSPC', 'EDQUOT'].includes(String((err as { code?: unknown }).code));

export type { WalChunkRef };

/** An entry chunk no batch holds yet, returned by a replay to be batched anew. */
export interface ReplayChunk extends EncodedChunk {
  signal: Signal;
  tenant: string;
  ref: WalChunkRef;
}

/** A batch that may have reached the store: write it as it is (same id, same chunks), then markStored(seq). */
export interface ReplayBatch {
  seq: number;
  batch: WriteBatch;
  refs: WalChunkRef[];
}

/** A chunk to replay as open() finds it: where it is and its size, its bytes left on disk. */
export interface PlannedChunk extends Omit<ReplayChunk, 'data'> {
  bytes: number;
}

/** A batch to replay as open() finds it: its chunks' bytes left on disk (read them with reread). */
export interface PlannedBatch {
  seq: number;
  batch: Omit<WriteBatch, 'chunks'>;
  refs: WalChunkRef[];
}

/**
 * What open() found on disk, without the chunks' bytes: after a long outage the log holds up to
 * delivery.walMaxBytes of them (1 GiB by default, the chart's whole memory limit), so they are
 * read slice by slice.
 */
export interface ReplayPlan {
  /** Batches recorded and not stored, in sequence order. */
  batches: PlannedBatch[];
  /** Chunks of entries not stored and in no batch, in sequence order. */
  chunks: PlannedChunk[];
}

/** What start() found on disk, with every chunk's bytes. */
export interface WalReplay {
  /** Batches recorded and not stored, in sequence order. */
  batches: ReplayBatch[];
  /** Chunks of entries not stored and in no batch, in sequence order. */
  chunks: ReplayChunk[];
}

/** A checksum or framing failure found while reading the log. */
export interface WalCorruption {
  kind: 'torn_tail' | 'corrupt';
  segment: string;
  offset: number;
  bytes: number;
}

export interface WalOptions {
  dir: string;
  /** Bound on segment files plus queued records; entries beyond it are refused. */
  maxBytes: number;
  /** A new segment starts once the active one is this large. */
  segmentBytes: number;
  logger?: Logger;
  /** Called for each corrupt region or torn tail found at start (wire it to a counter). */
  onCorruption?: (c: WalCorruption) => void;
  /** Hold the directory's lock while open, refusing a second process (the collector's log; tests that simulate a crash in-process leave it off). */
  exclusive?: boolean;
}

/** The log has no room for an entry: refuse the request as retryable (UNAVAILABLE / 503). */
export class WalFullError extends Error {
  override readonly name = 'WalFullError';
  readonly code = 'WAL_FULL';
}

/** An entry larger than the whole log (maxBytes): it could never be taken, so refuse it for good (413 / RESOURCE_EXHAUSTED). */
export class WalEntryTooLargeError extends Error {
  override readonly name = 'WalEntryTooLargeError';
  readonly code = 'WAL_ENTRY_TOO_LARGE';
}

/** The log cannot write (a disk error it could not undo): refuse requests until restart. */
export class WalBrokenError extends Error {
  override readonly name = 'WalBrokenError';
  readonly code = 'WAL_BROKEN';
}

interface Segment {
  base: number;
  path: string;
  /** Bytes of this segment's records (a reused file may be longer). */
  size: number;
  /** The file's length on disk. */
  fileBytes: number;
  /** Written by this process (format 1 only), so its file may be reused once stored. */
  reusable: boolean;
  /** Entries and batches in this segment that are not stored yet. */
  live: number;
  /** The file this process opened for it (openSegment), which its path must still name (writeRound). */
  file?: FileId;
}

interface LiveEntry {
  seg: Segment;
  /** Chunks not yet in a stored batch. */
  remaining: number;
}

interface LiveBatch {
  seg: Segment;
  refs: WalChunkRef[];
}

/** A batch marked stored, its STORED mark not yet on disk. */
interface StoredMark {
  seq: number;
  batch: LiveBatch;
}

interface Pending {
  parts: Uint8Array[];
  bytes: number;
  /** Counted against maxBytes. */
  bounded: boolean;
  /** What to register once the record is in a segment. */
  register?: (seg: Segment) => void;
  resolve: () => void;
  reject: (err: Error) => void;
}


/** An entry's chunk as the log's first reading keeps it: its bytes are read again only if it is replayed. */
type ChunkShape = Omit<EncodedChunk, 'data'> & { bytes: number };

/** A chunk's key in the sets and maps of a log's opening. */
const chunkKey = (r: WalChunkRef): string => `${r.entry}/${r.index}`;

/** A replayed chunk's own copy: a view would keep its whole segment file in memory. */
function own(data: Uint8Array): Uint8Array {
  return new Uint8Array(data);
}

function segmentName(base: number): string {
  return `${String(base).padStart(20, '0')}.wal`;
}

/** Makes a directory entry (a new segment) durable: without it, a fsynced file can vanish on power loss. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The write-ahead log: append (durable, group-committed), record batches, mark them stored, replay. */
export class WriteAheadLog {
  private readonly opts: WalOptions;
  private readonly segments: Segment[] = [];
  /** Stored segments' files kept for reuse, with their lengths. */
  private readonly spares: { path: string; bytes: number }[] = [];
  private spareBytes = 0;
  private spareCount = 0;
  /** Spares being deleted to make room (yieldSpares). */
  private removingSpares: Promise<void> = Promise.resolve();
  private active: Segment | undefined;
  private fh: FileHandle | undefined;
  private readonly entries = new Map<number, LiveEntry>();
  private readonly batches = new Map<number, LiveBatch>();
  private nextSeq = 1;
  private queue: Pending[] = [];
  /** Batches marked stored whose STORED marks are not on disk yet. */
  private storedQueue: StoredMark[] = [];
  /** Marks of a round that failed: written with the next round something else starts (not at once, which a failing disk would spin on). */
  private unwrittenMarks: StoredMark[] = [];
  private flushing: Promise<void> | undefined;
  /** Segment bytes on disk plus bounded records queued. */
  private usedBytes = 0;
  private broken: Error | undefined;
  /** The disk is full and the reserve was given to control records: entries are refused. */
  private diskFull: Error | undefined;
  /** When a refused append may next try to write the reserve again (retryReserve). */
  private reserveRetryAt = 0;
  /** When a refused append may next try to start the segment a failed rotation did not (retryRotation). */
  private rotateRetryAt = 0;
  /** Segment starts failed in a row (rotate), for the line saying a segment started again. */
  private readonly rotateFailures = new Outage();
  /** The lock that keeps a second process out of this directory, held until shutdown (the OS lets go of it when the process dies, SIGKILL too). */
  private lock: DatabaseSync | undefined;
  /** The lock file `lock` held (relock). */
  private lockFile: FileId | undefined;
  private starting: Promise<ReplayPlan> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly counters = { fsyncs: 0, rounds: 0, appends: 0, tornBytes: 0, corruptBytes: 0, corruptRegions: 0 };

  constructor(opts: WalOptions) {
    // A full log must span several segments, or a segment holding only stored rows could never
    // be sealed and deleted, and the log would refuse appends for good.
    this.opts = { ...opts, segmentBytes: Math.max(1, Math.min(opts.segmentBytes, Math.floor(opts.maxBytes / 4))) };
  }

  /** Counts since construction: fsyncs, group-commit rounds, appends, torn and corrupt bytes found. */
  get stats(): Readonly<typeof this.counters> {
    return { ...this.counters };
  }

  /** Bytes the log holds (segment files plus queued entries): compare with maxBytes. */
  get bytes(): number {
    return this.usedBytes;
  }

  /** Segment files on disk. */
  get segmentCount(): number {
    return this.segments.length;
  }

  /** Entries not yet stored. */
  get pendingEntries(): number {
    return this.entries.size;
  }

  /** Opens the log and returns what must be replayed, its bytes left on disk (reread reads them); idempotent. */
  open(): Promise<ReplayPlan> {
    this.starting ??= this.scan();
    return this.starting;
  }

  /** open() with every chunk's bytes read at once: for callers that replay little (tests, tools). */
  async start(): Promise<WalReplay> {
    const plan = await this.open();
    // One reading of the segments for both: the batches' refs, then each loose chunk's.
    const read = await this.reread([...plan.batches.map((b) => b.refs), ...plan.chunks.map((c) => [c.ref])]);
    const replay: WalReplay = { batches: [], chunks: [] };
    plan.batches.forEach((b, i) => {
      const data = read[i];
      if (data) replay.batches.push({ seq: b.seq, refs: b.refs, batch: { ...b.batch, chunks: data } });
    });
    plan.chunks.forEach(({ bytes: _bytes, ...c }, i) => {
      const data = read[plan.batches.length + i]?.[0];
      if (data) replay.chunks.push({ ...c, data });
    });
    return replay;
  }

  /**
   * Reads the segments one at a time and keeps no chunk's bytes, so that start-up holds one
   * segment file, not the log (a log held back by one old batch, or filled in an outage, can be
   * walMaxBytes): what must be replayed is read back later, slice by slice (reread).
   */
  private async scan(): Promise<ReplayPlan> {
    const { dir } = this.opts;
    await mkdir(dir, { recursive: true });
    if (this.opts.exclusive) this.lockDir(dir);
    const names = (await readdir(dir)).filter((n) => SEGMENT_NAME.test(n)).sort();
    /** Entries' chunks without their bytes. */
    const entryChunks = new Map<number, { signal: Signal; tenant: string; chunks: ChunkShape[]; seg: Segment }>();
    const recorded = new Map<number, { seg: Segment; signal: Signal; tenant: string; partition: number; batchId: string; refs: WalChunkRef[] }>();
    const stored = new Set<number>();
    let maxSeq = 0;
    let lastBase = 0;
    let torn = 0;
    const corrupt = { regions: 0, bytes: 0 };
    for (const [i, name] of names.entries()) {
      const path = join(dir, name);
      const base = Number(SEGMENT_NAME.exec(name)![1]);
      lastBase = Math.max(lastBase, base);
      const buf = await readFile(path);
      const { records, bad, validEnd } = scanSegment(buf, base);
      const seg: Segment = { base, path, size: buf.length, fileBytes: buf.length, live: 0, reusable: false };
      const last = i === names.length - 1;
      let tornHere = false;
      for (const b of bad) {
        // Bad bytes running to the end of the newest segment are an append the crash cut short.
        const isTail = last && b.end;
        const c: WalCorruption = { kind: isTail ? 'torn_tail' : 'corrupt', segment: name, offset: b.offset, bytes: b.bytes };
        if (isTail) {
          torn += b.bytes;
          tornHere = true;
        } else {
          corrupt.regions++;
          corrupt.bytes += b.bytes;
        }
        this.opts.onCorruption?.(c);
      }
      if (tornHere) {
        await truncate(path, validEnd);
        seg.size = seg.fileBytes = validEnd;
      }
      for (const r of records) {
        if (r.type === ENTRY) {
          entryChunks.set(r.seq, { signal: r.signal, tenant: r.tenant, chunks: r.chunks.map(({ partition, rows, data }) => ({ partition, rows, bytes: data.byteLength })), seg });
          maxSeq = Math.max(maxSeq, r.seq);
        } else if (r.type === BATCH) {
          recorded.set(r.seq, { seg, signal: r.signal, tenant: r.tenant, partition: r.partition, batchId: r.batchId, refs: r.refs });
          maxSeq = Math.max(maxSeq, r.seq);
        } else {
          for (const s of r.seqs) stored.add(s);
        }
      }
      this.segments.push(seg);
      this.usedBytes += seg.size;
    }
    this.counters.tornBytes += torn;
    this.counters.corruptBytes += corrupt.bytes;
    this.counters.corruptRegions += corrupt.regions;
    if (torn > 0) this.opts.logger?.warn({ dir, bytes: torn }, 'write-ahead log: cut a torn tail left by a crash mid-append');
    if (corrupt.regions > 0) {
      this.opts.logger?.error({ dir, regions: corrupt.regions, bytes: corrupt.bytes }, 'write-ahead log: skipped records that failed their checksum; the rows in them are lost');
    }

    // Which chunks a stored batch covers, and which a pending batch holds.
    const covered = new Set<string>();
    const held = new Set<string>();
    for (const [seq, b] of recorded) for (const r of b.refs) (stored.has(seq) ? covered : held).add(chunkKey(r));

    for (const [seq, e] of entryChunks) {
      const remaining = e.chunks.filter((_, index) => !covered.has(chunkKey({ entry: seq, index }))).length;
      if (remaining === 0) continue;
      this.entries.set(seq, { seg: e.seg, remaining });
      e.seg.live++;
    }
    const replay: ReplayPlan = { batches: [], chunks: [] };
    let missing = 0;
    for (const [seq, b] of [...recorded].sort((x, y) => x[0] - y[0])) {
      if (stored.has(seq)) continue;
      const refs: WalChunkRef[] = [];
      /** Its chunks no stored batch covers, read or not: those its storing releases. */
      const live: WalChunkRef[] = [];
      let rows = 0;
      let bytes = 0;
      for (const r of b.refs) {
        // A chunk a stored batch covers is in the store already: a batch recorded again by an
        // attempt that began after an earlier one (timed out, then landed) had stored it.
        if (covered.has(chunkKey(r))) continue;
        live.push(r);
        const c = entryChunks.get(r.entry)?.chunks[r.index];
        if (!c) {
          missing++;
          continue;
        }
        refs.push(r);
        rows += c.rows;
        bytes += c.bytes;
      }
      // A batch none of whose chunks survived (or are still to store) has nothing to replay and
      // nothing to wait for.
      if (refs.length === 0) continue;
      // Its stored chunks are not counted in their entries' remaining ones: not released again.
      this.batches.set(seq, { seg: b.seg, refs: live });
      b.seg.live++;
      // A batch that lost chunks must not reuse its id: the stores would take the survivors for
      // rows already stored (ClickHouse's token, PostgreSQL's row positions) and drop them. A new
      // id risks storing them twice instead, the lesser harm.
      const batchId = refs.length === b.refs.length ? b.batchId : randomUUID();
      replay.batches.push({ seq, refs, batch: { signal: b.signal, partition: b.partition, tenant: b.tenant, rows, bytes, batchId } });
    }
    if (missing > 0) this.opts.logger?.error({ dir, chunks: missing }, 'write-ahead log: batches name chunks whose entries failed their checksum; replaying the rest');
    for (const seq of [...this.entries.keys()].sort((a, b) => a - b)) {
      const e = entryChunks.get(seq)!;
      e.chunks.forEach((c, index) => {
        const k = chunkKey({ entry: seq, index });
        if (!covered.has(k) && !held.has(k)) replay.chunks.push({ ...c, signal: e.signal, tenant: e.tenant, ref: { entry: seq, index } });
      });
    }

    // Spares left by the last run: kept as they are named, or deleted (keepSpare).
    const spares = (await readdir(dir)).filter((n) => SPARE_NAME.test(n));
    for (const name of spares) this.spareCount = Math.max(this.spareCount, Number(name.slice('spare-'.length)) + 1);
    for (const name of spares) await this.keepSpare(join(dir, name), (await stat(join(dir, name))).size);
    // Appends after a restart go to a new segment, named above every existing one.
    this.nextSeq = Math.max(maxSeq, lastBase) + 1;
    await this.openSegment(this.nextSeq);
    await this.collect();
    if (!(await this.writeReserve())) this.opts.logger?.warn({ dir }, 'write-ahead log: no room for its reserve file; a full disk may stall it until space is freed');
    return replay;
  }

  /**
   * Own copies of the chunks named in `wanted` (by chunkKey), read again from `holding`, the
   * segments that hold their entries, one segment at a time.
   */
  private async readChunks(wanted: ReadonlySet<string>, holding: ReadonlySet<Segment>): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    // A copy: while running (reread), stored segments may leave the list meanwhile.
    for (const seg of [...this.segments]) {
      if (!holding.has(seg)) continue;
      // Its damage was reported by the first reading; the same records are read again.
      for (const r of scanSegment(await readFile(seg.path), seg.base).records) {
        if (r.type !== ENTRY) continue;
        r.chunks.forEach((c, index) => {
          const k = chunkKey({ entry: r.seq, index });
          if (wanted.has(k)) out.set(k, own(c.data));
        });
      }
    }
    return out;
  }

  private async openSegment(base: number): Promise<void> {
    const path = join(this.opts.dir, segmentName(base));
    const spare = this.spares.pop();
    let fileBytes = 0;
    if (spare) {
      this.spareBytes -= spare.bytes;
      // A spare that cannot be taken is left behind; the next start deletes or keeps it.
      if (await rename(spare.path, path).then(() => true, () => false)) fileBytes = spare.bytes;
    }
    // Records are written at their offsets (writeRound), from the first byte of a reused file. A
    // new name holds no segment ('w' empties a spare renamed to it by an attempt that then failed).
    const fh = await open(path, fileBytes > 0 ? 'r+' : 'w');
    let file: Segment['file'];
    try {
      // The name must be durable before records in the file are acknowledged (a spare is never read).
      await syncDir(this.opts.dir);
      const st = await fh.stat();
      file = { dev: st.dev, ino: st.ino };
    } catch (err) {
      await fh.close();
      throw err;
    }
    const seg: Segment = { base, path, size: 0, fileBytes, live: 0, reusable: true, file };
    this.segments.push(seg);
    this.active = seg;
    const old = this.fh;
    this.fh = fh;
    await old?.close();
  }

  /**
   * Appends one accepted request's chunks; resolves with the entry's sequence number once the
   * record is fsynced. Rejects with WalFullError when maxBytes leaves no room now, and with
   * WalEntryTooLargeError when the entry is larger than maxBytes (it never will).
   */
  append(signal: Signal, chunks: readonly EncodedChunk[], tenant: string = DEFAULT_TENANT): Promise<number> {
    const unusable = this.refusesEntries();
    if (unusable) return Promise.reject(unusable);
    const seq = this.nextSeq;
    const parts = encodeEntry(seq, signal, chunks, tenant);
    const bytes = bytesOf(parts);
    if (bytes > this.opts.maxBytes) {
      return Promise.reject(new WalEntryTooLargeError(`write-ahead log entry of ${bytes} bytes is larger than the whole log (${this.opts.maxBytes} bytes, delivery.walMaxBytes)`));
    }
    if (this.usedBytes + bytes > this.opts.maxBytes) {
      this.retryRotation();
      return Promise.reject(new WalFullError(`write-ahead log full: ${this.usedBytes} of ${this.opts.maxBytes} bytes used, entry needs ${bytes}`));
    }
    this.nextSeq++;
    this.counters.appends++;
    this.yieldSpares(bytes);
    return this.enqueue(parts, bytes, true, (seg) => {
      if (chunks.length === 0) return;
      this.entries.set(seq, { seg, remaining: chunks.length });
      seg.live++;
    }).then(() => seq);
  }

  /**
   * Records which chunks (in order) form a write batch, under the batch's id; resolves with the
   * batch's sequence number once fsynced. Send the batch to the store only after that.
   */
  recordBatch(batch: WriteBatch, refs: readonly WalChunkRef[]): Promise<number> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    const seq = this.nextSeq++;
    const parts = encodeBatch(seq, batch, refs);
    const own = refs.map((r) => ({ ...r }));
    return this.enqueue(parts, bytesOf(parts), false, (seg) => {
      this.batches.set(seq, { seg, refs: own });
      seg.live++;
    }).then(() => seq);
  }

  /**
   * Chunks read again from their entries (one reading of each segment for all of them), to write
   * batches the writer gave up on again while running: for each list of refs, its chunks in order,
   * or undefined when one is no longer in the log (its entry stored since).
   */
  async reread(batches: readonly (readonly WalChunkRef[])[]): Promise<(Uint8Array[] | undefined)[]> {
    const wanted = new Set<string>();
    const holding = new Set<Segment>();
    for (const refs of batches) {
      for (const r of refs) {
        const e = this.entries.get(r.entry);
        if (!e) continue;
        wanted.add(chunkKey(r));
        holding.add(e.seg);
      }
    }
    const data = wanted.size === 0 ? new Map<string, Uint8Array>() : await this.readChunks(wanted, holding);
    return batches.map((refs) => {
      const chunks = refs.map((r) => data.get(chunkKey(r)));
      return chunks.every((c) => c !== undefined) ? chunks : undefined;
    });
  }

  /** Whether an append would be taken now as far as the disk goes (a full disk's reserve is tried again, at most once a second). */
  takesEntries(): boolean {
    return this.refusesEntries() === undefined;
  }

  /** Why entries are refused now (not started, stopping, broken, the disk full), trying a full disk's reserve again first; undefined when taken. */
  private refusesEntries(): Error | undefined {
    if (this.diskFull) this.retryReserve();
    return this.unusable() ?? this.diskFull;
  }

  /**
   * Marks a recorded batch stored (or given up on for good, which the caller counts as dropped):
   * once its STORED mark is on disk, its entries' segments can go when nothing else in them is
   * pending. Does not wait for disk.
   */
  markStored(batchSeq: number): void {
    const b = this.batches.get(batchSeq);
    if (!b || this.stopping) return;
    this.batches.delete(batchSeq);
    // Its segments are released only once the STORED mark is on disk (flushLoop): deleted before,
    // a crash would replay the batch without the chunks they held, under a new id.
    this.storedQueue.push({ seq: batchSeq, batch: b });
    this.kick();
  }

  /** A batch's STORED mark is on disk: its own record and its entries no longer hold their segments. */
  private release(b: LiveBatch): void {
    b.seg.live--;
    for (const r of b.refs) {
      const e = this.entries.get(r.entry);
      if (!e) continue;
      if (--e.remaining === 0) {
        this.entries.delete(r.entry);
        e.seg.live--;
      }
    }
  }

  private unusable(): Error | undefined {
    if (!this.active) return new Error('write-ahead log is not started');
    if (this.stopping) return new Error('write-ahead log is shut down');
    return this.broken;
  }

  private enqueue(parts: Uint8Array[], bytes: number, bounded: boolean, register: (seg: Segment) => void): Promise<void> {
    if (bounded) this.usedBytes += bytes;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ parts, bytes, bounded, register, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    this.flushing ??= this.flushLoop().finally(() => {
      this.flushing = undefined;
      // Records queued after the loop's last look start the next one.
      if (this.queue.length > 0 || this.storedQueue.length > 0) this.kick();
    });
  }

  /** Group commit: each round writes everything queued with one writev and one fdatasync. */
  private async flushLoop(): Promise<void> {
    // Let appends made in the same tick join the first round.
    await Promise.resolve();
    while (this.queue.length > 0 || this.storedQueue.length > 0) {
      const round = this.queue;
      this.queue = [];
      if (this.storedQueue.length > 0 || this.unwrittenMarks.length > 0) {
        const marks = [...this.unwrittenMarks, ...this.storedQueue];
        this.unwrittenMarks = [];
        this.storedQueue = [];
        const stored = encodeStored(marks.map((m) => m.seq));
        round.push({
          parts: stored,
          bytes: bytesOf(stored),
          bounded: false,
          register: () => {
            for (const m of marks) this.release(m.batch);
          },
          resolve: () => {},
          reject: () => {
            this.unwrittenMarks.push(...marks);
          },
        });
      }
      try {
        if (this.broken) throw this.broken;
        await this.writeRound(round);
        for (const p of round) p.resolve();
      } catch (err) {
        if (noSpace(err)) await this.releaseReserve(err);
        for (const p of round) {
          if (p.bounded) this.usedBytes -= p.bytes;
          p.reject(err instanceof Error ? err : new Error(String(err)));
        }
      }
      await this.collect().catch((err: unknown) => this.opts.logger?.warn({ err: String(err) }, 'write-ahead log: could not delete a stored segment; will try again'));
    }
  }

  private async writeRound(round: Pending[]): Promise<void> {
    let seg = this.active!;
    let fh = this.fh!;
    let written = await this.writeTo(seg, fh, round);
    if (written === undefined) {
      // What was written there no start would read: the round goes to a new segment at the path.
      await this.replaceLostSegment(seg);
      seg = this.active!;
      fh = this.fh!;
      written = await this.writeTo(seg, fh, round);
      if (written === undefined) throw new Error(`write-ahead log: the new segment ${seg.path} is no longer at its path either`);
    }
    this.counters.fsyncs++;
    this.counters.rounds++;
    seg.size += written;
    seg.fileBytes = Math.max(seg.fileBytes, seg.size);
    for (const p of round) {
      p.register?.(seg);
      if (!p.bounded) this.usedBytes += p.bytes;
    }
    // Rotate right away, not at the next append: a full segment whose rows are all stored can
    // then go at once, even when a full log refuses the appends that would have rotated it.
    if (seg.size >= this.opts.segmentBytes) await this.rotate(seg, fh);
  }

  /**
   * Writes a round's records at the end of a segment and fsyncs them: the bytes written, or
   * undefined when the segment's path no longer names its file (checked beside the fsync).
   */
  private async writeTo(seg: Segment, fh: FileHandle, round: Pending[]): Promise<number | undefined> {
    const seed = baseSeed(seg.base);
    for (const p of round) seal(p.parts, seg.base, seed);
    const parts = round.flatMap((p) => p.parts);
    const before = seg.size;
    let written = 0;
    let here: boolean;
    try {
      // writev takes at most IOV_MAX (1024) buffers per call.
      for (let i = 0; i < parts.length; i += 1024) {
        const slice = parts.slice(i, i + 1024);
        const { bytesWritten } = await fh.writev(slice, before + written);
        written += bytesWritten;
        if (bytesWritten !== bytesOf(slice)) throw Object.assign(new Error(`short write to ${seg.path}: ${bytesWritten} of ${bytesOf(slice)} bytes`), { code: 'ENOSPC' });
      }
      [, here] = await Promise.all([fh.datasync(), this.atItsPath(seg)]);
    } catch (err) {
      // Cut the partial round off so the next round does not follow garbage (and so nothing of a
      // round whose fsync failed is trusted: Linux may have dropped those pages). If even that
      // fails the file can no longer be trusted and every later append is refused.
      try {
        await fh.truncate(before);
        seg.fileBytes = before;
        await fh.datasync();
      } catch (e) {
        this.broken = new WalBrokenError(`write-ahead log cannot write ${seg.path}: ${String(e)}`);
        this.opts.logger?.error({ err: String(e), path: seg.path }, 'write-ahead log broken: refusing appends until restart');
      }
      throw err;
    }
    return here ? written : undefined;
  }

  /**
   * Whether a segment's path still names the file opened for it. A clean-up's `rm -r` of the log's
   * directory (or a `mv` of it) leaves the open file writable with no name: records fsynced into
   * it were acknowledged as durable, and no start would find them. A segment read at start (no
   * file kept) is taken as there, unless `byName`: then its path must name some file.
   */
  private async atItsPath(seg: Segment, byName = false): Promise<boolean> {
    if (!seg.file && !byName) return true;
    let st;
    try {
      st = await stat(seg.path);
    } catch (err) {
      // Only a path that names nothing is known to be gone (not one that cannot be looked at now).
      return !['ENOENT', 'ENOTDIR'].includes(String((err as { code?: unknown }).code));
    }
    return !seg.file || sameFile(st, seg.file);
  }

  /**
   * The active segment's file is no longer at its path: starts a new segment there (making the
   * directory again), so that what is acknowledged from now on is where a start reads it, and says
   * what was lost. Throws when it cannot (the round is refused, and tried again by the next).
   */
  private async replaceLostSegment(seg: Segment): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true });
    // The directory's lock went with it: a second collector could take the directory made again.
    if (this.lock) this.relock();
    // What is at risk: the requests in this file and in older segments gone with it (the whole
    // directory), not those in older segments still at their paths, which a start reads.
    const segs = this.segments;
    const here = await Promise.all(segs.map((s) => s !== seg && this.atItsPath(s, true)));
    const lost = new Set(segs.filter((_, i) => !here[i]));
    let unstoredEntries = 0;
    for (const e of this.entries.values()) if (lost.has(e.seg)) unstoredEntries++;
    await this.openSegment(Math.max(this.nextSeq, seg.base + 1));
    this.opts.logger?.error(
      { dir: this.opts.dir, path: seg.path, unstoredEntries },
      'write-ahead log: its segment file is no longer at its path (deleted or moved, or its directory was); started a new segment there. ' +
        'Accepted requests not yet stored (unstoredEntries) are no longer in any file a start reads: a crash before they are stored loses them',
    );
  }

  /**
   * Starts the next segment after a full one. Names sort after older segments; +1 because a
   * segment of STORED records alone takes no sequence number. A failed rotation leaves the round
   * written; the next round tries again, and so do refused appends (retryRotation): a full log
   * whose rows are all stored has no next round.
   */
  private async rotate(seg: Segment, fh: FileHandle): Promise<void> {
    await this.cutEarlierUse(seg, fh);
    // Each round tries again: at the open-files limit (EMFILE) that is hundreds of failures a
    // second, so the first is logged and the count when a segment starts again.
    await this.openSegment(Math.max(this.nextSeq, seg.base + 1)).then(
      () => {
        const failedAttempts = this.rotateFailures.ended();
        if (failedAttempts > 0) this.opts.logger?.info({ failedAttempts, dir: this.opts.dir }, 'write-ahead log: started a new segment again');
      },
      (err: unknown) => {
        if (this.rotateFailures.failed()) this.opts.logger?.warn({ err: String(err), dir: this.opts.dir }, 'write-ahead log: could not start a new segment; will try again (logged once until one starts)');
      },
    );
  }

  /**
   * A refused append finds the active segment full (its rotation failed, and the log is full so no
   * round comes to try again): starts the next segment now, at most once every RESERVE_RETRY_MS,
   * and deletes what is stored.
   */
  private retryRotation(): void {
    const seg = this.active;
    const fh = this.fh;
    const now = performance.now();
    if (!seg || !fh || seg.size < this.opts.segmentBytes || this.flushing || this.stopping || this.broken || now < this.rotateRetryAt) return;
    this.rotateRetryAt = now + RESERVE_RETRY_MS;
    this.flushing = this.rotate(seg, fh)
      .then(() => this.collect())
      .catch((err: unknown) => this.opts.logger?.warn({ err: String(err), dir: this.opts.dir }, 'write-ahead log: could not delete a stored segment; will try again'))
      .finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0 || this.storedQueue.length > 0) this.kick();
      });
  }

  /**
   * Cuts a reused file's earlier records off past a segment no longer written to: a start cannot
   * tell a piece of one (where the new records end inside it) from damage, and would count it as
   * corrupt, or as a torn tail in the last segment. A failure leaves only that misreport.
   */
  private async cutEarlierUse(seg: Segment, fh: FileHandle): Promise<void> {
    if (seg.fileBytes <= seg.size) return;
    try {
      await fh.truncate(seg.size);
      await fh.datasync();
      seg.fileBytes = seg.size;
    } catch (err) {
      this.opts.logger?.warn({ err: String(err), path: seg.path }, 'write-ahead log: could not cut the earlier records of a reused segment file');
    }
  }

  /**
   * Deletes stored segments from the oldest on, or keeps their files as spares; never the active
   * one. Space freed on a full disk takes entries again once the reserve is back.
   */
  private async collect(): Promise<void> {
    let freed = false;
    while (this.segments.length > 1 && this.segments[0] !== this.active && this.segments[0]!.live === 0) {
      const seg = this.segments[0]!;
      this.segments.shift();
      this.usedBytes -= seg.size;
      if (!seg.reusable || this.diskFull || !(await this.keepSpare(seg.path, seg.fileBytes))) {
        await rm(seg.path, { force: true });
        freed = true;
      }
    }
    if (freed && this.diskFull && (await this.writeReserve())) this.spaceIsBack();
  }

  /**
   * Keeps a stored segment's file for reuse when fewer than MAX_SPARES are kept and the log's
   * files and the spares fit in maxBytes; false when not kept (the caller deletes it).
   */
  private async keepSpare(path: string, bytes: number): Promise<boolean> {
    const isSpare = SPARE_NAME.test(basename(path));
    if (this.spares.length >= MAX_SPARES || this.usedBytes + this.spareBytes + bytes > this.opts.maxBytes) {
      if (isSpare) await rm(path, { force: true });
      return false;
    }
    const to = isSpare ? path : join(this.opts.dir, `spare-${this.spareCount++}`);
    if (!isSpare && !(await rename(path, to).then(() => true, () => false))) return false;
    this.spares.push({ path: to, bytes });
    this.spareBytes += bytes;
    return true;
  }

  /** Deletes spares until the log's files, its queue, `bytes` more and the spares fit in maxBytes (all of them for Infinity). */
  private yieldSpares(bytes: number): void {
    while (this.spares.length > 0 && this.usedBytes + this.spareBytes + bytes > this.opts.maxBytes) {
      const s = this.spares.shift()!;
      this.spareBytes -= s.bytes;
      this.removingSpares = this.removingSpares.then(() => rm(s.path, { force: true })).catch((err: unknown) => this.opts.logger?.warn({ err: String(err), path: s.path }, 'write-ahead log: could not delete a spare file'));
    }
  }

  /** Writes the reserve file whole; false (and no file) when the disk has no room for it. */
  private async writeReserve(): Promise<boolean> {
    const path = join(this.opts.dir, RESERVE_NAME);
    const size = reserveBytes(this.opts.maxBytes);
    try {
      const fh = await open(path, 'w');
      try {
        const { bytesWritten } = await fh.write(Buffer.alloc(size));
        if (bytesWritten !== size) throw new Error('short write');
        await fh.datasync();
      } finally {
        await fh.close();
      }
      return true;
    } catch {
      await rm(path, { force: true }).catch(() => undefined);
      return false;
    }
  }

  /**
   * Space can come back without a segment of the log deleted (another file on the volume shrank,
   * or the log is its active segment alone): refused appends try the reserve again, at most once
   * every RESERVE_RETRY_MS, and the first that finds it written takes entries again.
   */
  private retryReserve(): void {
    const now = performance.now();
    if (now < this.reserveRetryAt || this.stopping) return;
    this.reserveRetryAt = now + RESERVE_RETRY_MS;
    void this.writeReserve().then((ok) => {
      if (ok) this.spaceIsBack();
    });
  }

  /** The reserve is written again: entries are taken again. */
  private spaceIsBack(): void {
    if (!this.diskFull) return;
    this.diskFull = undefined;
    this.opts.logger?.info({ dir: this.opts.dir }, 'write-ahead log: disk space is back; taking entries again');
  }

  /** The disk is full: entries are refused until space returns, and the reserve's room goes to control records. */
  private async releaseReserve(err: unknown): Promise<void> {
    if (this.diskFull) return;
    // No retryReserve() until this one has deleted the reserve.
    this.reserveRetryAt = Infinity;
    this.diskFull = new Error(`write-ahead log disk full (${err instanceof Error ? err.message : String(err)}); refusing new requests until the disk has room again`);
    // A full disk needs the spares' room.
    this.yieldSpares(Infinity);
    await this.removingSpares;
    await rm(join(this.opts.dir, RESERVE_NAME), { force: true }).catch(() => undefined);
    this.reserveRetryAt = performance.now() + RESERVE_RETRY_MS;
    this.opts.logger?.warn({ dir: this.opts.dir }, 'write-ahead log: disk full; released its reserve for batch records and refusing new requests until the disk has room again');
  }

  /** Resolves once everything queued (STORED marks included) is on disk and stored segments are deleted. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.removingSpares;
  }

  /** Takes the directory's lock (an SQLite file's exclusive lock, kept: locking_mode = EXCLUSIVE), or throws naming the directory. */
  private lockDir(dir: string): void {
    const db = new DatabaseSync(join(dir, 'lock'));
    try {
      db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT');
    } catch (err) {
      db.close();
      // Only a lock held elsewhere (SQLITE_BUSY, SQLITE_LOCKED) is another process: a full disk,
      // say, fails here too, and sent the operator looking for a second collector.
      if (!LOCK_HELD.has((err as { errcode?: number }).errcode! & 0xff)) throw new Error(`write-ahead log directory ${dir}: cannot create its lock file: ${(err as Error).message}`, { cause: err });
      throw new Error(`write-ahead log directory ${dir} is in use by another process (${(err as Error).message}): one collector per directory; set delivery.walDir`);
    }
    this.lock = db;
    this.lockFile = fileId(join(dir, 'lock'));
  }

  /**
   * Takes the directory's lock again when its lock file was deleted or moved with it, letting go
   * of the old one once held; logs when it cannot. A lock file still at its path is still held: a
   * second lock on it is refused (SQLite's locks are the process's), which logged a failure to
   * lock when only the segment file had gone.
   */
  private relock(): void {
    const old = this.lock;
    const now = fileId(join(this.opts.dir, 'lock'));
    if (now && this.lockFile && sameFile(now, this.lockFile)) return;
    try {
      this.lockDir(this.opts.dir);
      old?.close();
    } catch (err) {
      this.lock = old;
      this.opts.logger?.error({ err: (err as Error).message, dir: this.opts.dir }, 'write-ahead log: could not take the lock of its directory again');
    }
  }

  /** Writes what is queued, fsyncs and closes; idempotent and safe before start. */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      await this.flush();
      if (this.active && this.fh && !this.broken) await this.cutEarlierUse(this.active, this.fh);
      await this.fh?.close();
      this.fh = undefined;
      this.lock?.close();
      this.lock = undefined;
    })();
    return this.stopping;
  }
}
