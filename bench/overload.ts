// Scenario: overload. A collector with a bounded write queue (writer.maxQueueBytes 64 MiB) in
// front of a slow store (SQLite on a file, one write in flight) is offered twice the highest
// rate measured for it, open loop, for a minute. It must keep its RSS under a stated bound,
// refuse the excess with UNAVAILABLE, and lose nothing it acknowledged. Baseline: the same
// configuration's RSS at rest and its RSS at the maximum closed-loop rate (from the backends
// scenario of the same run).
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from './context.ts';
import { runIngest, type IngestFigures } from './ingest.ts';
import { defaultSpec } from './traffic.ts';

const MiB = 1024 * 1024;

/** The queue bound under test. */
export const OVERLOAD_QUEUE_BYTES = 64 * MiB;

/**
 * The stated RSS bound: what the collector holds at rest, plus four times the queue (the queue
 * itself and the copies in flight: request bytes in the workers, rows being written, the garbage
 * of both before the next collection), plus a fixed 192 MiB for V8 heap growth, the gRPC buffers
 * of requests being received and SQLite's page cache. The bound issue #10 holds the collector to
 * is this one, "the bound the harness states": its "618 allowed" is this formula at 170 MiB at
 * rest (docs/benchmarks.md of f8827cc); the text shortens it to "+ maxQueueBytes", and
 * docs/performance.md gives the figure against that reading too.
 */
export function rssBoundBytes(idleRssBytes: number, queueBytes = OVERLOAD_QUEUE_BYTES): number {
  return idleRssBytes + 4 * queueBytes + 192 * MiB;
}

export interface OverloadFigures {
  queueBytes: number;
  /** Offered spans/s: twice maxRate. */
  offeredRate: number;
  /** The measured maximum the offer is based on (spans/s) and where it came from. */
  maxRate: number;
  maxRateSource: string;
  run: IngestFigures;
  rssBoundBytes: number;
  rssBoundFormula: string;
  /** Baseline: the max-rate run of the same backend without the small queue (if measured). */
  baselinePeakRssBytes: number | null;
  checks: { rssUnderBound: boolean; refusedWithUnavailable: boolean; onlyUnavailable: boolean; nothingLost: boolean };
}

/** Offers 2× maxRate spans/s over gRPC to a SQLite collector with a 64 MiB queue. */
export async function run(ctx: BenchContext, o: { maxRate: number; maxRateSource: string; baselinePeakRssBytes: number | null }): Promise<OverloadFigures> {
  const dir = mkdtempSync(join(ctx.outDir, 'overload-'));
  const offeredRate = Math.round((2 * o.maxRate) / 1000) * 1000;
  try {
    ctx.log(`overload: ${offeredRate} spans/s offered for ${ctx.overloadDurationMs / 1000} s to sqlite, queue ${OVERLOAD_QUEUE_BYTES / MiB} MiB`);
    const run = await runIngest({
      name: `overload: 2× max offered to collector (sqlite, maxQueueBytes ${OVERLOAD_QUEUE_BYTES / MiB} MiB, maxInFlightBatches 1)`,
      transport: 'grpc',
      signal: 'traces',
      traffic: defaultSpec('traces'),
      cacheDir: ctx.cacheDir,
      durationMs: ctx.overloadDurationMs,
      mode: { kind: 'rate', itemsPerSecond: offeredRate, maxInFlight: 64 },
      connections: ctx.connections,
      drainTimeoutMs: 300_000,
      sampleEveryMs: 1000,
      target: {
        kind: 'collector',
        options: {
          'storage.backend': 'sqlite',
          'storage.sqlite.path': join(dir, 'overload.db'),
          'writer.maxQueueBytes': String(OVERLOAD_QUEUE_BYTES),
          'writer.maxInFlightBatches': '1',
        },
      },
    });
    const bound = rssBoundBytes(run.idleRssBytes);
    const codes = Object.keys(run.refusedByCode);
    return {
      queueBytes: OVERLOAD_QUEUE_BYTES,
      offeredRate,
      maxRate: o.maxRate,
      maxRateSource: o.maxRateSource,
      run,
      rssBoundBytes: bound,
      rssBoundFormula: 'RSS at rest + 4 × writer.maxQueueBytes + 192 MiB',
      baselinePeakRssBytes: o.baselinePeakRssBytes,
      checks: {
        rssUnderBound: run.peakRssBytes <= bound,
        refusedWithUnavailable: (run.refusedByCode['UNAVAILABLE'] ?? 0) > 0,
        onlyUnavailable: codes.every((c) => c === 'UNAVAILABLE') && run.errorRequests === 0,
        nothingLost: run.lostItems === 0 && (run.droppedRows ?? 0) === 0 && !run.undrained,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
