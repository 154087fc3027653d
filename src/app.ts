// The collector assembled: backend, decode pool, writer, receivers, read API and operations,
// started in dependency order and shut down in reverse, draining what was accepted.
import { renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseListen, RECEIVER_GRACE_MS } from './common/http.ts';
import { sqliteFilePath } from './common/sqlite-path.ts';
import { resolvesWithin } from './common/wait.ts';
import { ConfigError, type Config } from './config/index.ts';
import { DurableLog, rowsLeftInLog } from './pipeline/durable.ts';
import { Ingest } from './pipeline/ingest.ts';
import { cgroupMemoryLimitBytes, defaultMemorySoftBytes, MemoryLimiter } from './pipeline/memory-limiter.ts';
import { DecodePool, oldSpaceOfThreads, type PoolOptions } from './pipeline/pool.ts';
import { Writer, type WriterOptions } from './pipeline/writer.ts';
import { QueryServer } from './query/server.ts';
import { GrpcReceiver } from './receiver/grpc.ts';
import { HttpReceiver } from './receiver/http.ts';
import { Authenticator } from './security/auth.ts';
import { createSecurity, type Security } from './security/index.ts';
import type { BackendHealth, StorageBackend } from './storage/backend.ts';
import { createBackend, storeEndpoint } from './storage/index.ts';
import { whenReachable } from './storage/reach.ts';
import { createLogger, flushRecurringLogs, type Logger } from './telemetry/logger.ts';
import { createMetrics, type Metrics } from './telemetry/metrics.ts';
import { OpsServer } from './telemetry/ops.ts';
import { StorageStatsPoller, storeStatsOf } from './telemetry/storage-stats.ts';

/** Decode pool options from the configuration (the collector's, and the transfer commands' sink). */
export function poolOptions(c: Config): PoolOptions {
  return { threads: c['workers.threads'], maxPendingTasks: c['workers.maxPendingTasks'], maxNestingDepth: c['receiver.maxNestingDepth'], maxStoreBytes: c['writer.maxQueueBytes'] };
}

/** Writer options from the configuration. */
export function writerOptions(c: Config): WriterOptions {
  return {
    maxBatchRows: c['writer.maxBatchRows'],
    flushIntervalMs: c['writer.flushIntervalMs'],
    maxInFlightBatches: c['writer.maxInFlightBatches'],
    // Acknowledgements wait for the store: write as soon as the store is free, not at the interval.
    // Not into ClickHouse with plain inserts: each insert is a part on disk for its merges, so
    // there partial batches keep waiting the interval (async_insert gathers them server-side).
    groupCommit: c['delivery.ack'] === 'stored' && (c['storage.backend'] !== 'clickhouse' || c['storage.clickhouse.asyncInsert']),
    maxQueueBytes: c['writer.maxQueueBytes'],
    retryInitialMs: c['writer.retryInitialMs'],
    retryMaxMs: c['writer.retryMaxMs'],
    retryMaxElapsedMs: c['writer.retryMaxElapsedMs'],
    writeTimeoutMs: c['writer.writeTimeoutMs'],
    keptByLog: c['delivery.ack'] === 'durable',
    refusedWhenGivenUp: c['delivery.ack'] === 'stored',
  };
}

/** Where the write-ahead log lives: delivery.walDir, else a wal directory beside the SQLite file (the data directory). */
export function walDir(c: Config): string {
  return c['delivery.walDir'] !== '' ? c['delivery.walDir'] : join(dirname(sqliteFilePath(c['storage.sqlite.path'])), 'wal');
}

interface Component {
  start(): Promise<void>;
  shutdown(): Promise<unknown>;
}

/** How long before the receivers' grace ends a stop answers the requests still waiting for the store (ack = stored). */
const ANSWER_BEFORE_GRACE_END_MS = 250;

/** What a stop keeps for the store's close after the read API's last reads (shutdown.timeoutMs allowing). */
const READ_CLOSE_MARGIN_MS = 500;

/** How often tracehouse_ready is brought up to date when OTLP/gRPC's health poll is off. */
const READY_POLL_MS = 1000;

/** Readiness's reason from a stop's start on (SIGTERM), while the collector drains. */
const STOPPING = 'stopping: draining accepted data';

/** Writes failing this long make the collector not ready (one failed attempt is not yet a trend). */
const UNREADY_AFTER_FAILING_MS = 2000;

export interface CollectorOptions {
  logger?: Logger;
  /** Use this backend instead of creating the configured one (tests share one across collectors). */
  backend?: StorageBackend;
}

/** One Tracehouse instance. */
export class Collector {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly backend: StorageBackend;
  readonly writer: Writer;
  readonly ingest: Ingest;
  readonly grpc: GrpcReceiver | undefined;
  readonly http: HttpReceiver | undefined;
  readonly query: QueryServer | undefined;
  readonly ops: OpsServer;
  /** The write-ahead log, with delivery.ack = durable. */
  readonly log: DurableLog | undefined;
  readonly memory: MemoryLimiter;
  readonly security: Security;
  readonly storageStats: StorageStatsPoller | undefined;
  private readonly pool: DecodePool;
  private started = false;
  private stopping: Promise<number> | undefined;
  /** Keeps tracehouse_ready current when no gRPC health poll does (OTLP/gRPC off). */
  private readyPoll: NodeJS.Timeout | undefined;
  /** The store's last failed health check's detail, logged once per change. */
  private unhealthyDetail: string | undefined;
  /** The store's health check out now, which readiness callers meanwhile share (storeHealth). */
  private healthCheck: Promise<BackendHealth> | undefined;

  private constructor(config: Config, backend: StorageBackend, logger: Logger, metrics: Metrics, security: Security, oldSpaceBytes: number) {
    this.config = config;
    this.logger = logger;
    this.metrics = metrics;
    this.backend = backend;
    this.security = security;
    const tokens = security.tokens;
    // Each component gets its own options, sliced from the configuration here.
    const c = config;
    // A browser sends its client certificate with a credentialed request (OTLP/HTTP with allowed
    // origins is one): with any origin allowed, any page a certificate holder opens sends in their name.
    if (c['receiver.http.corsAllowedOrigins'].includes('*') && security.tls['receiver.http']?.settings.clientCaFile) {
      logger.warn({ key: 'receiver.http.corsAllowedOrigins', value: '*' }, 'receiver.http.corsAllowedOrigins = * with client certificates (mTLS) on the OTLP/HTTP port: any web page a certificate holder opens can send telemetry in their name; list the pages\' origins instead');
    }
    this.pool = new DecodePool(poolOptions(c), backend.encoder, logger);
    this.log = c['delivery.ack'] === 'durable'
      ? new DurableLog({ dir: walDir(c), exclusive: true, maxBytes: c['delivery.walMaxBytes'], segmentBytes: c['delivery.walSegmentBytes'], encoder: backend.encoder }, metrics, logger)
      : undefined;
    this.memory = new MemoryLimiter({
      softBytes: defaultMemorySoftBytes(c['limits.memorySoftBytes'], cgroupMemoryLimitBytes()),
      heapCheck: c['limits.memorySoftBytes'] !== 0,
      checkIntervalMs: c['limits.memoryCheckIntervalMs'],
      logger,
      onChange: (limited) => metrics.memoryLimited.set(limited ? 1 : 0),
      oldSpaceBytes,
    });
    this.writer = new Writer(this.log ? this.log.wrap(backend) : backend, writerOptions(c), metrics, logger);
    this.ingest = new Ingest(this.pool, this.writer, metrics, logger, c['delivery.ack'], {
      memory: this.memory,
      ...(this.log ? { log: { append: (signal, chunks, tenant) => this.log!.append(signal, chunks, tenant) } } : {}),
    });
    const maxMessageBytes = c['receiver.maxMessageBytes'];
    this.grpc = c['receiver.grpc.enabled'] ? new GrpcReceiver(
          {
            listen: c['receiver.grpc.listen'],
            maxMessageBytes,
            maxConcurrentStreams: c['receiver.grpc.maxConcurrentStreams'],
            maxReceivingCalls: c['receiver.grpc.maxReceivingCalls'],
            receiveTimeoutMs: c['receiver.grpc.receiveTimeoutMs'],
            maxConnectionIdleMs: c['receiver.grpc.maxConnectionIdleMs'],
            maxConnectionAgeMs: c['receiver.grpc.maxConnectionAgeMs'],
            keepaliveTimeMs: c['receiver.grpc.keepaliveTimeMs'],
            windows: { streamBytes: c['receiver.grpc.streamWindowBytes'], connectionBytes: c['receiver.grpc.connectionWindowBytes'] },
            readiness: { notReadyReason: () => this.notReadyReason() },
            tls: security.tls['receiver.grpc'],
            auth: new Authenticator('grpc', tokens, security.metrics, logger),
          },
          this.ingest,
          logger,
        ) : undefined;
    this.http = c['receiver.http.enabled']
      ? new HttpReceiver(
          {
            listen: c['receiver.http.listen'],
            maxMessageBytes,
            bodyTimeoutMs: c['receiver.http.bodyTimeoutMs'],
            corsAllowedOrigins: c['receiver.http.corsAllowedOrigins'],
            allowedHosts: c['receiver.http.allowedHosts'],
            maxConnectionsPerClient: c['receiver.http.maxConnectionsPerClient'],
            tls: security.tls['receiver.http'],
            auth: new Authenticator('http', tokens, security.metrics, logger),
          },
          this.ingest,
          logger,
        )
      : undefined;
    this.query = c['query.enabled']
      ? new QueryServer(
          { listen: c['query.listen'], allowedHosts: c['query.allowedHosts'], maxLimit: c['query.maxLimit'], maxSpansPerTrace: c['query.maxSpansPerTrace'], maxSpansPerSearch: c['query.maxSpansPerSearch'], maxConcurrentReads: c['query.maxConcurrentReads'], tls: security.tls.query, auth: new Authenticator('query', tokens, security.metrics, logger), oldSpaceBytes },
          backend,
          logger,
          metrics.registry,
        )
      : undefined;
    const stats = storeStatsOf(backend);
    this.storageStats = stats && c['storage.statsIntervalMs'] > 0 ? new StorageStatsPoller(stats, backend.name, { intervalMs: c['storage.statsIntervalMs'] }, metrics.registry, logger) : undefined;
    this.ops = new OpsServer(config['ops.listen'], metrics, { notReadyReason: () => this.notReadyReason() }, logger, {
      tls: security.tls.ops,
      metricsAuth: security.opsRequireAuth ? new Authenticator('ops', tokens, security.metrics, logger) : undefined,
      allowedHosts: config['ops.allowedHosts'],
    });
  }

  /** Builds a collector from configuration (the backend is created but nothing is started). */
  static async create(config: Config, opts: CollectorOptions = {}): Promise<Collector> {
    const logger = opts.logger ?? createLogger(config['log.level']);
    const metrics = createMetrics();
    // Certificates and tokens are checked before the store is opened or any port listens: a
    // ConfigError here stops start-up with the key and path named.
    const security = createSecurity(config, logger, metrics.registry);
    const oldSpaceBytes = await oldSpaceOfThreads();
    const backend = opts.backend ?? (await createBackend(config, { logger, metrics }));
    return new Collector(config, backend, logger, metrics, security, oldSpaceBytes);
  }

  /** Null when ready, else why not; every answer also sets tracehouse_ready (gRPC health asks each second). */
  private async notReadyReason(): Promise<string | null> {
    let reason = await this.whyNotReady();
    // A stop that began while the health check was out is not ready either.
    if (this.stopping) reason = STOPPING;
    this.metrics.ready.set(reason === null ? 1 : 0);
    return reason;
  }

  /** Why not ready by what this process sees itself (queue, memory, log, writes), without asking the store. */
  private whyNotReadyHere(): string | null {
    // A draining pod says so: 'not started' sent an operator looking for a start-up problem.
    if (this.stopping) return STOPPING;
    if (!this.started) return 'not started';
    if (this.writer.lacksRoom) return 'write queue full';
    if (this.memory.overLimit) return this.memory.overWhat!;
    const log = this.log?.refusing;
    if (log) return log === 'wal_full' ? 'write-ahead log full' : 'write-ahead log cannot write';
    const failingMs = this.writer.writesFailingForMs;
    if (failingMs >= UNREADY_AFTER_FAILING_MS) return `storage writes failing for ${Math.round(failingMs / 1000)} s`;
    return null;
  }

  private async whyNotReady(): Promise<string | null> {
    const here = this.whyNotReadyHere();
    if (here !== null) return here;
    const h = await this.storeHealth();
    if (h.ok) {
      this.unhealthyDetail = undefined;
      // The queue may have filled (or memory, the log) while the store answered: a slow store is
      // the one writes back up behind, and "ready" then would outlive the answers given meanwhile.
      return this.whyNotReadyHere();
    }
    // The driver's text (addresses, host and user names) goes to the log, once per change, never
    // into /readyz: the probes are open to anyone who reaches the operations port.
    if (h.detail !== this.unhealthyDetail) this.logger.warn({ backend: this.backend.name, detail: h.detail }, 'storage unhealthy');
    this.unhealthyDetail = h.detail;
    return `storage ${this.backend.name} unhealthy`;
  }

  /**
   * The store's health; callers while a check is out share it: a store that answers its health
   * check slowly (a network that drops packets, a check waiting its whole timeout) would otherwise
   * be asked again by every poll and probe meanwhile, checks piling up on its connections. Only
   * the store's answer is shared: the queue, memory and log are looked at by each caller, so a
   * queue that fills while a check is out is not ready at once.
   */
  private storeHealth(): Promise<BackendHealth> {
    this.healthCheck ??= this.backend
      .health()
      .catch((err: Error) => ({ ok: false, detail: err.message }))
      .finally(() => (this.healthCheck = undefined));
    return this.healthCheck;
  }

  private get components(): Component[] {
    const security: Component = {
      start: () => Promise.resolve(this.security.start()),
      shutdown: () => Promise.resolve(this.security.shutdown()),
    };
    return [security, this.backend, this.storageStats, this.pool, this.writer, this.grpc, this.http, this.query, this.ops].filter((c) => c !== undefined);
  }

  async start(): Promise<void> {
    if (this.started) return;
    // The log opens first (its directory's lock refuses a second collector before that one
    // touches the store; a torn tail is cut), its replay is fed to the writer once the store
    // runs, ahead of the first new request.
    if (!this.log) await this.refuseUnreadLog();
    const [security, , ...rest] = this.components;
    await security!.start();
    await this.log?.start();
    await this.startStore(this.backend);
    this.log?.feed(this.writer, this.config['writer.maxQueueBytes']);
    for (const c of rest) await this.startListening(c);
    this.writeOpsAddress();
    this.memory.start();
    this.started = true;
    // Health until now said SERVING by default; from here on it follows readiness.
    await this.grpc?.refreshHealth();
    // The gRPC receiver asks for readiness each second, which also sets tracehouse_ready; without
    // it nothing would but a /readyz request, and the gauge (and its alert) would go stale.
    if (!this.grpc) {
      await this.notReadyReason();
      this.readyPoll = setInterval(() => void this.notReadyReason().catch(() => undefined), READY_POLL_MS).unref();
    }
    this.logger.info({ backend: this.backend.name, ack: this.config['delivery.ack'] }, 'tracehouse started');
  }

  /**
   * Starts a component; a listener whose address cannot be taken (another process holds the port,
   * a privileged port, an address this host lacks, a host name that does not resolve) fails
   * start-up naming its option and value.
   */
  private async startListening(c: Component): Promise<void> {
    try {
      await c.start();
    } catch (err) {
      const key = c === this.grpc ? 'receiver.grpc.listen' : c === this.http ? 'receiver.http.listen' : c === this.query ? 'query.listen' : c === this.ops ? 'ops.listen' : undefined;
      // Node's codes; grpc-js words a host name that does not resolve as "Name resolution failed".
      const why = /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL|ENOTFOUND|EAI_AGAIN|Name resolution failed)\b/.exec((err as Error).message)?.[1];
      if (key === undefined || why === undefined) throw err;
      const cause = why === 'EADDRINUSE' ? 'the port is in use by another process' : why === 'EACCES' ? 'this user may not listen on that port' : why === 'EADDRNOTAVAIL' ? 'this host has no such address' : 'the host name does not resolve';
      throw new Error(`${key} = ${JSON.stringify(this.config[key])}: cannot listen: ${cause} (${(err as Error).message})`);
    }
  }

  /**
   * ops.addressFile: where a health check on this host reaches the operations endpoints, written
   * once they listen. The image's HEALTHCHECK runs apart from the collector and sees neither its
   * flags nor its configuration file, only the image's environment: from that alone it asked a port
   * the collector did not listen on after --ops.listen=…, and called a working container unhealthy.
   * A wildcard address is reached on loopback. A file that cannot be written (a read-only root
   * filesystem) is warned of, not fatal: the check then falls back to TRACEHOUSE_OPS_LISTEN.
   */
  private writeOpsAddress(): void {
    const file = this.config['ops.addressFile'];
    if (file === '') return;
    const bound = parseListen(this.config['ops.listen']).host;
    const host = bound === '' || bound === '0.0.0.0' ? '127.0.0.1' : bound === '::' ? '::1' : bound;
    try {
      // Renamed into place: a check reading meanwhile sees the old file or the new, never half of one.
      writeFileSync(`${file}.tmp`, JSON.stringify({ host, port: this.ops.boundPort }) + '\n');
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      this.logger.warn({ file, err: (err as Error).message }, 'ops.addressFile cannot be written; a health check reading it falls back to its own guess');
    }
  }

  /** Starts the store, waiting for one not reachable yet (whenReachable); a stop meanwhile ends the wait. Nothing listens until the store runs, so clients retry. */
  private startStore(store: StorageBackend): Promise<void> {
    return whenReachable(() => store.start(), store, {
      waitMs: this.config['storage.startWaitMs'],
      endpoint: storeEndpoint(this.config),
      logger: this.logger,
      stopped: () => this.stopping !== undefined,
    });
  }

  /**
   * A start without the log (delivery.ack = queued or stored) stops while the log directory holds
   * rows a durable run acknowledged and could not store: nothing else would write them, or say
   * they wait. The operator decides, as on a change of store (DurableLog.checkEncoding).
   */
  private async refuseUnreadLog(): Promise<void> {
    const dir = walDir(this.config);
    const rows = await rowsLeftInLog(dir, this.logger, this.metrics);
    if (rows === 0) return;
    throw new ConfigError(
      `delivery.ack = ${JSON.stringify(this.config['delivery.ack'])}: delivery.walDir = ${JSON.stringify(dir)} holds ${rows} accepted rows a run with delivery.ack = durable could not store, which this mode does not read; ` +
        `start once with delivery.ack = durable to write them, or move the directory away (the rows are then lost)`,
    );
  }

  /**
   * Accepted rows not stored yet: the writer's queue, and with delivery.ack = durable the rows only
   * the write-ahead log holds now (batches given up on and waiting for their rewrite, the start-up
   * replay not fed yet, batches given up during a stop), as 'tracehouse stopped' counts them.
   */
  get unstoredRows(): number {
    return this.writer.queuedRows + this.writer.keptRows + (this.log?.keptRows ?? 0) + (this.log?.unfedRows ?? 0);
  }

  /** Stops accepting, drains everything accepted into the backend, then closes. Idempotent; resolves to the accepted rows it had to drop. */
  shutdown(): Promise<number> {
    this.stopping ??= this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<number> {
    // On a monotonic clock: a wall-clock step (NTP, a VM resumed) moved the deadline by the step.
    // Whole milliseconds, as the timeouts it gives are logged.
    const now = (): number => Math.round(performance.now());
    const deadline = now() + this.config['shutdown.timeoutMs'];
    clearInterval(this.readyPoll);
    // Not ready from here on (/readyz says 'stopping: draining accepted data'): no poll keeps the gauge current now.
    this.metrics.ready.set(0);
    // Rows given up from here on were queued at the stop, while the receivers finish too.
    this.writer.stopBegun();
    // Receivers first: their in-flight requests finish and are queued before the writer drains,
    // within half of what is left of the deadline (at most their own 10 s), the rest the drain's.
    const grace = Math.min(RECEIVER_GRACE_MS, Math.max(500, Math.floor((deadline - now()) / 2)));
    // Requests waiting for their rows to be stored (ack = stored; a store that is down) are
    // answered 503 before the grace ends: closing their connections at its end cut them unanswered.
    const answerWaiting = setTimeout(() => this.ingest.stopWaiting(), Math.max(0, grace - ANSWER_BEFORE_GRACE_END_MS));
    await Promise.all([this.grpc?.shutdown(grace), this.http?.shutdown(grace)]);
    clearTimeout(answerWaiting);
    // Anything still decoding after the receivers closed is refused, not queued behind the drain.
    this.ingest.close();
    this.memory.shutdown();
    this.log?.stopFeeding();
    // One deadline for the whole shutdown (the Helm chart's grace period is derived from it).
    const dropped = await this.writer.shutdown(Math.max(1000, deadline - now()));
    // After the writer: its last stored marks are written; what it could not store stays.
    await this.log?.shutdown();
    // Batches given up on while running and waiting for their rewrite are not the writer's to count.
    const waiting = this.log?.keptRows ?? 0;
    if (waiting > 0) this.logger.warn({ rows: waiting }, `${waiting} accepted rows given up on while running could not be stored; they are kept in the write-ahead log and written at the next start`);
    const unfed = this.log?.unfedRows ?? 0;
    if (unfed > 0) this.logger.warn({ rows: unfed }, `${unfed} rows of the write-ahead log's replay were not written before the stop; they are kept in the log and written at the next start`);
    // A storage stats measurement in flight waits on the store as a write does (behind a lock, say):
    // bounded by the deadline too, as the store's close is.
    // Reads in flight (a store slow to answer one) have what is left of the deadline, less a
    // moment for the store's close: the read API's own grace (2 s) cut them while the stop then
    // waited for the store to finish those very reads.
    const readGrace = Math.max(500, deadline - now() - READ_CLOSE_MARGIN_MS);
    if (!(await resolvesWithin(Promise.all([this.query?.shutdown(readGrace), this.ops.shutdown(), this.pool.shutdown(), this.storageStats?.shutdown()]), Math.max(500, deadline - now())))) {
      this.logger.warn({ backend: this.backend.name }, 'the read API, operations port, decode workers or storage stats measurement did not stop within shutdown.timeoutMs; stopping without waiting for them');
    }
    // A write the writer gave up on at the deadline may still hold the store (a PostgreSQL
    // statement waiting on a lock keeps its pooled connection, and closing the pool waits for it):
    // the deadline bounds the close too; the process ends and the store lets go of it then.
    if (!(await resolvesWithin(this.backend.shutdown(), Math.max(500, deadline - now())))) {
      this.logger.warn({ backend: this.backend.name }, 'the store did not close within shutdown.timeoutMs; stopping without waiting for it');
    }
    this.security.shutdown();
    // Refusals, failed reads and handshakes of the last minute still waiting for its end: the
    // process ends before it.
    flushRecurringLogs();
    this.logger.info({ queueBytes: this.writer.queueBytes, droppedRows: dropped, keptInLogRows: this.writer.keptRows + waiting + unfed }, 'tracehouse stopped');
    return dropped;
  }
}
