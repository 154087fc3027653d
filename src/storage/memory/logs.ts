// The memory store's log records: kept as columns of the block of the chunk they came in, as
// spans are (blocks.ts), with no object per record. A store holding a million records kept a
// million objects for the garbage collector to mark before this.
import type { SlicingBuffer } from '../../pipeline/decode/wire.ts';
import type { LogFacts } from '../query-helpers.ts';
import { logSeverity, logTime, logTraceId } from '../otlp-chunks.ts';
import { BlockQueue, BlockRefs, ChunkBlock, RowColumns, RowView } from './blocks.ts';

/** A log record's column besides its offsets: its service's place in its block's services. */
const SERVICE = 2;
const LOG_STRIDE = 3;

/** The log records kept from one chunk of one write batch, as columns. */
export class LogBlock extends ChunkBlock {
  /** The write batch it came in: a batch written again (a retry, an import run twice) is recognized. */
  readonly batchId: string;
  /** The services of its records (the strings are their groups'). */
  readonly services: string[];
  constructor(buf: SlicingBuffer, tenant: string, batchId: string, seq0: number, storedMs: number, bytes: number, rows: LogBlockRows) {
    super(buf, tenant, seq0, storedMs, bytes, rows);
    this.batchId = batchId;
    this.services = rows.services.take();
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
}

/** The stored log records, oldest first. */
export class LogRows extends BlockQueue<LogBlock, LogView> {
  constructor() {
    super((b, i) => new LogView(b, i));
  }
}
