// The bench's memory cgroup (bench/cgroup.ts): the chart's memory limit read as bytes, and a
// process started with the group's node arguments running inside a group of that limit, from its
// first moment; the group removed after it exits. Where this process may not make cgroups (not
// root, no memory controller) that test is skipped, and the bench reports its run as not run.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chartMemoryLimitBytes, memoryGroup, quantityBytes } from '../../bench/cgroup.ts';

describe('bench memory cgroup', () => {
  it('reads Kubernetes memory quantities as bytes and refuses anything else', () => {
    expect(quantityBytes('1Gi')).toBe(2 ** 30);
    expect(quantityBytes('512Mi')).toBe(512 * 2 ** 20);
    expect(quantityBytes('1.5Gi')).toBe(1.5 * 2 ** 30);
    expect(quantityBytes('64Ki')).toBe(65536);
    expect(quantityBytes('2G')).toBe(2e9);
    expect(quantityBytes(1048576)).toBe(1048576);
    expect(() => quantityBytes('1 GiB')).toThrow(/not a memory quantity: "1 GiB"/);
    expect(() => quantityBytes('lots')).toThrow(/not a memory quantity/);
  });

  it("takes its limit from the chart's default values", () => {
    expect(chartMemoryLimitBytes()).toBe(2 ** 30);
  });

  it('runs a process inside a group of the limit from its start, and removes the group after', (ctx) => {
    const group = memoryGroup(`tracehouse-test-${process.pid}`, 256 * 2 ** 20);
    if ('skip' in group) return ctx.skip();
    let dir = '';
    try {
      const probe = `const fs = require('node:fs');
        const line = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\\n').find((l) => l.split(':')[1].split(',').includes('memory') || l.startsWith('0::'));
        const rel = line.split(':')[2];
        const dir = (line.startsWith('0::') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory') + rel;
        const limit = fs.readFileSync(dir + (line.startsWith('0::') ? '/memory.max' : '/memory.limit_in_bytes'), 'utf8').trim();
        console.log(JSON.stringify({ dir, limit }));`;
      const out = spawnSync(process.execPath, [...group.nodeArgs, '-e', probe], { encoding: 'utf8' });
      expect(out.stderr).toBe('');
      const seen = JSON.parse(out.stdout) as { dir: string; limit: string };
      dir = seen.dir;
      expect(dir.endsWith(`/tracehouse-test-${process.pid}`)).toBe(true);
      expect(Number(seen.limit)).toBe(256 * 2 ** 20);
      // This process stays where it was.
      expect(readFileSync('/proc/self/cgroup', 'utf8')).not.toContain(`tracehouse-test-${process.pid}`);
    } finally {
      group.remove();
    }
    expect(existsSync(dir)).toBe(false);
  });
});
