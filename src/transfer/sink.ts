// The write side of import and copy: the collector's own decode pool, writer and front door
// (Ingest) in front of a store, without the receivers. Data from a file or another store takes
// exactly the path live data takes: the same validation, partial success, batching, retries and
// idempotency. Every request carries a batch id derived from its content, so the same data sent
// again (an import run twice, a copy resumed) gets the same write batch ids.
import { createHash } from 'node:crypto';
import { poolOptions, writerOptions } from '../app.ts';
import type { Config } from '../config/index.ts';
import { DEFAULT_TENANT } from '../model/tenant.ts';
import type { Signal } from '../model/signal.ts';
import { Ingest, WAITED_OUT, type IngestOutcome } from '../pipeline/ingest.ts';
import { DecodePool, type OtlpFormat } from '../pipeline/pool.ts';
import { Writer } from '../pipeline/writer.ts';
import type { StorageBackend } from '../storage/backend.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';

/** How long to wait before offering a request again when the queue or the workers are full. */
const BUSY_WAIT_MS = 20;

/**
 * The write batch id for a request's content in a tenant: equal bytes, equal id. The stores key
 * log batches (and ClickHouse its insert deduplication) by this id alone, so the same file
 * imported into two tenants must get two ids, or the second tenant's logs are taken for a resend.
 * The default tenant's ids stay as they were before tenants counted, so a file imported by an
 * earlier build and imported again is still recognised.
 */
export function contentBatchId(signal: Signal, bytes: Uint8Array, tenant: string): string {
  const hash = createHash('sha256');
  if (tenant !== DEFAULT_TENANT) hash.update(`tenant:${tenant}\n`);
  return `content:${signal}:` + hash.update(bytes).digest('hex').slice(0, 32);
}

/** A store's write pipeline, fed with whole OTLP requests. */
export class TransferSink {
  readonly backend: StorageBackend;
  private readonly pool: DecodePool;
  private readonly writer: Writer;
  private readonly ingest: Ingest;
  private readonly metrics: Metrics;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly maxInFlight: number;

  private readonly tenant: string;

  /** `tenant`: whose rows the written data becomes (import's and copy's --tenant). */
  constructor(config: Config, backend: StorageBackend, metrics: Metrics, logger: Logger, tenant: string = DEFAULT_TENANT) {
    this.backend = backend;
    this.tenant = tenant;
    this.metrics = metrics;
    this.pool = new DecodePool(poolOptions(config), backend.encoder, logger);
    // No write-ahead log here, whatever delivery.ack says: rows the writer gives up on are lost, and counted.
    this.writer = new Writer(backend, { ...writerOptions(config), keptByLog: false, refusedWhenGivenUp: false, deniedIsPermanent: true }, metrics, logger);
    this.ingest = new Ingest(this.pool, this.writer, metrics, logger);
    // Enough requests decoding at once to keep every worker busy; the writer's byte budget bounds the rest.
    this.maxInFlight = Math.max(2, config['workers.threads'] || 4) * 2;
  }

  async start(): Promise<void> {
    await this.backend.start();
    await this.pool.start();
    await this.writer.start();
  }

  /**
   * Decodes and queues one request; `done` gets its outcome once it is queued (or refused for
   * good). Resolves as soon as another request may be offered: at most maxInFlight decode at once.
   */
  async send(signal: Signal, format: OtlpFormat, bytes: Buffer, done: (outcome: IngestOutcome) => void): Promise<void> {
    while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
    const batchId = contentBatchId(signal, bytes, this.tenant);
    const p = (async () => {
      for (;;) {
        const out = await this.ingest.handle({ transport: 'file', signal, format, body: bytes, batchId, tenant: this.tenant });
        // Overload is back-pressure here, not a failure: wait for room and offer it again.
        if (out.kind === 'refused' && WAITED_OUT.has(out.reason)) {
          await new Promise((r) => setTimeout(r, BUSY_WAIT_MS));
          continue;
        }
        done(out);
        return;
      }
    })();
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /** Waits until everything sent so far is decoded, queued and written (or dropped). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    await this.writer.drain();
  }

  /** Rows accepted but lost in the writer (a permanent store failure, retries exhausted), by signal. */
  async dropped(): Promise<Record<Signal, number>> {
    const out: Record<Signal, number> = { traces: 0, logs: 0 };
    for (const v of (await this.metrics.droppedRows.get()).values) out[v.labels['signal'] as Signal] += v.value;
    return out;
  }

  /** Drains what was sent, then stops the workers and the store. */
  async shutdown(): Promise<void> {
    try {
      await this.drain();
      await this.writer.shutdown();
    } finally {
      this.ingest.close();
      await this.pool.shutdown();
      await this.backend.shutdown();
    }
  }
}
