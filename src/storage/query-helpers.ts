// Query semantics shared by the adapters that evaluate queries in JavaScript (memory, and the
// trace summaries of sqlite): one definition of "matches" and of a trace summary.
import { anyValueToString, type KeyValue, type LogRow, type SpanRow } from '../model/rows.ts';
import type { DependencyLink, DependencyQuery, LogQuery, LogSearch, Operation, TraceQuery, TraceRead, TraceSummary } from './backend.ts';

/** The columns of a span that searches and summaries use (a store may hold only these, plus the document). */
export type SpanFacts = Pick<SpanRow, 'traceId' | 'spanId' | 'parentSpanId' | 'serviceName' | 'name' | 'startTimeUnixNano' | 'endTimeUnixNano' | 'durationNano' | 'statusCode'>;

/** What spanFactsMatch reads of a span: its facts and its kind. */
export type SpanSearchFacts = SpanFacts & Pick<SpanRow, 'kind'>;

const TRACE_ID_HEX = /^[0-9a-f]{32}$/;

/** Whether a read's trace id is in the form the stores keep (32 lowercase hex digits); any other finds nothing. */
export function isTraceIdHex(id: string): boolean {
  return TRACE_ID_HEX.test(id);
}

/** Span order of a cut trace read (StoreReader.readTrace): earliest start first, then span id. */
export function byStartThenId(a: Pick<SpanFacts, 'startTimeUnixNano' | 'spanId'>, b: Pick<SpanFacts, 'startTimeUnixNano' | 'spanId'>): number {
  return a.startTimeUnixNano < b.startTimeUnixNano ? -1 : a.startTimeUnixNano > b.startTimeUnixNano ? 1 : a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : 0;
}

/** A span's sort key for earliestSpans: its start read once, its id only when a tie asks (then kept). */
class StartKey<T extends Pick<SpanFacts, 'startTimeUnixNano' | 'spanId'>> {
  readonly span: T;
  readonly startTimeUnixNano: bigint;
  private id: string | undefined;
  constructor(span: T) {
    this.span = span;
    this.startTimeUnixNano = span.startTimeUnixNano;
  }
  get spanId(): string {
    return (this.id ??= this.span.spanId);
  }
}

/**
 * The `max` first of spans in byStartThenId order (all of them, as they are, when they are no
 * more). A span may be a view over its record (the memory store), whose getters decode on every
 * call: sorted by StartKeys.
 */
export function earliestSpans<T extends Pick<SpanFacts, 'startTimeUnixNano' | 'spanId'>>(spans: T[], max: number): T[] {
  if (spans.length <= max) return spans;
  return spans.map((s) => new StartKey(s)).sort(byStartThenId).slice(0, max).map((k) => k.span);
}

/** StoreReader.readTrace's answer: `spans` of the trace's `total`, and with a byte bound asked for (maxBytes) their bytes and whether it cut. */
export function traceRead(spans: SpanRow[], total: number, maxBytes: number | undefined, bytes: number, cut: boolean): TraceRead {
  const read: TraceRead = { spans, total };
  if (maxBytes !== undefined) read.bytes = bytes;
  if (cut) read.cut = true;
  return read;
}

/** StoreReader.searchLogs's answer: the records, `cut` set when a byte bound left some out. */
export function logSearch(rows: LogRow[], cut: boolean): LogSearch {
  const out: LogSearch = rows;
  if (cut) out.cut = true;
  return out;
}

/**
 * StoreReader.readTrace's choice: the earliest `maxSpans` of spans (earliestSpans), then of those,
 * in byStartThenId order, no more than `maxBytes` of stored bytes hold (withinBytes: the first
 * whatever its size). `bytes` is what the kept hold; `cut` says the bytes left some out. Sorted
 * only when cut by either bound (as earliestSpans).
 */
export function earliestWithinBytes<T extends Pick<SpanFacts, 'startTimeUnixNano' | 'spanId'>>(spans: T[], maxSpans: number, size: (span: T) => number, maxBytes: number | undefined): { kept: T[]; bytes: number; cut: boolean } {
  const first = earliestSpans(spans, maxSpans);
  let bytes = 0;
  for (const s of first) bytes += size(s);
  if (maxBytes === undefined || bytes <= maxBytes || first.length <= 1) return { kept: first, bytes, cut: false };
  const ordered = first === spans ? first.map((s) => new StartKey(s)).sort(byStartThenId).map((k) => k.span) : first;
  const { kept } = withinBytes(ordered, size, maxBytes);
  bytes = 0;
  for (const s of kept) bytes += size(s);
  return { kept, bytes, cut: true };
}

/** The conditions of a query other than attributes. */
export function spanFactsMatch(s: SpanSearchFacts, q: TraceQuery): boolean {
  if (q.service !== undefined && s.serviceName !== q.service) return false;
  if (q.name !== undefined && s.name !== q.name) return false;
  if (q.startNano !== undefined && s.startTimeUnixNano < q.startNano) return false;
  if (q.endNano !== undefined && s.startTimeUnixNano > q.endNano) return false;
  if (q.minDurationNano !== undefined && s.durationNano < q.minDurationNano) return false;
  if (q.maxDurationNano !== undefined && s.durationNano > q.maxDurationNano) return false;
  if (q.statusCode !== undefined && s.statusCode !== q.statusCode) return false;
  if (q.kind !== undefined && s.kind !== q.kind) return false;
  return true;
}

/** The attribute conditions of a query: each key present with a value that renders to the wanted string. */
export function attributesMatch(attributes: readonly KeyValue[], q: TraceQuery): boolean {
  for (const want of q.attributes ?? []) {
    if (!attributes.some((kv) => kv.key === want.key && anyValueToString(kv.value) === want.value)) return false;
  }
  return true;
}

/**
 * Summarizes the stored spans of one trace. Its root is the earliest parentless span, else the
 * earliest span; of several that start together the smallest span id (byStartThenId), so that
 * every store names a trace alike whatever order its spans arrived or are stored in. It lasts from
 * its earliest start to its latest start plus duration (a span ending before it starts lasts 0).
 */
export function summarizeTrace(spans: readonly SpanFacts[]): TraceSummary {
  let root: SpanFacts | undefined;
  let first = spans[0]!;
  let start = first.startTimeUnixNano;
  let end = start;
  let hasError = false;
  for (const s of spans) {
    if (s.startTimeUnixNano < start) start = s.startTimeUnixNano;
    // A span ends at its start plus its duration, which is 0 when its end precedes its start.
    const ends = s.startTimeUnixNano + s.durationNano;
    if (ends > end) end = ends;
    if (byStartThenId(s, first) < 0) first = s;
    if (s.parentSpanId === '' && (root === undefined || byStartThenId(s, root) < 0)) root = s;
    if (s.statusCode === 2) hasError = true;
  }
  const r = root ?? first;
  return {
    traceId: r.traceId,
    rootServiceName: r.serviceName,
    rootSpanName: r.name,
    startTimeUnixNano: start,
    durationNano: end > start ? end - start : 0n,
    spanCount: spans.length,
    hasError,
  };
}

/** Newest first; ties broken by trace id so results are stable. */
export function byNewestTrace(a: TraceSummary, b: TraceSummary): number {
  if (a.startTimeUnixNano !== b.startTimeUnixNano) return a.startTimeUnixNano > b.startTimeUnixNano ? -1 : 1;
  return a.traceId < b.traceId ? -1 : a.traceId > b.traceId ? 1 : 0;
}

/** The columns of a log record that searches use; time is logTime() of the record. */
export interface LogFacts {
  time: bigint;
  traceId: string;
  serviceName: string;
  severityNumber: number;
}

/** True when a log record satisfies the query. */
export function logMatches(r: LogFacts, q: LogQuery): boolean {
  if (q.traceId !== undefined && r.traceId !== q.traceId) return false;
  if (q.service !== undefined && r.serviceName !== q.service) return false;
  const t = r.time;
  if (q.startNano !== undefined && t < q.startNano) return false;
  if (q.endNano !== undefined && t > q.endNano) return false;
  if (q.minSeverity !== undefined && r.severityNumber < q.minSeverity) return false;
  return true;
}

/**
 * The items, in order, until they hold `maxBytes` (LogQuery.maxBytes): the first is kept whatever
 * its size, and `cut` says some were left out. Reads no further than it keeps, so a lazy iterable
 * (a statement's rows) is not read past the bound. No bound when `maxBytes` is absent.
 */
export function withinBytes<T>(items: Iterable<T>, size: (item: T) => number, maxBytes: number | undefined): { kept: T[]; cut: boolean } {
  const kept: T[] = [];
  let bytes = 0;
  for (const item of items) {
    bytes += size(item);
    if (maxBytes !== undefined && kept.length > 0 && bytes > maxBytes) return { kept, cut: true };
    kept.push(item);
  }
  return { kept, cut: false };
}

/** A record's time for ordering and ranges: its timestamp, or the observed time when that is unset. */
export function logTime(r: LogRow): bigint {
  return r.timeUnixNano !== 0n ? r.timeUnixNano : r.observedTimeUnixNano;
}

/** Newest first. */
export function byNewestLog(a: LogRow, b: LogRow): number {
  const ta = logTime(a);
  const tb = logTime(b);
  return ta === tb ? 0 : ta > tb ? -1 : 1;
}

/** Orders operations by name, then kind (the port's order). */
export function byOperation(a: Operation, b: Operation): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.kind - b.kind;
}

/** Orders dependency links by parent, then child (the port's order). */
export function byDependency(a: DependencyLink, b: DependencyLink): number {
  if (a.parent !== b.parent) return a.parent < b.parent ? -1 : 1;
  return a.child < b.child ? -1 : a.child > b.child ? 1 : 0;
}

/** Counts parent-service → child-service calls in one trace's spans, adding to `counts` (key parent\0child). */
export function countDependencies(
  spans: readonly Pick<SpanFacts, 'spanId' | 'parentSpanId' | 'serviceName' | 'startTimeUnixNano'>[],
  q: DependencyQuery,
  counts: Map<string, number>,
): void {
  const serviceOf = new Map<string, string>();
  for (const s of spans) serviceOf.set(s.spanId, s.serviceName);
  for (const s of spans) {
    if (s.parentSpanId === '' || s.startTimeUnixNano < q.startNano || s.startTimeUnixNano > q.endNano) continue;
    const parent = serviceOf.get(s.parentSpanId);
    if (parent === undefined || parent === s.serviceName) continue;
    const key = dependencyKey(parent, s.serviceName);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
}

/**
 * The key of a (parent, child) pair in dependency counts. JSON, not the names joined by a
 * separator: a service name may hold any character (U+0000 too), and a joined key then split the
 * names in the wrong place and merged ("a\0b", "c") with ("a", "b\0c").
 */
export function dependencyKey(parent: string, child: string): string {
  return JSON.stringify([parent, child]);
}

/** The links of countDependencies' counts, in the port's order. */
export function dependencyList(counts: Map<string, number>): DependencyLink[] {
  return [...counts].map(([k, callCount]) => {
    const [parent, child] = JSON.parse(k) as [string, string];
    return { parent, child, callCount };
  }).sort(byDependency);
}
