// bench/transfer.ts runs each phase (export, import and their baselines) in a child process "so
// its peak RSS is its own". ru_maxrss (process.resourceUsage().maxRSS) keeps over exec the peak of
// the process the child was forked from: the phases reported the RSS of bench/transfer.ts's own
// process, which had just filled the source store (the read baseline, a file read line by line,
// showed 238 MiB). A phase's peak must be its own.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';

const MiB = 2 ** 20;

describe('bench transfer phases', () => {
  const dir = tempDir('tracehouse-bench-transfer-peak-');
  it("report the phase's own peak RSS, not the peak of the process that started it", { timeout: 30_000 }, () => {
    const file = join(dir, 'lines.jsonl');
    writeFileSync(file, '{"a":1}\n'.repeat(10_000));
    // The starting process holds 800 MiB of touched memory; reading a small file line by line needs far less.
    const held = Buffer.alloc(800 * MiB, 1);
    const r = spawnSync(process.execPath, ['bench/transfer.ts', 'read-baseline', file], { encoding: 'utf8' });
    held.fill(2);
    expect(r.status, r.stderr).toBe(0);
    const phase = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bytes: number; maxRssMiB: number };
    expect(phase.bytes).toBe(80_000);
    expect(phase.maxRssMiB).toBeLessThan(300);
  });
});
