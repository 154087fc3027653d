// The command line as users type it: negative values after a flag, list flags given again, flags a
// transfer command does not take, and a copy into its own store named another way; each case runs
// the real CLI on real SQLite files.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCli } from '../../src/cli.ts';
import { loadConfig } from '../../src/config/index.ts';
import { parseTransferArgs } from '../../src/transfer/cli.ts';
import { CLI, runCli, sqliteCount as count } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const FIXTURE = new URL('../fixtures/collector-fileexporter-json.jsonl', import.meta.url).pathname;

const run = (args: string[], cwd?: string) => runCli(args, cwd === undefined ? {} : { cwd });

describe('tracehouse command line flags', () => {
  it('takes a negative number after a flag as its value (--limits.memorySoftBytes -1)', () => {
    expect(parseCli(['--limits.memorySoftBytes', '-1', '--storage.backend', 'memory']).flags).toEqual({ 'limits.memorySoftBytes': '-1', 'storage.backend': 'memory' });
    const r = run(['migrate', '--storage.backend', 'memory', '--limits.memorySoftBytes', '-1']);
    expect(r.stderr).not.toContain("unknown option '--1'");
    expect(r.status).toBe(0);
  });

  it('refuses an option that needs a value given none, and lets a switch stand before the command', () => {
    expect(() => parseCli(['--storage.sqlite.path', '--log.level=debug'])).toThrow('invalid configuration: --storage.sqlite.path needs a value');
    expect(() => parseCli(['start', '--config'])).toThrow('--config needs a value');
    const r = run(['--storage.sqlite.path', '--storage.backend=memory']);
    expect(r.stderr).toBe('tracehouse: invalid configuration: --storage.sqlite.path needs a value (--storage.sqlite.path=VALUE or --storage.sqlite.path VALUE)\n');
    expect(r.status).toBe(2);
    // A switch takes a following boolean word, and leaves the command alone.
    expect(parseCli(['--query.enabled', 'false', 'migrate'])).toMatchObject({ command: 'migrate', flags: { 'query.enabled': 'false' } });
    expect(parseCli(['--quiet', 'import', 'a.jsonl'])).toMatchObject({ command: 'import', flags: { quiet: 'true' } });
    expect(parseCli(['--query.enabled', 'migrate'])).toMatchObject({ command: 'migrate', flags: { 'query.enabled': 'true' } });
  });

  it('says a configuration file it cannot use came from TRACEHOUSE_CONFIG when that variable named it', () => {
    const missing = join(tempDir(), 'gone.yaml');
    for (const args of [['migrate', '--storage.backend=memory'], ['export', '--out', '-', '--storage.backend=memory']]) {
      const fromEnv = runCli(args, { env: { TRACEHOUSE_CONFIG: missing } });
      expect(fromEnv.status).toBe(2);
      expect(fromEnv.stderr).toContain(`config file ${missing} (from env TRACEHOUSE_CONFIG): ENOENT`);
      const fromFlag = runCli([...args, '--config', missing]);
      expect(fromFlag.status).toBe(2);
      expect(fromFlag.stderr).toContain(`config file ${missing}: ENOENT`);
    }
  });

  it('refuses a word after a boolean option that is neither true nor false, naming the option, not as an unknown command', () => {
    for (const word of ['off', 'no']) {
      const r = run(['--storage.backend', 'memory', '--receiver.grpc.enabled', word]);
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(`tracehouse: invalid configuration: --receiver.grpc.enabled "${word}": expected true or false (--receiver.grpc.enabled=false), or the flag alone for true\n`);
    }
    // A command or a file after the command is not the option's.
    expect(parseCli(['--receiver.grpc.enabled', 'migrate'])).toMatchObject({ command: 'migrate', flags: { 'receiver.grpc.enabled': 'true' } });
    expect(parseCli(['import', '--query.enabled', 'a.jsonl'])).toMatchObject({ command: 'import', operands: ['a.jsonl'] });
  });

  it('calls a misspelt flag of export, import or copy unknown, not one that needs a value (--quite for --quiet)', () => {
    // `tracehouse export --out x --quite` said "--quite needs a value", sending the user after a value
    // for a flag that does not exist; start says "unknown option" of the same flag.
    expect(() => parseTransferArgs(['export', '--out', 'x.jsonl', '--quite'])).toThrow("unknown option '--quite' (see --help)");
    expect(() => parseTransferArgs(['import', '--quite', '--tenant', 'acme', 'a.jsonl'])).toThrow("unknown option '--quite' (see --help)");
    // Known flags and options still need their value.
    expect(() => parseTransferArgs(['export', '--out'])).toThrow('--out needs a value');
    expect(() => parseTransferArgs(['export', '--out', 'x', '--storage.sqlite.path'])).toThrow('--storage.sqlite.path needs a value');
    const r = run(['export', '--out', 'x.jsonl', '--quite'], tempDir());
    expect(r.stderr).toBe("tracehouse: unknown option '--quite' (see --help)\n");
    expect(r.status).toBe(2);
  });

  it('refuses a word after start or migrate (a configuration file given without --config) instead of running on the defaults', () => {
    const dir = tempDir();
    const file = join(dir, 'postgres.yaml');
    writeFileSync(file, 'storage:\n  backend: postgres\n  postgres:\n    url: postgres://u@127.0.0.1:1/x\n');
    // Without the check, migrate said "backend has no migrations" of the default SQLite store and exited 0.
    const migrate = run(['migrate', file], dir);
    expect(migrate.stderr).toContain(`migrate takes no argument (${JSON.stringify(file)}); give a configuration file with --config FILE`);
    expect(migrate.status).toBe(2);
    // start would run a collector on the default store, the file never read.
    const listen = ['receiver.grpc', 'receiver.http', 'query', 'ops'].map((l) => `--${l}.listen=127.0.0.1:0`);
    const start = spawnSync(process.execPath, [CLI, 'start', file, '--storage.backend=memory', ...listen], { cwd: dir, encoding: 'utf8', timeout: 20_000, env: { ...process.env, TRACEHOUSE_CONFIG: '' } });
    expect(start.stderr).toContain('start takes no argument');
    expect(start.status).toBe(2);
    expect(existsSync(join(dir, 'data'))).toBe(false);
  });

  it('refuses an empty --config (an unset variable in --config="$CONFIG") and an empty file flag of export / copy', () => {
    const dir = tempDir();
    expect(() => parseCli(['--config='])).toThrow('--config needs a value');
    // Without the check, the collector ran on the defaults: no file read, nothing said.
    const migrate = run(['migrate', '--config=', '--storage.backend=memory']);
    expect(migrate.stderr).toContain('--config needs a value');
    expect(migrate.status).toBe(2);
    const db = join(dir, 'a.db');
    expect(run(['import', FIXTURE, `--storage.sqlite.path=${db}`, '--quiet', '--workers.threads=1']).status).toBe(1); // the fixture's metrics line
    writeFileSync(join(dir, 'target.yaml'), `storage:\n  sqlite:\n    path: ${join(dir, 'b.db')}\n`);
    for (const args of [['export', '--out=x.jsonl', '--config='], ['export', '--out='], ['copy', '--to-config='], ['copy', '--to-config=target.yaml', '--checkpoint=']]) {
      const r = run([...args, `--storage.sqlite.path=${db}`, '--quiet'], dir);
      const flag = args.find((a) => a.endsWith('='))!;
      expect(r.stderr, args.join(' ')).toContain(`${flag.slice(0, -1)} needs a value`);
      expect(r.status, args.join(' ')).toBe(2);
    }
    // Nothing written, no temporary file left behind.
    expect(readdirSync(dir).sort()).toEqual(['a.db', 'a.db-traces', 'target.yaml']);
  });

  it('refuses an SQLite path that names no file before it writes anything (an unset variable in TRACEHOUSE_STORAGE_SQLITE_PATH)', () => {
    // The refusal came after the write-ahead log had opened its default directory beside the
    // "file": a wal directory with a lock, a segment and a 4 MiB reserve left in the working directory.
    const listen = ['receiver.grpc', 'receiver.http', 'query', 'ops'].map((l) => `--${l}.listen=127.0.0.1:0`);
    for (const path of ['', ':memory:', 'file:th.db?cache=shared']) {
      const dir = tempDir();
      const r = runCli(['start', ...listen], { cwd: dir, env: { TRACEHOUSE_STORAGE_SQLITE_PATH: path } });
      expect(r.stderr, path).toContain(`storage.sqlite.path = ${JSON.stringify(path)}`);
      expect(r.status, path).toBe(2);
      expect(readdirSync(dir), path).toEqual([]);
    }
  });

  it('warns of a TRACEHOUSE_ variable that names no option, with the one it likely meant', () => {
    const r = spawnSync(process.execPath, [CLI, 'migrate', '--storage.backend=memory'], {
      encoding: 'utf8',
      timeout: 60_000,
      // A typo, and what must not be warned of: Kubernetes' service links of Services named tracehouse and tracehouse-postgres.
      env: { ...process.env, TRACEHOUSE_CONFIG: '', TRACEHOUSE_STORAGE_BAKEND: 'postgres', TRACEHOUSE_SERVICE_HOST: '10.0.0.1', TRACEHOUSE_PORT_4317_TCP_ADDR: '10.0.0.1', TRACEHOUSE_SERVICE_PORT_OTLP_GRPC: '4317', TRACEHOUSE_POSTGRES_SERVICE_HOST: '10.0.0.2', TRACEHOUSE_POSTGRES_PORT_5432_TCP: 'tcp://10.0.0.2:5432' },
    });
    expect(r.status).toBe(0);
    const warning = r.stdout.split('\n').filter((l) => l.includes('no option are ignored')).map((l) => JSON.parse(l) as { level: number; variables: string[] });
    expect(warning).toHaveLength(1);
    expect(warning[0]!.variables).toEqual(['TRACEHOUSE_STORAGE_BAKEND (TRACEHOUSE_STORAGE_BACKEND?)']);
  });

  it('warns of the same variable on export, import and copy, on stderr', () => {
    const dir = tempDir();
    const db = join(dir, 'a.db');
    const env = { TRACEHOUSE_STORAGE_BAKEND: 'postgres' };
    const target = join(dir, 'target.yaml');
    writeFileSync(target, `storage:\n  sqlite:\n    path: ${join(dir, 'b.db')}\n`);
    for (const args of [['import', FIXTURE], ['export', '--out', join(dir, 'out.jsonl')], ['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json')]]) {
      const r = runCli([...args, `--storage.sqlite.path=${db}`, '--quiet'], { env });
      expect(r.stderr, args[0]).toContain('TRACEHOUSE_STORAGE_BAKEND (TRACEHOUSE_STORAGE_BACKEND?)');
    }
  });

  it('migrate says in one line why a database it cannot reach was not migrated', () => {
    const r = run(['migrate', '--storage.backend=postgres', '--storage.postgres.url=postgres://u:p@127.0.0.1:1/x', '--storage.startWaitMs=0']);
    expect(r.stderr).toBe('tracehouse migrate: postgres migrations failed: storage.postgres.url = "postgres://u:***@127.0.0.1:1/x": not reachable (storage.startWaitMs = 0: no wait): connect ECONNREFUSED 127.0.0.1:1\n');
    expect(r.status).toBe(1);
  });

  it('says once how many items of a line were rejected and why', () => {
    const dir = tempDir();
    const file = join(dir, 'bad.jsonl');
    const span = (traceId: string) => ({ traceId, spanId: '0102030405060708', name: 'op', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' });
    writeFileSync(file, JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [span('0102030405060708090a0b0c0d0e0f10'), span('zz')] }] }] }) + '\n');
    const r = run(['import', file, `--storage.sqlite.path=${join(dir, 'a.db')}`, '--quiet']);
    expect(r.stderr).toContain(`${file}:1: 1 span rejected: invalid trace id (1)\n`);
    expect(r.status).toBe(1);
  });

  it('reads transfer flags as start does: a switch before FILE leaves it alone, a valued flag before another flag stops', () => {
    const dir = tempDir();
    const imp = run(['import', `--storage.sqlite.path=${join(dir, 'a.db')}`, '--storage.sqlite.attributeIndex', FIXTURE, '--quiet', '--workers.threads=1']);
    expect(imp.stderr).not.toContain('invalid configuration');
    // The fixture's metrics line is the one problem (exit 1); its spans and log records are in.
    expect(imp.stderr).toContain('import: 2 spans, 2 log records');
    const exp = run(['export', `--storage.sqlite.path=${join(dir, 'a.db')}`, '--out', '--quiet'], dir);
    expect(existsSync(join(dir, '--quiet'))).toBe(false);
    expect(exp.stderr).toContain('--out needs a value');
    expect(exp.status).toBe(2);
  });

  it('adds a list option given again in export / import / copy, as start does', () => {
    const argv = ['--storage.clickhouse.urls', 'http://a:8123', '--storage.clickhouse.urls=http://b:8123'];
    const start = loadConfig({ flags: parseCli(argv).flags });
    const exp = loadConfig({ flags: parseTransferArgs(['export', '--out', 'x', ...argv]).configFlags });
    expect(start['storage.clickhouse.urls']).toEqual(['http://a:8123', 'http://b:8123']);
    expect(exp['storage.clickhouse.urls']).toEqual(start['storage.clickhouse.urls']);
  });

  it('refuses a transfer flag the command does not take instead of ignoring it', () => {
    const db = join(tempDir(), 'a.db');
    // import has no --signal: it must not import the log records anyway and exit as if it had filtered.
    const r = run(['import', FIXTURE, '--signal', 'traces', '--quiet', `--storage.sqlite.path=${db}`, '--workers.threads=1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--signal');
  });

  it('refuses to copy a SQLite store into itself named by another spelling of its path', () => {
    const dir = tempDir();
    const imp = run(['import', FIXTURE, '--quiet', '--storage.sqlite.path=d/a.db', '--workers.threads=1'], dir);
    expect(imp.status).toBe(1); // the fixture's metrics line
    expect(count(join(dir, 'd/a.db'), 'logs')).toBe(2);
    writeFileSync(join(dir, 'self.yaml'), `storage:\n  sqlite:\n    path: ./d/a.db\nworkers:\n  threads: 1\n`);
    const r = run(['copy', '--to-config', 'self.yaml', '--storage.sqlite.path=d/a.db', '--workers.threads=1'], dir);
    expect(r.stderr).toContain('names the store being copied from');
    expect(r.status).toBe(2);
    expect(count(join(dir, 'd/a.db'), 'logs')).toBe(2);
  });
});
