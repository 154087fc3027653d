// Versioned schema migrations. Each runs once, recorded in <schema>.schema_migrations; all pending
// ones apply in one transaction under an advisory lock, so instances starting together queue up
// and the later ones find nothing to do.
import type { Pool } from 'pg';
import { DEFAULT_TENANT } from '../../model/tenant.ts';
import { LOG_COLUMNS, SPAN_COLUMNS, columnDefs } from './columns.ts';
import { advisoryKey, ident, withUnboundedTransaction } from './sql.ts';

export interface Migration {
  version: number;
  name: string;
  sql(schema: string): string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'partitioned spans and logs, trace index',
    sql: (schema) => {
      const s = ident(schema);
      return `
CREATE TABLE ${s}.spans (
  ${columnDefs(SPAN_COLUMNS)}
) PARTITION BY RANGE (start_time_unix_nano);
-- The idempotency key (a retried batch hits it and inserts nothing) doubles as the trace-id index.
CREATE UNIQUE INDEX spans_key ON ${s}.spans (trace_id, span_id, start_time_unix_nano);
-- left(): a megabyte-long service.name must not exceed the btree row limit and fail a batch.
CREATE INDEX spans_service_time ON ${s}.spans (left(service_name, 256), start_time_unix_nano);
CREATE INDEX spans_time ON ${s}.spans (start_time_unix_nano);
-- Attribute search (span and resource attributes), see tokens.ts.
CREATE INDEX spans_attr_tokens ON ${s}.spans USING gin (attr_tokens);
CREATE TABLE ${s}.spans_default PARTITION OF ${s}.spans DEFAULT;

-- Trace id -> time range of its spans, so a trace read visits only the partitions it lives in.
CREATE TABLE ${s}.trace_index (
  trace_id bytea PRIMARY KEY,
  first_start_unix_nano int8 NOT NULL,
  last_start_unix_nano int8 NOT NULL
);
CREATE INDEX trace_index_last ON ${s}.trace_index (last_start_unix_nano);

CREATE TABLE ${s}.logs (
  ${columnDefs(LOG_COLUMNS)},
  -- Which write batch (hash of its id) and which row of it: the idempotency key of log records,
  -- which have no natural one.
  batch_key int8 NOT NULL,
  seq int4 NOT NULL
) PARTITION BY RANGE (ts_unix_nano);
CREATE UNIQUE INDEX logs_key ON ${s}.logs (ts_unix_nano, batch_key, seq);
CREATE INDEX logs_service_time ON ${s}.logs (left(service_name, 256), ts_unix_nano);
CREATE INDEX logs_trace ON ${s}.logs (trace_id) WHERE trace_id <> '\\x'::bytea;
CREATE TABLE ${s}.logs_default PARTITION OF ${s}.logs DEFAULT;
`;
    },
  },
  {
    version: 2,
    name: 'operations listing (services, span names and kinds)',
    sql: (schema) => {
      const s = ident(schema);
      // Byte order (COLLATE "C"): an index no locale changes (reads sort in the port's order, reads.ts). Names are kept to 256 characters, as in the service index: a megabyte-long name must not
      // exceed the btree row limit and fail a batch. Filled from the stored spans once, then by
      // every span write (see the insert in index.ts).
      return `
CREATE TABLE ${s}.operations (
  service_name text COLLATE "C" NOT NULL,
  name text COLLATE "C" NOT NULL,
  kind int4 NOT NULL,
  last_start_unix_nano int8 NOT NULL,
  PRIMARY KEY (service_name, name, kind)
);
INSERT INTO ${s}.operations (service_name, name, kind, last_start_unix_nano)
SELECT left(service_name, 256), left(name, 256), kind, max(start_time_unix_nano) FROM ${s}.spans GROUP BY 1, 2, 3
ON CONFLICT DO NOTHING;
`;
    },
  },
  {
    version: 3,
    name: 'tenants: every row, trace index and operation carries its tenant',
    sql: (schema) => {
      const s = ident(schema);
      // Rows stored before tenants existed become the default tenant's (a constant default: no
      // table rewrite). Every key and index leads with the tenant, since every read is of one
      // tenant, and two tenants may send the same trace and span ids without one hiding the other's.
      return `
ALTER TABLE ${s}.spans ADD COLUMN tenant text COLLATE "C" NOT NULL DEFAULT '${DEFAULT_TENANT}';
ALTER TABLE ${s}.logs ADD COLUMN tenant text COLLATE "C" NOT NULL DEFAULT '${DEFAULT_TENANT}';
ALTER TABLE ${s}.trace_index ADD COLUMN tenant text COLLATE "C" NOT NULL DEFAULT '${DEFAULT_TENANT}';
ALTER TABLE ${s}.operations ADD COLUMN tenant text COLLATE "C" NOT NULL DEFAULT '${DEFAULT_TENANT}';
DROP INDEX ${s}.spans_key;
CREATE UNIQUE INDEX spans_tenant_key ON ${s}.spans (tenant, trace_id, span_id, start_time_unix_nano);
DROP INDEX ${s}.spans_service_time;
CREATE INDEX spans_tenant_service_time ON ${s}.spans (tenant, left(service_name, 256), start_time_unix_nano);
DROP INDEX ${s}.spans_time;
CREATE INDEX spans_tenant_time ON ${s}.spans (tenant, start_time_unix_nano);
ALTER TABLE ${s}.trace_index DROP CONSTRAINT trace_index_pkey, ADD PRIMARY KEY (tenant, trace_id);
ALTER TABLE ${s}.operations DROP CONSTRAINT operations_pkey, ADD PRIMARY KEY (tenant, service_name, name, kind);
DROP INDEX ${s}.logs_service_time;
CREATE INDEX logs_tenant_service_time ON ${s}.logs (tenant, left(service_name, 256), ts_unix_nano);
DROP INDEX ${s}.logs_trace;
CREATE INDEX logs_tenant_trace ON ${s}.logs (tenant, trace_id) WHERE trace_id <> '\\x'::bytea;
CREATE INDEX logs_tenant_time ON ${s}.logs (tenant, ts_unix_nano);
`;
    },
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Applies pending migrations; returns the versions applied (empty when up to date). */
export function runMigrations(pool: Pool, schema: string): Promise<number[]> {
  const s = ident(schema);
  return withUnboundedTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1::int8)', [advisoryKey('migrate', schema)]);
    // Only when missing: CREATE SCHEMA IF NOT EXISTS checks CREATE on the database before it looks
    // for the schema, and a role given a schema of its own by the DBA usually lacks that privilege.
    const schemaExists = await client.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]);
    if (schemaExists.rowCount === 0) await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
         version int4 PRIMARY KEY,
         name text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${s}.schema_migrations`);
    const applied = new Set(rows.map((r) => r.version));
    refuseNewer(schema, Math.max(0, ...applied));
    const done: number[] = [];
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      await client.query(m.sql(schema));
      await client.query(`INSERT INTO ${s}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      done.push(m.version);
    }
    return done;
  });
}

/**
 * Throws when a newer Tracehouse has migrated the schema past what this build knows (a rollback,
 * an older pod restarting during an upgrade): an older build writing to it had every batch
 * refused for good (a constraint its writes name no longer exists) and dropped, and its reads
 * may miss what the newer schema keeps elsewhere.
 */
export function refuseNewer(schema: string, version: number): void {
  if (version <= LATEST_VERSION) return;
  throw new Error(
    `postgres schema ${schema} is at version ${version}, newer than this build knows (${LATEST_VERSION}): a newer Tracehouse migrated it; run that version or a later one (schema migrations are not undone)`,
  );
}

/** The highest applied version, or 0 when the schema has never been migrated. */
export async function currentVersion(pool: Pool, schema: string): Promise<number> {
  const { rows } = await pool.query<{ exists: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS exists`,
    [`${ident(schema)}.schema_migrations`],
  );
  if (!rows[0]?.exists) return 0;
  const r = await pool.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${ident(schema)}.schema_migrations`);
  return r.rows[0]?.v ?? 0;
}
