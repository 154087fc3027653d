// Scenario: the maximum rate. The load generator keeps N export requests in flight against the
// collector (memory backend unless told otherwise) and, as the baseline in the same run, against
// the null receiver (same transport stack, no decoding, no storage). Our throughput is reported
// as a ratio of that transport limit, and CPU per million items of both.
import type { BenchContext } from './context.ts';
import { runIngest, type IngestFigures } from './ingest.ts';
import { defaultSpec, type BenchSignal } from './traffic.ts';

export interface MaxRateFigures {
  transport: 'grpc' | 'http';
  signal: BenchSignal;
  backend: string;
  concurrency: number;
  /** Best of the repetitions (highest accepted rate) for each side. */
  baseline: IngestFigures;
  collector: IngestFigures;
  /** collector accepted items/s ÷ null receiver items/s. */
  throughputRatio: number;
  /** Every repetition, in the order run. */
  runs: IngestFigures[];
}

function best(runs: IngestFigures[]): IngestFigures {
  return runs.reduce((a, b) => (b.acceptedItemsPerS > a.acceptedItemsPerS ? b : a));
}

/** Runs the scenario for one transport and signal. */
export async function run(
  ctx: BenchContext,
  o: { transport: 'grpc' | 'http'; signal: BenchSignal; backend?: string; collectorOptions?: Record<string, string> },
): Promise<MaxRateFigures> {
  const backend = o.backend ?? 'memory';
  const common = {
    transport: o.transport,
    signal: o.signal,
    traffic: defaultSpec(o.signal),
    cacheDir: ctx.cacheDir,
    durationMs: ctx.durationMs,
    mode: { kind: 'max', concurrency: ctx.concurrency } as const,
    connections: ctx.connections,
  };
  const runs: IngestFigures[] = [];
  for (let rep = 0; rep < ctx.repetitions; rep++) {
    ctx.log(`max rate ${o.transport}/${o.signal}: null receiver (${rep + 1}/${ctx.repetitions})`);
    runs.push(await runIngest({ ...common, name: `null receiver, ${o.transport}, ${o.signal}`, target: { kind: 'null' } }));
    ctx.log(`max rate ${o.transport}/${o.signal}: collector, ${backend} (${rep + 1}/${ctx.repetitions})`);
    runs.push(
      await runIngest({
        ...common,
        name: `collector (${backend}), ${o.transport}, ${o.signal}`,
        target: { kind: 'collector', options: { 'storage.backend': backend, ...o.collectorOptions } },
      }),
    );
  }
  const baseline = best(runs.filter((r) => r.target === 'null receiver'));
  const collector = best(runs.filter((r) => r.target === 'collector'));
  return {
    transport: o.transport,
    signal: o.signal,
    backend,
    concurrency: ctx.concurrency,
    baseline,
    collector,
    throughputRatio: collector.acceptedItemsPerS / baseline.acceptedItemsPerS,
    runs,
  };
}
