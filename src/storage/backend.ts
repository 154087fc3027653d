// The storage port: what the pipeline and the read API need from a store, split the way each
// consumer uses it (Jaeger v2's tracestore Reader / Writer / Factory): the writer sees only
// StoreWriter, the read API only StoreReader, the application the lifecycle. The rows
// themselves are the data model in src/model/, not part of the port.
//
// Rows are encoded in the decode workers into the bytes each store writes (JSON lines for
// memory/sqlite, COPY for PostgreSQL, RowBinary for ClickHouse; see encoders.ts). Encoded chunks
// of the same signal and partition are concatenable, so the writer batches many requests into
// one write without knowing the format.
import type { LogRow, SpanRow } from '../model/rows.ts';
import type { Signal } from '../model/signal.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { EncoderSpec } from './encoders.ts';

/**
 * Rows of one signal encoded by the backend's encoder. Chunks with the same signal and
 * partition can be concatenated in any order (the writer batches them that way).
 */
export interface EncodedChunk {
  /** Writer pipeline this chunk belongs to (a ClickHouse shard, say); 0 for single-pipeline backends. */
  partition: number;
  rows: number;
  data: Uint8Array;
  /** Days (since 1970-01-01 UTC) of its rows' partition key, when its encoder reads them (PostgreSQL's day partitions). */
  days?: number[];
}

/** A batch the writer hands to the backend: chunks of one signal, one partition and one tenant. */
export interface WriteBatch {
  signal: Signal;
  partition: number;
  /** Whose rows these are: the store writes it into every row of the batch. */
  tenant: string;
  rows: number;
  bytes: number;
  chunks: Uint8Array[];
  /** Stable across retries of the same batch: backends use it to make writes idempotent. */
  batchId: string;
  /** The days of its rows, when every chunk's encoder told them (EncodedChunk.days). */
  days?: number[];
}

/**
 * Rows of a batch the store could never take (a ClickHouse row over a proxy's body limit, a row a
 * constraint refuses), the rest stored; the writer counts and logs them as dropped
 * (permanent_error). `chunks`: the indexes (in the batch's chunks) of those holding them, so that
 * with delivery.ack = stored only the requests whose rows were left out are refused; `chunkRows`:
 * how many rows of each of those chunks (same order) were left out, when not all of them (a split
 * for a proxy leaves out rows, not chunks): their requests' others were stored.
 */
export interface DroppedRows {
  rows: number;
  error: Error;
  chunks: number[];
  chunkRows?: number[];
}

/** What a write tells the writer to do next (opentelemetry-js ExportResponse style). */
export type WriteResult =
  /**
   * `dropped`: rows of the batch the store could never take (DroppedRows), the rest stored.
   * `chunksInUse`: an earlier request of this write was answered before it had sent its body whole
   * (a proxy's 413), and may still be sending the chunks: not to be freed (copiesChunks) now.
   */
  | { kind: 'success'; dropped?: DroppedRows; chunksInUse?: boolean }
  /**
   * `denied`: the store refused the role (or file) the write itself, a missing privilege: retried
   * for a collector, whose write-ahead log keeps the rows until an operator mends it; a transfer
   * command, which has no log and an operator waiting on it, fails the batch at once.
   */
  | { kind: 'retryable'; error: Error; retryAfterMs?: number; denied?: boolean }
  | { kind: 'permanent'; error: Error };

export interface TraceQuery {
  service?: string;
  /** Span name: a trace matches when any of its spans has it. */
  name?: string;
  /** Inclusive range on span start time, nanoseconds. */
  startNano?: bigint;
  endNano?: bigint;
  minDurationNano?: bigint;
  maxDurationNano?: bigint;
  /** OTLP status code of a matching span (2: error, what Jaeger's error=true asks for; 1: ok; 0: unset). */
  statusCode?: number;
  /** OTLP SpanKind number of a matching span (what Jaeger's span.kind=server asks for). */
  kind?: number;
  /** A trace matches when one span carries an attribute with this key whose value renders to this string. */
  attributes?: { key: string; value: string }[];
  limit: number;
}

export interface TraceSummary {
  traceId: string;
  /** Service and name of the root span (earliest span when no root was stored). */
  rootServiceName: string;
  rootSpanName: string;
  startTimeUnixNano: bigint;
  durationNano: bigint;
  spanCount: number;
  hasError: boolean;
}

export interface LogQuery {
  traceId?: string;
  service?: string;
  startNano?: bigint;
  endNano?: bigint;
  minSeverity?: number;
  limit: number;
  /**
   * Stop once the records returned hold this many stored bytes (the first is returned whatever
   * its size), so that a search of large records at a large limit cannot run the reading thread
   * out of heap; a search cut so says it with `cut` on its answer. No bound when absent.
   */
  maxBytes?: number;
}

/** What searchLogs answers: matching records, newest first; `cut` when LogQuery.maxBytes left some out. */
export type LogSearch = LogRow[] & { cut?: boolean };

/** A span name seen for a service, with the OTLP SpanKind number it was sent with. */
export interface Operation {
  name: string;
  kind: number;
}

export interface OperationQuery {
  service: string;
  /** OTLP SpanKind number; all kinds when absent. */
  kind?: number;
}

export interface DependencyQuery {
  /** Inclusive range on the child span's start time, nanoseconds. */
  startNano: bigint;
  endNano: bigint;
}

/** Calls from one service to another: spans of `child` whose parent span belongs to `parent`. */
export interface DependencyLink {
  parent: string;
  child: string;
  callCount: number;
}

/** A scan for export and copy: every stored row in a stable order, one page at a time. */
export interface ScanQuery {
  service?: string;
  /** Inclusive range on span start / log time, nanoseconds. */
  startNano?: bigint;
  endNano?: bigint;
  /** The cursor a previous page returned; absent for the first page. */
  after?: string;
  /** Most rows in the page. */
  limit: number;
  /**
   * Stop the page once its rows hold this many stored bytes (the first row is in it whatever its
   * size; the page is then not done), so that a page of large rows cannot run the reading process
   * out of heap. No bound when absent.
   */
  maxBytes?: number;
}

/** One page of a scan: rows in scan order, the cursor after them, and whether the scan reached the end. */
export interface ScanPage<T> {
  rows: T[];
  /**
   * Cursor after the last row (the query's own `after` when the page is empty). Resuming from it
   * later also finds rows written since: every one in stores that scan in the order rows were
   * stored (memory, SQLite), those whose time is after the cursor's in stores that scan in time
   * order (PostgreSQL, ClickHouse).
   */
  next: string | undefined;
  /**
   * Nothing more is stored after `next` for now (the page then has fewer than `limit` rows; a page
   * may also have fewer without ending the scan, as ClickHouse's does when it leaves out copies of
   * a resent span).
   */
  done: boolean;
  /** How far through the stored rows the scan is, 0..1, where the store can tell cheaply (for an ETA). */
  position?: number;
}

/** A trace read cut to a number of spans, and to stored bytes when asked (StoreReader.readTrace). */
export interface TraceRead {
  spans: SpanRow[];
  /** The trace's number of spans: more than spans.length when it was cut. */
  total: number;
  /** With maxBytes: the stored bytes of the spans returned (what a read of several traces counts against its bound). */
  bytes?: number;
  /** With maxBytes: set when the bytes left out spans that maxSpans kept. */
  cut?: boolean;
}

export interface BackendHealth {
  ok: boolean;
  detail?: string;
}

/**
 * Reads stored data (the read API's view of a store). Every read is of one tenant's data: rows
 * of other tenants are never returned, so another tenant's trace id reads as unknown.
 *
 * The read API's reads take a `signal`, aborted when their client is gone (a cancelled Grafana
 * query, a closed tab): the store then stops the read's work on the store (SQLite's read thread,
 * PostgreSQL's statement, ClickHouse's query) and the read rejects, with an error the caller does
 * not take for a store failure (it checks the signal). Reads without one run to their end.
 */
export interface StoreReader {
  /** All spans of a trace (any order), or [] when unknown. */
  getTrace(tenant: string, traceId: string): Promise<SpanRow[]>;
  /**
   * The `maxSpans` earliest-starting spans of a trace (then by span id; in that order when it has
   * more) and how many it has; no spans and 0 when unknown. Only those spans are decoded and
   * handed over: the read API's query.maxSpansPerTrace, so a trace of a million spans costs its
   * first thousands, not all. With maxBytes, no more of those earliest spans than hold that many
   * stored bytes (the first whatever its size; `cut` says so, withinBytes()), so a trace of a
   * few hundred large spans cannot run the reading thread out of heap either.
   */
  readTrace(tenant: string, traceId: string, maxSpans: number, maxBytes?: number, signal?: AbortSignal): Promise<TraceRead>;
  /**
   * Matching traces: the `limit` traces whose newest matching span starts latest, returned
   * newest trace start first.
   */
  searchTraces(tenant: string, query: TraceQuery, signal?: AbortSignal): Promise<TraceSummary[]>;
  /** Matching log records, newest first. */
  searchLogs(tenant: string, query: LogQuery, signal?: AbortSignal): Promise<LogSearch>;

  // Listings for the Jaeger query API and the web UI (reader side; one block so it moves as one).
  /** Names of the services with stored spans, sorted (may include services whose spans aged out since the last retention pass). */
  getServices(tenant: string): Promise<string[]>;
  /** Distinct span names and kinds of one service's spans, sorted by name then kind. */
  getOperations(tenant: string, query: OperationQuery): Promise<Operation[]>;
  /** Service-to-service calls (a span whose parent span has another service), counted over child spans starting in the range, sorted by parent then child. */
  getDependencies(tenant: string, query: DependencyQuery): Promise<DependencyLink[]>;

  // Scans for export and copy (one block).
  /**
   * Spans page by page (keyset pagination, for export and copy). The order is the store's own and
   * stable: rows written while a scan runs never make it repeat a row or skip one stored before
   * it began, and a cursor stays valid in a later process (copy resumes from it).
   */
  scanSpans(tenant: string, query: ScanQuery): Promise<ScanPage<SpanRow>>;
  /** Log records page by page, with the same guarantees as scanSpans. */
  scanLogs(tenant: string, query: ScanQuery): Promise<ScanPage<LogRow>>;
}

/** Writes encoded batches (the writer's view of a store). */
export interface StoreWriter {
  /** The backend's name, for metric labels and logs. */
  readonly name: string;
  /** Stores one batch (its signal says which table); idempotent per batchId. */
  write(batch: WriteBatch): Promise<WriteResult>;
  /**
   * True when a write that answered success holds nothing of the batch's chunks any more (it
   * copied them to another thread or sent them): the writer may then free their memory at once
   * instead of leaving it to V8. Absent for a store that keeps the chunks (memory).
   */
  readonly copiesChunks?: boolean;
}

/**
 * A read stopped at its store's time budget (SQLite's query.timeoutMs, PostgreSQL's
 * storage.postgres.statementTimeoutMs): the read API answers it 503 with its message, which names
 * the option, and does not log it as the store failing.
 */
export class QueryTimeout extends Error {
  override readonly name = 'QueryTimeout';
}

/**
 * What a store's migrate() did, for `tracehouse migrate` to say: applied changes, found the schema
 * up to date (run from a Helm hook at every upgrade, most runs), or found no store to migrate yet
 * (a SQLite file the collector's first start creates; the store says so itself).
 */
export type Migrated = 'applied' | 'up_to_date' | 'no_store';

/** Start, schema, health and shutdown: start() once; shutdown() is idempotent and safe before start. */
export interface StoreLifecycle {
  readonly name: string;
  start(): Promise<void>;
  /** Applies schema migrations (the `tracehouse migrate` command) and says what it did; absent where there is no schema. */
  migrate?(): Promise<Migrated>;
  health(): Promise<BackendHealth>;
  shutdown(): Promise<void>;
  /**
   * True when start() failed because the store cannot be reached yet (nothing listening, a server
   * starting up or out of connections), not because it refused what it was asked: start-up tries
   * again for storage.startWaitMs. Absent where the store is in-process.
   */
  unreachable?(err: unknown): boolean;
}

/** What a store holds of one signal, for the storage metrics. */
export interface SignalStats {
  signal: Signal;
  /** Bytes of the signal's tables and indexes on disk (in memory for the memory store); absent where the store cannot split its size by signal. */
  bytes?: number;
  /** Stored rows, exact or the database's own estimate; absent where counting is not cheap. */
  rows?: number;
  /** Start (spans) or time (log records) of the oldest stored row; absent when there is none. */
  oldestUnixNano?: bigint;
}

/** A store's size and age, as StoreStats reports it. */
export interface StorageStats {
  signals: SignalStats[];
  /** Files behind the store by role (SQLite: main, wal), for stores that are files. */
  files?: { file: string; bytes: number }[];
}

/** Size and age of what is stored (the storage metrics' view; polled in the background, never per scrape). */
export interface StoreStats {
  /** Measures the store now; may take a while on a large store, so callers poll it on an interval. */
  stats(): Promise<StorageStats>;
}

/** A whole store, as its factory returns it. */
export interface StorageBackend extends StoreReader, StoreWriter, StoreLifecycle, Partial<StoreStats> {
  readonly name: string;
  /** How the decode workers encode rows for this store. */
  readonly encoder: EncoderSpec;
}

/** What every adapter factory receives besides its own options. */
export interface BackendDeps {
  logger: Logger;
  metrics: Metrics;
  /** A store only read (export's and copy's source): PostgreSQL creates no day partition in it. */
  readOnly?: boolean;
  /**
   * A transfer's target (import's, copy's): its retention is the collector's. ClickHouse makes
   * new tables with the configured TTL but gives existing ones none from the command's
   * storage.clickhouse.ttlDays (a stale configuration would shorten the collector's and delete rows).
   */
  keepRetention?: boolean;
}
