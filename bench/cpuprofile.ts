// Summarizes V8 .cpuprofile files (node --cpu-prof writes one per thread): self time per
// function and per source file, summed over the files given, optionally only the samples inside
// a time window (the measured load, without start-up and shutdown). V8 samples wall-clock
// stacks, so time a thread spends blocked is left out by name: (idle) is the event loop waiting,
// piscina's atomicsWaitLoop is a worker blocked in Atomics.wait for its next task. Time a thread
// is ready to run but switched out is not left out: it counts to the function it was in, most
// often one that has just woken another thread (piscina's postTask; docs/performance.md, phase AO).
//
//   node bench/cpuprofile.ts DIR_OR_FILES... [--top=10]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_DIR } from './harness.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  function: string;
  /** Source location relative to the repository (node: and node_modules paths kept readable). */
  location: string;
  selfMs: number;
  /** Share of all non-idle samples in the profiles. */
  selfPercent: number;
  /** Which threads it ran on (main, worker). */
  threads: string[];
}

/** Frames that stand for a thread waiting, not working. */
export const IDLE_FRAMES: ReadonlySet<string> = new Set(['(idle)', 'atomicsWaitLoop']);

export interface ProfileSummary {
  files: number;
  /** Sampled time in the window, blocked or not, ms (busy + the idle frames). */
  sampledMs: number;
  /** Non-idle sampled time, ms, per thread kind. */
  busyMsByThread: Record<string, number>;
  busyMs: number;
  top: HotFunction[];
  /** The same per kind of thread (main, worker: the decode workers summed), each share of that kind's busy time. */
  topByThread: Record<string, HotFunction[]>;
  /** Self time by source file (or pseudo-frame such as (garbage collector)). */
  byFile: { file: string; selfMs: number; selfPercent: number }[];
}

function readableUrl(url: string): string {
  if (url === '') return '';
  let path = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
  if (path.startsWith(REPO_DIR)) path = relative(REPO_DIR, path);
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) path = path.slice(nm);
  return path;
}

function profileFiles(inputs: string[]): string[] {
  const out: string[] = [];
  for (const p of inputs) {
    if (statSync(p).isDirectory()) {
      for (const f of readdirSync(p)) if (f.endsWith('.cpuprofile')) out.push(join(p, f));
    } else out.push(p);
  }
  return out.sort();
}

/** Self time per function over the given .cpuprofile files or directories. */
export function summarizeProfiles(inputs: string[], topN = 10, windowUs?: [number, number]): ProfileSummary {
  const files = profileFiles(inputs);
  const fnMs = new Map<string, { function: string; location: string; ms: number; threads: Set<string> }>();
  const perThread = new Map<string, Map<string, { function: string; location: string; ms: number }>>();
  const fileMs = new Map<string, number>();
  const busyMsByThread: Record<string, number> = {};
  let sampledMs = 0;
  for (const f of files) {
    // node names files CPU.<date>.<time>.<pid>.<threadId>.<seq>.cpuprofile; thread 0 is the main thread.
    const threadId = /\.\d+\.(\d+)\.\d+\.cpuprofile$/.exec(f)?.[1];
    const thread = threadId === undefined || threadId === '0' ? 'main' : 'worker';
    const prof = JSON.parse(readFileSync(f, 'utf8')) as CpuProfile;
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const selfUs = new Map<number, number>();
    const n = prof.samples.length;
    let at = prof.startTime;
    for (let i = 0; i < n; i++) {
      at += prof.timeDeltas[i]!;
      if (windowUs && (at < windowUs[0] || at > windowUs[1])) continue;
      // A sample stands for the time until the next one.
      const dt = i + 1 < n ? prof.timeDeltas[i + 1]! : 0;
      selfUs.set(prof.samples[i]!, (selfUs.get(prof.samples[i]!) ?? 0) + Math.max(0, dt));
    }
    for (const [id, us] of selfUs) {
      const node = byId.get(id)!;
      const name = node.callFrame.functionName || '(anonymous)';
      const ms = us / 1000;
      sampledMs += ms;
      if (IDLE_FRAMES.has(name)) continue;
      busyMsByThread[thread] = (busyMsByThread[thread] ?? 0) + ms;
      const loc = readableUrl(node.callFrame.url);
      const location = loc ? `${loc}:${node.callFrame.lineNumber + 1}` : '';
      const key = `${name}@${location}`;
      let e = fnMs.get(key);
      if (!e) fnMs.set(key, (e = { function: name, location, ms: 0, threads: new Set() }));
      e.ms += ms;
      e.threads.add(thread);
      let pt = perThread.get(thread);
      if (!pt) perThread.set(thread, (pt = new Map()));
      let te = pt.get(key);
      if (!te) pt.set(key, (te = { function: name, location, ms: 0 }));
      te.ms += ms;
      const fileKey = loc || name;
      fileMs.set(fileKey, (fileMs.get(fileKey) ?? 0) + ms);
    }
  }
  const busyMs = Object.values(busyMsByThread).reduce((a, b) => a + b, 0);
  const pct = (ms: number) => (busyMs > 0 ? (100 * ms) / busyMs : 0);
  const top = [...fnMs.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, topN)
    .map((e) => ({ function: e.function, location: e.location, selfMs: e.ms, selfPercent: pct(e.ms), threads: [...e.threads].sort() }));
  const byFile = [...fileMs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([file, ms]) => ({ file, selfMs: ms, selfPercent: pct(ms) }));
  const topByThread: Record<string, HotFunction[]> = {};
  for (const [thread, m] of perThread) {
    const busy = busyMsByThread[thread] ?? 0;
    topByThread[thread] = [...m.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, topN)
      .map((e) => ({ function: e.function, location: e.location, selfMs: e.ms, selfPercent: busy > 0 ? (100 * e.ms) / busy : 0, threads: [thread] }));
  }
  return { files: files.length, sampledMs, busyMsByThread, busyMs, top, topByThread, byFile };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 10);
  const s = summarizeProfiles(args.filter((a) => !a.startsWith('--')), top);
  console.log(JSON.stringify(s, null, 2));
}
