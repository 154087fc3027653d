// Memory limiter, after the OpenTelemetry Collector's memory_limiter: sample the process's memory
// on an interval and, above a soft limit, make ingest refuse new data (UNAVAILABLE / 503 with a
// retry hint) so the exporters back off and buffer, instead of the kernel's OOM killer ending the
// process and everything it accepted. Requests only read a boolean; sampling never runs on them.
//
// Two measures, because either can end the process first:
// - RSS (every thread's heap, buffers, SQLite's cache…) against `softBytes`, what a container's
//   memory limit counts;
// - the main thread's V8 old generation against its limit (oldSpaceBytes), which aborts the
//   process ("JavaScript heap out of memory") whatever the container allows.
// Hysteresis: limited from the soft line, free again only below RESUME_FRACTION of it, so a
// process hovering at the line does not flip between accepting and refusing at each sample (RSS
// falls slowly after a collection, and a flood of retries arrives the moment it accepts again).
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { Outage, type Logger } from '../telemetry/logger.ts';

/** Share of the cgroup limit used as the soft limit by default (see defaultMemorySoftBytes). */
export const CGROUP_SOFT_FRACTION = 0.8;
/** Limited state ends below this share of the soft limit. */
export const RESUME_FRACTION = 0.9;
/** Share of the main thread's old generation at which its heap counts as over the limit. */
export const HEAP_SOFT_FRACTION = 0.9;
/** cgroup v1 writes "no limit" as a page-rounded 2^63 - 1; anything this large is no limit. */
const UNLIMITED_FROM = 2 ** 62;

export interface CgroupPaths {
  /** Where the cgroup filesystems are mounted. */
  root?: string;
  /** The /proc/self/cgroup file naming this process's cgroups. */
  selfCgroup?: string;
}

function readLimit(path: string): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch {
    return 0;
  }
  if (!/^\d+$/.test(text)) return 0; // "max" (v2 for none), or nothing readable
  const n = Number(text);
  return n > 0 && n < UNLIMITED_FROM ? n : 0;
}

/**
 * The memory limit of this process's cgroup in bytes (v2 memory.max, v1 memory.limit_in_bytes),
 * or 0 when there is none, it cannot be read, or it is no lower than the machine's memory.
 */
export function cgroupMemoryLimitBytes(paths: CgroupPaths = {}, machineBytes = totalmem()): number {
  const root = paths.root ?? '/sys/fs/cgroup';
  let v2Path = '';
  let v1Path = '';
  try {
    for (const line of readFileSync(paths.selfCgroup ?? '/proc/self/cgroup', 'utf8').split('\n')) {
      const [id, controllers, path] = line.split(':', 3);
      if (path === undefined) continue;
      if (id === '0' && controllers === '') v2Path = path;
      else if (controllers?.split(',').includes('memory')) v1Path = path;
    }
  } catch {
    // No /proc (not Linux): only the mount root is looked at.
  }
  // Inside a container the cgroup namespace makes the mount root the container's own cgroup; on
  // a host the process's cgroup is below it. Both are looked at (and the parents of the latter,
  // since a parent's limit binds too); the tightest wins.
  const candidates = [join(root, 'memory.max'), join(root, 'memory', 'memory.limit_in_bytes')];
  for (let p = v2Path; p !== '' && p !== '/'; p = p.slice(0, Math.max(0, p.lastIndexOf('/')))) candidates.push(join(root, p, 'memory.max'));
  for (let p = v1Path; p !== '' && p !== '/'; p = p.slice(0, Math.max(0, p.lastIndexOf('/')))) candidates.push(join(root, 'memory', p, 'memory.limit_in_bytes'));
  let limit = 0;
  for (const c of candidates) {
    const n = readLimit(c);
    if (n > 0 && (limit === 0 || n < limit)) limit = n;
  }
  return limit > 0 && limit < machineBytes ? limit : 0;
}

/**
 * The soft limit for `limits.memorySoftBytes`: as configured when ≥ 0 (0: off); for -1 (auto),
 * 80% of the cgroup limit, else no RSS limit (the heap is still checked). 80% leaves a fifth of the container for what can grow
 * between two samples and for memory the collector frees only lazily — the Collector's default
 * spike allowance is the same 20% of its limit.
 */
export function defaultMemorySoftBytes(configured: number, cgroupLimitBytes: number): number {
  if (configured >= 0) return configured;
  return cgroupLimitBytes > 0 ? Math.floor(cgroupLimitBytes * CGROUP_SOFT_FRACTION) : 0;
}

export interface MemorySample {
  rssBytes: number;
  heapUsedBytes: number;
  heapLimitBytes: number;
}

/** V8's young generation: what --max-old-space-size does not bound, and garbage there goes cheaply. */
const YOUNG_SPACES = new Set(['new_space', 'new_large_object_space']);

/**
 * The process's RSS and the main thread's V8 old generation, in use and its limit: what
 * --max-old-space-size bounds and what runs the process out of heap when full. The limit is
 * measured in a worker (oldSpaceOfThreads); V8's heap_size_limit, the default, counts the young
 * generation too (288 MiB under --max-old-space-size=96 on Node 24), whose share the old
 * generation never reached: the process died before the limiter refused anything.
 */
export function sampleMemory(oldSpaceBytes = getHeapStatistics().heap_size_limit, rssBytes?: number): MemorySample {
  let used = 0;
  for (const s of getHeapSpaceStatistics()) if (!YOUNG_SPACES.has(s.space_name)) used += s.space_used_size;
  return { rssBytes: rssBytes ?? process.memoryUsage.rss(), heapUsedBytes: used, heapLimitBytes: oldSpaceBytes };
}

export interface MemoryLimiterOptions {
  /** RSS soft limit in bytes; 0: no RSS check. */
  softBytes: number;
  /**
   * Whether the main thread's heap is checked too (limits.memorySoftBytes not 0): also with no RSS
   * limit (no cgroup), since the heap's limit ends the process whatever the machine has.
   */
  heapCheck?: boolean;
  checkIntervalMs: number;
  logger?: Logger;
  /** Called when the limited state changes (wire it to a gauge). */
  onChange?: (limited: boolean, sample: MemorySample) => void;
  /** The main thread's old generation (oldSpaceOfThreads), which its heap is measured against. */
  oldSpaceBytes?: number;
  /** Where samples come from (the process by default). */
  sample?: () => MemorySample;
}

/** Samples memory on an interval; `overLimit` tells ingest to refuse. Lifecycle: start()/shutdown(). */
export class MemoryLimiter {
  private readonly opts: MemoryLimiterOptions;
  private readonly sample: () => MemorySample;
  private limited = false;
  /** The last sample found the heap over its line and RSS under its own (or none). */
  private heapOnly = false;
  private timer: NodeJS.Timeout | undefined;
  private last: MemorySample | undefined;
  /** Samples failed in a row: the first is logged, and the count once one succeeds. */
  private readonly sampleFailures = new Outage();

  constructor(opts: MemoryLimiterOptions) {
    this.opts = opts;
    this.sample = opts.sample ?? (() => sampleMemory(opts.oldSpaceBytes));
  }

  /** True while memory is over the soft limit: refuse new data as retryable. */
  get overLimit(): boolean {
    return this.limited;
  }

  /** Why overLimit, for readiness: RSS over softBytes, or the main thread's heap alone (with no RSS limit, softBytes says 0). */
  get overWhat(): string | undefined {
    if (!this.limited) return undefined;
    return this.heapOnly ? "the main thread's V8 heap near its limit (--max-old-space-size)" : 'memory over limits.memorySoftBytes';
  }

  /** How long a refused client should wait: two samples, at least a second. */
  get retryAfterMs(): number {
    return Math.max(1_000, 2 * this.opts.checkIntervalMs);
  }

  /** The latest sample, if any. */
  get lastSample(): MemorySample | undefined {
    return this.last;
  }

  /** Takes a sample now and updates the limited state. */
  check(): boolean {
    let s: MemorySample;
    try {
      s = this.sample();
    } catch (err) {
      // Node reads RSS from /proc, which needs a file descriptor: at the open-files limit
      // (EMFILE) the sample throws, and thrown from the timer it ended the process. RSS stays
      // as the last sample read it until one succeeds again.
      if (this.sampleFailures.failed()) this.opts.logger?.warn({ err: String(err), limited: this.limited }, 'memory could not be sampled; keeping the last RSS until a sample succeeds (the heap is still checked)');
      // The heap is read without a descriptor, and its limit ends the process whatever the
      // descriptors (a collector at the open-files limit is one under load): still checked,
      // beside the last RSS.
      if (this.opts.sample !== undefined) return this.limited;
      s = sampleMemory(this.opts.oldSpaceBytes, this.last?.rssBytes ?? 0);
      return this.judge(s);
    }
    const failedSamples = this.sampleFailures.ended();
    if (failedSamples > 0) this.opts.logger?.info({ failedSamples }, 'memory sampled again');
    return this.judge(s);
  }

  /** Updates the limited state from a sample. */
  private judge(s: MemorySample): boolean {
    this.last = s;
    const soft = this.opts.softBytes;
    const heapLine = s.heapLimitBytes * HEAP_SOFT_FRACTION;
    const share = this.limited ? RESUME_FRACTION : 1;
    const rssOver = soft > 0 && s.rssBytes >= soft * share;
    const over = rssOver || (this.checksHeap && s.heapUsedBytes >= heapLine * share);
    this.heapOnly = over && !rssOver;
    if (over !== this.limited) {
      this.limited = over;
      const fields = { over: over ? (rssOver ? 'rss' : 'heap') : undefined, rssBytes: s.rssBytes, softBytes: soft, heapUsedBytes: s.heapUsedBytes, heapLimitBytes: s.heapLimitBytes };
      if (over) this.opts.logger?.warn(fields, 'memory over the soft limit: refusing new data until it falls below');
      else this.opts.logger?.info(fields, 'memory back under the soft limit: accepting data again');
      this.opts.onChange?.(over, s);
    }
    return this.limited;
  }

  /** The heap is checked: by default whenever RSS is (softBytes), and with heapCheck without it. */
  private get checksHeap(): boolean {
    return this.opts.heapCheck ?? this.opts.softBytes > 0;
  }

  /** Samples once, then every checkIntervalMs; does nothing when there is nothing to check. Idempotent. */
  start(): void {
    if (this.timer || (this.opts.softBytes <= 0 && !this.checksHeap)) return;
    this.check();
    this.timer = setInterval(() => this.check(), this.opts.checkIntervalMs);
    this.timer.unref();
  }

  /** Stops sampling and accepts again; idempotent and safe before start. */
  shutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.limited = false;
  }
}
