// Keyset scans for export and copy: spans in (start time, trace id, span id) order, log records
// in their unique key's order (time, batch key, seq). Each page is one indexed query on its own
// short statement, so a scan holds no snapshot or lock between pages; rows written meanwhile with
// later keys are found by later pages. Cursors carry the raw int8 key (times past 2^63 wrap).
import type { LogRow, SpanRow } from '../../model/rows.ts';
import type { ScanPage, ScanQuery } from '../backend.ts';
import { LOG_BYTES, Params, SPAN_BYTES, queryWithinBytes, serviceCond, toLog, toSpan, type LogDbRow, type SpanDbRow, type Sql } from './reads.ts';
import { ident, int8Param } from './sql.ts';

/** A malformed cursor is the caller's mistake (a checkpoint file from another store, say): say so. */
function cursorParts(cursor: string, n: number): string[] {
  const parts = cursor.split(':');
  if (parts.length !== n || !/^-?\d+$/.test(parts[0]!)) throw new Error(`not a postgres scan cursor: ${JSON.stringify(cursor)}`);
  return parts;
}

function conditions(p: Params, tenant: string, q: ScanQuery, timeCol: string): string[] {
  const conds: string[] = [`tenant = ${p.add(tenant)}`];
  if (q.service !== undefined) conds.push(serviceCond(p, q.service));
  if (q.startNano !== undefined) conds.push(`${timeCol} >= ${p.add(int8Param(q.startNano))}::int8`);
  if (q.endNano !== undefined) conds.push(`${timeCol} <= ${p.add(int8Param(q.endNano))}::int8`);
  return conds;
}

const SPAN_ORDER = 'start_time_unix_nano, trace_id, span_id';
const LOG_ORDER = 'ts_unix_nano, batch_key, seq';

/** A page's rows of `from` (a SELECT and its WHERE) in `order`: at most `limit`, and within q.maxBytes of `bytes` when given (`cut` when that left rows out). */
async function pageRows<R extends object>(pool: Sql, p: Params, q: ScanQuery, from: string, order: string, limit: number, bytes: string): Promise<{ rows: R[]; cut: boolean }> {
  const matching = `${from} ORDER BY ${order} LIMIT ${limit}`;
  if (q.maxBytes === undefined) return { rows: (await pool.query<R>(matching, p.values)).rows, cut: false };
  const { kept, cut } = await queryWithinBytes<R>(pool, p, matching, order, bytes, q.maxBytes);
  return { rows: kept, cut };
}

/** One page of spans after the cursor. */
export async function scanSpans(pool: Sql, schema: string, tenant: string, q: ScanQuery): Promise<ScanPage<SpanRow>> {
  const p = new Params();
  const conds = conditions(p, tenant, q, 'start_time_unix_nano');
  if (q.after !== undefined) {
    const [t, tr, sp] = cursorParts(q.after, 3);
    conds.push(`(start_time_unix_nano, trace_id, span_id) > (${p.add(t)}::int8, ${p.add(Buffer.from(tr!, 'hex'))}::bytea, ${p.add(Buffer.from(sp!, 'hex'))}::bytea)`);
  }
  const limit = Math.max(1, Math.floor(q.limit));
  const { rows, cut } = await pageRows<SpanDbRow>(pool, p, q, `SELECT * FROM ${ident(schema)}.spans ${conds.length > 0 ? 'WHERE ' + conds.join(' AND ') : ''}`, SPAN_ORDER, limit, SPAN_BYTES);
  const last = rows[rows.length - 1];
  const next = last ? `${last.start_time_unix_nano}:${last.trace_id.toString('hex')}:${last.span_id.toString('hex')}` : q.after;
  return { rows: rows.map(toSpan), next, done: !cut && rows.length < limit };
}

/** One page of log records after the cursor. */
export async function scanLogs(pool: Sql, schema: string, tenant: string, q: ScanQuery): Promise<ScanPage<LogRow>> {
  const p = new Params();
  const conds = conditions(p, tenant, q, 'ts_unix_nano');
  if (q.after !== undefined) {
    const [t, b, s] = cursorParts(q.after, 3);
    conds.push(`(ts_unix_nano, batch_key, seq) > (${p.add(t)}::int8, ${p.add(b)}::int8, ${p.add(s)}::int4)`);
  }
  const limit = Math.max(1, Math.floor(q.limit));
  const { rows, cut } = await pageRows<LogDbRow & { ts_unix_nano: bigint; batch_key: bigint; seq: number }>(pool, p, q, `SELECT * FROM ${ident(schema)}.logs ${conds.length > 0 ? 'WHERE ' + conds.join(' AND ') : ''}`, LOG_ORDER, limit, LOG_BYTES);
  const last = rows[rows.length - 1];
  const next = last ? `${last.ts_unix_nano}:${last.batch_key}:${last.seq}` : q.after;
  return { rows: rows.map(toLog), next, done: !cut && rows.length < limit };
}
