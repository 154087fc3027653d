// Every configuration option, once: key, type, default and help. The schema, --help, the
// environment variable names and the YAML layout are all derived from this table.

export type OptionType =
  | { kind: 'string' }
  | { kind: 'int'; min: number; max?: number }
  | { kind: 'bool' }
  | { kind: 'list' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'listen' };

export interface OptionDef {
  key: string;
  type: OptionType;
  default: string | number | boolean | string[];
  help: string;
}

const MiB = 1024 * 1024;
const int = (min: number, max?: number): { kind: 'int'; min: number; max?: number } =>
  max === undefined ? { kind: 'int', min } : { kind: 'int', min, max };
const str = { kind: 'string' } as const;
const bool = { kind: 'bool' } as const;
const list = { kind: 'list' } as const;
const listen = { kind: 'listen' } as const;

export const OPTIONS = [
  { key: 'receiver.grpc.enabled', type: bool, default: true, help: 'Serve OTLP/gRPC' },
  { key: 'receiver.grpc.listen', type: listen, default: '0.0.0.0:4317', help: 'OTLP/gRPC listen address (host:port)' },
  { key: 'receiver.http.enabled', type: bool, default: true, help: 'Serve OTLP/HTTP' },
  { key: 'receiver.http.listen', type: listen, default: '0.0.0.0:4318', help: 'OTLP/HTTP listen address (host:port)' },
  { key: 'receiver.http.corsAllowedOrigins', type: list, default: [], help: 'Origins allowed by CORS (comma-separated; * for any); empty turns CORS off' },
  { key: 'receiver.http.bodyTimeoutMs', type: int(100), default: 30_000, help: 'Time a request body may take to arrive before 408' },
  { key: 'receiver.maxMessageBytes', type: int(1024), default: 64 * MiB, help: 'Largest request accepted, after decompression (413 / RESOURCE_EXHAUSTED beyond)' },
  { key: 'receiver.maxNestingDepth', type: int(1, 1000), default: 100, help: 'Deepest AnyValue nesting accepted; deeper items are rejected' },
  { key: 'workers.threads', type: int(0, 256), default: 0, help: 'Decode worker threads (0: one per core)' },
  { key: 'workers.maxPendingTasks', type: int(1), default: 256, help: 'Requests waiting for a decode worker before the receivers answer UNAVAILABLE' },
  { key: 'writer.maxBatchRows', type: int(1), default: 10_000, help: 'Rows per storage write' },
  { key: 'writer.flushIntervalMs', type: int(1), default: 200, help: 'Longest a row waits in a partial batch' },
  { key: 'writer.maxInFlightBatches', type: int(1, 1024), default: 4, help: 'Concurrent storage writes per pipeline' },
  { key: 'writer.maxQueueBytes', type: int(1024), default: 256 * MiB, help: 'Bytes accepted and not yet written (request bytes while decoding, encoded rows after); beyond it receivers answer UNAVAILABLE / 503' },
  { key: 'writer.retryInitialMs', type: int(1), default: 100, help: 'First retry delay of a failed write (jittered, doubling)' },
  { key: 'writer.retryMaxMs', type: int(1), default: 5_000, help: 'Longest delay between retries' },
  { key: 'writer.retryMaxElapsedMs', type: int(0), default: 600_000, help: 'Give up on a batch after retrying this long (0: never); dropped rows are counted' },
  { key: 'writer.writeTimeoutMs', type: int(100), default: 30_000, help: 'A storage write taking longer fails and is retried' },
  { key: 'query.enabled', type: bool, default: true, help: 'Serve the read API' },
  { key: 'query.listen', type: listen, default: '0.0.0.0:16686', help: 'Read API listen address' },
  { key: 'query.maxLimit', type: int(1), default: 1000, help: 'Largest limit a read API search accepts' },
  { key: 'ops.listen', type: listen, default: '0.0.0.0:8888', help: 'Metrics and health listen address' },
  { key: 'log.level', type: { kind: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] }, default: 'info', help: 'Log level' },
  { key: 'shutdown.timeoutMs', type: int(100), default: 30_000, help: 'Longest graceful shutdown before exit' },
  { key: 'storage.backend', type: { kind: 'enum', values: ['sqlite', 'memory', 'postgres', 'clickhouse'] }, default: 'sqlite', help: 'Where data is stored' },
  { key: 'storage.sqlite.path', type: str, default: './data/tracehouse.db', help: 'SQLite database file' },
  { key: 'storage.sqlite.retentionDays', type: int(0), default: 0, help: 'Delete data older than this many days (0: keep)' },
  { key: 'storage.memory.maxSpans', type: int(1), default: 1_000_000, help: 'Spans kept in memory; oldest evicted first' },
  { key: 'storage.memory.maxLogs', type: int(1), default: 1_000_000, help: 'Log records kept in memory; oldest evicted first' },
  { key: 'storage.memory.maxBytes', type: int(1024), default: 512 * MiB, help: 'Bytes of stored row text kept in memory (object overhead comes on top); oldest evicted first' },
  { key: 'storage.memory.maxAgeMs', type: int(0), default: 0, help: 'Evict rows this long after they were stored (0: only the size bounds evict)' },
  { key: 'storage.postgres.url', type: str, default: 'postgres://localhost:5432/tracehouse', help: 'PostgreSQL connection URL' },
  { key: 'storage.postgres.schema', type: str, default: 'tracehouse', help: 'PostgreSQL schema for Tracehouse tables' },
  { key: 'storage.postgres.poolSize', type: int(1, 1000), default: 8, help: 'PostgreSQL connections' },
  { key: 'storage.postgres.statementTimeoutMs', type: int(0), default: 60_000, help: 'PostgreSQL statement_timeout (0: none)' },
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
  { key: 'storage.clickhouse.ttlDays', type: int(0), default: 0, help: 'TTL retention in days (0: keep)' },
  { key: 'storage.clickhouse.cluster', type: str, default: '', help: 'Cluster name: DDL ON CLUSTER, Replicated engines, Distributed tables' },
  { key: 'storage.clickhouse.compressionCodec', type: str, default: 'ZSTD(1)', help: 'Codec for wide columns' },
  { key: 'storage.clickhouse.asyncInsert', type: bool, default: false, help: 'Use async_insert=1 (always with wait_for_async_insert=1)' },
  { key: 'storage.clickhouse.autoMigrate', type: bool, default: true, help: 'Apply migrations at start-up' },
  { key: 'storage.clickhouse.requestTimeoutMs', type: int(100), default: 60_000, help: 'ClickHouse request timeout' },
] as const satisfies readonly OptionDef[];

export type OptionKey = (typeof OPTIONS)[number]['key'];
