// A memory cgroup for one collector run: the limit a deployment gives the collector (the Helm
// chart's resources.limits.memory). Under a limit the kernel reclaims the collector's own page
// cache once file pages fill it, and a growing store file takes the pages just reclaimed; with
// no limit it takes pages from the machine's free memory. On a VM whose balloon device reports
// free memory to the host (as this bench's machine does), a page that has sat free costs a host
// fault on first touch: ~1.5 ns per byte written into a new file page here, against ~0.2 for one
// reused (docs/performance.md, phase AI). The run under the limit shows what a deployment pays.
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_DIR } from './harness.ts';

export interface MemoryGroup {
  /** Node arguments that make the process join the group first thing, before its threads or memory exist. */
  nodeArgs: string[];
  limitBytes: number;
  /** Removes the group; its members must have exited. */
  remove(): void;
}

const UNITS: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 };

/** A Kubernetes memory quantity ("1Gi", "512Mi", "1G", bytes) in bytes. */
export function quantityBytes(q: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(String(q).trim());
  if (!m) throw new Error(`not a memory quantity: ${JSON.stringify(q)}`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? '']!);
}

/** The memory limit of the chart's default values (resources.limits.memory). */
export function chartMemoryLimitBytes(): number {
  const values = parse(readFileSync(join(REPO_DIR, 'helm/tracehouse/values.yaml'), 'utf8')) as { resources?: { limits?: { memory?: string } } };
  const limit = values.resources?.limits?.memory;
  if (limit === undefined) throw new Error('helm/tracehouse/values.yaml sets no resources.limits.memory');
  return quantityBytes(limit);
}

/**
 * A new memory cgroup of limitBytes under this process's own (cgroup v1's memory hierarchy, or v2's
 * unified one), or why none can be made here (no memory controller, not allowed to write).
 */
export function memoryGroup(name: string, limitBytes: number): MemoryGroup | { skip: string } {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  const v1 = lines.map((l) => l.split(':')).find((f) => f[1]!.split(',').includes('memory'));
  const v2 = lines.find((l) => l.startsWith('0::'));
  const [dir, limitFile] = v1 ? [join('/sys/fs/cgroup/memory', v1[2]!, name), 'memory.limit_in_bytes'] : v2 ? [join('/sys/fs/cgroup', v2.slice(3), name), 'memory.max'] : [];
  if (!dir || !limitFile) return { skip: 'this process is in no memory cgroup' };
  try {
    mkdirSync(dir);
  } catch (err) {
    return { skip: `no memory cgroup could be made at ${dir}: ${(err as Error).message}` };
  }
  try {
    writeFileSync(join(dir, limitFile), String(limitBytes));
  } catch (err) {
    rmdirSync(dir);
    return { skip: `the memory cgroup ${dir} takes no limit: ${(err as Error).message}` };
  }
  const joinGroup = `import{writeFileSync}from"node:fs";writeFileSync(${JSON.stringify(join(dir, 'cgroup.procs'))},String(process.pid))`;
  return { nodeArgs: ['--import', `data:text/javascript,${encodeURIComponent(joinGroup)}`], limitBytes, remove: () => rmdirSync(dir) };
}
