// The ClickHouse adapter: exporter-compatible tables, RowBinary writes encoded in the workers,
// shards routed by trace id, reads fanned out to every shard and merged. See README.md here for
// the layout, the chdb:// URLs and cluster mode.
import type { LogRow, SpanRow } from '../../model/rows.ts';
import type { Signal } from '../../model/signal.ts';
import { DEFAULT_TENANT } from '../../model/tenant.ts';
import type { EncoderSpec } from '../encoders.ts';
import type { BackendDeps, BackendHealth, DependencyLink, DependencyQuery, LogQuery, LogSearch, Migrated, Operation, OperationQuery, ScanPage, ScanQuery, SignalStats, StorageBackend, StorageStats, StoreStats, TraceQuery, TraceRead, TraceSummary, WriteBatch, WriteResult } from '../backend.ts';
import { isNetworkFailure } from '../reach.ts';
import { writeInHalves } from '../refused-parts.ts';
import { byNewestLog, byNewestTrace, byOperation, byStartThenId, dependencyKey, dependencyList, earliestWithinBytes, isTraceIdHex, logSearch, traceRead, withinBytes } from '../query-helpers.ts';
import { parseEndpoints, type Endpoint } from './endpoints.ts';
import { classifyWriteError, refusedForItsRows } from './errors.ts';
import { REFUSED_PARTS_BOUND, gatewayNotReady, insertInParts, refusedAsTooLarge, rowsOf } from './split.ts';
import { appliedVersions, applyTtl, runMigrations } from './migrate.ts';
import { dependenciesOnShard, operationsOnShard, servicesOnShard } from './listings.ts';
import { getTraceOnShard, logsKeyedByTime, matchingTracesOnShard, mergeSummaries, readTraceOnShard, searchLogsOnShard, spanIdsOnShard, summariesOnShard, type ShardSpan, type ShardSummary } from './reads.ts';
import { scanLogs, scanSpans } from './scan.ts';
import { COLUMN_TYPES, LOG_COLUMNS, TENANT_COLUMN, TRACE_COLUMNS, latestVersion, qualified, quoteIdent, quoteString, sameRowBinary, tableNames, validateSchemaOptions, type SchemaOptions } from './schema.ts';
import { connectShard, pageTitle, type Shard } from './shard.ts';
import { statsOnShard } from './stats.ts';

export { bootstrapStatements, migrations, tableNames, type SchemaOptions } from './schema.ts';

/** The first of each span id, in order (the items as they are when they hold none twice: one shard's). */
function onePerSpanId<T>(items: T[], spanId: (x: T) => string): T[] {
  const seen = new Set<string>();
  for (const x of items) seen.add(spanId(x));
  if (seen.size === items.length) return items;
  seen.clear();
  return items.filter((x) => {
    const k = spanId(x);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Everything the adapter reads from storage.clickhouse.* (plus the writer's concurrency). */
export interface ClickhouseSettings {
  endpoints: Endpoint[];
  schema: SchemaOptions;
  asyncInsert: boolean;
  autoMigrate: boolean;
  requestTimeoutMs: number;
  maxConnections: number;
}

/** The storage.clickhouse.* options as configured, before they are checked. */
export interface ClickhouseOptions {
  urls: readonly string[];
  database: string;
  username: string;
  password: string;
  tracesTable: string;
  logsTable: string;
  ttlDays: number;
  cluster: string;
  compressionCodec: string;
  asyncInsert: boolean;
  autoMigrate: boolean;
  requestTimeoutMs: number;
  /** HTTP connections per shard (the writer's concurrency decides it). */
  maxConnections: number;
}

/** Checks the options and resolves the endpoints; throws an Error naming the bad one. */
export function clickhouseSettings(o: ClickhouseOptions): ClickhouseSettings {
  const endpoints = parseEndpoints(o.urls, { database: o.database, username: o.username, password: o.password });
  const cluster = o.cluster;
  if (cluster !== '' && endpoints.some((e) => e.kind === 'chdb')) {
    throw new Error('storage.clickhouse.cluster cannot be used with chdb:// endpoints (the embedded engine is a single node)');
  }
  const databases = new Set(endpoints.map((e) => e.database));
  if (cluster !== '' && databases.size > 1) {
    throw new Error('storage.clickhouse.cluster: every endpoint must use the same database (the cluster holds one set of tables)');
  }
  const schema: SchemaOptions = {
    database: endpoints[0]!.database,
    tracesTable: o.tracesTable,
    logsTable: o.logsTable,
    ttlDays: o.ttlDays,
    codec: o.compressionCodec,
    cluster,
  };
  validateSchemaOptions(schema);
  for (const e of endpoints) validateSchemaOptions({ ...schema, database: e.database });
  return {
    endpoints,
    schema,
    asyncInsert: o.asyncInsert,
    autoMigrate: o.autoMigrate,
    requestTimeoutMs: o.requestTimeoutMs,
    maxConnections: o.maxConnections,
  };
}

/** Creates (does not connect) the ClickHouse backend described by storage.clickhouse.*. */
export function createClickhouseBackend(options: ClickhouseOptions, deps: BackendDeps): StorageBackend {
  return new ClickhouseBackend(clickhouseSettings(options), deps);
}

/** How a shard's table takes the encoder's RowBinary rows (see ClickhouseBackend.#layout). */
interface InsertLayout {
  /** The insert columns with the encoder's types. */
  structure: string;
  /** The table's columns have those types. */
  same: boolean;
}

interface ShardState {
  shard: Shard;
  /** This shard's schema options (its own database). */
  schema: SchemaOptions;
}

class ClickhouseBackend implements StorageBackend, StoreStats {
  readonly name = 'clickhouse';
  /** An insert has sent every chunk (or written it to chdb's input file) before it succeeds. */
  readonly copiesChunks = true;
  readonly encoder: EncoderSpec;
  readonly #s: ClickhouseSettings;
  readonly #deps: BackendDeps;
  #connecting: Promise<ShardState[]> | undefined;
  #shards: ShardState[] | undefined;
  #started = false;
  #closed = false;
  readonly #insertTargets: (schema: SchemaOptions) => Record<Signal, string>;
  /** How each shard's table takes the encoder's rows, by "partition/signal", read once from system.columns. */
  readonly #layouts = new Map<string, Promise<InsertLayout>>();
  /** A batch refused as too large (HTTP 413) has been logged. */
  #splitLogged = false;

  constructor(s: ClickhouseSettings, deps: BackendDeps) {
    this.#s = s;
    this.#deps = deps;
    // One writer pipeline per shard: the encoder routes each trace to its shard's chunk.
    this.encoder = { name: 'clickhouse', options: { partitions: s.endpoints.length } };
    const cols = (c: readonly string[]) => `(${c.map(quoteIdent).join(', ')})`;
    this.#insertTargets = (schema) => {
      const n = tableNames(schema);
      return {
        traces: `${qualified(schema, n.traces)} ${cols(TRACE_COLUMNS)}`,
        logs: `${qualified(schema, n.logs)} ${cols(LOG_COLUMNS)}`,
      };
    };
  }

  /** Connects every shard once (start() and migrate() both need it). */
  #connect(): Promise<ShardState[]> {
    this.#connecting ??= (async () => {
      const opts = { requestTimeoutMs: this.#s.requestTimeoutMs, maxConnections: this.#s.maxConnections };
      const shards: ShardState[] = [];
      try {
        for (const e of this.#s.endpoints) {
          shards.push({ shard: await connectShard(e, opts), schema: { ...this.#s.schema, database: e.database } });
        }
      } catch (err) {
        await Promise.allSettled(shards.map((s) => s.shard.close()));
        this.#connecting = undefined;
        throw err;
      }
      this.#shards = shards;
      return shards;
    })();
    return this.#connecting;
  }

  /** Where schema work runs: every shard, or one node when ON CLUSTER spreads it. */
  #schemaTargets(shards: ShardState[]): ShardState[] {
    return this.#s.schema.cluster === '' ? shards : shards.slice(0, 1);
  }

  /** Where reads run: every shard, or one node when Distributed tables fan out themselves. */
  #readTargets(): ShardState[] {
    const shards = this.#shards ?? [];
    return this.#s.schema.cluster === '' ? shards : shards.slice(0, 1);
  }

  async start(): Promise<void> {
    if (this.#closed) throw new Error('clickhouse backend is shut down');
    if (this.#started) return;
    const shards = await this.#connect();
    if (this.#s.autoMigrate) {
      await this.migrate();
    } else {
      await this.#reach(shards);
      for (const s of this.#schemaTargets(shards)) {
        const want = latestVersion(s.schema);
        let have = 0;
        try {
          have = Math.max(0, ...(await appliedVersions(s.shard.client, s.schema)));
        } catch (err) {
          // No migrations table: nothing applied. A server not reached, or not answering in
          // time, says nothing of it (start-up waits for it: unreachable).
          if (this.unreachable(err)) throw err;
        }
        if (have < want) {
          throw new Error(
            `ClickHouse schema of ${s.shard.endpoint.display} (database ${s.schema.database}) ${have === 0 ? 'has no migration applied (missing, or never migrated)' : `is at version ${have}`}, this build needs version ${want}: run \`tracehouse migrate\` or set storage.clickhouse.autoMigrate=true`,
          );
        }
      }
    }
    this.#started = true;
    this.#deps.logger.info(
      { shards: this.#s.endpoints.map((e) => `${e.display} (${e.database})`), cluster: this.#s.schema.cluster || undefined },
      'clickhouse backend started',
    );
  }

  /**
   * Asks every shard to answer. A proxy answering for a server not up yet (502) is told here,
   * before the schema checks read its page as a failed migration or a missing schema: start-up
   * and `tracehouse migrate` wait for it (unreachable).
   */
  async #reach(shards: ShardState[]): Promise<void> {
    for (const s of shards) await s.shard.reach();
  }

  async migrate(): Promise<Migrated> {
    const shards = await this.#connect();
    await this.#reach(shards);
    let changed = false;
    for (const s of this.#schemaTargets(shards)) {
      const applied = await runMigrations(s.shard.client, s.schema);
      if (applied.length > 0) {
        changed = true;
        this.#deps.logger.info({ shard: s.shard.endpoint.display, database: s.schema.database, versions: applied }, 'clickhouse migrations applied');
      }
      // Migrations write the TTL only into the tables they create: a ttlDays changed since is
      // applied here, though not by a transfer command (the collector's retention is not its to change).
      if (this.#deps.keepRetention) continue;
      const ttl = await applyTtl(s.shard.client, s.schema);
      if (ttl.changed.length > 0) changed = true;
      for (const c of ttl.changed) {
        this.#deps.logger.info({ shard: s.shard.endpoint.display, database: s.schema.database, table: c.table, from: c.from || 'none', to: c.to }, 'clickhouse table TTL set from storage.clickhouse.ttlDays');
      }
      for (const k of ttl.kept) {
        const what =
          k.why === 'zero'
            ? `storage.clickhouse.ttlDays = 0 leaves this table's TTL in place; to keep its rows for ever: ${k.statement}`
            : `this table's TTL has rules of its own, which storage.clickhouse.ttlDays does not replace; to give it ttlDays alone: ${k.statement}`;
        this.#deps.logger.warn({ shard: s.shard.endpoint.display, database: s.schema.database, table: k.table, ttl: k.ttl }, what);
      }
    }
    return changed ? 'applied' : 'up_to_date';
  }

  /**
   * The encoder's columns with their RowBinary types, as input()/file() want them, and whether the
   * shard's table has those types (then the rows go in as they are). A table the exporter made in an
   * earlier release has other types for some (TraceFlags UInt32, SeverityNumber Int32): its rows are
   * read with the encoder's types and converted by the server, not misread with the table's.
   */
  #layout(partition: number, s: ShardState, signal: Signal): Promise<InsertLayout> {
    const key = `${partition}/${signal}`;
    let p = this.#layouts.get(key);
    if (!p) {
      p = (async () => {
        const n = tableNames(s.schema);
        const rs = await s.shard.client.query({
          query: 'SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {table:String}',
          query_params: { db: s.schema.database, table: signal === 'traces' ? n.traces : n.logs },
          format: 'JSONCompactEachRow',
        });
        const types = new Map((await rs.json<[string, string]>()).map(([name, type]) => [name, type]));
        // Not "has no column Timestamp": a table dropped or renamed under a running collector.
        const table = n[signal === 'traces' ? 'traces' : 'logs'];
        if (types.size === 0) throw new Error(`ClickHouse table ${s.schema.database}.${table} does not exist (dropped or renamed since start-up; a start with storage.clickhouse.autoMigrate creates it)`);
        let same = true;
        const ours: Record<string, string> = COLUMN_TYPES[signal];
        const structure = (signal === 'traces' ? TRACE_COLUMNS : LOG_COLUMNS)
          .map((c) => {
            const t = types.get(c);
            if (t === undefined) throw new Error(`ClickHouse table ${table} has no column ${c}`);
            if (!sameRowBinary(t, ours[c]!)) same = false;
            return `${quoteIdent(c)} ${ours[c]}`;
          })
          .join(', ');
        return { structure, same };
      })();
      // A failed lookup (the server unreachable) is tried again with the next batch.
      p.catch(() => this.#layouts.delete(key));
      this.#layouts.set(key, p);
    }
    return p;
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    if (this.#shards === undefined || !this.#started || this.#closed) {
      return { kind: 'retryable', error: new Error('clickhouse backend is not running') };
    }
    const s = this.#shards[batch.partition];
    if (s === undefined) {
      return { kind: 'permanent', error: new Error(`no ClickHouse shard for partition ${batch.partition} (${this.#s.endpoints.length} configured)`) };
    }
    if (batch.rows === 0 || batch.chunks.length === 0) return { kind: 'success' };
    const settings = [
      'insert_deduplicate = 1',
      // A batch may hold rows of any number of days (PARTITION BY toDate): the default limit of
      // 100 partitions per insert would fail it on every retry.
      'max_partitions_per_insert_block = 0',
      ...(this.#s.asyncInsert
        ? // Without waiting, an acknowledged async insert can still be lost.
          ['async_insert = 1', 'wait_for_async_insert = 1', 'async_insert_deduplicate = 1']
        : ['async_insert = 0']),
      ...(this.#s.schema.cluster !== '' ? ['insert_distributed_sync = 1'] : []),
    ];
    try {
      // The default tenant is the column's DEFAULT, so its inserts stay plain RowBinary where the
      // table has the encoder's types; another tenant's rows (or rows for a table of other types)
      // are read through input()/file() with the tenant appended to each row.
      const layout = await this.#layout(batch.partition, s, batch.signal);
      const target = this.#insertTargets(s.schema)[batch.signal];
      const insert = async (chunks: Uint8Array[], token: string): Promise<void> => {
        // Retries of a batch (or of one of its parts) carry the same token: the server keeps one copy.
        const withToken = [`insert_deduplication_token = ${quoteString(token)}`, ...settings];
        if (batch.tenant === DEFAULT_TENANT && layout.same) await s.shard.insertRowBinary(target, withToken, chunks);
        else if (batch.tenant === DEFAULT_TENANT) await s.shard.insertRowBinary(target, withToken, chunks, { structure: layout.structure, values: '' });
        else {
          const withTenant = target.replace(/\)$/, `, ${quoteIdent(TENANT_COLUMN)})`);
          await s.shard.insertRowBinary(withTenant, withToken, chunks, { structure: layout.structure, values: quoteString(batch.tenant) });
        }
      };
      try {
        await insert([...batch.chunks], batch.batchId);
        return { kind: 'success' };
      } catch (err) {
        if (refusedAsTooLarge(err)) return await this.#insertInParts(batch, s, err as Error, insert);
        if (batch.chunks.length > 1 && refusedForItsRows(err)) return await this.#insertRefusedInHalves(batch, err as Error, insert);
        throw err;
      }
    } catch (err) {
      return classifyWriteError(err);
    }
  }

  /**
   * A batch refused for its size on the way to ClickHouse (a proxy's 413), inserted in parts
   * (split.ts). The first refusal is logged once per process: each such batch costs more
   * requests, which a larger body limit or smaller batches spare.
   */
  async #insertInParts(batch: WriteBatch, s: ShardState, refusal: Error, insert: (chunks: Uint8Array[], token: string) => Promise<void>): Promise<WriteResult> {
    if (!this.#splitLogged) {
      this.#splitLogged = true;
      this.#deps.logger.warn(
        { shard: s.shard.endpoint.display, signal: batch.signal, rows: batch.rows, bytes: batch.bytes, err: refusal.message },
        'a batch was refused as too large on its way to ClickHouse (HTTP 413: a proxy\'s request body limit); such batches are split until their parts pass (logged once; tracehouse_storage_split_batches_total counts them): raise the proxy\'s limit (nginx: client_max_body_size) or lower writer.maxBatchRows',
      );
    }
    // The refused request may still be sending the chunks (a proxy reads the rest and discards it).
    // Each row's chunk: with delivery.ack = stored the writer refuses the requests of those left out only.
    const perChunk = batch.chunks.map((c) => rowsOf(batch.signal, [c]));
    const chunkOf = perChunk.flatMap((rows, i) => rows.map(() => i));
    const all = perChunk.flat();
    // A part refused for its rows (a CONSTRAINT of the user's) is halved down to those rows too:
    // the parts before it are stored, and the batch dropped or halved by chunks instead would
    // lose the parts after it or store the ones before twice.
    const { tooLarge, refused } = await insertInParts(all, batch.batchId, insert, refusedForItsRows);
    // Counted once its parts are written, not at each attempt: a batch whose split failed part way
    // (a 502, a timeout) is written again by the writer and split again, and it is one batch.
    this.#deps.metrics.splitBatches.inc({ signal: batch.signal });
    if (tooLarge === undefined && refused === undefined) return { kind: 'success', chunksInUse: true };
    const what = batch.signal === 'traces' ? 'span' : 'log record';
    const errors: string[] = [];
    if (tooLarge) {
      errors.push(`${tooLarge.rows} ${what} row(s) of up to ${tooLarge.bytes} bytes each are too large alone for the request body limit on the way to ClickHouse ${s.shard.endpoint.display} (${tooLarge.error.message}): raise the proxy's limit (nginx: client_max_body_size) to store such rows`);
    }
    if (refused) {
      const untried = refused.untried > 0 ? ` (and ${refused.untried} row(s) of the batch not tried again once ${REFUSED_PARTS_BOUND} parts of it were refused)` : '';
      errors.push(`${refused.indexes.length - refused.untried} ${what} row(s) refused for good by ClickHouse ${s.shard.endpoint.display}: ${refused.error.message}${untried}`);
    }
    const error = new Error(errors.join('; '));
    const indexes = [...(tooLarge?.indexes ?? []), ...(refused?.indexes ?? [])];
    // Every row refused (none stored): refused for good, as a batch refused whole is.
    if (refused && indexes.length === all.length) return { kind: 'permanent', error };
    // Rows, not chunks, are left out: how many of each chunk's, for its request's answer (ack = stored).
    const leftOf = new Map<number, number>();
    for (const i of indexes) leftOf.set(chunkOf[i]!, (leftOf.get(chunkOf[i]!) ?? 0) + 1);
    const chunks = [...leftOf.keys()].sort((a, b) => a - b);
    return { kind: 'success', dropped: { rows: indexes.length, error, chunks, chunkRows: chunks.map((i) => leftOf.get(i)!) }, chunksInUse: true };
  }

  /**
   * A batch refused for good for some of its rows (a CONSTRAINT of the user's, a value the table
   * cannot take), inserted again in halves (refused-parts.ts), each part under the batch's token
   * and its rows' range (as insertInParts names its parts: a resend of the batch refused again
   * stores each part once): the chunks (requests' rows) refused are left out, the rest stored.
   * Halving, not an insert (a part in the table) per chunk: one row refused in 10,000 one-record
   * requests is some 30 inserts. Any other failure fails the batch.
   */
  async #insertRefusedInHalves(batch: WriteBatch, first: Error, insert: (chunks: Uint8Array[], token: string) => Promise<void>): Promise<WriteResult> {
    const rows = batch.chunks.map((c) => rowsOf(batch.signal, [c]).length);
    const result = await writeInHalves(rows, first, async (from, to, before, count) => {
      try {
        await insert(batch.chunks.slice(from, to), `${batch.batchId}/${before}-${before + count}`);
        return undefined;
      } catch (err) {
        if (!refusedForItsRows(err)) throw err;
        return err as Error;
      }
    }, REFUSED_PARTS_BOUND);
    // A refusal may come before the server has read a body whole (as a proxy's 413 does).
    return result.kind === 'success' ? { ...result, chunksInUse: true } : result;
  }

  /** Whether each shard's log table has TimestampTime (the exporter's tables of 2023 do not), read once from system.columns. */
  readonly #logTimeKeys = new WeakMap<ShardState, Promise<boolean>>();

  /** Whether a shard's log table has TimestampTime, by which it is partitioned and keyed (reads.ts, timestampTimeRange). */
  #logsKeyedByTime(s: ShardState): Promise<boolean> {
    let p = this.#logTimeKeys.get(s);
    if (!p) {
      p = logsKeyedByTime(s.shard.client, s.schema);
      // A failed lookup (the server unreachable) is tried again with the next search.
      p.catch(() => this.#logTimeKeys.delete(s));
      this.#logTimeKeys.set(s, p);
    }
    return p;
  }

  #readShards(): ShardState[] {
    if (this.#shards === undefined || this.#closed) throw new Error('clickhouse backend is not running');
    return this.#readTargets();
  }

  async getTrace(tenant: string, traceId: string): Promise<SpanRow[]> {
    const id = traceId.toLowerCase();
    if (!isTraceIdHex(id)) return [];
    const parts = await Promise.all(this.#readShards().map((s) => getTraceOnShard(s.shard.client, s.schema, tenant, id)));
    return onePerSpanId(parts.flat(), (x) => x.spanId);
  }

  async readTrace(tenant: string, traceId: string, maxSpans: number, maxBytes?: number, signal?: AbortSignal): Promise<TraceRead> {
    const id = traceId.toLowerCase();
    if (!isTraceIdHex(id)) return { spans: [], total: 0 };
    // A trace is on one shard, unless the shards changed since it was written: merged the same way,
    // and cut again (each shard's spans are within the bounds, not all of them).
    const shards = this.#readShards();
    const parts = await Promise.all(shards.map((s) => readTraceOnShard(s.shard.client, s.schema, tenant, id, maxSpans, maxBytes, signal)));
    // A shard cut by the bytes left out its spans from its first past them on: another shard's
    // from there on are not among the earliest either (they would fill the room that span left).
    let stop: ShardSpan | undefined;
    for (const p of parts) if (p.leftOut && (stop === undefined || byStartThenId(p.leftOut, stop) < 0)) stop = p.leftOut;
    // A span a client resent to a collector of another shard list has a copy on each shard: once.
    const merged = onePerSpanId(parts.flatMap((p) => p.spans), (x) => x.spanId);
    const { kept, bytes, cut } = earliestWithinBytes(stop === undefined ? merged : merged.filter((x) => byStartThenId(x, stop) < 0), maxSpans, (x) => x.bytes, maxBytes);
    // Counted once too: from the spans read when every shard sent all of its own, else by their ids.
    const holding = parts.flatMap((p, i) => (p.total > 0 ? [{ p, s: shards[i]! }] : []));
    let total = holding.reduce((n, h) => n + h.p.total, 0);
    if (holding.length > 1) {
      const ids = holding.every((h) => h.p.spans.length === h.p.total)
        ? holding.flatMap((h) => h.p.spans.map((x) => x.spanId))
        : (await Promise.all(holding.map((h) => spanIdsOnShard(h.s.shard.client, h.s.schema, tenant, id, signal)))).flat();
      total = new Set(ids).size;
    }
    return traceRead(
      kept.map((x) => x.span),
      total,
      maxBytes,
      bytes,
      cut || parts.some((p) => p.cut),
    );
  }

  async searchTraces(tenant: string, query: TraceQuery, signal?: AbortSignal): Promise<TraceSummary[]> {
    const limit = Math.max(0, Math.floor(query.limit));
    if (limit === 0) return [];
    const q = { ...query, limit };
    const shards = this.#readShards();
    // The newest matching span of each trace on any shard ranks it (the port's ranking): each
    // shard's `limit` newest hold the `limit` newest of all.
    const newest = new Map<string, bigint>();
    for (const part of await Promise.all(shards.map((s) => matchingTracesOnShard(s.shard.client, s.schema, tenant, q, signal)))) {
      for (const c of part) {
        const seen = newest.get(c.traceId);
        if (seen === undefined || c.newestMatch > seen) newest.set(c.traceId, c.newestMatch);
      }
    }
    if (newest.size === 0) return [];
    const ids = [...newest]
      .sort((a, b) => (a[1] === b[1] ? (a[0] < b[0] ? -1 : 1) : a[1] > b[1] ? -1 : 1))
      .slice(0, limit)
      .map(([id]) => id);
    // Every shard summarizes its spans of them: a trace is on one shard unless the shards changed
    // while it was written, and then its parts are merged.
    const byTrace = new Map<string, ShardSummary>();
    const holders = new Map<string, ShardState[]>();
    const summaries = await Promise.all(shards.map((s) => summariesOnShard(s.shard.client, s.schema, tenant, ids, signal)));
    for (const [i, part] of summaries.entries()) {
      for (const x of part) {
        const seen = byTrace.get(x.traceId);
        byTrace.set(x.traceId, seen === undefined ? x : mergeSummaries(seen, x));
        holders.set(x.traceId, [...(holders.get(x.traceId) ?? []), shards[i]!]);
      }
    }
    // A trace on several shards may have a span on more than one (a client resent it to a
    // collector of another shard list): its spans counted by id, each once.
    await Promise.all(
      [...holders].filter(([, on]) => on.length > 1).map(async ([traceId, on]) => {
        const spanIds = await Promise.all(on.map((s) => spanIdsOnShard(s.shard.client, s.schema, tenant, traceId, signal)));
        byTrace.get(traceId)!.spanCount = new Set(spanIds.flat()).size;
      }),
    );
    return [...byTrace.values()].map(({ hasRoot: _h, rootStart: _r, ...summary }) => summary).sort(byNewestTrace);
  }

  async searchLogs(tenant: string, query: LogQuery, signal?: AbortSignal): Promise<LogSearch> {
    const limit = Math.max(0, Math.floor(query.limit));
    if (limit === 0) return [];
    const q: LogQuery = { ...query, limit };
    if (q.traceId !== undefined) {
      const id = q.traceId.toLowerCase();
      if (!isTraceIdHex(id)) return [];
      q.traceId = id;
    }
    const parts = await Promise.all(this.#readShards().map(async (s) => searchLogsOnShard(s.shard.client, s.schema, tenant, q, await this.#logsKeyedByTime(s), signal)));
    const newest = parts.flat().sort((a, b) => byNewestLog(a.log, b.log)).slice(0, limit);
    const { kept, cut } = withinBytes(newest, (x) => x.bytes, q.maxBytes);
    return logSearch(kept.map((x) => x.log), cut);
  }

  async getServices(tenant: string): Promise<string[]> {
    const parts = await Promise.all(this.#readShards().map((s) => servicesOnShard(s.shard.client, s.schema, tenant)));
    return [...new Set(parts.flat())].sort();
  }

  async getOperations(tenant: string, query: OperationQuery): Promise<Operation[]> {
    const parts = await Promise.all(this.#readShards().map((s) => operationsOnShard(s.shard.client, s.schema, tenant, query)));
    const unique = new Map(parts.flat().map((op) => [op.kind + '\u0000' + op.name, op]));
    return [...unique.values()].sort(byOperation);
  }

  async getDependencies(tenant: string, query: DependencyQuery): Promise<DependencyLink[]> {
    const parts = await Promise.all(this.#readShards().map((s) => dependenciesOnShard(s.shard.client, s.schema, tenant, query)));
    const counts = new Map<string, number>();
    for (const d of parts.flat()) {
      const key = dependencyKey(d.parent, d.child);
      counts.set(key, (counts.get(key) ?? 0) + d.callCount);
    }
    return dependencyList(counts);
  }

  async scanSpans(tenant: string, query: ScanQuery): Promise<ScanPage<SpanRow>> {
    return scanSpans(this.#readShards().map((s) => ({ client: s.shard.client, schema: s.schema })), tenant, query);
  }

  async scanLogs(tenant: string, query: ScanQuery): Promise<ScanPage<LogRow>> {
    return scanLogs(this.#readShards().map((s) => ({ client: s.shard.client, schema: s.schema })), tenant, query);
  }

  /** Parts bytes and rows from system.parts and the oldest time: summed over every endpoint's local tables, or in cluster mode measured once through the first URL (a replica of each shard). */
  async stats(): Promise<StorageStats> {
    if (this.#shards === undefined || this.#closed) throw new Error('clickhouse backend is not running');
    // In cluster mode the first URL measures the whole cluster (statsOnShard), as it reads.
    const perShard = await Promise.all(this.#readTargets().map((s) => statsOnShard(s.shard.client, s.schema)));
    const signals = (['traces', 'logs'] as const).map((signal): SignalStats => {
      let bytes = 0;
      let rows = 0;
      let oldest: bigint | undefined;
      for (const p of perShard) {
        const x = p[signal];
        bytes += x.bytes;
        rows += x.rows;
        if (x.oldestUnixNano !== undefined && (oldest === undefined || x.oldestUnixNano < oldest)) oldest = x.oldestUnixNano;
      }
      return { signal, bytes, rows, ...(oldest === undefined ? {} : { oldestUnixNano: oldest }) };
    });
    return { signals };
  }

  unreachable(err: unknown): boolean {
    // @clickhouse/client's words for a request the server did not answer within requestTimeoutMs.
    return isNetworkFailure(err) || (err instanceof Error && err.message === 'Timeout error.') || gatewayNotReady(err);
  }

  async health(): Promise<BackendHealth> {
    if (this.#shards === undefined || this.#closed) return { ok: false, detail: 'not started' };
    const results = await Promise.all(
      // /ping, not a query: a poll a second per pod would fill system.query_log and use the user's
      // quota. A proxy's error page comes back as the failure's text, and is told by its title.
      this.#shards.map(async (s) => {
        const r = await s.shard.client.ping();
        if (r.success) return undefined;
        const text = r.error.message;
        return `${s.shard.endpoint.display}: ${/<html|<title|<body/i.test(text) ? `not ClickHouse's answer: ${pageTitle(text)}` : text}`;
      }),
    );
    const failed = results.filter((r): r is string => r !== undefined);
    return failed.length === 0 ? { ok: true } : { ok: false, detail: failed.join('; ') };
  }

  async shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const connecting = this.#connecting;
    if (connecting === undefined) return;
    const shards = await connecting.catch(() => []);
    await Promise.allSettled(shards.map((s) => s.shard.close()));
  }
}
