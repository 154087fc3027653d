// Keyset scans for export and copy. The tables have no unique key (MergeTree keeps every row), so
// the scan key is (time in ns, a, b): spans (start, TraceId, SpanId), log records (time, a hash of
// the record), times exact (SPAN_TIME / LOG_TIME: past 2106 those TracehouseExtra keeps). A span's key is the one PostgreSQL keeps each span once by: the copies a
// client sent again in another request share it and come one after another, and a scan gives the
// first of them, as every other store keeps one; a spans' cursor has passed its key whole. (Not
// with LIMIT 1 BY: it keeps the engine from sorting only the page's rows, and every page sorted
// all the rows after its cursor.) Log records have no id, and every store keeps each one sent; rows
// sharing a key are told apart by how many of them the cursor has already passed, so none is
// skipped at a page boundary. Each shard is scanned on its own cursor and pages are merged by
// key; the cursor is the JSON list of the shard cursors (for log records, under LOG_KEY_VERSION: a
// cursor of another key would pass other rows than it counted).
import type { ClickHouseClient } from '@clickhouse/client';
import type { LogRow, SpanRow } from '../../model/rows.ts';
import type { ScanPage, ScanQuery } from '../backend.ts';
import { withinBytes } from '../query-helpers.ts';
import { LOG_BYTES, LOG_SELECT, LOG_TIME, SPAN_BYTES, SPAN_SELECT, SPAN_TIME, addServiceAndTime, decodeLog, decodeSpan, rows, upToBytes } from './reads.ts';
import { TENANT_COLUMN, qualified, tableNames, type SchemaOptions } from './schema.ts';

/** Key of a row and how many rows of that key have been passed: [ns, a, b, passed]. */
type ShardCursor = [string, string, string, number] | null;

const KEYS = {
  traces: [`toString(${SPAN_TIME})`, 'TraceId', 'SpanId'],
  logs: [
    `toString(${LOG_TIME})`,
    // Every column: rows of one time and one hash are then the same record, whichever a page passes.
    // ObservedTimestamp as text in UTC, whatever the server's (or session's) zone: a cursor saved in
    // one zone is read in another (a copy resumed elsewhere), and a zone's repeated autumn hour
    // would print two times alike. Under a UTC server the hash is the one version 2 had.
    "toString(cityHash64(TraceId, SpanId, TraceFlags, Body, EventName, SeverityText, SeverityNumber, ServiceName, TracehouseExtra, toString(ObservedTimestamp, 'UTC'), toString(LogAttributes), toString(ResourceAttributes), toString(ScopeAttributes), ScopeName, ScopeVersion, ResourceSchemaUrl, ScopeSchemaUrl))",
    "''",
  ],
} as const;

/** The log records' scan key (KEYS.logs) since its hash took every column (c09020d); cursors of the key before carry none. */
const LOG_KEY_VERSION = 2;

function parseCursor(after: string | undefined, shards: number, signal: 'traces' | 'logs'): ShardCursor[] {
  if (after === undefined) return new Array<ShardCursor>(shards).fill(null);
  let v: unknown;
  try {
    v = JSON.parse(after);
  } catch {
    v = undefined;
  }
  if (signal === 'logs') {
    if (Array.isArray(v)) throw new Error('a clickhouse log scan cursor from before the scan key took every column: it would skip and repeat records; remove the copy checkpoint and copy again (with --start at its time to copy less)');
    v = (v as { logKey?: unknown } | undefined)?.logKey === LOG_KEY_VERSION ? (v as { shards: unknown }).shards : undefined;
  }
  if (!Array.isArray(v) || v.length !== shards) throw new Error(`not a clickhouse scan cursor for ${shards} shard(s): ${JSON.stringify(after)}`);
  return v as ShardCursor[];
}

function cmp(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  const ta = BigInt(a[0]!);
  const tb = BigInt(b[0]!);
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (a[1] !== b[1]) return a[1]! < b[1]! ? -1 : 1;
  if (a[2] !== b[2]) return a[2]! < b[2]! ? -1 : 1;
  return 0;
}

interface Keyed<T> {
  shard: number;
  key: string[];
  row: T;
  /** Its bytes for ScanQuery.maxBytes (0 without one). */
  bytes: number;
}

/** A shard's rows of a page, and whether it has none after them (it gave fewer rows than asked, none left out by a byte bound). */
interface ShardPage<T> {
  rows: Keyed<T>[];
  exhausted: boolean;
}

async function scanShard<T>(client: ClickHouseClient, o: SchemaOptions, signal: 'traces' | 'logs', tenant: string, q: ScanQuery, cursor: ShardCursor, shard: number, decode: (r: unknown[]) => T): Promise<ShardPage<T>> {
  const names = tableNames(o);
  const spans = signal === 'traces';
  const table = qualified(o, spans ? names.traces : names.logs);
  const [k1, k2, k3] = KEYS[signal];
  const where: string[] = [`${TENANT_COLUMN} = {tenant:String}`];
  const params: Record<string, unknown> = { tenant };
  addServiceAndTime(where, params, q, spans ? SPAN_TIME : LOG_TIME);
  let skip = 0;
  if (cursor) {
    // toInt128: the key's time is compared as a number, not as text. A spans' cursor has passed its key whole.
    where.push(`(toInt128(${k1}), ${k2}, ${k3}) ${spans ? '>' : '>='} (toInt128({ct:String}), {ca:String}, {cb:String})`);
    Object.assign(params, { ct: cursor[0], ca: cursor[1], cb: cursor[2] });
    if (!spans) skip = cursor[3];
  }
  const limit = q.limit + skip;
  params['limit'] = limit;
  const matching = `SELECT ${spans ? SPAN_SELECT : LOG_SELECT}, ${k1} AS scan_k1, ${k2} AS scan_k2, ${k3} AS scan_k3${q.maxBytes === undefined ? '' : `, ${spans ? SPAN_BYTES : LOG_BYTES} AS bytes`}
FROM ${table}
${where.length > 0 ? `WHERE ${where.join('\n  AND ')}` : ''}
ORDER BY toInt128(${k1}), ${k2}, ${k3}
LIMIT {limit:UInt64}`;
  // With a byte bound the server sends the rows up to the first past it (sizes summed in key
  // order; the passed rows and the first two after them whatever their size), each with the count
  // of rows before the cut (total): scan() cuts the merged page again.
  let bounded = '';
  if (q.maxBytes !== undefined) {
    Object.assign(params, { maxBytes: q.maxBytes, keep: skip + 2 });
    bounded = upToBytes('*', matching, 'toInt128(scan_k1), scan_k2, scan_k3', ',\n    count() OVER () AS total');
  }
  const found = await rows(client, bounded || matching, params);
  // Without a bound a row is its columns and its key; with one, then its bytes, before, n and total.
  const extra = bounded ? 4 : 0;
  const total = bounded ? Number(found[0]?.[found[0].length - 1] ?? 0) : found.length;
  const out: Keyed<T>[] = [];
  let last: string[] | undefined;
  for (const r of found) {
    const key = r.slice(r.length - extra - 3, r.length - extra) as string[];
    // Rows of the cursor's own key come first; the cursor has passed `skip` of them.
    if (skip > 0 && cursor && cmp(key, cursor) === 0) {
      skip--;
      continue;
    }
    // The copies of a span a client sent again: the first one is given.
    if (spans && last !== undefined && cmp(key, last) === 0) continue;
    last = key;
    out.push({ shard, key, row: decode(r.slice(0, r.length - extra - 3)), bytes: bounded ? Number(r[r.length - 4]) : 0 });
  }
  return { rows: out, exhausted: total < limit && found.length === total };
}

async function scan<T>(clients: { client: ClickHouseClient; schema: SchemaOptions }[], signal: 'traces' | 'logs', tenant: string, q: ScanQuery, decode: (r: unknown[]) => T): Promise<ScanPage<T>> {
  const cursors = parseCursor(q.after, clients.length, signal);
  const limit = Math.max(1, Math.floor(q.limit));
  const parts = await Promise.all(clients.map((c, i) => scanShard(c.client, c.schema, signal, tenant, { ...q, limit }, cursors[i]!, i, decode)));
  const merged = parts.flatMap((p) => p.rows).sort((a, b) => cmp(a.key, b.key));
  // A span on two shards (a client resent it to a collector of another shard list) is given once:
  // a copy has the key of the span given last, on this page or at the end of the one before (the
  // furthest cursor); its shard's cursor passes it all the same.
  const given: Keyed<T>[] = [];
  const copies: Keyed<T>[] = [];
  let last: readonly (string | number)[] | undefined;
  if (signal === 'traces') for (const c of cursors) if (c && (last === undefined || cmp(c, last) > 0)) last = c;
  for (const r of merged.slice(0, limit)) {
    if (signal === 'traces' && last !== undefined && cmp(r.key, last) === 0) copies.push(r);
    else {
      given.push(r);
      if (signal === 'traces') last = r.key;
    }
  }
  const { kept: page, cut } = withinBytes(given, (r) => r.bytes, q.maxBytes);
  const end = page[page.length - 1];
  const passed = copies.filter((r) => end === undefined || cmp(r.key, end.key) <= 0);
  for (const r of [...page, ...passed]) {
    const c = cursors[r.shard];
    cursors[r.shard] = c && cmp(c, r.key) === 0 ? [c[0], c[1], c[2], c[3] + 1] : [r.key[0]!, r.key[1]!, r.key[2]!, 1];
  }
  // A page short of copies it left out does not end the scan: only shards that ran out do.
  const next = JSON.stringify(signal === 'logs' ? { logKey: LOG_KEY_VERSION, shards: cursors } : cursors);
  return { rows: page.map((r) => r.row), next, done: !cut && merged.length < limit && parts.every((p) => p.exhausted) };
}

/** One page of spans across the shards. */
export function scanSpans(clients: { client: ClickHouseClient; schema: SchemaOptions }[], tenant: string, q: ScanQuery): Promise<ScanPage<SpanRow>> {
  return scan(clients, 'traces', tenant, q, decodeSpan);
}

/** One page of log records across the shards. */
export function scanLogs(clients: { client: ClickHouseClient; schema: SchemaOptions }[], tenant: string, q: ScanQuery): Promise<ScanPage<LogRow>> {
  return scan(clients, 'logs', tenant, q, decodeLog);
}
