// The memory limiter: cgroup limits read from cgroup-like files in a temporary directory, the
// default soft limit, and the limited state on the process's real RSS and on given samples.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { MemoryLimiter, cgroupMemoryLimitBytes, defaultMemorySoftBytes, sampleMemory, type MemorySample } from '../../src/pipeline/memory-limiter.ts';
import { tempDir } from '../helpers/tmp.ts';

const GiB = 1024 ** 3;
const MACHINE = 64 * GiB;

function tree(files: Record<string, string>): string {
  const root = tempDir('cgroup-');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function limitOf(files: Record<string, string>, selfCgroup = ''): number {
  const root = tree({ ...files, 'proc-self-cgroup': selfCgroup });
  return cgroupMemoryLimitBytes({ root: join(root, 'fs'), selfCgroup: join(root, 'proc-self-cgroup') }, MACHINE);
}

describe('cgroup memory limit', () => {
  it('reads cgroup v2 memory.max at the namespace root', () => {
    expect(limitOf({ 'fs/memory.max': '536870912\n' }, '0::/\n')).toBe(536_870_912);
  });

  it('reads v2 "max" as no limit', () => {
    expect(limitOf({ 'fs/memory.max': 'max\n' }, '0::/\n')).toBe(0);
  });

  it("follows /proc/self/cgroup to the process's v2 cgroup and takes the tightest of it and its parents", () => {
    const self = '0::/kubepods/burstable/pod1/ctr\n';
    expect(limitOf({ 'fs/kubepods/burstable/pod1/ctr/memory.max': 'max\n', 'fs/kubepods/burstable/pod1/memory.max': String(2 * GiB) }, self)).toBe(2 * GiB);
    expect(limitOf({ 'fs/kubepods/burstable/pod1/ctr/memory.max': String(GiB), 'fs/kubepods/memory.max': String(8 * GiB) }, self)).toBe(GiB);
  });

  it('reads cgroup v1 memory.limit_in_bytes, treating the page-rounded 2^63 as no limit', () => {
    expect(limitOf({ 'fs/memory/memory.limit_in_bytes': '1073741824\n' }, '4:memory:/\n')).toBe(GiB);
    expect(limitOf({ 'fs/memory/memory.limit_in_bytes': '9223372036854771712\n' }, '4:memory:/\n')).toBe(0);
    expect(limitOf({ 'fs/memory/docker/abc/memory.limit_in_bytes': '805306368' }, '9:cpu:/\n4:memory:/docker/abc\n')).toBe(805_306_368);
  });

  it('reports no limit when nothing is readable, the text is not a number, or the limit is no lower than the machine', () => {
    expect(limitOf({}, '')).toBe(0);
    expect(limitOf({ 'fs/memory.max': 'lots' }, '0::/')).toBe(0);
    expect(limitOf({ 'fs/memory.max': String(MACHINE) }, '0::/')).toBe(0);
    expect(cgroupMemoryLimitBytes({ root: '/nonexistent/cgroup', selfCgroup: '/nonexistent/self' })).toBe(0);
  });
});

describe('limits.memorySoftBytes', () => {
  it('defaults to -1 (auto): 80% of a cgroup limit, else off; explicit values win', () => {
    expect(loadConfig({})['limits.memorySoftBytes']).toBe(-1);
    expect(defaultMemorySoftBytes(-1, 1000 * 1024 * 1024)).toBe(800 * 1024 * 1024);
    expect(defaultMemorySoftBytes(-1, 0)).toBe(0);
    expect(defaultMemorySoftBytes(0, GiB)).toBe(0);
    expect(defaultMemorySoftBytes(123_456, GiB)).toBe(123_456);
    expect(loadConfig({ flags: { 'limits.memorySoftBytes': '512MiB' } })['limits.memorySoftBytes']).toBe(512 * 1024 * 1024);
  });

  it('stops start-up naming the key and the value when it is below -1', () => {
    expect(() => loadConfig({ flags: { 'limits.memorySoftBytes': '-5' } })).toThrow(/limits\.memorySoftBytes.*-5|-5.*limits\.memorySoftBytes/s);
  });
});

function scripted(rss: number[]): () => MemorySample {
  let i = 0;
  return () => ({ rssBytes: rss[Math.min(i++, rss.length - 1)]!, heapUsedBytes: 0, heapLimitBytes: 4 * GiB });
}

describe('memory limiter', () => {
  it("is over the limit when the process's real RSS passes the soft limit, and not below it", () => {
    const rss = sampleMemory().rssBytes;
    expect(rss).toBeGreaterThan(1024 * 1024);
    const low = new MemoryLimiter({ softBytes: Math.floor(rss / 2), checkIntervalMs: 1000 });
    low.start();
    expect(low.overLimit).toBe(true);
    expect(low.lastSample!.rssBytes).toBeGreaterThan(0);
    low.shutdown();
    expect(low.overLimit).toBe(false);
    const high = new MemoryLimiter({ softBytes: rss * 20, checkIntervalMs: 1000 });
    high.start();
    expect(high.overLimit).toBe(false);
    high.shutdown();
  });

  it('keeps refusing until RSS falls below 90% of the soft limit (hysteresis), and logs each change once', () => {
    const out: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c.toString()), cb()) }));
    const changes: boolean[] = [];
    const m = new MemoryLimiter({ softBytes: 1000, checkIntervalMs: 1000, logger, onChange: (l) => changes.push(l), sample: scripted([999, 1000, 1200, 950, 901, 899, 950, 999]) });
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(() => m.check())).toEqual([false, true, true, true, true, false, false, false]);
    expect(changes).toEqual([true, false]);
    const msgs = out.join('').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs).toHaveLength(2);
    expect(msgs[0]).toMatch(/refusing/);
    expect(msgs[1]).toMatch(/accepting/);
  });

  it("refuses when the main thread's heap nears V8's own limit, whatever the RSS", () => {
    const m = new MemoryLimiter({ softBytes: 10 * GiB, checkIntervalMs: 1000, sample: () => ({ rssBytes: GiB, heapUsedBytes: 0.95 * 2 * GiB, heapLimitBytes: 2 * GiB }) });
    expect(m.check()).toBe(true);
  });

  it('checks the heap with no RSS limit (no cgroup) unless turned off, and never refuses on RSS then', () => {
    const full = () => ({ rssBytes: 100 * GiB, heapUsedBytes: 0.95 * 2 * GiB, heapLimitBytes: 2 * GiB });
    const heapOnly = new MemoryLimiter({ softBytes: 0, heapCheck: true, checkIntervalMs: 1000, sample: full });
    expect(heapOnly.check()).toBe(true);
    // Readiness says which: limits.memorySoftBytes (0 here) did not set it off.
    expect(heapOnly.overWhat).toMatch(/heap/);
    const rss = new MemoryLimiter({ softBytes: GiB, checkIntervalMs: 1000, sample: full });
    expect(rss.check()).toBe(true);
    expect(rss.overWhat).toBe('memory over limits.memorySoftBytes');
    expect(new MemoryLimiter({ softBytes: 0, heapCheck: true, checkIntervalMs: 1000, sample: () => ({ ...full(), heapUsedBytes: GiB }) }).check()).toBe(false);
    expect(new MemoryLimiter({ softBytes: 0, heapCheck: false, checkIntervalMs: 1000, sample: full }).check()).toBe(false);
  });

  it('samples on its interval, stops at shutdown, and does nothing when off', async () => {
    let calls = 0;
    const counting = () => {
      calls++;
      return { rssBytes: 1, heapUsedBytes: 0, heapLimitBytes: GiB };
    };
    const m = new MemoryLimiter({ softBytes: 1000, checkIntervalMs: 20, sample: counting });
    m.shutdown(); // safe before start
    m.start();
    m.start();
    // Three samples at least: the one at start and two from the interval (however loaded the machine).
    const deadline = Date.now() + 5_000;
    while (calls < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    m.shutdown();
    m.shutdown();
    const seen = calls;
    expect(seen).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toBe(seen);
    expect(m.retryAfterMs).toBe(1000);

    calls = 0;
    const off = new MemoryLimiter({ softBytes: 0, checkIntervalMs: 20, sample: counting });
    off.start();
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toBe(0);
    expect(off.check()).toBe(false);
    off.shutdown();
  });
});

describe('memory limiter when RSS cannot be read (the open-files limit)', () => {
  it('still limits on the main thread heap, which needs no file descriptor', () => {
    // Node reads RSS from /proc: at the open-files limit it throws, as Node words it.
    const rss = vi.spyOn(process.memoryUsage, 'rss').mockImplementation(() => {
      throw Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), { code: 'EMFILE' });
    });
    try {
      // Meanwhile the heap reaches its line (here: a limit of 1 byte): the collector must refuse
      // before V8 ends it, descriptors or not.
      const tight = new MemoryLimiter({ softBytes: 0, heapCheck: true, checkIntervalMs: 1000, oldSpaceBytes: 1 });
      expect(tight.check()).toBe(true);
      expect(tight.overWhat).toMatch(/heap/);
    } finally {
      rss.mockRestore();
    }
  });

  it('logs the first failed sample of a run, and how many failed once one succeeds', () => {
    const out: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c.toString()), cb()) }));
    let calls = 0;
    const m = new MemoryLimiter({
      softBytes: 1000,
      checkIntervalMs: 1000,
      logger,
      sample: () => {
        if (++calls <= 3) throw new Error('EMFILE: too many open files, uv_resident_set_memory');
        return { rssBytes: 10, heapUsedBytes: 0, heapLimitBytes: 1 };
      },
    });
    for (let i = 0; i < 5; i++) m.check();
    const lines = out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; failedSamples?: number });
    expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/could not be sampled/), 'memory sampled again']);
    expect(lines[1]!.failedSamples).toBe(3);
  });
});
