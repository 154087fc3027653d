// query.maxSpansPerTrace: a trace read answers at most that many spans, so one trace of a million
// spans cannot hold the read API's event loop in decoding it or in one JSON.stringify of hundreds
// of megabytes. The store keeps the earliest spans (the root and the start of the waterfall) and
// decodes only those (StoreReader.readTrace); the answer says it was cut and by how much. A trace of
// a few hundred large spans is cut the same way at a byte bound (the read API's, a sixteenth of the
// V8 old generation), or it ran the collector out of heap.
import type { SpanRow } from '../model/rows.ts';
import type { ServerResponse } from 'node:http';
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
export async function readCapped(store: StoreReader, tenant: string, traceId: string, max: number, option = 'query.maxSpansPerTrace', maxBytes?: number, bytesOption = `the most the read API answers of one read: ${maxBytes} stored bytes`, signal?: AbortSignal): Promise<CappedTrace> {
  const { spans, total, bytes = 0, cut } = await store.readTrace(tenant, traceId, max, maxBytes, signal);
  const why = cut ? bytesOption : option;
  return { spans, bytes, warning: total > max || cut === true ? `trace truncated: showing the ${spans.length} earliest of its ${total} spans (${why})` : undefined };
}

/**
 * Whether the trace has a span, reading one: what a HEAD of a trace needs for its status (200 or
 * 404), where building the answer it discards would read, translate and serialise every span.
 */
export async function traceFound(store: StoreReader, tenant: string, traceId: string, signal?: AbortSignal): Promise<boolean> {
  return (await store.readTrace(tenant, traceId, 1, undefined, signal)).spans.length > 0;
}

/** The bounds of an answer of several traces (the Jaeger APIs' searches). */
export interface SearchBounds {
  maxSpansPerTrace: number;
  /** query.maxSpansPerSearch: spans over all the traces. */
  maxSpansPerSearch: number;
  /** The read API's byte bound, over all the traces; none when absent. */
  maxReadBytes?: number | undefined;
  /**
   * Aborted when the client is gone (its connection closed): the trace being read stops on the
   * store and no further trace is read, so a search the reader cancelled (Grafana, the Jaeger UI)
   * does not keep the store's read threads on traces nobody will see.
   */
  signal?: AbortSignal | undefined;
}

/** Traces read within SearchBounds. */
export interface BoundedTraces {
  /** The traces found, in the order asked, each with its truncation warning. */
  traces: (CappedTrace & { traceId: string })[];
  /** Ids asked for that no span has. */
  unknown: string[];
  /** Ids not read: the answer reached its bound first. */
  leftOut: string[];
  /** Why traces were left out, for the last trace kept (or the answer) to say; undefined when none were. */
  cut: string | undefined;
}

/**
 * The traces of ids in their order, each cut as a trace read is, and together at
 * query.maxSpansPerSearch and at the read API's byte bound: once that many spans or bytes are
 * read the rest are left out, and `cut` says so. One read after another, so no more than that is
 * held while the answer is built (a search of 20 traces of 20,000 spans would otherwise hold
 * 400,000 at once).
 */
export async function readBounded(store: StoreReader, tenant: string, ids: readonly string[], b: SearchBounds): Promise<BoundedTraces> {
  const traces: BoundedTraces['traces'] = [];
  const unknown: string[] = [];
  let left = b.maxSpansPerSearch;
  let bytesLeft = b.maxReadBytes ?? Infinity;
  let next = 0;
  for (; next < ids.length && left > 0 && bytesLeft > 0; next++) {
    if (b.signal?.aborted === true) break;
    const traceId = ids[next]!;
    const maxBytes = b.maxReadBytes === undefined ? undefined : bytesLeft;
    // Less than the byte bound: what this answer has left of it.
    const bytesOption = maxBytes !== undefined && maxBytes < b.maxReadBytes! ? `the most the read API answers of one search: ${b.maxReadBytes} stored bytes` : undefined;
    const t = left < b.maxSpansPerTrace
      ? await readCapped(store, tenant, traceId, left, 'query.maxSpansPerSearch', maxBytes, bytesOption, b.signal)
      : await readCapped(store, tenant, traceId, b.maxSpansPerTrace, undefined, maxBytes, bytesOption, b.signal);
    if (t.spans.length === 0) {
      unknown.push(traceId);
      continue;
    }
    traces.push({ ...t, traceId });
    left -= t.spans.length;
    bytesLeft -= t.bytes;
  }
  let cut: string | undefined;
  if (next < ids.length && traces.length > 0 && b.signal?.aborted !== true) {
    const n = ids.length - next;
    const bound = left > 0 ? `the read API's byte bound (${b.maxReadBytes} stored bytes)` : `query.maxSpansPerSearch (${b.maxSpansPerSearch} spans)`;
    cut = `search answer cut at ${bound}: ${n} more ${n === 1 ? 'trace' : 'traces'} left out; narrow the search or lower its limit`;
  }
  return { traces, unknown, leftOut: ids.slice(next), cut };
}

/**
 * A signal aborted when the response's connection closes before the answer is sent (the client
 * gave up: a cancelled Grafana query, a closed tab), for SearchBounds.signal and the store's
 * reads (StoreReader). A read that fails once it is aborted is not the store failing: nobody is
 * answered and nothing is logged.
 */
export function clientGone(res: ServerResponse): AbortSignal {
  const gone = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) gone.abort();
  });
  return gone.signal;
}
