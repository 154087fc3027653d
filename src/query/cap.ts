// query.maxSpansPerTrace: a trace read answers at most that many spans, so one trace of a million
// spans cannot hold the read API's event loop in decoding it or in one JSON.stringify of hundreds
// of megabytes. The store keeps the earliest spans (the root and the start of the waterfall) and
// decodes only those (StoreReader.readTrace); the answer says it was cut and by how much. A trace of
// a few hundred large spans is cut the same way at a byte bound (the read API's, a sixteenth of the
// V8 old generation), or it ran the collector out of heap.
import type { SpanRow } from '../model/rows.ts';
import type { StoreReader } from '../storage/backend.ts';

/** A trace's spans as a read answers them, with the warning to attach when they were cut. */
export interface CappedTrace {
  spans: SpanRow[];
  warning: string | undefined;
  /** The stored bytes of spans (0 without a byte bound). */
  bytes: number;
}

/**
 * A trace's earliest `max` spans within `maxBytes` stored bytes, and the warning (naming the option
 * that set max, or the byte bound: bytesOption, when maxBytes is what is left of it) when it has
 * more; no spans when unknown.
 */
export async function readCapped(store: StoreReader, tenant: string, traceId: string, max: number, option = 'query.maxSpansPerTrace', maxBytes?: number, bytesOption = `the most the read API answers of one read: ${maxBytes} stored bytes`): Promise<CappedTrace> {
  const { spans, total, bytes = 0, cut } = await store.readTrace(tenant, traceId, max, maxBytes);
  const why = cut ? bytesOption : option;
  return { spans, bytes, warning: total > max || cut === true ? `trace truncated: showing the ${spans.length} earliest of its ${total} spans (${why})` : undefined };
}
