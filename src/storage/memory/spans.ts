// The memory store's spans: kept as integer columns of the block of the chunk they came in, with
// no object per span (see index.ts and blocks.ts). A trace names its newest span, and each span the
// one of its trace stored before it; reads make a short-lived view (SpanView) of each span they touch.
import type { Operation } from '../backend.ts';
import type { SlicingBuffer } from '../../pipeline/decode/wire.ts';
import type { SpanFacts } from '../query-helpers.ts';
import type { IdSet } from '../id-set.ts';
import { SPAN_HEAD_BYTES, spanEnd, spanId, spanParentId, spanRecordEnd, spanStart, spanStatus, spanTraceId } from '../otlp-chunks.ts';
import { BlockQueue, ChunkBlock, RowColumns, RowView, type Stamped, StampedRefs } from './blocks.ts';

/**
 * A span's columns besides its offsets (blocks.ts): how many insertion numbers back the span of its
 * trace stored before it lies (0: none), its span id's two int32 words, and the places of its trace
 * and operation in its block's lists. The distance, not the number itself: insertion numbers pass
 * 2^31 in a store that runs long (hours at the maximum rate), and a distance to a live span is below
 * storage.memory.maxSpans plus one write.
 */
export const PREV = 2;
export const ID0 = 3;
export const ID1 = 4;
const TRACE = 5;
const OP = 6;
export const SPAN_STRIDE = 7;

/**
 * The spans kept from one chunk, as columns, and the traces and operations they belong to
 * (objects shared by many spans). No object per span, and no pointer per span either: the garbage
 * collector marks a block's lists and one typed array (measured against an object per span, gRPC →
 * memory at the maximum rate, 3 interleaved pairs: V8's helper threads 1.96–2.13 CPU-s a run
 * against 2.27–2.32, 8.28–9.57 CPU-s per million spans against 9.27–9.56; against a pointer per
 * span and a list of spans per trace: docs/performance.md, phase I).
 */
export class SpanBlock extends ChunkBlock {
  readonly traces: TraceEntry[];
  readonly ops: OpCount[];
  constructor(buf: SlicingBuffer, tenant: string, seq0: number, storedMs: number, bytes: number, rows: BlockRows) {
    super(buf, tenant, seq0, storedMs, bytes, rows);
    this.traces = rows.traces.take();
    this.ops = rows.ops.take();
  }
  trace(i: number): TraceEntry {
    return this.traces[this.cols[i * SPAN_STRIDE + TRACE]!]!;
  }
  op(i: number): OpCount {
    return this.ops[this.cols[i * SPAN_STRIDE + OP]!]!;
  }
}

/** The spans of the chunk being stored, gathered before its block is made (one, reused). */
export class BlockRows extends RowColumns {
  readonly traces = new StampedRefs<TraceEntry>();
  readonly ops = new StampedRefs<OpCount>();
  constructor() {
    super(SPAN_STRIDE);
  }
  /** Adds a span of trace t numbered seq: it becomes the trace's newest. */
  add(group: number, record: number, seq: number, t: TraceEntry, id0: number, id1: number, op: OpCount): void {
    const at = this.addRow(group, record);
    const cols = this.cols;
    cols[at + PREV] = t.newest < 0 ? 0 : seq - t.newest;
    cols[at + ID0] = id0;
    cols[at + ID1] = id1;
    cols[at + TRACE] = this.traces.ref(t);
    cols[at + OP] = this.ops.ref(op);
    t.newest = seq;
    t.count++;
    t.idBits |= idBit(id0, id1);
  }
  clear(): void {
    this.n = 0;
    this.traces.clear();
    this.ops.clear();
  }
}

/** One stored span, read from its block on demand (made by reads, never kept). */
export class SpanView extends RowView<SpanBlock> implements SpanFacts {
  /** Its bytes read as a row (ScanQuery.maxBytes, readTrace's): its record's and its group's. */
  get bytes(): number {
    return spanRecordEnd(this.block.buf, this.record) - this.record - SPAN_HEAD_BYTES + this.groupBytes;
  }
  get traceId(): string {
    return spanTraceId(this.block.buf, this.record);
  }
  get spanId(): string {
    return spanId(this.block.buf, this.record);
  }
  get parentSpanId(): string {
    return spanParentId(this.block.buf, this.record);
  }
  get serviceName(): string {
    return this.block.op(this.i).service;
  }
  get name(): string {
    return this.block.op(this.i).op.name;
  }
  get kind(): number {
    return this.block.op(this.i).op.kind;
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

/**
 * The spans of one trace: the insertion number of its newest, from which each span's PREV leads to
 * the one stored before it (a chain that ends at -1 or at an evicted span: eviction goes oldest
 * first), how many are live, and their span ids as set keys once there are enough to want a set.
 */
export interface TraceEntry extends Stamped {
  /** Its place in its tenant's TraceTable. */
  slot: number;
  newest: number;
  count: number;
  /** A bit per span id it has held (idBit()): a span id whose bit is clear is not among its spans, without a walk. Never cleared. */
  idBits: number;
  ids: IdSet | undefined;
}

/** A span id's bit in its trace's idBits: one of 32, from its words' low bits (ids are random). */
export function idBit(id0: number, id1: number): number {
  return 1 << ((id0 ^ id1) & 31);
}

/** A trace with no spans yet. */
export function newTrace(): TraceEntry {
  return { slot: -1, newest: -1, count: 0, idBits: 0, ids: undefined, build: 0, place: 0 };
}

/** Spans a trace may have before its ids are kept in a set (below it, a scan is cheaper than the set). */
export const IDS_SET_FROM = 32;

/** Live span count of one operation of a service: listings stay exact as spans are evicted. */
export interface OpCount extends Stamped {
  service: string;
  op: Operation;
  /** Live spans; 0 once its last was evicted (it has left the listings then, and is not used again). */
  spans: number;
}

/** The stored spans, oldest first. */
export class SpanRows extends BlockQueue<SpanBlock, SpanView> {
  constructor() {
    super((b, i) => new SpanView(b, i));
  }
}

/**
 * Walks a trace's spans newest first through their PREV columns: in the rows of the chunk being
 * stored (numbered from rowsSeq0 on) when given, then in the stored blocks, until the chain ends
 * (-1) or reaches an evicted span (eviction goes oldest first, so every span before it is gone
 * too). After each next(), cols[at …] are the span's columns and seq its number; block is its
 * stored block (undefined while in the rows being stored). One per store, reused.
 */
export class TraceWalk {
  cols: Int32Array = new Int32Array(0);
  at = 0;
  seq = -1;
  block: SpanBlock | undefined;
  private following = -1;
  private cached: SpanBlock | undefined;
  private rows: BlockRows | undefined;
  private rowsSeq0 = Infinity;
  private readonly spans: SpanRows;

  constructor(spans: SpanRows) {
    this.spans = spans;
  }

  start(t: TraceEntry, rows?: BlockRows, rowsSeq0 = Infinity): void {
    this.following = t.newest;
    this.rows = rows;
    this.rowsSeq0 = rowsSeq0;
  }

  /** Moves to the next span (after start(): the newest); false when there is none. */
  next(): boolean {
    const seq = this.following;
    if (seq < 0) return false;
    if (seq >= this.rowsSeq0) {
      this.cols = this.rows!.cols;
      this.at = (seq - this.rowsSeq0) * SPAN_STRIDE;
      this.block = undefined;
    } else {
      const spans = this.spans;
      if (spans.length === 0 || seq < spans.oldestSeq) return false;
      let b = this.cached;
      if (b === undefined || seq < b.seq0 || seq >= b.seq0 + b.n) this.cached = b = spans.blockAt(seq);
      this.cols = b.cols;
      this.at = (seq - b.seq0) * SPAN_STRIDE;
      this.block = b;
    }
    this.seq = seq;
    const back = this.cols[this.at + PREV]!;
    this.following = back === 0 ? -1 : seq - back;
    return true;
  }

  /** Drops the block it keeps for the next walk (an evicted block must not be kept alive). */
  end(): void {
    this.cached = undefined;
    this.block = undefined;
    this.rows = undefined;
  }
}
