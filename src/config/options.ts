// Every configuration option, once: key, type, default and help. The schema, --help, the
// environment variable names and the YAML layout are all derived from this table.

export type OptionType =
  | { kind: 'string' }
  | { kind: 'int'; min: number; max?: number }
  | { kind: 'bool' }
  | { kind: 'list' }
  | { kind: 'enum'; values: readonly string[]; /** The value an empty string stands for. */ empty?: string }
  | { kind: 'listen' };

export interface OptionDef {
  key: string;
  type: OptionType;
  default: string | number | boolean | string[];
  help: string;
}

const MiB = 1024 * 1024;
/**
 * The longest receiver.grpc.maxConnectionAgeMs: grpc-js arms each connection's timer at the age
 * plus up to 10 % jitter, and Node fires a delay past its longest (2^31 - 1 ms) after 1 ms, so a
 * longer age (24 days, say) closed a share of the connections as soon as they opened.
 */
const MAX_CONNECTION_AGE_MS = Math.floor((2 ** 31 - 1) / 1.1);
const int = (min: number, max?: number): { kind: 'int'; min: number; max?: number } =>
  max === undefined ? { kind: 'int', min } : { kind: 'int', min, max };
const str = { kind: 'string' } as const;
const bool = { kind: 'bool' } as const;
const list = { kind: 'list' } as const;
const listen = { kind: 'listen' } as const;

const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

// One listener's TLS overrides. Empty strings and 'inherit' fall back to the global tls.* keys, so
// one certificate serves every port unless a listener needs its own (or none, e.g. ops for the kubelet).
const tlsOverrides = <const P extends string>(p: P, what: string) =>
  [
    { key: `${p}.tls.mode`, type: { kind: 'enum', values: ['inherit', 'off', 'tls', 'mtls'] }, default: 'inherit', help: `TLS on the ${what} port: inherit (TLS when a certificate is set, mTLS when a client CA is), off (plain even when tls.* is set), tls (no client certificates), mtls (client certificates required)` },
    { key: `${p}.tls.certFile`, type: str, default: '', help: `PEM certificate chain of the ${what} port (empty: tls.certFile)` },
    { key: `${p}.tls.keyFile`, type: str, default: '', help: `PEM private key of the ${what} port (empty: tls.keyFile)` },
    { key: `${p}.tls.clientCaFile`, type: str, default: '', help: `PEM CA bundle verifying client certificates on the ${what} port (empty: tls.clientCaFile)` },
    { key: `${p}.tls.minVersion`, type: { kind: 'enum', values: ['inherit', ...TLS_VERSIONS], empty: 'inherit' }, default: 'inherit', help: `Oldest TLS version the ${what} port accepts (inherit or empty: tls.minVersion)` },
  ] as const;

export const OPTIONS = [
  { key: 'receiver.grpc.enabled', type: bool, default: true, help: 'Serve OTLP/gRPC' },
  { key: 'receiver.grpc.listen', type: listen, default: '127.0.0.1:4317', help: 'OTLP/gRPC listen address (host:port); loopback unless set, 0.0.0.0 to accept other hosts' },
  { key: 'receiver.grpc.maxConcurrentStreams', type: int(1, 10_000), default: 100, help: 'Concurrent calls one gRPC connection may have open (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)' },
  { key: 'receiver.grpc.maxReceivingCalls', type: int(1, 100_000), default: 64, help: 'Export calls whose message is still arriving, over all connections; beyond it new calls get UNAVAILABLE before their bytes are buffered' },
  { key: 'receiver.grpc.receiveTimeoutMs', type: int(100), default: 30_000, help: 'Time an admitted export call\'s message may take to arrive and its stream to half-close before DEADLINE_EXCEEDED, which frees its receiver.grpc.maxReceivingCalls slot and its room in the queue' },
  { key: 'receiver.grpc.maxConnectionIdleMs', type: int(1000), default: 120_000, help: 'A gRPC connection with no call for this long is closed (GOAWAY)' },
  { key: 'receiver.grpc.maxConnectionAgeMs', type: int(0, MAX_CONNECTION_AGE_MS), default: 0, help: 'A gRPC connection older than this (±10 % jitter) is closed gracefully, so clients rebalance across pods (0: never; at most 1952257860, 22.6 days)' },
  { key: 'receiver.grpc.keepaliveTimeMs', type: int(1000), default: 60_000, help: 'The server pings a connection silent this long, and closes it when the ping is not answered within 20 s' },
  { key: 'receiver.grpc.streamWindowBytes', type: int(65_535, 2 ** 31 - 1), default: MiB, help: 'HTTP/2 receive window of each gRPC call: bytes a client sends before waiting for the server (grpc-js alone keeps 64 KiB)' },
  { key: 'receiver.grpc.connectionWindowBytes', type: int(65_535, 2 ** 31 - 1), default: 16 * MiB, help: 'HTTP/2 receive window of each gRPC connection, shared by its calls' },
  { key: 'receiver.http.enabled', type: bool, default: true, help: 'Serve OTLP/HTTP' },
  { key: 'receiver.http.listen', type: listen, default: '127.0.0.1:4318', help: 'OTLP/HTTP listen address (host:port); loopback unless set' },
  { key: 'receiver.http.corsAllowedOrigins', type: list, default: [], help: 'Origins allowed by CORS (comma-separated; * for any); empty turns CORS off' },
  { key: 'receiver.http.allowedHosts', type: list, default: [], help: 'Host names the OTLP/HTTP receiver answers on a loopback receiver.http.listen besides localhost and IP addresses (a proxy on this host that passes its own Host header); others get 403, so a web page whose name is rebound to 127.0.0.1 cannot post spans through a local browser' },
  { key: 'receiver.http.maxConnectionsPerClient', type: int(0), default: 256, help: 'Open connections one client address may hold on the OTLP/HTTP port; more are closed as they open (0: no limit)' },
  { key: 'receiver.http.bodyTimeoutMs', type: int(100), default: 30_000, help: 'Time a request body may take to arrive before 408' },
  { key: 'receiver.maxMessageBytes', type: int(1024), default: 64 * MiB, help: 'Largest request accepted, after decompression (413 / RESOURCE_EXHAUSTED beyond)' },
  { key: 'receiver.maxNestingDepth', type: int(1, 1000), default: 100, help: 'Deepest AnyValue nesting accepted; deeper items are rejected' },
  { key: 'workers.threads', type: int(0, 256), default: 0, help: 'Decode worker threads (0: one per core)' },
  { key: 'workers.maxPendingTasks', type: int(1), default: 256, help: 'Requests waiting for a decode worker before the receivers answer UNAVAILABLE' },
  { key: 'writer.maxBatchRows', type: int(1), default: 10_000, help: 'Rows per storage write' },
  { key: 'writer.flushIntervalMs', type: int(1), default: 200, help: 'Longest a row waits in a partial batch (with delivery.ack = stored, only while a write of its pipeline is in flight: a partial batch is written as soon as none is; not into ClickHouse without storage.clickhouse.asyncInsert)' },
  { key: 'writer.maxInFlightBatches', type: int(1, 1024), default: 4, help: 'Concurrent storage writes per pipeline' },
  { key: 'writer.maxQueueBytes', type: int(1024), default: 256 * MiB, help: 'Bytes accepted and not yet written (while a request decodes, the rows it is expected to make in the store\'s format, or eight times its bytes for OTLP/JSON; its encoded rows after); beyond it receivers answer UNAVAILABLE / 503' },
  { key: 'writer.retryInitialMs', type: int(1), default: 100, help: 'First retry delay of a failed write (jittered, doubling)' },
  { key: 'writer.retryMaxMs', type: int(1), default: 5_000, help: 'Longest delay between retries' },
  { key: 'writer.retryMaxElapsedMs', type: int(0, Number.MAX_SAFE_INTEGER), default: 600_000, help: 'Give up on a batch after retrying this long (0: never); dropped rows are counted' },
  { key: 'delivery.ack', type: { kind: 'enum', values: ['queued', 'durable', 'stored'] }, default: 'durable', help: 'When an export is acknowledged: queued (in the memory queue), durable (fsynced in the write-ahead log) or stored (after the storage write holding its rows commits). Unset with storage.backend = memory: queued (a crash loses that store whole, so a log would only replay what it had not taken yet); see README, Delivery guarantees' },
  { key: 'writer.writeTimeoutMs', type: int(100), default: 30_000, help: 'A storage write taking longer fails and is retried' },
  { key: 'limits.memorySoftBytes', type: int(-1), default: -1, help: 'Refuse new data (UNAVAILABLE / 503) while the process RSS is above this, before the OOM killer acts (-1: 80% of the cgroup memory limit when there is one, else no RSS limit), or while the main thread\'s V8 heap is over 90% of its limit (0: neither)' },
  { key: 'limits.memoryCheckIntervalMs', type: int(10), default: 1_000, help: 'How often memory is sampled against limits.memorySoftBytes' },
  { key: 'delivery.walDir', type: str, default: '', help: 'Directory of the write-ahead log (delivery.ack = durable); empty: a wal directory beside storage.sqlite.path' },
  { key: 'delivery.walMaxBytes', type: int(MiB), default: 1024 * MiB, help: 'Bytes the write-ahead log may hold; beyond it receivers answer UNAVAILABLE / 503 (nothing is dropped); at least 4 × receiver.maxMessageBytes' },
  { key: 'delivery.walSegmentBytes', type: int(64 * 1024), default: 64 * MiB, help: 'Write-ahead log segment file size, at most a quarter of delivery.walMaxBytes (a larger one is cut to that, so a full log spans several segments); stored segments are deleted whole' },
  { key: 'query.enabled', type: bool, default: true, help: 'Serve the read API' },
  { key: 'query.listen', type: listen, default: '127.0.0.1:16686', help: 'Read API listen address; loopback unless set' },
  { key: 'query.allowedHosts', type: list, default: [], help: 'Host names the read API answers on a loopback query.listen besides localhost and IP addresses (a proxy on this host that passes its own Host header); others get 403, so a web page whose name is rebound to 127.0.0.1 cannot read it through a local browser' },
  { key: 'query.maxLimit', type: int(1), default: 1000, help: 'Largest limit a read API search accepts (a Jaeger API search asking more is answered at it, with a warning)' },
  { key: 'query.timeoutMs', type: int(0), default: 10_000, help: 'Time budget of one SQLite read: a longer query is stopped and the read API answers 503 (0: no limit; PostgreSQL has storage.postgres.statementTimeoutMs)' },
  { key: 'query.maxSpansPerSearch', type: int(1), default: 50_000, help: 'Most spans one Jaeger API /api/traces answer holds over all its traces (a search, or a list of trace ids); the traces after it are left out and the last one kept says so, so a search of huge traces cannot run the collector out of memory' },
  { key: 'query.maxConcurrentReads', type: int(1), default: 4, help: 'Trace reads, Jaeger trace searches and log searches answered at once (each may hold a sixteenth of the heap); more wait their turn, so many readers of large traces at once cannot run the collector out of memory' },
  { key: 'query.maxSpansPerTrace', type: int(1), default: 20_000, help: 'Most spans a trace read returns (earliest first); a larger trace is cut with a warning in the answer, so one huge trace cannot hold the read API in one long serialization' },
  { key: 'ops.listen', type: listen, default: '127.0.0.1:8888', help: 'Metrics and health listen address; loopback unless set' },
  { key: 'ops.addressFile', type: str, default: '', help: 'File written once the operations endpoints listen, naming the host and port a health check on this host reaches them at (JSON: {"host","port"}), for a check that cannot see the flags or configuration file (the container image\'s HEALTHCHECK); empty: none' },
  { key: 'ops.allowedHosts', type: list, default: [], help: 'Host names the operations endpoints answer on a loopback ops.listen besides localhost and IP addresses (a proxy on this host that passes its own Host header); others get 403, so a web page whose name is rebound to 127.0.0.1 cannot read /metrics through a local browser' },
  { key: 'ops.requireAuth', type: bool, default: false, help: 'Require a bearer token with the read scope for /metrics (/healthz and /readyz stay open)' },
  { key: 'tls.certFile', type: str, default: '', help: 'PEM certificate chain served on every port (empty: no TLS); reloaded when the file changes' },
  { key: 'tls.keyFile', type: str, default: '', help: 'PEM private key of tls.certFile' },
  { key: 'tls.clientCaFile', type: str, default: '', help: 'PEM CA bundle; when set, clients must present a certificate it signed (mTLS)' },
  { key: 'tls.minVersion', type: { kind: 'enum', values: TLS_VERSIONS }, default: 'TLSv1.2', help: 'Oldest TLS version accepted' },
  { key: 'tls.reloadCheckIntervalMs', type: int(100), default: 10_000, help: 'How often certificate files are re-read in case a change notification was missed' },
  ...tlsOverrides('receiver.grpc', 'OTLP/gRPC'),
  ...tlsOverrides('receiver.http', 'OTLP/HTTP'),
  ...tlsOverrides('query', 'read API'),
  ...tlsOverrides('ops', 'operations'),
  { key: 'auth.tokensFile', type: str, default: '', help: 'YAML file of bearer tokens with their tenant and scopes (empty: no authentication, one default tenant); reloaded when it changes' },
  { key: 'auth.reloadCheckIntervalMs', type: int(100), default: 10_000, help: 'How often the tokens file is re-read in case a change notification was missed' },
  { key: 'log.level', type: { kind: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] }, default: 'info', help: 'Log level' },
  { key: 'shutdown.timeoutMs', type: int(100), default: 30_000, help: 'Longest graceful shutdown before exit' },
  { key: 'storage.backend', type: { kind: 'enum', values: ['sqlite', 'memory', 'postgres', 'clickhouse'] }, default: 'sqlite', help: 'Where data is stored' },
  { key: 'storage.startWaitMs', type: int(0), default: 120_000, help: 'How long start-up (and `tracehouse migrate`, `export`, `import` and `copy`) waits for a PostgreSQL or ClickHouse server it cannot reach yet (nothing listening, no answer in time; PostgreSQL starting up or out of connections; ClickHouse behind a proxy answering 502, 503, 504 or 429 in its place), trying again with backoff, before it fails; a refused login or a missing database fails at once (0: no wait)' },
  { key: 'storage.statsIntervalMs', type: int(0), default: 60_000, help: 'How often the store is measured for the tracehouse_storage_* metrics (size, rows, oldest time); scrapes read the last measurement (0: off)' },
  { key: 'storage.sqlite.path', type: str, default: './data/tracehouse.db', help: 'SQLite database file' },
  { key: 'storage.sqlite.readThreads', type: int(1, 64), default: 2, help: 'Threads running SQLite reads, each with its own connection (reads never run on the main thread)' },
  { key: 'storage.sqlite.checkpointMiB', type: int(1, 1024), default: 8, help: 'WAL bytes between the SQLite write connection\'s checkpoints, MiB (at most twice this on disk). Larger costs the store less write CPU and fewer bytes written as the file grows (64 against 8: 0-12 % less CPU per span and 8-23 % fewer bytes from 266k to 1.84M spans, phases U and V of docs/performance.md), but the disk needs this much room for a checkpoint, the write that runs one takes longer, and with delivery.ack = durable its flush delays the write-ahead log\'s fdatasyncs (64: 4-18 % fewer spans/s at the maximum rate). Every commit is synced whatever the interval (synchronous = FULL). After a write finds the disk full, 8 or less' },
  { key: 'storage.sqlite.cacheMiB', type: int(1, 4096), default: 32, help: 'Page cache of the SQLite write connection, MiB. The indexes take inserts all over their pages; a cache smaller than the pages one commit touches makes every commit spill and read them again, so bytes written per span grow with the file (SQLite\'s own default of 2 MiB wrote 9.1 KiB per span and read 10.6 once the file held 1.3 million spans, 32 MiB 4.3 and 2.2: bench/sqlite-growth.ts)' },
  { key: 'storage.sqlite.attributeIndex', type: bool, default: true, help: 'Keep a filter of its spans\' attribute terms and names on each span run, so an attribute or operation search passes over runs without a match instead of reading their spans (costs about twice the store\'s write CPU per span); off: searches check every span of the runs they walk' },
  { key: 'storage.sqlite.retentionDays', type: int(0), default: 0, help: 'Delete data older than this many days (0: keep)' },
  { key: 'storage.memory.maxSpans', type: int(1, 1_000_000_000), default: 1_000_000, help: 'Spans kept in memory (at most 10^9); oldest evicted first' },
  { key: 'storage.memory.maxLogs', type: int(1), default: 1_000_000, help: 'Log records kept in memory; oldest evicted first' },
  { key: 'storage.memory.maxBytes', type: int(1024), default: 512 * MiB, help: 'Memory the stored rows may take (their bytes as they arrived, about 0.2 KiB of index per row, 1 KiB for each part of a request they came in, 2 KiB for each tenant whose spans it holds, and 0.5 KiB for each span name and kind it lists); oldest evicted first' },
  { key: 'storage.memory.maxAgeMs', type: int(0, Number.MAX_SAFE_INTEGER), default: 0, help: 'Evict rows this long after they were stored, checked on every write and at least every minute: a row can be read up to a minute longer (0: only the size bounds evict)' },
  { key: 'storage.postgres.url', type: str, default: 'postgres://localhost:5432/tracehouse', help: 'PostgreSQL connection URL' },
  { key: 'storage.postgres.schema', type: str, default: 'tracehouse', help: 'PostgreSQL schema for Tracehouse tables' },
  { key: 'storage.postgres.poolSize', type: int(1, 1000), default: 8, help: 'PostgreSQL connections for writes; reads and the storage metrics have max(2, poolSize / 4) more of their own, which slow writes cannot take, and the health check one more, which slow reads cannot take' },
  { key: 'storage.postgres.statementTimeoutMs', type: int(0), default: 60_000, help: 'PostgreSQL statement_timeout (0: none); also the time budget of one read from its arrival (waiting for a read connection, making it and its statements): a read past it is stopped and the read API answers 503' },
  { key: 'storage.postgres.autoMigrate', type: bool, default: true, help: 'Apply migrations at start-up' },
  { key: 'storage.postgres.partitionsAheadDays', type: int(0, 366), default: 3, help: 'Daily partitions created ahead of today' },
  { key: 'storage.postgres.retentionDays', type: int(0), default: 7, help: 'Drop partitions older than this many days (0: keep)' },
  { key: 'storage.postgres.maintenanceIntervalMs', type: int(1000), default: 3_600_000, help: 'How often partitions are created ahead and retention runs' },
  { key: 'storage.postgres.copyFormat', type: { kind: 'enum', values: ['binary', 'text'] }, default: 'binary', help: 'COPY format used for writes' },
  { key: 'storage.clickhouse.urls', type: list, default: ['http://localhost:8123'], help: 'ClickHouse endpoints, one per shard (http(s)://… or chdb:///dir for the embedded engine)' },
  { key: 'storage.clickhouse.database', type: str, default: 'otel', help: 'ClickHouse database' },
  { key: 'storage.clickhouse.username', type: str, default: 'default', help: 'ClickHouse user' },
  { key: 'storage.clickhouse.password', type: str, default: '', help: 'ClickHouse password' },
  { key: 'storage.clickhouse.tracesTable', type: str, default: 'otel_traces', help: 'Spans table name' },
  { key: 'storage.clickhouse.logsTable', type: str, default: 'otel_logs', help: 'Logs table name' },
  { key: 'storage.clickhouse.ttlDays', type: int(0), default: 0, help: 'TTL retention in days (0: keep; a TTL past 2106-02-07, the end of ClickHouse\'s DateTime, is refused)' },
  { key: 'storage.clickhouse.cluster', type: str, default: '', help: 'Cluster name: DDL ON CLUSTER, Replicated engines, Distributed tables' },
  { key: 'storage.clickhouse.compressionCodec', type: str, default: 'ZSTD(1)', help: 'Codec for wide columns' },
  { key: 'storage.clickhouse.asyncInsert', type: bool, default: false, help: 'Use async_insert=1 (always with wait_for_async_insert=1)' },
  { key: 'storage.clickhouse.autoMigrate', type: bool, default: true, help: 'Apply migrations at start-up' },
  { key: 'storage.clickhouse.requestTimeoutMs', type: int(100), default: 60_000, help: 'ClickHouse request timeout' },
] as const satisfies readonly OptionDef[];

export type OptionKey = (typeof OPTIONS)[number]['key'];

/** The boolean options: on the command line they stand alone or take a BOOLEAN_WORD after them. */
export const BOOL_KEYS: ReadonlySet<string> = new Set(OPTIONS.filter((o) => o.type.kind === 'bool').map((o) => o.key));
/** The list options: given again on the command line, they add to the list (a ClickHouse shard each). */
export const LIST_KEYS: ReadonlySet<string> = new Set(OPTIONS.filter((o) => o.type.kind === 'list').map((o) => o.key));
/** A word the command lines take as a boolean option's value (loadConfig reads the same, any case). */
export const BOOLEAN_WORD = /^(true|false|1|0)$/i;

/** setTimeout's longest delay: Node fires a longer one after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The largest value of integer option `key`: its type's own `max`, or for a millisecond key (…Ms)
 * without one the longest timer delay, since those are delays (the two that are only compared
 * with elapsed time, writer.retryMaxElapsedMs and storage.memory.maxAgeMs, say their own).
 */
export function intMax(key: string, max: number | undefined): number | undefined {
  return max ?? (key.endsWith('Ms') ? MAX_TIMER_MS : undefined);
}

/** Whether an integer option takes a size unit (64MiB, 1g): the byte counts (…Bytes) alone; 5m on a …Ms key is refused, not read as 5 MiB. */
export const takesSizeUnit = (o: OptionDef): boolean => o.key.endsWith('Bytes');
