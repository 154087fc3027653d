// Picks the adapter named by storage.backend and gives it its own options, sliced from the
// configuration here: adapters never read the configuration themselves. Adapters load lazily
// so that pg or chdb are only imported when configured.
import { ConfigError, type Config } from '../config/index.ts';
import type { BackendDeps, StorageBackend } from './backend.ts';
import type { ClickhouseOptions } from './clickhouse/index.ts';
import type { MemoryOptions } from './memory/index.ts';
import type { PostgresOptions } from './postgres/index.ts';
import type { SqliteOptions } from './sqlite/index.ts';

/** storage.memory.* */
export function memoryOptions(c: Config): MemoryOptions {
  return { maxSpans: c['storage.memory.maxSpans'], maxLogs: c['storage.memory.maxLogs'], maxBytes: c['storage.memory.maxBytes'], maxAgeMs: c['storage.memory.maxAgeMs'] };
}

/** storage.sqlite.*, and the read budget query.timeoutMs */
export function sqliteOptions(c: Config): SqliteOptions {
  return { path: c['storage.sqlite.path'], retentionDays: c['storage.sqlite.retentionDays'], readThreads: c['storage.sqlite.readThreads'], queryTimeoutMs: c['query.timeoutMs'], attributeIndex: c['storage.sqlite.attributeIndex'], cacheMiB: c['storage.sqlite.cacheMiB'], checkpointMiB: c['storage.sqlite.checkpointMiB'] };
}

/** storage.postgres.* */
export function postgresOptions(c: Config): PostgresOptions {
  return {
    url: c['storage.postgres.url'],
    schema: c['storage.postgres.schema'],
    poolSize: c['storage.postgres.poolSize'],
    statementTimeoutMs: c['storage.postgres.statementTimeoutMs'],
    autoMigrate: c['storage.postgres.autoMigrate'],
    partitionsAheadDays: c['storage.postgres.partitionsAheadDays'],
    retentionDays: c['storage.postgres.retentionDays'],
    maintenanceIntervalMs: c['storage.postgres.maintenanceIntervalMs'],
    copyFormat: c['storage.postgres.copyFormat'],
    writeLockTimeoutMs: c['writer.writeTimeoutMs'],
  };
}

/** storage.clickhouse.*, and the HTTP connections the writer's concurrency needs per shard. */
export function clickhouseOptions(c: Config): ClickhouseOptions {
  return {
    urls: c['storage.clickhouse.urls'],
    database: c['storage.clickhouse.database'],
    username: c['storage.clickhouse.username'],
    password: c['storage.clickhouse.password'],
    tracesTable: c['storage.clickhouse.tracesTable'],
    logsTable: c['storage.clickhouse.logsTable'],
    ttlDays: c['storage.clickhouse.ttlDays'],
    cluster: c['storage.clickhouse.cluster'],
    compressionCodec: c['storage.clickhouse.compressionCodec'],
    asyncInsert: c['storage.clickhouse.asyncInsert'],
    autoMigrate: c['storage.clickhouse.autoMigrate'],
    requestTimeoutMs: c['storage.clickhouse.requestTimeoutMs'],
    maxConnections: c['writer.maxInFlightBatches'] * 2 + 4,
  };
}

/**
 * A connection string as it may be shown: a password in it replaced by ***, whether as
 * user:password@ (a slash, an @ or a space in it too: up to the last @, as URL reads it; the user
 * may be empty, `postgres://:password@host`), a password= parameter (JDBC) or key (a libpq string).
 */
function redactUrl(url: string): string {
  return url.replace(/(^(?!.*\/\/)|\/\/)([^:/@\s]*):.*@/, '$1$2:***@').replace(/(password\s*=\s*)('[^']*'|[^&;\s]*)/gi, '$1***');
}

/** Where a store over the network is looked for, as its key and value say it (password hidden): for start-up's messages. */
export function storeEndpoint(config: Config): string | undefined {
  switch (config['storage.backend']) {
    case 'postgres':
      return `storage.postgres.url = ${JSON.stringify(redactUrl(config['storage.postgres.url']))}`;
    case 'clickhouse':
      return `storage.clickhouse.urls = ${JSON.stringify(config['storage.clickhouse.urls'].map(redactUrl).join(','))}`;
    default:
      return undefined;
  }
}

/** Creates (not starts) the configured backend. */
export async function createBackend(config: Config, deps: BackendDeps): Promise<StorageBackend> {
  switch (config['storage.backend']) {
    case 'memory':
      return (await import('./memory/index.ts')).createMemoryBackend(memoryOptions(config), deps);
    case 'sqlite': {
      const { createSqliteBackend, refuseUnsharedPath } = await import('./sqlite/index.ts');
      // Here too, not only at its start: the write-ahead log opens its directory beside the path
      // before the store starts, and a refused path left a wal directory in the working directory.
      refuseUnsharedPath(config['storage.sqlite.path']);
      return createSqliteBackend(sqliteOptions(config), deps);
    }
    case 'postgres': {
      const url = config['storage.postgres.url'];
      // pg reads anything else against a dummy base URL: 'notaurl' became the host "base", and
      // start-up failed later with 'getaddrinfo ENOTFOUND base', naming neither key nor value.
      if (!url.startsWith('/') && !/^(postgres|postgresql|socket):/i.test(url)) {
        throw new ConfigError(`invalid configuration: storage.postgres.url = ${JSON.stringify(redactUrl(url))}: expected postgres://user:password@host:port/database (or postgresql://, socket:, a socket directory)`);
      }
      // pg reads the URL only when it first connects: one it cannot read (a # or / in a password
      // not percent-encoded, a port past 65535, an sslcert file missing) failed start-up and
      // `migrate` with "Invalid URL" alone, exit 1. A client made here (it does not connect) reads it now.
      const pg = (await import('pg')).default;
      try {
        new pg.Client({ connectionString: url });
      } catch (err) {
        const hint = (err as { code?: string }).code === 'ERR_INVALID_URL' ? ' (percent-encode reserved characters of a password: # as %23, / as %2F, ? as %3F)' : '';
        throw new ConfigError(`invalid configuration: storage.postgres.url = ${JSON.stringify(redactUrl(url))}: ${(err as Error).message}${hint}`, { cause: err });
      }
      // The schema is quoted into every statement as it is: an empty one (a variable set to
      // nothing) or one PostgreSQL keeps for itself failed start-up and `migrate` at the first
      // migration with "zero-length delimited identifier" or "unacceptable schema name", no key named.
      const schema = config['storage.postgres.schema'];
      if (schema.trim() === '' || schema.startsWith('pg_')) {
        throw new ConfigError(`invalid configuration: storage.postgres.schema = ${JSON.stringify(schema)}: expected a schema name (not empty; pg_ begins PostgreSQL's own schemas)`);
      }
      return (await import('./postgres/index.ts')).createPostgresBackend(postgresOptions(config), deps);
    }
    case 'clickhouse': {
      const { createClickhouseBackend } = await import('./clickhouse/index.ts');
      try {
        return createClickhouseBackend(clickhouseOptions(config), deps);
      } catch (err) {
        // Its settings are checked here (endpoints, identifiers, cluster): a bad one is a
        // configuration error, exit 2 with its message, like the ones loadConfig finds.
        throw new ConfigError(`invalid configuration: ${(err as Error).message}`, { cause: err });
      }
    }
    default:
      throw new Error(`unknown storage.backend ${String(config['storage.backend'])}`);
  }
}
