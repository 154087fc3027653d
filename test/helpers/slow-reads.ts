// A store whose trace reads are slowed and counted, and the large traces that fill a socket: what
// the tests of the read API's turns, cancellations and sliced answers read against.
import type { StorageBackend, StoreReader } from '../../src/storage/backend.ts';
import { makeSpan, makeTrace, writeSpans } from './rows.ts';

/** The counts of a store's trace reads slowed by slowTraceReads; delayMs may be changed between reads. */
export interface SlowReads {
  /** Reads started. */
  reads: number;
  /** Reads running now. */
  running: number;
  /** The most running at once. */
  most: number;
  delayMs: number;
}

/**
 * Slows store.readTrace by delayMs (for the trace ids `only` accepts, every one when absent),
 * counting the reads, those running, and the most at once: as slow as a trace of thousands of
 * spans on a busy disk, the real store answering them.
 */
export function slowTraceReads(store: StoreReader, delayMs: number, only?: (traceId: string) => boolean): SlowReads {
  const counts: SlowReads = { reads: 0, running: 0, most: 0, delayMs };
  const readTrace = store.readTrace.bind(store);
  store.readTrace = async (...args) => {
    if (only !== undefined && !only(args[1])) return readTrace(...args);
    counts.reads++;
    counts.running++;
    counts.most = Math.max(counts.most, counts.running);
    try {
      await new Promise((r) => setTimeout(r, counts.delayMs));
      return await readTrace(...args);
    } finally {
      counts.running--;
    }
  };
  return counts;
}

/** Writes a trace of `spans` spans with a 4 KB attribute each (MBs of Jaeger JSON: more than the socket buffers hold) and a trace of one span; their ids. */
export async function writeBigAndSmall(store: StorageBackend, spans: number): Promise<{ big: string; small: string }> {
  const pad = [{ key: 'pad', value: { stringValue: 'x'.repeat(4000) } }];
  const trace = makeTrace(spans, { attributes: pad });
  const one = makeSpan();
  await writeSpans(store, [...trace, one]);
  return { big: trace[0]!.traceId, small: one.traceId };
}
