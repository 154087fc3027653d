// Read queries. Every one is served by an index: trace by id through the trace index (time range)
// then the (trace_id, span_id, start) key within the pruned partitions; searches by service
// through (left(service_name, 256), time), by attribute through the GIN index of attribute
// tokens, otherwise by time. Every read is of one tenant, and every key and index leads with it.
import type { QueryResult, QueryResultRow } from 'pg';
import type { AnyValue, KeyValue, LogRow, ResourceInfo, ScopeInfo, SpanLink, SpanRow } from '../../model/rows.ts';
import type { DependencyLink, DependencyQuery, LogQuery, LogSearch, Operation, OperationQuery, TraceQuery, TraceRead, TraceSummary } from '../backend.ts';
import { byDependency, byOperation, logSearch, traceRead, withinBytes } from '../query-helpers.ts';
import { escapeText } from './escape.ts';
import type { ReadConnections } from './read-connections.ts';
import { ident, int8Param, u64 } from './sql.ts';
import { attributeToken } from './tokens.ts';

const HEX_ID = /^[0-9a-f]+$/;

/** Matching spans under which an attribute search sorts them from the attribute index rather than walk the time index (Reads.firstAttributeRound). */
export const ATTRIBUTE_INDEX_SPANS = 10_000;

/** Matching spans an attribute search gathers first from the attribute index, cheaply: fewer, and they are its answer (Reads.firstAttributeRound). */
export const ATTRIBUTE_PROBE_SPANS = 1000;

/** Newest spans an attribute search with more matches reads from the time index for its first round before it counts them (Reads.firstAttributeRound). */
export const ATTRIBUTE_WINDOW_SPANS = 2000;

/** A logs row's bytes for a byte bound (LogQuery.maxBytes, ScanQuery.maxBytes): its text and JSON columns as stored. */
export const LOG_BYTES = 'octet_length(body::text) + octet_length(resource::text) + octet_length(scope::text) + octet_length(attributes::text) + octet_length(severity_text) + octet_length(event_name) + octet_length(service_name)';

/** A spans row's bytes for a byte bound (ScanQuery.maxBytes, StoreReader.readTrace's maxBytes), as LOG_BYTES. */
export const SPAN_BYTES = 'octet_length(name) + octet_length(trace_state) + octet_length(status_message) + octet_length(service_name) + octet_length(resource::text) + octet_length(scope::text) + octet_length(attributes::text) + octet_length(events::text) + octet_length(links::text)';

/** What runs a read's statements: the read pool, or one connection of it for a read that can be cancelled (Reads.cancellable). */
export interface Sql {
  query<R extends QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

/** What cancels a connection's running statement: its server's address and the process id and secret key the server gave it (BackendKeyData). */
export interface CancelTarget {
  host: string;
  port: number;
  processID: number;
  secretKey: number;
}

/** Cancels the statement the connection of this target runs (a cancel request, no connection of its own). */
export type CancelBackend = (target: CancelTarget) => Promise<void>;

/** PostgreSQL's query_canceled: the statement was cancelled and the connection is ready for the next. */
export const QUERY_CANCELED = '57014';

/**
 * How long the statement a cancellable read's error ended had run (Reads.cancellable): a
 * QUERY_CANCELED one stopped by the server's statement_timeout ran that long, whatever the read
 * waited for its connection before (PostgresBackend.budgeted).
 */
export const statementMs = new WeakMap<object, number>();

/**
 * The rows of `matching` (a query in `order`) within maxBytes of `bytes` (a row's size): the
 * server sends the rows up to the first past the bound (sizes summed in order; the first row kept
 * whatever its size, so the second may be that one), and withinBytes() leaves that one out and
 * says `cut`: the rest are never read.
 */
export async function queryWithinBytes<R extends object>(pool: Sql, p: Params, matching: string, order: string, bytes: string, maxBytes: number): Promise<{ kept: R[]; cut: boolean }> {
  const { rows } = await pool.query<R & { bytes: number }>(
    `SELECT * FROM (
       SELECT m.*, coalesce(sum(m.bytes) OVER w, 0) AS before, row_number() OVER w AS n
         FROM (SELECT l.*, (${bytes})::float8 AS bytes FROM (${matching}) l) m
       WINDOW w AS (ORDER BY ${order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
     ) w WHERE before <= ${p.add(maxBytes)}::float8 OR n <= 2 ORDER BY ${order}`,
    p.values,
  );
  return withinBytes<R>(rows, (r) => (r as { bytes: number }).bytes, maxBytes);
}

function idBytes(hex: string): Buffer | undefined {
  const h = hex.toLowerCase();
  return h.length % 2 === 0 && HEX_ID.test(h) ? Buffer.from(h, 'hex') : undefined;
}

type Json = Record<string, unknown>;

function resourceOf(j: Json): ResourceInfo {
  return {
    attributes: j['attributes'] as KeyValue[],
    droppedAttributesCount: j['droppedAttributesCount'] as number,
    schemaUrl: j['schemaUrl'] as string,
  };
}

function scopeOf(j: Json): ScopeInfo {
  return {
    name: j['name'] as string,
    version: j['version'] as string,
    attributes: j['attributes'] as KeyValue[],
    droppedAttributesCount: j['droppedAttributesCount'] as number,
    schemaUrl: j['schemaUrl'] as string,
  };
}

/** SQL text of the trace-by-id span read ($1 trace id, $2..$3 start time range, $4 tenant); tests EXPLAIN it. */
export function traceSpansSql(schema: string, columns = ''): string {
  return `SELECT *${columns} FROM ${ident(schema)}.spans
           WHERE tenant = $4::text AND trace_id = $1 AND start_time_unix_nano BETWEEN $2::int8 AND $3::int8`;
}

export interface SpanDbRow {
  trace_id: Buffer;
  span_id: Buffer;
  parent_span_id: Buffer;
  trace_state: string;
  flags: bigint;
  name: string;
  kind: number;
  start_time_unix_nano: bigint;
  end_time_unix_nano: bigint;
  duration_nano: bigint;
  status_code: number;
  status_message: string;
  service_name: string;
  resource: Json;
  scope: Json;
  attributes: KeyValue[];
  dropped_attributes_count: bigint;
  events: Json[];
  dropped_events_count: bigint;
  links: Json[];
  dropped_links_count: bigint;
}

/** A spans table row as the port's SpanRow. */
export function toSpan(r: SpanDbRow): SpanRow {
  return {
    traceId: r.trace_id.toString('hex'),
    spanId: r.span_id.toString('hex'),
    parentSpanId: r.parent_span_id.toString('hex'),
    traceState: r.trace_state,
    flags: Number(r.flags),
    name: r.name,
    kind: r.kind,
    startTimeUnixNano: u64(r.start_time_unix_nano),
    endTimeUnixNano: u64(r.end_time_unix_nano),
    durationNano: u64(r.duration_nano),
    statusCode: r.status_code,
    statusMessage: r.status_message,
    serviceName: r.service_name,
    resource: resourceOf(r.resource),
    scope: scopeOf(r.scope),
    attributes: r.attributes,
    droppedAttributesCount: Number(r.dropped_attributes_count),
    events: r.events.map((e) => ({
      timeUnixNano: BigInt(e['timeUnixNano'] as string),
      name: e['name'] as string,
      attributes: e['attributes'] as KeyValue[],
      droppedAttributesCount: e['droppedAttributesCount'] as number,
    })),
    droppedEventsCount: Number(r.dropped_events_count),
    links: r.links.map(
      (l): SpanLink => ({
        traceId: l['traceId'] as string,
        spanId: l['spanId'] as string,
        traceState: l['traceState'] as string,
        flags: l['flags'] as number,
        attributes: l['attributes'] as KeyValue[],
        droppedAttributesCount: l['droppedAttributesCount'] as number,
      }),
    ),
    droppedLinksCount: Number(r.dropped_links_count),
  };
}

export interface LogDbRow {
  time_unix_nano: bigint;
  observed_time_unix_nano: bigint;
  trace_id: Buffer;
  span_id: Buffer;
  flags: bigint;
  severity_number: number;
  severity_text: string;
  body: AnyValue;
  event_name: string;
  service_name: string;
  resource: Json;
  scope: Json;
  attributes: KeyValue[];
  dropped_attributes_count: bigint;
}

/** A logs table row as the port's LogRow. */
export function toLog(r: LogDbRow): LogRow {
  return {
    timeUnixNano: u64(r.time_unix_nano),
    observedTimeUnixNano: u64(r.observed_time_unix_nano),
    traceId: r.trace_id.toString('hex'),
    spanId: r.span_id.toString('hex'),
    flags: Number(r.flags),
    severityNumber: r.severity_number,
    severityText: r.severity_text,
    body: r.body,
    eventName: r.event_name,
    serviceName: r.service_name,
    resource: resourceOf(r.resource),
    scope: scopeOf(r.scope),
    attributes: r.attributes,
    droppedAttributesCount: Number(r.dropped_attributes_count),
  };
}

/** Numbered query parameters. */
export class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

/**
 * The service condition served by the (left(service_name, 256), time) indexes. The listings keep
 * a service's first 256 characters (operations): a name of that length finds the services it
 * begins, or a service listed under it could not be searched.
 */
export function serviceCond(p: Params, service: string): string {
  return listedCond(p, 'service_name', service);
}

/**
 * A column the operations listing keeps to its first 256 characters (service_name, name): equal
 * to the value, or beginning with it when the value has that length (a name as listed).
 */
function listedCond(p: Params, column: 'service_name' | 'name', value: string): string {
  const s = p.add(escapeText(value));
  return `left(${column}, 256) = left(${s}::text, 256) AND (${column} = ${s}::text OR length(${s}::text) = 256)`;
}

/** A matching span of a trace search: its trace and start. */
type SpanStart = { trace_id: Buffer; start: bigint };

/** How an attribute search's later rounds find their spans (Reads.firstAttributeRound). */
type AttributePlan = 'index' | 'walk';

/** A span row of a trace read, with the count of the trace's spans and its bytes when asked for. */
type TraceDbRow = SpanDbRow & { total_spans?: bigint | string; bytes?: number };

/** The read operations of the port, on one schema. */
export class Reads {
  private readonly pool: ReadConnections;
  private readonly s: string;
  private readonly schema: string;

  private readonly cancel: CancelBackend | undefined;

  constructor(pool: ReadConnections, schema: string, cancel?: CancelBackend) {
    this.pool = pool;
    this.schema = schema;
    this.s = ident(schema);
    this.cancel = cancel;
  }

  /**
   * Runs read's statements on the read pool; with a signal, on one connection of it whose running
   * statement is cancelled when the signal aborts (the read API's client is gone, or the read's
   * budget from its arrival has run out: PostgresBackend.budgeted), so the read
   * frees its backend and its connection at once instead of at storage.postgres.statementTimeoutMs.
   * A statement not started by then is not sent. The connection goes back to the pool when the
   * cancel has reached the server (a cancel that comes after the statement ended is ignored by a
   * backend waiting for its next one), and is kept: a cancelled statement leaves it ready.
   */
  private async cancellable<T>(signal: AbortSignal | undefined, read: (db: Sql) => Promise<T>): Promise<T> {
    if (signal === undefined || this.cancel === undefined) return read(this.pool);
    // Waiting for a connection too stops when the client is gone (ReadConnections).
    const { client, release } = await this.pool.connect(signal);
    const cancel = this.cancel;
    // pg's own fields: the address it connected to, and the server's BackendKeyData.
    const { host, port, processID, secretKey } = client as unknown as { host: string; port: number; processID: number | null; secretKey: number | null };
    let cancelling: Promise<void> | undefined;
    const abort = (): void => {
      if (processID !== null && secretKey !== null) cancelling = cancel({ host, port, processID, secretKey }).catch(() => undefined);
    };
    signal.addEventListener('abort', abort, { once: true });
    let broken: Error | undefined;
    try {
      return await read({
        query: async <R extends QueryResultRow>(text: string, values?: unknown[]) => {
          signal.throwIfAborted();
          const started = performance.now();
          try {
            return await client.query<R>(text, values);
          } catch (err) {
            if (typeof err === 'object' && err !== null) statementMs.set(err, performance.now() - started);
            throw err;
          }
        },
      });
    } catch (err) {
      // As pool.query does, a connection whose statement failed is dropped, unless it was only cancelled (or never sent).
      if (!(signal.aborted && (err === signal.reason || (err as { code?: unknown }).code === QUERY_CANCELED))) broken = err as Error;
      throw err;
    } finally {
      signal.removeEventListener('abort', abort);
      await cancelling;
      release(broken);
    }
  }

  async getTrace(tenant: string, traceId: string): Promise<SpanRow[]> {
    return (await this.traceRows(tenant, traceId)).rows.map(toSpan);
  }

  async readTrace(tenant: string, traceId: string, maxSpans: number, maxBytes?: number, signal?: AbortSignal): Promise<TraceRead> {
    const { rows, cut } = await this.cancellable(signal, (db) => this.traceRows(tenant, traceId, maxSpans, maxBytes, db));
    const total = rows.length === 0 ? 0 : Number(rows[0]!.total_spans);
    return traceRead(rows.map(toSpan), total, maxBytes, maxBytes === undefined ? 0 : rows.reduce((n, r) => n + Number(r.bytes), 0), cut);
  }

  /**
   * A trace's spans within its indexed range (trace_index): all, or the earliest `limit` by start
   * then id, only those sent and parsed, with the number of all in total_spans (counted in the
   * database). With maxBytes too, those within it (queryWithinBytes; `cut` when that left some out).
   */
  private async traceRows(tenant: string, traceId: string, limit?: number, maxBytes?: number, db: Sql = this.pool): Promise<{ rows: TraceDbRow[]; cut: boolean }> {
    const id = idBytes(traceId);
    if (!id) return { rows: [], cut: false };
    const idx = await db.query<{ first: bigint; last: bigint }>(
      `SELECT first_start_unix_nano AS first, last_start_unix_nano AS last FROM ${this.s}.trace_index WHERE tenant = $2::text AND trace_id = $1`,
      [id, tenant],
    );
    const range = idx.rows[0];
    if (!range) return { rows: [], cut: false };
    // traceSpansSql's $1..$4.
    const p = new Params();
    for (const v of [id, range.first.toString(), range.last.toString(), tenant]) p.add(v);
    const order = 'start_time_unix_nano, span_id';
    if (limit === undefined) return { rows: (await db.query<TraceDbRow>(traceSpansSql(this.schema), p.values)).rows, cut: false };
    const sql = `${traceSpansSql(this.schema, ', count(*) OVER () AS total_spans')} ORDER BY ${order} LIMIT ${p.add(limit)}`;
    if (maxBytes === undefined) return { rows: (await db.query<TraceDbRow>(sql, p.values)).rows, cut: false };
    const { kept, cut } = await queryWithinBytes<TraceDbRow>(db, p, sql, order, SPAN_BYTES, maxBytes);
    return { rows: kept, cut };
  }

  async searchTraces(tenant: string, q: TraceQuery, signal?: AbortSignal): Promise<TraceSummary[]> {
    const limit = Math.max(0, Math.floor(q.limit));
    if (limit === 0) return [];
    return this.cancellable(signal, async (db) => {
      const ids = await this.matchingTraceIds(tenant, q, limit, db);
      if (ids.length === 0) return [];
      return this.summaries(tenant, ids, limit, db);
    });
  }

  /** Trace ids with a matching span, newest matching span first. */
  private async matchingTraceIds(tenant: string, q: TraceQuery, limit: number, db: Sql): Promise<Buffer[]> {
    const p = new Params();
    const conds: string[] = [`tenant = ${p.add(tenant)}::text`];
    if (q.service !== undefined) conds.push(serviceCond(p, q.service));
    // The operations listing keeps a span name's first 256 characters: a name of that length finds the names it begins.
    if (q.name !== undefined) conds.push(listedCond(p, 'name', q.name));
    if (q.startNano !== undefined) conds.push(`start_time_unix_nano >= ${p.add(int8Param(q.startNano))}::int8`);
    if (q.endNano !== undefined) conds.push(`start_time_unix_nano <= ${p.add(int8Param(q.endNano))}::int8`);
    if (q.minDurationNano !== undefined) conds.push(`duration_nano >= ${p.add(int8Param(q.minDurationNano))}::int8`);
    if (q.maxDurationNano !== undefined) conds.push(`duration_nano <= ${p.add(int8Param(q.maxDurationNano))}::int8`);
    if (q.statusCode !== undefined) conds.push(`status_code = ${p.add(q.statusCode)}::int4`);
    if (q.kind !== undefined) conds.push(`kind = ${p.add(q.kind)}::int4`);
    const attrs = q.attributes && q.attributes.length > 0 ? `attr_tokens @> ${p.add(q.attributes.map(({ key, value }) => attributeToken(key, value).toString()))}::int8[]` : undefined;

    // Walk matching spans newest first until `limit` distinct traces are found; a trace's many
    // spans must not crowd out the others, hence the rounds that exclude traces already seen.
    const seen = new Map<string, Buffer>();
    let before: bigint | undefined;
    // How an attribute search's rounds after the first find their spans, as its first round found
    // them (firstAttributeRound): a later round's matches are a part of the first's (older, traces seen left out).
    let plan: AttributePlan | undefined;
    // Each round adds at least one unseen trace (its first row is unseen), so `limit` rounds bound the walk.
    for (let round = 0; round < limit && seen.size < limit; round++) {
      const rp = new Params();
      rp.values.push(...p.values);
      const where = [...conds];
      if (before !== undefined) where.push(`start_time_unix_nano <= ${rp.add(before.toString())}::int8`);
      if (seen.size > 0) where.push(`trace_id <> ALL(${rp.add([...seen.values()])}::bytea[])`);
      const fetch = Math.min(10_000, (limit - seen.size) * 4 + 16);
      let rows: SpanStart[];
      if (attrs === undefined) rows = await this.newestSpans(db, rp, where, fetch);
      else if (plan === undefined) ({ plan, rows } = await this.firstAttributeRound(db, rp, where, attrs, fetch));
      else rows = plan === 'index' ? await this.newestFromAttributeIndex(db, rp, where, attrs, fetch) : await this.newestSpans(db, rp, [...where, attrs], fetch);
      for (const r of rows) {
        const hex = r.trace_id.toString('hex');
        if (!seen.has(hex) && seen.size < limit) seen.set(hex, r.trace_id);
      }
      if (rows.length < fetch) break;
      before = rows[rows.length - 1]!.start;
    }
    return [...seen.values()];
  }

  /** The newest `fetch` spans meeting `where`, by start, through the time (or service and time) index walked newest first. */
  private async newestSpans(db: Sql, p: Params, where: string[], fetch: number): Promise<SpanStart[]> {
    const { rows } = await db.query<SpanStart>(
      `SELECT trace_id, start_time_unix_nano AS start FROM ${this.s}.spans
        WHERE ${where.join(' AND ')}
        ORDER BY start_time_unix_nano DESC LIMIT ${fetch}`,
      p.values,
    );
    return rows;
  }

  /**
   * The first round of an attribute search (the newest `fetch` spans meeting `where` and the
   * attribute condition `attrs`), and how its later rounds find theirs: from the attribute index
   * or by the walk of the time index. PostgreSQL cannot tell a rare attribute from a common one (a
   * token outside its most common elements is guessed at 0.5 % of the rows), so for `ORDER BY
   * start DESC LIMIT n` without a service it walks the time index filtering every span, expecting
   * n matches soon: for a value few spans have (a user, an order id) that reads every span in the
   * range (a second per million spans). Counting the matches first, up to ATTRIBUTE_INDEX_SPANS,
   * costs a common value (env, region) ten times the walk it then takes. So, cheapest first:
   *  - up to ATTRIBUTE_PROBE_SPANS matches, newest first, through the attribute index (or the walk
   *    of the tenant's time index the planner may take when the value is rare only there): fewer,
   *    and they are all the matches, the answer; later rounds sort from the attribute index;
   *  - else the newest ATTRIBUTE_WINDOW_SPANS spans of the time walk: `fetch` matches among them,
   *    and they are the answer (a common value); later rounds walk;
   *  - else the matches up to ATTRIBUTE_INDEX_SPANS, as the first step: fewer, the answer, sorted
   *    from the attribute index; as many, the walk, common enough to meet `fetch` soon.
   * Each step is a statement, made in the first round only: making one in every round (one a trace
   * when traces are large) made a search several times slower than the walk alone.
   */
  private async firstAttributeRound(db: Sql, p: Params, where: string[], attrs: string, fetch: number): Promise<{ plan: AttributePlan; rows: SpanStart[] }> {
    const few = await this.newestOfMatches(db, p, where, attrs, fetch, ATTRIBUTE_PROBE_SPANS);
    if (few) return { plan: 'index', rows: few };
    const { rows } = await db.query<SpanStart>(
      `SELECT trace_id, start FROM (
         SELECT trace_id, start_time_unix_nano AS start, attr_tokens FROM ${this.s}.spans WHERE ${where.join(' AND ')}
          ORDER BY start_time_unix_nano DESC LIMIT ${ATTRIBUTE_WINDOW_SPANS}
       ) w WHERE ${attrs} ORDER BY start DESC LIMIT ${fetch}`,
      p.values,
    );
    if (rows.length === fetch) return { plan: 'walk', rows };
    const some = await this.newestOfMatches(db, p, where, attrs, fetch, ATTRIBUTE_INDEX_SPANS);
    if (some) return { plan: 'index', rows: some };
    return { plan: 'walk', rows: await this.newestSpans(db, p, [...where, attrs], fetch) };
  }

  /** The newest `fetch` spans meeting `where` and `attrs` when fewer than `bound` spans do (all read, through the attribute index), else undefined. */
  private async newestOfMatches(db: Sql, p: Params, where: string[], attrs: string, fetch: number, bound: number): Promise<SpanStart[] | undefined> {
    const { rows } = await db.query<SpanStart & { n: number }>(
      `SELECT trace_id, start, count(*) OVER ()::int4 AS n FROM (
         SELECT trace_id, start_time_unix_nano AS start FROM ${this.s}.spans WHERE ${[...where, attrs].join(' AND ')} LIMIT ${bound}
       ) m ORDER BY start DESC LIMIT ${fetch}`,
      p.values,
    );
    return rows.length === 0 || rows[0]!.n < bound ? rows : undefined;
  }

  /** newestSpans with the attribute condition `attrs`, sorted from the attribute index (firstAttributeRound). */
  private async newestFromAttributeIndex(db: Sql, p: Params, where: string[], attrs: string, fetch: number): Promise<SpanStart[]> {
    const { rows } = await db.query<SpanStart>(
      `SELECT trace_id, start_time_unix_nano AS start FROM ${this.s}.spans WHERE ${[...where, attrs].join(' AND ')}
        ORDER BY start_time_unix_nano + 0 DESC LIMIT ${fetch}`,
      p.values,
    );
    return rows;
  }

  private async summaries(tenant: string, ids: Buffer[], limit: number, db: Sql): Promise<TraceSummary[]> {
    const idx = await db.query<{ first: bigint; last: bigint }>(
      `SELECT min(first_start_unix_nano) AS first, max(last_start_unix_nano) AS last
         FROM ${this.s}.trace_index WHERE tenant = $2::text AND trace_id = ANY($1::bytea[])`,
      [ids, tenant],
    );
    const range = idx.rows[0];
    if (!range || range.first === null) return [];
    // The root is the span without a parent, else the earliest one; of several that start
    // together, the smallest span id. The end: start plus duration, 0 for a span ending before it
    // starts (as summarizeTrace).
    const { rows } = await db.query<{
      trace_id: Buffer;
      start: bigint;
      end_max: bigint;
      n: bigint;
      err: boolean;
      root_service: string | null;
      root_name: string | null;
    }>(
      `SELECT trace_id,
              min(start_time_unix_nano) AS start,
              max(start_time_unix_nano + duration_nano) AS end_max,
              count(*) AS n,
              bool_or(status_code = 2) AS err,
              (array_agg(service_name ORDER BY parent_span_id <> '\\x'::bytea, start_time_unix_nano, span_id))[1] AS root_service,
              (array_agg(name ORDER BY parent_span_id <> '\\x'::bytea, start_time_unix_nano, span_id))[1] AS root_name
         FROM ${this.s}.spans
        WHERE tenant = $4::text AND trace_id = ANY($1::bytea[]) AND start_time_unix_nano BETWEEN $2::int8 AND $3::int8
        GROUP BY trace_id`,
      [ids, range.first.toString(), range.last.toString(), tenant],
    );
    const out = rows.map((r): TraceSummary => {
      const start = u64(r.start);
      const end = u64(r.end_max);
      return {
        traceId: r.trace_id.toString('hex'),
        rootServiceName: r.root_service ?? '',
        rootSpanName: r.root_name ?? '',
        startTimeUnixNano: start,
        durationNano: end > start ? end - start : 0n,
        spanCount: Number(r.n),
        hasError: r.err,
      };
    });
    out.sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? 1 : a.startTimeUnixNano > b.startTimeUnixNano ? -1 : 0));
    return out.slice(0, limit);
  }

  async searchLogs(tenant: string, q: LogQuery, signal?: AbortSignal): Promise<LogSearch> {
    const limit = Math.max(0, Math.floor(q.limit));
    if (limit === 0) return [];
    const p = new Params();
    const conds: string[] = [`tenant = ${p.add(tenant)}::text`];
    if (q.traceId !== undefined) {
      const id = idBytes(q.traceId);
      if (!id) return [];
      conds.push(`trace_id = ${p.add(id)} AND trace_id <> '\\x'::bytea`);
    }
    if (q.service !== undefined) conds.push(serviceCond(p, q.service));
    if (q.startNano !== undefined) conds.push(`ts_unix_nano >= ${p.add(int8Param(q.startNano))}::int8`);
    if (q.endNano !== undefined) conds.push(`ts_unix_nano <= ${p.add(int8Param(q.endNano))}::int8`);
    if (q.minSeverity !== undefined) conds.push(`severity_number >= ${p.add(q.minSeverity)}::int4`);
    const order = 'ts_unix_nano DESC, batch_key DESC, seq DESC';
    const matching = `SELECT * FROM ${this.s}.logs WHERE ${conds.join(' AND ')} ORDER BY ${order} LIMIT ${limit}`;
    const maxBytes = q.maxBytes;
    return this.cancellable(signal, async (db) => {
      if (maxBytes === undefined) return (await db.query<LogDbRow>(matching, p.values)).rows.map(toLog);
      const { kept, cut } = await queryWithinBytes<LogDbRow>(db, p, matching, order, LOG_BYTES, maxBytes);
      return logSearch(kept.map(toLog), cut);
    });
  }

  async getServices(tenant: string, signal?: AbortSignal): Promise<string[]> {
    // Skip scan of the operations key (tenant, service, …): one index probe per service.
    const { rows } = await this.cancellable(signal, (db) => db.query<{ service_name: string }>(
      `WITH RECURSIVE svc AS (
         (SELECT service_name FROM ${this.s}.operations WHERE tenant = $1::text ORDER BY service_name LIMIT 1)
         UNION ALL
         SELECT (SELECT o.service_name FROM ${this.s}.operations o WHERE o.tenant = $1::text AND o.service_name > svc.service_name ORDER BY o.service_name LIMIT 1)
           FROM svc WHERE svc.service_name IS NOT NULL
       )
       SELECT service_name FROM svc WHERE service_name IS NOT NULL`,
      [tenant],
    ));
    // In the port's order (JavaScript's, by UTF-16 code units), as the other stores list them: the
    // index's COLLATE "C" is UTF-8 byte order, which differs for characters past U+FFFF.
    return rows.map((r) => r.service_name).sort();
  }

  async getOperations(tenant: string, q: OperationQuery, signal?: AbortSignal): Promise<Operation[]> {
    const p = new Params();
    const conds = [`tenant = ${p.add(tenant)}::text`, `service_name = left(${p.add(escapeText(q.service))}::text, 256)`];
    if (q.kind !== undefined) conds.push(`kind = ${p.add(q.kind)}::int4`);
    const { rows } = await this.cancellable(signal, (db) => db.query<{ name: string; kind: number }>(
      `SELECT name, kind FROM ${this.s}.operations WHERE ${conds.join(' AND ')} ORDER BY name, kind`,
      p.values,
    ));
    return rows.map((r) => ({ name: r.name, kind: r.kind })).sort(byOperation);
  }

  async getDependencies(tenant: string, q: DependencyQuery, signal?: AbortSignal): Promise<DependencyLink[]> {
    const { rows } = await this.cancellable(signal, (db) => db.query<{ parent: string; child: string; n: bigint }>(dependenciesSql(this.schema), [int8Param(q.startNano), int8Param(q.endNano), tenant]));
    return rows.map((r) => ({ parent: r.parent, child: r.child, callCount: Number(r.n) })).sort(byDependency);
  }
}

/**
 * Child spans in the range (spans_time) joined to their parent through the (trace_id, span_id,
 * start) key; tests EXPLAIN it. A parent is looked up in every partition, as it may have started
 * before the range.
 */
export function dependenciesSql(schema: string): string {
  const s = ident(schema);
  return `SELECT p.service_name AS parent, c.service_name AS child, count(*) AS n
            FROM ${s}.spans c JOIN ${s}.spans p ON p.tenant = c.tenant AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
           WHERE c.tenant = $3::text AND c.start_time_unix_nano BETWEEN $1::int8 AND $2::int8 AND c.parent_span_id <> '\\x'::bytea
             AND p.service_name <> c.service_name
           GROUP BY 1, 2 ORDER BY p.service_name COLLATE "C", c.service_name COLLATE "C"`;
}
