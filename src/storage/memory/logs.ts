// The memory store's log records: kept as columns of the block of the chunk they came in, as
// spans are (blocks.ts), with no object per record. A store holding a million records kept a
// million objects for the garbage collector to mark before this.
import type { SlicingBuffer } from '../../pipeline/decode/wire.ts';
import type { LogFacts } from '../query-helpers.ts';
import { logSeverity, logTime, logTraceId } from '../otlp-chunks.ts';
import { BlockQueue, type ChunkBlock, RowOffsets, RowView } from './blocks.ts';

/** The log records kept from one chunk of one write batch, as columns. */
export class LogBlock implements ChunkBlock {
  readonly buf: SlicingBuffer;
  readonly tenant: string;
  /** The write batch it came in: a batch written again (a retry, an import run twice) is recognized. */
  readonly batchId: string;
  /** Insertion number of its first record; its records are numbered on from there. */
  readonly seq0: number;
  /** When stored, in ms since the store was made (for eviction by age). */
  readonly storedMs: number;
  /** What each of its records counts against storage.memory.maxBytes. */
  readonly bytes: number;
  /** Offsets of each record's group record and own record in buf. */
  readonly group: Int32Array;
  readonly record: Int32Array;
  /** Each record's service (the strings are its groups'). */
  readonly services: string[];
  constructor(buf: SlicingBuffer, tenant: string, batchId: string, seq0: number, storedMs: number, bytes: number, rows: LogBlockRows) {
    this.buf = buf;
    this.tenant = tenant;
    this.batchId = batchId;
    this.seq0 = seq0;
    this.storedMs = storedMs;
    this.bytes = bytes;
    this.group = rows.group.slice(0, rows.n);
    this.record = rows.record.slice(0, rows.n);
    this.services = rows.services.slice(0, rows.n);
  }
  get n(): number {
    return this.record.length;
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
