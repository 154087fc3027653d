// Real tiny filesystems (tmpfs) for disk-full tests. Mounting needs root, which CI runs as;
// elsewhere the tests that need one are skipped and say why (mountProbe).
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './tmp.ts';

const mounts: string[] = [];

/** A fresh tmpfs of this size, or the reason there cannot be one. */
export function tinyFs(size: string): string | Error {
  const dir = tempDir('fault-fs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    return err as Error;
  }
  mounts.push(dir);
  return dir;
}

/** Unmounts every tmpfs tinyFs made (call after each test). */
export function unmountTinyFs(): void {
  for (const m of mounts.splice(0)) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'pipe' });
    } catch {
      // Already gone.
    }
  }
}

/** Whether tmpfs can be mounted here; its reason when not, for the skipped tests' title. */
export function mountProbe(): { canMount: boolean; why: string } {
  const probe = tinyFs('64k');
  unmountTinyFs();
  return typeof probe === 'string' ? { canMount: true, why: '' } : { canMount: false, why: probe.message.split('\n')[0]! };
}

/** Fills a filesystem to its last byte, appending to a ballast file in dir; returns its path. */
export function fill(dir: string): string {
  const path = join(dir, 'ballast');
  for (const size of [64 << 10, 4096, 512, 64, 1]) {
    const chunk = Buffer.alloc(size, 1);
    for (;;) {
      try {
        appendFileSync(path, chunk);
      } catch {
        break;
      }
    }
  }
  return path;
}
