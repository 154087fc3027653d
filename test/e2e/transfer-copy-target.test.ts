// copy's checkpoint is of one copy: from one store into one other. Run again into another target
// (a staging database first, then production) from the same directory, the default checkpoint
// file is there: resuming at its cursors would copy only rows written since into the new target.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, sqliteCount as count } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const FIXTURE = new URL('../fixtures/collector-fileexporter-json.jsonl', import.meta.url).pathname;

function targetConfig(dir: string, name: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `storage:\n  backend: sqlite\n  sqlite:\n    path: ${join(dir, `${name}.db`)}\nworkers:\n  threads: 1\n`);
  return file;
}

describe('tracehouse copy into a second target', () => {
  it('does not resume at the checkpoint of a copy into another store', () => {
    const dir = tempDir();
    const a = join(dir, 'a.db');
    runCli(['import', FIXTURE, '--quiet', `--storage.sqlite.path=${a}`, '--workers.threads=1'], { cwd: dir });
    expect(count(a, 'spans')).toBe(2);

    const staging = runCli(['copy', '--to-config', targetConfig(dir, 'staging'), `--storage.sqlite.path=${a}`], { cwd: dir });
    expect(staging.status).toBe(0);
    expect(count(join(dir, 'staging.db'), 'spans')).toBe(2);

    // Same source, same filters, the default checkpoint file: another target.
    const production = runCli(['copy', '--to-config', targetConfig(dir, 'production'), `--storage.sqlite.path=${a}`], { cwd: dir });
    // Refused, as the checkpoint of other filters is, rather than "copy: 0 spans, 0 log records" and exit 0.
    expect(production.stderr).toContain('belongs to a copy into another target store');
    expect(production.status).toBe(1);

    // With a checkpoint of its own it copies everything; the staging copy still resumes at its own.
    const own = runCli(['copy', '--to-config', targetConfig(dir, 'production'), '--checkpoint', join(dir, 'production.checkpoint.json'), `--storage.sqlite.path=${a}`], { cwd: dir });
    expect(own.stderr).toMatch(/copy: 2 spans, 2 log records/);
    expect(own.status).toBe(0);
    expect(count(join(dir, 'production.db'), 'spans')).toBe(2);
    expect(count(join(dir, 'production.db'), 'logs')).toBe(2);
    const again = runCli(['copy', '--to-config', targetConfig(dir, 'staging'), `--storage.sqlite.path=${a}`], { cwd: dir });
    expect(again.stderr).toMatch(/copy: 0 spans, 0 log records/);
    expect(again.status).toBe(0);
  });

  it('resumes at a checkpoint written before the target was kept in it', () => {
    const dir = tempDir();
    const a = join(dir, 'a.db');
    runCli(['import', FIXTURE, '--quiet', `--storage.sqlite.path=${a}`, '--workers.threads=1'], { cwd: dir });
    const target = targetConfig(dir, 'target');
    expect(runCli(['copy', '--to-config', target, `--storage.sqlite.path=${a}`], { cwd: dir }).status).toBe(0);
    const file = join(dir, 'tracehouse-copy.checkpoint.json');
    const cp = JSON.parse(readFileSync(file, 'utf8'));
    expect(cp.filters.target).toMatch(/^sqlite:[0-9a-f]{16}$/);
    delete cp.filters.target;
    writeFileSync(file, JSON.stringify(cp));
    const again = runCli(['copy', '--to-config', target, `--storage.sqlite.path=${a}`], { cwd: dir });
    expect(again.stderr).toMatch(/copy: 0 spans, 0 log records/);
    expect(again.status).toBe(0);
  });
});
