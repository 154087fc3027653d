// The memory store's log records: kept as columns of the block of the chunk they came in, as
// spans are (blocks.ts), with no object per record. A store holding a million records kept a
// million objects for the garbage collector to mark before this.
import type { SlicingBuffer } from '../../pipeline/decode/wire.ts';
import type { LogFacts } from '../query-helpers.ts';
import { L_LEN, logSeverity, logTime, logTraceId, readLogChunk } from '../otlp-chunks.ts';
import { BlockQueue, BlockRefs, ChunkBlock, RowColumns, RowView } from './blocks.ts';

/** A log record's column besides its offsets: its service's place in its block's services. */
const SERVICE = 2;
const LOG_STRIDE = 3;

/** Told of a block whose chunk turned out malformed when first read: why, and how many of its records no read will return. */
export type UnreadableReport = (block: LogBlock, err: Error, lost: number) => void;

/**
 * The log records kept from one chunk of one write batch, as columns. A chunk that carries its
 * record count is kept without a walk over its records (n alone): nothing in ingest or eviction
 * needs a record's offset, and the walk was the main thread's largest cost under max-rate logs
 * (a cache miss on each record the worker wrote); the first read makes the columns.
 */
export class LogBlock extends ChunkBlock {
  /** The write batch it came in: a batch written again (a retry, an import run twice) is recognized. */
  readonly batchId: string;
  private names: string[] | undefined;
  private readonly unreadable: UnreadableReport;
  constructor(buf: SlicingBuffer, tenant: string, batchId: string, seq0: number, storedMs: number, bytes: number, rows: LogBlockRows | number, unreadable: UnreadableReport) {
    super(buf, tenant, seq0, storedMs, bytes, typeof rows === 'number' ? { stride: LOG_STRIDE, n: rows } : rows);
    this.batchId = batchId;
    this.unreadable = unreadable;
    if (typeof rows !== 'number') this.names = rows.services.take();
  }
  /** The services of its records (the strings are their groups'). */
  get services(): string[] {
    if (this.names === undefined) void this.cols;
    return this.names!;
  }
  /**
   * Its columns, from a walk over its chunk (which checks the records against the chunk's count).
   * A chunk that turns out malformed (no producer makes one: the transcoder writes the count, the
   * write-ahead log is checksummed) keeps the records read before the fault, up to its count; the
   * rest are reported once, here, and left out of every read (readable), so that one bad chunk
   * does not fail every read that reaches it until it is evicted.
   */
  protected override fill(): Int32Array {
    const rows = new LogBlockRows();
    try {
      readLogChunk(this.buf, (group, _buf, record) => rows.add(group.at, record, group.service));
    } catch (err) {
      const read = rows.n;
      rows.n = Math.min(read, this.n);
      this.unreadable(this, err as Error, Math.max(read, this.n) - rows.n);
    }
    this.names = rows.services.take();
    return rows.taken();
  }
}

/** The records of the chunk being stored, gathered before its block is made (one, reused). */
export class LogBlockRows extends RowColumns {
  readonly services = new BlockRefs<string>();
  constructor() {
    super(LOG_STRIDE);
  }
  add(group: number, record: number, service: string): void {
    const at = this.addRow(group, record);
    this.cols[at + SERVICE] = this.services.ref(service);
  }
  clear(): void {
    this.n = 0;
    this.services.clear();
  }
}

/** One stored log record, read from its block on demand (made by reads, never kept); its facts come from its record's header. */
export class LogView extends RowView<LogBlock> implements LogFacts {
  get serviceName(): string {
    const b = this.block;
    return b.services[b.cols[this.i * LOG_STRIDE + SERVICE]!]!;
  }
  get time(): bigint {
    return logTime(this.block.buf, this.record);
  }
  get traceId(): string {
    return logTraceId(this.block.buf, this.record);
  }
  get severityNumber(): number {
    return logSeverity(this.block.buf, this.record);
  }
  /** Its bytes read as a row (LogQuery.maxBytes, ScanQuery.maxBytes): its record's and its group's. */
  get bytes(): number {
    return this.block.buf.readUInt32LE(this.record + L_LEN) + this.groupBytes;
  }
}

/** The stored log records, oldest first. */
export class LogRows extends BlockQueue<LogBlock, LogView> {
  constructor() {
    super((b, i) => new LogView(b, i));
  }
}
