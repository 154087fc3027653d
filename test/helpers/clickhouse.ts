// ClickHouse backends on chdb's in-process engine. libchdb binds one data directory per process,
// so each test file (one process under vitest's forks pool) gets one directory, and every backend
// or shard in it is a database of its own in that directory.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config/index.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createClickhouseBackend } from '../../src/storage/clickhouse/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { tempDir } from './tmp.ts';
import { clickhouseOptions } from '../../src/storage/index.ts';

let dir: string | undefined;

/** The chdb data directory of this test process (removed when the process exits). */
export function chdbDir(): string {
  if (dir === undefined) {
    const d = tempDir('tracehouse-chdb-test-');
    process.once('exit', () => rmSync(d, { recursive: true, force: true }));
    dir = d;
  }
  return dir;
}

/** Removes this process's chdb directory (call once every backend on it is shut down). */
export function removeChdbDir(): void {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}

/** A database name no other backend in this process uses. */
export function uniqueDatabase(prefix = 'th'): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/** chdb:// URLs of the given databases in this process's directory. */
export function chdbUrls(databases: readonly string[]): string {
  return databases.map((d) => `chdb://${chdbDir()}?database=${d}`).join(',');
}

/** A ClickHouse configuration over the given databases (one shard each), plus extra flags. */
export function chdbConfig(databases: readonly string[], flags: Record<string, string> = {}): Config {
  return loadConfig({
    flags: { 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': chdbUrls(databases), ...flags },
  });
}

/** A started ClickHouse backend with one chdb database per shard. */
export async function chdbBackend(databases: readonly string[], flags: Record<string, string> = {}): Promise<StorageBackend> {
  const b = createClickhouseBackend(clickhouseOptions(chdbConfig(databases, flags)), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await b.start();
  return b;
}

/** A plain @clickhouse/client on this process's chdb directory, for looking at tables directly. */
export async function chdbClient(): Promise<ClickHouseClient> {
  const { createChdbConnection } = await import('chdb/connection');
  return createClient({ connection: createChdbConnection({ path: chdbDir() }) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection'] & object });
}

/** Rows of a query as arrays (JSONCompactEachRow). */
export async function select(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<unknown[][]> {
  return (await client.query({ query, format: 'JSONCompactEachRow', query_params: params })).json<unknown[]>();
}

/** The exporter's log table of its 2023 releases (and many copies of its DDL): TraceFlags UInt32, SeverityNumber Int32, no TimestampTime. */
export async function exporter2023Logs(client: ClickHouseClient, db: string): Promise<void> {
  const map = 'Map(LowCardinality(String), String)';
  await client.command({
    query: `CREATE TABLE ${db}.otel_logs (
  Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)), TraceId String, SpanId String, TraceFlags UInt32, SeverityText LowCardinality(String),
  SeverityNumber Int32, ServiceName LowCardinality(String), Body String, ResourceSchemaUrl String, ResourceAttributes ${map},
  ScopeSchemaUrl String, ScopeName String, ScopeVersion String, ScopeAttributes ${map}, LogAttributes ${map}
) ENGINE = MergeTree PARTITION BY toDate(Timestamp) ORDER BY (ServiceName, SeverityText, toUnixTimestamp(Timestamp), TraceId)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1`,
  });
}
