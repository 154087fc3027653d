import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary directory. */
export function tempDir(prefix = 'tracehouse-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
