// The memory store's spans: kept as columns of the block of the chunk they came in, with no
// object per span (see index.ts and blocks.ts). Traces list their spans by insertion number; reads make a
// short-lived view (SpanView) of each span they touch.
import type { Operation } from '../backend.ts';
import type { SlicingBuffer } from '../../pipeline/decode/wire.ts';
import type { SpanFacts } from '../query-helpers.ts';
import { spanEnd, spanId, spanParentId, spanStart, spanStatus } from '../otlp-chunks.ts';
import { BlockQueue, ChunkBlock, RowOffsets, RowView } from './blocks.ts';

/**
 * The spans kept from one chunk, as columns: record offsets in typed arrays, and the trace and
 * operation each belongs to (objects shared by many spans). No object per span: the garbage
 * collector marks a block, not a million rows (measured against an object per span, gRPC → memory
 * at the maximum rate, 3 interleaved pairs: V8's helper threads 1.96–2.13 CPU-s a run against
 * 2.27–2.32, 8.28–9.57 CPU-s per million spans against 9.27–9.56).
 */
export class SpanBlock extends ChunkBlock {
  readonly traces: TraceEntry[];
  readonly ops: OpCount[];
  constructor(buf: SlicingBuffer, tenant: string, seq0: number, storedMs: number, bytes: number, rows: BlockRows) {
    super(buf, tenant, seq0, storedMs, bytes, rows);
    this.traces = rows.traces.slice(0, rows.n);
    this.ops = rows.ops.slice(0, rows.n);
  }
}

/** The spans of the chunk being stored, gathered before its block is made (one, reused). */
export class BlockRows extends RowOffsets {
  traces: TraceEntry[] = [];
  ops: OpCount[] = [];
  add(group: number, record: number, trace: TraceEntry, op: OpCount): void {
    this.traces[this.n] = trace;
    this.ops[this.n] = op;
    this.addOffsets(group, record);
  }
  clear(): void {
    this.n = 0;
    this.traces.length = 0;
    this.ops.length = 0;
  }
}

/** One stored span, read from its block on demand (made by reads, never kept). */
export class SpanView extends RowView<SpanBlock> implements SpanFacts {
  get traceId(): string {
    return this.block.traces[this.i]!.id;
  }
  get spanId(): string {
    return spanId(this.block.buf, this.record);
  }
  get parentSpanId(): string {
    return spanParentId(this.block.buf, this.record);
  }
  get serviceName(): string {
    return this.block.ops[this.i]!.service;
  }
  get name(): string {
    return this.block.ops[this.i]!.op.name;
  }
  get kind(): number {
    return this.block.ops[this.i]!.op.kind;
  }
  get startTimeUnixNano(): bigint {
    return spanStart(this.block.buf, this.record);
  }
  get endTimeUnixNano(): bigint {
    return spanEnd(this.block.buf, this.record);
  }
  get durationNano(): bigint {
    const start = this.startTimeUnixNano;
    const end = this.endTimeUnixNano;
    return end > start ? end - start : 0n;
  }
  get statusCode(): number {
    return spanStatus(this.block.buf, this.record);
  }
}

/** The spans of one trace: insertion numbers, in order, and their span ids as two int32 words each; the ids as set keys too once there are enough to want a set. */
export interface TraceEntry {
  id: string;
  seqs: number[];
  id0: number[];
  id1: number[];
  ids: Set<string> | undefined;
}

/** Spans a trace may have before its ids are kept in a set (below it, a scan is cheaper than the set). */
export const IDS_SET_FROM = 32;

/** Live span count of one operation of a service: listings stay exact as spans are evicted. */
export interface OpCount {
  service: string;
  op: Operation;
  spans: number;
}

/** The stored spans, oldest first. */
export class SpanRows extends BlockQueue<SpanBlock, SpanView> {
  constructor() {
    super((b, i) => new SpanView(b, i));
  }
}

/** A span id's two int32 words as a set key. */
export function idKey(id0: number, id1: number): string {
  return id0 + ',' + id1;
}

/** Whether a trace already holds a span with this id (its two int32 words). */
export function hasSpan(t: TraceEntry, id0: number, id1: number): boolean {
  if (t.ids !== undefined) return t.ids.has(idKey(id0, id1));
  for (let k = 0; k < t.id0.length; k++) if (t.id0[k] === id0 && t.id1[k] === id1) return true;
  return false;
}
