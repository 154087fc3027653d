// Service, operation and dependency listings on one shard, as Grafana's ClickHouse data source
// would ask them: DISTINCT over the leading columns of the sort key (ServiceName, SpanName), so
// the operations of one service read only that service's granules. index.ts merges the shards.
import type { ClickHouseClient } from '@clickhouse/client';
import type { DependencyLink, DependencyQuery, Operation, OperationQuery } from '../backend.ts';
import { SPAN_KINDS } from './encoder.ts';
import { SPAN_KIND_NAMES, SPAN_TIME, kindNumber, timeRange } from './reads.ts';
import { TENANT_COLUMN, qualified, tableNames, type SchemaOptions } from './schema.ts';

async function rows(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<unknown[][]> {
  const rs = await client.query({ query, format: 'JSONCompactEachRow', query_params: params });
  return rs.json<unknown[]>();
}

/** Every listing is of one tenant's spans (parameter `tenant`). */
const TENANT_COND = `${TENANT_COLUMN} = {tenant:String}`;

/** Distinct service names of a tenant on this shard. */
export async function servicesOnShard(client: ClickHouseClient, o: SchemaOptions, tenant: string): Promise<string[]> {
  const traces = qualified(o, tableNames(o).traces);
  return (await rows(client, `SELECT DISTINCT ServiceName FROM ${traces} WHERE ${TENANT_COND}`, { tenant })).map((r) => r[0] as string);
}

/** Distinct (SpanName, kind) of one service on this shard. */
export async function operationsOnShard(client: ClickHouseClient, o: SchemaOptions, tenant: string, q: OperationQuery): Promise<Operation[]> {
  const traces = qualified(o, tableNames(o).traces);
  const params: Record<string, unknown> = { service: q.service, tenant };
  let kindCond = '';
  if (q.kind !== undefined) {
    // Kinds beyond the enum are stored as 'Unspecified'; they cannot be asked for by number here.
    const word = SPAN_KINDS[q.kind];
    if (word === undefined) return [];
    // The exporter's earlier releases wrote the enum name (SPAN_KIND_SERVER).
    kindCond = ' AND SpanKind IN ({kind:String}, {kindName:String})';
    params['kind'] = word;
    params['kindName'] = SPAN_KIND_NAMES[q.kind];
  }
  const found = await rows(client, `SELECT DISTINCT SpanName, SpanKind FROM ${traces} WHERE ServiceName = {service:String} AND ${TENANT_COND}${kindCond}`, params);
  return found.map((r) => ({ name: r[0] as string, kind: kindNumber(r[1] as string) }));
}

/**
 * Parent → child service calls whose child span starts in the range. Both sides of the join are
 * limited to the traces with a span in the range (the TraceId bloom filter skips the rest);
 * traces live on one shard, so each shard's answer is complete for its traces. A call is a child
 * span, counted once (uniqExact of its trace and span id) however many copies of it and of its
 * parent the table keeps from a client's resends, as the other stores count it. (A LIMIT 1 BY on
 * each side of the join counted the same and cost a third more.)
 */
export async function dependenciesOnShard(client: ClickHouseClient, o: SchemaOptions, tenant: string, q: DependencyQuery): Promise<DependencyLink[]> {
  const traces = qualified(o, tableNames(o).traces);
  const params: Record<string, unknown> = { tenant };
  const range = [TENANT_COND, ...timeRange(params, SPAN_TIME, q.startNano, q.endNano)].join(' AND ');
  // In cluster mode both are Distributed tables: a plain IN over one inside a query of the other is
  // refused (distributed_product_mode = 'deny'); GLOBAL IN runs the subquery once and ships its ids.
  const inTraces = o.cluster === '' ? 'IN' : 'GLOBAL IN';
  const sql = `SELECT p.ServiceName, c.ServiceName, uniqExact(c.TraceId, c.SpanId)
FROM (SELECT TraceId, SpanId, ParentSpanId, ServiceName FROM ${traces} WHERE ${range} AND ParentSpanId != '') AS c
INNER JOIN (
  SELECT TraceId, SpanId, ServiceName FROM ${traces}
  WHERE ${TENANT_COND} AND TraceId ${inTraces} (SELECT TraceId FROM ${traces} WHERE ${range} AND ParentSpanId != '')
) AS p ON p.TraceId = c.TraceId AND p.SpanId = c.ParentSpanId
WHERE p.ServiceName != c.ServiceName
GROUP BY p.ServiceName, c.ServiceName`;
  const found = await rows(client, sql, params);
  return found.map((r) => ({ parent: r[0] as string, child: r[1] as string, callCount: Number(r[2]) }));
}
