// The memory store lives in the process that wrote it: `tracehouse export` or `copy` run beside a
// collector on the memory store (a demo container's TRACEHOUSE_STORAGE_BACKEND=memory) opens a new,
// empty one. As for a SQLite file that is not there, that is refused (exit 2), not an empty backup
// and exit 0; and a copy into the memory store would keep nothing once it ends.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const FIXTURE = new URL('../fixtures/collector-fileexporter-json.jsonl', import.meta.url).pathname;

describe('export and copy with the memory store', () => {
  it('refuses to export or copy from the memory store instead of writing an empty backup', () => {
    const dir = tempDir();
    const target = join(dir, 'target.yaml');
    writeFileSync(target, `storage:\n  backend: sqlite\n  sqlite:\n    path: ${join(dir, 'b.db')}\n`);
    for (const args of [['export', '--out', join(dir, 'backup.jsonl')], ['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json')]]) {
      // As a container sets it, in the environment, and as a flag.
      for (const how of [{ env: { TRACEHOUSE_STORAGE_BACKEND: 'memory' }, flags: [] }, { env: {}, flags: ['--storage.backend=memory'] }]) {
        const r = runCli([...args, ...how.flags, '--quiet'], { cwd: dir, env: how.env });
        expect(r.stderr, args.join(' ')).toContain(`${args[0]}: storage.backend = "memory"`);
        expect(r.status).toBe(2);
      }
    }
    expect(existsSync(join(dir, 'backup.jsonl'))).toBe(false);
    expect(existsSync(join(dir, 'cp.json'))).toBe(false);
  });

  it('refuses to import into the memory store instead of reporting rows imported into nothing', () => {
    // `docker exec` into a demo container (TRACEHOUSE_STORAGE_BACKEND=memory) runs the import in a
    // process of its own: its memory store is not the collector's and is gone when import ends.
    const dir = tempDir();
    for (const how of [{ env: { TRACEHOUSE_STORAGE_BACKEND: 'memory' }, flags: [] }, { env: {}, flags: ['--storage.backend=memory'] }]) {
      const r = runCli(['import', FIXTURE, ...how.flags, '--quiet', '--workers.threads=1'], { cwd: dir, env: how.env });
      expect(r.stderr).toContain('import: storage.backend = "memory"');
      expect(r.status).toBe(2);
    }
  });

  it('refuses to copy into the memory store', () => {
    const dir = tempDir();
    const a = join(dir, 'a.db');
    runCli(['import', FIXTURE, '--quiet', `--storage.sqlite.path=${a}`, '--workers.threads=1'], { cwd: dir });
    const target = join(dir, 'memory.yaml');
    writeFileSync(target, 'storage:\n  backend: memory\n');
    const r = runCli(['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json'), `--storage.sqlite.path=${a}`], { cwd: dir });
    expect(r.stderr).toContain(`copy: --to-config ${target} names the memory store`);
    expect(r.status).toBe(2);
    expect(existsSync(join(dir, 'cp.json'))).toBe(false);
  });
});
