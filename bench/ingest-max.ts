// Scenario: the maximum rate. The load generator keeps N export requests in flight against the
// collector (memory backend unless told otherwise) and, as the baseline in the same run, against
// the null receiver (same transport stack, no decoding, no storage). Our throughput is reported
// as a ratio of that transport limit, and CPU per million items of both. Run with the standard
// traffic (100–1000 items per request) or with small requests (100 each, as SDK batch exporters
// often send them): the per-request costs (dispatch to workers, grpc-js per call) show in the latter.
import type { BenchContext } from './context.ts';
import { runIngest, type IngestFigures } from './ingest.ts';
import { defaultSpec, smallSpec, type BenchSignal, type TrafficSpec } from './traffic.ts';

export interface MaxRateFigures {
  transport: 'grpc' | 'http';
  signal: BenchSignal;
  backend: string;
  concurrency: number;
  /** Which traffic both sides got; absent (runs before it was recorded) means 'standard'. */
  requests?: RequestSize;
  traffic?: TrafficSpec;
  /** For each side, the repetition with the median accepted rate (the lower middle of an even count; runs before December 2026 kept the best). */
  baseline: IngestFigures;
  collector: IngestFigures;
  /** Median CPU-s per million items over the repetitions, each side on its own (absent in older runs). */
  cpuMedian?: { baseline: number; collector: number };
  /** collector accepted items/s ÷ null receiver items/s, of the median runs. */
  throughputRatio: number;
  /** Every repetition, in the order run. */
  runs: IngestFigures[];
}

/** 'standard': bench/traffic.ts's default 100–1000 items per request; 'small': 100 per request. */
export type RequestSize = 'standard' | 'small';

/** The middle value (the lower middle of an even count). */
function middle(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1]!;
}

/** The run whose figure `by` is the median (the lower middle of an even count): one of the runs, its figures together. */
export function medianRun(runs: IngestFigures[], by: (r: IngestFigures) => number): IngestFigures {
  const m = middle(runs.map(by));
  return runs.find((r) => by(r) === m)!;
}

const acceptedRate = (r: IngestFigures): number => r.acceptedItemsPerS;

/** Runs the scenario for one transport and signal. */
export async function run(
  ctx: BenchContext,
  o: { transport: 'grpc' | 'http'; signal: BenchSignal; backend?: string; collectorOptions?: Record<string, string>; requests?: RequestSize },
): Promise<MaxRateFigures> {
  const backend = o.backend ?? 'memory';
  const requests = o.requests ?? 'standard';
  const traffic = requests === 'small' ? smallSpec(o.signal) : defaultSpec(o.signal);
  const label = `${o.transport}/${o.signal}${requests === 'small' ? ', small requests' : ''}`;
  const common = {
    transport: o.transport,
    signal: o.signal,
    traffic,
    cacheDir: ctx.cacheDir,
    durationMs: ctx.durationMs,
    mode: { kind: 'max', concurrency: ctx.concurrency } as const,
    connections: ctx.connections,
  };
  const runs: IngestFigures[] = [];
  for (let rep = 0; rep < ctx.repetitions; rep++) {
    ctx.log(`max rate ${label}: null receiver (${rep + 1}/${ctx.repetitions})`);
    runs.push(await runIngest({ ...common, name: `null receiver, ${label}`, target: { kind: 'null' } }));
    ctx.log(`max rate ${label}: collector, ${backend} (${rep + 1}/${ctx.repetitions})`);
    runs.push(
      await runIngest({
        ...common,
        name: `collector (${backend}), ${label}`,
        target: { kind: 'collector', options: { 'storage.backend': backend, ...o.collectorOptions } },
      }),
    );
  }
  const nulls = runs.filter((r) => r.target === 'null receiver');
  const ours = runs.filter((r) => r.target === 'collector');
  const baseline = medianRun(nulls, acceptedRate);
  const collector = medianRun(ours, acceptedRate);
  const cpuMedian = { baseline: middle(nulls.map((r) => r.cpuSecondsPerMillionItems)), collector: middle(ours.map((r) => r.cpuSecondsPerMillionItems)) };
  return {
    transport: o.transport,
    signal: o.signal,
    backend,
    concurrency: ctx.concurrency,
    requests,
    traffic,
    baseline,
    collector,
    cpuMedian,
    throughputRatio: collector.acceptedItemsPerS / baseline.acceptedItemsPerS,
    runs,
  };
}
