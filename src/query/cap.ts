// query.maxSpansPerTrace: a trace read answers at most that many spans, so one trace of a million
// spans cannot hold the read API's event loop in one JSON.stringify of hundreds of megabytes.
// The earliest spans are kept (the root and the start of the waterfall), and the answer says it
// was cut and by how much.
import type { SpanRow } from '../model/rows.ts';

/** A trace's spans as a read answers them, with the warning to attach when they were cut. */
export interface CappedTrace {
  spans: SpanRow[];
  warning: string | undefined;
}

/** Keeps the `max` earliest-starting spans of a trace. */
export function capTrace(spans: SpanRow[], max: number): CappedTrace {
  if (spans.length <= max) return { spans, warning: undefined };
  const kept = [...spans].sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : a.startTimeUnixNano > b.startTimeUnixNano ? 1 : a.spanId < b.spanId ? -1 : 1)).slice(0, max);
  return { spans: kept, warning: truncationWarning(spans.length, max) };
}

/** The words of a cut trace's warning. */
export function truncationWarning(total: number, max: number): string {
  return `trace truncated: showing the ${max} earliest of its ${total} spans (query.maxSpansPerTrace)`;
}
