// export, import and copy against a PostgreSQL or ClickHouse server that does not answer: the error
// names the setting to correct (and, for copy, which of its two stores), as start-up's does, and
// they wait storage.startWaitMs for a server starting beside them as start-up and migrate do.
// Before, each failed at once with "tracehouse copy: connect ECONNREFUSED 127.0.0.1:PORT": the
// source or the target, and which key, left to guess.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { freePort } from '../helpers/os.ts';
import { tempDir } from '../helpers/tmp.ts';

const FIXTURE = new URL('../fixtures/collector-fileexporter-json.jsonl', import.meta.url).pathname;

describe('transfer commands and a store that does not answer', () => {
  it('copy names the target file and its key; export and import name the key', async () => {
    const dir = tempDir();
    const a = join(dir, 'a.db');
    runCli(['import', FIXTURE, '--quiet', `--storage.sqlite.path=${a}`, '--workers.threads=1'], { cwd: dir });
    const port = await freePort();
    const pgUrl = `postgres://tracehouse:secret@127.0.0.1:${port}/tracehouse`;
    const target = join(dir, 'pg.yaml');
    writeFileSync(target, `storage:\n  backend: postgres\n  startWaitMs: 0\n  postgres:\n    url: ${pgUrl}\nworkers:\n  threads: 1\n`);

    const copy = runCli(['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json'), `--storage.sqlite.path=${a}`], { cwd: dir });
    expect(copy.status).toBe(1);
    expect(copy.stderr).toContain(`tracehouse copy: the target (--to-config ${target}): storage.postgres.url = "postgres://tracehouse:***@127.0.0.1:${port}/tracehouse": not reachable (storage.startWaitMs = 0: no wait): connect ECONNREFUSED`);
    expect(copy.stderr).not.toContain('secret');

    const chUrl = `http://127.0.0.1:${port}`;
    const exp = runCli(['export', '--out', join(dir, 'out.jsonl'), '--storage.backend=clickhouse', `--storage.clickhouse.urls=${chUrl}`, '--storage.startWaitMs=0'], { cwd: dir });
    expect(exp.status).toBe(1);
    expect(exp.stderr).toContain(`tracehouse export: storage.clickhouse.urls = "${chUrl}": not reachable (storage.startWaitMs = 0: no wait)`);

    const imp = runCli(['import', FIXTURE, '--storage.backend=postgres', `--storage.postgres.url=${pgUrl}`, '--storage.startWaitMs=0', '--workers.threads=1'], { cwd: dir });
    expect(imp.status).toBe(1);
    expect(imp.stderr).toContain(`tracehouse import: storage.postgres.url = "postgres://tracehouse:***@127.0.0.1:${port}/tracehouse": not reachable (storage.startWaitMs = 0: no wait)`);
  });

  it('copy names the target file when the target store\'s own settings are refused', async () => {
    // The store's checks (a URL pg cannot read, an SQLite path no thread can share) said the key
    // and value alone: the operator looked for them in the source's configuration.
    const dir = tempDir();
    const a = join(dir, 'a.db');
    runCli(['import', FIXTURE, '--quiet', `--storage.sqlite.path=${a}`, '--workers.threads=1'], { cwd: dir });
    const target = join(dir, 'pg.yaml');
    writeFileSync(target, `storage:\n  backend: postgres\n  postgres:\n    url: postgres://tracehouse:secret@127.0.0.1:99999/tracehouse\n`);
    const copy = runCli(['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json'), `--storage.sqlite.path=${a}`], { cwd: dir });
    expect(copy.status).toBe(2);
    expect(copy.stderr).toContain(`tracehouse: invalid configuration: the target (--to-config ${target}): storage.postgres.url = "postgres://tracehouse:***@127.0.0.1:99999/tracehouse": Invalid URL`);
    expect(copy.stderr).not.toContain('secret');
  });

  it('copy names the source when it is the store that does not answer', async () => {
    const dir = tempDir();
    const port = await freePort();
    const target = join(dir, 'b.yaml');
    writeFileSync(target, `storage:\n  backend: sqlite\n  sqlite:\n    path: ${join(dir, 'b.db')}\n`);
    const copy = runCli(['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json'), '--storage.backend=postgres', `--storage.postgres.url=postgres://127.0.0.1:${port}/x`, '--storage.startWaitMs=0'], { cwd: dir });
    expect(copy.status).toBe(1);
    expect(copy.stderr).toContain(`tracehouse copy: the source: storage.postgres.url = "postgres://127.0.0.1:${port}/x": not reachable (storage.startWaitMs = 0: no wait)`);
  });
});
