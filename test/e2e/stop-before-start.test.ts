// A stop asked for while the collector is still loading: a pod deleted right after it was created,
// `docker stop` just after `docker run`. The signal handlers were installed only after every module
// was loaded and the collector built (~1 s, more on a busy node): a SIGTERM before then killed a
// process outright, and in a container, where the collector is PID 1 and a signal without a handler
// is ignored, it was lost: the collector started, served, and was killed at the grace period's end.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';

// The package's command (the container's entry point), which starts cli.ts hearing stops at once.
const BIN = new URL('../../bin/tracehouse.js', import.meta.url).pathname;

/** Until the kernel shows the process's SIGHUP handler (SigCgt): the early stop handler (see below). */
async function untilStopHeard(pid: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(Number.parseInt(/^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.slice(-8) ?? '0', 16) & 1)) {
    expect(Date.now(), 'a SIGHUP handler within 20 s').toBeLessThan(deadline);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Runs the bin with these arguments in cwd, its output gathered, and killed at the test's end if still running. */
function runBin(args: string[], cwd?: string) {
  const child = spawn(process.execPath, [BIN, ...args], { ...(cwd === undefined ? {} : { cwd }), stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, output: () => out };
}

it('a SIGTERM while the collector is still loading stops it with exit 0, before it listens or opens its store', async () => {
  const db = join(tempDir(), 'th.db');
  const { child, exited, output } = runBin(['start', '--receiver.grpc.enabled=false', '--receiver.http.listen=127.0.0.1:0', '--query.enabled=false', '--ops.listen=127.0.0.1:0', `--storage.sqlite.path=${db}`]);
  // The moment a stop handler is in place, as the kernel shows it (SigCgt): SIGHUP's bit, which
  // Node itself does not catch (it does SIGTERM's and SIGINT's from its start, to reset the
  // terminal before dying of them). Now that is early-stop.js, loaded ~0.1 s after the launcher
  // execs node again and long before the collector's modules are; before, it was cli.ts, once the
  // collector was built.
  await untilStopHeard(child.pid!);
  child.kill('SIGTERM');
  expect(await exited, output()).toEqual({ code: 0, signal: null });
  expect(output()).toContain('stopped before start-up');
  expect(output()).not.toContain('listening');
  expect(existsSync(db)).toBe(false);
}, 30_000);

// Ctrl-C on a command typed by mistake (an import of the wrong file, an export): while its modules
// load, the early handler holds the signal, and it reaches no listener before cli.ts takes the
// early handler away; the signal was then lost and the command ran on, to its end.
it.each([['--help'], ['export', '--out', 'out.jsonl'], ['migrate']])('Ctrl-C while `tracehouse %s` is still loading ends it by the signal, as before the early handler', async (...command) => {
  const dir = tempDir();
  const { child, exited, output } = runBin([...command, `--storage.sqlite.path=${join(dir, 'th.db')}`], dir);
  await untilStopHeard(child.pid!);
  child.kill('SIGINT');
  expect(await exited, output()).toEqual({ code: null, signal: 'SIGINT' });
  expect(output()).toBe('');
}, 30_000);
