// One measured ingest run: start a receiver process (the collector with some options, or the
// null receiver), drive it with the load generator, wait for the collector to drain, and return
// the figures: accepted items/s, receiver CPU-seconds per million items, export latency, peak
// RSS, refused and lost items. Every scenario file is built from this.
import { join } from 'node:path';
import {
  cpuSeconds,
  cpuSecondsByThread,
  machineBusySeconds,
  memory,
  monotonicUs,
  metricByLabel,
  metricSum,
  scrape,
  sleep,
  startCollectorProcess,
  startNullReceiverProcess,
  REPO_DIR,
  type MetricSamples,
  type ServerProcess,
} from './harness.ts';
import { forkLoadgen, type LoadMode, type LoadgenResult } from './loadgen.ts';
import type { LatencySummary } from './stats.ts';
import type { BenchSignal, TrafficSpec } from './traffic.ts';

export const DEFAULT_CACHE_DIR = join(REPO_DIR, 'bench', 'out', 'traffic');

export type IngestTarget =
  | { kind: 'collector'; options: Record<string, string>; nodeArgs?: string[]; /** The checkout whose collector runs (default: this one). */ repoDir?: string }
  | { kind: 'null'; /** The null receiver's gRPC stack (default grpc-js, the collector's). */ grpcStack?: 'grpc-js' | 'node-http2' };

export interface IngestRunOptions {
  name: string;
  target: IngestTarget;
  transport: 'grpc' | 'http';
  signal: BenchSignal;
  traffic: TrafficSpec;
  cacheDir?: string;
  durationMs: number;
  mode: LoadMode;
  connections?: number;
  /** How long to wait after the load for the collector to write everything it accepted. */
  drainTimeoutMs?: number;
  /** RSS sampling period (the timeline is kept in the figures). */
  sampleEveryMs?: number;
  /** Called with the running target (e.g. to read more from it) before it is stopped. */
  beforeStop?: (p: ServerProcess) => Promise<void>;
  /** Send each request with its times moved to the moment of sending (LoadgenConfig.currentTimes). */
  currentTimes?: boolean;
}

export interface IngestFigures {
  name: string;
  target: 'collector' | 'null receiver';
  /** storage.backend, the delivery.ack the run set ("memory, ack = durable") and whether times were current ("sqlite, current timestamps"); 'none' for the null receiver. */
  backend: string;
  transport: 'grpc' | 'http';
  signal: BenchSignal;
  mode: LoadMode;
  /** Load window (first send to last answer), seconds. */
  durationS: number;
  offeredItemsPerS: number;
  /** Items the receiver accepted per second of load (collector: its accepted counter; null receiver: OK answers). */
  acceptedItemsPerS: number;
  /** Collector: rows written per second during the load window (storage keeping up or not). */
  writtenItemsPerSDuringLoad: number | null;
  /** Receiver process CPU (user+system, all threads) from the start of the load to the end of the drain. */
  cpuSeconds: number;
  cpuSecondsPerMillionItems: number;
  /** The same CPU by thread name (cpuSecondsByThread), per million items accepted. */
  cpuPerMillionByThread: Record<string, number>;
  latencyMs: LatencySummary;
  /** VmHWM of the receiver process. */
  peakRssBytes: number;
  /** VmRSS right before the load started. */
  idleRssBytes: number;
  rssTimeline: { tS: number; rssBytes: number }[];
  /** What the load generator got an OK for (minus partial-success rejections). */
  sentItems: number;
  /** Rows the collector wrote (tracehouse_writer_written_rows_total delta); null for the null receiver. */
  storedItems: number | null;
  /** sentItems − storedItems (less what `undrained` still held queued): must be 0. */
  lostItems: number | null;
  /** How long the collector took after the load to write or drop everything it accepted; null when it did not finish (see `undrained`) or for the null receiver. */
  drainS: number | null;
  /** The drain's wait (drainTimeoutMs) ran out with items accepted and neither written nor dropped, still queued: how many, and the wait in seconds. null: the drain finished. Absent in results from before 2026-12-07. */
  undrained?: { queuedItems: number; timeoutS: number } | null;
  droppedRows: number | null;
  refusedRequests: number;
  refusedItems: number;
  refusedByCode: Record<string, number>;
  /** The collector's tracehouse_receiver_refused_requests_total by reason. */
  collectorRefusedByReason: Record<string, number> | null;
  errorRequests: number;
  errorsByCode: Record<string, number>;
  rejectedItems: number;
  skippedItems: number;
  loadgenCpuS: number;
  /** The collector main thread's V8 heap right after the load (prom-client nodejs_* gauges; the workers' heaps are not in it), bytes. */
  mainHeapAtLoadEnd: { heapUsedBytes: number; heapTotalBytes: number; externalBytes: number } | null;
  /** CPU seconds the whole machine was busy during the window, and the part neither the receiver nor the load generator used (other load on the host). */
  machineBusyS: number;
  otherBusyS: number;
  /** The measured window (load start to drain end) on the monotonic clock, µs: profiles are cut to it. */
  windowUs: [number, number];
  /** The collector's command line (null receiver: its script). */
  command: string;
  /** Collector warnings and errors logged during the run. */
  warnings: string[];
}


function acceptedMetric(signal: BenchSignal): string {
  return signal === 'traces' ? 'tracehouse_receiver_accepted_spans_total' : 'tracehouse_receiver_accepted_log_records_total';
}

/** Runs one scenario configuration and measures it. */
export async function runIngest(o: IngestRunOptions): Promise<IngestFigures> {
  const isCollector = o.target.kind === 'collector';
  const target =
    o.target.kind === 'collector'
      ? await startCollectorProcess({ 'log.level': 'info', ...o.target.options }, o.target.nodeArgs ?? [], o.target.repoDir)
      : await startNullReceiverProcess(o.target.grpcStack);
  const opsUrl = 'opsUrl' in target ? (target.opsUrl as string) : '';
  const address = o.transport === 'grpc' ? target.grpcAddress : target.httpUrl;
  const loadgen = forkLoadgen({
    transport: o.transport,
    target: address,
    signal: o.signal,
    traffic: o.traffic,
    cacheDir: o.cacheDir ?? DEFAULT_CACHE_DIR,
    durationMs: o.durationMs,
    mode: o.mode,
    connections: o.connections ?? 2,
    refusedPauseMs: 50,
    timeoutMs: 120_000,
    currentTimes: o.currentTimes === true,
  });
  let sampler: NodeJS.Timeout | undefined;
  try {
    await loadgen.ready;
    const before: MetricSamples = isCollector ? await scrape(opsUrl) : [];
    const idleRssBytes = memory(target.pid).rssBytes;
    const cpu0 = cpuSeconds(target.pid);
    const threads0 = cpuSecondsByThread(target.pid);
    const machine0 = machineBusySeconds();
    const windowStartUs = monotonicUs();
    const t0 = performance.now();
    const rssTimeline: { tS: number; rssBytes: number }[] = [];
    sampler = setInterval(() => {
      try {
        rssTimeline.push({ tS: Math.round(performance.now() - t0) / 1000, rssBytes: memory(target.pid).rssBytes });
      } catch {
        // The process is gone; the run will say why.
      }
    }, o.sampleEveryMs ?? 500);
    const lg: LoadgenResult = await loadgen.start();
    const label = { signal: o.signal };
    let storedItems: number | null = null;
    let drainS: number | null = null;
    let undrained: IngestFigures['undrained'] = null;
    let writtenDuringLoad: number | null = null;
    let mainHeapAtLoadEnd: IngestFigures['mainHeapAtLoadEnd'] = null;
    let after: MetricSamples = [];
    if (isCollector) {
      const atEnd = await scrape(opsUrl);
      writtenDuringLoad = metricSum(atEnd, 'tracehouse_writer_written_rows_total', label) - metricSum(before, 'tracehouse_writer_written_rows_total', label);
      mainHeapAtLoadEnd = {
        heapUsedBytes: metricSum(atEnd, 'nodejs_heap_size_used_bytes'),
        heapTotalBytes: metricSum(atEnd, 'nodejs_heap_size_total_bytes'),
        externalBytes: metricSum(atEnd, 'nodejs_external_memory_bytes'),
      };
      const tEnd = performance.now();
      const drainTimeoutMs = o.drainTimeoutMs ?? 120_000;
      const deadline = tEnd + drainTimeoutMs;
      for (;;) {
        after = await scrape(opsUrl);
        const written = metricSum(after, 'tracehouse_writer_written_rows_total', label) - metricSum(before, 'tracehouse_writer_written_rows_total', label);
        const dropped = metricSum(after, 'tracehouse_writer_dropped_rows_total', label) - metricSum(before, 'tracehouse_writer_dropped_rows_total', label);
        const accepted = metricSum(after, acceptedMetric(o.signal)) - metricSum(before, acceptedMetric(o.signal));
        const queue = metricSum(after, 'tracehouse_queue_size_bytes');
        if (written + dropped >= accepted && queue === 0) {
          storedItems = written;
          drainS = (performance.now() - tEnd) / 1000;
          break;
        }
        if (performance.now() > deadline) {
          // Not finished: what is still queued was not written yet, which says nothing of whether it is lost.
          storedItems = written;
          undrained = { queuedItems: Math.max(0, accepted - written - dropped), timeoutS: drainTimeoutMs / 1000 };
          break;
        }
        await sleep(100);
      }
    }
    const cpu = cpuSeconds(target.pid) - cpu0;
    const threads1 = cpuSecondsByThread(target.pid);
    const machineBusyS = machineBusySeconds() - machine0;
    const windowEndUs = monotonicUs();
    clearInterval(sampler);
    const mem = memory(target.pid);
    await o.beforeStop?.(target);
    const accepted = isCollector ? metricSum(after, acceptedMetric(o.signal)) - metricSum(before, acceptedMetric(o.signal)) : lg.okItems;
    const refusedNow = isCollector ? metricByLabel(after, 'tracehouse_receiver_refused_requests_total', 'reason') : null;
    const refusedBefore = isCollector ? metricByLabel(before, 'tracehouse_receiver_refused_requests_total', 'reason') : {};
    const collectorRefusedByReason = refusedNow ? Object.fromEntries(Object.entries(refusedNow).map(([k, v]) => [k, v - (refusedBefore[k] ?? 0)]).filter(([, v]) => (v as number) > 0)) : null;
    const warnings = target.lines.filter((l) => typeof l['level'] === 'number' && (l['level'] as number) >= 40).map((l) => JSON.stringify(l).slice(0, 400));
    const ack = o.target.kind === 'collector' ? o.target.options['delivery.ack'] : undefined;
    const backend = o.target.kind === 'collector' ? `${o.target.options['storage.backend'] ?? 'sqlite'}${ack ? `, ack = ${ack}` : ''}${o.currentTimes ? ', current timestamps' : ''}` : 'none';
    const command = 'args' in target ? (target.args as string[]).join(' ') : 'node bench/null-receiver.ts';
    return {
      name: o.name,
      target: isCollector ? 'collector' : 'null receiver',
      backend,
      transport: o.transport,
      signal: o.signal,
      mode: o.mode,
      durationS: lg.durationS,
      offeredItemsPerS: lg.offeredItems / lg.durationS,
      acceptedItemsPerS: accepted / lg.durationS,
      writtenItemsPerSDuringLoad: writtenDuringLoad === null ? null : writtenDuringLoad / lg.durationS,
      cpuSeconds: cpu,
      cpuSecondsPerMillionItems: accepted > 0 ? cpu / (accepted / 1e6) : NaN,
      cpuPerMillionByThread: Object.fromEntries(Object.entries(threads1).map(([name, s]) => [name, accepted > 0 ? (s - (threads0[name] ?? 0)) / (accepted / 1e6) : NaN])),
      latencyMs: lg.latencyMs,
      peakRssBytes: mem.peakRssBytes,
      idleRssBytes,
      rssTimeline,
      sentItems: lg.okItems,
      storedItems,
      lostItems: storedItems === null ? null : lg.okItems - storedItems - (undrained?.queuedItems ?? 0),
      drainS,
      undrained,
      droppedRows: isCollector ? metricSum(after, 'tracehouse_writer_dropped_rows_total') - metricSum(before, 'tracehouse_writer_dropped_rows_total') : null,
      refusedRequests: lg.refusedRequests,
      refusedItems: lg.refusedItems,
      refusedByCode: lg.refusedByCode,
      collectorRefusedByReason,
      errorRequests: lg.errorRequests,
      errorsByCode: lg.errorsByCode,
      rejectedItems: lg.rejectedItems,
      skippedItems: lg.skippedItems,
      loadgenCpuS: lg.loadgenCpuS,
      mainHeapAtLoadEnd,
      machineBusyS,
      otherBusyS: Math.max(0, machineBusyS - cpu - lg.loadgenCpuS),
      windowUs: [windowStartUs, windowEndUs],
      command,
      warnings,
    };
  } finally {
    if (sampler) clearInterval(sampler);
    loadgen.kill();
    await target.stop();
  }
}
