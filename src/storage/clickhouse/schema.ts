// Table layout and DDL. The tables match the OpenTelemetry Collector ClickHouse exporter's
// (names, column names and types, skip indexes, partitioning), so Grafana's ClickHouse data
// source and existing dashboards work on them. Tracehouse adds columns of its own for what the
// exporter's columns lose (attribute types, dropped counts, flags, schema URLs, observed time):
// see TracehouseExtra in encoder.ts. Migration 2 adds the tenant of each row (TenantId).
//
// Cluster mode (storage.clickhouse.cluster): every statement runs ON CLUSTER, the data lives in
// Replicated*MergeTree tables named <table>_local, and Distributed tables carrying the exporter's
// names route rows by cityHash64(TraceId), so readers and writers use the same names either way.

import { DEFAULT_TENANT } from '../../model/tenant.ts';

/** What the DDL depends on; all of it comes from storage.clickhouse.* options. */
export interface SchemaOptions {
  database: string;
  tracesTable: string;
  logsTable: string;
  /** 0: keep forever. */
  ttlDays: number;
  /** Codec for wide columns (and the second stage of Delta/T64 columns), e.g. 'ZSTD(1)'. */
  codec: string;
  /** '' outside cluster mode. */
  cluster: string;
  /** non_replicated_deduplication_window of plain MergeTree tables (makes insert_deduplication_token work). */
  dedupWindow?: number;
}

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

/** Columns written by the encoder, in RowBinary order (TimestampTime of logs is filled by its DEFAULT). */
export const TRACE_COLUMNS = [
  'Timestamp',
  'TraceId',
  'SpanId',
  'ParentSpanId',
  'TraceState',
  'SpanName',
  'SpanKind',
  'ServiceName',
  'ResourceAttributes',
  'ScopeName',
  'ScopeVersion',
  'SpanAttributes',
  'Duration',
  'StatusCode',
  'StatusMessage',
  'Events.Timestamp',
  'Events.Name',
  'Events.Attributes',
  'Links.TraceId',
  'Links.SpanId',
  'Links.TraceState',
  'Links.Attributes',
  'TracehouseExtra',
] as const;

export const LOG_COLUMNS = [
  'Timestamp',
  'TraceId',
  'SpanId',
  'TraceFlags',
  'SeverityText',
  'SeverityNumber',
  'ServiceName',
  'Body',
  'ResourceSchemaUrl',
  'ResourceAttributes',
  'ScopeSchemaUrl',
  'ScopeName',
  'ScopeVersion',
  'ScopeAttributes',
  'LogAttributes',
  'EventName',
  'ObservedTimestamp',
  'TracehouseExtra',
] as const;

const ATTR_MAP = 'Map(LowCardinality(String), String)';

/** The type of each insert column as the encoder writes it (its RowBinary layout), as in the DDL below. */
const SHARED_TYPES = {
  Timestamp: 'DateTime64(9)',
  TraceId: 'String',
  SpanId: 'String',
  ServiceName: 'LowCardinality(String)',
  ResourceAttributes: ATTR_MAP,
  ScopeName: 'String',
  TracehouseExtra: 'String',
} as const;

export const COLUMN_TYPES: {
  traces: Record<(typeof TRACE_COLUMNS)[number], string>;
  logs: Record<(typeof LOG_COLUMNS)[number], string>;
} = {
  traces: {
    ...SHARED_TYPES,
    ParentSpanId: 'String',
    TraceState: 'String',
    SpanName: 'LowCardinality(String)',
    SpanKind: 'LowCardinality(String)',
    ScopeVersion: 'String',
    SpanAttributes: ATTR_MAP,
    Duration: 'UInt64',
    StatusCode: 'LowCardinality(String)',
    StatusMessage: 'String',
    'Events.Timestamp': 'Array(DateTime64(9))',
    'Events.Name': 'Array(LowCardinality(String))',
    'Events.Attributes': `Array(${ATTR_MAP})`,
    'Links.TraceId': 'Array(String)',
    'Links.SpanId': 'Array(String)',
    'Links.TraceState': 'Array(String)',
    'Links.Attributes': `Array(${ATTR_MAP})`,
  },
  logs: {
    ...SHARED_TYPES,
    TraceFlags: 'UInt8',
    SeverityText: 'LowCardinality(String)',
    SeverityNumber: 'UInt8',
    Body: 'String',
    ResourceSchemaUrl: 'LowCardinality(String)',
    ScopeSchemaUrl: 'LowCardinality(String)',
    ScopeVersion: 'LowCardinality(String)',
    ScopeAttributes: ATTR_MAP,
    LogAttributes: ATTR_MAP,
    EventName: 'String',
    ObservedTimestamp: 'DateTime64(9)',
  },
};

/**
 * Whether a column of this type reads the encoder's RowBinary of that type as it is: the same type
 * up to LowCardinality (same bytes) and a DateTime64(9)'s time zone. Tables the exporter made in
 * its earlier releases differ (logs: TraceFlags UInt32, SeverityNumber Int32).
 */
export function sameRowBinary(tableType: string, ours: string): boolean {
  const norm = (t: string) => t.replace(/LowCardinality\(([^()]*)\)/g, '$1').replace(/DateTime64\(9, '[^']*'\)/g, 'DateTime64(9)').replace(/\s+/g, '');
  return norm(tableType) === norm(ours);
}

export const MIGRATIONS_TABLE = 'tracehouse_migrations';
/** The tenant column (migration 2); rows stored before it, and the default tenant's, hold DEFAULT_TENANT. */
export const TENANT_COLUMN = 'TenantId';
const DEFAULT_DEDUP_WINDOW = 1000;
/** Largest DateTime (UInt32 seconds); the lookup table clamps to it instead of wrapping. */
const MAX_DATETIME_SECONDS = 4294967295;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CLUSTER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const CODEC = /^[A-Za-z0-9_]+(\(\s*\d+\s*(,\s*\d+\s*)*\))?(\s*,\s*[A-Za-z0-9_]+(\(\s*\d+\s*(,\s*\d+\s*)*\))?)*$/;

/**
 * The largest storage.clickhouse.ttlDays: a row's TTL is a DateTime (`toDateTime(time) +
 * toIntervalDay(n)`), which ends on 2106-02-07 and wraps into the past beyond it, so a row whose
 * TTL passes that day expires at once. This many days from a row stored within the coming year stay
 * before it.
 */
export function maxTtlDays(nowMs: number = Date.now()): number {
  return Math.floor((MAX_DATETIME_SECONDS - Math.floor(nowMs / 1000)) / 86_400) - 366;
}

/** Throws an Error naming the option when a name or codec could not be used safely in DDL. */
export function validateSchemaOptions(o: SchemaOptions): void {
  const names: [string, string][] = [
    ['storage.clickhouse.database', o.database],
    ['storage.clickhouse.tracesTable', o.tracesTable],
    ['storage.clickhouse.logsTable', o.logsTable],
  ];
  for (const [key, v] of names) {
    if (!IDENT.test(v)) throw new Error(`${key} = ${JSON.stringify(v)}: expected an identifier ([A-Za-z_][A-Za-z0-9_]*)`);
  }
  if (o.tracesTable === o.logsTable) throw new Error('storage.clickhouse.tracesTable and logsTable must differ');
  if (o.cluster !== '' && !CLUSTER_NAME.test(o.cluster)) {
    throw new Error(`storage.clickhouse.cluster = ${JSON.stringify(o.cluster)}: expected a cluster name ([A-Za-z0-9_.-])`);
  }
  const maxTtl = maxTtlDays();
  if (o.ttlDays > maxTtl) {
    throw new Error(
      `storage.clickhouse.ttlDays = ${o.ttlDays}: ClickHouse's TTL is a DateTime, which ends on 2106-02-07 and wraps into the past beyond it, so every row would expire at once; use at most ${maxTtl} (or 0 to keep rows for ever)`,
    );
  }
  if (!CODEC.test(o.codec)) {
    throw new Error(`storage.clickhouse.compressionCodec = ${JSON.stringify(o.codec)}: expected codecs such as ZSTD(1) or LZ4`);
  }
}

/** `name` quoted as a ClickHouse identifier. */
export function quoteIdent(name: string): string {
  return '`' + name.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';
}

/** `s` as a ClickHouse string literal. */
export function quoteString(s: string): string {
  return "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}

/** The physical table names: in cluster mode the data tables are <name>_local under Distributed <name>. */
export function tableNames(o: SchemaOptions) {
  const local = o.cluster === '' ? '' : '_local';
  const lookup = `${o.tracesTable}_trace_id_ts`;
  return {
    traces: o.tracesTable,
    tracesLocal: o.tracesTable + local,
    lookup,
    lookupLocal: lookup + local,
    lookupView: `${lookup}_mv`,
    logs: o.logsTable,
    logsLocal: o.logsTable + local,
    migrations: MIGRATIONS_TABLE,
  };
}

/** `db`.`table` */
export function qualified(o: SchemaOptions, table: string): string {
  return `${quoteIdent(o.database)}.${quoteIdent(table)}`;
}

function onCluster(o: SchemaOptions): string {
  return o.cluster === '' ? '' : ` ON CLUSTER ${quoteIdent(o.cluster)}`;
}

function engine(o: SchemaOptions, kind: 'MergeTree' | 'AggregatingMergeTree'): string {
  if (o.cluster === '') return kind;
  return `Replicated${kind}('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')`;
}

function settings(o: SchemaOptions, dedup: boolean): string {
  const s = ['index_granularity = 8192', 'ttl_only_drop_parts = 1'];
  // Replicated tables deduplicate by default; plain MergeTree only with a window.
  if (dedup && o.cluster === '') s.push(`non_replicated_deduplication_window = ${o.dedupWindow ?? DEFAULT_DEDUP_WINDOW}`);
  return `SETTINGS ${s.join(', ')}`;
}

function ttl(o: SchemaOptions, expr: string): string {
  return o.ttlDays > 0 ? `\nTTL ${expr} + toIntervalDay(${Math.floor(o.ttlDays)})` : '';
}

/** The statements that create the database and the migrations table (run before any migration). */
export function bootstrapStatements(o: SchemaOptions): string[] {
  validateSchemaOptions(o);
  const n = tableNames(o);
  const eng =
    o.cluster === ''
      ? 'MergeTree'
      : // One replication group across the whole cluster: every node sees every applied version.
        `ReplicatedMergeTree('/clickhouse/tables/tracehouse/{database}/{table}', '{shard}-{replica}')`;
  return [
    `CREATE DATABASE IF NOT EXISTS ${quoteIdent(o.database)}${onCluster(o)}`,
    `CREATE TABLE IF NOT EXISTS ${qualified(o, n.migrations)}${onCluster(o)}
(
    \`Version\` UInt32,
    \`Name\` String,
    \`AppliedAt\` DateTime64(3) DEFAULT now64(3)
)
ENGINE = ${eng}
ORDER BY Version`,
  ];
}

function tracesDdl(o: SchemaOptions): string {
  const n = tableNames(o);
  const c = o.codec;
  const attrMap = 'Map(LowCardinality(String), String)';
  return `CREATE TABLE IF NOT EXISTS ${qualified(o, n.tracesLocal)}${onCluster(o)}
(
    \`Timestamp\` DateTime64(9) CODEC(Delta(8), ${c}),
    \`TraceId\` String CODEC(${c}),
    \`SpanId\` String CODEC(${c}),
    \`ParentSpanId\` String CODEC(${c}),
    \`TraceState\` String CODEC(${c}),
    \`SpanName\` LowCardinality(String) CODEC(${c}),
    \`SpanKind\` LowCardinality(String) CODEC(${c}),
    \`ServiceName\` LowCardinality(String) CODEC(${c}),
    \`ResourceAttributes\` ${attrMap} CODEC(${c}),
    \`ScopeName\` String CODEC(${c}),
    \`ScopeVersion\` String CODEC(${c}),
    \`SpanAttributes\` ${attrMap} CODEC(${c}),
    \`Duration\` UInt64 CODEC(T64, ${c}),
    \`StatusCode\` LowCardinality(String) CODEC(${c}),
    \`StatusMessage\` String CODEC(${c}),
    \`Events\` Nested(\`Timestamp\` DateTime64(9), \`Name\` LowCardinality(String), \`Attributes\` ${attrMap}) CODEC(${c}),
    \`Links\` Nested(\`TraceId\` String, \`SpanId\` String, \`TraceState\` String, \`Attributes\` ${attrMap}) CODEC(${c}),
    \`TracehouseExtra\` String CODEC(${c}),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
)
ENGINE = ${engine(o, 'MergeTree')}
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)${ttl(o, 'toDateTime(Timestamp)')}
${settings(o, true)}`;
}

/**
 * A trace's lookup row expires with its newest span (End: the latest span start), as the spans do
 * each at its own start: getTrace bounds its scan by the row, so a row gone with the trace's oldest
 * span would hide the newer spans still stored. (The exporter's table expires it by Start.)
 */
const LOOKUP_TTL = 'toDateTime(End)';

function lookupDdl(o: SchemaOptions): string {
  const n = tableNames(o);
  return `CREATE TABLE IF NOT EXISTS ${qualified(o, n.lookupLocal)}${onCluster(o)}
(
    \`TraceId\` String CODEC(${o.codec}),
    \`Start\` SimpleAggregateFunction(min, DateTime) CODEC(${o.codec}),
    \`End\` SimpleAggregateFunction(max, DateTime) CODEC(${o.codec})
)
ENGINE = ${engine(o, 'AggregatingMergeTree')}
PARTITION BY toStartOfWeek(Start)
ORDER BY TraceId${ttl(o, LOOKUP_TTL)}
${settings(o, false)}`;
}

function lookupViewDdl(o: SchemaOptions): string {
  const n = tableNames(o);
  // Clamp instead of letting DateTime wrap for spans beyond 2106; getTrace treats the clamped
  // maximum as "no upper bound".
  const clamp = (f: string) => `${f}(toDateTime(least(Timestamp, toDateTime64(${MAX_DATETIME_SECONDS}, 9))))`;
  return `CREATE MATERIALIZED VIEW IF NOT EXISTS ${qualified(o, n.lookupView)}${onCluster(o)}
TO ${qualified(o, n.lookupLocal)}
AS SELECT
    TraceId,
    ${clamp('min')} AS Start,
    ${clamp('max')} AS End
FROM ${qualified(o, n.tracesLocal)}
WHERE TraceId != ''
GROUP BY TraceId`;
}

function logsDdl(o: SchemaOptions): string {
  const n = tableNames(o);
  const c = o.codec;
  const attrMap = 'Map(LowCardinality(String), String)';
  return `CREATE TABLE IF NOT EXISTS ${qualified(o, n.logsLocal)}${onCluster(o)}
(
    \`Timestamp\` DateTime64(9) CODEC(Delta(8), ${c}),
    \`TimestampTime\` DateTime DEFAULT toDateTime(Timestamp),
    \`TraceId\` String CODEC(${c}),
    \`SpanId\` String CODEC(${c}),
    \`TraceFlags\` UInt8,
    \`SeverityText\` LowCardinality(String) CODEC(${c}),
    \`SeverityNumber\` UInt8,
    \`ServiceName\` LowCardinality(String) CODEC(${c}),
    \`Body\` String CODEC(${c}),
    \`ResourceSchemaUrl\` LowCardinality(String) CODEC(${c}),
    \`ResourceAttributes\` ${attrMap} CODEC(${c}),
    \`ScopeSchemaUrl\` LowCardinality(String) CODEC(${c}),
    \`ScopeName\` String CODEC(${c}),
    \`ScopeVersion\` LowCardinality(String) CODEC(${c}),
    \`ScopeAttributes\` ${attrMap} CODEC(${c}),
    \`LogAttributes\` ${attrMap} CODEC(${c}),
    \`EventName\` String CODEC(${c}),
    \`ObservedTimestamp\` DateTime64(9) CODEC(Delta(8), ${c}),
    \`TracehouseExtra\` String CODEC(${c}),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8,
    INDEX idx_body_ngram Body TYPE ngrambf_v1(3, 32768, 3, 0) GRANULARITY 8
)
ENGINE = ${engine(o, 'MergeTree')}
PARTITION BY toDate(TimestampTime)
PRIMARY KEY (ServiceName, TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp)${ttl(o, 'TimestampTime')}
${settings(o, true)}`;
}

function distributedDdl(o: SchemaOptions, table: string, local: string, key: string): string {
  return `CREATE TABLE IF NOT EXISTS ${qualified(o, table)}${onCluster(o)} AS ${qualified(o, local)}
ENGINE = Distributed(${quoteString(o.cluster)}, ${quoteString(o.database)}, ${quoteString(local)}, ${key})`;
}

/** Every schema version, in order. Statements are idempotent (IF NOT EXISTS). */
export function migrations(o: SchemaOptions): Migration[] {
  validateSchemaOptions(o);
  const n = tableNames(o);
  const v1 = [tracesDdl(o), lookupDdl(o), lookupViewDdl(o), logsDdl(o)];
  if (o.cluster !== '') {
    v1.push(
      distributedDdl(o, n.traces, n.tracesLocal, 'cityHash64(TraceId)'),
      distributedDdl(o, n.lookup, n.lookupLocal, 'cityHash64(TraceId)'),
      // Logs follow their trace; unlinked logs spread by service and time.
      distributedDdl(o, n.logs, n.logsLocal, "if(TraceId = '', cityHash64(ServiceName, Timestamp), cityHash64(TraceId))"),
    );
  }
  // The sort keys stay the exporter's (a table's ORDER BY cannot change in place): the tenant is
  // a filter every read adds, helped by a skip index, not a leading key column.
  const tenant = (table: string, local: boolean) => [
    `ALTER TABLE ${qualified(o, table)}${onCluster(o)} ADD COLUMN IF NOT EXISTS ${quoteIdent(TENANT_COLUMN)} LowCardinality(String) DEFAULT ${quoteString(DEFAULT_TENANT)}${local ? ` CODEC(${o.codec})` : ''}`,
    ...(local ? [`ALTER TABLE ${qualified(o, table)}${onCluster(o)} ADD INDEX IF NOT EXISTS idx_tenant ${quoteIdent(TENANT_COLUMN)} TYPE set(256) GRANULARITY 1`] : []),
  ];
  const v2 = [...tenant(n.tracesLocal, true), ...tenant(n.logsLocal, true)];
  if (o.cluster !== '') v2.push(...tenant(n.traces, false), ...tenant(n.logs, false));
  // Tables made before version 3 expire a trace's lookup row with its oldest span.
  const v3 = o.ttlDays > 0 ? [`ALTER TABLE ${qualified(o, n.lookupLocal)}${onCluster(o)} MODIFY ${ttl(o, LOOKUP_TTL).trimStart()}`] : [];
  // Tables the exporter created before Tracehouse started on them (v1's IF NOT EXISTS left them
  // as they were): the columns every insert names that the exporter's tables lack.
  const addCol = (table: string, local: boolean, col: string, type: string) =>
    `ALTER TABLE ${qualified(o, table)}${onCluster(o)} ADD COLUMN IF NOT EXISTS ${quoteIdent(col)} ${type}${local ? ` CODEC(${o.codec})` : ''}`;
  const extras = (traces: string, logs: string, local: boolean) => [
    addCol(traces, local, 'TracehouseExtra', 'String'),
    addCol(logs, local, 'EventName', 'String'),
    addCol(logs, local, 'ObservedTimestamp', 'DateTime64(9)'),
    addCol(logs, local, 'TracehouseExtra', 'String'),
  ];
  const v4 = [...extras(n.tracesLocal, n.logsLocal, true), ...(o.cluster !== '' ? extras(n.traces, n.logs, false) : [])];
  // The exporter's plain MergeTree tables have no deduplication window, so the batch token did
  // nothing there and a retried batch was stored twice (Replicated tables deduplicate anyway).
  const dedup = (table: string) => `ALTER TABLE ${qualified(o, table)} MODIFY SETTING non_replicated_deduplication_window = ${o.dedupWindow ?? DEFAULT_DEDUP_WINDOW}`;
  const v5 = o.cluster === '' ? [dedup(n.tracesLocal), dedup(n.logsLocal)] : [];
  // Span tables of the exporter's 2023 releases have no ScopeName / ScopeVersion, which every
  // insert names (version 4 missed them: a database it ran on may be stuck without them).
  const scope = (traces: string, local: boolean) => [addCol(traces, local, 'ScopeName', 'String'), addCol(traces, local, 'ScopeVersion', 'String')];
  const v6 = [...scope(n.tracesLocal, true), ...(o.cluster !== '' ? scope(n.traces, false) : [])];
  return [
    { version: 1, name: 'otel exporter tables with Tracehouse extras', statements: v1 },
    { version: 2, name: 'tenant of every span and log record', statements: v2 },
    { version: 3, name: "a trace's lookup row expires with its newest span", statements: v3 },
    { version: 4, name: "Tracehouse's columns on tables the exporter made", statements: v4 },
    { version: 5, name: 'deduplication window on tables the exporter made', statements: v5 },
    { version: 6, name: 'scope columns on span tables of older exporter releases', statements: v6 },
  ];
}

/**
 * The TTL of each table rows expire from, as storage.clickhouse.ttlDays asks for it: `TTL` is the
 * clause ClickHouse shows in system.tables.engine_full (empty: none), `statement` the ALTER that
 * gives a table it. Migrations write the TTL only when they create a table, so a ttlDays changed
 * afterwards is brought to the tables by this (ClickhouseBackend.migrate).
 */
export function ttlTargets(o: SchemaOptions, logsHaveTimestampTime = true): { table: string; ttl: string; statement: string }[] {
  const n = tableNames(o);
  // The exporter's log tables of 2023 have no TimestampTime: their rows expire by Timestamp.
  const logsTime = logsHaveTimestampTime ? 'TimestampTime' : 'toDateTime(Timestamp)';
  return ([[n.tracesLocal, 'toDateTime(Timestamp)'], [n.lookupLocal, LOOKUP_TTL], [n.logsLocal, logsTime]] as const).map(([table, expr]) => {
    const clause = ttl(o, expr).trimStart();
    return {
      table,
      ttl: clause.replace(/^TTL /, ''),
      statement: `ALTER TABLE ${qualified(o, table)}${onCluster(o)} ${clause === '' ? 'REMOVE TTL' : `MODIFY ${clause}`}`,
    };
  });
}

/** The latest schema version this build knows. */
export function latestVersion(o: SchemaOptions): number {
  return Math.max(...migrations(o).map((m) => m.version));
}
