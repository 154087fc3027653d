// Scenario: the memory store kept full. Writes spans well past storage.memory.maxBytes (so the
// oldest are evicted all along) and checks the process RSS against the bound issue #10 sets:
// maxBytes + 25 %. The baseline is the RSS of the same process, after a full GC, before the store
// holds anything. RSS is the process's, so it needs a process of its own and --expose-gc:
// bench/run.ts runs it in a child (scenario 'memory'); by hand:
//
//   node --expose-gc bench/memory-store.ts [maxMiB=256] [spans=800000]
import { pino } from 'pino';
import { DEFAULT_TENANT } from '../src/model/tenant.ts';
import { loadRequestEncoder } from '../src/pipeline/transcode/registry.ts';
import { createMemoryBackend } from '../src/storage/memory/index.ts';
import { createMetrics } from '../src/telemetry/metrics.ts';
import { memory } from './harness.ts';
import { DEFAULT_CACHE_DIR } from './ingest.ts';
import { defaultSpec, loadTraffic, stampTraceIds } from './traffic.ts';

const MiB = 2 ** 20;

/** The bound's allowance over storage.memory.maxBytes. */
export const MEMORY_STORE_SLACK = 0.25;

export interface MemoryStoreFigures {
  scenario: 'memory-store-full';
  /** storage.memory.maxBytes of the store under test. */
  maxBytes: number;
  spansWritten: number;
  /** Spans and document bytes the store held at the end (its stats()), null if it has none. */
  spansKept: number | null;
  storeBytes: number | null;
  /** The store evicted: it held fewer spans than were written to it. */
  full: boolean | null;
  /** Baseline: RSS after a full GC, store started and empty. */
  rssAtRestBytes: number;
  /** RSS after the last write and a full GC. */
  rssAfterBytes: number;
  /** Highest RSS: sampled during the writes, and this process's VmHWM (its own, unlike ru_maxrss, which keeps the forking parent's peak across exec). */
  peakRssBytes: number;
  boundBytes: number;
  boundFormula: string;
  peakWithinBound: boolean;
  /** Whether global.gc was available (without --expose-gc the rest figure carries garbage). */
  exposedGc: boolean;
  /** After the final GC. */
  heap: { usedBytes: number; totalBytes: number; arrayBuffersBytes: number };
  seconds: number;
}

/**
 * Fills a memory store of maxMiB with the bench traffic (bench/traffic.ts: the requests of the
 * ingest runs, fresh trace ids on every send), encoded as the decode workers encode it, one
 * request a write, and measures RSS.
 */
export async function run(opts: { maxMiB?: number; spans?: number } = {}): Promise<MemoryStoreFigures> {
  const maxMiB = opts.maxMiB ?? 256;
  const total = opts.spans ?? 600_000;
  const t0 = performance.now();
  const gcFn = (globalThis as { gc?: () => void }).gc;
  const gc = gcFn ?? (() => {});
  const store = createMemoryBackend({ maxSpans: 100_000_000, maxLogs: 1000, maxBytes: maxMiB * MiB, maxAgeMs: 0 }, { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await store.start();
  // Whatever format the store declares, so a change of the store's format keeps this honest.
  const encoder = await loadRequestEncoder(store.encoder, { maxNestingDepth: 100 });
  const requests = loadTraffic(defaultSpec('traces'), DEFAULT_CACHE_DIR);
  gc();
  const rest = process.memoryUsage().rss;
  let peak = rest;
  let written = 0;
  try {
    for (let i = 0; written < total; i++) {
      const encoded = encoder.encode('traces', 'protobuf', stampTraceIds(requests[i % requests.length]!, 1, i));
      const chunks = encoded.chunks.map((c) => c.data);
      const bytes = chunks.reduce((n, c) => n + c.byteLength, 0);
      const result = await store.write({ signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows: encoded.accepted, bytes, chunks, batchId: `b${i}` });
      if (result.kind !== 'success') throw new Error(`memory store refused a write: ${JSON.stringify(result)}`);
      written += encoded.accepted;
      if (i % 20 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    gc();
    const mu = process.memoryUsage();
    // VmHWM, not process.resourceUsage().maxRSS: ru_maxrss keeps over exec the peak of the process
    // this one was forked from (bench/run.ts, which runs it as a child), and reported that.
    peak = Math.max(peak, mu.rss, memory(process.pid).peakRssBytes);
    const traces = (await store.stats?.())?.signals.find((s) => s.signal === 'traces');
    const bound = rest + (1 + MEMORY_STORE_SLACK) * maxMiB * MiB;
    return {
      scenario: 'memory-store-full',
      maxBytes: maxMiB * MiB,
      spansWritten: written,
      spansKept: traces?.rows ?? null,
      storeBytes: traces?.bytes ?? null,
      full: traces?.rows === undefined ? null : traces.rows < written,
      rssAtRestBytes: rest,
      rssAfterBytes: mu.rss,
      peakRssBytes: peak,
      boundBytes: bound,
      boundFormula: `RSS at rest + storage.memory.maxBytes + ${MEMORY_STORE_SLACK * 100} %`,
      peakWithinBound: peak <= bound,
      exposedGc: gcFn !== undefined,
      heap: { usedBytes: mu.heapUsed, totalBytes: mu.heapTotal, arrayBuffersBytes: mu.arrayBuffers },
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await store.shutdown();
  }
}

if (import.meta.main) {
  const f = await run({ maxMiB: Number(process.argv[2] ?? 256), spans: Number(process.argv[3] ?? 800_000) });
  const m = (n: number | null) => (n === null ? '–' : (n / MiB).toFixed(0));
  console.log(
    `memory store, maxBytes ${m(f.maxBytes)} MiB, ${f.spansWritten} spans written, ${f.spansKept ?? '?'} kept (${m(f.storeBytes)} MiB counted): ` +
      `RSS at rest ${m(f.rssAtRestBytes)} MiB, after ${m(f.rssAfterBytes)} MiB, peak ${m(f.peakRssBytes)} MiB; ` +
      `bound ${f.boundFormula} = ${m(f.boundBytes)} MiB: ${f.peakWithinBound ? 'HELD' : 'EXCEEDED'}${f.full === false ? ' (but the store never filled)' : ''}; ` +
      `after a full GC: V8 heap used ${m(f.heap.usedBytes)} of ${m(f.heap.totalBytes)} MiB, array buffers ${m(f.heap.arrayBuffersBytes)} MiB` +
      (f.exposedGc ? '' : ' (no --expose-gc: figures include garbage)'),
  );
}
