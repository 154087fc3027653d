// Scenario: backup and restore of a SQLite store. `export` streams N spans from a SQLite file
// into OTLP/JSON lines; `import` reads that file back into a fresh SQLite store through the decode
// workers and the writer. Baselines in the same run: writing the same bytes to a file in the same
// line-sized writes (what export costs beyond the disk), and reading the file line by line (what
// import costs beyond it). Each phase runs in a child process of its own, so its peak RSS is its
// own: with keyset pages it must not grow with the size of the store, and each phase runs with its
// main-thread heap capped (HEAP_CAP_MIB), far below the size of the file.
//
//   node bench/transfer.ts [--spans=N]          (default 100000)
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../src/config/index.ts';
import { decodeTracesProto } from '../src/pipeline/decode/index.ts';
import { createBackend } from '../src/storage/index.ts';
import { createEncoder as createProtoEncoder } from '../src/pipeline/transcode/otlp/rows.ts';
import { SqliteStore, openDatabase } from '../src/storage/sqlite/store.ts';
import { createMetrics } from '../src/telemetry/metrics.ts';
import { exportStore, importFiles } from '../src/transfer/commands.ts';
import { TransferSink } from '../src/transfer/sink.ts';
import { memory } from './harness.ts';
import { buildTraffic, defaultSpec, stampTraceIds } from './traffic.ts';
import { DEFAULT_TENANT } from '../src/model/tenant.ts';

const silent = pino({ level: 'silent' });

/**
 * This process's peak RSS, MiB: VmHWM, which exec resets. Not process.resourceUsage().maxRSS:
 * ru_maxrss keeps over exec the peak of the process this one was started from (run(), after it
 * filled the source store), which every phase then reported as its own.
 */
function ownPeakRssMiB(): number {
  return memory(process.pid).peakRssBytes / 2 ** 20;
}
const SELF = new URL(import.meta.url).pathname;

interface PhaseResult {
  spans: number;
  bytes: number;
  seconds: number;
  maxRssMiB: number;
}

function sqliteConfig(path: string) {
  return loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': path } });
}

/** Fills a SQLite file with about n spans (distinct trace ids per round) through the store's write path. */
function fill(path: string, n: number): number {
  const reqs = buildTraffic(defaultSpec('traces', 24, 14));
  const enc = createProtoEncoder({});
  const db = openDatabase(path);
  const store = new SqliteStore(db);
  let spans = 0;
  for (let round = 0; spans < n; round++) {
    for (let i = 0; i < reqs.length && spans < n; i++) {
      const rows = decodeTracesProto(stampTraceIds(reqs[i]!, 77, round * reqs.length + i), { maxNestingDepth: 100 }).rows;
      const r = store.writeSpans(enc.encodeSpans(rows).map((c) => c.data));
      if (r.kind !== 'success') throw new Error(`fill failed: ${r.error.message}`);
      spans += rows.length;
    }
  }
  db.close();
  return spans;
}

async function phaseExport(db: string, out: string): Promise<PhaseResult> {
  const backend = await createBackend(sqliteConfig(db), { logger: silent, metrics: createMetrics() });
  await backend.start();
  const t0 = performance.now();
  const r = await exportStore(backend, { out, tenant: DEFAULT_TENANT, signals: ['traces'], quiet: true });
  const seconds = (performance.now() - t0) / 1000;
  await backend.shutdown();
  return { spans: r.spans, bytes: r.bytes, seconds, maxRssMiB: ownPeakRssMiB() };
}

async function phaseImport(file: string, db: string): Promise<PhaseResult> {
  const config = sqliteConfig(db);
  const metrics = createMetrics();
  const sink = new TransferSink(config, await createBackend(config, { logger: silent, metrics }), metrics, silent);
  await sink.start();
  const t0 = performance.now();
  const r = await importFiles(sink, { files: [file], onError: 'stop', quiet: true, maxMessageBytes: config['receiver.maxMessageBytes'] });
  const seconds = (performance.now() - t0) / 1000;
  await sink.shutdown();
  if (r.problems > 0) throw new Error(`import reported ${r.problems} problems`);
  return { spans: r.spans, bytes: r.bytes, seconds, maxRssMiB: ownPeakRssMiB() };
}

/** Baseline for export: as many bytes written to a file in writes of the same sizes as the export's lines (one line's bytes repeated, so the baseline holds no more than a line). */
async function phaseWriteBaseline(source: string, out: string): Promise<PhaseResult> {
  const sizes: number[] = [];
  let sample = Buffer.alloc(0);
  for await (const l of lineChunks(source)) {
    sizes.push(l.length);
    if (l.length > sample.length) sample = Buffer.from(l);
  }
  const w = createWriteStream(out);
  const t0 = performance.now();
  let bytes = 0;
  for (const n of sizes) {
    bytes += n;
    if (!w.write(sample.subarray(0, n))) await new Promise<void>((r) => w.once('drain', () => r()));
  }
  await new Promise<void>((r) => w.end(r));
  return { spans: 0, bytes, seconds: (performance.now() - t0) / 1000, maxRssMiB: ownPeakRssMiB() };
}

/** Baseline for import: reading the file and splitting it into lines. */
async function phaseReadBaseline(file: string): Promise<PhaseResult> {
  const t0 = performance.now();
  let bytes = 0;
  for await (const l of lineChunks(file)) bytes += l.length;
  return { spans: 0, bytes, seconds: (performance.now() - t0) / 1000, maxRssMiB: ownPeakRssMiB() };
}

async function* lineChunks(file: string): AsyncGenerator<Buffer> {
  let rest = Buffer.alloc(0);
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      yield buf.subarray(0, nl + 1);
      buf = buf.subarray(nl + 1);
    }
    rest = Buffer.from(buf);
  }
  if (rest.length) yield rest;
}

/** The main thread's heap cap in each phase: a phase that held the store or the file would die of it. */
const HEAP_CAP_MIB = 160;

function child(args: string[]): PhaseResult {
  const r = spawnSync(process.execPath, [`--max-old-space-size=${HEAP_CAP_MIB}`, SELF, ...args], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`phase ${args[0]} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as PhaseResult;
}

function rate(spans: number, r: PhaseResult) {
  return { seconds: +r.seconds.toFixed(2), spansPerSec: Math.round(spans / r.seconds), mibPerSec: +(r.bytes / 2 ** 20 / r.seconds).toFixed(1), maxRssMiB: Math.round(r.maxRssMiB) };
}

/** Runs the scenario and returns its figures. */
export async function run(opts: { spans?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tracehouse-bench-transfer-'));
  try {
    const src = join(dir, 'source.db');
    const spans = fill(src, opts.spans ?? 100_000);
    const file = join(dir, 'export.jsonl');
    const exp = child(['export', src, file]);
    const writeBase = child(['write-baseline', file, join(dir, 'copy.jsonl')]);
    const imp = child(['import', file, join(dir, 'target.db')]);
    const readBase = child(['read-baseline', file]);
    if (exp.spans !== spans || imp.spans !== spans) throw new Error(`counts differ: stored ${spans}, exported ${exp.spans}, imported ${imp.spans}`);
    return {
      scenario: 'transfer-sqlite',
      spans,
      heapCapMiB: HEAP_CAP_MIB,
      fileBytes: statSync(file).size,
      sourceDbBytes: statSync(src).size,
      export: rate(spans, exp),
      writeBaseline: rate(spans, writeBase),
      import: rate(spans, imp),
      readBaseline: rate(spans, readBase),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const [phase, a, b] = process.argv.slice(2);
  let out: unknown;
  if (phase === 'export') out = await phaseExport(a!, b!);
  else if (phase === 'import') out = await phaseImport(a!, b!);
  else if (phase === 'write-baseline') out = await phaseWriteBaseline(a!, b!);
  else if (phase === 'read-baseline') out = await phaseReadBaseline(a!);
  else {
    const arg = process.argv.find((x) => x.startsWith('--spans='));
    out = await run(arg ? { spans: Number(arg.slice('--spans='.length)) } : {});
  }
  console.log(JSON.stringify(out, null, phase === undefined || phase.startsWith('--') ? 2 : 0));
}
