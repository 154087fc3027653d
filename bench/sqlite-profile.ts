// Where the SQLite write thread's CPU goes, native frames included: the collector on SQLite under
// max-rate OTLP/gRPC traces, its write thread (the thread named `sqlite-write`) sampled with
// Linux `perf` for a few seconds, and the samples grouped by what they are: SQLite's
// attribute index (FTS5, in versions before the runs' filters), its tables and B-tree indexes,
// the kernel (file I/O), libc, V8, and our JavaScript. `node --cpu-prof` cannot show this:
// SQLite runs inside one native call per row.
// Needs `perf` (linux-perf) and perf_event_paranoid ≤ 2; not part of `npm run bench`.
//
//   node bench/sqlite-profile.ts [seconds=6] [--signal=traces|logs]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCollectorProcess, threadCpuSeconds } from './harness.ts';
import { DEFAULT_CACHE_DIR } from './ingest.ts';
import { forkLoadgen } from './loadgen.ts';
import { defaultSpec } from './traffic.ts';

const args = process.argv.slice(2);
const seconds = Number(args.find((a) => !a.startsWith('--')) ?? 6);
const signal = args.find((a) => a.startsWith('--signal='))?.slice('--signal='.length) ?? 'traces';
if (signal !== 'traces' && signal !== 'logs') {
  console.error(`--signal: traces or logs, got '${signal}'`);
  process.exit(1);
}
if (spawnSync('perf', ['--version']).status !== 0) {
  console.error('bench/sqlite-profile.ts needs Linux perf on PATH (Debian: apt-get install linux-perf)');
  process.exit(1);
}

/** The write thread's id: Node 24 names a worker's thread after its Worker's name (WRITE_THREAD_NAME, src/storage/sqlite/index.ts). */
function writeThread(pid: number): string | undefined {
  return threadCpuSeconds(pid).find((t) => t.name === 'sqlite-write')?.tid;
}

/** What a sampled frame is, from perf's shared object and symbol. */
function category(dso: string, sym: string): string {
  if (dso.includes('kernel')) return 'kernel (file I/O, scheduling)';
  if (sym.startsWith('JS:')) return /terms\.ts|byte-out|wire-scan|decode\/wire/.test(sym) ? 'our JavaScript: attribute terms' : 'our JavaScript: the rest';
  if (/fts5/i.test(sym)) return 'SQLite FTS5 (the attribute index)';
  if (/^(sqlite3|vdbe|pcache|wal|balance|btree|pager|releaseMem|moveTo|insertCell|fillInCell|allocateSpace)/i.test(sym)) return 'SQLite tables and B-tree indexes';
  if (sym.startsWith('node::')) return 'node:sqlite binding';
  if (dso.startsWith('libc')) return 'libc (memcmp, memcpy, malloc, locks)';
  if (sym.startsWith('v8::') || sym.startsWith('Builtins_')) return 'V8 (builtins, GC, API calls)';
  return 'other';
}

const dir = mkdtempSync(join(tmpdir(), 'tracehouse-sqlite-profile-'));
const perfData = join(dir, 'perf.data');
try {
  // --perf-basic-prof: perf can name JIT-compiled JavaScript frames (V8 then also writes a log per
  // isolate, kept in the temporary folder).
  const v8Flags = ['--perf-basic-prof', `--logfile=${join(dir, 'v8-%p.log')}`];
  const c = await startCollectorProcess({ 'storage.backend': 'sqlite', 'storage.sqlite.path': join(dir, 'profile.db') }, v8Flags);
  try {
    const load = forkLoadgen({ transport: 'grpc', target: c.grpcAddress, signal, traffic: defaultSpec(signal), cacheDir: DEFAULT_CACHE_DIR, durationMs: (seconds + 5) * 1000, mode: { kind: 'max', concurrency: 8 }, connections: 2, refusedPauseMs: 50, timeoutMs: 10_000 });
    await load.ready;
    const done = load.start();
    await new Promise((r) => setTimeout(r, 3000));
    const tid = writeThread(c.pid);
    if (tid === undefined) throw new Error('no thread named sqlite-write in the collector');
    const perf = spawn('perf', ['record', '-q', '-F', '1999', '-t', tid, '-o', perfData, '--', 'sleep', String(seconds)], { stdio: 'inherit' });
    await new Promise((r) => perf.on('exit', r));
    await done;
  } finally {
    await c.stop();
  }
  const report = spawnSync('perf', ['report', '-i', perfData, '--no-children', '--sort', 'dso,sym', '--stdio', '-g', 'none'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const shares = new Map<string, number>();
  const top: string[] = [];
  for (const line of report.stdout.split('\n')) {
    const m = /^\s*([\d.]+)%\s+(.+?)\s+\[[.k]\]\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pct, dso, sym] = m;
    shares.set(category(dso!, sym!.trim()), (shares.get(category(dso!, sym!.trim())) ?? 0) + Number(pct));
    if (top.length < 25) top.push(`  ${pct!.padStart(6)} %  ${sym!.trim().slice(0, 100)}`);
  }
  console.log(`SQLite write thread under max-rate OTLP/gRPC ${signal}, ${seconds} s sampled with perf:`);
  for (const [k, v] of [...shares].sort((a, b) => b[1] - a[1])) console.log(`  ${v.toFixed(1).padStart(5)} %  ${k}`);
  console.log('Top symbols:');
  console.log(top.join('\n'));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
