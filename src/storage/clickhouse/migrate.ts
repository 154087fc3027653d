// Versioned migrations: <database>.tracehouse_migrations records each applied version. Every
// statement is idempotent (IF NOT EXISTS), so two ingest pods migrating at once do no harm; the
// worst case is a version recorded twice, which reads ignore.
import type { ClickHouseClient } from '@clickhouse/client';
import { bootstrapStatements, migrations, qualified, quoteString, tableNames, ttlTargets, type SchemaOptions } from './schema.ts';

// Nested columns must be flattened (Events.Timestamp, …) the way the exporter's are.
const DDL_SETTINGS = { flatten_nested: 1 } as const;

/**
 * Versions recorded as applied (empty when the migrations table does not exist yet). The record is
 * per database, the tables per configuration: while any of this configuration's tables is missing
 * (storage.clickhouse.tracesTable / logsTable renamed, or another deployment's tables in the same
 * database), the versions recorded for other names do not count, and nothing is applied for these.
 */
export async function appliedVersions(client: ClickHouseClient, o: SchemaOptions): Promise<Set<number>> {
  const n = tableNames(o);
  const rs = await client.query({
    query: `SELECT DISTINCT Version FROM ${qualified(o, n.migrations)}`,
    format: 'JSONCompactEachRow',
  });
  const versions = new Set((await rs.json<[number | string]>()).map((r) => Number(r[0])));
  if (versions.size === 0) return versions;
  const tables = [n.tracesLocal, n.lookupLocal, n.lookupView, n.logsLocal, ...(o.cluster === '' ? [] : [n.traces, n.lookup, n.logs])];
  const found = await client.query({
    query: 'SELECT name FROM system.tables WHERE database = {db:String} AND has({names:Array(String)}, name)',
    query_params: { db: o.database, names: tables },
    format: 'JSONCompactEachRow',
  });
  const have = new Set((await found.json<[string]>()).map((r) => r[0]));
  return tables.every((t) => have.has(t)) ? versions : new Set();
}

/** Creates the database and migrations table, then applies the missing versions in order; returns them. */
export async function runMigrations(client: ClickHouseClient, o: SchemaOptions): Promise<number[]> {
  for (const query of bootstrapStatements(o)) await client.command({ query, clickhouse_settings: DDL_SETTINGS });
  const applied = await appliedVersions(client, o);
  const done: number[] = [];
  for (const m of migrations(o)) {
    if (applied.has(m.version)) continue;
    for (const query of m.statements) await client.command({ query, clickhouse_settings: DDL_SETTINGS });
    await client.command({
      query: `INSERT INTO ${qualified(o, tableNames(o).migrations)} (Version, Name) VALUES (${m.version}, ${quoteString(m.name)})`,
    });
    done.push(m.version);
  }
  return done;
}

/**
 * A TTL of the one rule Tracehouse and the exporter write (`<time> + toInterval…(n)`), or none:
 * one of other rules (moves to a volume, DELETE WHERE, several) is an operator's, which applyTtl
 * does not replace.
 */
const PLAIN_TTL = /^[^,]+ \+ toInterval[A-Za-z]+\(\d+\)$/;

/** A table whose TTL applyTtl left as it is: with ttlDays 0 (`zero`), or one of other rules (`rules`). */
export interface KeptTtl {
  table: string;
  ttl: string;
  statement: string;
  why: 'zero' | 'rules';
}

/**
 * Gives the tables the TTL storage.clickhouse.ttlDays sets when it differs from theirs (a ttlDays
 * changed after the tables were created); returns the tables changed, and those that keep their
 * TTL: while ttlDays is 0 (one the exporter or an operator set: not removed, said), or a TTL of
 * other rules than the one Tracehouse writes (an operator's: not replaced, said).
 */
export async function applyTtl(client: ClickHouseClient, o: SchemaOptions): Promise<{ changed: { table: string; from: string; to: string }[]; kept: KeptTtl[] }> {
  const rs = await client.query({
    query: 'SELECT name, engine_full FROM system.tables WHERE database = {db:String}',
    query_params: { db: o.database },
    format: 'JSONEachRow',
  });
  const engines = new Map((await rs.json<{ name: string; engine_full: string }>()).map((r) => [r.name, r.engine_full]));
  const cols = await client.query({
    query: 'SELECT count() FROM system.columns WHERE database = {db:String} AND table = {t:String} AND name = {c:String}',
    query_params: { db: o.database, t: tableNames(o).logsLocal, c: 'TimestampTime' },
    format: 'JSONCompactEachRow',
  });
  const logsHaveTimestampTime = Number((await cols.json<[number | string]>())[0]?.[0] ?? 0) > 0;
  const changed: { table: string; from: string; to: string }[] = [];
  const kept: KeptTtl[] = [];
  for (const t of ttlTargets(o, logsHaveTimestampTime)) {
    const engine = engines.get(t.table);
    if (engine === undefined) continue;
    const have = / TTL (.*?)(?: SETTINGS |$)/.exec(engine)?.[1] ?? '';
    if (have === t.ttl) continue;
    if (t.ttl === '' || (have !== '' && !PLAIN_TTL.test(have))) {
      kept.push({ table: t.table, ttl: have, statement: t.statement, why: t.ttl === '' ? 'zero' : 'rules' });
      continue;
    }
    await client.command({ query: t.statement, clickhouse_settings: DDL_SETTINGS });
    changed.push({ table: t.table, from: have, to: t.ttl });
  }
  return { changed, kept };
}
