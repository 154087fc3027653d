// The real command line for export, import and copy: SQLite files, a compressed file and stdout,
// the summary line, exit codes, and bad flags answered naming flag and value.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CLI, runCli, sqliteCount as count } from '../helpers/cli.ts';
import { spawnCollector } from '../helpers/process.ts';
import { createLoginRole, createTestDatabase, testPostgresUrl, withUser } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/tmp.ts';

const FIXTURE = new URL('../fixtures/collector-fileexporter-json.jsonl', import.meta.url).pathname;

const run = (args: string[], input?: string) => runCli(args, input === undefined ? {} : { input });

describe('tracehouse export / import / copy', () => {
  it('imports a Collector file, exports it compressed and to stdout, and imports the export elsewhere', () => {
    const dir = tempDir();
    const a = join(dir, 'a.db');
    const imp = run(['import', FIXTURE, `--storage.sqlite.path=${a}`, '--workers.threads=1']);
    // The fixture's metrics line is reported, so the exit code says not everything was imported.
    expect(imp.status).toBe(1);
    expect(imp.stderr).toContain(`${FIXTURE}:2: skipped: metrics are not stored`);
    expect(imp.stderr).toMatch(/import: 2 spans, 2 log records, \d+ bytes, [\d.]+ s, 1 problems/);
    expect(count(a, 'spans')).toBe(2);

    const file = join(dir, 'backup.jsonl.zst');
    const exp = run(['export', '--out', file, `--storage.sqlite.path=${a}`]);
    expect(exp.status).toBe(0);
    expect(exp.stderr).toMatch(/export: 2 spans, 2 log records, \d+ bytes/);

    const stdout = run(['export', '--out', '-', '--signal', 'logs', '--quiet', `--storage.sqlite.path=${a}`]);
    expect(stdout.status).toBe(0);
    expect(stdout.stderr).toBe('');
    const lines = stdout.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!).resourceLogs[0].scopeLogs[0].logRecords).toHaveLength(2);

    const b = join(dir, 'b.db');
    for (let i = 0; i < 2; i++) {
      const back = run(['import', file, '--quiet', `--storage.sqlite.path=${b}`, '--workers.threads=1']);
      expect(back.status).toBe(0);
      expect(back.stderr).toBe('');
    }
    expect(count(b, 'spans')).toBe(2);
    expect(count(b, 'logs')).toBe(2);

    // Logs only, from stdin.
    const c = join(dir, 'c.db');
    const piped = run(['import', '-', `--storage.sqlite.path=${c}`, '--workers.threads=1'], stdout.stdout);
    expect(piped.status).toBe(0);
    expect(count(c, 'logs')).toBe(2);
    expect(count(c, 'spans')).toBe(0);
  });

  it('export --out - to a reader that stops (| head) says the output was cut short, not "write EPIPE"', async () => {
    const a = join(tempDir(), 'a.db');
    expect(run(['import', FIXTURE, `--storage.sqlite.path=${a}`, '--workers.threads=1']).status).toBe(1); // the fixture's metrics line
    const child = spawn(process.execPath, [CLI, 'export', '--out', '-', '--quiet', `--storage.sqlite.path=${a}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TRACEHOUSE_CONFIG: '' } });
    // The reader is gone before the command writes anything.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    expect(status).toBe(1);
    expect(stderr).toContain('tracehouse export: standard output was closed before the export ended');
  });

  it('copies into the store another config file names, resumable through its checkpoint', () => {
    const dir = tempDir();
    const a = join(dir, 'a.db');
    run(['import', FIXTURE, '--quiet', `--storage.sqlite.path=${a}`, '--workers.threads=1']);
    const other = join(dir, 'other.yaml');
    writeFileSync(other, `storage:\n  backend: sqlite\n  sqlite:\n    path: ${join(dir, 'copy.db')}\nworkers:\n  threads: 1\n`);
    const checkpoint = join(dir, 'cp.json');
    const r = run(['copy', '--to-config', other, '--checkpoint', checkpoint, '--service', 'checkout', `--storage.sqlite.path=${a}`]);
    expect(r.stderr).toMatch(/copy: 2 spans, 2 log records/);
    expect(r.status).toBe(0);
    expect(count(join(dir, 'copy.db'), 'spans')).toBe(2);
    expect(JSON.parse(readFileSync(checkpoint, 'utf8')).filters).toEqual({ source: expect.stringMatching(/^sqlite:[0-9a-f]{16}$/), target: expect.stringMatching(/^sqlite:[0-9a-f]{16}$/), signals: ['traces', 'logs'], service: 'checkout' });
    const again = run(['copy', '--to-config', other, '--checkpoint', checkpoint, '--service', 'checkout', `--storage.sqlite.path=${a}`]);
    expect(again.stderr).toMatch(/copy: 0 spans, 0 log records/);
    expect(count(join(dir, 'copy.db'), 'logs')).toBe(2);
  });

  it("imports, exports and copies one tenant's data with --tenant, and keeps the tenant in copy's checkpoint", () => {
    const dir = tempDir();
    const a = join(dir, 'a.db');
    const imp = run(['import', FIXTURE, '--tenant', 'acme', '--quiet', `--storage.sqlite.path=${a}`, '--workers.threads=1']);
    expect(imp.stderr).not.toContain('unknown option');
    expect(count(a, 'spans')).toBe(2);
    const spansOf = (tenant: string[]) => {
      const r = run(['export', '--out', '-', '--signal', 'traces', '--quiet', ...tenant, `--storage.sqlite.path=${a}`]);
      expect(r.status).toBe(0);
      return r.stdout.trim() === '' ? 0 : r.stdout.trim().split('\n').reduce((n, l) => n + JSON.parse(l).resourceSpans[0].scopeSpans[0].spans.length, 0);
    };
    expect(spansOf(['--tenant', 'acme'])).toBe(2);
    expect(spansOf([])).toBe(0);

    const other = join(dir, 'other.yaml');
    writeFileSync(other, `storage:\n  backend: sqlite\n  sqlite:\n    path: ${join(dir, 'copy.db')}\nworkers:\n  threads: 1\n`);
    const checkpoint = join(dir, 'cp.json');
    const copy = (tenant: string) => run(['copy', '--to-config', other, '--checkpoint', checkpoint, '--tenant', tenant, `--storage.sqlite.path=${a}`]);
    const r = copy('acme');
    expect(r.stderr).toMatch(/copy: 2 spans, 2 log records/);
    expect(JSON.parse(readFileSync(checkpoint, 'utf8')).filters).toMatchObject({ tenant: 'acme' });
    // Another tenant's copy does not resume at acme's cursors.
    const b = copy('globex');
    expect(b.status).toBe(1);
    expect(b.stderr).toContain('belongs to a copy from another source or with other filters');
  });

  it('refuses to export or copy from a SQLite file that is not there instead of writing an empty backup', () => {
    const dir = tempDir();
    const target = join(dir, 'target.yaml');
    writeFileSync(target, `storage:\n  sqlite:\n    path: ${join(dir, 'b.db')}\n`);
    // The default ./data/tracehouse.db, run from another directory (a cron job's), or a mistyped path.
    for (const args of [['export', '--out', join(dir, 'backup.jsonl')], ['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json')]]) {
      for (const path of [[], [`--storage.sqlite.path=${join(dir, 'typo.db')}`]]) {
        const r = runCli([...args, ...path, '--quiet'], { cwd: dir });
        expect(r.stderr, [...args, ...path].join(' ')).toContain(`${args[0]}: storage.sqlite.path = ${JSON.stringify(path.length === 0 ? './data/tracehouse.db' : join(dir, 'typo.db'))}: no such file`);
        expect(r.status).toBe(2);
      }
    }
    expect(readdirSync(dir).sort()).toEqual(['target.yaml']);
    // A URI filename (which the store opens) names its file by its path: file:DIR/typo.db was
    // created empty, its directory made, and an empty backup written, exit 0.
    const uri = `file:${join(dir, 'data', 'typo.db')}?cache=shared`;
    const u = runCli(['export', '--out', join(dir, 'backup.jsonl'), `--storage.sqlite.path=${uri}`, '--quiet'], { cwd: dir });
    expect(u.stderr).toContain(`export: storage.sqlite.path = ${JSON.stringify(uri)}: no such file`);
    expect(u.status).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(['target.yaml']);
    // The in-process ClickHouse engine's directory likewise (it would be created, empty).
    const ch = runCli(['export', '--out', join(dir, 'backup.jsonl'), '--storage.backend=clickhouse', `--storage.clickhouse.urls=chdb://${join(dir, 'nochdb')}`, '--quiet'], { cwd: dir });
    expect(ch.stderr).toContain('no such directory');
    expect(ch.status).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(['target.yaml']);
  });

  it("refuses an export whose --out is one of the SQLite store's own files, which the backup would replace", () => {
    const dir = tempDir();
    const db = join(dir, 'a.db');
    expect(run(['import', FIXTURE, `--storage.sqlite.path=${db}`, '--workers.threads=1', '--quiet']).status).toBe(1);
    for (const out of [db, join(dir, '.', 'a.db-traces'), `${db}-wal`]) {
      const r = runCli(['export', '--out', out, `--storage.sqlite.path=${db}`, '--quiet'], { cwd: dir });
      expect(r.stderr, out).toContain(`export: --out ${JSON.stringify(out)} is the store's own file`);
      expect(r.status, out).toBe(2);
      expect(count(db, 'spans'), out).toBe(2);
    }
    // Spelled relatively from the working directory, the same file.
    const rel = runCli(['export', '--out', 'a.db', `--storage.sqlite.path=${db}`, '--quiet'], { cwd: dir });
    expect(rel.status).toBe(2);
    expect(count(db, 'spans')).toBe(2);
    expect(runCli(['export', '--out', join(dir, 'backup.jsonl'), `--storage.sqlite.path=${db}`, '--quiet'], { cwd: dir }).status).toBe(0);
  });

  it('refuses to export or copy from a PostgreSQL schema or ClickHouse database that is not there, and creates none', async () => {
    const dir = tempDir();
    const url = await createTestDatabase('transfer_cli');
    // The fixture's times are of 2018: kept past the default retention.
    const pgFlags = ['--storage.backend=postgres', `--storage.postgres.url=${url}`, '--storage.postgres.retentionDays=0'];
    const imported = runCli(['import', FIXTURE, ...pgFlags, '--quiet']);
    expect(imported.stderr).toContain('import: 2 spans, 2 log records'); // and the fixture's metrics line skipped
    const backup = join(dir, 'backup.jsonl');
    // A mistyped schema: before, it was created empty and an empty backup written, exit 0.
    const typo = runCli(['export', '--out', backup, ...pgFlags, '--storage.postgres.schema=tracehous', '--quiet']);
    expect(typo.stderr).toContain('export reads an existing store and migrates nothing: postgres schema tracehous has no migration applied (missing, or never migrated)');
    expect(typo.status).toBe(1);
    const target = join(dir, 'target.yaml');
    writeFileSync(target, `storage:\n  sqlite:\n    path: ${join(dir, 'b.db')}\n`);
    const copy = runCli(['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json'), ...pgFlags, '--storage.postgres.schema=tracehous', '--quiet']);
    expect(copy.stderr).toContain('copy reads an existing store');
    expect(copy.status).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(['target.yaml']);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tracehous%' ORDER BY 1`);
      expect(rows.map((r) => r.nspname)).toEqual(['tracehouse']);
    } finally {
      await client.end();
    }
    // The schema that is there exports as before.
    const ok = runCli(['export', '--out', backup, ...pgFlags, '--quiet']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(readFileSync(backup, 'utf8').length).toBeGreaterThan(0);
    // ClickHouse: a database the chdb directory does not hold.
    const chdb = `chdb://${join(dir, 'chdb')}`;
    expect(runCli(['import', FIXTURE, '--storage.backend=clickhouse', `--storage.clickhouse.urls=${chdb}?database=otel`, '--quiet']).stderr).toContain('import: 2 spans, 2 log records');
    const ch = runCli(['export', '--out', join(dir, 'ch.jsonl'), '--storage.backend=clickhouse', `--storage.clickhouse.urls=${chdb}?database=otle`, '--quiet']);
    expect(ch.stderr).toContain('export reads an existing store and migrates nothing: ClickHouse schema');
    expect(ch.stderr).toContain('(database otle) has no migration applied (missing, or never migrated)');
    expect(ch.status).toBe(1);
    expect(readdirSync(dir)).not.toContain('ch.jsonl');
  }, 120_000);


  it('deletes nothing from the PostgreSQL store it exports or copies from, or imports or copies into: its retention is the collector\'s to run', async () => {
    const dir = tempDir();
    const url = await createTestDatabase('transfer_keep');
    const store = ['--storage.backend=postgres', `--storage.postgres.url=${url}`];
    // A collector that keeps everything (retentionDays 0) stored the fixture's spans of 2018.
    const imported = runCli(['import', FIXTURE, ...store, '--storage.postgres.retentionDays=0', '--quiet']);
    expect(imported.stderr).toContain('import: 2 spans, 2 log records');
    const counts = async (): Promise<string[]> => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>(`SELECT (SELECT count(*) FROM tracehouse.spans)::text AS n UNION ALL SELECT (SELECT count(*) FROM tracehouse.logs)::text`);
        return rows.map((r) => r.n);
      } finally {
        await client.end();
      }
    };
    expect(await counts()).toEqual(['2', '2']);
    // A backup with the store's URL alone (storage.postgres.retentionDays left at its default, 7):
    // the backup holds the rows, and the store still does.
    const backup = join(dir, 'backup.jsonl');
    const exp = runCli(['export', '--out', backup, ...store]);
    expect(exp.status, exp.stderr).toBe(0);
    expect(exp.stderr).toMatch(/export: 2 spans, 2 log records/);
    expect(await counts()).toEqual(['2', '2']);
    const target = join(dir, 'target.yaml');
    writeFileSync(target, `storage:\n  sqlite:\n    path: ${join(dir, 'b.db')}\nworkers:\n  threads: 1\n`);
    const copy = runCli(['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json'), ...store, '--quiet']);
    expect(copy.status, copy.stderr).toBe(0);
    expect(count(join(dir, 'b.db'), 'spans')).toBe(2);
    expect(await counts()).toEqual(['2', '2']);
    // Nor does a restore into it with its URL alone, an import or a copy: its 2018 rows stay.
    const fresh = join(dir, 'fresh.jsonl');
    const now = BigInt(Date.now()) * 1_000_000n;
    const span = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', name: 'now', startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n) };
    writeFileSync(fresh, JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'fresh' } }] }, scopeSpans: [{ spans: [span] }] }] }) + '\n');
    const restored = runCli(['import', fresh, ...store, '--quiet']);
    expect(restored.status, restored.stderr).toBe(0);
    expect(await counts()).toEqual(['3', '2']);
    const into = join(dir, 'into-postgres.yaml');
    writeFileSync(into, `storage:\n  backend: postgres\n  postgres:\n    url: ${JSON.stringify(url)}\n`);
    // From a SQLite file holding the new span alone (stored once: the store has it).
    expect(runCli(['import', fresh, `--storage.sqlite.path=${join(dir, 'c.db')}`, '--quiet']).status).toBe(0);
    const back = runCli(['copy', '--to-config', into, '--checkpoint', join(dir, 'back.json'), `--storage.sqlite.path=${join(dir, 'c.db')}`, '--quiet']);
    expect(back.status, back.stderr).toBe(0);
    expect(await counts()).toEqual(['3', '2']);
  }, 120_000);
  it('fails an import at once, not after retrying every batch for minutes, when its role may not insert', async () => {
    const server = await testPostgresUrl();
    const db = await createTestDatabase('transfer_denied', server);
    const name = new URL(db).pathname.slice(1);
    const role = `r_${name}`.slice(0, 60);
    await createLoginRole(server, role, [`ALTER DATABASE ${name} OWNER TO ${role}`]);
    const u = withUser(db, role);
    const pgFlags = ['--storage.backend=postgres', `--storage.postgres.url=${u}`, '--storage.postgres.retentionDays=0'];
    expect(runCli(['import', FIXTURE, ...pgFlags, '--quiet']).stderr).toContain('import: 2 spans, 2 log records');
    // The role loses INSERT (a grant script run against the wrong role): an import run by hand
    // has no write-ahead log to keep its rows for later, and an operator waiting on it.
    const grants = new pg.Client({ connectionString: db });
    await grants.connect();
    try {
      await grants.query(`REVOKE INSERT ON ALL TABLES IN SCHEMA tracehouse FROM ${role}`);
    } finally {
      await grants.end();
    }
    const t0 = Date.now();
    const again = runCli(['import', FIXTURE, ...pgFlags, '--quiet']);
    expect(again.status, again.stderr).toBe(1);
    expect(again.stderr).toContain('permission denied');
    expect(Date.now() - t0).toBeLessThan(60_000);
  }, 180_000);

  it('with --quiet prints nothing while the write queue is full: import and copy wait for room, they refuse nothing', () => {
    // A restore reads the file faster than the store writes: the queue fills and the command
    // waits, as designed. It warned "refusing requests: the write queue is full" on stderr,
    // though nothing was refused, and --quiet promises silence when nothing went wrong.
    const dir = tempDir();
    const lines: string[] = [];
    for (let i = 0; i < 30; i++) {
      const spans = Array.from({ length: 200 }, (_, j) => ({
        traceId: (i * 1000 + j + 1).toString(16).padStart(32, '0'),
        spanId: (j + 1).toString(16).padStart(16, '0'),
        name: 'op ' + 'x'.repeat(200),
        startTimeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i * 1000 + j)),
        endTimeUnixNano: String(1_700_000_000_000_000_100n + BigInt(i * 1000 + j)),
      }));
      lines.push(JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'queue' } }] }, scopeSpans: [{ spans }] }] }));
    }
    const file = join(dir, 'many.jsonl');
    writeFileSync(file, lines.join('\n') + '\n');
    const a = join(dir, 'a.db');
    const imp = run(['import', file, '--quiet', `--storage.sqlite.path=${a}`, '--workers.threads=1', '--writer.maxQueueBytes=1048576']);
    expect(imp.stderr).toBe('');
    expect(imp.status).toBe(0);
    expect(count(a, 'spans')).toBe(6000);
    const other = join(dir, 'other.yaml');
    writeFileSync(other, `storage:\n  backend: sqlite\n  sqlite:\n    path: ${join(dir, 'copy.db')}\nworkers:\n  threads: 1\nwriter:\n  maxQueueBytes: 1048576\n`);
    const copy = run(['copy', '--to-config', other, '--checkpoint', join(dir, 'cp.json'), '--quiet', `--storage.sqlite.path=${a}`]);
    expect(copy.stderr).toBe('');
    expect(copy.status).toBe(0);
    expect(count(join(dir, 'copy.db'), 'spans')).toBe(6000);
  }, 60_000);

  it('with --quiet prints nothing when nothing went wrong, into and from PostgreSQL and ClickHouse (no info log lines)', async () => {
    // A nightly `export --quiet` from cron mails whatever it prints: ClickHouse's "backend started"
    // and the first import's "migrations applied" came on every run that went well.
    const dir = tempDir();
    const file = join(dir, 'traces.jsonl');
    writeFileSync(file, readFileSync(FIXTURE, 'utf8').split('\n')[0] + '\n');
    const stores = [
      ['--storage.backend=postgres', `--storage.postgres.url=${await createTestDatabase('transfer_quiet')}`],
      ['--storage.backend=clickhouse', `--storage.clickhouse.urls=chdb://${join(dir, 'ch')}?database=quiet`],
    ];
    for (const store of stores) {
      for (const args of [['import', file], ['export', '--out', join(dir, 'backup.jsonl')]]) {
        const r = run([...args, '--quiet', ...store]);
        expect(r.stderr, `${args[0]} ${store[0]}`).toBe('');
        expect(r.status).toBe(0);
      }
      expect(readFileSync(join(dir, 'backup.jsonl'), 'utf8')).toContain('"resourceSpans"');
    }
  }, 60_000);

  it('fails an import at once, not after retrying every batch for minutes, when its SQLite file may not be written', () => {
    const db = join(tempDir(), 'ro.db');
    expect(run(['import', FIXTURE, `--storage.sqlite.path=${db}`, '--quiet']).stderr).toContain('import: 2 spans, 2 log records');
    // The file made read-only (its mode; as root, which the mode does not stop, immutable).
    if (process.getuid?.() === 0) {
      expect(spawnSync('chattr', ['+i', db]).status, 'chattr +i (root: the file mode does not stop root)').toBe(0);
      onTestFinished(() => void spawnSync('chattr', ['-i', db]));
    } else chmodSync(db, 0o444);
    const t0 = Date.now();
    const again = run(['import', FIXTURE, `--storage.sqlite.path=${db}`, '--writer.retryMaxElapsedMs=60000', '--quiet']);
    expect(again.status, again.stderr).toBe(1);
    expect(again.stderr).toContain('readonly database');
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 120_000);

  it('refusing a PostgreSQL source it would have to migrate, advises nothing export ignores (it migrates nothing whatever autoMigrate says)', async () => {
    const url = await createTestDatabase('transfer_advice');
    const backup = join(tempDir(), 'backup.jsonl');
    for (const extra of [[], ['--storage.postgres.autoMigrate=true']]) {
      const r = runCli(['export', '--out', backup, '--storage.backend=postgres', `--storage.postgres.url=${url}`, '--storage.postgres.schema=tracehous', ...extra, '--quiet']);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toContain('has no migration applied');
      expect(r.stderr).toContain('tracehouse migrate');
      expect(r.stderr).not.toContain('autoMigrate=true');
    }
  }, 60_000);

  it('refuses to copy a store into itself named once by its path and once as a URI filename', () => {
    const dir = tempDir();
    const db = join(dir, 'a.db');
    expect(run(['import', FIXTURE, `--storage.sqlite.path=${db}`, '--quiet']).stderr).toContain('import: 2 spans, 2 log records');
    const self = join(dir, 'self.yaml');
    writeFileSync(self, `storage:\n  sqlite:\n    path: ${db}\n`);
    // The store opens file:DIR/a.db as DIR/a.db: the copy read its own writes, each log record
    // stored again (a store of many pages: never ending, as a plain path's self-copy would).
    for (const uri of [`file:${db}`, `file:${db}?cache=private`]) {
      const r = runCli(['copy', '--to-config', self, `--storage.sqlite.path=${uri}`, '--checkpoint', join(dir, 'cp.json'), '--quiet'], { cwd: dir });
      expect(r.stderr, uri).toContain('names the store being copied from');
      expect(r.status).toBe(2);
    }
    expect(count(db, 'logs')).toBe(2);
  });

  it('refuses to export from a chdb:// directory a running collector holds, saying to stop it, and writes no backup', async () => {
    const dir = tempDir();
    const chdb = `chdb://${join(dir, 'chdb')}`;
    const c = await spawnCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': chdb, 'delivery.walDir': join(dir, 'wal') }, 60_000);
    const out = join(dir, 'backup.jsonl');
    const r = runCli(['export', '--out', out, '--storage.backend=clickhouse', `--storage.clickhouse.urls=${chdb}`, '--quiet']);
    expect(r.stderr).toContain(`a chdb:// directory is opened by one process at a time: stop the collector running on ${join(dir, 'chdb')} first`);
    // Nothing to migrate was the matter.
    expect(r.stderr).not.toContain('migrates nothing');
    expect(r.status).toBe(1);
    expect(readdirSync(dir).filter((f) => f.includes('backup'))).toEqual([]);
    c.child.kill('SIGTERM');
  }, 120_000);

  it('refuses to import into a chdb:// directory a running collector holds, saying to stop it', async () => {
    const dir = tempDir();
    const chdb = `chdb://${join(dir, 'chdb')}`;
    const c = await spawnCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': chdb, 'delivery.walDir': join(dir, 'wal') }, 60_000);
    try {
      const r = runCli(['import', FIXTURE, '--storage.backend=clickhouse', `--storage.clickhouse.urls=${chdb}`, '--workers.threads=1', '--quiet']);
      expect(r.stderr).toContain(`a chdb:// directory is opened by one process at a time: stop the collector running on ${join(dir, 'chdb')} first`);
      expect(r.status).toBe(1);
    } finally {
      c.child.kill('SIGTERM');
    }
  }, 120_000);

  it('a second collector started on a chdb:// directory one holds stops naming the option and saying why', async () => {
    const dir = tempDir();
    const chdb = `chdb://${join(dir, 'chdb')}`;
    const c = await spawnCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': chdb, 'delivery.walDir': join(dir, 'wal') }, 60_000);
    try {
      const flags = ['--storage.backend=clickhouse', `--storage.clickhouse.urls=${chdb}`, `--delivery.walDir=${join(dir, 'wal2')}`];
      const listen = ['receiver.grpc', 'receiver.http', 'query', 'ops'].map((l) => `--${l}.listen=127.0.0.1:0`);
      const r = runCli(['start', ...flags, ...listen]);
      // The collector's own log (stdout) says why it did not start.
      expect(r.stdout).toContain(`storage.clickhouse.urls names ${chdb}`);
      expect(r.stdout).toContain(`stop the collector running on ${join(dir, 'chdb')} first`);
      expect(r.status).toBe(1);
    } finally {
      c.child.kill('SIGTERM');
    }
  }, 120_000);

  it('refuses a chdb:// URL naming a file, saying so rather than to stop a collector', () => {
    const dir = tempDir();
    // The SQLite file's path given as the chdb:// directory (a copied path).
    const file = join(dir, 'tracehouse.db');
    writeFileSync(file, 'not a directory');
    const r = runCli(['export', '--out', join(dir, 'backup.jsonl'), '--storage.backend=clickhouse', `--storage.clickhouse.urls=chdb://${file}`, '--quiet']);
    expect(r.stderr).not.toContain('stop the collector');
    expect(r.stderr).toContain(`${file} is a file, not a directory`);
    expect(r.status).toBe(1);
  });

  it('refuses a chdb:// directory that cannot be made without telling to stop a collector', () => {
    const dir = tempDir();
    // A path under a file (or on a read-only or foreign-owned disk): no collector holds it.
    const file = join(dir, 'tracehouse.db');
    writeFileSync(file, 'not a directory');
    const path = join(file, 'chdb');
    const r = runCli(['import', FIXTURE, '--storage.backend=clickhouse', `--storage.clickhouse.urls=chdb://${path}`, '--quiet']);
    expect(r.stderr).toContain(`storage.clickhouse.urls names chdb://${path}`);
    expect(r.stderr).not.toContain('stop the collector');
    expect(r.stderr).toContain(`${path} cannot be created`);
    expect(r.status).toBe(1);
  });

  it('answers bad flags naming the flag and the value', () => {
    const db = join(tempDir(), 'x.db');
    const self = join(tempDir(), 'self.yaml');
    writeFileSync(self, `storage:\n  sqlite:\n    path: ${db}\n`);
    const cases: [string[], string][] = [
      [['copy', '--to-config', self, `--storage.sqlite.path=${db}`], 'names the store being copied from'],
      [['export', '--out', 'x', '--signal', 'metrics', `--storage.sqlite.path=${db}`], '--signal "metrics"'],
      [['export', '--out', 'x', '--start', 'yesterday', `--storage.sqlite.path=${db}`], '--start "yesterday"'],
      // Unix seconds, read as nanoseconds, would export everything since 1970 without a word.
      [['export', '--out', 'x', '--start', '1767225600', `--storage.sqlite.path=${db}`], '--start "1767225600": as nanoseconds since the epoch'],
      [['copy', '--to-config', self, '--end=1767225600000', `--storage.sqlite.path=${db}`], '--end "1767225600000"'],
      [['export', `--storage.sqlite.path=${db}`], 'export needs --out'],
      [['import', `--storage.sqlite.path=${db}`], 'import needs at least one FILE'],
      [['import', 'nope.jsonl', `--storage.sqlite.path=${db}`], 'no such file "nope.jsonl"'],
      [['import', FIXTURE, '--on-error', 'ignore', `--storage.sqlite.path=${db}`], '--on-error "ignore"'],
      // A name no tokens file can hold: its rows no read could reach.
      [['import', FIXTURE, '--tenant', 'acme ', `--storage.sqlite.path=${db}`], '--tenant "acme ": expected 1 to 63 letters'],
      [['export', '--out', 'x', '--tenant', 'acme/prod', `--storage.sqlite.path=${db}`], '--tenant "acme/prod"'],
      [['copy', `--storage.sqlite.path=${db}`], 'copy needs --to-config'],
      [['export', '--out', 'x', '--writer.maxBatchRows=lots'], 'writer.maxBatchRows = "lots"'],
    ];
    for (const [args, message] of cases) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(message);
    }
  });

  it('export --out into a directory that is not there names the path given, not its hidden temporary file', () => {
    const dir = tempDir();
    const a = join(dir, 'a.db');
    run(['import', FIXTURE, '--quiet', `--storage.sqlite.path=${a}`, '--workers.threads=1']);
    const out = join(dir, 'missing', 'b.jsonl');
    const r = run(['export', '--out', out, `--storage.sqlite.path=${a}`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`--out ${JSON.stringify(out)}: directory ${JSON.stringify(join(dir, 'missing'))} does not exist`);
    expect(r.stderr).not.toContain('.partial-');
    // A path through a file: the system's reason, still naming the path given.
    const through = join(a, 'b.jsonl');
    const f = run(['export', '--out', through, `--storage.sqlite.path=${a}`]);
    expect(f.status).toBe(1);
    expect(f.stderr).toContain(`--out ${JSON.stringify(through)}: cannot create it: ENOTDIR: not a directory`);
    expect(f.stderr).not.toContain('.partial-');
    expect(readdirSync(dir).filter((n) => n.includes('.partial-'))).toEqual([]);
  });
});
