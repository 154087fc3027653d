// Query semantics shared by the adapters that evaluate queries in JavaScript (memory, and the
// trace summaries of sqlite): one definition of "matches" and of a trace summary.
import { anyValueToString, type LogQuery, type LogRow, type SpanRow, type TraceQuery, type TraceSummary } from './backend.ts';

/** True when this one span satisfies every span-level condition of the query. */
export function spanMatches(s: SpanRow, q: TraceQuery): boolean {
  if (q.service !== undefined && s.serviceName !== q.service) return false;
  if (q.name !== undefined && s.name !== q.name) return false;
  if (q.startNano !== undefined && s.startTimeUnixNano < q.startNano) return false;
  if (q.endNano !== undefined && s.startTimeUnixNano > q.endNano) return false;
  if (q.minDurationNano !== undefined && s.durationNano < q.minDurationNano) return false;
  if (q.maxDurationNano !== undefined && s.durationNano > q.maxDurationNano) return false;
  for (const want of q.attributes ?? []) {
    if (!s.attributes.some((kv) => kv.key === want.key && anyValueToString(kv.value) === want.value)) return false;
  }
  return true;
}

/** Summarizes the stored spans of one trace. */
export function summarizeTrace(spans: readonly SpanRow[]): TraceSummary {
  let root: SpanRow | undefined;
  let first = spans[0]!;
  let start = first.startTimeUnixNano;
  let end = first.endTimeUnixNano;
  let hasError = false;
  for (const s of spans) {
    if (s.startTimeUnixNano < start) start = s.startTimeUnixNano;
    if (s.endTimeUnixNano > end) end = s.endTimeUnixNano;
    if (s.startTimeUnixNano < first.startTimeUnixNano) first = s;
    if (s.parentSpanId === '' && (root === undefined || s.startTimeUnixNano < root.startTimeUnixNano)) root = s;
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

/** True when a log record satisfies the query. */
export function logMatches(r: LogRow, q: LogQuery): boolean {
  if (q.traceId !== undefined && r.traceId !== q.traceId) return false;
  if (q.service !== undefined && r.serviceName !== q.service) return false;
  const t = logTime(r);
  if (q.startNano !== undefined && t < q.startNano) return false;
  if (q.endNano !== undefined && t > q.endNano) return false;
  if (q.minSeverity !== undefined && r.severityNumber < q.minSeverity) return false;
  return true;
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
