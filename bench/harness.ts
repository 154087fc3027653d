// Process plumbing for the scenarios: the collector and the null receiver as child processes,
// their CPU and memory from /proc, the collector's counters from /metrics.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import HEAP_FLAGS from '../bin/heap-flags.json' with { type: 'json' };
import type { EncoderSpec } from '../src/storage/encoders.ts';

export const REPO_DIR = fileURLToPath(new URL('..', import.meta.url));

/** The store formats whose decode-worker transcoders bench/transcoder-pair.ts (and ab.ts --transcoder) compare, as the memory and SQLite, PostgreSQL (binary COPY) and ClickHouse (one shard) stores ask for them. */
export const TRANSCODER_SPECS: Readonly<Record<string, EncoderSpec>> = {
  otlp: { name: 'otlp', options: {} },
  postgres: { name: 'postgres', options: { format: 'binary' } },
  clickhouse: { name: 'clickhouse', options: { partitions: 1 } },
};

/** TRANSCODER_SPECS[name], with `shards` shards for ClickHouse; undefined for an unknown name. */
export function transcoderSpec(name: string, shards = 1): EncoderSpec | undefined {
  if (!Number.isInteger(shards) || shards < 1) throw new Error(`--shards must be a whole number of at least 1, not ${JSON.stringify(shards)}`);
  const spec = TRANSCODER_SPECS[name];
  return spec?.name === 'clickhouse' ? { ...spec, options: { partitions: shards } } : spec;
}

/** The value of a `--name=value` command-line flag, or undefined when it is not given. */
export function cliFlag(name: string): string | undefined {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? undefined : a.slice(name.length + 3);
}

let clockTicks: number | undefined;

/** Clock ticks per second of /proc/<pid>/stat times (getconf CLK_TCK; 100 on Linux almost always). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds of a /proc stat line (a process's or one thread's). */
function statCpuSeconds(stat: string): number {
  // Fields after the command name (which may contain spaces) in parentheses; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}

/** User + system CPU seconds the process (all its threads) has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  return statCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** CPU seconds (user + system) of each thread of a process, with the name Node gives it, from /proc/<pid>/task/<tid>/stat. */
export function threadCpuSeconds(pid: number): { tid: string; name: string; seconds: number }[] {
  const out: { tid: string; name: string; seconds: number }[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch (err) {
      // A thread that ended between the listing and the read is left out; anything else is an error.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ESRCH') continue;
      throw err;
    }
    out.push({ tid, name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), seconds: statCpuSeconds(stat) });
  }
  return out;
}

/**
 * CPU seconds (user + system) by thread name: Node names its threads MainThread, WorkerThread
 * (worker_threads: the decode pool), V8Worker (V8's helpers: concurrent and parallel garbage
 * collection, background compilation), libuv-worker (the thread pool: file system calls),
 * node-sqlite and the like. Threads that ended are not counted.
 */
export function cpuSecondsByThread(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of threadCpuSeconds(pid)) out[t.name] = (out[t.name] ?? 0) + t.seconds;
  return out;
}

/** Resident set size now and its peak (VmHWM), bytes, from /proc/<pid>/status. */
export function memory(pid: number): { rssBytes: number; peakRssBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}

/** A child process speaking JSON lines on stdout. */
export interface ServerProcess {
  pid: number;
  child: ChildProcess;
  /** The JSON log lines seen so far. */
  lines: Record<string, unknown>[];
  /** SIGTERM, then SIGKILL after graceMs; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

function spawnJsonLines(args: string[], until: (lines: Record<string, unknown>[]) => boolean, what: string, timeoutMs = 30_000, cwd = REPO_DIR): Promise<ServerProcess> {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  let buf = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-8000);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const proc: ServerProcess = {
    pid: child.pid!,
    child,
    lines,
    async stop(graceMs = 60_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not start within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          lines.push({ msg: line });
        }
        if (lines.length > 2000) lines.splice(0, 1000);
        if (until(lines)) {
          clearTimeout(timer);
          resolve(proc);
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} during start-up\n${stderr}`));
    });
  });
}

export interface CollectorProcess extends ServerProcess {
  grpcAddress: string;
  httpUrl: string;
  opsUrl: string;
  /** The command line, for the report. */
  args: string[];
}

/**
 * Starts the collector as `npm start` and the image do (`node bin/tracehouse.js`, with its V8 heap
 * flags) with these options (dotted keys) on ephemeral loopback ports: this checkout's, or the one
 * at repoDir (bench/ab.ts starts another revision's).
 */
export async function startCollectorProcess(options: Record<string, string>, nodeArgs: string[] = [], repoDir = REPO_DIR): Promise<CollectorProcess> {
  const opts: Record<string, string> = {
    'receiver.grpc.listen': '127.0.0.1:0',
    'receiver.http.listen': '127.0.0.1:0',
    'query.listen': '127.0.0.1:0',
    'ops.listen': '127.0.0.1:0',
    ...options,
  };
  // Nothing a run writes outlives it. Without a storage.sqlite.path, the SQLite store's file and
  // the write-ahead log (ack = durable, the default of every store but memory; it follows the
  // file's directory unless delivery.walDir is given) would land in ./data of the checkout, and
  // a SQLite file there grew from run to run: bench/ab.ts --backend=sqlite wrote the change's
  // spans into one file across all its runs and the base's into a fresh worktree's. They go to a
  // temporary directory, removed once the collector has stopped.
  const dataTemp = options['storage.sqlite.path'] === undefined ? mkdtempSync(join(tmpdir(), 'tracehouse-bench-data-')) : undefined;
  if (dataTemp !== undefined) opts['storage.sqlite.path'] = join(dataTemp, 'tracehouse.db');
  const flags = Object.entries(opts).map(([k, v]) => `--${k}=${v}`);
  const args = [...nodeArgs, 'bin/tracehouse.js', ...flags];
  const proc = await spawnJsonLines(args, (ls) => ls.some((l) => l['msg'] === 'tracehouse started'), 'collector', undefined, repoDir);
  if (dataTemp !== undefined) {
    const stop = proc.stop.bind(proc);
    proc.stop = async (graceMs) => {
      const code = await stop(graceMs);
      rmSync(dataTemp, { recursive: true, force: true });
      return code;
    };
  }
  const port = (msg: string) => proc.lines.find((l) => l['msg'] === msg)?.['port'] as number | undefined;
  return {
    ...proc,
    grpcAddress: `127.0.0.1:${port('OTLP/gRPC receiver listening') ?? 0}`,
    httpUrl: `http://127.0.0.1:${port('OTLP/HTTP receiver listening') ?? 0}`,
    opsUrl: `http://127.0.0.1:${port('operations endpoints listening') ?? 0}`,
    args: ['node', 'bin/tracehouse.js', ...flags],
  };
}

export interface NullReceiverProcess extends ServerProcess {
  grpcAddress: string;
  httpUrl: string;
}

/** Starts bench/null-receiver.ts as a process, with the V8 heap flags the collector's launcher gives the collector; its gRPC side on grpc-js unless told otherwise. */
export async function startNullReceiverProcess(grpcStack: 'grpc-js' | 'node-http2' = 'grpc-js'): Promise<NullReceiverProcess> {
  const proc = await spawnJsonLines([...HEAP_FLAGS, 'bench/null-receiver.ts', `--grpc-stack=${grpcStack}`], (ls) => ls.some((l) => l['msg'] === 'null receiver listening'), 'null receiver');
  const l = proc.lines.find((x) => x['msg'] === 'null receiver listening')!;
  return { ...proc, grpcAddress: `127.0.0.1:${l['grpcPort'] as number}`, httpUrl: `http://127.0.0.1:${l['httpPort'] as number}` };
}

// ---------------------------------------------------------------------------------------------
// Prometheus text

export type MetricSamples = { name: string; labels: Record<string, string>; value: number }[];

/** Fetches and parses /metrics. */
export async function scrape(opsUrl: string): Promise<MetricSamples> {
  const text = await (await fetch(opsUrl + '/metrics')).text();
  const out: MetricSamples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const lm of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]!] = lm[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return out;
}

/** Sum of a metric over the label sets matching `labels`. */
export function metricSum(samples: MetricSamples, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of samples) if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  return sum;
}

/** Values of a metric by one label (e.g. refused requests by reason). */
export function metricByLabel(samples: MetricSamples, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) if (s.name === name) out[s.labels[label] ?? ''] = (out[s.labels[label] ?? ''] ?? 0) + s.value;
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Busy CPU seconds of the whole machine (all cores, every process) from /proc/stat. */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: everything but idle and iowait.
  const busy = f[0]! + f[1]! + f[2]! + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy / ticksPerSecond();
}

/** Microseconds on the monotonic clock V8 stamps .cpuprofile samples with. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}
