// Scenario: fixed rates. The load generator offers spans at a fixed rate (open loop, so a slow
// answer does not slow the offer, and latency counts from the scheduled send time) to the
// collector and, as the baseline at the same rate, to the null receiver: export latency and
// CPU per million spans at a load the collector can carry.
import type { BenchContext } from './context.ts';
import { runIngest, type IngestFigures } from './ingest.ts';
import { defaultSpec, type BenchSignal } from './traffic.ts';

export interface FixedRateFigures {
  transport: 'grpc' | 'http';
  signal: BenchSignal;
  backend: string;
  /** Offered items per second. */
  rate: number;
  /** The rate as a share of the collector's measured maximum. */
  shareOfMax: number;
  baseline: IngestFigures;
  collector: IngestFigures;
}

/** Open-loop runs at each rate (items/s), collector and null receiver. */
export async function run(
  ctx: BenchContext,
  o: { transport: 'grpc' | 'http'; signal: BenchSignal; backend?: string; maxRate: number; shares: number[] },
): Promise<FixedRateFigures[]> {
  const backend = o.backend ?? 'memory';
  const out: FixedRateFigures[] = [];
  for (const share of o.shares) {
    // Whole thousands, so the report reads as a round figure.
    const rate = Math.max(1000, Math.round((o.maxRate * share) / 1000) * 1000);
    const common = {
      transport: o.transport,
      signal: o.signal,
      traffic: defaultSpec(o.signal),
      cacheDir: ctx.cacheDir,
      durationMs: ctx.durationMs,
      mode: { kind: 'rate', itemsPerSecond: rate, maxInFlight: 64 } as const,
      connections: ctx.connections,
    };
    ctx.log(`fixed rate ${rate} ${o.signal}/s over ${o.transport}: null receiver`);
    const baseline = await runIngest({ ...common, name: `null receiver at ${rate}/s`, target: { kind: 'null' } });
    ctx.log(`fixed rate ${rate} ${o.signal}/s over ${o.transport}: collector (${backend})`);
    const collector = await runIngest({ ...common, name: `collector (${backend}) at ${rate}/s`, target: { kind: 'collector', options: { 'storage.backend': backend } } });
    out.push({ transport: o.transport, signal: o.signal, backend, rate, shareOfMax: share, baseline, collector });
  }
  return out;
}
