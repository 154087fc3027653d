// Storage metrics (size, rows, oldest stored time per store and signal), refreshed in the
// background: measuring a store can take a database round trip or a pass over its rows, so a
// scrape only reads the gauges this component last set. A store without StoreStats has none.
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { StorageStats, StoreStats } from '../storage/backend.ts';
import type { Logger } from './logger.ts';

/** How often the store is measured. */
export interface StorageStatsOptions {
  intervalMs: number;
}

/** Refresh failures are logged at most this often (each one is counted). */
const ERROR_LOG_INTERVAL_MS = 300_000;

/** Polls a store's stats() on an interval into gauges on the registry. */
export class StorageStatsPoller {
  private readonly store: StoreStats;
  private readonly backend: string;
  private readonly intervalMs: number;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private lastErrorLog = 0;
  private readonly size: Gauge<'backend' | 'signal'>;
  private readonly files: Gauge<'backend' | 'file'>;
  private readonly rows: Gauge<'backend' | 'signal'>;
  private readonly oldest: Gauge<'backend' | 'signal'>;
  private readonly duration: Gauge<'backend'>;
  private readonly failures: Counter<'backend'>;

  constructor(store: StoreStats, backend: string, options: StorageStatsOptions, registry: Registry, logger: Logger) {
    this.store = store;
    this.backend = backend;
    this.intervalMs = options.intervalMs;
    this.logger = logger;
    const registers = [registry];
    this.size = new Gauge({ name: 'tracehouse_storage_size_bytes', help: "Bytes a signal's tables and indexes take in the store (in memory for the memory store); SQLite reports its files instead", labelNames: ['backend', 'signal'], registers });
    this.files = new Gauge({ name: 'tracehouse_storage_file_size_bytes', help: 'Bytes of the files behind a file store (SQLite: main database file, trace index file and their WALs)', labelNames: ['backend', 'file'], registers });
    this.rows = new Gauge({ name: 'tracehouse_storage_rows', help: 'Rows stored (PostgreSQL: the planner estimate, absent before the first ANALYZE)', labelNames: ['backend', 'signal'], registers });
    this.oldest = new Gauge({ name: 'tracehouse_storage_oldest_timestamp_seconds', help: 'Start (spans) or time (log records) of the oldest stored row, Unix seconds; absent when the store holds none', labelNames: ['backend', 'signal'], registers });
    this.duration = new Gauge({ name: 'tracehouse_storage_stats_refresh_duration_seconds', help: 'How long the last measurement of the store took', labelNames: ['backend'], registers });
    this.failures = new Counter({ name: 'tracehouse_storage_stats_refresh_failures_total', help: 'Measurements of the store that failed (the gauges keep their previous values)', labelNames: ['backend'], registers });
    this.failures.inc({ backend }, 0);
  }

  /** Measures once now (without waiting for it) and then every intervalMs. */
  async start(): Promise<void> {
    if (this.timer || this.stopped) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs).unref();
  }

  /** Measures the store and sets the gauges; a measurement still running is awaited instead of overlapped. */
  refresh(): Promise<void> {
    this.running ??= this.measure().finally(() => (this.running = undefined));
    return this.running;
  }

  private async measure(): Promise<void> {
    const t = performance.now();
    let s: StorageStats;
    try {
      s = await this.store.stats();
    } catch (err) {
      this.failures.inc({ backend: this.backend });
      const now = Date.now();
      if (!this.stopped && now - this.lastErrorLog >= ERROR_LOG_INTERVAL_MS) {
        this.lastErrorLog = now;
        this.logger.warn({ err: (err as Error).message, backend: this.backend }, 'storage stats refresh failed; counted in tracehouse_storage_stats_refresh_failures_total');
      }
      return;
    }
    this.duration.set({ backend: this.backend }, (performance.now() - t) / 1000);
    const backend = this.backend;
    for (const x of s.signals) {
      const labels = { backend, signal: x.signal };
      if (x.bytes === undefined) this.size.remove(labels);
      else this.size.set(labels, x.bytes);
      if (x.rows === undefined) this.rows.remove(labels);
      else this.rows.set(labels, x.rows);
      // Seconds as a double keep microseconds for today's times: enough for an age alert.
      if (x.oldestUnixNano === undefined) this.oldest.remove(labels);
      else this.oldest.set(labels, Number(x.oldestUnixNano / 1000n) / 1e6);
    }
    for (const f of s.files ?? []) this.files.set({ backend, file: f.file }, f.bytes);
  }

  /** Stops polling and waits for a measurement in flight. Idempotent. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}

/** The store's stats piece, when it has one. */
export function storeStatsOf(store: Partial<StoreStats>): StoreStats | undefined {
  return typeof store.stats === 'function' ? (store as StoreStats) : undefined;
}
