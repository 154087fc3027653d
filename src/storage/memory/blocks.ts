// What the memory store's spans and log records share: rows kept as columns of the block of the
// chunk they came in (no object per row: the garbage collector marks a block, not a million rows),
// numbered in insertion order without gaps, evicted oldest first, and read through short-lived
// views made on demand.
import type { SlicingBuffer } from '../../pipeline/decode/wire.ts';
import { groupPartsBytes } from '../otlp-chunks.ts';
import { Queue } from './queue.ts';

/**
 * The rows kept from one chunk, as columns: the chunk, its batch's tenant, the rows' insertion
 * numbers (from seq0 on), when they were stored, what each counts against maxBytes, and each
 * row's integer columns, row after row in one typed array (`stride` a row): its group's record
 * offset (GROUP) and its own (RECORD) in buf first, then each kind of row's own. A row refers to
 * objects (its trace, its service) by their place in a list of the block's: the garbage collector
 * marks a few objects a block and one typed array, not a pointer per row.
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
  readonly stride: number;
  readonly n: number;
  private columns: Int32Array | undefined;
  /** Made of the rows gathered (rows), or of the chunk's record count alone (n): its columns are then made when first read (fill()). */
  constructor(buf: SlicingBuffer, tenant: string, seq0: number, storedMs: number, bytes: number, rows: RowColumns | { stride: number; n: number }) {
    this.buf = buf;
    this.tenant = tenant;
    this.seq0 = seq0;
    this.storedMs = storedMs;
    this.bytes = bytes;
    this.stride = rows.stride;
    this.n = rows.n;
    if (rows instanceof RowColumns) this.columns = rows.taken();
  }
  /** Its rows' columns, `stride` a row. */
  get cols(): Int32Array {
    return this.columns ?? (this.columns = this.fill());
  }
  /** How many of its rows reads return: all n, unless its chunk turned out malformed when its columns were made (logs.ts). */
  get readable(): number {
    return this.cols.length / this.stride;
  }
  /** The columns of a block made without them, from its chunk. */
  protected fill(): Int32Array {
    throw new Error('a block made without its columns cannot make them');
  }
}

/** Columns every row has: its group's record offset and its own, in its block's buf. */
export const GROUP = 0;
export const RECORD = 1;

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
    return this.block.cols[this.i * this.block.stride + RECORD]!;
  }
  /** Offset of its group's record (resource and scope) in buf. */
  get group(): number {
    return this.block.cols[this.i * this.block.stride + GROUP]!;
  }
  /**
   * Its group's resource and scope bytes, which each row read holds a copy of: a byte bound on
   * rows read counts them with the row's own (spans or log records of a large resource are small
   * records but large rows).
   */
  get groupBytes(): number {
    return groupPartsBytes(this.block.buf, this.group);
  }
}

/** What a scan reads of stored rows: the oldest, the newest, and those after an insertion number. */
export interface RowsInOrder<E> {
  peek(): E | undefined;
  newest(): E | undefined;
  after(seq: number): Iterable<E>;
}

/** Rows past which the columns a chunk was gathered in are not kept for the next chunk (a large request's would stay for good). */
const SHRINK_ABOVE_ROWS = 1 << 16;

/** The columns of the rows of the chunk being stored, gathered before its block is made (one per kind of row, reused). */
export class RowColumns {
  readonly stride: number;
  cols: Int32Array;
  n = 0;

  constructor(stride: number) {
    this.stride = stride;
    this.cols = new Int32Array(1024 * stride);
  }

  /** Adds a row with its group and record offsets; returns where its columns start, for the caller to set its own (at + its column). */
  protected addRow(group: number, record: number): number {
    const at = this.n * this.stride;
    if (at + this.stride > this.cols.length) {
      const cols = new Int32Array(this.cols.length * 2);
      cols.set(this.cols);
      this.cols = cols;
    }
    this.cols[at + GROUP] = group;
    this.cols[at + RECORD] = record;
    this.n++;
    return at;
  }

  /** A copy of the rows' columns, for the block made of them; columns grown past SHRINK_ABOVE_ROWS by a large chunk are let go. */
  taken(): Int32Array {
    const cols = this.cols.slice(0, this.n * this.stride);
    if (this.cols.length > SHRINK_ABOVE_ROWS * this.stride) this.cols = new Int32Array(1024 * this.stride);
    return cols;
  }
}

/**
 * The distinct objects the rows of the block being built refer to, each numbered by its first use
 * (ref()): a row keeps the number, the block the list (take()).
 */
abstract class BlockList<T> {
  protected items: T[] = [];

  /** The object's number in the list, added to it on first use. */
  abstract ref(item: T): number;

  /** Starts a new list (the block being built was made, or dropped). */
  abstract clear(): void;

  /** The list, for the block made of the rows; the next block starts a new one. */
  take(): T[] {
    const items = this.items;
    this.clear();
    return items;
  }
}

/** An object rows refer to by its place in their block's list: the place it got in the block being built last, and which build that was (set by StampedRefs). */
export interface Stamped {
  build: number;
  place: number;
}

/** Builds of blocks, numbered across every StampedRefs, so that a stamp is never mistaken for another list's. */
let builds = 0;

/** A BlockList of the store's own objects, which carry a stamp: the object says whether it is in the list being built, and where, without a map lookup. */
export class StampedRefs<T extends Stamped> extends BlockList<T> {
  private build = ++builds;

  ref(item: T): number {
    if (item.build !== this.build) {
      item.build = this.build;
      item.place = this.items.length;
      this.items.push(item);
    }
    return item.place;
  }

  clear(): void {
    this.items = [];
    this.build = ++builds;
  }
}

/** A BlockList of any values (log records' service names), found through a map; consecutive rows mostly refer to the same one, which is tried first. */
export class BlockRefs<T> extends BlockList<T> {
  private readonly index = new Map<T, number>();
  private last: T | undefined;
  private lastAt = -1;

  ref(item: T): number {
    if (item === this.last) return this.lastAt;
    let at = this.index.get(item);
    if (at === undefined) {
      at = this.items.length;
      this.items.push(item);
      this.index.set(item, at);
    }
    this.last = item;
    this.lastAt = at;
    return at;
  }

  clear(): void {
    this.items = [];
    this.index.clear();
    this.last = undefined;
    this.lastAt = -1;
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
    this.shiftRows(1);
  }

  /** Drops the oldest n rows, all of the oldest block's (n at most the rows it has left). */
  shiftRows(n: number): void {
    const b = this.blocks.first()!;
    this.length -= n;
    this.bytes -= n * b.bytes;
    this.headRow += n;
    if (this.headRow < b.n) return;
    this.blocks.shift();
    this.headRow = 0;
  }

  /** Insertion number of the oldest row (every row numbered below it is evicted); meaningless when empty. */
  get oldestSeq(): number {
    return this.blocks.first()!.seq0 + this.headRow;
  }

  /** Position in blocks of the block holding the row numbered seq (a live one). */
  private blockOf(seq: number): number {
    return this.blocks.search((b) => b.seq0 + b.n <= seq);
  }

  /** The block holding the row numbered seq (a live one). */
  blockAt(seq: number): B {
    return this.blocks.at(this.blockOf(seq))!;
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
      const end = b.readable;
      for (let i = Math.max(0, start - b.seq0); i < end; i++) yield this.view(b, i);
    }
  }
}
