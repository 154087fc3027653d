// Renders bench results as docs/benchmarks.md. Every figure comes from the results object; the
// prose is fixed text describing how the figures were taken. bench/run.ts calls it at the end of
// a run; to re-render a stored run (after a change to this file):
//
//   node bench/report.ts bench/out/bench-<date>.json [--out=docs/benchmarks.md]
import { readFileSync, writeFileSync } from 'node:fs';
import { MEMORY_DURABLE, SQLITE_CHART_LIMIT, SQLITE_CURRENT_TIMES, type BackendsFigures } from './backends.ts';
import type { DecodeFigures } from './decode.ts';
import type { FixedRateFigures } from './ingest-rate.ts';
import type { IngestFigures } from './ingest.ts';
import type { MaxRateFigures } from './ingest-max.ts';
import type { OverloadFigures } from './overload.ts';
import type { ProfileFigures } from './profile.ts';
import type { MemoryStoreFigures } from './memory-store.ts';
import type { StorageBenchResult } from './storage.ts';
import type { TrafficSpec } from './traffic.ts';

/** The targets of issue #10, each checked against a figure of the same run (see targetsSection). */
export const TARGETS = {
  /** Collector CPU-seconds per million spans, OTLP/gRPC traces → memory backend, at most. */
  cpuSecondsPerMillionSpans: 5,
  /** The same into SQLite (a file), from the backends scenario, at most. */
  sqliteCpuSecondsPerMillionSpans: 8,
  /** The same over OTLP/HTTP (protobuf) into the memory backend, at most. */
  httpCpuSecondsPerMillionSpans: 4,
  /** Collector CPU-seconds per million log records, OTLP/gRPC logs → memory backend, at most. */
  logsCpuSecondsPerMillionRecords: 3,
  /** Collector throughput ÷ null receiver throughput (OTLP/gRPC traces → memory), at least. */
  throughputRatio: 0.6,
  /** PostgreSQL adapter spans/s ÷ plain binary COPY of the same rows (bench/postgres.ts `ratio`), at least. */
  postgresCopyRatio: 0.7,
  /** ClickHouse adapter rows/s ÷ the same RowBinary inserted directly (bench/clickhouse.ts `ratio`), at least. */
  clickhouseRowBinaryRatio: 0.8,
  /** The memory store kept full: peak RSS at most RSS at rest + storage.memory.maxBytes × (1 + this). */
  memoryStoreSlack: 0.25,
} as const;

export type Targets = typeof TARGETS;

/** True for max-rate runs with the standard traffic (the ones the targets are checked against); runs stored before small requests existed have no `requests`. */
export function isStandard(m: MaxRateFigures): boolean {
  return (m.requests ?? 'standard') === 'standard';
}

/** bench/memory-store.ts's figures, or why there are none. */
export type MemoryStoreResult = Omit<StorageBenchResult, 'figures'> & { figures?: MemoryStoreFigures };

type TrafficTotals = { requests: number; items: number; bytes: number; meanItems: number; meanBytesPerItem: number };

export interface BenchResults {
  version: 1;
  startedAt: string;
  finishedAt: string;
  wallS: number;
  command: string;
  quick: boolean;
  machine: { cpuModel: string; cores: number; memoryBytes: number; node: string; os: string; loadAverageAtStart: number[]; loadAverageAtEnd: number[] };
  settings: { durationMs: number; overloadDurationMs: number; repetitions: number; concurrency: number; connections: number };
  traffic: { spec: { traces: TrafficSpec; logs: TrafficSpec }; traces: TrafficTotals; logs: TrafficTotals };
  /** The targets in force when the run was made (older runs stored fewer; see targetsOf). */
  targets: Partial<Targets>;
  decode?: DecodeFigures | undefined;
  maxRate: MaxRateFigures[];
  fixedRate: FixedRateFigures[];
  backends?: BackendsFigures | undefined;
  overload?: OverloadFigures | undefined;
  profile?: ProfileFigures | undefined;
  storage: StorageBenchResult[];
  /** The memory store kept full (bench/memory-store.ts in a child process), absent when not run. */
  memoryStore?: MemoryStoreResult | undefined;
  skipped: string[];
  errors: { scenario: string; message: string }[];
}

// ---------------------------------------------------------------------------------------------
// Formatting

const MiB = 1024 * 1024;

function num(x: number | null | undefined, digits = 0): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function sig(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (Number.isInteger(x)) return num(x);
  const a = Math.abs(x);
  return num(x, a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

const mib = (b: number | null | undefined) => (b === null || b === undefined ? '–' : `${num(b / MiB)} MiB`);
const ms = (x: number) => `${sig(x)} ms`;
const pct = (x: number) => `${num(x * 100)} %`;

function table(head: string[], rows: (string | number)[][]): string {
  const esc = (c: string | number) => String(c).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [`| ${head.map(esc).join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

function unit(signal: string): string {
  return signal === 'traces' ? 'spans' : 'log records';
}

function itemsText(min: number, max: number): string {
  return min === max ? num(min) : `${num(min)}–${num(max)}`;
}

/** "drain did not finish within N s: X spans still queued" for a run whose drain wait ran out, else undefined. */
function undrainedText(f: IngestFigures): string | undefined {
  const u = f.undrained;
  return u ? `drain did not finish within ${num(u.timeoutS)} s: ${num(u.queuedItems)} ${unit(f.signal)} still queued` : undefined;
}

function lossText(f: IngestFigures): string {
  if (f.lostItems === null) return 'n/a';
  const lost = f.lostItems === 0 ? '0' : `**${num(f.lostItems)}**`;
  const undrained = undrainedText(f);
  return undrained ? `${lost} (${undrained})` : lost;
}

/** How long the drain after the load took, or that it did not finish. */
function drainText(f: IngestFigures): string {
  return undrainedText(f) ?? `${sig(f.drainS ?? NaN)} s`;
}

function refusedText(f: IngestFigures): string {
  const parts = [`${num(f.refusedItems)}`];
  const codes = Object.entries(f.refusedByCode).map(([c, n]) => `${c} ×${n}`);
  if (codes.length) parts.push(`(${codes.join(', ')})`);
  if (f.errorRequests > 0) parts.push(`errors: ${Object.entries(f.errorsByCode).map(([c, n]) => `${c} ×${n}`).join(', ')}`);
  return parts.join(' ');
}

/** One row per run: the columns every ingest table shares. */
function ingestRow(f: IngestFigures, ratio?: string): (string | number)[] {
  return [
    f.target === 'collector' ? `collector (${f.backend})` : 'null receiver (baseline)',
    num(f.acceptedItemsPerS),
    ratio ?? '',
    sig(f.cpuSecondsPerMillionItems),
    ms(f.latencyMs.p50Ms),
    ms(f.latencyMs.p99Ms),
    mib(f.peakRssBytes),
    num(f.sentItems),
    f.storedItems === null ? 'n/a' : num(f.storedItems),
    lossText(f),
    refusedText(f),
    `${sig(f.loadgenCpuS)} / ${sig(f.otherBusyS)}`,
  ];
}

const INGEST_HEAD = ['receiver', 'accepted/s', 'vs baseline', 'CPU-s per million', 'p50 latency', 'p99 latency', 'peak RSS', 'sent (OK)', 'stored', 'lost', 'refused', 'CPU-s loadgen / other load'];

// ---------------------------------------------------------------------------------------------
// Sections

/** The run's own targets when it stored all of them; a run stored before issue #10 is judged against today's. */
function targetsOf(r: BenchResults): Targets {
  const stored = r.targets as Partial<Targets> | undefined;
  return stored && (Object.keys(TARGETS) as (keyof Targets)[]).every((k) => typeof stored[k] === 'number') ? (stored as Targets) : TARGETS;
}

type TargetRow = [target: string, measured: string, verdict: string];

/** The CPU a max-rate run is judged on: the median of its repetitions (results older than that: the median-rate run's). */
function judgedCpu(m: MaxRateFigures): { baseline: number; collector: number } {
  return m.cpuMedian ?? { baseline: m.baseline.cpuSecondsPerMillionItems, collector: m.collector.cpuSecondsPerMillionItems };
}

/** Which of the two OTLP/gRPC traces → memory targets a max-rate run misses, as the Targets table judges them (bench/run.ts profiles the collector when one is missed). */
export function grpcTracesMisses(m: MaxRateFigures, t: Targets = TARGETS): { cpu: boolean; ratio: boolean } {
  return { cpu: judgedCpu(m).collector > t.cpuSecondsPerMillionSpans, ratio: m.throughputRatio < t.throughputRatio };
}

/** ", median of N runs" when the figure is a median of several repetitions. */
function medianNote(m: MaxRateFigures): string {
  const n = m.runs.filter((r) => r.target === 'collector').length;
  return m.cpuMedian && n > 1 ? `, median of ${n} runs` : '';
}

/** A verdict's margin: as sig() writes figures, but never a nonzero margin as "0.000" (a ratio of 0.5996 is missed by 0.0004, not by 0.000). */
function margin(x: number): string {
  const t = sig(x);
  return x !== 0 && /^[0.,]+$/.test(t) ? String(Number(x.toPrecision(2))) : t;
}

function atMost(value: number, target: number, what: string): string {
  return value <= target ? `**met** (${margin(target - value)} under)` : `**missed** by ${margin(value - target)} ${what} (${sig(value / target)}× the target)`;
}

function atLeast(value: number, target: number): string {
  return value >= target ? `**met** (${margin(value - target)} over)` : `**missed** by ${margin(target - value)}`;
}

/** A row whose figure this run does not have: no verdict. */
function notRun(target: string, why: string): TargetRow {
  return [target, `– (${why})`, 'not run'];
}

/** Why a scenario's figure is missing: it failed (see the notes at the end), or it was not asked for. */
function missing(r: BenchResults, scenario: string, errorPrefix: string): string {
  if (r.errors.some((e) => e.scenario.startsWith(errorPrefix))) return `the ${scenario} scenario failed, see "Not run or failed"`;
  return `the ${scenario} scenario was not part of this run`;
}

/**
 * The verdict for figures from collector runs that did not store everything they accepted (lost:
 * acknowledged and not written after the drain, or dropped rows), summed over the runs; undefined
 * when each stored all it accepted. Such a run's CPU per accepted item leaves out the writes it
 * never made and its rate is a collector's that drops: no target is judged on it.
 */
function unstoredVerdict(runs: readonly IngestFigures[], signal: string): string | undefined {
  let unstored = 0;
  let accepted = 0;
  // A drain that did not finish in time: its queued items were not written yet, neither stored nor lost.
  const undrained: string[] = [];
  for (const f of runs) {
    if (f.target !== 'collector' || f.lostItems === null) continue;
    accepted += f.sentItems;
    unstored += Math.max(0, f.lostItems, f.droppedRows ?? 0);
    const u = undrainedText(f);
    if (u) undrained.push(u);
  }
  const notStored = unstored > 0 ? `${num(unstored)} of ${num(accepted)} accepted ${unit(signal)} not stored (see "lost" in the run's table)` : undefined;
  const parts = [...undrained, ...(notStored ? [notStored] : [])];
  return parts.length > 0 ? `not evaluated: ${parts.join('; ')}` : undefined;
}

/** One CPU-per-million row from a max-rate run of the memory backend, its null receiver beside it. */
function maxCpuRow(r: BenchResults, transport: 'grpc' | 'http', signal: 'traces' | 'logs', target: number): TargetRow {
  const label = `≤ ${target} collector CPU-s per million ${unit(signal)}, OTLP/${transport === 'grpc' ? 'gRPC' : 'HTTP (protobuf)'} ${signal} → memory`;
  const m = r.maxRate.find((x) => x.transport === transport && x.signal === signal && isStandard(x));
  if (!m) return notRun(label, missing(r, "'max'", `max ${transport} ${signal}`));
  const cpu = judgedCpu(m);
  // The memory store's default acknowledgement is queued; its run with the write-ahead log, when the backends scenario had one.
  const durable = transport === 'grpc' && signal === 'traces' ? r.backends?.runs.find((x) => x.backend === MEMORY_DURABLE)?.figures : undefined;
  const withLog = durable ? `; with delivery.ack = durable: ${sig(durable.cpuSecondsPerMillionItems)}, one run` : '';
  return [label, `${sig(cpu.collector)} (null receiver: ${sig(cpu.baseline)})${medianNote(m)}${withLog}`, unstoredVerdict(m.runs, signal) ?? atMost(cpu.collector, target, 'CPU-s per million')];
}

function sqliteCpuRow(r: BenchResults, target: number): TargetRow {
  const label = `≤ ${target} collector CPU-s per million spans, OTLP/gRPC traces → SQLite`;
  const run = r.backends?.runs.find((x) => x.backend === 'sqlite');
  if (!r.backends) return notRun(label, missing(r, "'backends'", 'backends'));
  if (!run?.figures) return notRun(label, `the SQLite run did not finish: ${run?.note ?? 'no figures'}`);
  // Its baselines (null receiver, memory backend) come from the gRPC traces max-rate run; without them the figure is not reported.
  const memory = r.maxRate.find((x) => x.transport === 'grpc' && x.signal === 'traces' && isStandard(x));
  if (!memory) return notRun(label, `no baseline: ${missing(r, "'max'", 'max grpc traces')}`);
  const cpu = run.figures.cpuSecondsPerMillionItems;
  // Runs before 2026-12-05 judged one SQLite run; since then the median of the repetitions, each named.
  const reps = run.repetitions ?? [];
  const median = reps.length > 1 ? `, median of ${reps.length} runs (${reps.map((x) => sig(x.cpuSecondsPerMillionItems)).join(', ')})` : ', one run';
  // The same load with the times moved to each send's moment, as a deployment sends them: shown beside, not judged.
  const current = r.backends.runs.find((x) => x.backend === SQLITE_CURRENT_TIMES)?.figures;
  const withCurrent = current ? `; with current timestamps: ${sig(current.cpuSecondsPerMillionItems)} at ${num(current.acceptedItemsPerS)} spans/s, one run` : '';
  // The same load inside a memory cgroup of the chart's limit, as deployed: shown beside, not judged.
  const limited = r.backends.runs.find((x) => x.backend === SQLITE_CHART_LIMIT);
  const withLimit = limited?.figures ? `; under the chart's memory limit (a ${mib(limited.memoryLimitBytes)} cgroup): ${sig(limited.figures.cpuSecondsPerMillionItems)} at ${num(limited.figures.acceptedItemsPerS)} spans/s, one run` : '';
  const memoryCpu = judgedCpu(memory);
  const baselines = `memory: ${sig(memoryCpu.collector)}, null receiver: ${sig(memoryCpu.baseline)}${medianNote(memory)}`;
  const judged = reps.length > 0 ? reps : [run.figures];
  return [label, `${sig(cpu)} at ${num(run.figures.acceptedItemsPerS)} spans/s${median} (${baselines})${withCurrent}${withLimit}`, unstoredVerdict(judged, 'traces') ?? atMost(cpu, target, 'CPU-s per million')];
}

/** The load generator's CPU-s per million items the receiver accepted. */
function loadgenCpuPerMillion(f: IngestFigures): number {
  const items = f.acceptedItemsPerS * f.durationS;
  return items > 0 ? f.loadgenCpuS / (items / 1e6) : NaN;
}

/**
 * CPU-s per million items of the receiver and the load generator together. At the maximum rate the
 * two share this machine's cores, which they keep about equally busy against either receiver
 * (hostSection), so a receiver's accepted rate goes as the inverse of this figure.
 */
function hostCpuPerMillion(f: IngestFigures): number {
  return f.cpuSecondsPerMillionItems + loadgenCpuPerMillion(f);
}

function throughputRow(r: BenchResults, target: number): TargetRow {
  const label = `≥ ${target} of the null receiver's throughput, OTLP/gRPC traces → memory`;
  const m = r.maxRate.find((x) => x.transport === 'grpc' && x.signal === 'traces' && isStandard(x));
  if (!m) return notRun(label, missing(r, "'max'", 'max grpc traces'));
  const host = { collector: hostCpuPerMillion(m.collector), baseline: hostCpuPerMillion(m.baseline) };
  // What the collector's own CPU would have to be for the ratio, at this run's load generator cost against it.
  const needed = host.baseline / target - loadgenCpuPerMillion(m.collector);
  const verdict = unstoredVerdict(m.runs, 'traces') ?? atLeast(m.throughputRatio, target) + (m.throughputRatio < target ? ` (${pct(m.throughputRatio)} of the null receiver against ${pct(target)}; the collector would need ≤ ${sig(needed)} CPU-s per million spans, see "The machine's CPU per item")` : '');
  return [
    label,
    `${sig(m.throughputRatio)} (${num(m.collector.acceptedItemsPerS)} vs ${num(m.baseline.acceptedItemsPerS)} spans/s; receiver and load generator together: ${sig(host.collector)} against ${sig(host.baseline)} CPU-s per million spans)`,
    verdict,
  ];
}

/** An adapter's ratio to its raw baseline, from its storage benchmark's figures (`ratio`, as the module computes it). */
function adapterRatioRow(r: BenchResults, file: string, label: string, target: number, describe: (f: Record<string, unknown>) => string): TargetRow {
  const s = r.storage.find((x) => x.file === file);
  if (!s) return notRun(label, r.quick ? "the 'storage' scenario does not run in --quick" : missing(r, "'storage'", 'storage'));
  const f = s.figures as Record<string, unknown> | undefined;
  if (!f || typeof f['ratio'] !== 'number') return notRun(label, s.note ?? `${file} returned no ratio`);
  return [label, `${sig(f['ratio'])} (${describe(f)})`, atLeast(f['ratio'], target)];
}

/** rowsPerSecond-style figure of a storage module, if present. */
function rate(f: Record<string, unknown>, key: string, field: string): string {
  const x = f[key] as Record<string, unknown> | undefined;
  return typeof x?.[field] === 'number' ? num(x[field]) : '–';
}

function overloadRow(r: BenchResults): TargetRow {
  const label = 'peak RSS under 2× overload within the stated bound (collector on SQLite, bounded queue)';
  const o = r.overload;
  if (!o) return notRun(label, missing(r, "'overload'", 'overload'));
  const measured = `${mib(o.run.peakRssBytes)} against ${mib(o.rssBoundBytes)} (${o.rssBoundFormula}; at rest ${mib(o.run.idleRssBytes)})`;
  // The bound is one under a full queue: a run the collector never refused anything in (its queue
  // never filled: a slow load generator, a faster store) says nothing about it, nor does one that
  // lost what it accepted.
  if (!o.checks.refusedWithUnavailable) return [label, measured, 'not evaluated: nothing was refused with UNAVAILABLE, so the queue never filled'];
  const unstored = unstoredVerdict([o.run], 'traces');
  if (unstored) return [label, measured, unstored];
  return [
    label,
    measured,
    o.checks.rssUnderBound ? `**met** (${mib(o.rssBoundBytes - o.run.peakRssBytes)} under)` : `**missed** by ${mib(o.run.peakRssBytes - o.rssBoundBytes)}`,
  ];
}

function memoryStoreRow(r: BenchResults, slack: number): TargetRow {
  const label = `memory store kept full: peak RSS ≤ RSS at rest + storage.memory.maxBytes + ${num(slack * 100)} %`;
  const m = r.memoryStore;
  if (!m) return notRun(label, missing(r, "'memory'", 'memory'));
  const f = m.figures;
  if (!f) return notRun(label, m.note ?? 'bench/memory-store.ts returned no figures');
  const bound = f.rssAtRestBytes + (1 + slack) * f.maxBytes;
  const measured = `peak ${mib(f.peakRssBytes)} against ${mib(bound)} (at rest ${mib(f.rssAtRestBytes)}, maxBytes ${mib(f.maxBytes)}; ${num(f.spansWritten)} spans written, ${f.spansKept === null ? '?' : num(f.spansKept)} kept)`;
  // A store that never filled says nothing about the bound.
  if (f.full === false) return [label, measured, 'not evaluated: the store never filled'];
  return [label, measured, f.peakRssBytes <= bound ? `**met** (${mib(bound - f.peakRssBytes)} under)` : `**missed** by ${mib(f.peakRssBytes - bound)} (${sig((f.peakRssBytes - f.rssAtRestBytes) / f.maxBytes)}× maxBytes over rest)`];
}

function targetsSection(r: BenchResults): string {
  const t = targetsOf(r);
  const grpc = r.maxRate.find((m) => m.transport === 'grpc' && m.signal === 'traces' && isStandard(m));
  const rows: TargetRow[] = [
    maxCpuRow(r, 'grpc', 'traces', t.cpuSecondsPerMillionSpans),
    sqliteCpuRow(r, t.sqliteCpuSecondsPerMillionSpans),
    maxCpuRow(r, 'http', 'traces', t.httpCpuSecondsPerMillionSpans),
    maxCpuRow(r, 'grpc', 'logs', t.logsCpuSecondsPerMillionRecords),
    throughputRow(r, t.throughputRatio),
    adapterRatioRow(r, 'bench/postgres.ts', `≥ ${t.postgresCopyRatio} of plain binary COPY's spans/s, PostgreSQL adapter`, t.postgresCopyRatio, (f) => `${rate(f, 'adapterBinary', 'spansPerSec')} vs ${rate(f, 'plainCopyBinary', 'spansPerSec')} spans/s`),
    adapterRatioRow(r, 'bench/clickhouse.ts', `≥ ${t.clickhouseRowBinaryRatio} of direct RowBinary inserts' rows/s, ClickHouse adapter`, t.clickhouseRowBinaryRatio, (f) => `${rate(f, 'adapter', 'rowsPerSecond')} vs ${rate(f, 'directFile', 'rowsPerSecond')} rows/s`),
    overloadRow(r),
    memoryStoreRow(r, t.memoryStoreSlack),
  ];
  return [
    '## Targets',
    '',
    'The targets of issue #10. Each measured figure comes from this run, with its baseline from the same run in brackets; CPU is the collector process\'s own at the maximum rate, standard traffic. A target whose scenario did not run shows "not run".',
    '',
    table(['target', 'measured', 'verdict'], rows),
    '',
    ...(grpc ? [scaleNote(r, grpc), ''] : []),
  ].join('\n');
}

/** What the budget is spent on before the collector does anything of its own: transport alone, decoding alone. */
function scaleNote(r: BenchResults, grpc: MaxRateFigures): string {
  const parts = [`For scale, from the same run: the null receiver alone (grpc-js receiving and acknowledging the same requests) used ${sig(grpc.baseline.cpuSecondsPerMillionItems)} CPU-s per million spans`];
  const traces = r.decode?.signals.find((s) => s.signal === 'traces');
  const memoryTask = r.decode?.encode?.find((e) => e.signal === 'traces' && e.format.startsWith('memory') && e.traffic.startsWith('standard ('));
  if (traces) {
    parts.push(
      `our decoder alone ${sig(traces.contenders[0]!.usPerItem)} CPU-µs per span (= CPU-s per million) in one thread, decoding plus row-line encoding ${sig(traces.contenders[3]!.usPerItem)}` +
        (memoryTask ? `, and the memory store's whole worker task (validate and keep the arrived bytes) ${sig(memoryTask.workerUsPerItem)}` : ''),
    );
  }
  return parts.join('; ') + '.';
}

function machineSection(r: BenchResults): string {
  const m = r.machine;
  const s = r.settings;
  return [
    '## Machine and run',
    '',
    table(
      ['', ''],
      [
        ['CPU', m.cpuModel],
        ['cores', m.cores],
        ['memory', `${num(m.memoryBytes / 1024 ** 3, 1)} GiB`],
        ['Node.js', m.node],
        ['OS', m.os],
        ['date', `${r.startedAt} – ${r.finishedAt} (${num(r.wallS)} s)`],
        ['command', `\`${r.command}\``],
        ['load window per run', `${num(s.durationMs / 1000, 1)} s (overload: ${num(s.overloadDurationMs / 1000, 1)} s)`],
        ['max-rate load', `${s.concurrency} requests in flight over ${s.connections} gRPC connections (HTTP: ${s.concurrency} keep-alive sockets); ${s.repetitions} alternating runs of each side: tables show the run with the median accepted rate, the Targets table the median CPU`],
        ['load average at start / end', `${m.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ')} / ${m.loadAverageAtEnd.map((x) => x.toFixed(2)).join(' ')}`],
      ],
    ),
    '',
    'The receiver under test, its baseline and the load generator are separate processes on the same machine, so they compete for its cores. ' +
      'The last column of each table gives the CPU-seconds the load generator used during the run and the CPU-seconds used by everything else on the host (other load, from /proc/stat); ' +
      'a large second figure means the run shared the machine and its rates are low.',
    '',
  ].join('\n');
}

function trafficSection(r: BenchResults): string {
  const t = r.traffic;
  return [
    '## Traffic',
    '',
    `Requests from bench/traffic.ts: one resource of 9–12 attributes per request, spans with 10–20 attributes of mixed types (strings, ints, doubles, bools, string arrays) and 0–2 events (3 % errors with an exception event), traces of 3–30 spans; ` +
      `log records with 5–10 attributes and a message body, 60 % linked to a trace. Each send gets fresh trace ids.`,
    '',
    table(
      ['signal', 'distinct requests', 'items per request', 'mean items per request', 'bytes per item (protobuf)', 'total'],
      [
        ['traces', t.traces.requests, `${t.spec.traces.minItems}–${t.spec.traces.maxItems}`, num(t.traces.meanItems), num(t.traces.meanBytesPerItem), `${num(t.traces.items)} spans, ${mib(t.traces.bytes)}`],
        ['logs', t.logs.requests, `${t.spec.logs.minItems}–${t.spec.logs.maxItems}`, num(t.logs.meanItems), num(t.logs.meanBytesPerItem), `${num(t.logs.items)} records, ${mib(t.logs.bytes)}`],
      ],
    ),
    '',
  ].join('\n');
}

function maxRateSection(r: BenchResults): string {
  if (r.maxRate.length === 0) return '';
  const out = ['## Maximum rate: collector against the null receiver', ''];
  out.push(
    'Closed loop: the load generator keeps a fixed number of export requests in flight. The baseline is bench/null-receiver.ts, the same grpc-js server (or Node HTTP server) on the same paths, acknowledging without decoding: the transport limit of this machine. ' +
      '"CPU-s per million" is the receiver process\'s own CPU (utime+stime of all its threads, /proc/<pid>/stat) from the start of the load until everything accepted was written, per million items accepted. ' +
      'Latency is measured in the load generator, per export request. Peak RSS is VmHWM. "Lost" is what the load generator got OK for minus tracehouse_writer_written_rows_total after the drain; a drain that did not finish within its wait says how many items were still queued, which are not counted as lost.',
    '',
  );
  for (const m of r.maxRate) {
    const size = isStandard(m) ? '' : `, small requests (${m.traffic ? itemsText(m.traffic.minItems, m.traffic.maxItems) : 'small'} ${unit(m.signal)} each)`;
    out.push(`### OTLP/${m.transport === 'grpc' ? 'gRPC' : 'HTTP (protobuf)'}, ${m.signal}${size}`, '');
    if (!isStandard(m)) out.push(`The same generator with every request ${m.traffic ? itemsText(m.traffic.minItems, m.traffic.maxItems) : 'small'} ${unit(m.signal)} long (${m.traffic?.requests ?? '–'} distinct requests), as SDK batch exporters often send; the null receiver gets the same small requests. Each request pays its per-call costs (grpc-js, dispatch to a worker) over fewer items.`, '');
    out.push(table(INGEST_HEAD, [ingestRow(m.baseline, '1.00'), ingestRow(m.collector, sig(m.throughputRatio))]));
    out.push('');
    const c = m.collector;
    out.push(`Collector written during the load: ${num(c.writtenItemsPerSDuringLoad ?? NaN)} ${unit(m.signal)}/s; drain after the load: ${drainText(c)}; idle RSS ${mib(c.idleRssBytes)}.`);
    if (c.warnings.length) out.push('', `Collector warnings: ${c.warnings.length} (first: \`${c.warnings[0]}\`).`);
    out.push('');
  }
  out.push(threadSection(r.maxRate));
  out.push(hostSection(r.maxRate));
  return out.join('\n');
}

/** The threads a run's CPU is shown for, in this order; the rest are summed as "other". */
const THREADS: [name: string, label: string][] = [
  ['MainThread', 'main thread'],
  ['WorkerThread', 'decode workers'],
  ['V8Worker', 'V8 helpers (GC, compiler)'],
  ['libuv-worker', 'libuv pool (files)'],
];

/** The backends' runs add the SQLite write thread, which Node 24 names after its Worker (WRITE_THREAD_NAME, src/storage/sqlite/index.ts). */
const BACKEND_THREADS: [name: string, label: string][] = [...THREADS.slice(0, 2), ['sqlite-write', 'SQLite write thread'], ...THREADS.slice(2)];

/** A run's CPU per million items by thread as a table row: `threads` in order, the rest as "other", the process total; none without a split. */
function threadRow(label: string, f: IngestFigures, threads: readonly [string, string][]): string[] | undefined {
  const by = f.cpuPerMillionByThread;
  if (!by) return undefined;
  const named = threads.map(([t]) => by[t] ?? 0);
  const other = Object.entries(by).reduce((n, [t, v]) => (threads.some(([x]) => x === t) ? n : n + v), 0);
  return [label, ...named.map((v) => sig(v)), sig(other), sig(f.cpuSecondsPerMillionItems)];
}

/** The max-rate runs' CPU per million items by thread, collector and null receiver alike (/proc/<pid>/task). */
function threadSection(runs: readonly MaxRateFigures[]): string {
  const rows: string[][] = [];
  for (const m of runs) {
    for (const f of [m.baseline, m.collector]) {
      const what = `OTLP/${m.transport === 'grpc' ? 'gRPC' : 'HTTP'} ${m.signal}${isStandard(m) ? '' : ', small requests'}`;
      const row = threadRow(`${f.target === 'collector' ? 'collector' : 'null receiver'}, ${what}`, f, THREADS);
      if (row) rows.push(row);
    }
  }
  if (rows.length === 0) return '';
  return [
    '### CPU by thread',
    '',
    "The same runs' CPU-s per million items split by thread (utime+stime of each thread, /proc/<pid>/task/<tid>/stat, from the start of the load to the end of the drain; threads are grouped by the name Node gives them). The thread sums can fall short of the process total by threads that ended during the run.",
    '',
    table(['run', ...THREADS.map(([, l]) => l), 'other', 'process total'], rows),
    '',
  ].join('\n');
}

function hostSection(runs: readonly MaxRateFigures[]): string {
  const rows: string[][] = [];
  for (const m of runs) {
    const what = `OTLP/${m.transport === 'grpc' ? 'gRPC' : 'HTTP'} ${m.signal}${isStandard(m) ? '' : ', small requests'}`;
    const both = { baseline: hostCpuPerMillion(m.baseline), collector: hostCpuPerMillion(m.collector) };
    for (const f of [m.baseline, m.collector]) {
      const collector = f.target === 'collector';
      const total = collector ? both.collector : both.baseline;
      rows.push([
        `${collector ? 'collector' : 'null receiver'}, ${what}`,
        sig(f.cpuSecondsPerMillionItems),
        sig(loadgenCpuPerMillion(f)),
        sig(total),
        sig((total * f.acceptedItemsPerS) / 1e6),
        collector ? `${sig(m.throughputRatio)} (inverse CPU ratio ${sig(both.baseline / both.collector)})` : '1.00',
      ]);
    }
  }
  if (rows.length === 0) return '';
  return [
    "### The machine's CPU per item",
    '',
    "The receiver and the load generator run on the same cores. Their CPU-s per million items accepted, each, together, and how many cores they kept busy between them. At the maximum rate the two keep about as many cores busy against either receiver, so a receiver's share of the null receiver's rate is about the inverse ratio of the two together: a throughput target is a CPU target here. The load generator's own CPU per item is higher against the collector, whose answers take longer, than against the null receiver.",
    '',
    table(['run', 'receiver', 'load generator', 'together', 'cores busy', 'vs baseline: rate (inverse CPU ratio)'], rows),
    '',
  ].join('\n');
}

function fixedRateSection(r: BenchResults): string {
  if (r.fixedRate.length === 0) return '';
  const out = [
    '## Fixed rates',
    '',
    'Open loop: requests are sent on schedule whatever the answers (at most 64 outstanding; sends beyond that are skipped and counted), and latency counts from the scheduled send time, so a stall shows in full.',
    '',
  ];
  for (const f of r.fixedRate) {
    out.push(`### ${num(f.rate)} ${unit(f.signal)}/s over OTLP/${f.transport === 'grpc' ? 'gRPC' : 'HTTP'} (${pct(f.shareOfMax)} of the collector's maximum)`, '');
    out.push(table(INGEST_HEAD, [ingestRow(f.baseline, '1.00'), ingestRow(f.collector, sig(f.collector.acceptedItemsPerS / f.baseline.acceptedItemsPerS))]));
    const skipped = f.baseline.skippedItems + f.collector.skippedItems;
    if (skipped > 0) out.push('', `Skipped by the load generator (64 requests outstanding): null receiver ${num(f.baseline.skippedItems)}, collector ${num(f.collector.skippedItems)} ${unit(f.signal)}.`);
    out.push('');
  }
  return out.join('\n');
}

function backendsSection(r: BenchResults): string {
  const b = r.backends;
  if (!b) return '';
  const grpc = r.maxRate.find((m) => m.transport === 'grpc' && m.signal === 'traces' && isStandard(m));
  const rows: (string | number)[][] = [];
  if (grpc) {
    rows.push(ingestRow(grpc.baseline, '1.00'));
    rows.push(ingestRow(grpc.collector, sig(grpc.throughputRatio)));
  }
  const notes: string[] = [];
  for (const run of b.runs) {
    if (run.figures) rows.push(ingestRow(run.figures, grpc ? sig(run.figures.acceptedItemsPerS / grpc.baseline.acceptedItemsPerS) : ''));
    else notes.push(`- ${run.backend}: ${run.note ?? 'not run'}`);
  }
  const written = b.runs
    .filter((x) => x.figures)
    .map((x) => `${x.backend}: ${num(x.figures!.writtenItemsPerSDuringLoad ?? NaN)} spans/s written during the load, drain: ${drainText(x.figures!)}`);
  // A backend run more than once (the judged SQLite run) shows its median run; the others are named.
  const repeated = b.runs
    .filter((x) => x.repetitions && x.figures)
    .map((x) => `"${x.backend}" is the run with the median CPU of ${x.repetitions!.length}, each on a new file: ${x.repetitions!.map((f) => `${sig(f.cpuSecondsPerMillionItems)} CPU-s per million at ${num(f.acceptedItemsPerS)} spans/s`).join(', ')}.`);
  const threadRows = [...(grpc ? [threadRow('collector (memory)', grpc.collector, BACKEND_THREADS)] : []), ...b.runs.map((x) => x.figures && threadRow(`collector (${x.backend})`, x.figures, BACKEND_THREADS))].filter((x) => x !== undefined);
  return [
    '## Storage backends behind the collector (OTLP/gRPC, traces, maximum rate)',
    '',
    'The same closed-loop load as above into a collector writing to each backend; baselines from this run: the null receiver and the memory backend. "accepted/s" counts what entered the write queue; a backend slower than decoding shows as a lower written rate and a long drain. ' +
      'CPU is the collector process\'s only: PostgreSQL\'s server processes are not counted (on the embedded server they are most of the "other load" of that row), chdb (ClickHouse) runs inside the collector and is. ' +
      'Every run replays the traffic\'s span times (only trace ids are new on each send) but "sqlite, current timestamps", whose requests have their times moved to the moment of sending, as exporters send spans that just ended: replayed times send SQLite\'s time indexes inserts all over their range. ' +
      '"sqlite, chart memory limit" runs the collector inside a memory cgroup of the Helm chart\'s resources.limits.memory, as a deployment does: the kernel reclaims the store file\'s page cache at the limit and the file\'s new pages reuse it, where the other runs take this machine\'s idle memory, which its VM has handed back to the host and faults in again on first touch (docs/performance.md, phase AI).',
    '',
    table(INGEST_HEAD, rows),
    '',
    ...(repeated.length ? [repeated.join(' '), ''] : []),
    ...(written.length ? [written.join('; ') + '.', ''] : []),
    ...(notes.length ? ['Not run:', '', ...notes, ''] : []),
    ...(threadRows.length
      ? [
          '### CPU by thread, per backend',
          '',
          "The same runs' CPU-s per million spans split by thread, as in \"CPU by thread\" above, with the SQLite store's write thread apart from the decode workers. On ClickHouse the split does not separate the engine from the collector: chdb runs inside the collector, renames the libuv pool threads its queries run on (where the write-ahead log's writes and the adapter's files also run) and starts threads of its own named MainThread, so \"other\" is mostly chdb's but not only, and libuv's share shows there.",
          '',
          table(['run', ...BACKEND_THREADS.map(([, l]) => l), 'other', 'process total'], threadRows),
          '',
        ]
      : []),
  ].join('\n');
}

function overloadSection(r: BenchResults): string {
  const o = r.overload;
  if (!o) return '';
  const f = o.run;
  const yes = (b: boolean) => (b ? 'yes' : '**no**');
  const timeline = f.rssTimeline.length
    ? f.rssTimeline
        .filter((_, i, a) => a.length <= 30 || i % Math.ceil(a.length / 30) === 0)
        .map((p) => `${num(p.tS)} s: ${num(p.rssBytes / MiB)}`)
        .join(', ')
    : '–';
  return [
    '## Overload: twice the maximum rate against a bounded queue',
    '',
    `A collector on SQLite (a file) with writer.maxQueueBytes = ${mib(o.queueBytes)} and writer.maxInFlightBatches = 1 is offered ${num(o.offeredRate)} spans/s over OTLP/gRPC, open loop, for ${num(f.durationS)} s: twice ${num(o.maxRate)} spans/s (${o.maxRateSource}).`,
    '',
    table(
      ['', ''],
      [
        ['offered / accepted / written during load', `${num(f.offeredItemsPerS)} / ${num(f.acceptedItemsPerS)} / ${num(f.writtenItemsPerSDuringLoad ?? NaN)} spans/s`],
        ['refused', refusedText(f)],
        ['collector refusals by reason', Object.entries(f.collectorRefusedByReason ?? {}).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'],
        ['skipped by the load generator (64 outstanding)', `${num(f.skippedItems)} spans`],
        ['sent (OK) / stored / lost', `${num(f.sentItems)} / ${num(f.storedItems ?? NaN)} / ${lossText(f)}`],
        ['drain after the load', drainText(f)],
        ['p50 / p99 latency of accepted exports', `${ms(f.latencyMs.p50Ms)} / ${ms(f.latencyMs.p99Ms)}`],
        ['RSS at rest (baseline)', mib(f.idleRssBytes)],
        ['peak RSS at max rate, default queue (baseline)', mib(o.baselinePeakRssBytes)],
        ['peak RSS under overload', mib(f.peakRssBytes)],
        ['main-thread V8 heap at the end of the load (used / total / external)', f.mainHeapAtLoadEnd ? `${mib(f.mainHeapAtLoadEnd.heapUsedBytes)} / ${mib(f.mainHeapAtLoadEnd.heapTotalBytes)} / ${mib(f.mainHeapAtLoadEnd.externalBytes)}` : '–'],
        ['stated bound', `${mib(o.rssBoundBytes)} (${o.rssBoundFormula})`],
        ['CPU-s per million accepted spans', sig(f.cpuSecondsPerMillionItems)],
      ],
    ),
    '',
    table(
      ['check', 'result'],
      [
        ['peak RSS under the stated bound', yes(o.checks.rssUnderBound)],
        ['excess refused with UNAVAILABLE', yes(o.checks.refusedWithUnavailable)],
        ['no other error code', yes(o.checks.onlyUnavailable)],
        ['nothing accepted was lost (sent − stored = 0, no dropped rows)', undrainedText(f) ? `not known: ${undrainedText(f)}` : yes(o.checks.nothingLost)],
      ],
    ),
    '',
    `RSS over time (MiB): ${timeline}.`,
    '',
  ].join('\n');
}

function memoryStoreSection(r: BenchResults): string {
  const m = r.memoryStore;
  if (!m?.figures) return '';
  const f = m.figures;
  const slack = targetsOf(r).memoryStoreSlack;
  const bound = f.rssAtRestBytes + (1 + slack) * f.maxBytes;
  return [
    '## Memory store kept full',
    '',
    `bench/memory-store.ts in a process of its own: a memory store with storage.memory.maxBytes = ${mib(f.maxBytes)} is written ${num(f.spansWritten)} spans (the ingest runs' trace requests with fresh trace ids, one request a write, encoded as the decode workers encode them for the store), well past its bound, so it evicts all along. ` +
      'The baseline is the same process\'s RSS after a full GC with the store started and empty; peak RSS is the highest sampled during the writes or the process\'s VmHWM.' +
      (f.exposedGc ? '' : ' This run had no --expose-gc: the figures include garbage.'),
    '',
    table(
      ['', ''],
      [
        ['spans written / kept at the end', `${num(f.spansWritten)} / ${f.spansKept === null ? '–' : num(f.spansKept)}`],
        ['bytes the store counts against maxBytes at the end', mib(f.storeBytes)],
        ['RSS at rest (baseline)', mib(f.rssAtRestBytes)],
        ['peak RSS', mib(f.peakRssBytes)],
        ['RSS after the writes and a full GC', mib(f.rssAfterBytes)],
        ['V8 heap used / total, array buffers (after the GC)', `${mib(f.heap.usedBytes)} / ${mib(f.heap.totalBytes)}, ${mib(f.heap.arrayBuffersBytes)}`],
        ['bound', `${mib(bound)} (RSS at rest + maxBytes + ${num(slack * 100)} %)`],
        ['peak RSS within the bound', f.full === false ? 'not evaluated: the store never filled' : f.peakRssBytes <= bound ? 'yes' : '**no**'],
      ],
    ),
    '',
    `Took ${num(f.seconds)} s.`,
    '',
  ].join('\n');
}

function decodeSection(r: BenchResults): string {
  const d = r.decode;
  if (!d) return '';
  const out = [
    '## Decoding in one thread: ours against protobufjs reflection',
    '',
    `The same requests decoded in one thread, CPU time of that thread (median of rounds). The baseline is what @grpc/proto-loader does for a grpc-js service: protobufjs reflection Type.decode then toObject (${d.options}). ` +
      'Ours goes from protobuf bytes to validated, normalized rows (hex ids, exact int64 and nanosecond times, deduplicated attributes); the baseline stops at plain objects.',
    '',
  ];
  for (const s of d.signals) {
    const base = s.contenders[1]!;
    out.push(`### ${s.signal} (${num(s.items)} ${unit(s.signal)} in ${s.requests} requests, ${mib(s.bytes)}, ${s.rounds} rounds)`, '');
    out.push(
      table(
        ['decoder', `µs per ${s.signal === 'traces' ? 'span' : 'record'}`, 'MB/s', 'speed vs baseline'],
        s.contenders.map((c) => [c.name, sig(c.usPerItem), num(c.mbPerS), `${sig(base.usPerItem / c.usPerItem)}×`]),
      ),
    );
    out.push('', `Ours is ${sig(s.speedupVsProtoLoader)}× the speed of the proto-loader path.`, '');
  }
  if (d.encode && d.encode.length > 0) {
    out.push(
      '### The whole worker task per backend format: row path against what the worker runs',
      '',
      'Decoding plus encoding for the backend, one thread, CPU µs per item (median of interleaved rounds). Baseline: the row path (decode into row objects, then the backend\'s RowEncoder). ' +
        'The worker runs a transcoder (wire bytes straight to store bytes) where the format has one, otherwise the same row path.',
      '',
      table(
        ['format', 'signal', 'requests', 'row path (baseline)', 'worker', 'speed vs baseline'],
        d.encode.map((e) => [e.format, e.signal, `${e.traffic}, ${num(e.requests)} requests`, sig(e.rowPathUsPerItem), sig(e.workerUsPerItem), `${sig(e.speedup)}×`]),
      ),
      '',
    );
  }
  return out.join('\n');
}

function profileSection(r: BenchResults): string {
  const p = r.profile;
  if (!p) return '';
  const s = p.summary;
  const grpc = r.maxRate.find((m) => m.transport === 'grpc' && m.signal === 'traces' && isStandard(m));
  const threads = Object.entries(s.busyMsByThread).map(([t, v]) => `${t} ${num(v / 1000, 1)} s`).join(', ');
  return [
    '## Where the collector\'s CPU goes',
    '',
    `The OTLP/gRPC → memory max-rate run again with the collector under \`node --cpu-prof\` (profiles in ${p.dir}/, one per thread), samples cut to the load window. ` +
      `Busy time sampled: ${num(s.busyMs / 1000, 1)} s (${threads}); the idle frames (the event loop waiting, piscina workers blocked in Atomics.wait) are left out. ` +
      'V8 samples a thread\'s stack on a timer, so time a thread is ready but not running counts to the function it was in: on this two-core machine most of it follows a wake-up of another thread, as in piscina\'s `postTask`, which wakes a worker and is often switched out for it (docs/performance.md, phase AO). ' +
      `Under the profiler the collector accepted ${num(p.run.acceptedItemsPerS)} spans/s at ${sig(p.run.cpuSecondsPerMillionItems)} CPU-s per million` +
      (grpc ? ` (unprofiled: ${num(grpc.collector.acceptedItemsPerS)} spans/s, ${sig(grpc.collector.cpuSecondsPerMillionItems)} CPU-s per million).` : '.'),
    '',
    '### Top functions by self time',
    '',
    table(
      ['#', 'function', 'where', 'thread', 'self time', 'share of busy time'],
      s.top.map((h, i) => [i + 1, `\`${h.function}\``, h.location || '(native / VM)', h.threads.join(', '), `${num(h.selfMs)} ms`, `${num(h.selfPercent, 1)} %`]),
    ),
    '',
    ...Object.entries(s.topByThread)
      .sort(([a], [b]) => (a === 'main' ? -1 : b === 'main' ? 1 : a.localeCompare(b)))
      .flatMap(([thread, list]) => [
        `### ${thread === 'main' ? 'Main thread' : 'Decode workers, all threads together'}: ${num((s.busyMsByThread[thread] ?? 0) / 1000, 1)} s busy in a ${num((p.run.windowUs[1] - p.run.windowUs[0]) / 1e6, 1)} s window`,
        '',
        table(
          ['#', 'function', 'where', 'self time', `share of ${thread} busy time`],
          list.slice(0, 5).map((h, i) => [i + 1, `\`${h.function}\``, h.location || '(native / VM)', `${num(h.selfMs)} ms`, `${num(h.selfPercent, 1)} %`]),
        ),
        '',
      ]),
    '### Self time by source file',
    '',
    table(
      ['file', 'self time', 'share of busy time'],
      s.byFile.map((f) => [f.file, `${num(f.selfMs)} ms`, `${num(f.selfPercent, 1)} %`]),
    ),
    '',
  ].join('\n');
}

/** Flattens a figures object into dotted key / value rows. */
function flatten(x: unknown, prefix = '', out: [string, string][] = []): [string, string][] {
  if (x === null || x === undefined) out.push([prefix, '–']);
  else if (typeof x === 'number') out.push([prefix, sig(x)]);
  else if (typeof x === 'bigint' || typeof x === 'boolean') out.push([prefix, String(x)]);
  else if (typeof x === 'string') out.push([prefix, x]);
  else if (Array.isArray(x)) x.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  else for (const [k, v] of Object.entries(x as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

function storageSection(r: BenchResults): string {
  if (r.storage.length === 0) return '';
  const out = ['## Storage adapter benchmarks', '', 'Each adapter\'s own benchmark with its baseline inside, as its module reports it (see the file for what each figure means).', ''];
  for (const s of r.storage) {
    out.push(`### ${s.name} (${s.file})`, '');
    if (s.figures === undefined) {
      out.push(s.note ?? 'not run', '');
      continue;
    }
    out.push(table(['figure', 'value'], flatten(s.figures)), '', `Took ${num(s.seconds ?? NaN)} s.`, '');
  }
  return out.join('\n');
}

function notesSection(r: BenchResults, rawPath: string): string {
  const lines = ['## Not run or failed', ''];
  for (const s of r.skipped) lines.push(`- ${s}`);
  for (const e of r.errors) lines.push(`- ${e.scenario} failed: \`${e.message.split('\n')[0]}\``);
  if (lines.length === 2) lines.push('Nothing: every scenario ran.');
  lines.push('', `Raw figures: ${rawPath} (bench/out/ is not committed).`, '');
  return lines.join('\n');
}

/** The whole report. */
export function renderReport(r: BenchResults, rawPath: string): string {
  const head = [
    '# Benchmarks',
    '',
    `<!-- Generated by bench/run.ts (${r.command}); do not edit by hand: rerun \`npm run bench\`. -->`,
    '',
    `Generated by \`${r.command}\` on ${r.startedAt.slice(0, 10)}${r.quick ? ' (a --quick smoke run: short load windows, figures indicative only)' : ''}. Every figure below comes from that run.`,
    '',
  ].join('\n');
  const sections = [
    targetsSection(r),
    machineSection(r),
    trafficSection(r),
    maxRateSection(r),
    fixedRateSection(r),
    backendsSection(r),
    overloadSection(r),
    memoryStoreSection(r),
    decodeSection(r),
    profileSection(r),
    storageSection(r),
    notesSection(r, rawPath),
  ].filter((s) => s !== '');
  return [head, ...sections].join('\n').replace(/\n{3,}/g, '\n\n');
}

if (import.meta.main) {
  const input = process.argv[2];
  if (!input) {
    process.stderr.write('usage: node bench/report.ts bench/out/bench-<date>.json [--out=docs/benchmarks.md]\n');
    process.exit(2);
  }
  const out = process.argv.find((a) => a.startsWith('--out='))?.slice(6) ?? 'docs/benchmarks.md';
  const results = JSON.parse(readFileSync(input, 'utf8')) as BenchResults;
  writeFileSync(out, renderReport(results, input));
  process.stderr.write(`wrote ${out} from ${input}\n`);
}
