// Daily partitions: created ahead of time by maintenance, on demand when a batch brings a day
// that has none (late or early data within a window around today), dropped whole by retention.
// Rows outside the window land in the default partition, whose old rows retention deletes.
// All partition DDL runs under one advisory lock per schema, so any number of writers and
// instances can race to create or drop the same partition.
import type { Pool, PoolClient, QueryResult } from 'pg';
import type { Logger } from '../../telemetry/logger.ts';
import { SIGNALS, type Signal } from '../../model/signal.ts';
import { NS_PER_DAY } from './columns.ts';
import { advisoryKey, ident, withUnboundedTransaction } from './sql.ts';

const MS_PER_DAY = 86_400_000;
/** Days beyond partitionsAheadDays for which early data still gets its own partition. */
const EARLY_MARGIN_DAYS = 7;
/** How far back late data gets its own partition when retention is off. */
const LATE_DAYS_WITHOUT_RETENTION = 31;
const DDL_LOCK_TIMEOUT = '10s';
/** Rows one retention statement deletes at most. */
const RETENTION_SLICE = 50_000;

interface SignalTable {
  table: string;
  key: string;
}

const TABLES: Record<Signal, SignalTable> = {
  traces: { table: 'spans', key: 'start_time_unix_nano' },
  logs: { table: 'logs', key: 'ts_unix_nano' },
};

export interface PartitionOptions {
  schema: string;
  aheadDays: number;
  retentionDays: number;
  logger: Logger;
  /** True once the store shuts down: retention stops between slices. */
  stopped?: () => boolean;
  /** Today as a day number; tests move the clock. */
  today?: () => number;
}

function dayName(day: number): string {
  return new Date(day * MS_PER_DAY).toISOString().slice(0, 10).replace(/-/g, '');
}

function dayFromName(suffix: string): number {
  const t = Date.UTC(Number(suffix.slice(0, 4)), Number(suffix.slice(4, 6)) - 1, Number(suffix.slice(6, 8)));
  return Math.round(t / MS_PER_DAY);
}

/** Name of the partition of one day. */
export function partitionName(signal: Signal, day: number): string {
  return `${TABLES[signal].table}_p${dayName(day)}`;
}

/**
 * Whether a table of the schema exists, read from pg_class as of this statement. Not to_regclass:
 * that looks the name up in the connection's catalog cache, which waiting for the (advisory) DDL
 * lock does not refresh, so it still saw a partition another instance had dropped meanwhile (or
 * missed one it had made) once this connection had met that name.
 */
async function tableExists(c: PoolClient, schema: string, name: string): Promise<boolean> {
  const r = await c.query(
    `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, name],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Runs fn in a transaction holding the schema's partition DDL lock. */
function withDdlLock<T>(pool: Pool, schema: string, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  return withUnboundedTransaction(pool, async (client) => {
    await client.query(`SET LOCAL lock_timeout = '${DDL_LOCK_TIMEOUT}'`);
    await client.query('SELECT pg_advisory_xact_lock($1::int8)', [advisoryKey('partitions', schema)]);
    return fn(client);
  });
}

/** Creates, tracks and drops the daily partitions of one schema. */
export class Partitions {
  private readonly pool: Pool;
  private readonly opts: PartitionOptions;
  private readonly s: string;
  /** Partition days known to exist, per signal (refreshed from the catalog by maintenance). */
  private readonly known: Record<Signal, Set<number>> = { traces: new Set(), logs: new Set() };
  private readonly pending = new Map<string, Promise<void>>();

  constructor(pool: Pool, opts: PartitionOptions) {
    this.pool = pool;
    this.opts = opts;
    this.s = ident(opts.schema);
  }

  today(): number {
    return this.opts.today ? this.opts.today() : Math.floor(Date.now() / MS_PER_DAY);
  }

  /** Days for which a batch's rows get their own partition; others go to the default partition. */
  private inWindow(day: number): boolean {
    const today = this.today();
    const back = this.opts.retentionDays > 0 ? this.opts.retentionDays : LATE_DAYS_WITHOUT_RETENTION;
    return day >= today - back && day <= today + this.opts.aheadDays + EARLY_MARGIN_DAYS;
  }

  /** Re-reads which partitions exist. */
  async refresh(): Promise<void> {
    for (const signal of SIGNALS) {
      const { table } = TABLES[signal];
      const { rows } = await this.pool.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = $1::regclass`,
        [`${this.s}.${table}`],
      );
      const re = new RegExp(`^${table}_p(\\d{8})$`);
      const days = new Set<number>();
      for (const r of rows) {
        const m = re.exec(r.name);
        if (m) days.add(dayFromName(m[1]!));
      }
      this.known[signal] = days;
    }
  }

  /** Makes sure every in-window day of a batch has its partition before the rows are inserted. */
  async ensure(signal: Signal, days: Iterable<number>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const day of days) {
      if (this.known[signal].has(day) || !this.inWindow(day)) continue;
      waits.push(this.create(signal, day));
    }
    if (waits.length > 0) await Promise.all(waits);
  }

  private create(signal: Signal, day: number): Promise<void> {
    const id = `${signal}:${day}`;
    let p = this.pending.get(id);
    if (!p) {
      p = this.createNow(signal, day).finally(() => this.pending.delete(id));
      this.pending.set(id, p);
    }
    return p;
  }

  private async createNow(signal: Signal, day: number): Promise<void> {
    const { table, key } = TABLES[signal];
    const name = partitionName(signal, day);
    const lo = BigInt(day) * NS_PER_DAY;
    const hi = lo + NS_PER_DAY;
    const s = this.s;
    const created = await withDdlLock(this.pool, this.opts.schema, async (c) => {
      if (await tableExists(c, this.opts.schema, name)) return false;
      // The lock CREATE TABLE … PARTITION OF takes, taken before the look into the default
      // partition: it waits for inserts under way (another instance whose window leaves this day
      // out puts its rows there), which the look would miss and the CREATE then meet (23514,
      // "updated partition constraint for default partition would be violated"). ONLY: the
      // partitions themselves are not locked (inserts take the parent's lock too).
      await c.query(`LOCK TABLE ONLY ${s}.${table} IN ACCESS EXCLUSIVE MODE`);
      const inDefault = await c.query(
        `SELECT 1 FROM ${s}.${table}_default WHERE ${key} >= ${lo} AND ${key} < ${hi} LIMIT 1`,
      );
      if (inDefault.rowCount === 0) {
        await c.query(`CREATE TABLE ${s}.${ident(name)} PARTITION OF ${s}.${table} FOR VALUES FROM (${lo}) TO (${hi})`);
        return true;
      }
      // Rows of this day already sit in the default partition (they arrived while the day was
      // outside the window): a new partition would overlap them, so move them in one transaction.
      await c.query(`ALTER TABLE ${s}.${table} DETACH PARTITION ${s}.${table}_default`);
      await c.query(`CREATE TABLE ${s}.${ident(name)} PARTITION OF ${s}.${table} FOR VALUES FROM (${lo}) TO (${hi})`);
      await c.query(`INSERT INTO ${s}.${table} SELECT * FROM ${s}.${table}_default WHERE ${key} >= ${lo} AND ${key} < ${hi}`);
      await c.query(`DELETE FROM ${s}.${table}_default WHERE ${key} >= ${lo} AND ${key} < ${hi}`);
      await c.query(`ALTER TABLE ${s}.${table} ATTACH PARTITION ${s}.${table}_default DEFAULT`);
      return true;
    });
    this.known[signal].add(day);
    if (created) this.opts.logger.debug({ partition: name }, 'postgres partition created');
  }

  /** Creates the partitions of today and partitionsAheadDays ahead. */
  async createAhead(): Promise<void> {
    const today = this.today();
    const days: number[] = [];
    for (let d = today; d <= today + this.opts.aheadDays; d++) days.push(d);
    await this.ensure('traces', days);
    await this.ensure('logs', days);
  }

  /**
   * Drops whole partitions older than retentionDays (today's and retentionDays full days before
   * it are kept), deletes as old rows from the default partitions and the trace index.
   * Returns the partitions this instance dropped (another one running it too may drop some first).
   */
  async applyRetention(): Promise<string[]> {
    if (this.opts.retentionDays <= 0) return [];
    const cutoffDay = this.today() - this.opts.retentionDays;
    const cutoff = BigInt(cutoffDay) * NS_PER_DAY;
    const s = this.s;
    const dropped: string[] = [];
    for (const signal of SIGNALS) {
      const { table, key } = TABLES[signal];
      for (const day of [...this.known[signal]].sort((a, b) => a - b)) {
        if (day >= cutoffDay) continue;
        const name = partitionName(signal, day);
        // One transaction per partition keeps the parent's exclusive lock short. Another instance
        // running retention too may have dropped it since this one read the catalog: only a drop
        // of its own is reported (each pod logged every partition of the database as dropped).
        const own = await withDdlLock(this.pool, this.opts.schema, async (c) => {
          if (!(await tableExists(c, this.opts.schema, name))) return false;
          await c.query(`DROP TABLE ${s}.${ident(name)}`);
          return true;
        });
        this.known[signal].delete(day);
        if (own) dropped.push(name);
      }
      // In slices too: the default partition holds whatever arrived outside the window (an import
      // of old data, a client with a wrong clock), possibly far more than one statement deletes.
      await this.inSlices(
        `DELETE FROM ${s}.${table}_default WHERE ctid = ANY(ARRAY(
           SELECT ctid FROM ${s}.${table}_default WHERE ${key} >= 0 AND ${key} < ${cutoff} LIMIT ${RETENTION_SLICE}))`,
      );
    }
    // In slices, so a large backlog does not hold one long transaction. The outer condition is
    // repeated: a write that extends a trace concurrently updates its row, and PostgreSQL rechecks
    // only the outer condition on the updated row (the subquery's row is the old version).
    await this.inSlices(
      `DELETE FROM ${s}.trace_index WHERE (tenant, trace_id) IN (
         SELECT tenant, trace_id FROM ${s}.trace_index WHERE last_start_unix_nano >= 0 AND last_start_unix_nano < ${cutoff} LIMIT ${RETENTION_SLICE})
         AND last_start_unix_nano >= 0 AND last_start_unix_nano < ${cutoff}`,
    );
    await this.unbounded(`DELETE FROM ${s}.operations WHERE last_start_unix_nano >= 0 AND last_start_unix_nano < ${cutoff}`);
    if (dropped.length > 0) this.opts.logger.info({ partitions: dropped.length, cutoffDay: dayName(cutoffDay) }, 'postgres retention dropped partitions');
    return dropped;
  }

  /**
   * One retention statement, free of storage.postgres.statementTimeoutMs (a bound for the writes
   * and reads): a backlog that takes one slice longer than that must not fail every run.
   */
  private unbounded(sql: string): Promise<QueryResult> {
    return withUnboundedTransaction(this.pool, (c) => c.query(sql));
  }

  /** Runs a DELETE of at most RETENTION_SLICE rows (unbounded) until one deletes fewer, or the store stops. */
  private async inSlices(sql: string): Promise<void> {
    for (;;) {
      const r = await this.unbounded(sql);
      if ((r.rowCount ?? 0) < RETENTION_SLICE || this.opts.stopped?.()) return;
    }
  }

  /** Days with a partition, for tests and diagnostics. */
  knownDays(signal: Signal): number[] {
    return [...this.known[signal]].sort((a, b) => a - b);
  }
}
