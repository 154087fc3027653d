// Size, rows and age of the PostgreSQL store for the storage metrics. Sizes sum every partition
// with its indexes and TOAST (pg_total_relation_size over pg_partition_tree); row counts are the
// planner's estimate (reltuples), because count(*) over a large partitioned table is not cheap;
// the oldest span time one descent of each partition's tenant-and-time index per tenant, the
// oldest log time one of its time index.
import type { SignalStats, StorageStats } from '../backend.ts';
import type { Sql } from './reads.ts';
import { ident } from './sql.ts';

/** The statement measuring one schema's tables; text so bigints survive. */
function statsSql(schema: string): string {
  const s = ident(schema);
  // A relation name as a string literal (regclass input): a schema name may hold a quote.
  const rel = (table: string) => `'${`${s}.${table}`.replace(/'/g, "''")}'`;
  const tree = (table: string, expr: string) => `(SELECT ${expr} FROM pg_partition_tree(${rel(table)}::regclass) t JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf)`;
  const size = (table: string) => `(SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(${rel(table)}::regclass))`;
  // reltuples is -1 for a table never vacuumed or analyzed. Autovacuum analyzes only partitions
  // rows went into: those made ahead of today and the default one stay empty and at -1, so they
  // count as 0; the estimate is unknown (absent) only while no partition has been analyzed.
  const rows = (table: string) => tree(table, 'CASE WHEN bool_or(c.reltuples >= 0) THEN sum(greatest(c.reltuples, 0))::int8 END');
  return `SELECT
    (${size('spans')} + pg_total_relation_size(${rel('trace_index')}) + pg_total_relation_size(${rel('operations')}))::text AS traces_bytes,
    ${size('logs')}::text AS logs_bytes,
    ${rows('spans')}::text AS traces_rows,
    ${rows('logs')}::text AS logs_rows,
    -- Per tenant, as every spans index leads with it (spans_tenant_time), the tenants found by a
    -- skip scan of that index: a plain min() read every row of every partition.
    (WITH RECURSIVE t AS (
       (SELECT tenant FROM ${s}.spans ORDER BY tenant LIMIT 1)
       UNION ALL
       SELECT (SELECT sp.tenant FROM ${s}.spans sp WHERE sp.tenant > t.tenant ORDER BY sp.tenant LIMIT 1) FROM t WHERE t.tenant IS NOT NULL)
     SELECT min((SELECT min(sp.start_time_unix_nano) FROM ${s}.spans sp WHERE sp.tenant = t.tenant)) FROM t WHERE t.tenant IS NOT NULL)::text AS traces_oldest,
    (SELECT min(ts_unix_nano) FROM ${s}.logs)::text AS logs_oldest`;
}

type Row = Record<`${'traces' | 'logs'}_${'bytes' | 'rows' | 'oldest'}`, string | null>;

/** Measures the store's tables in one statement. */
export async function postgresStats(pool: Sql, schema: string): Promise<StorageStats> {
  const r = (await pool.query<Row>(statsSql(schema))).rows[0]!;
  const signals = (['traces', 'logs'] as const).map((signal): SignalStats => {
    const bytes = r[`${signal}_bytes`];
    const rows = r[`${signal}_rows`];
    const oldest = r[`${signal}_oldest`];
    return {
      signal,
      ...(bytes === null ? {} : { bytes: Number(bytes) }),
      ...(rows === null ? {} : { rows: Number(rows) }),
      ...(oldest === null ? {} : { oldestUnixNano: BigInt(oldest) }),
    };
  });
  return { signals };
}
