// The memory backend: bounded by rows and approximate bytes, evicting oldest first. For tests,
// demos and short-lived debugging; nothing survives a restart. Each row is kept as its indexed
// columns plus a reference to its bytes in the chunk it arrived in (the OTLP protobuf it arrived
// as, chunks.ts): they stay outside the JS heap (no garbage-collector work for them) and are
// decoded only when a read returns the row. Every row carries its batch's tenant; the trace and listing maps are keyed by
// tenant first, so one tenant's reads never see another's rows.
import type { LogRow, SpanRow } from '../../model/rows.ts';
import type { BackendDeps, DependencyLink, DependencyQuery, LogQuery, Operation, OperationQuery, ScanPage, ScanQuery, StorageBackend, StorageStats, StoreStats, TraceQuery, TraceSummary, WriteBatch, WriteResult } from '../backend.ts';
import { attributesMatch, byNewestTrace, byOperation, countDependencies, dependencyList, type LogFacts, logMatches, type SpanFacts, spanFactsMatch, summarizeTrace } from '../query-helpers.ts';
import { ChunkFormatError, countItems, logAt, readLogChunk, readSpanChunk, spanAt } from './chunks.ts';

/** Where a row's bytes are: its record at `record` in an arrived chunk, its group's record at `group`. */
interface DocRef {
  buf: Buffer;
  group: number;
  record: number;
}

/** What every stored row carries besides its facts: insertion order and arrival time. */
interface Stored {
  /** Insertion order: keeps newest-first stable among equal times, and is the scan cursor. */
  seq: number;
  /** Date.now() when stored, for eviction by age. */
  storedMs: number;
}

interface SpanEntry extends SpanFacts, DocRef, Stored {
  kind: number;
  tenant: string;
}

interface LogEntry extends LogFacts, DocRef, Stored {
  tenant: string;
  /** The write batch it came in: a batch written again (a retry, an import run twice) is recognized. */
  batchId: string;
}

/** A FIFO of rows with their encoded size, for oldest-first eviction. */
class Fifo<T extends Stored> {
  private items: { row: T; bytes: number }[] = [];
  private head = 0;
  bytes = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(row: T, bytes: number): void {
    this.items.push({ row, bytes });
    this.bytes += bytes;
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const it = this.items[this.head]!;
    this.items[this.head++] = undefined as never;
    this.bytes -= it.bytes;
    // Compact once the dead prefix dominates, so memory stays proportional to live rows.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return it.row;
  }
  /** The oldest row, without removing it. */
  peek(): T | undefined {
    return this.items[this.head]?.row;
  }
  /** The newest row. */
  newest(): T | undefined {
    return this.length > 0 ? this.items[this.items.length - 1]!.row : undefined;
  }
  *[Symbol.iterator](): Generator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i]!.row;
  }
  /** Rows inserted after the one numbered `seq`, oldest first (seq grows along the FIFO: binary search). */
  *after(seq: number): Generator<T> {
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid]!.row.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.items.length; i++) yield this.items[i]!.row;
  }
}

/** The memory store's bounds; the oldest rows are evicted past any of them. */
export interface MemoryOptions {
  maxSpans: number;
  maxLogs: number;
  /** Memory the stored rows may take: their documents plus ROW_OVERHEAD_BYTES of index each. */
  maxBytes: number;
  /** Rows are evicted this long after they were stored (0: kept until a size bound evicts them). */
  maxAgeMs: number;
}

/**
 * What one row costs besides its document: its index entry (ids, names, times as BigInts), its
 * places in the per-trace maps and the FIFO. Measured with 300k spans (V8 heap growth after a
 * full GC, .tmp-style script in docs/performance.md): 720-770 bytes a row. Counting it makes
 * storage.memory.maxBytes a bound on the store's memory, not only on its document text.
 */
export const ROW_OVERHEAD_BYTES = 768;

class MemoryBackend implements StorageBackend, StoreStats {
  readonly name = 'memory';
  readonly encoder = { name: 'otlp', options: {} } as const;
  private readonly spans = new Fifo<SpanEntry>();
  private readonly logs = new Fifo<LogEntry>();
  /** Keyed by tenantKey(tenant, traceId). */
  private readonly byTrace = new Map<string, SpanEntry[]>();
  /** Span ids stored per trace, so a resent span is recognized in O(1) however large its trace. */
  private readonly idsByTrace = new Map<string, Set<string>>();
  /** Live span count per tenant and service (tenantKey) and per (name, kind): listings stay exact as spans are evicted. */
  private readonly operations = new Map<string, Map<string, { op: Operation; spans: number }>>();
  /** Live log rows per write batch id: bounded by the rows kept, forgotten with the last of them. */
  private readonly logBatches = new Map<string, number>();
  private seq = 0;
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
    this.deps = deps;
  }

  async start(): Promise<void> {
    // Writes evict by age too; the timer covers a store that has stopped receiving.
    if (this.maxAgeMs > 0) this.ageTimer ??= setInterval(() => this.evict(), Math.min(this.maxAgeMs, 60_000)).unref();
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    try {
      if (batch.signal === 'traces') this.storeSpans(batch.chunks, batch.tenant);
      else if (!this.logBatches.has(batch.batchId)) this.storeLogs(batch.chunks, batch.batchId, batch.tenant);
    } catch (err) {
      // Bytes of another format (a write-ahead log written by another version): never storable.
      if (err instanceof ChunkFormatError) return { kind: 'permanent', error: err };
      throw err;
    }
    this.evict();
    return { kind: 'success' };
  }

  private storeSpans(chunks: Uint8Array[], tenant: string): void {
    const storedMs = Date.now();
    for (const c of chunks) {
      // Each row is charged its share of the chunk it keeps alive, plus its index entry.
      const share = c.byteLength / Math.max(1, countItems(c)) + ROW_OVERHEAD_BYTES;
      readSpanChunk(c, (h, group, buf, record) => {
        const key = tenantKey(tenant, h.traceId);
        const list = this.byTrace.get(key);
        const ids = this.idsByTrace.get(key);
        // A retried batch or a client's resend carries spans already stored: keep one copy.
        if (ids?.has(h.spanId)) return;
        const e: SpanEntry = { ...h, serviceName: group.service, seq: this.seq++, storedMs, tenant, buf, group: group.at, record };
        this.spans.push(e, share);
        this.countOperation(e, 1);
        if (list && ids) {
          list.push(e);
          ids.add(e.spanId);
        } else {
          this.byTrace.set(key, [e]);
          this.idsByTrace.set(key, new Set([e.spanId]));
        }
      });
    }
  }

  private storeLogs(chunks: Uint8Array[], batchId: string, tenant: string): void {
    const storedMs = Date.now();
    let n = 0;
    for (const c of chunks) {
      const share = c.byteLength / Math.max(1, countItems(c)) + ROW_OVERHEAD_BYTES;
      readLogChunk(c, (h, group, buf, record) => {
        this.logs.push({ time: h.time, traceId: h.traceId, serviceName: group.service, severityNumber: h.severityNumber, tenant, buf, group: group.at, record, seq: this.seq++, storedMs, batchId }, share);
        n++;
      });
    }
    if (n > 0) this.logBatches.set(batchId, n);
  }

  private evict(): void {
    let spans = 0;
    let logs = 0;
    const oldest = this.maxAgeMs > 0 ? Date.now() - this.maxAgeMs : -Infinity;
    const tooOld = (f: Fifo<Stored>) => (f.peek()?.storedMs ?? Infinity) < oldest;
    while (this.spans.length > this.maxSpans || tooOld(this.spans) || (this.spans.length > 0 && this.spans.bytes + this.logs.bytes > this.maxBytes && this.spans.bytes >= this.logs.bytes)) {
      const s = this.spans.shift()!;
      const key = tenantKey(s.tenant, s.traceId);
      const list = this.byTrace.get(key)!;
      list.splice(list.indexOf(s), 1);
      this.idsByTrace.get(key)!.delete(s.spanId);
      this.countOperation(s, -1);
      if (list.length === 0) {
        this.byTrace.delete(key);
        this.idsByTrace.delete(key);
      }
      spans++;
    }
    while (this.logs.length > this.maxLogs || tooOld(this.logs) || (this.logs.length > 0 && this.spans.bytes + this.logs.bytes > this.maxBytes)) {
      const l = this.logs.shift()!;
      const left = this.logBatches.get(l.batchId)! - 1;
      if (left > 0) this.logBatches.set(l.batchId, left);
      else this.logBatches.delete(l.batchId);
      logs++;
    }
    if (spans > 0) this.deps.metrics.evictedRows.inc({ signal: 'traces' }, spans);
    if (logs > 0) this.deps.metrics.evictedRows.inc({ signal: 'logs' }, logs);
  }

  private countOperation(e: SpanEntry, delta: 1 | -1): void {
    const service = tenantKey(e.tenant, e.serviceName);
    let ops = this.operations.get(service);
    if (!ops) this.operations.set(service, (ops = new Map()));
    const key = e.kind + '\u0000' + e.name;
    const o = ops.get(key) ?? { op: { name: e.name, kind: e.kind }, spans: 0 };
    o.spans += delta;
    if (o.spans > 0) ops.set(key, o);
    else ops.delete(key);
    if (ops.size === 0) this.operations.delete(service);
  }

  async getServices(tenant: string): Promise<string[]> {
    const prefix = tenantKey(tenant, '');
    const out: string[] = [];
    for (const k of this.operations.keys()) if (k.startsWith(prefix)) out.push(k.slice(prefix.length));
    return out.sort();
  }

  async getOperations(tenant: string, q: OperationQuery): Promise<Operation[]> {
    const ops = [...(this.operations.get(tenantKey(tenant, q.service))?.values() ?? [])].map((o) => ({ ...o.op }));
    return ops.filter((o) => q.kind === undefined || o.kind === q.kind).sort(byOperation);
  }

  async getDependencies(tenant: string, q: DependencyQuery): Promise<DependencyLink[]> {
    const counts = new Map<string, number>();
    for (const spans of this.byTrace.values()) if (spans[0]?.tenant === tenant) countDependencies(spans, q, counts);
    return dependencyList(counts);
  }

  async getTrace(tenant: string, traceId: string): Promise<SpanRow[]> {
    return (this.byTrace.get(tenantKey(tenant, traceId)) ?? []).map((e) => spanOf(e));
  }

  async searchTraces(tenant: string, q: TraceQuery): Promise<TraceSummary[]> {
    const wantAttrs = (q.attributes?.length ?? 0) > 0;
    const matches = (e: SpanEntry) => spanFactsMatch(e, q) && (!wantAttrs || attributesMatch(spanOf(e).attributes, q));
    // Rank traces by their newest matching span (the port's ranking), keep `limit`, then order by trace start.
    const ranked: { newest: bigint; spans: SpanEntry[] }[] = [];
    for (const spans of this.byTrace.values()) {
      if (spans[0]?.tenant !== tenant) continue;
      let newest: bigint | undefined;
      for (const s of spans) if ((newest === undefined || s.startTimeUnixNano > newest) && matches(s)) newest = s.startTimeUnixNano;
      if (newest !== undefined) ranked.push({ newest, spans });
    }
    ranked.sort((a, b) => (a.newest === b.newest ? 0 : a.newest > b.newest ? -1 : 1));
    return ranked
      .slice(0, q.limit)
      .map((r) => summarizeTrace(r.spans))
      .sort(byNewestTrace);
  }

  async searchLogs(tenant: string, q: LogQuery): Promise<LogRow[]> {
    const out: LogEntry[] = [];
    for (const r of this.logs) if (r.tenant === tenant && logMatches(r, q)) out.push(r);
    out.sort((a, b) => (a.time === b.time ? b.seq - a.seq : a.time > b.time ? -1 : 1));
    return out.slice(0, q.limit).map((e) => logOf(e));
  }

  private scan<E extends Stored & { serviceName: string; tenant: string }, T>(fifo: Fifo<E>, time: (e: E) => bigint, tenant: string, q: ScanQuery, parse: (e: E) => T): ScanPage<T> {
    if (q.after !== undefined && !/^\d+$/.test(q.after)) throw new Error(`not a memory scan cursor: ${JSON.stringify(q.after)}`);
    const rows: T[] = [];
    let next = q.after;
    // Position by insertion number between the oldest and the newest row kept.
    const lo = fifo.peek()?.seq ?? 0;
    const hi = fifo.newest()?.seq ?? 0;
    const position = () => (next === undefined || hi <= lo ? 0 : Math.min(1, Math.max(0, (Number(next) - lo) / (hi - lo))));
    for (const e of fifo.after(q.after === undefined ? -1 : Number(q.after))) {
      if (rows.length >= q.limit) return { rows, next, done: false, position: position() };
      next = String(e.seq);
      if (e.tenant !== tenant || (q.service !== undefined && e.serviceName !== q.service)) continue;
      const t = time(e);
      if ((q.startNano !== undefined && t < q.startNano) || (q.endNano !== undefined && t > q.endNano)) continue;
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

  /** Document bytes held (what storage.memory.maxBytes bounds), rows, and the oldest time: one pass over the rows, bounded by maxSpans and maxLogs. */
  async stats(): Promise<StorageStats> {
    let oldestSpan: bigint | undefined;
    for (const s of this.spans) if (oldestSpan === undefined || s.startTimeUnixNano < oldestSpan) oldestSpan = s.startTimeUnixNano;
    let oldestLog: bigint | undefined;
    for (const l of this.logs) if (oldestLog === undefined || l.time < oldestLog) oldestLog = l.time;
    return {
      signals: [
        { signal: 'traces', bytes: this.spans.bytes, rows: this.spans.length, ...(oldestSpan === undefined ? {} : { oldestUnixNano: oldestSpan }) },
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

function spanOf(e: SpanEntry): SpanRow {
  return spanAt(e.buf, e.group, e.record);
}

function logOf(e: LogEntry): LogRow {
  return logAt(e.buf, e.group, e.record);
}

/** A map key of one tenant's thing: tenants cannot contain NUL (tokens.ts checks their characters). */
function tenantKey(tenant: string, key: string): string {
  return tenant + '\u0000' + key;
}

/** Creates the bounded in-memory backend. */
export function createMemoryBackend(options: MemoryOptions, deps: BackendDeps): StorageBackend {
  return new MemoryBackend(options, deps);
}
