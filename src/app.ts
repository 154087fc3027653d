// The collector assembled: backend, decode pool, writer, receivers, read API and operations,
// started in dependency order and shut down in reverse, draining what was accepted.
import type { Config } from './config/index.ts';
import { Ingest } from './pipeline/ingest.ts';
import { DecodePool } from './pipeline/pool.ts';
import { Writer, type WriterOptions } from './pipeline/writer.ts';
import { QueryServer } from './query/server.ts';
import { GrpcReceiver } from './receiver/grpc.ts';
import { HttpReceiver } from './receiver/http.ts';
import type { StorageBackend } from './storage/backend.ts';
import { createBackend } from './storage/index.ts';
import { createLogger, type Logger } from './telemetry/logger.ts';
import { createMetrics, type Metrics } from './telemetry/metrics.ts';
import { OpsServer } from './telemetry/ops.ts';
import { StorageStatsPoller, storeStatsOf } from './telemetry/storage-stats.ts';

/** Writer options from the configuration. */
export function writerOptions(c: Config): WriterOptions {
  return {
    maxBatchRows: c['writer.maxBatchRows'],
    flushIntervalMs: c['writer.flushIntervalMs'],
    maxInFlightBatches: c['writer.maxInFlightBatches'],
    maxQueueBytes: c['writer.maxQueueBytes'],
    retryInitialMs: c['writer.retryInitialMs'],
    retryMaxMs: c['writer.retryMaxMs'],
    retryMaxElapsedMs: c['writer.retryMaxElapsedMs'],
    writeTimeoutMs: c['writer.writeTimeoutMs'],
  };
}

interface Component {
  start(): Promise<void>;
  shutdown(): Promise<unknown>;
}

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
  readonly storageStats: StorageStatsPoller | undefined;
  private readonly pool: DecodePool;
  private started = false;
  private stopping: Promise<number> | undefined;

  private constructor(config: Config, backend: StorageBackend, logger: Logger, metrics: Metrics) {
    this.config = config;
    this.logger = logger;
    this.metrics = metrics;
    this.backend = backend;
    // Each component gets its own options, sliced from the configuration here.
    const c = config;
    this.pool = new DecodePool({ threads: c['workers.threads'], maxPendingTasks: c['workers.maxPendingTasks'], maxNestingDepth: c['receiver.maxNestingDepth'] }, backend.encoder);
    this.writer = new Writer(backend, writerOptions(c), metrics, logger);
    this.ingest = new Ingest(this.pool, this.writer, metrics, logger, c['delivery.ack']);
    const maxMessageBytes = c['receiver.maxMessageBytes'];
    this.grpc = c['receiver.grpc.enabled'] ? new GrpcReceiver(
          {
            listen: c['receiver.grpc.listen'],
            maxMessageBytes,
            maxConcurrentStreams: c['receiver.grpc.maxConcurrentStreams'],
            maxReceivingCalls: c['receiver.grpc.maxReceivingCalls'],
            maxConnectionIdleMs: c['receiver.grpc.maxConnectionIdleMs'],
            maxConnectionAgeMs: c['receiver.grpc.maxConnectionAgeMs'],
            keepaliveTimeMs: c['receiver.grpc.keepaliveTimeMs'],
            readiness: { notReadyReason: () => this.notReadyReason() },
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
            maxConnectionsPerClient: c['receiver.http.maxConnectionsPerClient'],
          },
          this.ingest,
          logger,
        )
      : undefined;
    this.query = c['query.enabled'] ? new QueryServer({ listen: c['query.listen'], maxLimit: c['query.maxLimit'], maxSpansPerTrace: c['query.maxSpansPerTrace'] }, backend, logger, metrics.registry) : undefined;
    const stats = storeStatsOf(backend);
    this.storageStats = stats && c['storage.statsIntervalMs'] > 0 ? new StorageStatsPoller(stats, backend.name, { intervalMs: c['storage.statsIntervalMs'] }, metrics.registry, logger) : undefined;
    this.ops = new OpsServer(config['ops.listen'], metrics, { notReadyReason: () => this.notReadyReason() }, logger);
  }

  /** Builds a collector from configuration (the backend is created but nothing is started). */
  static async create(config: Config, opts: CollectorOptions = {}): Promise<Collector> {
    const logger = opts.logger ?? createLogger(config['log.level']);
    const metrics = createMetrics();
    const backend = opts.backend ?? (await createBackend(config, { logger, metrics }));
    return new Collector(config, backend, logger, metrics);
  }

  private async notReadyReason(): Promise<string | null> {
    if (!this.started || this.stopping) return 'not started';
    if (this.writer.isFull) return 'write queue full';
    const failingMs = this.writer.writesFailingForMs;
    if (failingMs >= UNREADY_AFTER_FAILING_MS) return `storage writes failing for ${Math.round(failingMs / 1000)} s`;
    const h = await this.backend.health();
    return h.ok ? null : `storage ${this.backend.name} unhealthy: ${h.detail ?? 'unknown'}`;
  }

  private get components(): Component[] {
    return [this.backend, this.storageStats, this.pool, this.writer, this.grpc, this.http, this.query, this.ops].filter((c) => c !== undefined);
  }

  async start(): Promise<void> {
    if (this.started) return;
    for (const c of this.components) await c.start();
    this.started = true;
    // Health until now said SERVING by default; from here on it follows readiness.
    await this.grpc?.refreshHealth();
    this.logger.info({ backend: this.backend.name }, 'tracehouse started');
  }

  /** Stops accepting, drains everything accepted into the backend, then closes. Idempotent; resolves to the accepted rows it had to drop. */
  shutdown(): Promise<number> {
    this.stopping ??= this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<number> {
    const deadline = Date.now() + this.config['shutdown.timeoutMs'];
    // Receivers first: their in-flight requests finish and are queued before the writer drains.
    await Promise.all([this.grpc?.shutdown(), this.http?.shutdown()]);
    // Anything still decoding after the receivers closed is refused, not queued behind the drain.
    this.ingest.close();
    // One deadline for the whole shutdown (the Helm chart's grace period is derived from it).
    const dropped = await this.writer.shutdown(Math.max(1000, deadline - Date.now()));
    await Promise.all([this.query?.shutdown(), this.ops.shutdown(), this.pool.shutdown(), this.storageStats?.shutdown()]);
    await this.backend.shutdown();
    this.logger.info({ queueBytes: this.writer.queueBytes, droppedRows: dropped }, 'tracehouse stopped');
    return dropped;
  }
}
