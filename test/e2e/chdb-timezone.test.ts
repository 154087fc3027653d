// The embedded ClickHouse engine (chdb://) takes its time zone from the process's TZ, and refuses
// to open at all on a TZ it cannot load that the C library and Node take: a POSIX rule string
// (`<+0530>-5:30`, what some images and cron environments set), a zone newer than its tzdata.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const FIXTURE = new URL('../fixtures/collector-fileexporter-json.jsonl', import.meta.url).pathname;

it('imports into and exports from a chdb:// directory under a TZ the engine cannot load (a POSIX rule)', () => {
  const dir = tempDir();
  const store = ['--storage.backend=clickhouse', `--storage.clickhouse.urls=chdb://${join(dir, 'chdb')}`];
  const env = { TZ: '<+0530>-5:30' };
  const imp = runCli(['import', FIXTURE, ...store, '--workers.threads=1'], { env });
  expect(imp.stderr).toMatch(/import: 2 spans, 2 log records/);
  const exp = runCli(['export', '--out', '-', ...store, '--quiet'], { env });
  expect(exp.status, exp.stderr).toBe(0);
  expect(exp.stdout.trim().split('\n')).toHaveLength(2);
}, 120_000);
