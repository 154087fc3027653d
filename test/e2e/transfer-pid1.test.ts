// The transfer commands as a container's PID 1 (`docker run … tracehouse import`, a restore Job):
// there the kernel takes no default action for a signal the process does not listen for, so a
// Ctrl-C or a `docker stop` reaches the command only through a listener of its own. Run in a PID
// namespace of their own (unshare), as a container runs them; skipped where none can be made.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/tracehouse.js', import.meta.url).pathname;
const FIXTURE = new URL('../fixtures/collector-fileexporter-json.jsonl', import.meta.url).pathname;
// --kill-child: the command goes with unshare when a test ends it.
const UNSHARE = ['--user', '--map-root-user', '--pid', '--fork', '--kill-child'];
const canUnshare = spawnSync('unshare', [...UNSHARE, 'true']).status === 0;

/** Runs `tracehouse ARGS` as PID 1 of a new PID namespace; `pid` is its PID out here, once it runs. */
function asPid1(args: string[]) {
  const child = spawn('unshare', [...UNSHARE, process.execPath, BIN, ...args], { env: { ...process.env, TRACEHOUSE_CONFIG: '' }, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const pid = async (): Promise<number> => {
    for (const t0 = Date.now(); Date.now() - t0 < 20_000; await new Promise((r) => setTimeout(r, 10))) {
      const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
      if (kids !== '') return Number(kids.split(' ')[0]);
    }
    throw new Error('no PID 1 under unshare');
  };
  return { child, exited, pid, stderr: () => stderr };
}

/** Resolves with the exit code, or 'still running' after ms. */
function within(exited: Promise<number | null>, ms: number): Promise<number | null | 'still running'> {
  return Promise.race([exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), ms))]);
}

describe.skipIf(!canUnshare)('transfer commands as PID 1 (a container)', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('import ends at %s as it does outside a container (docker stop: SIGTERM; Ctrl-C under docker run -it: SIGINT)', async (signal, code) => {
    const db = join(tempDir(), 'a.db');
    // From a pipe that stays open: an import that would wait for more for ever.
    const run = asPid1(['import', '-', '--quiet', `--storage.sqlite.path=${db}`, '--workers.threads=1']);
    try {
      run.child.stdin!.write(readFileSync(FIXTURE, 'utf8').split('\n')[0] + '\n');
      const pid = await run.pid();
      // Started: the store is open and the first line read.
      for (const t0 = Date.now(); !existsSync(db) && Date.now() - t0 < 20_000; ) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 500));
      process.kill(pid, signal);
      expect(await within(run.exited, 5000), run.stderr()).toBe(code);
    } finally {
      run.child.kill('SIGKILL');
    }
  }, 60_000);

  it('export into a file still removes its partial file at Ctrl-C', async () => {
    const dir = tempDir();
    const db = join(dir, 'a.db');
    // 60,000 log records: an export that takes a moment.
    const rec = (i: number) => ({ timeUnixNano: String(1544712660000000000n + BigInt(i)), body: { stringValue: `record ${i} ` + 'y'.repeat(200) } });
    const lines = Array.from({ length: 60 }, (_, l) => JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: Array.from({ length: 1000 }, (_, i) => rec(l * 1000 + i)) }] }] }));
    const src = join(dir, 'bulk.jsonl');
    writeFileSync(src, lines.join('\n') + '\n');
    expect(runCli(['import', src, '--quiet', `--storage.sqlite.path=${db}`, '--workers.threads=1']).status).toBe(0);
    const out = join(dir, 'backup.jsonl.zst');
    const run = asPid1(['export', '--out', out, '--quiet', `--storage.sqlite.path=${db}`]);
    try {
      const pid = await run.pid();
      for (const t0 = Date.now(); !readdirSync(dir).some((f) => f.includes('.partial-')) && Date.now() - t0 < 20_000; ) await new Promise((r) => setTimeout(r, 5));
      process.kill(pid, 'SIGINT');
      expect(await within(run.exited, 5000), run.stderr()).toBe(130);
      expect(readdirSync(dir).filter((f) => f.includes('backup'))).toEqual([]);
    } finally {
      run.child.kill('SIGKILL');
    }
  }, 60_000);
});
