// One registry for the process. Metric names follow the Collector's (accepted, refused, written,
// failed, queue_size, queue_capacity), prefixed tracehouse_, with the unit Prometheus asks for.
// Labels carry only bounded values (one vocabulary: transport, signal, backend, fixed reasons),
// and every known label set starts at 0 so rate() and absent() alerts work from the start.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { COUNTED_REASONS } from '../common/refusals.ts';
import { SIGNALS } from '../model/signal.ts';

export type Transport = 'grpc' | 'http' | 'file';
const TRANSPORTS: readonly Transport[] = ['grpc', 'http', 'file'];

/**
 * Why items are counted in the refused_spans / refused_log_records counters: invalid ones, and
 * those of a decoded request refused whole (Ingest.countRefusedItems).
 */
export const ITEM_REFUSAL_REASONS = ['invalid_item', 'wal_full', 'wal_unavailable', 'too_large', 'not_stored', 'rejected_by_store', 'shutting_down'] as const;

/** Why the writer gave up on rows (the dropped_rows `reason` label). */
export const DROP_REASONS = ['permanent_error', 'retries_exhausted', 'shutdown', 'writer_error', 'unreadable'] as const;

/**
 * Buckets of one storage write: up to a minute, past writer.writeTimeoutMs's default (30 s) and
 * PostgreSQL's statement timeout (60 s), so a store slowing towards its timeouts shows in
 * histogram_quantile() instead of vanishing into +Inf beyond 10 s.
 */
const WRITE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Buckets of one request's decode: a request of receiver.maxMessageBytes (64 MiB) takes seconds. */
const DECODE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 5, 10];

/**
 * How often the event loop's delay is sampled for the nodejs_eventloop_lag_* gauges. prom-client's
 * own sampler runs every 10 ms: an idle collector's main thread woke 100 times a second for it
 * alone, about 0.4 s of CPU a minute, on every pod beside every service.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;
/** prom-client's sampler, whose gauges are replaced below: a timer that never comes due. */
const NEVER_MS = 2 ** 31 - 1;
const LAG_GAUGES = {
  min: ['nodejs_eventloop_lag_min_seconds', 'The minimum recorded event loop delay.'],
  max: ['nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay.'],
  mean: ['nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.'],
  stddev: ['nodejs_eventloop_lag_stddev_seconds', 'The standard deviation of the recorded event loop delays.'],
  p50: ['nodejs_eventloop_lag_p50_seconds', 'The 50th percentile of the recorded event loop delays.'],
  p90: ['nodejs_eventloop_lag_p90_seconds', 'The 90th percentile of the recorded event loop delays.'],
  p99: ['nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays.'],
} as const;

/**
 * The nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds gauges of prom-client, from a
 * sample each EVENT_LOOP_SAMPLE_MS, since the last scrape. A sample is how late the sampling timer
 * fired (prom-client's values include its 10 ms period: an idle loop read 0.01 s); 0 when no sample
 * was taken since the last scrape.
 */
function eventLoopLagGauges(registry: Registry): void {
  for (const [name] of Object.values(LAG_GAUGES)) registry.removeSingleMetric(name);
  const h = monitorEventLoopDelay({ resolution: EVENT_LOOP_SAMPLE_MS });
  h.enable();
  const periodNs = EVENT_LOOP_SAMPLE_MS * 1e6;
  const late = (ns: number): number => (h.count === 0 ? 0 : Math.max(0, ns - periodNs) / 1e9);
  // One gauge's collect sets them all (registered first, so collected first), as prom-client does.
  const collect = (): void => {
    gauges.min.set(late(h.min));
    gauges.max.set(late(h.max));
    gauges.mean.set(late(h.mean));
    gauges.stddev.set(h.count === 0 ? 0 : h.stddev / 1e9);
    gauges.p50.set(late(h.percentile(50)));
    gauges.p90.set(late(h.percentile(90)));
    gauges.p99.set(late(h.percentile(99)));
    h.reset();
  };
  const gauges = Object.fromEntries(
    Object.entries(LAG_GAUGES).map(([k, [name, help]]) => [k, new Gauge({ name, help, registers: [registry], ...(k === 'min' ? { collect } : {}) })]),
  ) as Record<keyof typeof LAG_GAUGES, Gauge>;
}

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Creates the metrics of one collector instance (tests create several in one process). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: NEVER_MS });
  eventLoopLagGauges(registry);
  const reg = { registers: [registry] };
  // Read at scrape time (a walk over a handful of writer pipelines), so it is never stale.
  const queueAge = { seconds: (): number => 0 };
  // The write-ahead log's figures, read at scrape time; DurableLog sets it (zeros without a log).
  const walState = { read: (): { bytes: number; maxBytes: number; pendingEntries: number; fsyncs: number } => ({ bytes: 0, maxBytes: 0, pendingEntries: 0, fsyncs: 0 }) };
  let fsyncsSeen = 0;
  const m = {
    /** Where tracehouse_queue_oldest_age_seconds comes from; the writer sets it. */
    queueAge,
    /** Where the tracehouse_wal_* gauges come from; the durable log sets it. */
    walState,
    registry,
    acceptedSpans: new Counter({ name: 'tracehouse_receiver_accepted_spans_total', help: 'Spans accepted into the write queue', labelNames: ['transport'] as const, ...reg }),
    refusedSpans: new Counter({ name: 'tracehouse_receiver_refused_spans_total', help: 'Spans refused: invalid items, and those of decoded requests refused whole (write-ahead log full or failing, not stored, shutting down); requests refused before decoding count in refused_requests_total only', labelNames: ['transport', 'reason'] as const, ...reg }),
    acceptedLogs: new Counter({ name: 'tracehouse_receiver_accepted_log_records_total', help: 'Log records accepted into the write queue', labelNames: ['transport'] as const, ...reg }),
    refusedLogs: new Counter({ name: 'tracehouse_receiver_refused_log_records_total', help: 'Log records refused, as tracehouse_receiver_refused_spans_total counts spans', labelNames: ['transport', 'reason'] as const, ...reg }),
    acceptedRequests: new Counter({ name: 'tracehouse_receiver_accepted_requests_total', help: 'Export requests answered as taken (also those with invalid items refused as partial success): with tracehouse_receiver_refused_requests_total, the requests received', labelNames: ['transport'] as const, ...reg }),
    unansweredRequests: new Counter({ name: 'tracehouse_receiver_unanswered_requests_total', help: 'Export requests whose client had gone when the collector answered (its gRPC deadline passed, it cancelled, or it closed its connection): counted in accepted or refused as well; the client never heard back and may send the request again', labelNames: ['transport'] as const, ...reg }),
    refusedRequests: new Counter({ name: 'tracehouse_receiver_refused_requests_total', help: 'Requests refused as a whole, by reason', labelNames: ['transport', 'reason'] as const, ...reg }),
    queueSize: new Gauge({ name: 'tracehouse_queue_size_bytes', help: 'Bytes accepted (or reserved by requests being decoded) and not yet written', ...reg }),
    queueCapacity: new Gauge({ name: 'tracehouse_queue_capacity_bytes', help: 'writer.maxQueueBytes', ...reg }),
    queueOldestAge: new Gauge({
      name: 'tracehouse_queue_oldest_age_seconds',
      help: 'Age of the oldest accepted row not yet stored (0 when everything is stored)',
      ...reg,
      collect() {
        this.set(queueAge.seconds());
      },
    }),
    walBytes: new Gauge({ name: 'tracehouse_wal_bytes', help: 'Bytes the write-ahead log holds (segment files plus queued entries); appends beyond delivery.walMaxBytes are refused', ...reg, collect() { this.set(walState.read().bytes); } }),
    walCapacity: new Gauge({ name: 'tracehouse_wal_capacity_bytes', help: 'delivery.walMaxBytes: an append that would take tracehouse_wal_bytes beyond it is refused (503 / UNAVAILABLE, wal_full); 0 without a write-ahead log', ...reg, collect() { this.set(walState.read().maxBytes); } }),
    walPendingEntries: new Gauge({ name: 'tracehouse_wal_pending_entries', help: 'Requests in the write-ahead log whose rows are not all stored yet', ...reg, collect() { this.set(walState.read().pendingEntries); } }),
    walFsyncs: new Counter({
      name: 'tracehouse_wal_fsyncs_total',
      help: 'fdatasync calls of the write-ahead log (one per group commit)',
      ...reg,
      collect() {
        const now = walState.read().fsyncs;
        if (now > fsyncsSeen) this.inc(now - fsyncsSeen);
        fsyncsSeen = now;
      },
    }),
    walCorruptBytes: new Counter({ name: 'tracehouse_wal_corrupt_bytes_total', help: 'Write-ahead log bytes cut at start: torn_tail (a crash mid-append) or corrupt (failed checksum; their rows are lost)', labelNames: ['kind'] as const, ...reg }),
    memoryLimited: new Gauge({ name: 'tracehouse_memory_limited', help: '1 while memory is over limits.memorySoftBytes (or the heap near its limit) and new data is refused', ...reg }),
    writtenRows: new Counter({ name: 'tracehouse_writer_written_rows_total', help: 'Rows stored', labelNames: ['backend', 'signal'] as const, ...reg }),
    failedBatches: new Counter({ name: 'tracehouse_writer_failed_batches_total', help: 'Storage writes that failed (each attempt)', labelNames: ['backend', 'signal', 'kind'] as const, ...reg }),
    droppedRows: new Counter({ name: 'tracehouse_writer_dropped_rows_total', help: 'Accepted rows lost: permanent write failure, retries exhausted, or stored but unreadable (a malformed chunk found on read)', labelNames: ['backend', 'signal', 'reason'] as const, ...reg }),
    batchDuration: new Histogram({ name: 'tracehouse_writer_batch_duration_seconds', help: 'Duration of one storage write', labelNames: ['backend', 'signal'] as const, buckets: WRITE_BUCKETS, ...reg }),
    decodeDuration: new Histogram({ name: 'tracehouse_worker_decode_duration_seconds', help: 'Decode, normalize and encode time of one request in a worker', labelNames: ['signal'] as const, buckets: DECODE_BUCKETS, ...reg }),
    workerHeapBytes: new Gauge({ name: 'tracehouse_worker_heap_bytes', help: 'V8 heap size of the decode worker threads, summed (as last reported by each)', ...reg }),
    evictedRows: new Counter({ name: 'tracehouse_storage_evicted_rows_total', help: 'Rows evicted by a bounded store (memory backend)', labelNames: ['signal'] as const, ...reg }),
    splitBatches: new Counter({ name: 'tracehouse_storage_split_batches_total', help: "Batches refused as too large on the way to ClickHouse (a proxy's HTTP 413) and written in smaller inserts", labelNames: ['signal'] as const, ...reg }),
    ready: new Gauge({ name: 'tracehouse_ready', help: '1 while /readyz would answer 200, else 0 (as last checked; gRPC health checks each second)', ...reg }),
    buildInfo: new Gauge({ name: 'tracehouse_build_info', help: 'Always 1; the labels say which Tracehouse and Node.js run', labelNames: ['version', 'node'] as const, ...reg }),
  };
  m.buildInfo.set({ version: VERSION, node: process.version }, 1);
  for (const transport of TRANSPORTS) {
    for (const c of [m.acceptedSpans, m.acceptedLogs, m.acceptedRequests, m.unansweredRequests]) c.inc({ transport }, 0);
    for (const c of [m.refusedSpans, m.refusedLogs]) for (const reason of ITEM_REFUSAL_REASONS) c.inc({ transport, reason }, 0);
    for (const reason of COUNTED_REASONS) m.refusedRequests.inc({ transport, reason }, 0);
  }
  for (const signal of SIGNALS) {
    m.evictedRows.inc({ signal }, 0);
    m.splitBatches.inc({ signal }, 0);
    m.decodeDuration.zero({ signal });
  }
  for (const kind of ['torn_tail', 'corrupt'] as const) m.walCorruptBytes.inc({ kind }, 0);
  m.memoryLimited.set(0);
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Starts the writer's labelled counters at 0 for one store (its name is known only then). */
export function initWriterMetrics(m: Metrics, backend: string): void {
  for (const signal of SIGNALS) {
    m.writtenRows.inc({ backend, signal }, 0);
    m.batchDuration.zero({ backend, signal });
    for (const kind of ['retryable', 'permanent'] as const) m.failedBatches.inc({ backend, signal, kind }, 0);
    for (const reason of DROP_REASONS) m.droppedRows.inc({ backend, signal, reason }, 0);
  }
}
