// The memory backend: bounded by rows and approximate bytes, evicting oldest first. For tests,
// demos and short-lived debugging; nothing survives a restart. Each row is kept as a reference
// to its record in the chunk it arrived in (the OTLP protobuf it arrived as, behind a header of
// its indexed columns: ../otlp-chunks.ts) and a few small integers. Its facts (ids, times, status) are
// read from the header when a query asks, and the row is decoded only when a read returns it.
// The garbage collector's work grows with every object kept (measured: 4 of 12.5 CPU-µs per span
// when each row held its facts as strings and BigInts), so a span is no object at all: spans are
// columns of the block of the chunk they came in (SpanBlock), each trace's spans chained through
// those columns, and reads make a short-lived view per span they touch. Log records are kept the
// same way (logs.ts).
// Every row carries its batch's tenant; the trace and listing maps are keyed by tenant
// first, so one tenant's reads never see another's rows.
import type { LogRow, SpanRow } from '../../model/rows.ts';
import type { BackendDeps, DependencyLink, DependencyQuery, LogQuery, LogSearch, Operation, OperationQuery, ScanPage, ScanQuery, StorageBackend, StorageStats, StoreStats, TraceQuery, TraceRead, TraceSummary, WriteBatch, WriteResult } from '../backend.ts';
import { attributesMatch, byNewestTrace, byOperation, countDependencies, dependencyList, earliestWithinBytes, logMatches, logSearch, spanFactsMatch, summarizeTrace, traceRead, withinBytes } from '../query-helpers.ts';
import type { SlicingBuffer } from '../../pipeline/decode/wire.ts';
import { releaseBuffer, soleUser } from '../../common/release.ts';
import type { RowsInOrder } from './blocks.ts';
import { LogBlock, LogBlockRows, LogRows, type LogView, type UnreadableReport } from './logs.ts';
import { IdSet } from '../id-set.ts';
import { TraceTable } from './trace-table.ts';
import { BlockRows, ID0, ID1, idBit, IDS_SET_FROM, newTrace, type OpCount, SPAN_STRIDE, SpanBlock, SpanRows, SpanView, type TraceEntry, TraceWalk } from './spans.ts';
import { CHUNK_HEAD_BYTES, ChunkFormatError, chunkRecordCount, logAt, OperationCache, readLogChunk, REC_GROUP, sameTraceId, spanAt, spanCursor, spanIdWord, spanKind, spanName, S_TRACE } from '../otlp-chunks.ts';

/**
 * Operations by service, then by name, then by kind (usually one). By kind in a map, not a list
 * searched: a kind is any int32 a client sends, and a request of 50,000 spans of one name, each of
 * a kind of its own, held the main thread 15 s in a list's searches.
 */
type ServiceOps = Map<string, Map<string, Map<number, OpCount>>>;
const newServiceOps = (): ServiceOps => new Map();
const newTraceTable = (): TraceTable => new TraceTable();

/** One tenant's entry of a store's map by tenant, made on first use. */
function ofTenant<T>(byTenant: Map<string, T>, tenant: string, make: () => T): T {
  let v = byTenant.get(tenant);
  if (v === undefined) byTenant.set(tenant, (v = make()));
  return v;
}

/** The memory store's bounds; the oldest rows are evicted past any of them. */
export interface MemoryOptions {
  maxSpans: number;
  maxLogs: number;
  /** Memory the stored rows may take: their bytes as they arrived, ROW_OVERHEAD_BYTES of index each, and BLOCK_OVERHEAD_BYTES per chunk they came in. */
  maxBytes: number;
  /** Rows are evicted this long after they were stored (0: kept until a size bound evicts them). */
  maxAgeMs: number;
  /** The insertion number of the first span (0): a test starts it where a store that has run long would be. */
  firstSpanSeq?: number;
}

/**
 * What one row costs besides its bytes. Counting it makes storage.memory.maxBytes a bound on the
 * store's memory, not only on its bytes. The live part is small since spans became integer
 * columns: 28 bytes of typed array per span and a few bytes of V8 heap (its trace's entry, shared
 * by its spans), against ~60 bytes of heap and 8 of typed array while traces kept lists of their
 * spans and blocks a pointer per span, and ~130 when each span was an object (bench/memory-store.ts,
 * 278k spans kept; log records are kept the same way). The rest of the charge stands for what the
 * live part does not show and a full store still costs: the heap V8 keeps above what is live, and
 * the allocator's own.
 */
export const ROW_OVERHEAD_BYTES = 192;

/**
 * What a chunk's block costs besides its rows, whatever their number: the block, its Buffer and
 * column array (each a JS object over an ArrayBuffer of its own), its lists of traces and
 * operations (or services), the chunk's entry in ChunkRefs. ~1.1 KB measured (heap used and array
 * buffers, one span or log record a request): uncharged, a store fed one item a request held 3.5
 * times maxBytes.
 */
export const BLOCK_OVERHEAD_BYTES = 1024;

/**
 * What a tenant with spans stored costs besides its rows, however few: its trace table at its
 * smallest (16 places), its operations' maps and their entries in the store's maps by tenant.
 * ~1.5 KB measured (heap used and array buffers, one span a tenant): uncharged, a store of one
 * span a request from each of thousands of tenants held twice maxBytes.
 */
export const TENANT_OVERHEAD_BYTES = 2048;

/**
 * What an operation listed for its spans (getServices, getOperations) costs besides its name's
 * characters, however few spans it has: its count and Operation objects, its place in its
 * service's map by name and its name's map by kind. With a span name of its own for each span (an HTTP
 * route with ids in it, a SQL statement) every span makes one: uncharged, a store of such spans
 * held 2.4 times maxBytes.
 */
export const OPERATION_OVERHEAD_BYTES = 512;

/** What a service listed for its spans costs besides its name's characters: its map of operations and its entry in its tenant's map (a service of its own for each span: 2.8 times maxBytes uncharged). */
export const SERVICE_OVERHEAD_BYTES = 256;

/**
 * What each of the n rows kept from chunk c is charged: its share of the chunk and of its block,
 * which stay alive while any of them does, plus its index entry. Shared among the rows kept, not
 * the rows sent: a resend whose spans are mostly stored already keeps its whole chunk for the few
 * that are new.
 */
function rowCharge(c: Uint8Array, n: number): number {
  return Math.ceil((c.byteLength + BLOCK_OVERHEAD_BYTES) / n) + ROW_OVERHEAD_BYTES;
}

/**
 * Live rows per chunk buffer the store is the only user of (a chunk's buffer whole, or one a worker
 * handed over with its unused tail), so a chunk's memory goes back the moment its
 * last row is evicted (releaseBuffer) instead of at V8's next collection: a full store evicts all
 * along, and left to the collector its dead chunks started a collection every 64 MiB.
 */
class ChunkRefs {
  private readonly live = new Map<ArrayBufferLike, number>();
  /** The chunk of the drops not counted yet, and how many. */
  private run: Uint8Array | undefined;
  private runRows = 0;

  /** Counts n rows kept from chunk c, if c is its buffer's only user (a slice of a shared buffer is left to the collector). */
  add(c: Uint8Array, n: number): void {
    if (n === 0 || !soleUser(c)) return;
    this.live.set(c.buffer, (this.live.get(c.buffer) ?? 0) + n);
  }

  /** n rows of buf are gone. Rows go in runs of one chunk, so drops are counted per run: settle() ends the last. */
  drop(buf: Uint8Array, n = 1): void {
    if (buf !== this.run) {
      this.settle();
      this.run = buf;
    }
    this.runRows += n;
  }

  /** Counts the run of drops so far: with a chunk's last row, its buffer is detached, which frees its memory now. */
  settle(): void {
    const buf = this.run;
    const n = this.runRows;
    this.run = undefined;
    this.runRows = 0;
    if (buf === undefined) return;
    const left = this.live.get(buf.buffer);
    if (left === undefined) return;
    if (left > n) {
      this.live.set(buf.buffer, left - n);
      return;
    }
    this.live.delete(buf.buffer);
    releaseBuffer(buf.buffer);
  }
}

class MemoryBackend implements StorageBackend, StoreStats {
  readonly name = 'memory';
  readonly encoder = { name: 'otlp', options: {} } as const;
  private readonly spans = new SpanRows();
  private readonly walk = new TraceWalk(this.spans);
  /** The spans of the chunk being stored. */
  private readonly blockRows = new BlockRows();
  private readonly logs = new LogRows();
  /** The log records of the chunk being stored. */
  private readonly logRows = new LogBlockRows();
  private readonly chunkRefs = new ChunkRefs();
  /**
   * The operations of a tenant's spans met lately (opCacheTenant's). It lasts across chunks and
   * writes of one tenant; one whose last span was evicted (spans 0: it has left the listings) is
   * not used again.
   */
  private readonly opCache = new OperationCache<OpCount>();
  private opCacheTenant: string | undefined;
  /** Traces by tenant, then trace id. */
  private readonly traces = new Map<string, TraceTable>();
  /** Operations by tenant. */
  private readonly operations = new Map<string, ServiceOps>();
  /** What the listed operations and services count against maxBytes (OPERATION_OVERHEAD_BYTES, SERVICE_OVERHEAD_BYTES and their names). */
  private opBytes = 0;
  /** Live log rows per write batch id: bounded by the rows kept, forgotten with the last of them. */
  private readonly logBatches = new Map<string, number>();
  /** Insertion numbers: of spans (numbered without gaps, blocks rely on it), and of log records. */
  private spanSeq = 0;
  private seq = 0;
  private readonly createdMs = performance.now();
  private ageTimer: NodeJS.Timeout | undefined;
  private readonly maxAgeMs: number;
  private readonly maxSpans: number;
  private readonly maxLogs: number;
  private readonly maxBytes: number;
  private readonly deps: BackendDeps;

  constructor(options: MemoryOptions, deps: BackendDeps) {
    this.maxSpans = options.maxSpans;
    this.maxLogs = options.maxLogs;
    this.maxBytes = options.maxBytes;
    this.maxAgeMs = options.maxAgeMs;
    this.spanSeq = options.firstSpanSeq ?? 0;
    this.deps = deps;
  }

  async start(): Promise<void> {
    // Writes evict by age too; the timer covers a store that has stopped receiving.
    if (this.maxAgeMs > 0) this.ageTimer ??= setInterval(() => this.evict(), Math.min(this.maxAgeMs, 60_000)).unref();
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    // Rows past maxAgeMs go first (the timer may not have run yet): a row sent again after its
    // first copy aged out is stored anew, not taken for a copy of one this write then evicts.
    if (this.maxAgeMs > 0) this.evict();
    try {
      if (batch.signal === 'traces') this.storeSpans(batch);
      else if (!this.logBatches.has(batch.batchId)) this.storeLogs(batch);
    } catch (err) {
      // Bytes of another format (a write-ahead log written by another version): never storable.
      if (err instanceof ChunkFormatError) return { kind: 'permanent', error: err };
      throw err;
    } finally {
      // Rows stored before a malformed one count against the bounds too.
      this.evict();
    }
    return { kind: 'success' };
  }

  private storeSpans(batch: WriteBatch): void {
    const storedMs = this.now();
    const tenant = batch.tenant;
    const traces = ofTenant(this.traces, tenant, newTraceTable);
    const ops = ofTenant(this.operations, tenant, newServiceOps);
    const rows = this.blockRows;
    const opCache = this.opCache;
    if (tenant !== this.opCacheTenant) {
      opCache.clear();
      this.opCacheTenant = tenant;
    }
    for (const c of batch.chunks) {
      rows.clear();
      let chunkBuf: SlicingBuffer | undefined;
      const seq0 = this.spanSeq;
      // Spans of a trace usually come together: the last span's trace is tried before the map.
      let lastTrace: TraceEntry | undefined;
      let lastRecord = 0;
      const view = new DataView(c.buffer, c.byteOffset, c.byteLength);
      try {
        const cursor = spanCursor(c);
        const buf = cursor.buf;
        chunkBuf = buf;
        while (cursor.next()) {
          const record = cursor.record;
          const group = cursor.group!;
          const id0 = spanIdWord(buf, record, 0);
          const id1 = spanIdWord(buf, record, 1);
          let t = lastTrace !== undefined && sameTraceId(buf, record, lastRecord) ? lastTrace : traces.find(buf, record + S_TRACE);
          // A retried batch or a client's resend carries spans already stored: keep one copy.
          if (t !== undefined && this.hasSpan(t, id0, id1, rows, seq0)) continue;
          if (t === undefined) traces.addMissed((t = newTrace()));
          lastTrace = t;
          lastRecord = record;
          // Operations are recognized by their name's bytes; only one not met lately makes a string.
          let op = opCache.get(group.service, buf, view, record);
          if (op === undefined || op.spans === 0) op = opCache.put(group.service, buf, record, this.operationOf(ops, group.service, spanName(buf, record), spanKind(buf, record)));
          op.spans++;
          rows.add(group.at, record, this.spanSeq++, t, id0, id1, op);
          if (t.ids !== undefined) t.ids.add(id0, id1);
          else if (t.count >= IDS_SET_FROM) t.ids = this.idSet(t, rows, seq0);
        }
      } finally {
        // Spans stored before a malformed record stay stored, in a block of their own.
        if (rows.n > 0) {
          this.spans.push(new SpanBlock(chunkBuf!, tenant, seq0, storedMs, rowCharge(c, rows.n), rows));
          this.chunkRefs.add(c, rows.n);
        }
      }
    }
    this.walk.end();
  }

  /** Whether trace t holds a span with this id (its two int32 words), stored or among rows, the chunk being stored (numbered from seq0 on). */
  private hasSpan(t: TraceEntry, id0: number, id1: number, rows: BlockRows, seq0: number): boolean {
    if (t.ids !== undefined) return t.ids.has(id0, id1);
    if ((t.idBits & idBit(id0, id1)) === 0) return false;
    const w = this.walk;
    w.start(t, rows, seq0);
    while (w.next()) if (w.cols[w.at + ID0] === id0 && w.cols[w.at + ID1] === id1) return true;
    return false;
  }

  /** The span ids of trace t as set keys, for a trace with enough spans that a set is cheaper than a walk. */
  private idSet(t: TraceEntry, rows: BlockRows, seq0: number): IdSet {
    const ids = new IdSet(2 * IDS_SET_FROM);
    const w = this.walk;
    w.start(t, rows, seq0);
    while (w.next()) ids.add(w.cols[w.at + ID0]!, w.cols[w.at + ID1]!);
    return ids;
  }

  private storeLogs(batch: WriteBatch): void {
    const storedMs = this.now();
    const rows = this.logRows;
    let n = 0;
    try {
      for (const c of batch.chunks) {
        const count = chunkRecordCount(c);
        if (count >= 0) {
          // Its records are taken by their count, unread (logs.ts).
          if (count === 0) continue;
          if (c[CHUNK_HEAD_BYTES] !== REC_GROUP) throw new ChunkFormatError(`a chunk's first record is of type ${c[CHUNK_HEAD_BYTES]}, not a group`);
          n += this.keepLogs(c, Buffer.from(c.buffer, c.byteOffset, c.byteLength) as SlicingBuffer, batch, storedMs, count);
          continue;
        }
        rows.clear();
        let chunkBuf: SlicingBuffer | undefined;
        try {
          readLogChunk(c, (group, buf, record) => {
            chunkBuf = buf;
            rows.add(group.at, record, group.service);
          });
        } finally {
          // Records stored before a malformed one stay stored, in a block of their own.
          if (rows.n > 0) n += this.keepLogs(c, chunkBuf!, batch, storedMs, rows);
        }
      }
    } finally {
      if (n > 0) this.logBatches.set(batch.batchId, n);
    }
  }

  /** Keeps records of chunk c (buf: its bytes) as a block: the rows gathered from it, or its record count alone; returns how many. */
  private keepLogs(c: Uint8Array, buf: SlicingBuffer, batch: WriteBatch, storedMs: number, rows: LogBlockRows | number): number {
    const n = typeof rows === 'number' ? rows : rows.n;
    this.logs.push(new LogBlock(buf, batch.tenant, batch.batchId, this.seq, storedMs, rowCharge(c, n), rows, this.unreadable));
    this.seq += n;
    this.chunkRefs.add(c, n);
    return n;
  }

  /** Counts and logs the records of a block that reads cannot return (its chunk malformed). */
  private readonly unreadable: UnreadableReport = (block, err, lost) => {
    this.deps.metrics.droppedRows.inc({ backend: this.name, signal: 'logs', reason: 'unreadable' }, lost);
    this.deps.logger.error(
      { tenant: block.tenant, batchId: block.batchId, records: block.n, lost, err: err.message },
      'a stored chunk of log records is malformed: reads return the records before the fault, and leave out the rest',
    );
  };

  /** Milliseconds since the store was made, on the monotonic clock: a wall clock set forward (NTP, a VM resumed) must not age out what was just stored. */
  private now(): number {
    return performance.now() - this.createdMs;
  }

  /** What the spans count against maxBytes: their rows' charges, each tenant's that has some, and their operations' and services'. */
  private get spanBytes(): number {
    return this.spans.bytes + this.traces.size * TENANT_OVERHEAD_BYTES + this.opBytes;
  }

  /** An operation's live count, made (at 0, and charged) on first use; the caller counts its span in, and the span keeps it. */
  private operationOf(ops: ServiceOps, service: string, name: string, kind: number): OpCount {
    let names = ops.get(service);
    if (names === undefined) {
      ops.set(service, (names = new Map()));
      this.opBytes += SERVICE_OVERHEAD_BYTES + service.length;
    }
    let kinds = names.get(name);
    if (kinds === undefined) names.set(name, (kinds = new Map()));
    let c = kinds.get(kind);
    if (c === undefined) {
      kinds.set(kind, (c = { service, op: { name, kind }, spans: 0, build: 0, place: 0 }));
      this.opBytes += OPERATION_OVERHEAD_BYTES + name.length;
    }
    return c;
  }

  private evict(): void {
    let spans = 0;
    const oldest = this.maxAgeMs > 0 ? this.now() - this.maxAgeMs : -Infinity;
    // Log records past their count or age go first: what they free may make the bytes fit
    // without evicting spans.
    let logs = this.evictLogs(oldest, false);
    for (let b = this.spans.oldest(); b !== undefined && (this.spans.length > this.maxSpans || b.storedMs < oldest || (this.spanBytes + this.logs.bytes > this.maxBytes && this.spanBytes >= this.logs.bytes)); b = this.spans.oldest()) {
      const i = this.spans.oldestIndex;
      const t = b.trace(i);
      // Its trace's oldest span: the trace's chain now ends before it.
      if (t.ids !== undefined) t.ids.delete(b.cols[i * SPAN_STRIDE + ID0]!, b.cols[i * SPAN_STRIDE + ID1]!);
      if (--t.count === 0) {
        const traces = this.traces.get(b.tenant)!;
        traces.delete(t);
        if (traces.size === 0) this.traces.delete(b.tenant);
      }
      const op = b.op(i);
      if (--op.spans === 0) {
        const ops = this.operations.get(b.tenant)!;
        this.opBytes -= forgetOperation(ops, op);
        if (ops.size === 0) this.operations.delete(b.tenant);
      }
      this.spans.shift();
      this.chunkRefs.drop(b.buf);
      spans++;
    }
    logs += this.evictLogs(oldest, true);
    this.chunkRefs.settle();
    if (spans > 0) this.deps.metrics.evictedRows.inc({ signal: 'traces' }, spans);
    if (logs > 0) this.deps.metrics.evictedRows.inc({ signal: 'logs' }, logs);
  }

  /**
   * Evicts the oldest log records past maxLogs or older than `oldest`, and, if byBytes, as many
   * more as the stored bytes are over maxBytes; returns how many. Log records need nothing undone
   * one by one (no trace, no operation): they leave a block's worth at a time, and their batch's
   * count is taken down once per run of one batch.
   */
  private evictLogs(oldest: number, byBytes: boolean): number {
    let logs = 0;
    let batchId = '';
    let run = 0;
    for (let b = this.logs.oldest(); b !== undefined; b = this.logs.oldest()) {
      const left = b.n - this.logs.oldestIndex;
      const over = byBytes ? this.spanBytes + this.logs.bytes - this.maxBytes : 0;
      const n = b.storedMs < oldest ? left : Math.min(left, Math.max(this.logs.length - this.maxLogs, over > 0 ? Math.ceil(over / b.bytes) : 0));
      if (n <= 0) break;
      if (b.batchId !== batchId) {
        this.forgetLogs(batchId, run);
        batchId = b.batchId;
        run = 0;
      }
      run += n;
      this.logs.shiftRows(n);
      this.chunkRefs.drop(b.buf, n);
      logs += n;
    }
    this.forgetLogs(batchId, run);
    return logs;
  }

  /** n records of the batch are gone: when it has none left, a write of it again stores it anew. */
  private forgetLogs(batchId: string, n: number): void {
    if (n === 0) return;
    const left = this.logBatches.get(batchId)! - n;
    if (left > 0) this.logBatches.set(batchId, left);
    else this.logBatches.delete(batchId);
  }

  async getServices(tenant: string): Promise<string[]> {
    return [...(this.operations.get(tenant)?.keys() ?? [])].sort();
  }

  async getOperations(tenant: string, q: OperationQuery): Promise<Operation[]> {
    const out: Operation[] = [];
    for (const counts of this.operations.get(tenant)?.get(q.service)?.values() ?? []) for (const c of counts.values()) if (q.kind === undefined || c.op.kind === q.kind) out.push({ ...c.op });
    return out.sort(byOperation);
  }

  async getDependencies(tenant: string, q: DependencyQuery): Promise<DependencyLink[]> {
    const counts = new Map<string, number>();
    for (const t of this.traces.get(tenant)?.values() ?? []) countDependencies(this.spansOf(t), q, counts);
    return dependencyList(counts);
  }

  async getTrace(tenant: string, traceId: string): Promise<SpanRow[]> {
    const t = this.traces.get(tenant)?.get(traceId);
    return t === undefined ? [] : this.spansOf(t).map((e) => spanOf(e));
  }

  async readTrace(tenant: string, traceId: string, maxSpans: number, maxBytes?: number): Promise<TraceRead> {
    const t = this.traces.get(tenant)?.get(traceId);
    if (t === undefined) return { spans: [], total: 0 };
    // Chosen by their records' start, id and size; only the kept are decoded (on this, the main, thread).
    const views = this.spansOf(t);
    const { kept, bytes, cut } = earliestWithinBytes(views, maxSpans, (e) => e.bytes, maxBytes);
    return traceRead(kept.map((e) => spanOf(e)), views.length, maxBytes, bytes, cut);
  }

  /** A trace's spans, oldest first, as views. */
  private spansOf(t: TraceEntry): SpanView[] {
    const out: SpanView[] = [];
    const w = this.walk;
    w.start(t);
    while (w.next()) out.push(new SpanView(w.block!, w.seq - w.block!.seq0));
    w.end();
    return out.reverse();
  }


  async searchTraces(tenant: string, q: TraceQuery): Promise<TraceSummary[]> {
    const wantAttrs = (q.attributes?.length ?? 0) > 0;
    const matches = (e: SpanView) => spanFactsMatch(e, q) && (!wantAttrs || attributesMatch(spanOf(e).attributes, q));
    // Rank traces by their newest matching span (the port's ranking), keep `limit`, then order by trace start.
    // Only the `limit` best ranked are held (see searchLogs), equal ranks in the order met: an
    // entry with its spans for every matching trace ran a 96 MiB heap out of memory at limit=1.
    const ranked = new NewestFirst<{ newest: bigint; i: number; spans: SpanView[] }>(q.limit, (a, b) => (a.newest === b.newest ? a.i - b.i : a.newest > b.newest ? -1 : 1));
    let i = 0;
    for (const t of this.traces.get(tenant)?.values() ?? []) {
      const spans = this.spansOf(t);
      let newest: bigint | undefined;
      for (const s of spans) if ((newest === undefined || s.startTimeUnixNano > newest) && matches(s)) newest = s.startTimeUnixNano;
      if (newest !== undefined) ranked.offer({ newest, i: i++, spans });
    }
    return ranked
      .sorted()
      .map((r) => summarizeTrace(r.spans))
      .sort(byNewestTrace);
  }

  async searchLogs(tenant: string, q: LogQuery): Promise<LogSearch> {
    // The newest `limit` kept as they are met (a heap with the oldest kept at its root): an entry
    // for every matching record was ~100 bytes of V8 heap each, and a search of the million
    // records the store keeps by default ran a 96 MiB heap out of memory even at limit=1.
    const kept = new NewestFirst<{ e: LogView; time: bigint }>(q.limit, (a, b) => (a.time === b.time ? b.e.seq - a.e.seq : a.time > b.time ? -1 : 1));
    for (const e of this.logs) if (e.tenant === tenant && logMatches(e, q)) kept.offer({ e, time: e.time });
    const within = withinBytes(kept.sorted(), (x) => x.e.bytes, q.maxBytes);
    return logSearch(within.kept.map((x) => logOf(x.e)), within.cut);
  }

  private scan<E extends { seq: number; serviceName: string; tenant: string; bytes: number }, T>(fifo: RowsInOrder<E>, time: (e: E) => bigint, tenant: string, q: ScanQuery, parse: (e: E) => T): ScanPage<T> {
    if (q.after !== undefined && !/^\d+$/.test(q.after)) throw new Error(`not a memory scan cursor: ${JSON.stringify(q.after)}`);
    const rows: T[] = [];
    let next = q.after;
    // Position by insertion number between the oldest and the newest row kept.
    const lo = fifo.peek()?.seq ?? 0;
    const hi = fifo.newest()?.seq ?? 0;
    const position = () => (next === undefined || hi <= lo ? 0 : Math.min(1, Math.max(0, (Number(next) - lo) / (hi - lo))));
    let bytes = 0;
    for (const e of fifo.after(q.after === undefined ? -1 : Number(q.after))) {
      if (rows.length >= q.limit) return { rows, next, done: false, position: position() };
      if (q.maxBytes !== undefined && rows.length > 0 && bytes + e.bytes > q.maxBytes) return { rows, next, done: false, position: position() };
      next = String(e.seq);
      if (e.tenant !== tenant || (q.service !== undefined && e.serviceName !== q.service)) continue;
      const t = time(e);
      if ((q.startNano !== undefined && t < q.startNano) || (q.endNano !== undefined && t > q.endNano)) continue;
      bytes += e.bytes;
      rows.push(parse(e));
    }
    return { rows, next, done: true, position: 1 };
  }

  async scanSpans(tenant: string, q: ScanQuery): Promise<ScanPage<SpanRow>> {
    return this.scan(this.spans, (e) => e.startTimeUnixNano, tenant, q, (e) => spanOf(e));
  }

  async scanLogs(tenant: string, q: ScanQuery): Promise<ScanPage<LogRow>> {
    return this.scan(this.logs, (e) => e.time, tenant, q, (e) => logOf(e));
  }

  /** Bytes counted against storage.memory.maxBytes, rows, and the oldest time: one pass over the rows, bounded by maxSpans and maxLogs. */
  async stats(): Promise<StorageStats> {
    let oldestSpan: bigint | undefined;
    for (const s of this.spans) if (oldestSpan === undefined || s.startTimeUnixNano < oldestSpan) oldestSpan = s.startTimeUnixNano;
    let oldestLog: bigint | undefined;
    for (const l of this.logs) if (oldestLog === undefined || l.time < oldestLog) oldestLog = l.time;
    return {
      signals: [
        { signal: 'traces', bytes: this.spanBytes, rows: this.spans.length, ...(oldestSpan === undefined ? {} : { oldestUnixNano: oldestSpan }) },
        { signal: 'logs', bytes: this.logs.bytes, rows: this.logs.length, ...(oldestLog === undefined ? {} : { oldestUnixNano: oldestLog }) },
      ],
    };
  }

  async health() {
    return { ok: true };
  }

  async shutdown(): Promise<void> {
    if (this.ageTimer) clearInterval(this.ageTimer);
    this.ageTimer = undefined;
  }
}

/**
 * The first `max` items in `order` of those offered, in that order: a binary heap whose root is
 * the last of those kept, so each item offered costs O(log max) and only `max` are held.
 */
class NewestFirst<T> {
  private readonly items: T[] = [];
  private readonly max: number;
  private readonly order: (a: T, b: T) => number;
  constructor(max: number, order: (a: T, b: T) => number) {
    this.max = max;
    this.order = order;
  }
  /** Keeps item when it comes before the last kept, or fewer than max are kept. */
  offer(item: T): void {
    const h = this.items;
    if (h.length < this.max) {
      h.push(item);
      this.up(h.length - 1);
      return;
    }
    if (this.order(item, h[0]!) >= 0) return;
    h[0] = item;
    this.down(0);
  }
  sorted(): T[] {
    return this.items.sort(this.order);
  }
  // Heap order: a parent comes after its children in `order` (the root is the last kept).
  private up(i: number): void {
    const h = this.items;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.order(h[p]!, h[i]!) >= 0) return;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  private down(i: number): void {
    const h = this.items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let last = i;
      if (l < h.length && this.order(h[l]!, h[last]!) > 0) last = l;
      if (r < h.length && this.order(h[r]!, h[last]!) > 0) last = r;
      if (last === i) return;
      [h[last], h[i]] = [h[i]!, h[last]!];
      i = last;
    }
  }
}

function spanOf(e: SpanView): SpanRow {
  return spanAt(e.buf, e.group, e.record);
}

function logOf(e: LogView): LogRow {
  return logAt(e.buf, e.group, e.record);
}

/** Removes an operation whose last span was evicted, and the levels it leaves empty; returns what they were charged (MemoryBackend.operationOf). */
function forgetOperation(ops: ServiceOps, c: OpCount): number {
  const names = ops.get(c.service)!;
  const kinds = names.get(c.op.name)!;
  kinds.delete(c.op.kind);
  let freed = OPERATION_OVERHEAD_BYTES + c.op.name.length;
  if (kinds.size === 0) names.delete(c.op.name);
  if (names.size === 0) {
    ops.delete(c.service);
    freed += SERVICE_OVERHEAD_BYTES + c.service.length;
  }
  return freed;
}

/** Creates the bounded in-memory backend. */
export function createMemoryBackend(options: MemoryOptions, deps: BackendDeps): StorageBackend {
  return new MemoryBackend(options, deps);
}
