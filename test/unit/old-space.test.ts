// The V8 old generation a thread of this process has (oldSpaceOfThreads), which the memory
// limiter's line, the read API's answer bounds and a transfer's pages follow. Too high a figure
// leaves the limiter a line the heap never reaches; too low refuses every export long before the
// heap is full: under --max-heap-size=300 it came out at 108 MiB (300 less V8's default young
// generation here, where V8 gives that heap 16 MiB semi-spaces).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const POOL = new URL('../../src/pipeline/pool.ts', import.meta.url).href;
const MiB = 2 ** 20;

/** What a process started with these flags measures, in MiB. */
function measured(flags: string[]): number {
  const r = spawnSync(process.execPath, [...flags, '-e', `import(${JSON.stringify(POOL)}).then(async (m) => console.log(await m.oldSpaceOfThreads()))`], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  expect(r.stderr).toBe('');
  return Number(r.stdout.trim()) / MiB;
}

describe('the old generation of this process', () => {
  it('is --max-old-space-size when given, whatever the young generation', () => {
    expect(measured(['--max-old-space-size=96'])).toBe(96);
    expect(measured(['--max-old-space-size=96', '--max-semi-space-size=16'])).toBe(96);
  });

  it('is never far under the heap V8 was given (--max-heap-size splits by rules of its own)', () => {
    expect(measured(['--max-heap-size=300'])).toBeGreaterThanOrEqual(250);
    expect(measured(['--max-heap-size=128'])).toBeGreaterThanOrEqual(96);
  });
});
