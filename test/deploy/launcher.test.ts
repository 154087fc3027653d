// The first five minutes: the bin launcher tells an old Node.js what to do, and `npm start`
// stops cleanly when a supervisor sends SIGTERM to npm (no collector left orphaned, ports closed).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { eventually } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAUNCHER = join(ROOT, 'bin/tracehouse.js');
// The system Node.js of the CI machines (20): what a new user has before installing 24.
const OLD_NODE = '/usr/bin/node';

/** Processes whose command line contains marker, read from /proc. */
function processesWith(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(marker)) found.push(`${pid} ${cmd}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('bin/tracehouse.js', () => {
  it('on Node.js 20 says Node.js 24 is needed and exits 1 before loading any .ts', () => {
    const version = spawnSync(OLD_NODE, ['--version'], { encoding: 'utf8' });
    expect(version.stdout, `${OLD_NODE} must be a Node.js older than 24 for this test`).toMatch(/^v(1\d|2[0-3])\./);
    const r = spawnSync(OLD_NODE, [LAUNCHER, 'start'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`Tracehouse needs Node.js 24 or newer; this is ${version.stdout.trim()}`);
    expect(r.stderr).not.toContain('ERR_UNKNOWN_FILE_EXTENSION');
  });

  it('npm install on Node.js 20 stops with EBADENGINE (.npmrc engine-strict) instead of warning', () => {
    const dir = tempDir();
    for (const f of ['package.json', 'package-lock.json', '.npmrc']) copyFileSync(join(ROOT, f), join(dir, f));
    // The system npm runs on the system Node.js; --dry-run keeps a regression from installing anything.
    const r = spawnSync('npm', ['install', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PATH: `${join(OLD_NODE, '..')}:/bin` },
    });
    expect(r.stderr).toContain('EBADENGINE');
    expect(r.stderr).toContain('Required: {"node":">=24"}');
    expect(r.status).not.toBe(0);
  });

  it('on Node.js 24 runs the command line with its arguments and exit code', () => {
    const help = spawnSync(process.execPath, [LAUNCHER, '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: tracehouse [start|migrate]');
    const bad = spawnSync(process.execPath, [LAUNCHER, 'bogus'], { encoding: 'utf8', timeout: 20_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("unknown command 'bogus'");
  });
});

/**
 * `npm start -- ARGS` on a SQLite file at db (its path picks this test's processes out of every one
 * on the machine, and any left are killed when the test ends), once the collector said it started.
 */
async function npmStart(db: string, args: string[], o: { detached?: boolean } = {}): Promise<{ npm: ChildProcess; output: () => string; exited: Promise<number | null> }> {
  const npm = spawn('npm', ['start', '--', ...args, `--storage.sqlite.path=${db}`, '--workers.threads=1'], {
    cwd: ROOT,
    detached: o.detached === true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${join(process.execPath, '..')}:${process.env['PATH'] ?? ''}` },
  });
  onTestFinished(() => {
    // Whatever failed, do not leave this test's processes behind.
    for (const p of processesWith(db)) process.kill(Number(p.split(' ')[0]), 'SIGKILL');
  });
  let out = '';
  npm.stdout!.on('data', (d) => (out += d));
  npm.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
  await eventually(async () => (out.includes('tracehouse started') ? true : undefined), 30_000, `collector start (output: ${out})`);
  return { npm, output: () => out, exited };
}

describe('npm start', () => {
  it('drains and leaves no process and no open port when npm gets SIGTERM', async () => {
    const dir = tempDir();
    // A unique path identifies this test's collector among every process on the machine.
    const db = join(dir, 'npm-start.db');
    const { npm, output, exited } = await npmStart(db, ['--receiver.grpc.listen=127.0.0.1:0', '--receiver.http.listen=127.0.0.1:0', '--query.listen=127.0.0.1:0', '--ops.listen=127.0.0.1:0']);
    const out = output();
    const ports = [...out.matchAll(/"port":(\d+),"msg":"[^"]*listening"/g)].map((m) => Number(m[1]));
    expect(ports).toHaveLength(4);
    for (const p of ports) expect(await portOpen(p)).toBe(true);
    expect(processesWith(db).length).toBeGreaterThan(0);
    // The collector runs with the launcher's V8 heap floor (docs/performance.md, "The main heap's floor").
    expect(processesWith(db).some((p) => p.includes('--initial-old-space-size=128') && p.includes('src/cli.ts'))).toBe(true);

    npm.kill('SIGTERM');
    await exited;
    await eventually(async () => (processesWith(db).length === 0 ? true : undefined), 15_000, `collector exit (still running: ${processesWith(db).join('; ')})`);
    for (const p of ports) expect(await portOpen(p), `port ${p}`).toBe(false);
    expect(output()).toContain('"signal":"SIGTERM","msg":"shutting down: draining accepted data"');
    expect(output()).toContain('tracehouse stopped');
  });

  it('drains and exits 0 on Ctrl-C: the terminal\'s SIGINT and the copy npm forwards are one stop, not a second signal', async () => {
    const dir = tempDir();
    const db = join(dir, 'npm-ctrl-c.db');
    // Its own process group, as a shell gives a foreground job: Ctrl-C sends SIGINT to the group.
    const { npm, output, exited } = await npmStart(db, ['--receiver.grpc.enabled=false', '--receiver.http.listen=127.0.0.1:0', '--query.enabled=false', '--ops.listen=127.0.0.1:0'], { detached: true });

    process.kill(-npm.pid!, 'SIGINT');
    expect(await exited, output()).toBe(0);
    const out = output();
    expect(out).toContain('"signal":"SIGINT","msg":"shutting down: draining accepted data"');
    expect(out).not.toContain('second signal');
    expect(out).toContain('tracehouse stopped');
  });
});
