// The memory store's log records: kept as columns of the block of the chunk they came in, as
// spans are (blocks.ts), with no object per record. A store holding a million records kept a
// million objects for the garbage collector to mark before this.
import type { SlicingBuffer } from '../../pipeline/decode/wire.ts';
import type { LogFacts } from '../query-helpers.ts';
import { logSeverity, logTime, logTraceId } from '../otlp-chunks.ts';
import { BlockQueue, ChunkBlock, RowOffsets, RowView } from './blocks.ts';

/** The log records kept from one chunk of one write batch, as columns. */
export class LogBlock extends ChunkBlock {
  /** The write batch it came in: a batch written again (a retry, an import run twice) is recognized. */
  readonly batchId: string;
  /** Each record's service (the strings are its groups'). */
  readonly services: string[];
  constructor(buf: SlicingBuffer, tenant: string, batchId: string, seq0: number, storedMs: number, bytes: number, rows: LogBlockRows) {
    super(buf, tenant, seq0, storedMs, bytes, rows);
    this.batchId = batchId;
    this.services = rows.services.slice(0, rows.n);
  }
}

/** The records of the chunk being stored, gathered before its block is made (one, reused). */
export class LogBlockRows extends RowOffsets {
  services: string[] = [];
  add(group: number, record: number, service: string): void {
    this.services[this.n] = service;
    this.addOffsets(group, record);
  }
  clear(): void {
    this.n = 0;
    this.services.length = 0;
  }
}

/** One stored log record, read from its block on demand (made by reads, never kept); its facts come from its record's header. */
export class LogView extends RowView<LogBlock> implements LogFacts {
  get serviceName(): string {
    return this.block.services[this.i]!;
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
