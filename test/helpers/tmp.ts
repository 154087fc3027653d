import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The directories this test file made; test/helpers/cleanup.ts removes them after its last test. */
const made: string[] = [];

/** A fresh temporary directory, removed after the test file. */
export function tempDir(prefix = 'tracehouse-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Removes the directories tempDir made (a collector still writing into one has been stopped by then: file hooks run first). */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}
