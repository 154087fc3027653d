// The memory-store target's peak RSS (bench/memory-store.ts, run by bench/run.ts in a child process
// of the bench) must be the child's own. The kernel's ru_maxrss (process.resourceUsage().maxRSS)
// carries over an exec the peak of the process it was forked from: a child forked by a bench
// process of 800 MiB reported a peak of 800 MiB, whatever it used itself, and the target's verdict
// was the bench process's.
import { describe, expect, it } from 'vitest';
import { defaultContext } from '../../bench/context.ts';
import type { MemoryStoreFigures } from '../../bench/memory-store.ts';
import { runOne } from '../../bench/storage.ts';

const MiB = 2 ** 20;

describe('bench memory store kept full', () => {
  it("reports the child's own peak RSS, not the peak of the process that forked it", { timeout: 30_000 }, async () => {
    // The forking process holds 800 MiB of touched memory, far more than the child's store needs.
    const held = Buffer.alloc(800 * MiB, 1);
    expect(process.memoryUsage().rss).toBeGreaterThan(800 * MiB);
    const r = await runOne(defaultContext(true), 'Memory store kept full', 'bench/memory-store.ts', { maxMiB: 16, spans: 30_000 }, 25_000, ['--expose-gc']);
    held.fill(2);
    const f = r.figures as MemoryStoreFigures | undefined;
    expect(f, r.note).toBeDefined();
    // A 16 MiB store: the child's RSS at rest plus the store and its garbage, a few hundred MiB at most.
    expect(f!.peakRssBytes).toBeGreaterThanOrEqual(f!.rssAfterBytes);
    expect(f!.peakRssBytes).toBeLessThan(f!.rssAtRestBytes + 200 * MiB);
  });
});
