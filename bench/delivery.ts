// Scenario: what each acknowledgement mode costs. The same max-rate OTLP/gRPC trace load against
// a collector on SQLite with delivery.ack = queued (the baseline: nothing waits for disk), durable
// (each request appended to the write-ahead log and fsynced, group commit) and stored (each
// request waits for the SQLite write holding its rows), one after another in the same run on the
// same disk. Reported: accepted spans/s, collector CPU-seconds per million spans, export latency.
//
//   node bench/delivery.ts [--seconds=N] [--concurrency=N] [--dir=/path/on/the/disk/to/measure]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CACHE_DIR, runIngest, type IngestFigures } from './ingest.ts';
import { defaultSpec } from './traffic.ts';
import { cliFlag } from './harness.ts';

const MODES = ['queued', 'durable', 'stored'] as const;

export interface DeliveryFigures {
  mode: (typeof MODES)[number];
  acceptedSpansPerS: number;
  cpuSecondsPerMillionSpans: number;
  p50Ms: number;
  p99Ms: number;
  lostSpans: number | null;
  /** Spans still queued, neither written nor lost, when the drain wait ran out (0: the drain finished). */
  queuedAtDrainTimeout: number;
  refusedRequests: number;
}

function summary(mode: (typeof MODES)[number], f: IngestFigures): DeliveryFigures {
  return {
    mode,
    acceptedSpansPerS: Math.round(f.acceptedItemsPerS),
    cpuSecondsPerMillionSpans: Math.round(f.cpuSecondsPerMillionItems * 10) / 10,
    p50Ms: Math.round(f.latencyMs.p50Ms * 10) / 10,
    p99Ms: Math.round(f.latencyMs.p99Ms * 10) / 10,
    lostSpans: f.lostItems,
    queuedAtDrainTimeout: f.undrained?.queuedItems ?? 0,
    refusedRequests: f.refusedRequests,
  };
}

/** Runs the three modes, queued first as the baseline, and returns their figures. */
export async function run(opts: { seconds?: number; concurrency?: number; dir?: string; log?: (msg: string) => void } = {}): Promise<{ baseline: DeliveryFigures; modes: DeliveryFigures[] }> {
  const out: DeliveryFigures[] = [];
  for (const mode of MODES) {
    const dir = mkdtempSync(join(opts.dir ?? tmpdir(), 'tracehouse-bench-delivery-'));
    try {
      opts.log?.(`delivery.ack = ${mode}`);
      const f = await runIngest({
        name: `collector (sqlite), grpc, traces, ack=${mode}`,
        target: { kind: 'collector', options: { 'storage.backend': 'sqlite', 'storage.sqlite.path': join(dir, 'th.db'), 'delivery.ack': mode } },
        transport: 'grpc',
        signal: 'traces',
        traffic: defaultSpec('traces'),
        cacheDir: DEFAULT_CACHE_DIR,
        durationMs: (opts.seconds ?? 5) * 1000,
        mode: { kind: 'max', concurrency: opts.concurrency ?? 8 },
        connections: 2,
      });
      out.push(summary(mode, f));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { baseline: out[0]!, modes: out };
}

if (import.meta.main) {
  const seconds = cliFlag('seconds');
  const concurrency = cliFlag('concurrency');
  const dir = cliFlag('dir');
  const r = await run({
    ...(seconds ? { seconds: Number(seconds) } : {}),
    ...(concurrency ? { concurrency: Number(concurrency) } : {}),
    ...(dir ? { dir } : {}),
    log: (m) => process.stderr.write(`[bench delivery] ${m}\n`),
  });
  console.table(r.modes);
  console.log(JSON.stringify(r, null, 2));
}
