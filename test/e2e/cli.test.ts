// The real command line: configuration errors, --help, and SIGTERM (or SIGHUP) draining everything accepted
// into the embedded SQLite default before exit 0.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { READS } from '../../src/storage/sqlite/reads.ts';
import { openReadOnly } from '../../src/storage/sqlite/store.ts';
import { describe, expect, it, onTestFinished } from 'vitest';
import { eventually } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';
import { tempDir } from '../helpers/tmp.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
}

/** As run, without blocking this process's event loop (a server of the test's own stays open). */
function runAsync(args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, out }));
  });
}

describe('tracehouse command line', () => {
  it('--help lists every option with its default and environment variable', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--writer.maxQueueBytes=<int>');
    expect(r.stdout).toContain('TRACEHOUSE_WRITER_MAX_QUEUE_BYTES');
    expect(r.stdout).toContain('Default: ./data/tracehouse.db');
  });

  it('stops start-up naming the key and the value of a bad setting, from any source', () => {
    const flag = run(['--writer.maxBatchRows=lots']);
    expect(flag.status).toBe(2);
    expect(flag.stderr).toContain('writer.maxBatchRows = "lots" (from flag --writer.maxBatchRows)');

    const env = run([], { TRACEHOUSE_STORAGE_BACKEND: 'oracle' });
    expect(env.status).toBe(2);
    expect(env.stderr).toContain('storage.backend = "oracle" (from env TRACEHOUSE_STORAGE_BACKEND)');

    const file = join(tempDir(), 'bad.yaml');
    writeFileSync(file, 'receiver:\n  grpc:\n    listen: "nowhere"\n');
    const fromFile = run(['--config', file]);
    expect(fromFile.status).toBe(2);
    expect(fromFile.stderr).toContain(`receiver.grpc.listen = "nowhere" (from file ${file})`);

    // Settings found wrong while the collector is built (files they name, keys that need another).
    for (const [args, message] of [
      [['--ops.requireAuth=true'], 'ops.requireAuth = true needs auth.tokensFile'],
      [['--tls.certFile=/nope.pem', '--tls.keyFile=/nope.key'], 'tls.certFile = "/nope.pem"'],
    ] as const) {
      const r = run(['--storage.backend=memory', ...args]);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    // Backend settings checked when the backend is built, by `start` and by `migrate`.
    for (const [args, message] of [
      [['--storage.backend=postgres', '--storage.postgres.url=notaurl'], 'storage.postgres.url = "notaurl": expected postgres://'],
      [['--storage.backend=postgres', '--storage.postgres.url=th:s3cret@dbhost:5432/traces'], 'storage.postgres.url = "th:***@dbhost:5432/traces"'],
      // A URL pg cannot read (a # in a password not percent-encoded, a port past 65535) failed
      // at start with "Invalid URL" alone, exit 1, naming neither key nor value.
      [['--storage.backend=postgres', '--storage.postgres.url=postgres://th:s3#cret@dbhost:5432/traces'], 'storage.postgres.url = "postgres://th:***@dbhost:5432/traces": Invalid URL'],
      [['--storage.backend=postgres', '--storage.postgres.url=postgres://th@dbhost:99999/traces'], 'storage.postgres.url = "postgres://th@dbhost:99999/traces": Invalid URL'],
      [['--storage.clickhouse.urls=ftp://h'], 'storage.clickhouse.urls: "ftp://h": unsupported scheme ftp:'],
      [['--storage.clickhouse.tracesTable=bad-name'], 'storage.clickhouse.tracesTable = "bad-name": expected an identifier'],
      [['--storage.clickhouse.urls=chdb:///tmp/x', '--storage.clickhouse.cluster=c'], 'storage.clickhouse.cluster cannot be used with chdb://'],
    ] as const) {
      for (const command of [[], ['migrate']]) {
        const r = run([...command, ...(args[0].startsWith('--storage.backend') ? [] : ['--storage.backend=clickhouse']), ...args]);
        expect(r.status, [...command, ...args].join(' ')).toBe(2);
        expect(r.stderr).toContain(message);
        expect(r.stderr).not.toMatch(/\n\s+at /);
        expect(r.stderr).not.toMatch(/s3#?cret/);
      }
    }

    writeFileSync(file, 'writer:\n  maxBatchRowz: 5\n');
    const unknown = run(['--config', file]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown key 'writer.maxBatchRowz'");
  });

  it('refuses two of its own listeners on one port as a bad configuration, naming both, before opening anything', () => {
    const dir = tempDir();
    const db = join(dir, 'data', 'tracehouse.db');
    // Free ports all but the two put on one: what fails is the collector's own configuration.
    const base = ['--receiver.grpc.listen=127.0.0.1:0', '--receiver.http.listen=127.0.0.1:0', `--storage.sqlite.path=${db}`];
    for (const [args, first, second] of [
      [['--query.listen=127.0.0.1:44391', '--ops.listen=127.0.0.1:44391'], 'query.listen = "127.0.0.1:44391" (from flag --query.listen)', 'ops.listen = "127.0.0.1:44391" (from flag --ops.listen)'],
      // A wildcard address takes the port on every address, loopback too.
      [['--query.listen=0.0.0.0:44392', '--ops.listen=127.0.0.1:44392'], 'query.listen = "0.0.0.0:44392"', 'ops.listen = "127.0.0.1:44392"'],
    ] as const) {
      const r = run([...base, ...args]);
      expect(r.status, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toContain(first);
      expect(r.stderr).toContain(second);
      // Refused before the store or the write-ahead log was opened.
      expect(existsSync(join(dir, 'data'))).toBe(false);
    }
  });

  it('fails start-up naming the option of a listener whose port another process holds, or whose host does not resolve', async () => {
    const dir = tempDir();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => void holder.close());
    const taken = `127.0.0.1:${(holder.address() as AddressInfo).port}`;
    for (const key of ['receiver.grpc.listen', 'receiver.http.listen'] as const) {
      const others = ['receiver.grpc.listen', 'receiver.http.listen', 'query.listen', 'ops.listen'].filter((k) => k !== key).map((k) => `--${k}=127.0.0.1:0`);
      const r = await runAsync([`--${key}=${taken}`, ...others, '--storage.backend=memory', `--delivery.walDir=${join(dir, 'wal')}`]);
      expect(r.status, r.out).toBe(1);
      const fatal = r.out.split('\n').filter((l) => l.includes('"start-up failed"')).map((l) => JSON.parse(l) as { err: string });
      expect(fatal.map((l) => l.err.split(' (')[0]), r.out).toEqual([`${key} = ${JSON.stringify(taken)}: cannot listen: the port is in use by another process`]);
      // A host name that does not resolve (.invalid never does, RFC 6761).
      const unknown = await runAsync([`--${key}=no-such-host.invalid:0`, ...others, '--storage.backend=memory', `--delivery.walDir=${join(dir, 'wal')}`]);
      const failed = unknown.out.split('\n').filter((l) => l.includes('"start-up failed"')).map((l) => JSON.parse(l) as { err: string });
      expect(unknown.status, unknown.out).toBe(1);
      expect(failed.map((l) => l.err.split(' (')[0]), unknown.out).toEqual([`${key} = "no-such-host.invalid:0": cannot listen: the host name does not resolve`]);
    }
  });

  it('refuses a write-ahead log directory that is a file, or lies under one, as a bad configuration naming delivery.walDir', () => {
    const dir = tempDir();
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, '');
    const ports = ['receiver.grpc.listen', 'receiver.http.listen', 'query.listen', 'ops.listen'].map((k) => `--${k}=127.0.0.1:0`);
    for (const walDir of [file, join(file, 'wal')]) {
      const r = run([`--delivery.walDir=${walDir}`, `--storage.sqlite.path=${join(dir, 'data', 'tracehouse.db')}`, ...ports]);
      expect(r.status, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toContain(`delivery.walDir = ${JSON.stringify(walDir)}: cannot open the write-ahead log: it or a directory above it is a file, not a directory`);
    }
  });

  it('says why start-up failed on stderr with log.level = silent, as it says a configuration error', async () => {
    // A port another process holds: found when the listener starts, not when the options are read.
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => void holder.close());
    const taken = `127.0.0.1:${(holder.address() as AddressInfo).port}`;
    const others = ['receiver.grpc.listen', 'query.listen', 'ops.listen'].map((k) => `--${k}=127.0.0.1:0`);
    const r = spawnSync(process.execPath, [CLI, '--log.level=silent', '--storage.backend=memory', `--receiver.http.listen=${taken}`, ...others], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`start-up failed: receiver.http.listen = ${JSON.stringify(taken)}: cannot listen: the port is in use by another process`);
  });

  // SIGHUP: the terminal of a collector started by hand closed (an ssh session dropped).
  // SIGHUP then SIGTERM: a session ended, its hang-up followed by its manager's stop; one stop.
  it.each(['SIGTERM', 'SIGHUP', 'SIGHUP then SIGTERM'])('drains every accepted span into SQLite on %s and exits 0', async (sent) => {
    const signals = sent.split(' then ') as NodeJS.Signals[];
    const dir = tempDir();
    const db = join(dir, 'th.db');
    const child = spawn(process.execPath, [CLI, '--receiver.grpc.listen=127.0.0.1:0', '--receiver.http.enabled=false', '--query.enabled=false', '--ops.listen=127.0.0.1:0', `--storage.sqlite.path=${db}`, '--writer.flushIntervalMs=600000', '--writer.maxBatchRows=1000000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Never leave a collector behind, whatever fails below.
    const reap = (): void => {
      if (child.exitCode === null) child.kill('SIGKILL');
    };
    process.once('exit', reap);
    onTestFinished(reap);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const port = await eventually(async () => {
      const m = /"port":(\d+),"msg":"OTLP\/gRPC receiver listening"/.exec(out);
      return m ? Number(m[1]) : undefined;
    }, 20_000, 'collector start');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await eventually(async () => (out.includes('tracehouse started') ? true : undefined));

    const client = new RawOtlpClient(`127.0.0.1:${port}`);
    const traceId = randomBytes(16);
    const spans = Array.from({ length: 500 }, (_, i) => ({ traceId, spanId: randomBytes(8), name: `op-${i}`, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }));
    for (let i = 0; i < 5; i++) {
      const res = await client.traces(encodeTraces({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans: spans.slice(i * 100, i * 100 + 100) }] }] }));
      expect(res.error).toBeNull();
    }
    client.close();
    // The flush interval is ten minutes: everything accepted is still queued when the signal arrives.
    for (const signal of signals) child.kill(signal);
    expect(await exited).toBe(0);
    expect(READS.getTrace(openReadOnly(db), [DEFAULT_TENANT, traceId.toString('hex')])).toHaveLength(500);
    expect(out).toContain('shutting down');
  });

  it('says once on stderr that its log destination failed, then runs, drains and exits 0 without it', async () => {
    const dir = tempDir();
    const db = join(dir, 'th.db');
    // stdout on /dev/full: every write fails (ENOSPC), as a log file on a full disk does.
    const full = openSync('/dev/full', 'w');
    const child = spawn(process.execPath, [CLI, '--receiver.grpc.listen=127.0.0.1:0', '--receiver.http.enabled=false', '--query.enabled=false', '--ops.listen=127.0.0.1:0', `--storage.sqlite.path=${db}`], { stdio: ['ignore', full, 'pipe'] });
    closeSync(full);
    onTestFinished(() => void child.kill('SIGKILL'));
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await eventually(async () => (err.includes('the log destination failed') ? true : undefined), 20_000, 'the failure said on stderr');
    // Still running without its log, and a stop still drains and exits 0.
    await new Promise((r) => setTimeout(r, 1000));
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(err.match(/the log destination failed/g)).toHaveLength(1);
  });

  // The terminal a collector was started from by hand goes away (an ssh session dropped): the
  // kernel sends SIGHUP, and from then on every write to stdout, the dead terminal, fails with
  // EIO. A pseudo-terminal (python3's pty module; Node has none) stands in for it.
  // Never skipped: without python3 this fails (README: what the suite needs; .ci/run installs it).
  it('drains every accepted span and exits 0 when the terminal it logs to hangs up', async () => {
    expect(spawnSync('python3', ['-c', 'import pty'], { encoding: 'utf8' }).status, 'python3 with its pty module on PATH').toBe(0);
    const dir = tempDir();
    const db = join(dir, 'th.db');
    // Runs the collector on a pseudo-terminal, echoes what it writes until it has started, then on
    // a line from the test closes the terminal and says how the collector ended (`hung`: not
    // within 20 s; it is killed then).
    const pty = [
      'import os, pty, sys, time, signal, select',
      'pid, fd = pty.fork()',
      'if pid == 0: os.execv(sys.argv[1], sys.argv[1:])',
      'out = b""',
      'while b"tracehouse started" not in out:',
      '  out += os.read(fd, 65536)',
      'sys.stdout.write(out.decode()); sys.stdout.flush()',
      'sys.stdin.readline()',
      'os.close(fd)',
      'end = time.time() + 20',
      'while time.time() < end:',
      '  p, status = os.waitpid(pid, os.WNOHANG)',
      '  if p: print("exit", os.waitstatus_to_exitcode(status)); sys.exit(0)',
      '  time.sleep(0.05)',
      'os.kill(pid, signal.SIGKILL); print("hung")',
    ].join('\n');
    const child = spawn('python3', ['-c', pty, process.execPath, CLI, '--receiver.grpc.listen=127.0.0.1:0', '--receiver.http.enabled=false', '--query.enabled=false', '--ops.listen=127.0.0.1:0', `--storage.sqlite.path=${db}`, '--writer.flushIntervalMs=600000', '--writer.maxBatchRows=1000000'], { stdio: ['pipe', 'pipe', 'pipe'] });
    onTestFinished(() => void child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    await eventually(async () => (out.includes('tracehouse started') ? true : undefined), 20_000, 'collector start');
    const port = Number(/"port":(\d+),"msg":"OTLP\/gRPC receiver listening"/.exec(out)![1]);

    const client = new RawOtlpClient(`127.0.0.1:${port}`);
    const traceId = randomBytes(16);
    const spans = Array.from({ length: 200 }, (_, i) => ({ traceId, spanId: randomBytes(8), name: `op-${i}`, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }));
    expect((await client.traces(encodeTraces({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }] }))).error).toBeNull();
    client.close();
    // The flush interval is ten minutes: everything accepted is still queued when the terminal goes.
    child.stdin.end('hangup\n');
    await closed;
    expect(out.trim().split('\n').at(-1), out).toBe('exit 0');
    expect(READS.getTrace(openReadOnly(db), [DEFAULT_TENANT, traceId.toString('hex')])).toHaveLength(200);
  }, 60_000);
});
