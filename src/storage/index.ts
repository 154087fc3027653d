// Picks the adapter named by storage.backend. Adapters load lazily so that pg or chdb are only
// imported when configured.
import type { Config } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { StorageBackend } from './backend.ts';

/** What every adapter factory receives besides the configuration. */
export interface BackendDeps {
  logger: Logger;
  metrics: Metrics;
}

/** Creates (not starts) the configured backend. */
export async function createBackend(config: Config, deps: BackendDeps): Promise<StorageBackend> {
  switch (config['storage.backend']) {
    case 'memory':
      return (await import('./memory/index.ts')).createMemoryBackend(config, deps);
    case 'sqlite':
      return (await import('./sqlite/index.ts')).createSqliteBackend(config, deps);
    case 'postgres':
      return (await import('./postgres/index.ts')).createPostgresBackend(config, deps);
    case 'clickhouse':
      return (await import('./clickhouse/index.ts')).createClickhouseBackend(config, deps);
    default:
      throw new Error(`unknown storage.backend ${String(config['storage.backend'])}`);
  }
}
