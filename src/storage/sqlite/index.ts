// The embedded default: one SQLite file (node:sqlite, WAL). What arrived is kept: each span and
// log record's own protobuf bytes, its resource and scope once per request group, spans as runs
// of a trace's span records (one row a run) and log records as a row each, beside the columns that
// queries filter on, so reads decode exactly what was received without a column per OTLP field
// (rows of older versions, one per span, some with a JSON document, are read as well). Writes run
// on a write thread and reads on read threads (read-pool.ts), each with its own connection:
// node:sqlite calls are synchronous and must never stall the main event loop.
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import type { DatabaseSync } from 'node:sqlite';
import { ConfigError } from '../../config/index.ts';
import type { LogRow, SpanRow } from '../../model/rows.ts';
import type { BackendDeps, DependencyLink, DependencyQuery, LogQuery, LogSearch, Migrated, Operation, OperationQuery, ScanPage, ScanQuery, StorageBackend, StorageStats, StoreStats, TraceQuery, TraceRead, TraceSummary, WriteBatch, WriteResult } from '../backend.ts';
import { logSearch } from '../query-helpers.ts';
import { ReadPool } from './read-pool.ts';
import type { tableStats, Unreadable } from './reads.ts';
import { sqliteFilePath, traceIndexPath } from '../../common/sqlite-path.ts';
import { Outage } from '../../telemetry/logger.ts';
import { OpenedFile, openDatabase } from './store.ts';
import type { WriteAnswer, WriteReply, WriteRequest } from './write-thread.ts';

/** Where the SQLite store keeps its file, how long it keeps data, and how it reads. */
export interface SqliteOptions {
  path: string;
  /** Delete rows older than this many days (0: keep). */
  retentionDays: number;
  /** Read threads, each with its own read-only connection. */
  readThreads: number;
  /** Time budget of one read (0: none). */
  queryTimeoutMs: number;
  /** Keep the span runs' filters of attribute terms and names (attribute and operation searches pass over runs without a match), at about twice the store's write CPU per span. */
  attributeIndex: boolean;
  /** Page cache of the write connection, MiB. */
  cacheMiB: number;
  /** WAL bytes between the write connection's checkpoints, MiB. */
  checkpointMiB: number;
}

/** Unreadable items remembered so that each is counted once (index.ts, SqliteBackend.unreadable). */
const UNREADABLE_KEYS_KEPT = 100_000;
/** The write thread's name, which Node gives its OS thread too (at most 15 characters): top -H, perf and the bench's split by thread tell it from the decode workers. */
const WRITE_THREAD_NAME = 'sqlite-write';
/** Retention passes: one at start, then hourly; a failed pass is tried again sooner. */
const RETENTION_INTERVAL_MS = 3_600_000;
const RETENTION_RETRY_MS = 60_000;

/** SQLite's result codes of a path that names no store it can open: SQLITE_CANTOPEN, SQLITE_NOTADB. */
const UNOPENABLE_SQLITE = new Set([14, 26]);
/** SQLite's result code of a full disk (SQLITE_FULL). */
const SQLITE_FULL = 13;
/** SQLite's result code of a damaged file (SQLITE_CORRUPT): pages missing or not what they should be. */
const SQLITE_CORRUPT = 11;
/** File system errors of making the store's directory that come of the path itself. */
const UNOPENABLE_FS = new Set(['ENOTDIR', 'EISDIR', 'EEXIST', 'EACCES', 'EPERM', 'EROFS', 'ENAMETOOLONG']);

/**
 * Opens the store's file; a path that cannot be one (a directory, a file under a file, a file
 * that is no database, no permission) is refused naming the option and the path, which SQLite's
 * own words ("unable to open database file") name neither of.
 */
function openStore(path: string, attributeIndex: boolean): DatabaseSync {
  try {
    return openDatabase(path, { attributeIndex });
  } catch (err) {
    const e = err as { errcode?: unknown; code?: unknown; message: string };
    if (UNOPENABLE_SQLITE.has(e.errcode as number) || UNOPENABLE_FS.has(e.code as string)) {
      throw new ConfigError(`invalid configuration: storage.sqlite.path = ${JSON.stringify(path)}: cannot open the SQLite store: ${e.message}`, { cause: err });
    }
    // A full disk is no fault of the setting, but SQLite's "database or disk is full" names no file.
    if (e.errcode === SQLITE_FULL || e.code === 'ENOSPC') throw new Error(`storage.sqlite.path = ${JSON.stringify(path)}: cannot open the SQLite store: ${e.message}`, { cause: err });
    // A file cut short or half written (a cp of it taken while a checkpoint wrote it): SQLite's
    // "database disk image is malformed" names neither the option nor the file.
    if (((e.errcode as number) & 0xff) === SQLITE_CORRUPT) {
      throw new Error(
        `storage.sqlite.path = ${JSON.stringify(path)}: cannot open the SQLite store: ${e.message} (the file is damaged: put back a copy taken with SQLite's backup, or move it away to start a new store; sqlite3 FILE ".recover" may save its rows; a damaged -traces file beside it may be deleted instead: it is made anew)`,
        { cause: err },
      );
    }
    throw err;
  }
}

class SqliteBackend implements StorageBackend, StoreStats {
  readonly name = 'sqlite';
  /** The write thread gets a copy of each chunk (request). */
  readonly copiesChunks = true;
  readonly encoder = { name: 'otlp', options: {} } as const;
  private db: DatabaseSync | undefined;
  /** The store's file as opened: health fails once storage.sqlite.path names it no more. */
  private openedFile: OpenedFile | undefined;
  private readPool: ReadPool | undefined;
  private thread: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, (reply: WriteAnswer) => void>();
  private retentionTimer: NodeJS.Timeout | undefined;
  /** Whether retention passes are scheduled: from start to shutdown. */
  private retaining = false;
  private readonly path: string;
  private readonly retentionDays: number;
  private readonly readThreads: number;
  private readonly timeoutMs: number;
  private readonly deps: BackendDeps;
  private readonly attributeIndex: boolean;
  private readonly cacheMiB: number;
  private readonly checkpointMiB: number;

  constructor(options: SqliteOptions, deps: BackendDeps) {
    this.path = options.path;
    this.retentionDays = options.retentionDays;
    this.readThreads = options.readThreads;
    this.timeoutMs = options.queryTimeoutMs;
    this.attributeIndex = options.attributeIndex;
    this.cacheMiB = options.cacheMiB;
    this.checkpointMiB = options.checkpointMiB;
    this.deps = deps;
  }

  async start(): Promise<void> {
    if (this.db) return;
    refuseUnsharedPath(this.path);
    // The schema exists before the other connections open; this one then serves health checks only.
    this.db = openStore(this.path, this.attributeIndex);
    this.openedFile = new OpenedFile(this.db, this.path);
    this.readPool = new ReadPool({ path: this.path, threads: this.readThreads, timeoutMs: this.timeoutMs, logger: this.deps.logger, onUnreadable: (items) => this.unreadable(items) });
    // The read threads open the database while start-up goes on: the first read finds one ready.
    this.readPool.start();
    this.retaining = this.retentionDays > 0;
    if (this.retaining) this.applyRetention();
  }

  /**
   * `tracehouse migrate`: brings a file of an earlier version up to date (the upgrades a start runs
   * when it opens the file: some take minutes on a large file, such as filling the runs' attribute
   * filters) and closes it, so a collector started after it opens at once. Creates no file. The
   * file keeps no version to tell whether an upgrade was needed: its open is counted as applied.
   */
  async migrate(): Promise<Migrated> {
    refuseUnsharedPath(this.path);
    if (!existsSync(sqliteFilePath(this.path))) {
      this.deps.logger.info({ path: this.path }, 'no sqlite file yet: the collector creates it at its first start');
      return 'no_store';
    }
    openStore(this.path, this.attributeIndex).close();
    return 'applied';
  }

  /** Stored items reads found malformed, by key (reads.ts, Unreadable): each is counted and logged once, however many reads meet it. */
  private readonly unreadableSeen = new Set<string>();

  /**
   * Counts the items no read can return as dropped (reason unreadable) and logs each stored place
   * once. The keys are few (a damaged file, not a damaged stream) and stay for the process's life:
   * past UNREADABLE_KEYS_KEPT they are no longer kept, and what is met again is counted again.
   */
  private unreadable(items: readonly Unreadable[]): void {
    for (const u of items) {
      if (this.unreadableSeen.has(u.key)) continue;
      if (this.unreadableSeen.size >= UNREADABLE_KEYS_KEPT) this.unreadableSeen.clear();
      this.unreadableSeen.add(u.key);
      this.deps.metrics.droppedRows.inc({ backend: this.name, signal: u.signal, reason: 'unreadable' }, u.lost);
      this.deps.logger.error(
        { path: this.path, stored: u.key, lost: u.lost, err: u.message },
        'a stored item in the sqlite file is malformed: reads leave it out and return the rest',
      );
    }
  }

  /** Write threads stopped (or not started) in a row since one last answered. */
  private readonly threadFailures = new Outage();

  /** The write thread, started on first use and again after it dies. */
  private writeThread(): Worker {
    if (this.thread) return this.thread;
    const thread = new Worker(new URL('./write-thread.ts', import.meta.url), { name: WRITE_THREAD_NAME, workerData: { path: this.path, attributeIndex: this.attributeIndex, cacheMiB: this.cacheMiB, checkpointMiB: this.checkpointMiB } });
    const fail = (err: Error) => {
      if (this.thread !== thread) return;
      this.thread = undefined;
      // Each write starts a new thread: one that cannot start (the open-files limit: "Worker
      // initialization failure: EMFILE") fails at every retry, so the first is logged and the
      // count once a thread answers again.
      if (this.threadFailures.failed()) this.deps.logger.error({ err: err.message }, 'sqlite write thread stopped; writes will be retried on a new one (logged once until one answers)');
      for (const [id, resolve] of this.pending) resolve({ id, result: { kind: 'retryable', message: err.message } });
      this.pending.clear();
    };
    thread.on('message', (reply: WriteReply) => {
      if ('walHeld' in reply) {
        const { file, bytes, released } = reply.walHeld;
        if (!released) {
          this.deps.logger.warn(
            { path: this.path, file, bytes },
            'sqlite -wal file past its limit: a read transaction held open on the file (another process: a sqlite3 session, a dashboard, a backup; or a search by this collector, which runs up to query.timeoutMs) keeps the file from being reset, and it grows until that read ends',
          );
        } else {
          this.deps.logger.info({ path: this.path, file }, 'sqlite -wal file reset again: the read that held it ended');
        }
        return;
      }
      const failedThreads = this.threadFailures.ended();
      if (failedThreads > 0) this.deps.logger.info({ failedThreads }, 'sqlite write thread answering again');
      const resolve = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      resolve?.(reply);
    });
    thread.on('error', fail);
    thread.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.thread = thread;
    return thread;
  }

  private request(req: WriteRequest): Promise<WriteAnswer> {
    return new Promise((resolve) => {
      this.pending.set(req.id, resolve);
      // Chunks are copied, not transferred: the writer keeps them to retry a failed batch.
      this.writeThread().postMessage(req);
    });
  }

  /** One retention pass now, and the next in an hour, or in a minute after a pass that failed. */
  private applyRetention(): void {
    void this.request({ id: this.nextId++, op: 'retention', retentionDays: this.retentionDays }).then((reply) => {
      if (!this.retaining) return;
      if ('deleted' in reply) {
        if (reply.deleted.spans + reply.deleted.logs > 0) this.deps.logger.info({ ...reply.deleted, retentionDays: this.retentionDays }, 'sqlite retention deleted old rows');
      } else {
        this.deps.logger.error({ err: reply.result.message, retentionDays: this.retentionDays, retryInMs: RETENTION_RETRY_MS }, 'sqlite retention failed: old rows stay until a pass succeeds');
      }
      this.retentionTimer = setTimeout(() => this.applyRetention(), 'deleted' in reply ? RETENTION_INTERVAL_MS : RETENTION_RETRY_MS).unref();
    });
  }

  private open(): DatabaseSync {
    if (!this.db) throw new Error('sqlite backend is not started');
    return this.db;
  }

  /** Writes in flight by batch id: a retry of a write that timed out waits for that write instead of inserting again. */
  private readonly inFlight = new Map<string, Promise<WriteResult>>();

  write(batch: WriteBatch): Promise<WriteResult> {
    this.open();
    const op = batch.signal;
    const key = `${op}/${batch.batchId}`;
    let p = this.inFlight.get(key);
    if (!p) {
      p = this.request({ id: this.nextId++, op, chunks: batch.chunks, batchId: batch.batchId, tenant: batch.tenant }).then((reply): WriteResult => {
        if (!('result' in reply)) return { kind: 'permanent', error: new Error('unexpected reply from the sqlite write thread') };
        const { kind, message, denied } = reply.result;
        if (kind === 'retryable' && denied) return { kind, error: new Error(message ?? 'sqlite write failed'), denied };
        return kind === 'success' ? { kind } : { kind, error: new Error(message ?? 'sqlite write failed') };
      });
      this.inFlight.set(key, p);
      void p.finally(() => this.inFlight.delete(key));
    }
    return p;
  }

  private reads(): ReadPool {
    if (!this.readPool) throw new Error('sqlite backend is not started');
    return this.readPool;
  }

  getTrace(tenant: string, traceId: string): Promise<SpanRow[]> {
    return this.reads().run('getTrace', [tenant, traceId]);
  }

  readTrace(tenant: string, traceId: string, maxSpans: number, maxBytes?: number, signal?: AbortSignal): Promise<TraceRead> {
    return this.reads().run('readTrace', [tenant, traceId, maxSpans, maxBytes], signal);
  }

  searchTraces(tenant: string, q: TraceQuery, signal?: AbortSignal): Promise<TraceSummary[]> {
    return this.reads().run('searchTraces', [tenant, q], signal);
  }

  async searchLogs(tenant: string, q: LogQuery, signal?: AbortSignal): Promise<LogSearch> {
    const { rows, cut }: { rows: LogRow[]; cut: boolean } = await this.reads().run('searchLogs', [tenant, q], signal);
    return logSearch(rows, cut);
  }

  getServices(tenant: string): Promise<string[]> {
    return this.reads().run('getServices', [tenant]);
  }

  getOperations(tenant: string, q: OperationQuery): Promise<Operation[]> {
    return this.reads().run('getOperations', [tenant, q]);
  }

  getDependencies(tenant: string, q: DependencyQuery): Promise<DependencyLink[]> {
    return this.reads().run('getDependencies', [tenant, q]);
  }

  scanSpans(tenant: string, q: ScanQuery): Promise<ScanPage<SpanRow>> {
    return this.reads().run('scanSpans', [tenant, q]);
  }

  scanLogs(tenant: string, q: ScanQuery): Promise<ScanPage<LogRow>> {
    return this.reads().run('scanLogs', [tenant, q]);
  }

  /** Row counts and oldest times from a read thread; the file sizes are the database file, the trace index's file (store.ts, TRACE_INDEX) and their WALs (one file holds both signals, so there is no size per signal). */
  async stats(): Promise<StorageStats> {
    const t = await this.reads().run<ReturnType<typeof tableStats>>('tableStats');
    const files: { file: string; bytes: number }[] = [];
    if (this.path !== ':memory:') {
      // The files on disk: a URI filename's (file:/dir/th.db?mode=rwc) are its path's.
      const main = sqliteFilePath(this.path);
      const traces = sqliteFilePath(traceIndexPath(this.path));
      for (const [file, path] of [['main', main], ['wal', `${main}-wal`], ['traces', traces], ['traces_wal', `${traces}-wal`]] as const) {
        // The WAL file is absent after a clean close or a checkpoint that truncated it: 0 bytes.
        files.push({ file, bytes: await stat(path).then((s) => s.size, () => 0) });
      }
    }
    const oldest = (ns: bigint | null) => (ns === null ? {} : { oldestUnixNano: ns });
    return {
      signals: [
        { signal: 'traces', rows: t.spans, ...oldest(t.oldestSpanNs) },
        { signal: 'logs', rows: t.logs, ...oldest(t.oldestLogNs) },
      ],
      files,
    };
  }

  /** A -wal file found deleted: the write thread's checkpoint of what only it holds, asked for (rescueWal), or done. */
  private walRescue: 'asked' | 'done' | undefined;

  /**
   * Why the store is not healthy when its -wal file is no longer at its path (OpenedFile.walGone).
   * Also has the write thread move what only that file holds into the store's file, which it
   * otherwise does at its next write: an idle collector may get none, and a crash or kill then
   * lost the commits acknowledged before the removal. Asked again at each check until done.
   */
  private walGone(): string | undefined {
    const gone = this.openedFile?.walGone();
    // No write thread: it opens a connection only to write, which cannot open without the file.
    if (gone === undefined || this.walRescue !== undefined || !this.thread) return gone;
    this.walRescue = 'asked';
    void this.request({ id: this.nextId++, op: 'rescueWal' }).then((reply) => {
      this.walRescue = 'result' in reply && reply.result.kind === 'success' ? 'done' : undefined;
      if (this.walRescue === 'done') this.deps.logger.warn({ path: this.path }, "sqlite: what the -wal file deleted under the collector held is checkpointed into the store's file; writes stay refused until a restart");
    });
    return gone;
  }

  async health() {
    try {
      this.open().prepare('SELECT 1').get();
      const moved = this.openedFile?.moved() ?? this.walGone();
      return moved === undefined ? { ok: true } : { ok: false, detail: moved };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  }

  async shutdown(): Promise<void> {
    this.retaining = false;
    clearTimeout(this.retentionTimer);
    this.retentionTimer = undefined;
    const thread = this.thread;
    this.thread = undefined;
    await thread?.terminate();
    // Writes the thread did not answer settle too (its exit handler no longer does: it is not the
    // current thread): retryable, since one may have committed. Their batch ids keep a retry from
    // storing a span or log batch twice.
    for (const [id, resolve] of this.pending) resolve({ id, result: { kind: 'retryable', message: 'the sqlite backend shut down before the write was answered' } });
    this.pending.clear();
    await this.readPool?.close();
    this.readPool = undefined;
    this.db?.close();
    this.db = undefined;
  }
}

/**
 * Throws a ConfigError for a storage.sqlite.path the store's threads cannot share. Also called
 * when the backend is built (storage/index.ts), before the write-ahead log opens its directory.
 */
export function refuseUnsharedPath(path: string): void {
  // Every connection (the write thread's, each read thread's) opens the path: one that gives each
  // its own database would take writes that no read sees.
  // node:sqlite opens SQLite's URI filenames too: file::memory: and mode=memory are in memory as well.
  if (path === '' || path === ':memory:' || /^file:(:memory:|[^?#]*\?(?:[^#]*&)?mode=memory(?:[&#]|$))/i.test(path)) {
    throw new ConfigError(`invalid configuration: storage.sqlite.path = ${JSON.stringify(path)} names no file: the store's write and read threads would each open a database of their own; give a file path, or use storage.backend = memory`);
  }
  // cache=shared puts the write and read threads on one cache with table locks: a read meeting a
  // write's open transaction failed at once (SQLITE_LOCKED, which busy_timeout does not wait out).
  if (/^file:[^?#]*\?(?:[^#]*&)?cache=shared(?:[&#]|$)/i.test(path)) {
    throw new ConfigError(`invalid configuration: storage.sqlite.path = ${JSON.stringify(path)}: cache=shared makes a read that meets a write fail ("database table is locked"); leave it out (each connection reads the last commit in WAL mode)`);
  }
}

/** Creates the SQLite backend (the embedded default). */
export function createSqliteBackend(options: SqliteOptions, deps: BackendDeps): StorageBackend {
  return new SqliteBackend(options, deps);
}
