// The bench report's verdicts (bench/report.ts): what bench/run.ts decides from a run (profile the
// collector when a target is missed, else note "both targets met") must agree with the Targets
// table, which judges the CPU target on the median CPU of the repetitions.
import { describe, expect, it } from 'vitest';
import type { MaxRateFigures } from '../../bench/ingest-max.ts';
import type { IngestFigures } from '../../bench/ingest.ts';
import { grpcTracesMisses, renderReport, TARGETS, type BenchResults } from '../../bench/report.ts';

function figures(target: IngestFigures['target'], acceptedItemsPerS: number, cpuSecondsPerMillionItems: number): IngestFigures {
  return {
    name: target,
    target,
    backend: target === 'collector' ? 'memory' : 'none',
    transport: 'grpc',
    signal: 'traces',
    mode: { kind: 'max', concurrency: 8 },
    durationS: 12,
    offeredItemsPerS: acceptedItemsPerS,
    acceptedItemsPerS,
    writtenItemsPerSDuringLoad: target === 'collector' ? acceptedItemsPerS : null,
    cpuSeconds: (cpuSecondsPerMillionItems * acceptedItemsPerS * 12) / 1e6,
    cpuSecondsPerMillionItems,
    cpuPerMillionByThread: {},
    latencyMs: { count: 1, meanMs: 1, p50Ms: 1, p90Ms: 1, p99Ms: 1, maxMs: 1 },
    peakRssBytes: 1,
    idleRssBytes: 1,
    rssTimeline: [],
    sentItems: acceptedItemsPerS * 12,
    storedItems: target === 'collector' ? acceptedItemsPerS * 12 : null,
    lostItems: target === 'collector' ? 0 : null,
    drainS: target === 'collector' ? 0 : null,
    droppedRows: target === 'collector' ? 0 : null,
    refusedRequests: 0,
    refusedItems: 0,
    refusedByCode: {},
    collectorRefusedByReason: null,
    errorRequests: 0,
    errorsByCode: {},
    rejectedItems: 0,
    skippedItems: 0,
    loadgenCpuS: 1,
    mainHeapAtLoadEnd: null,
    machineBusyS: 1,
    otherBusyS: 0,
    windowUs: [0, 1],
    command: '',
    warnings: [],
  };
}

function results(m: MaxRateFigures): BenchResults {
  const traffic = { signal: 'traces' as const, requests: 1, seed: 1, minItems: 1, maxItems: 1 };
  const totals = { requests: 1, items: 1, bytes: 1, meanItems: 1, meanBytesPerItem: 1 };
  return {
    version: 1,
    startedAt: '2026-12-07T00:00:00.000Z',
    finishedAt: '2026-12-07T00:10:00.000Z',
    wallS: 600,
    command: 'test',
    quick: false,
    machine: { cpuModel: 'test', cores: 2, memoryBytes: 1, node: process.version, os: 'test', loadAverageAtStart: [0, 0, 0], loadAverageAtEnd: [0, 0, 0] },
    settings: { durationMs: 12_000, overloadDurationMs: 60_000, repetitions: 3, concurrency: 8, connections: 2 },
    traffic: { spec: { traces: traffic, logs: { ...traffic, signal: 'logs' } }, traces: totals, logs: totals },
    targets: TARGETS,
    maxRate: [m],
    fixedRate: [],
    storage: [],
    skipped: [],
    errors: [],
  };
}

describe('bench report verdicts', () => {
  it('judges the gRPC CPU target on the median CPU of the runs, as the Targets table does', () => {
    // Three collector runs: the one with the median rate used 4.8 CPU-s per million, the median CPU is 5.2.
    const collectors = [figures('collector', 250_000, 4.8), figures('collector', 260_000, 5.2), figures('collector', 240_000, 5.3)];
    const nulls = [figures('null receiver', 300_000, 1.1), figures('null receiver', 310_000, 1.1), figures('null receiver', 290_000, 1.1)];
    const m: MaxRateFigures = {
      transport: 'grpc',
      signal: 'traces',
      backend: 'memory',
      concurrency: 8,
      requests: 'standard',
      baseline: nulls[0]!,
      collector: collectors[0]!,
      cpuMedian: { baseline: 1.1, collector: 5.2 },
      throughputRatio: 250_000 / 300_000,
      runs: [nulls[0]!, collectors[0]!, nulls[1]!, collectors[1]!, nulls[2]!, collectors[2]!],
    };
    const row = renderReport(results(m), 'x.json')
      .split('\n')
      .find((l) => l.includes('collector CPU-s per million spans, OTLP/gRPC traces → memory'));
    expect(row).toContain('**missed**');
    expect(grpcTracesMisses(m)).toEqual({ cpu: true, ratio: false });
  });

  it('says by how much a target is missed or met even when it is less than the figures show', () => {
    const m = maxRate(0.5996);
    const row = renderReport(results(m), 'x.json')
      .split('\n')
      .find((l) => l.includes("of the null receiver's throughput"));
    expect(row).toContain('**missed** by 0.0004');
    const met = renderReport(results(maxRate(0.6004)), 'x.json')
      .split('\n')
      .find((l) => l.includes("of the null receiver's throughput"));
    expect(met).toContain('**met** (0.0004 over)');
  });

  it('judges no CPU or throughput target on runs whose collector did not store what it accepted', () => {
    // A collector that accepted 4.2 M spans and wrote none (a store that failed every write): its CPU
    // per accepted span leaves out every write, and its rate is that of a collector that drops.
    const m = maxRate(0.7);
    const lost = { ...m.collector, storedItems: 0, lostItems: m.collector.sentItems, droppedRows: m.collector.sentItems };
    const broken: MaxRateFigures = { ...m, collector: lost, runs: [m.baseline, lost] };
    const lines = renderReport(results(broken), 'x.json').split('\n');
    const cpu = lines.find((l) => l.includes('collector CPU-s per million spans, OTLP/gRPC traces → memory'));
    const ratio = lines.find((l) => l.includes("of the null receiver's throughput"));
    for (const row of [cpu, ratio]) {
      expect(row).not.toContain('**met**');
      expect(row).toContain('not evaluated: 4,200,000 of 4,200,000 accepted spans not stored');
    }
    // One repetition of three that lost spans is enough: the median is taken over all of them.
    const fine = maxRate(0.7);
    const some = { ...fine.collector, storedItems: fine.collector.sentItems - 5, lostItems: 5 };
    const row = renderReport(results({ ...fine, runs: [fine.baseline, fine.collector, fine.baseline, some] }), 'x.json')
      .split('\n')
      .find((l) => l.includes('collector CPU-s per million spans, OTLP/gRPC traces → memory'));
    expect(row).toContain('not evaluated: 5 of');
  });

  it('judges the overload RSS bound only on a run whose queue filled and which stored what it accepted', () => {
    const MiB = 2 ** 20;
    const overloadRow = (run: IngestFigures, refused: boolean): string | undefined => {
      const r: BenchResults = {
        ...results(maxRate(0.5)),
        overload: {
          queueBytes: 64 * MiB,
          offeredRate: 500_000,
          maxRate: 250_000,
          maxRateSource: 'test',
          run: { ...run, peakRssBytes: 300 * MiB, idleRssBytes: 150 * MiB },
          rssBoundBytes: 598 * MiB,
          rssBoundFormula: 'test',
          baselinePeakRssBytes: null,
          checks: { rssUnderBound: true, refusedWithUnavailable: refused, onlyUnavailable: true, nothingLost: run.lostItems === 0 },
        },
      };
      return renderReport(r, 'x.json')
        .split('\n')
        .find((l) => l.includes('peak RSS under 2× overload'));
    };
    const run = figures('collector', 250_000, 4);
    expect(overloadRow(run, true)).toContain('**met**');
    // A collector that refused nothing at twice its maximum rate never had a full queue to bound.
    const idle = overloadRow(run, false);
    expect(idle).not.toContain('**met**');
    expect(idle).toContain('not evaluated: nothing was refused with UNAVAILABLE');
    const lost = overloadRow({ ...run, storedItems: run.sentItems - 7, lostItems: 7 }, true);
    expect(lost).not.toContain('**met**');
    expect(lost).toContain('not evaluated: 7 of');
  });

  it('says a drain that ran out of time left spans queued, not that it lost them', () => {
    // The collector wrote all but 90,000 of 4.2 M spans before the 120 s drain wait ran out; the rest were still queued.
    const m = maxRate(0.7);
    const slow: IngestFigures = { ...m.collector, storedItems: m.collector.sentItems - 90_000, lostItems: 0, drainS: null, undrained: { queuedItems: 90_000, timeoutS: 120 } };
    const lines = renderReport(results({ ...m, collector: slow, runs: [m.baseline, slow] }), 'x.json').split('\n');
    const cpu = lines.find((l) => l.includes('collector CPU-s per million spans, OTLP/gRPC traces → memory'));
    // Its CPU leaves out the writes it had not made yet: not judged, and said why.
    expect(cpu).not.toContain('**met**');
    expect(cpu).toContain('not evaluated: drain did not finish within 120 s: 90,000 spans still queued');
    expect(cpu).not.toContain('not stored');
    const row = lines.find((l) => l.startsWith('| collector (memory)'));
    expect(row).toContain('| 0 (drain did not finish within 120 s: 90,000 spans still queued) |');
    expect(lines.join('\n')).toContain('drain after the load: drain did not finish within 120 s: 90,000 spans still queued');

    // The overload run: its check on loss is not known, not failed.
    const run = figures('collector', 250_000, 4);
    const over = { ...run, storedItems: run.sentItems - 500, lostItems: 0, drainS: null, undrained: { queuedItems: 500, timeoutS: 300 } };
    const MiB = 2 ** 20;
    const r: BenchResults = {
      ...results(maxRate(0.7)),
      overload: {
        queueBytes: 64 * MiB,
        offeredRate: 500_000,
        maxRate: 250_000,
        maxRateSource: 'test',
        run: over,
        rssBoundBytes: 598 * MiB,
        rssBoundFormula: 'test',
        baselinePeakRssBytes: null,
        checks: { rssUnderBound: true, refusedWithUnavailable: true, onlyUnavailable: true, nothingLost: false },
      },
    };
    const overLines = renderReport(r, 'x.json').split('\n');
    expect(overLines.find((l) => l.includes('peak RSS under 2× overload'))).toContain('not evaluated: drain did not finish within 300 s: 500 spans still queued');
    expect(overLines.find((l) => l.startsWith('| nothing accepted was lost'))).toContain('not known: drain did not finish within 300 s: 500 spans still queued');
    expect(overLines.find((l) => l.startsWith('| sent (OK) / stored / lost'))).not.toContain('**');
  });
});

/** A gRPC traces max-rate run of this throughput ratio, one repetition a side. */
function maxRate(ratio: number): MaxRateFigures {
  const baseline = figures('null receiver', 500_000, 1.1);
  const collector = figures('collector', 500_000 * ratio, 4);
  return { transport: 'grpc', signal: 'traces', backend: 'memory', concurrency: 8, requests: 'standard', baseline, collector, cpuMedian: { baseline: 1.1, collector: 4 }, throughputRatio: ratio, runs: [baseline, collector] };
}
