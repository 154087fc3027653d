// Smoke test of the benchmark harness: the load generator (its own process) drives a collector
// (its own process, memory backend) for two seconds; everything acknowledged must be stored and
// every figure must be a number. The null receiver baseline gets a one-second run the same way.
import { describe, expect, it } from 'vitest';
import { medianRun } from '../../bench/ingest-max.ts';
import { runIngest, type IngestFigures } from '../../bench/ingest.ts';
import { renderReport, TARGETS, type BenchResults } from '../../bench/report.ts';
import type { TrafficSpec } from '../../bench/traffic.ts';
import { tempDir } from '../helpers/tmp.ts';

// Small requests: the point is the plumbing, not the rate.
const traffic: TrafficSpec = { signal: 'traces', requests: 4, seed: 11, minItems: 50, maxItems: 200 };

function expectFigures(f: IngestFigures): void {
  for (const [name, v] of Object.entries({
    acceptedItemsPerS: f.acceptedItemsPerS,
    cpuSeconds: f.cpuSeconds,
    cpuSecondsPerMillionItems: f.cpuSecondsPerMillionItems,
    p50Ms: f.latencyMs.p50Ms,
    p99Ms: f.latencyMs.p99Ms,
    peakRssBytes: f.peakRssBytes,
    durationS: f.durationS,
  })) {
    expect(Number.isFinite(v), `${name} = ${v}`).toBe(true);
  }
  expect(f.acceptedItemsPerS).toBeGreaterThan(0);
  expect(f.peakRssBytes).toBeGreaterThan(0);
  expect(f.latencyMs.p99Ms).toBeGreaterThanOrEqual(f.latencyMs.p50Ms);
  expect(f.errorRequests).toBe(0);
}

describe('bench harness smoke', () => {
  const cacheDir = tempDir('tracehouse-bench-');
  it('stores everything the load generator was acknowledged for, and measures it', { timeout: 30_000 }, async () => {
    const collector = await runIngest({
      name: 'smoke',
      target: { kind: 'collector', options: { 'storage.backend': 'memory', 'workers.threads': '1', 'writer.flushIntervalMs': '20' } },
      transport: 'grpc',
      signal: 'traces',
      traffic,
      cacheDir,
      durationMs: 2_000,
      mode: { kind: 'max', concurrency: 4 },
      connections: 1,
      drainTimeoutMs: 10_000,
    });
    expectFigures(collector);
    expect(collector.sentItems).toBeGreaterThan(0);
    expect(collector.storedItems).toBe(collector.sentItems);
    expect(collector.lostItems).toBe(0);
    expect(collector.refusedItems).toBe(0);

    const baseline = await runIngest({
      name: 'smoke baseline',
      target: { kind: 'null' },
      transport: 'grpc',
      signal: 'traces',
      traffic,
      cacheDir,
      durationMs: 1_000,
      mode: { kind: 'max', concurrency: 4 },
      connections: 1,
    });
    expectFigures(baseline);
    expect(baseline.storedItems).toBeNull();

    const results: BenchResults = {
      version: 1,
      startedAt: new Date().toISOString(),
      finishedAt: new Date().toISOString(),
      wallS: 3,
      command: 'bench-smoke.test.ts',
      quick: true,
      machine: { cpuModel: 'test', cores: 1, memoryBytes: 1, node: process.version, os: 'test', loadAverageAtStart: [0, 0, 0], loadAverageAtEnd: [0, 0, 0] },
      settings: { durationMs: 2000, overloadDurationMs: 0, repetitions: 1, concurrency: 4, connections: 1 },
      traffic: { spec: { traces: traffic, logs: { ...traffic, signal: 'logs' } }, traces: { requests: 4, items: 1, bytes: 1, meanItems: 1, meanBytesPerItem: 1 }, logs: { requests: 4, items: 1, bytes: 1, meanItems: 1, meanBytesPerItem: 1 } },
      targets: TARGETS,
      maxRate: [{ transport: 'grpc', signal: 'traces', backend: 'memory', concurrency: 4, baseline, collector, throughputRatio: collector.acceptedItemsPerS / baseline.acceptedItemsPerS, runs: [baseline, collector] }],
      fixedRate: [],
      storage: [],
      skipped: [],
      errors: [],
    };
    const md = renderReport(results, 'bench/out/smoke.json');
    expect(md).toContain('## Targets');
    expect(md).toContain(collector.sentItems.toLocaleString('en-US'));
    // The machine's CPU per item: each side's row gives the receiver's CPU per million items, the
    // load generator's and their sum, and the cores the two kept busy.
    const host = md.slice(md.indexOf("### The machine's CPU per item"));
    for (const side of ['null receiver', 'collector']) {
      const row = host.split('\n').find((l) => l.startsWith(`| ${side}, OTLP/gRPC traces |`));
      expect(row, side).toBeDefined();
      const [receiver, loadgen, together, cores] = row!.split('|').slice(2, 6).map((c) => Number(c.trim().replace(/,/g, '')));
      expect(loadgen, side).toBeGreaterThan(0);
      expect(Math.abs(together! - (receiver! + loadgen!)), side).toBeLessThanOrEqual(Math.max(0.02, 0.01 * together!));
      expect(cores, side).toBeGreaterThan(0);
    }

    // The SQLite target is judged on the median of its repetitions, each named beside it.
    const reps = [9.5, 7.5, 8.5].map((cpu) => ({ ...collector, backend: 'sqlite', cpuSecondsPerMillionItems: cpu }));
    const judged = renderReport({ ...results, backends: { runs: [{ backend: 'sqlite', figures: medianRun(reps, (r) => r.cpuSecondsPerMillionItems), repetitions: reps }] } }, 'bench/out/smoke.json');
    const sqliteRow = judged.split('\n').find((l) => l.includes('OTLP/gRPC traces → SQLite'));
    expect(sqliteRow).toContain('| 8.50 at ');
    expect(sqliteRow).toContain('median of 3 runs (9.50, 7.50, 8.50)');
    expect(sqliteRow).toContain('**missed** by 0.500 ');
  });

  it('says what was still queued when the drain wait ran out, not that it was lost', { timeout: 30_000 }, async () => {
    // A partial batch waits 30 s for its flush: nothing is written within the 0.5 s drain wait.
    const f = await runIngest({
      name: 'smoke, slow drain',
      target: { kind: 'collector', options: { 'storage.backend': 'memory', 'workers.threads': '1', 'writer.flushIntervalMs': '30000' } },
      transport: 'grpc',
      signal: 'traces',
      traffic,
      cacheDir,
      durationMs: 1_000,
      mode: { kind: 'rate', itemsPerSecond: 500, maxInFlight: 4 },
      connections: 1,
      drainTimeoutMs: 500,
    });
    expect(f.sentItems).toBeGreaterThan(0);
    expect(f.storedItems).toBe(0);
    expect(f.lostItems).toBe(0);
    expect(f.undrained).toEqual({ queuedItems: f.sentItems, timeoutS: 0.5 });
    expect(f.drainS).toBeNull();
  });
});
