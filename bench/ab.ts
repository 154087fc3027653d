// Interleaved pairs: this checkout's collector against another revision's, at the maximum rate,
// on the same traffic and in the same minutes. On a shared host the same build varies by up to
// a half from one hour to the next (docs/performance.md), so two figures from different runs of
// `npm run bench` say little about a change; pairs run back to back, in alternating order, do.
//
//   node bench/ab.ts --base=<revision> [--pairs=3] [--signal=traces|logs] [--transport=grpc|http]
//                    [--backend=memory] [--option=<key>=<value>]... [--small] [--seconds=10] [--rate=<items/s>]
//                    [--memory-write | --transcoder=otlp|postgres|clickhouse]
//
// --rate offers that many items per second (open loop) instead of the maximum: at the maximum
// rate a thread that gets faster lets the others run more often, so each thread's CPU per item
// is clearest at a rate both sides carry.
// --option sets a configuration key on both collectors (repeatable), e.g. --option=delivery.ack=durable.
//
// With --memory-write it compares the memory store's write alone instead (bench/memory-write.ts in
// a child process per side and pair): changes to the store's ingest are smaller than the
// collector's runs can show.
//
// With --transcoder=<encoder> it compares the decode workers' transcoder for that store format
// alone (bench/transcoder-pair.ts: both sides in one process per pair, their rounds alternating).
//
// The other revision is checked out into a temporary git worktree that uses this checkout's
// node_modules (a warning says so when the lockfiles differ) and is removed at the end. The load
// generator, its traffic and the measurement are this checkout's for both sides. Each run prints
// a line; the summary gives each side's CPU-s per million items (process and by thread) and, pair
// by pair, the change's against the base's.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_DIR, TRANSCODER_SPECS } from './harness.ts';
import { runIngest, type IngestFigures } from './ingest.ts';
import { inAlternatingOrder, mean, sig3 as round } from './stats.ts';
import { defaultSpec, smallSpec, type BenchSignal } from './traffic.ts';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    pairs: { type: 'string', default: '3' },
    signal: { type: 'string', default: 'traces' },
    transport: { type: 'string', default: 'grpc' },
    backend: { type: 'string', default: 'memory' },
    option: { type: 'string', multiple: true, default: [] },
    small: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string' },
    'memory-write': { type: 'boolean', default: false },
    transcoder: { type: 'string' },
  },
});

function fail(message: string): never {
  process.stderr.write(`bench/ab.ts: ${message}\n`);
  process.exit(2);
}

const git = (...a: string[]): string => execFileSync('git', a, { cwd: REPO_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
if (args.base === undefined) fail('--base=<revision> is required (a commit, tag or branch to compare this checkout against)');
const signal = args.signal as BenchSignal;
if (signal !== 'traces' && signal !== 'logs') fail(`--signal must be traces or logs, not ${JSON.stringify(args.signal)}`);
const transport = args.transport as 'grpc' | 'http';
if (transport !== 'grpc' && transport !== 'http') fail(`--transport must be grpc or http, not ${JSON.stringify(args.transport)}`);
const pairs = Number(args.pairs);
const seconds = Number(args.seconds);
if (!Number.isInteger(pairs) || pairs < 1) fail(`--pairs must be a whole number of at least 1, not ${JSON.stringify(args.pairs)}`);
if (!(seconds >= 1)) fail(`--seconds must be at least 1, not ${JSON.stringify(args.seconds)}`);
const rate = args.rate === undefined ? undefined : Number(args.rate);
if (rate !== undefined && !(rate >= 1)) fail(`--rate must be a number of items per second, not ${JSON.stringify(args.rate)}`);
const TRANSCODERS = Object.keys(TRANSCODER_SPECS);
if (args.transcoder !== undefined && !TRANSCODERS.includes(args.transcoder)) fail(`--transcoder must be one of ${TRANSCODERS.join(', ')}, not ${JSON.stringify(args.transcoder)}`);
if (args.transcoder !== undefined && args['memory-write']) fail('--transcoder and --memory-write each choose what to compare: give one');
const options: Record<string, string> = {};
for (const o of args.option) {
  const eq = o.indexOf('=');
  if (eq <= 0) fail(`--option must be <key>=<value>, not ${JSON.stringify(o)}`);
  options[o.slice(0, eq)] = o.slice(eq + 1);
}
let baseCommit: string;
try {
  baseCommit = git('rev-parse', '--verify', `${args.base}^{commit}`);
} catch {
  fail(`--base=${args.base} is not a revision of this repository`);
}
const head = git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--untracked-files=no') === '' ? '' : ' with changes');

const worktree = mkdtempSync(join(tmpdir(), 'tracehouse-ab-'));
git('worktree', 'add', '--detach', worktree, baseCommit);
try {
  symlinkSync(join(REPO_DIR, 'node_modules'), join(worktree, 'node_modules'));
  try {
    git('diff', '--quiet', baseCommit, '--', 'package-lock.json');
  } catch {
    process.stderr.write(`bench/ab.ts: warning: package-lock.json differs from ${args.base}'s; both sides run on this checkout's node_modules\n`);
  }
  const sides = { base: worktree, change: REPO_DIR } as const;
  const what = args['memory-write']
    ? `the memory store's write of ${signal}, in-process`
    : args.transcoder !== undefined
      ? `the ${args.transcoder} transcoder on ${signal}, in-process`
      : `${signal} over ${transport} into ${args.backend}, ${args.small ? 'small' : 'standard'} requests, ${seconds} s a run`;
  console.log(`change: ${head}; base: ${args.base} (${baseCommit.slice(0, 7)}); ${what}, ${pairs} pair${pairs === 1 ? '' : 's'}`);
  if (args['memory-write']) compareMemoryWrites(sides);
  else if (args.transcoder !== undefined) compareTranscoders(sides, args.transcoder);
  else await compareCollectors(sides);
} finally {
  rmSync(join(worktree, 'node_modules'), { force: true });
  git('worktree', 'remove', '--force', worktree);
}

type Sides = { base: string; change: string };

/** Alternates which side goes first: a host that speeds up or slows down during a pair favours neither side every time. */
function orderOf(pair: number): readonly (keyof Sides)[] {
  return inAlternatingOrder(pair, ['base', 'change'] as const);
}

function compareMemoryWrites(sides: Sides): void {
  const runs: Record<keyof Sides, { fastest: number; median: number }[]> = { base: [], change: [] };
  for (let p = 0; p < pairs; p++) {
    for (const side of orderOf(p)) {
      const out = execFileSync(process.execPath, [join(REPO_DIR, 'bench', 'memory-write.ts'), `--tree=${sides[side]}`, `--signal=${signal}`], { cwd: REPO_DIR, encoding: 'utf8' });
      const f = JSON.parse(out.trim().split('\n').pop()!) as { fastest: number; median: number };
      runs[side].push(f);
      console.log(JSON.stringify({ pair: p + 1, side, fastest: f.fastest, median: f.median }));
    }
  }
  console.log("\nCPU-µs per item of the store's write, pair by pair (fastest round; median round):");
  for (let p = 0; p < pairs; p++) {
    const [c, b] = [runs.change[p]!, runs.base[p]!];
    console.log(`  pair ${p + 1}: change ${c.fastest}; ${c.median} against base ${b.fastest}; ${b.median}`);
  }
}

function compareTranscoders(sides: Sides, encoder: string): void {
  console.log('CPU-µs per item of the transcoder, pair by pair (fastest round; lower quartile; median):');
  for (let p = 0; p < pairs; p++) {
    const out = execFileSync(process.execPath, [join(REPO_DIR, 'bench', 'transcoder-pair.ts'), `--base-tree=${sides.base}`, `--change-tree=${sides.change}`, `--encoder=${encoder}`, `--signal=${signal}`], { cwd: REPO_DIR, encoding: 'utf8' });
    type Side = { side: keyof Sides; fastest: number; lowerQuartile: number; median: number };
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Side);
    const f = (side: keyof Sides): Side => lines.find((x) => x.side === side)!;
    const show = (x: Side) => `${x.fastest}; ${x.lowerQuartile}; ${x.median}`;
    console.log(`  pair ${p + 1}: change ${show(f('change'))} against base ${show(f('base'))}`);
  }
}

async function compareCollectors(sides: Sides): Promise<void> {
  const traffic = args.small ? smallSpec(signal) : defaultSpec(signal);
  const runs: Record<keyof Sides, IngestFigures[]> = { base: [], change: [] };
  for (let p = 0; p < pairs; p++) {
    for (const side of orderOf(p)) {
      const f = await runIngest({
        name: `ab-${side}`,
        transport,
        signal,
        traffic,
        durationMs: seconds * 1000,
        mode: rate === undefined ? { kind: 'max', concurrency: 8 } : { kind: 'rate', itemsPerSecond: rate, maxInFlight: 64 },
        connections: 2,
        target: { kind: 'collector', options: { 'storage.backend': args.backend, ...options }, repoDir: sides[side] },
      });
      runs[side].push(f);
      console.log(JSON.stringify({ pair: p + 1, side, cpuPerMillion: round(f.cpuSecondsPerMillionItems), acceptedPerS: Math.round(f.acceptedItemsPerS), refusedRequests: f.refusedRequests, p99Ms: round(f.latencyMs.p99Ms), maxMs: round(f.latencyMs.maxMs), threads: roundAll(f.cpuPerMillionByThread) }));
    }
  }
  console.log('\nCPU-s per million items (process), pair by pair:');
  for (let p = 0; p < pairs; p++) {
    const [c, b] = [runs.change[p]!.cpuSecondsPerMillionItems, runs.base[p]!.cpuSecondsPerMillionItems];
    console.log(`  pair ${p + 1}: change ${round(c)} against base ${round(b)} (${c < b ? 'lower' : 'not lower'}, ${(((c - b) / b) * 100).toFixed(1)} %)`);
  }
  for (const side of ['change', 'base'] as const) {
    const byThread = new Map<string, number[]>();
    for (const f of runs[side]) for (const [t, v] of Object.entries(f.cpuPerMillionByThread)) byThread.set(t, [...(byThread.get(t) ?? []), v]);
    const threads = [...byThread].filter(([, vs]) => mean(vs) >= 0.005).map(([t, vs]) => `${t} ${round(mean(vs))}`);
    console.log(`${side}: mean ${round(mean(runs[side].map((f) => f.cpuSecondsPerMillionItems)))} CPU-s per million at ${Math.round(mean(runs[side].map((f) => f.acceptedItemsPerS)))} items/s; by thread (means): ${threads.join(', ')}`);
  }
}

function roundAll(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v)]));
}
