// The memory backend: bounded by rows and approximate bytes, evicting oldest first. For tests,
// demos and short-lived debugging; nothing survives a restart. Each row is kept as its indexed
// columns plus a reference to its document's bytes in the chunk it arrived in: documents stay
// outside the JS heap (no garbage-collector work for them) and are decoded only when a read
// returns the row.
import type { LogRow, SpanRow } from '../../model/rows.ts';
import type { BackendDeps, DependencyLink, DependencyQuery, LogQuery, Operation, OperationQuery, StorageBackend, StorageStats, StoreStats, TraceQuery, TraceSummary, WriteBatch, WriteResult } from '../backend.ts';
import { attributesMatch, byNewestTrace, byOperation, countDependencies, dependencyList, type LogFacts, logMatches, type SpanFacts, spanFactsMatch, summarizeTrace } from '../query-helpers.ts';
import { chunkLineRefs, docText, logFromJson, spanFromJson, type LogHeader, type SpanHeader } from '../rowjson.ts';

/** Where a row's document is: bytes [docStart, docEnd) of an arrived chunk. */
interface DocRef {
  buf: Buffer;
  docStart: number;
  docEnd: number;
}

interface SpanEntry extends SpanFacts, DocRef {
  kind: number;
}

interface LogEntry extends LogFacts, DocRef {
  /** Insertion order, to keep newest-first stable among equal times. */
  seq: number;
}

/** A FIFO of rows with their encoded size, for oldest-first eviction. */
class Fifo<T> {
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
  *[Symbol.iterator](): Generator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i]!.row;
  }
}

/** The memory store's bounds; the oldest rows are evicted past any of them. */
export interface MemoryOptions {
  maxSpans: number;
  maxLogs: number;
  /** Bytes of stored row documents (object overhead comes on top). */
  maxBytes: number;
}

class MemoryBackend implements StorageBackend, StoreStats {
  readonly name = 'memory';
  readonly encoder = { name: 'rowjson', options: {} } as const;
  private readonly spans = new Fifo<SpanEntry>();
  private readonly logs = new Fifo<LogEntry>();
  private readonly byTrace = new Map<string, SpanEntry[]>();
  /** Span ids stored per trace, so a resent span is recognized in O(1) however large its trace. */
  private readonly idsByTrace = new Map<string, Set<string>>();
  /** Live span count per service and per (name, kind): listings stay exact as spans are evicted. */
  private readonly operations = new Map<string, Map<string, { op: Operation; spans: number }>>();
  private logSeq = 0;
  private readonly maxSpans: number;
  private readonly maxLogs: number;
  private readonly maxBytes: number;
  private readonly deps: BackendDeps;

  constructor(options: MemoryOptions, deps: BackendDeps) {
    this.maxSpans = options.maxSpans;
    this.maxLogs = options.maxLogs;
    this.maxBytes = options.maxBytes;
    this.deps = deps;
  }

  async start(): Promise<void> {}

  async write(batch: WriteBatch): Promise<WriteResult> {
    if (batch.signal === 'traces') this.storeSpans(batch.chunks);
    else this.storeLogs(batch.chunks);
    this.evict();
    return { kind: 'success' };
  }

  private storeSpans(chunks: Uint8Array[]): void {
    for (const { header: h, buf, docStart, docEnd } of chunkLineRefs<SpanHeader>(chunks)) {
      const list = this.byTrace.get(h[0]);
      const ids = this.idsByTrace.get(h[0]);
      // A retried batch or a client's resend carries spans already stored: keep one copy.
      if (ids?.has(h[1])) continue;
      const e: SpanEntry = {
        traceId: h[0],
        spanId: h[1],
        parentSpanId: h[2],
        serviceName: h[3],
        name: h[4],
        startTimeUnixNano: BigInt(h[5]),
        endTimeUnixNano: BigInt(h[6]),
        durationNano: BigInt(h[7]),
        statusCode: h[8],
        kind: h[9],
        buf,
        docStart,
        docEnd,
      };
      this.spans.push(e, docEnd - docStart);
      this.countOperation(e, 1);
      if (list && ids) {
        list.push(e);
        ids.add(e.spanId);
      } else {
        this.byTrace.set(e.traceId, [e]);
        this.idsByTrace.set(e.traceId, new Set([e.spanId]));
      }
    }
  }

  private storeLogs(chunks: Uint8Array[]): void {
    for (const { header: h, buf, docStart, docEnd } of chunkLineRefs<LogHeader>(chunks)) {
      this.logs.push({ time: BigInt(h[0]), traceId: h[1], serviceName: h[2], severityNumber: h[3], buf, docStart, docEnd, seq: this.logSeq++ }, docEnd - docStart);
    }
  }

  private evict(): void {
    let spans = 0;
    let logs = 0;
    while (this.spans.length > this.maxSpans || (this.spans.length > 0 && this.spans.bytes + this.logs.bytes > this.maxBytes && this.spans.bytes >= this.logs.bytes)) {
      const s = this.spans.shift()!;
      const list = this.byTrace.get(s.traceId)!;
      list.splice(list.indexOf(s), 1);
      this.idsByTrace.get(s.traceId)!.delete(s.spanId);
      this.countOperation(s, -1);
      if (list.length === 0) {
        this.byTrace.delete(s.traceId);
        this.idsByTrace.delete(s.traceId);
      }
      spans++;
    }
    while (this.logs.length > this.maxLogs || (this.logs.length > 0 && this.spans.bytes + this.logs.bytes > this.maxBytes)) {
      this.logs.shift();
      logs++;
    }
    if (spans > 0) this.deps.metrics.evictedRows.inc({ signal: 'traces' }, spans);
    if (logs > 0) this.deps.metrics.evictedRows.inc({ signal: 'logs' }, logs);
  }

  private countOperation(e: SpanEntry, delta: 1 | -1): void {
    let ops = this.operations.get(e.serviceName);
    if (!ops) this.operations.set(e.serviceName, (ops = new Map()));
    const key = e.kind + '\u0000' + e.name;
    const o = ops.get(key) ?? { op: { name: e.name, kind: e.kind }, spans: 0 };
    o.spans += delta;
    if (o.spans > 0) ops.set(key, o);
    else ops.delete(key);
    if (ops.size === 0) this.operations.delete(e.serviceName);
  }

  async getServices(): Promise<string[]> {
    return [...this.operations.keys()].sort();
  }

  async getOperations(q: OperationQuery): Promise<Operation[]> {
    const ops = [...(this.operations.get(q.service)?.values() ?? [])].map((o) => ({ ...o.op }));
    return ops.filter((o) => q.kind === undefined || o.kind === q.kind).sort(byOperation);
  }

  async getDependencies(q: DependencyQuery): Promise<DependencyLink[]> {
    const counts = new Map<string, number>();
    for (const spans of this.byTrace.values()) countDependencies(spans, q, counts);
    return dependencyList(counts);
  }

  async getTrace(traceId: string): Promise<SpanRow[]> {
    return (this.byTrace.get(traceId) ?? []).map((e) => spanFromJson(docText(e)));
  }

  async searchTraces(q: TraceQuery): Promise<TraceSummary[]> {
    const wantAttrs = (q.attributes?.length ?? 0) > 0;
    const matches = (e: SpanEntry) => spanFactsMatch(e, q) && (!wantAttrs || attributesMatch(spanFromJson(docText(e)).attributes, q));
    // Rank traces by their newest matching span (the port's ranking), keep `limit`, then order by trace start.
    const ranked: { newest: bigint; spans: SpanEntry[] }[] = [];
    for (const spans of this.byTrace.values()) {
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

  async searchLogs(q: LogQuery): Promise<LogRow[]> {
    const out: LogEntry[] = [];
    for (const r of this.logs) if (logMatches(r, q)) out.push(r);
    out.sort((a, b) => (a.time === b.time ? b.seq - a.seq : a.time > b.time ? -1 : 1));
    return out.slice(0, q.limit).map((e) => logFromJson(docText(e)));
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

  async shutdown(): Promise<void> {}
}

/** Creates the bounded in-memory backend. */
export function createMemoryBackend(options: MemoryOptions, deps: BackendDeps): StorageBackend {
  return new MemoryBackend(options, deps);
}
