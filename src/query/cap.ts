// query.maxSpansPerTrace: a trace read answers at most that many spans, so one trace of a million
// spans cannot hold the read API's event loop in decoding it or in one JSON.stringify of hundreds
// of megabytes. The store keeps the earliest spans (the root and the start of the waterfall) and
// decodes only those (StoreReader.readTrace); the answer says it was cut and by how much.
import type { SpanRow } from '../model/rows.ts';
import type { StoreReader } from '../storage/backend.ts';

/** A trace's spans as a read answers them, with the warning to attach when they were cut. */
export interface CappedTrace {
  spans: SpanRow[];
  warning: string | undefined;
}

/** A trace's earliest `max` spans, and the warning (naming the option that set max) when it has more; no spans when unknown. */
export async function readCapped(store: StoreReader, tenant: string, traceId: string, max: number, option = 'query.maxSpansPerTrace'): Promise<CappedTrace> {
  const { spans, total } = await store.readTrace(tenant, traceId, max);
  return { spans, warning: total > max ? `trace truncated: showing the ${spans.length} earliest of its ${total} spans (${option})` : undefined };
}
