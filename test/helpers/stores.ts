// Collector flags that point each store at a store of its own, for tests that run on every store.
import { chdbUrls, uniqueDatabase } from './clickhouse.ts';
import { createTestDatabase } from './postgres.ts';

/** Each store's flags, made when its tests start: a new PostgreSQL database, and ClickHouse over `clickhouseShards` new databases of the in-process engine (`prefix` names them). */
export function storeFlags(prefix: string, clickhouseShards: number): Record<string, () => Promise<Record<string, string>>> {
  return {
    memory: async () => ({}),
    sqlite: async () => ({}),
    postgres: async () => ({ 'storage.postgres.url': await createTestDatabase(prefix) }),
    clickhouse: async () => ({ 'storage.clickhouse.urls': chdbUrls(Array.from({ length: clickhouseShards }, (_, i) => uniqueDatabase(`${prefix}_${i}`))) }),
  };
}
