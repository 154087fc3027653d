// What the memory store's spans and log records share: rows kept as columns of the block of the
// chunk they came in (no object per row: the garbage collector marks a block, not a million rows),
// numbered in insertion order without gaps, evicted oldest first, and read through short-lived
// views made on demand.
import type { SlicingBuffer } from '../../pipeline/decode/wire.ts';
import { Queue } from './queue.ts';

/**
 * The rows kept from one chunk, as columns: the chunk, its batch's tenant, the rows' insertion
 * numbers (from seq0 on), when they were stored, what each counts against maxBytes, and each
 * row's group and record offsets in the chunk. Each kind of row adds its own columns.
 */
export class ChunkBlock {
  readonly buf: SlicingBuffer;
  readonly tenant: string;
  /** Insertion number of its first row; its rows are numbered on from there. */
  readonly seq0: number;
  /** When stored, in ms since the store was made (for eviction by age). */
  readonly storedMs: number;
  /** What each of its rows counts against storage.memory.maxBytes. */
  readonly bytes: number;
  /** Offsets of each row's group record and own record in buf. */
  readonly group: Int32Array;
  readonly record: Int32Array;
  constructor(buf: SlicingBuffer, tenant: string, seq0: number, storedMs: number, bytes: number, rows: RowOffsets) {
    this.buf = buf;
    this.tenant = tenant;
    this.seq0 = seq0;
    this.storedMs = storedMs;
    this.bytes = bytes;
    this.group = rows.group.slice(0, rows.n);
    this.record = rows.record.slice(0, rows.n);
  }
  get n(): number {
    return this.record.length;
  }
}

/** One stored row, read from its block on demand (made by reads, never kept). */
export class RowView<B extends ChunkBlock> {
  readonly block: B;
  readonly i: number;
  constructor(block: B, i: number) {
    this.block = block;
    this.i = i;
  }
  /** Its insertion number: keeps newest-first stable among equal times, and is the scan cursor. */
  get seq(): number {
    return this.block.seq0 + this.i;
  }
  get tenant(): string {
    return this.block.tenant;
  }
  get buf(): SlicingBuffer {
    return this.block.buf;
  }
  /** Offset of its own record in buf. */
  get record(): number {
    return this.block.record[this.i]!;
  }
  /** Offset of its group's record (resource and scope) in buf. */
  get group(): number {
    return this.block.group[this.i]!;
  }
}

/** What a scan reads of stored rows: the oldest, the newest, and those after an insertion number. */
export interface RowsInOrder<E> {
  peek(): E | undefined;
  newest(): E | undefined;
  after(seq: number): Iterable<E>;
}

/** The record offsets of the rows of the chunk being stored, gathered before its block is made (one per kind of row, reused). */
export class RowOffsets {
  group = new Int32Array(1024);
  record = new Int32Array(1024);
  n = 0;

  /** Adds a row's group and record offsets; the caller has set its own columns at index n first. */
  protected addOffsets(group: number, record: number): void {
    if (this.n === this.record.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.group = grow(this.group);
      this.record = grow(this.record);
    }
    this.group[this.n] = group;
    this.record[this.n] = record;
    this.n++;
  }
}

/** Stored rows, oldest first: blocks in insertion order, the oldest partly evicted; V is a row's view. */
export class BlockQueue<B extends ChunkBlock, V> implements RowsInOrder<V> {
  private readonly blocks = new Queue<B>();
  /** The first live row of the oldest block. */
  private headRow = 0;
  length = 0;
  bytes = 0;
  private readonly view: (b: B, i: number) => V;

  constructor(view: (b: B, i: number) => V) {
    this.view = view;
  }

  push(b: B): void {
    this.blocks.push(b);
    this.length += b.n;
    this.bytes += b.n * b.bytes;
  }

  /** The block of the oldest row (undefined when empty); the row is its oldestIndex-th. */
  oldest(): B | undefined {
    return this.blocks.first();
  }
  get oldestIndex(): number {
    return this.headRow;
  }

  /** Drops the oldest row. */
  shift(): void {
    const b = this.blocks.first()!;
    this.length--;
    this.bytes -= b.bytes;
    if (++this.headRow < b.n) return;
    this.blocks.shift();
    this.headRow = 0;
  }

  /** Position in blocks of the block holding the row numbered seq (a live one). */
  private blockOf(seq: number): number {
    return this.blocks.search((b) => b.seq0 + b.n <= seq);
  }

  /** The row numbered seq (a live one). */
  at(seq: number): V {
    const b = this.blocks.at(this.blockOf(seq))!;
    return this.view(b, seq - b.seq0);
  }

  peek(): V | undefined {
    return this.length > 0 ? this.view(this.blocks.first()!, this.headRow) : undefined;
  }

  newest(): V | undefined {
    const b = this.length > 0 ? this.blocks.last() : undefined;
    return b && this.view(b, b.n - 1);
  }

  *[Symbol.iterator](): Generator<V> {
    yield* this.after(-1);
  }

  /** Rows inserted after the one numbered `seq`, oldest first (rows are numbered without gaps). */
  *after(seq: number): Generator<V> {
    const first = this.blocks.first();
    if (this.length === 0 || !first) return;
    const start = Math.max(seq + 1, first.seq0 + this.headRow);
    for (const b of this.blocks.from(this.blockOf(start))) {
      for (let i = Math.max(0, start - b.seq0); i < b.n; i++) yield this.view(b, i);
    }
  }
}
