// The export, import and copy commands on the command line: their own flags beside the usual
// configuration (--config, --key=value flags, TRACEHOUSE_* env), parsed and checked here; a bad
// flag stops the command naming flag and value (exit 2).
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { sqliteFilePath, traceIndexPath } from '../common/sqlite-path.ts';
import { timeNs } from '../common/time.ts';
import { ConfigError, loadConfig, warnStrayEnv, type Config } from '../config/index.ts';
import { BOOL_KEYS, BOOLEAN_WORD, LIST_KEYS, OPTIONS } from '../config/options.ts';
import { JSON_DECODE_CHARGE } from '../pipeline/decode/common.ts';
import { oldSpaceOfThreads } from '../pipeline/pool.ts';
import { DEFAULT_TENANT, TENANT_NAME } from '../model/tenant.ts';
import type { Signal } from '../model/signal.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { parseEndpoints } from '../storage/clickhouse/endpoints.ts';
import { clickhouseOptions, createBackend, memoryOptions, postgresOptions, sqliteOptions, storeEndpoint } from '../storage/index.ts';
import { whenReachable } from '../storage/reach.ts';
import { createLogger, type Logger } from '../telemetry/logger.ts';
import { createMetrics, type Metrics } from '../telemetry/metrics.ts';
import { copyStore, exportStore, importFiles, type TransferFilters } from './commands.ts';
import { TransferSink } from './sink.ts';

export const TRANSFER_COMMANDS = ['export', 'import', 'copy'] as const;

/** Flags of the transfer commands (the rest are configuration options). */
const OWN_FLAGS = new Set(['tenant', 'out', 'signal', 'start', 'end', 'service', 'on-error', 'quiet', 'to-config', 'checkpoint', 'config']);
/** Own flags naming a file: an empty value is refused. */
const FILE_FLAGS = new Set(['out', 'to-config', 'checkpoint', 'config']);
const OPTION_KEYS: ReadonlySet<string> = new Set(OPTIONS.map((o) => o.key));
/** Flags that stand alone: the next word is theirs only when it reads as a boolean (as for start). */
const BOOLEAN_FLAGS = new Set(['quiet', ...BOOL_KEYS]);
/** The own flags each command takes: another is refused, not silently ignored. */
const FILTER_FLAGS = ['tenant', 'signal', 'start', 'end', 'service', 'quiet', 'config'];
const COMMAND_FLAGS: Record<string, ReadonlySet<string>> = {
  export: new Set([...FILTER_FLAGS, 'out']),
  import: new Set(['tenant', 'on-error', 'quiet', 'config']),
  copy: new Set([...FILTER_FLAGS, 'to-config', 'checkpoint']),
};

export const TRANSFER_HELP = `Backup, restore and migration (OTLP/JSON lines, the OpenTelemetry Collector's file format):
  tracehouse export --out FILE [--tenant T] [--signal traces|logs|all] [--start T] [--end T] [--service S] [--quiet]
      FILE '-' is stdout; a .gz or .zst suffix compresses. T: RFC 3339 time with its offset, or Unix nanoseconds (not seconds).
  tracehouse import FILE... [--tenant T] [--on-error skip|stop] [--quiet]
      JSON lines or length-delimited protobuf, plain, gzip or zstd ('-' is stdin).
  tracehouse copy --to-config OTHER.yaml [--checkpoint FILE] [filters as export] [--quiet]
      Streams into the store OTHER.yaml configures; rerun after an interruption to resume.
  The configured store (--config, flags, env) is the source of export and copy, the target of import.`;

/** Thrown for a bad transfer flag; the message names flag and value. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface TransferArgs {
  command: (typeof TRANSFER_COMMANDS)[number];
  files: string[];
  own: Record<string, string>;
  configFlags: Record<string, string>;
}

/** Splits argv (command first) into files, the command's own flags and configuration flags. */
export function parseTransferArgs(argv: readonly string[]): TransferArgs {
  const command = argv[0] as TransferArgs['command'];
  const files: string[] = [];
  const own: Record<string, string> = {};
  const configFlags: Record<string, string> = {};
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      files.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (BOOLEAN_FLAGS.has(name)) {
      const next = argv[i + 1];
      if (next !== undefined && BOOLEAN_WORD.test(next)) {
        value = next;
        i++;
      } else value = 'true';
    } else {
      const next = argv[i + 1];
      // `--out --quiet` would otherwise write to a file named "--quiet". A name that is neither
      // the command's flag nor an option (`--quite` at the end) is a misspelling, not a flag
      // short of its value: say so, as start does.
      if (next === undefined || next.startsWith('--')) {
        throw new UsageError(OWN_FLAGS.has(name) || OPTION_KEYS.has(name) ? `--${name} needs a value` : `unknown option '--${name}' (see --help)`);
      }
      value = next;
      i++;
    }
    // `--config="$CONFIG"` with the variable unset would read no file; an empty --out or
    // --checkpoint would fail only after the work, leaving its temporary file behind.
    if (FILE_FLAGS.has(name) && value === '') throw new UsageError(`--${name} needs a value`);
    if (OWN_FLAGS.has(name)) {
      if (COMMAND_FLAGS[command] && !COMMAND_FLAGS[command].has(name)) throw new UsageError(`--${name}: ${command} does not take it (see --help)`);
      own[name] = value;
      // A list option given again adds to it, as for start (--storage.clickhouse.urls per shard).
    } else if (LIST_KEYS.has(name) && configFlags[name] !== undefined) configFlags[name] += `,${value}`;
    else configFlags[name] = value;
  }
  if (files.length > 0 && command !== 'import') throw new UsageError(`${command} takes no FILE argument (${JSON.stringify(files[0])}); ${command === 'export' ? 'use --out FILE' : 'see --help'}`);
  return { command, files, own, configFlags };
}

/**
 * A time flag: RFC 3339 or an integer of Unix nanoseconds, read as the read API reads them (a
 * number before 2000 as nanoseconds, seconds given by mistake, refused: common/time.ts).
 */
export function parseTime(flag: string, v: string): bigint {
  const t = timeNs(v);
  if ('error' in t) throw new UsageError(`--${flag} ${JSON.stringify(v)}: ${t.error}`);
  return t.ns;
}

/** --tenant: whose data a transfer reads or writes (the default tenant unless given). */
function tenantFlag(own: Record<string, string>): string {
  const t = own['tenant'] ?? DEFAULT_TENANT;
  if (t === '' || t === 'true') throw new UsageError('--tenant needs a tenant name');
  // A name no tokens file can hold would store rows no read can reach.
  if (!TENANT_NAME.test(t)) throw new UsageError(`--tenant ${JSON.stringify(t)}: expected 1 to 63 letters, digits, '_', '.' or '-' starting with a letter or digit, as in the tokens file`);
  return t;
}

/** --signal, --tenant, --start, --end, --service. */
export function parseFilters(own: Record<string, string>): TransferFilters {
  const s = own['signal'] ?? 'all';
  const signals: Signal[] = s === 'all' ? ['traces', 'logs'] : s === 'traces' || s === 'logs' ? [s] : [];
  if (signals.length === 0) throw new UsageError(`--signal ${JSON.stringify(s)}: use traces, logs or all`);
  const f: TransferFilters = { signals, tenant: tenantFlag(own) };
  if (own['service'] !== undefined) f.service = own['service'];
  if (own['start'] !== undefined) f.startNano = parseTime('start', own['start']);
  if (own['end'] !== undefined) f.endNano = parseTime('end', own['end']);
  if (f.startNano !== undefined && f.endNano !== undefined && f.startNano > f.endNano) throw new UsageError(`--start ${own['start']} is after --end ${own['end']}`);
  return f;
}

function quietFlag(own: Record<string, string>): boolean {
  const q = own['quiet'] ?? 'false';
  if (q !== 'true' && q !== 'false') throw new UsageError(`--quiet=${JSON.stringify(q)}: use --quiet, --quiet=true or --quiet=false`);
  return q === 'true';
}

/** The source store's identity for a copy checkpoint: a hash of its settings, so no password lands in the file. */
function sourceId(c: Config): string {
  const b = c['storage.backend'];
  const o = b === 'sqlite' ? sqliteOptions(c) : b === 'postgres' ? postgresOptions(c) : b === 'clickhouse' ? clickhouseOptions(c) : memoryOptions(c);
  const where = 'path' in o ? o.path : 'url' in o ? `${o.url}/${o.schema}` : 'urls' in o ? `${o.urls.join(',')}/${o.database}` : '';
  return `${b}:${createHash('sha256').update(where).digest('hex').slice(0, 16)}`;
}

/** A file's path however it is spelled (./a.db, a.db, a symlink); as given, made absolute, when it is not there. */
function realPath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

/** Whether two configurations name one store: a SQLite file however its path is spelled (./a.db, a.db, a symlink, file:a.db). */
function sameStore(a: Config, b: Config): boolean {
  if (a['storage.backend'] === 'sqlite' && b['storage.backend'] === 'sqlite') {
    // A URI filename (file:/dir/th.db?cache=private) is the file its path names.
    return realPath(sqliteFilePath(a['storage.sqlite.path'])) === realPath(sqliteFilePath(b['storage.sqlite.path']));
  }
  return sourceId(a) === sourceId(b);
}

/**
 * export's --out naming one of the SQLite store's own files (a slip of the shell: the store's path
 * where the backup's goes): the finished backup would be renamed over the database, the store lost.
 */
function refuseOutOverStore(config: Config, out: string): void {
  const path = config['storage.sqlite.path'];
  if (out === '-' || config['storage.backend'] !== 'sqlite' || path === ':memory:') return;
  // The database, its trace index beside it, and SQLite's files of each.
  const own = [path, traceIndexPath(path)].map(sqliteFilePath).flatMap((f) => [f, `${f}-wal`, `${f}-shm`]);
  const target = realPath(out);
  const hit = own.find((f) => realPath(f) === target);
  if (hit !== undefined) throw new UsageError(`export: --out ${JSON.stringify(out)} is the store's own file ${JSON.stringify(hit)} (storage.sqlite.path = ${JSON.stringify(path)}); the backup would replace it: give another file`);
}

/**
 * export and copy read the configured store: a SQLite file that is not there is a mistyped path or
 * another working directory (the default ./data/tracehouse.db from a cron job's), not an empty
 * store. Opening it would create it and write an empty backup, exit 0.
 */
function sourceExists(config: Config, command: string): void {
  refuseMemoryStore(config, `${command}: storage.backend = "memory"`);
  // The in-process ClickHouse engine creates its directory as SQLite creates its file.
  if (config['storage.backend'] === 'clickhouse') {
    const o = clickhouseOptions(config);
    for (const e of parseEndpoints(o.urls, o)) {
      if (e.kind === 'chdb' && !existsSync(e.path)) throw new UsageError(`${command}: storage.clickhouse.urls = ${JSON.stringify(e.display)}: no such directory (from ${process.cwd()}); ${command} reads an existing store`);
    }
    return;
  }
  const path = config['storage.sqlite.path'];
  // A URI filename (file:/dir/th.db?mode=rwc) is the file its path names.
  if (config['storage.backend'] !== 'sqlite' || existsSync(sqliteFilePath(path))) return;
  throw new UsageError(`${command}: storage.sqlite.path = ${JSON.stringify(path)}: no such file (from ${process.cwd()}); ${command} reads an existing store`);
}

/**
 * A transfer command's store runs no retention: a store's start runs a pass, and a command line
 * naming the store alone has the default retention (PostgreSQL's 7 days), which deleted a
 * keep-everything store's older rows, before an export read them (an empty backup, exit 0) or as
 * an import or copy into it began. Retention is the collector's to run.
 */
function withoutRetention(config: Config): Config {
  return { ...config, 'storage.postgres.retentionDays': 0, 'storage.sqlite.retentionDays': 0 };
}

/**
 * The store import or copy writes into: migrated as the collector would, and no retention run nor
 * changed (ClickHouse's existing tables keep their TTL whatever this command's ttlDays says).
 */
function createTarget(config: Config, logger: Logger, metrics: Metrics): Promise<StorageBackend> {
  return createBackend(withoutRetention(config), { logger, metrics, keepRetention: true });
}

/**
 * copy's target store, its settings refused (a URL pg cannot read, an SQLite path no thread can
 * share) naming the --to-config file: the key and value alone sent the operator to the source's.
 */
async function createCopyTarget(config: Config, file: string, logger: Logger, metrics: Metrics): Promise<StorageBackend> {
  try {
    return await createTarget(config, logger, metrics);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(err.message.replace(/^(invalid configuration: )?/, `$1the target (--to-config ${file}): `), { cause: err });
  }
}

/**
 * Starts a store (run: its start, or the sink's that starts it) as start-up does: a PostgreSQL or
 * ClickHouse server not answering yet is waited for storage.startWaitMs, and the error then names
 * the key and value to correct (a bare "connect ECONNREFUSED 10.0.0.7:5432" named neither) and,
 * given `which`, which of copy's two stores it is.
 */
async function startStore(config: Config, backend: StorageBackend, logger: Logger, run: () => Promise<void>, which?: string): Promise<void> {
  try {
    await whenReachable(run, backend, { waitMs: config['storage.startWaitMs'], endpoint: storeEndpoint(config), logger });
  } catch (err) {
    if (which === undefined) throw err;
    throw new Error(`${which}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The store export and copy read, started without migrating it (nor retention: withoutRetention):
 * a mistyped PostgreSQL schema or ClickHouse database would be created empty (and an empty backup
 * written, exit 0), and a store of an older version would be migrated under the collector still
 * running on it.
 */
async function openSource(config: Config, command: string, logger: Logger, metrics: Metrics): Promise<StorageBackend> {
  sourceExists(config, command);
  const backend = await createBackend({ ...withoutRetention(config), 'storage.postgres.autoMigrate': false, 'storage.clickhouse.autoMigrate': false }, { logger, metrics, readOnly: true });
  try {
    await startStore(config, backend, logger, () => backend.start(), command === 'copy' ? 'the source' : undefined);
  } catch (err) {
    await backend.shutdown().catch(() => undefined);
    // The store's refusal offers autoMigrate, which this command overrides: only migrate helps.
    const message = (err as Error).message.replace(/ or set storage\.(?:postgres|clickhouse)\.autoMigrate=true/, '');
    // Said of a schema to migrate, not of a store that would not open or answer.
    throw new Error(message.includes('tracehouse migrate') ? `${command} reads an existing store and migrates nothing: ${message}` : message, { cause: err });
  }
  return backend;
}

/**
 * Stored items the source's reads left out because they no longer decode (a SQLite file's bit rot
 * or hand edit: the store logs each once and counts it as dropped, reason unreadable). What export
 * wrote or copy sent lacks them: said on stderr, and the command exits 1, so a script running a
 * backup hears that it is incomplete. Returns whether there were any.
 */
async function reportUnreadable(metrics: Metrics, command: string): Promise<boolean> {
  const lost = { traces: 0, logs: 0 };
  for (const v of (await metrics.droppedRows.get()).values) {
    if (v.labels['reason'] === 'unreadable' && (v.labels['signal'] === 'traces' || v.labels['signal'] === 'logs')) lost[v.labels['signal']] += v.value;
  }
  if (lost.traces + lost.logs === 0) return false;
  const what = [lost.traces > 0 ? `${lost.traces} stored spans` : '', lost.logs > 0 ? `${lost.logs} stored log records` : ''].filter(Boolean).join(' and ');
  process.stderr.write(`tracehouse ${command}: ${what} could not be read (malformed in the store, see the log above) and are not in the ${command === 'export' ? 'backup' : 'target'}\n`);
  return true;
}

/**
 * A transfer command's memory store is its own, not a collector's (whose rows are in the
 * collector's process): new and empty to read from, gone when the command ends to write into.
 * `what` says which setting names it.
 */
function refuseMemoryStore(config: Config, what: string): void {
  if (config['storage.backend'] !== 'memory') return;
  throw new UsageError(`${what}: the memory store here is this command's own, new and empty to read from and gone when the command ends to write into (a collector's rows are in the collector's process); use a SQLite file, PostgreSQL or ClickHouse, or send the rows to the collector over OTLP`);
}

/**
 * How export and copy read and write a page, from this process's heap (its old generation, the
 * same as its decode workers'): lines no longer than what the importing collector takes
 * (receiver.maxMessageBytes) and what a decode worker with this heap decodes as OTLP/JSON (an
 * eighth of it), so that the backup of a store filled with these settings restores with them (a
 * page of 1,000 rows of 20 KiB, one 20 MiB line, was refused whole by a 128 MiB heap's workers);
 * and pages of at most a sixteenth of it in stored bytes, since a page's rows and then its lines
 * are on the heap at once (1,000 log records of 100 KB, as a collector with a 96 MiB heap stores
 * them, ran export with the same heap out of memory).
 */
async function pageLimits(config: Config): Promise<{ maxLineBytes: number; pageBytes: number }> {
  const heap = await oldSpaceOfThreads();
  return { maxLineBytes: Math.min(config['receiver.maxMessageBytes'], Math.floor(heap / JSON_DECODE_CHARGE)), pageBytes: Math.floor(heap / 16) };
}

function loadFrom(file: string | undefined, flags: Record<string, string>, env: NodeJS.ProcessEnv, fileFrom?: string): Config {
  return loadConfig({ flags, env, ...(file ? { file } : {}), ...(file && fileFrom ? { fileFrom } : {}) });
}

/** Runs export, import or copy; returns the exit code (0 done, 1 done with problems or failed, 2 usage). */
export async function runTransferCommand(argv: readonly string[]): Promise<number> {
  let args: TransferArgs;
  let config: Config;
  try {
    args = parseTransferArgs(argv);
    const file = args.own['config'] ?? process.env['TRACEHOUSE_CONFIG'];
    config = loadFrom(file, args.configFlags, process.env, args.own['config'] === undefined ? 'env TRACEHOUSE_CONFIG' : undefined);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`tracehouse: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  // --quiet promises silence when nothing went wrong: the store's info lines ("clickhouse backend
  // started" on every run, "migrations applied") are left out, warnings and errors kept. A level
  // set other than the default info still wins.
  const quietLog = args.own['quiet'] === 'true' && config['log.level'] === 'info';
  const logger = createLogger(quietLog ? 'warn' : config['log.level'], 2);
  warnStrayEnv(logger, process.env);
  try {
    const quiet = quietFlag(args.own);
    if (args.command === 'export') {
      const out = args.own['out'];
      if (out === undefined) throw new UsageError('export needs --out FILE (or --out - for stdout)');
      refuseOutOverStore(config, out);
      const filters = parseFilters(args.own);
      const sourceMetrics = createMetrics();
      const backend = await openSource(config, 'export', logger, sourceMetrics);
      try {
        await exportStore(backend, { ...filters, out, quiet, ...(await pageLimits(config)) });
      } finally {
        await backend.shutdown();
      }
      return (await reportUnreadable(sourceMetrics, 'export')) ? 1 : 0;
    }
    if (args.command === 'import') {
      if (args.files.length === 0) throw new UsageError('import needs at least one FILE (or - for stdin)');
      const onError = args.own['on-error'] ?? 'skip';
      if (onError !== 'skip' && onError !== 'stop') throw new UsageError(`--on-error ${JSON.stringify(onError)}: use skip or stop`);
      for (const f of args.files) if (f !== '-' && !existsSync(f)) throw new UsageError(`import: no such file ${JSON.stringify(f)}`);
      refuseMemoryStore(config, 'import: storage.backend = "memory"');
      const metrics = createMetrics();
      const sink = new TransferSink(config, await createTarget(config, logger, metrics), metrics, logger, tenantFlag(args.own));
      await startStore(config, sink.backend, logger, () => sink.start());
      try {
        const r = await importFiles(sink, { files: args.files, onError, quiet, maxMessageBytes: config['receiver.maxMessageBytes'] });
        return r.problems > 0 ? 1 : 0;
      } finally {
        await sink.shutdown();
      }
    }
    // copy
    const target = args.own['to-config'];
    if (target === undefined) throw new UsageError('copy needs --to-config OTHER.yaml (the store to copy into)');
    const filters = parseFilters(args.own);
    // The target is configured by its file alone: the environment configures the source.
    const targetConfig = loadFrom(target, {}, {});
    // Copying a store into itself would never end: every page of log records written would be
    // new rows ahead of the scan.
    if (sameStore(config, targetConfig)) throw new UsageError(`copy: --to-config ${target} names the store being copied from`);
    refuseMemoryStore(targetConfig, `copy: --to-config ${target} names the memory store`);
    const checkpoint = args.own['checkpoint'] ?? 'tracehouse-copy.checkpoint.json';
    const sourceMetrics = createMetrics();
    const source = await openSource(config, 'copy', logger, sourceMetrics);
    try {
      const metrics = createMetrics();
      const sink = new TransferSink(targetConfig, await createCopyTarget(targetConfig, target, logger, metrics), metrics, logger, filters.tenant);
      await startStore(targetConfig, sink.backend, logger, () => sink.start(), `the target (--to-config ${target})`);
      try {
        const r = await copyStore(source, sink, { ...filters, checkpoint, quiet, source: sourceId(config), target: sourceId(targetConfig), ...(await pageLimits(targetConfig)) });
        const unreadable = await reportUnreadable(sourceMetrics, 'copy');
        return r.problems > 0 || r.stopped || unreadable ? 1 : 0;
      } finally {
        await sink.shutdown();
      }
    } finally {
      await source.shutdown();
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`tracehouse: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`tracehouse ${args.command}: ${(err as Error).message}\n`);
    return 1;
  }
}
