// The PostgreSQL backend: daily-partitioned spans and logs tables, writes by COPY into a per-
// connection temporary staging table and INSERT … SELECT … ON CONFLICT DO NOTHING into the
// partitioned table (so a retried batch never stores a row twice), a trace index for reads by id,
// versioned migrations and periodic partition maintenance. See columns.ts for the row layout,
// escape.ts for how U+0000 is stored.
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { resolvesWithin } from '../../common/wait.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { LogRow, SpanRow } from '../../model/rows.ts';
import { SIGNALS, type Signal } from '../../model/signal.ts';
import type { EncoderSpec } from '../encoders.ts';
import { writeInHalves } from '../refused-parts.ts';
import { QueryTimeout } from '../backend.ts';
import type { BackendDeps, BackendHealth, DependencyLink, DependencyQuery, LogQuery, LogSearch, Migrated, Operation, OperationQuery, ScanPage, ScanQuery, StorageBackend, StorageStats, StoreStats, TraceQuery, TraceRead, TraceSummary, WriteBatch, WriteResult } from '../backend.ts';
import { LOG_COLUMNS, SPAN_COLUMNS, columnList, type CopyFormat } from './columns.ts';
import { copyChunks } from './copy.ts';
import { chunkDays, chunkRows } from './days.ts';
import { failure, isConnectionError, isPrivilegeError, isRetryable, isUnreachable, toError } from './errors.ts';
import { LATEST_VERSION, currentVersion, refuseNewer, runMigrations } from './migrations.ts';
import { Partitions } from './partitions.ts';
import { ReadConnections } from './read-connections.ts';
import { QUERY_CANCELED, Reads, statementMs, type CancelTarget } from './reads.ts';
import { scanLogs, scanSpans } from './scan.ts';
import { postgresStats } from './stats.ts';
import { TYPES, ident, withTransaction } from './sql.ts';

const SUCCESS: WriteResult = { kind: 'success' };
const HEALTH_TIMEOUT_MS = 3_000;
const CONNECT_TIMEOUT_MS = 5_000;
/** Connection problems are logged at most this often (they are counted by the writer's metrics). */
const ERROR_LOG_INTERVAL_MS = 30_000;
/** Least time between two migrations for a schema or table found missing under writes (remigrate). */
const REMIGRATE_INTERVAL_MS = 10_000;
/**
 * Refused parts writeRefusedInHalves may see before it leaves the rest of a batch out untried
 * (refused-parts.ts): a part here is a savepoint, about 1 ms. 73 requests at fault among 3,000
 * one-record ones take some 560 (at 64 the pass left 2,680 fine rows out untried); a batch of
 * 3,000 whose every row is refused, about 2 s.
 */
const REFUSED_PARTS_BOUND = 1024;
/** setTimeout's longest delay (pg's query_timeout is one). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * Longest start-up waits for its maintenance run (partitions ahead, then retention) before it goes
 * on with the run behind: nothing listens until the store has started, and a first retention pass
 * can take long (retentionDays lowered on a busy store, an old backup imported) or wait on a lock.
 */
const START_MAINTENANCE_WAIT_MS = 10_000;
const STAGING: Record<Signal, string> = { traces: 'tracehouse_staging_spans', logs: 'tracehouse_staging_logs' };
const SPAN_COLS = columnList(SPAN_COLUMNS);
const LOG_COLS = columnList(LOG_COLUMNS);
const STAGING_DDL = SIGNALS
  .map((sig) => {
    const cols = sig === 'traces' ? SPAN_COLUMNS : LOG_COLUMNS;
    return `CREATE TEMP TABLE IF NOT EXISTS ${STAGING[sig]} (${cols.map(([n, t]) => `${n} ${t}`).join(', ')}) ON COMMIT DELETE ROWS`;
  })
  .join(';\n');

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * Cancels the statement a read's connection runs, for a read whose client is gone or whose budget
 * has run out (Reads.cancellable, budgeted): PostgreSQL's cancel request (what psql's Ctrl-C sends: the connection's
 * process id and secret key on a socket of its own), which the server answers before counting
 * connections, so it works when the read pool's connections, the role's CONNECTION LIMIT or
 * max_connections are all taken (a pg_cancel_backend needed a login of its own, refused then), and
 * is routed by a pooler to the right server connection. It resolves once the server has taken it
 * (it closes the socket then), and quietly on failure (the statement then ends at
 * storage.postgres.statementTimeoutMs, as before).
 */
function cancelStatement(target: CancelTarget): Promise<void> {
  return new Promise((resolve) => {
    const socket = target.host.startsWith('/') ? connect(`${target.host}/.s.PGSQL.${target.port}`) : connect(target.port, target.host);
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
    socket.on('connect', () => {
      // CancelRequest: length 16, code 80877102, then the backend's process id and secret key.
      const msg = Buffer.alloc(16);
      msg.writeInt32BE(16, 0);
      msg.writeInt32BE(80877102, 4);
      msg.writeInt32BE(target.processID, 8);
      msg.writeInt32BE(target.secretKey, 12);
      socket.end(msg);
    });
  });
}

/**
 * What is wrong with a database whose encoding is neither UTF8 nor SQL_ASCII (LATIN1, WIN1252 …,
 * what initdb picks from a non-UTF-8 locale), or undefined: PostgreSQL converts every string it is
 * sent into it and refuses a character it has not (22P05, a permanent error), so every request
 * holding one (a span name in Japanese, an emoji in a log body) is dropped, counted
 * permanent_error (the refused batch written again in halves, its other requests stored).
 * SQL_ASCII converts nothing: the UTF-8 is kept as sent.
 */
async function encodingProblem(pool: Pool): Promise<string | undefined> {
  const { rows } = await pool.query<{ encoding: string; database: string }>(
    `SELECT current_setting('server_encoding') AS encoding, current_database() AS database`,
  );
  const { encoding, database } = rows[0]!;
  if (encoding === 'UTF8' || encoding === 'SQL_ASCII') return undefined;
  return `postgres database ${JSON.stringify(database)} (storage.postgres.url) has encoding ${encoding}: it cannot store the characters of telemetry that ${encoding} lacks, and would drop every request holding one; point storage.postgres.url at a database created with ENCODING 'UTF8' (CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0)`;
}

function batchKey(batchId: string): string {
  return createHash('sha256').update(batchId).digest().readBigInt64BE(0).toString();
}

/** The PostgreSQL store's settings (storage.postgres.* in the configuration). */
export interface PostgresOptions {
  url: string;
  schema: string;
  poolSize: number;
  /** statement_timeout (0: none). */
  statementTimeoutMs: number;
  autoMigrate: boolean;
  partitionsAheadDays: number;
  /** Drop partitions older than this many days (0: keep). */
  retentionDays: number;
  maintenanceIntervalMs: number;
  copyFormat: CopyFormat;
  /**
   * lock_timeout of a write's transaction (writer.writeTimeoutMs; 0 or absent: the server's): a
   * write waiting on a lock past it (the logs table locked by an operator's ALTER) fails at the
   * server when the writer has given up on it, and frees its connection for the other signal's.
   */
  writeLockTimeoutMs?: number;
}

class PostgresBackend implements StorageBackend, StoreStats {
  readonly name = 'postgres';
  /** A write's COPY has sent every chunk before it succeeds. */
  readonly copiesChunks = true;
  readonly encoder: EncoderSpec;

  private readonly config: PostgresOptions;
  private readonly logger: Logger;
  private readonly schema: string;
  private readonly format: CopyFormat;
  private pool: Pool | undefined;
  /** Reads, scans and stats: connections writes cannot take. */
  private readPool: Pool | undefined;
  /** The read pool's connections as reads take them: in turn, each waiting up to its budget. */
  private readConnections: ReadConnections | undefined;
  /** The health check's connection, which neither writes nor reads can take. */
  private healthPool: Pool | undefined;
  private parts: Partitions | undefined;
  private reads: Reads | undefined;
  private started = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private maintenanceRun: Promise<void> | undefined;
  private remigration: Promise<void> | undefined;
  private remigratedAt = 0;
  /** Connections that already have their staging tables. */
  private readonly staged = new WeakSet<PoolClient>();
  private lastErrorLog = 0;
  private suppressedErrors = 0;
  private readonly insertSql: Record<Signal, string>;
  private readonly readOnly: boolean;

  constructor(config: PostgresOptions, deps: BackendDeps) {
    this.config = config;
    this.readOnly = deps.readOnly === true;
    this.logger = deps.logger;
    this.schema = config.schema;
    this.format = config.copyFormat;
    this.encoder = { name: 'postgres', options: { format: this.format } };
    const s = ident(this.schema);
    this.insertSql = {
      // Lock order, so concurrent instances writing overlapping rows queue instead of deadlocking:
      // a unique-index insert waits for any uncommitted transaction holding the same key, so each
      // statement takes its keys in key order (ORDER BY the conflict key). The CTE and the main
      // INSERT run in the same sequence in every transaction, so all of them take span keys and
      // trace index keys in one global order: no cycle. (test/integration/postgres.deadlock.test.ts)
      traces: `WITH idx AS (
                INSERT INTO ${s}.trace_index AS t (tenant, trace_id, first_start_unix_nano, last_start_unix_nano)
                SELECT $1::text, trace_id, min(start_time_unix_nano), max(start_time_unix_nano)
                  FROM pg_temp.${STAGING.traces} GROUP BY trace_id ORDER BY trace_id
                ON CONFLICT (tenant, trace_id) DO UPDATE
                  SET first_start_unix_nano = least(t.first_start_unix_nano, excluded.first_start_unix_nano),
                      last_start_unix_nano = greatest(t.last_start_unix_nano, excluded.last_start_unix_nano)
                  WHERE excluded.first_start_unix_nano < t.first_start_unix_nano
                     OR excluded.last_start_unix_nano > t.last_start_unix_nano
              ),
              -- One row per distinct operation of the batch, in key order like the trace index.
              ops AS (
                INSERT INTO ${s}.operations AS o (tenant, service_name, name, kind, last_start_unix_nano)
                SELECT $1::text, left(service_name, 256), left(name, 256), kind, max(start_time_unix_nano)
                  FROM pg_temp.${STAGING.traces} GROUP BY 2, 3, 4 ORDER BY 2, 3, 4
                ON CONFLICT (tenant, service_name, name, kind) DO UPDATE
                  SET last_start_unix_nano = excluded.last_start_unix_nano
                  WHERE excluded.last_start_unix_nano > o.last_start_unix_nano
              )
              INSERT INTO ${s}.spans (tenant, ${SPAN_COLS})
              SELECT $1::text, ${SPAN_COLS} FROM pg_temp.${STAGING.traces}
              ORDER BY trace_id, span_id, start_time_unix_nano
              ON CONFLICT (tenant, trace_id, span_id, start_time_unix_nano) DO NOTHING`,
      // A fresh staging table is read back in COPY order, so row_number() is the row's position
      // in the batch: stable across retries of the same batch. No ORDER BY needed against
      // deadlocks: keys contain the batch's own key, so only copies of the same batch can meet,
      // and they take their keys in the same (COPY) order.
      // $3: the rows of the batch before the staged ones (writeRefusedInHalves), so seq stays the
      // row's position in the whole batch however it is written.
      logs: `INSERT INTO ${s}.logs (${LOG_COLS}, batch_key, seq, tenant)
             SELECT ${LOG_COLS}, $1::int8, (row_number() OVER () + $3::int8)::int4, $2::text FROM pg_temp.${STAGING.logs}
             ON CONFLICT (ts_unix_nano, batch_key, seq) DO NOTHING`,
    };
  }

  private ensurePool(): Pool {
    if (this.pool) return this.pool;
    const timeout = this.config.statementTimeoutMs;
    const settings: pg.PoolConfig = {
      connectionString: this.config.url,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: 'tracehouse',
      statement_timeout: timeout > 0 ? timeout : false,
      // A client-side bound too, for a server that stopped answering without closing the socket;
      // no longer than Node's longest timer, which a longer delay would fire after 1 ms (the
      // largest statementTimeoutMs accepted, 2^31 - 1, plus 10 s failed every statement).
      ...(timeout > 0 ? { query_timeout: Math.min(timeout + 10_000, MAX_TIMER_MS) } : {}),
      idle_in_transaction_session_timeout: 120_000,
      // The staging table of a 10k-span batch is ~25 MB: keep it in memory (temp_buffers default 8 MB).
      // A statement_timeout of 0 goes here: pg leaves a 0 statement_timeout unsent, and the
      // database's or role's default would then apply instead of "none".
      options: timeout > 0 ? '-c temp_buffers=32MB' : '-c temp_buffers=32MB -c statement_timeout=0',
      types: TYPES,
    };
    const pool = new pg.Pool({ ...settings, max: this.config.poolSize });
    // Reads have connections of their own: writes that are slow (a lock, a busy disk) hold every
    // one of theirs, and reads then timed out as if the database were gone.
    const readMax = Math.max(2, Math.ceil(this.config.poolSize / 4));
    const readPool = new pg.Pool({ ...settings, max: readMax });
    // And the health check one of its own: slow reads (searches running up to the statement
    // timeout) would hold every read connection, and the check then timed out as if the database
    // were gone, making a collector whose database and writes are fine not ready.
    const healthPool = new pg.Pool({ ...settings, max: 1 });
    // An idle (or checked-out but between queries) client whose connection breaks emits 'error';
    // without a listener that would crash the process. The pool drops such clients by itself.
    for (const p of [pool, readPool, healthPool]) {
      p.on('error', (err) => this.noteError(err));
      p.on('connect', (client) => client.on('error', (err) => this.noteError(err)));
    }
    this.readPool = readPool;
    // A read waits for a connection as long as its statement may run (connectionTimeoutMillis
    // then bounds only the making of a connection).
    const readConnections = new ReadConnections(readPool, readMax, Math.min(timeout, MAX_TIMER_MS));
    this.readConnections = readConnections;
    this.healthPool = healthPool;
    this.pool = pool;
    this.parts = new Partitions(pool, {
      schema: this.schema,
      aheadDays: this.config.partitionsAheadDays,
      retentionDays: this.config.retentionDays,
      logger: this.logger,
      stopped: () => this.closed,
    });
    this.reads = new Reads(readConnections, this.schema, cancelStatement);
    return pool;
  }

  private noteError(err: unknown): void {
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) {
      this.suppressedErrors++;
      return;
    }
    this.logger.warn({ err: toError(err).message, suppressed: this.suppressedErrors }, 'postgres connection error');
    this.lastErrorLog = now;
    this.suppressedErrors = 0;
  }

  async start(): Promise<void> {
    if (this.started || this.closed) return;
    const pool = this.ensurePool();
    if (this.config.autoMigrate) {
      await this.migrate();
    } else {
      if (!this.readOnly) await this.checkEncoding(pool);
      const v = await currentVersion(pool, this.schema);
      refuseNewer(this.schema, v);
      if (v < LATEST_VERSION) {
        throw new Error(
          `postgres schema ${this.schema} ${v === 0 ? 'has no migration applied (missing, or never migrated)' : `is at version ${v}`}, this build needs version ${LATEST_VERSION}: run 'tracehouse migrate' or set storage.postgres.autoMigrate=true`,
        );
      }
    }
    const run = this.maintain();
    if (!(await resolvesWithin(run, START_MAINTENANCE_WAIT_MS))) {
      this.logger.info({ waitedMs: START_MAINTENANCE_WAIT_MS }, 'postgres maintenance (retention) still running; start-up goes on without it');
      run.catch((err: unknown) => this.logger.warn({ err: toError(err).message }, 'postgres maintenance failed'));
    }
    // Shut down meanwhile (a stop during start-up): no timer left behind.
    if (this.closed) return;
    const interval = this.config.maintenanceIntervalMs;
    this.timer = setInterval(() => {
      void this.maintain().catch((err: unknown) => this.logger.warn({ err: toError(err).message }, 'postgres maintenance failed'));
    }, interval);
    this.timer.unref();
    this.started = true;
  }

  async migrate(): Promise<Migrated> {
    const pool = this.ensurePool();
    if (!this.readOnly) await this.checkEncoding(pool);
    const applied = await runMigrations(pool, this.schema);
    if (applied.length === 0) return 'up_to_date';
    this.logger.info({ schema: this.schema, versions: applied }, 'postgres migrations applied');
    return 'applied';
  }

  /**
   * Refuses a database whose encoding cannot hold every character (encodingProblem) before
   * anything is migrated into it. One whose schema is migrated already (by a version before this
   * check) is only warned about: refused, every pod on it would stop taking any telemetry at the
   * upgrade, for the sake of the requests with such characters.
   */
  private async checkEncoding(pool: Pool): Promise<void> {
    const problem = await encodingProblem(pool);
    if (problem === undefined) return;
    if ((await currentVersion(pool, this.schema)) === 0) throw new Error(problem);
    this.logger.warn({ schema: this.schema }, `${problem}; started on it all the same, as the collector has written to it before`);
  }

  /** Partitions ahead, retention; one run at a time. */
  private maintain(): Promise<void> {
    if (this.maintenanceRun) return this.maintenanceRun;
    const parts = this.parts!;
    this.maintenanceRun = (async () => {
      await parts.refresh();
      // Creation ahead that waited too long for a lock (a long read or another instance's DDL
      // holding the table) is tried again next time, and writes create a missing day on demand:
      // it must not fail start-up either. Other errors (no privilege, say) still do.
      // A store only read (export, copy's source) gets none: its role may hold no right to create them.
      if (!this.readOnly) await parts.createAhead().catch((err: unknown) => {
        if (!isRetryable(err) || isPrivilegeError(err)) throw err;
        this.logger.warn({ err: toError(err).message }, 'postgres partitions ahead not created yet');
      });
      // Retention that fails (a lock it waited for too long, say) is tried again next time; it
      // must not fail start-up.
      await parts.applyRetention().catch((err: unknown) => this.logger.warn({ err: toError(err).message }, 'postgres retention failed'));
    })().finally(() => {
      this.maintenanceRun = undefined;
    });
    return this.maintenanceRun;
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    const signal = batch.signal;
    if (!this.started || this.closed || !this.pool || !this.parts) {
      return { kind: 'retryable', error: new Error('postgres backend is not running') };
    }
    if (batch.chunks.length === 0 || batch.rows === 0) return SUCCESS;
    try {
      let days: Set<number>;
      try {
        days = batch.days !== undefined ? new Set(batch.days) : chunkDays(batch.chunks, this.format);
      } catch (err) {
        return { kind: 'permanent', error: new Error(`postgres: undecodable ${signal} batch: ${toError(err).message}`) };
      }
      try {
        await this.parts.ensure(signal, days);
      } catch (err) {
        // Creating a partition can race other instances or clocks at the window edges; the rows
        // are not at fault, so the batch is retried rather than dropped. A schema gone is
        // migrated again here too: a batch of a day with no partition yet fails first here.
        this.remigrate(err);
        // A role that may not create it is denied, as one that may not insert (import fails at once).
        return { kind: 'retryable', error: new Error(`postgres: creating partitions for a ${signal} batch: ${toError(err).message}`), ...(isPrivilegeError(err) ? { denied: true } : {}) };
      }
      await this.inTransaction(async (client) => {
        await this.stage(client, batch, batch.chunks, 0);
      });
      return SUCCESS;
    } catch (err) {
      this.writeFailed(err);
      // Refused for good with several requests' rows (chunks) in it: the others' must not go with
      // the one at fault.
      if (batch.chunks.length > 1 && !isRetryable(err)) return this.writeRefusedInHalves(batch, err);
      return failure(err);
    }
  }

  /**
   * A batch the server refused for good (a value it cannot take, a trigger raising on one row),
   * written again in halves (refused-parts.ts), in one transaction, each part under a savepoint:
   * the chunks (requests' rows) refused are left out, the rest stored. Halving, not a savepoint
   * per chunk, which took 215 s for a batch of 10,000 one-record requests, past
   * writer.writeTimeoutMs, so the writer wrote it again and again. Every row keeps the keys a
   * write of the whole batch gives it (a log's seq, its position in the batch), so a resend stores
   * nothing twice. Only after such a failure: a batch's common write stays one COPY and one
   * INSERT. Its spans' keys are taken part by part, not in one order (insertSql): a deadlock with
   * another instance's write is retried (40P01), as any.
   */
  private async writeRefusedInHalves(batch: WriteBatch, first: unknown): Promise<WriteResult> {
    const rows = batch.chunks.map((c) => chunkRows(c, this.format));
    try {
      return await this.inTransaction((client) =>
        writeInHalves(rows, toError(first), async (from, to, before) => {
          await client.query('SAVEPOINT part');
          try {
            await this.stage(client, batch, batch.chunks.slice(from, to), before);
            await client.query(`TRUNCATE pg_temp.${STAGING[batch.signal]}`);
            await client.query('RELEASE SAVEPOINT part');
            return undefined;
          } catch (err) {
            if (isRetryable(err)) throw err;
            // Released too: savepoints of one name left nested slow every later one.
            await client.query('ROLLBACK TO SAVEPOINT part; RELEASE SAVEPOINT part');
            return toError(err);
          }
        }, REFUSED_PARTS_BOUND),
      );
    } catch (err) {
      this.writeFailed(err);
      return failure(err);
    }
  }

  /** Runs fn in a write transaction on a connection whose staging tables exist. */
  private inTransaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(
      this.pool!,
      async (client) => {
        // Without it a write timed out by the writer waited on for the lock until the statement
        // timeout, holding its connection: a locked logs table took every one, and spans waited.
        const lockMs = this.config.writeLockTimeoutMs ?? 0;
        if (lockMs > 0) await client.query(`SET LOCAL lock_timeout = ${Math.floor(lockMs)}`);
        return fn(client);
      },
      // Both staging tables at once, once per connection: temporary, so unlogged and private.
      // A connection whose write failed is discarded, so one whose staging tables vanished
      // (DISCARD TEMP, a transaction-mode pooler) is not reused.
      async (client) => {
        if (this.staged.has(client)) return;
        await client.query(STAGING_DDL);
        this.staged.add(client);
      },
    );
  }

  /** COPYs chunks of the batch into the staging table and moves them into the store; `before`: the batch's rows before them. */
  private async stage(client: PoolClient, batch: WriteBatch, chunks: Uint8Array[], before: number): Promise<void> {
    const signal = batch.signal;
    await copyChunks(client, `pg_temp.${STAGING[signal]}`, signal === 'traces' ? SPAN_COLS : LOG_COLS, chunks, this.format);
    // The batch is one tenant's (the writer keeps a pipeline per tenant): one parameter tags every row.
    if (signal === 'traces') await client.query(this.insertSql.traces, [batch.tenant]);
    else await client.query(this.insertSql.logs, [batchKey(batch.batchId), batch.tenant, before]);
  }

  /** What a failed write tells the store: a suspect connection, a schema gone. */
  private writeFailed(err: unknown): void {
    if (isConnectionError(err)) this.noteError(err);
    this.remigrate(err);
  }

  /**
   * The schema went away under running writes (dropped, a database restored without it): the
   * writer retries such batches (errors.ts), which only a migration lets land. With autoMigrate it
   * runs again, at most once per REMIGRATE_INTERVAL_MS, and the partitions known are read anew. A
   * table dropped alone, the schema's versions table left, is not made again: every version reads
   * as applied.
   */
  private remigrate(err: unknown): void {
    const code = err instanceof pg.DatabaseError ? err.code : undefined;
    if (!this.config.autoMigrate || (code !== '3F000' && code !== '42P01') || this.closed) return;
    if (this.remigration || Date.now() - this.remigratedAt < REMIGRATE_INTERVAL_MS) return;
    this.remigratedAt = Date.now();
    this.logger.warn({ schema: this.schema, err: toError(err).message }, 'postgres schema or table missing under writes; migrating again (storage.postgres.autoMigrate)');
    this.remigration = (async () => {
      await this.migrate();
      await this.maintain();
    })()
      .catch((e: unknown) => this.logger.warn({ schema: this.schema, err: toError(e).message }, 'postgres migration after a missing schema failed; tried again at a later failed write'))
      .finally(() => {
        this.remigration = undefined;
      });
  }

  /**
   * Runs a read within storage.postgres.statementTimeoutMs from its arrival, as SQLite's
   * query.timeoutMs: its wait for a read connection, the making of it and its statements together
   * (a read that waited its turn then ran its statement for the whole option again). At the end of
   * the budget the read's signal aborts: a wait or a connection being made ends at once
   * (ReadConnections), a running statement is cancelled (Reads.cancellable, PostgreSQL's cancel
   * request) and no other is sent. The connections' statement_timeout stays, a bound of the
   * server's own. Only a timer: the common read sends no statement more.
   *
   * A read so stopped, or a statement stopped by the server at the option (QUERY_CANCELED, no
   * abort of the reader's own), is a read past its time budget (QueryTimeout): answered 503 naming
   * the option and not logged as the store failing. Another QUERY_CANCELED is an administrator's
   * pg_cancel_backend ('... due to user request'). The English text tells them apart; on a server
   * with translated messages (lc_messages is superuser-only: the collector cannot ask for English)
   * the statement's own time does (statementMs): one the timeout stopped ran at least
   * statementTimeoutMs, whatever the read waited before.
   */
  private async budgeted<T>(read: (signal: AbortSignal | undefined) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const timeoutMs = this.config.statementTimeoutMs;
    const budget = timeoutMs > 0 ? new AbortController() : undefined;
    const timer = budget && setTimeout(() => budget.abort(this.queryTimeout()), Math.min(timeoutMs, MAX_TIMER_MS));
    try {
      return await read(budget === undefined ? signal : signal === undefined ? budget.signal : AbortSignal.any([signal, budget.signal]));
    } catch (err) {
      if (signal?.aborted === true) throw err;
      if (budget?.signal.aborted === true && (err === budget.signal.reason || (err as { code?: unknown }).code === QUERY_CANCELED)) throw budget.signal.reason;
      const e = err as { code?: unknown; message?: unknown };
      const english = /statement timeout|user request/.exec(String(e.message))?.[0];
      const ranMs = typeof err === 'object' && err !== null ? statementMs.get(err) : undefined;
      const timedOut = english !== undefined ? english === 'statement timeout' : timeoutMs > 0 && ranMs !== undefined && ranMs >= timeoutMs;
      if (e.code === QUERY_CANCELED && timedOut) throw this.queryTimeout();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A read stopped at its budget (storage.postgres.statementTimeoutMs). */
  private queryTimeout(): Error {
    return new QueryTimeout(`the query ran longer than storage.postgres.statementTimeoutMs (${this.config.statementTimeoutMs} ms) and was stopped; narrow the search (service, time range) or raise storage.postgres.statementTimeoutMs`);
  }

  private readsOrThrow(): Reads {
    if (!this.reads || this.closed) throw new Error('postgres backend is not running');
    return this.reads;
  }

  async getTrace(tenant: string, traceId: string): Promise<SpanRow[]> {
    return this.readsOrThrow().getTrace(tenant, traceId);
  }

  async readTrace(tenant: string, traceId: string, maxSpans: number, maxBytes?: number, signal?: AbortSignal): Promise<TraceRead> {
    return this.budgeted((s) => this.readsOrThrow().readTrace(tenant, traceId, maxSpans, maxBytes, s), signal);
  }

  async searchTraces(tenant: string, query: TraceQuery, signal?: AbortSignal): Promise<TraceSummary[]> {
    return this.budgeted((s) => this.readsOrThrow().searchTraces(tenant, query, s), signal);
  }

  async searchLogs(tenant: string, query: LogQuery, signal?: AbortSignal): Promise<LogSearch> {
    return this.budgeted((s) => this.readsOrThrow().searchLogs(tenant, query, s), signal);
  }

  async getServices(tenant: string): Promise<string[]> {
    return this.budgeted((s) => this.readsOrThrow().getServices(tenant, s));
  }

  async getOperations(tenant: string, query: OperationQuery): Promise<Operation[]> {
    return this.budgeted((s) => this.readsOrThrow().getOperations(tenant, query, s));
  }

  async getDependencies(tenant: string, query: DependencyQuery): Promise<DependencyLink[]> {
    return this.budgeted((s) => this.readsOrThrow().getDependencies(tenant, query, s));
  }

  async scanSpans(tenant: string, query: ScanQuery): Promise<ScanPage<SpanRow>> {
    this.readsOrThrow();
    return scanSpans(this.readConnections!, this.schema, tenant, query);
  }

  async scanLogs(tenant: string, query: ScanQuery): Promise<ScanPage<LogRow>> {
    this.readsOrThrow();
    return scanLogs(this.readConnections!, this.schema, tenant, query);
  }

  /** Relation sizes, estimated rows and oldest times (stats.ts). */
  async stats(): Promise<StorageStats> {
    this.readsOrThrow();
    return postgresStats(this.readConnections!, this.schema);
  }

  unreachable(err: unknown): boolean {
    return isUnreachable(err);
  }

  async health(): Promise<BackendHealth> {
    if (!this.started || this.closed || !this.pool) return { ok: false, detail: 'postgres backend is not running' };
    const pool = this.healthPool!;
    // An idle connection the server side ended (idle_session_timeout, a proxy's or pgbouncer's
    // idle timeout) fails the query sent before the pool heard of it: one more try, on a fresh
    // connection, within the same timeout, or that one query made the collector not ready.
    const check = pool.query('SELECT 1').catch((err: unknown) => {
      if (!isConnectionError(err) || this.closed) throw err;
      return pool.query('SELECT 1');
    });
    try {
      await withTimeout(check, HEALTH_TIMEOUT_MS, 'postgres health check');
      return { ok: true };
    } catch (err) {
      return { ok: false, detail: `postgres unreachable: ${toError(err).message}` };
    }
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.maintenanceRun?.catch(() => undefined);
    await this.remigration;
    const pool = this.pool;
    const readPool = this.readPool;
    const healthPool = this.healthPool;
    this.pool = undefined;
    this.readPool = undefined;
    this.readConnections = undefined;
    this.healthPool = undefined;
    if (pool) await pool.end().catch(() => undefined);
    if (readPool) await readPool.end().catch(() => undefined);
    if (healthPool) await healthPool.end().catch(() => undefined);
  }
}

/** Creates (does not start) the PostgreSQL backend. */
export function createPostgresBackend(config: PostgresOptions, deps: BackendDeps): StorageBackend {
  return new PostgresBackend(config, deps);
}
