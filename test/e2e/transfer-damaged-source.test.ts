// export and copy from a SQLite file with a stored item that no longer decodes (bit rot, a hand
// edit: SQLite keeps no page checksums). The store's reads leave such an item out and return the
// rest; a backup or a copy made of those reads is missing it, and a script that runs the backup
// must hear so from the exit code, as it does from import's when anything was not imported.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { runCli, sqliteCount as count } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const FIXTURE = new URL('../fixtures/collector-fileexporter-json.jsonl', import.meta.url).pathname;

/** A SQLite store of the fixture's 2 spans and 2 log records, one log record's bytes then made noise. */
function damagedStore(dir: string): string {
  const db = join(dir, 'a.db');
  runCli(['import', FIXTURE, '--quiet', `--storage.sqlite.path=${db}`, '--workers.threads=1']);
  const d = new DatabaseSync(db);
  try {
    d.prepare("UPDATE logs SET doc = x'ffff' WHERE rowid = (SELECT min(rowid) FROM logs)").run();
  } finally {
    d.close();
  }
  return db;
}

describe('export and copy from a store with an unreadable item', () => {
  it('export writes what reads and exits 1, naming what was left out', () => {
    const dir = tempDir();
    const db = damagedStore(dir);
    const out = join(dir, 'backup.jsonl');
    const r = runCli(['export', '--out', out, '--quiet', `--storage.sqlite.path=${db}`]);
    expect(r.stderr).toMatch(/1 stored log records could not be read/);
    expect(r.status).toBe(1);
    // The rest is in the backup, which a restore can still use.
    const back = runCli(['import', out, '--quiet', `--storage.sqlite.path=${join(dir, 'b.db')}`, '--workers.threads=1']);
    expect(back.status).toBe(0);
    expect(count(join(dir, 'b.db'), 'spans')).toBe(2);
    expect(count(join(dir, 'b.db'), 'logs')).toBe(1);
  });

  it('copy copies what reads and exits 1, naming what was left out', () => {
    const dir = tempDir();
    const db = damagedStore(dir);
    const other = join(dir, 'other.yaml');
    writeFileSync(other, `storage:\n  backend: sqlite\n  sqlite:\n    path: ${join(dir, 'copy.db')}\nworkers:\n  threads: 1\n`);
    const r = runCli(['copy', '--to-config', other, '--checkpoint', join(dir, 'cp.json'), '--quiet', `--storage.sqlite.path=${db}`]);
    expect(r.stderr).toMatch(/1 stored log records could not be read/);
    expect(r.status).toBe(1);
    expect(count(join(dir, 'copy.db'), 'spans')).toBe(2);
    expect(count(join(dir, 'copy.db'), 'logs')).toBe(1);
  });
});
