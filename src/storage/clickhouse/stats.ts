// Size, rows and age of one ClickHouse shard for the storage metrics: bytes and rows of the
// active parts from system.parts (metadata, no table scan), the oldest time from the tables' own
// Timestamp column. index.ts sums the shards. In cluster mode the one URL measured stands for the
// whole cluster: the parts of a replica of each shard (cluster()), the oldest time through the
// Distributed tables.
import type { ClickHouseClient } from '@clickhouse/client';
import type { Signal } from '../../model/signal.ts';
import { qualified, quoteString, tableNames, type SchemaOptions } from './schema.ts';

/** One shard's figures for one signal. */
export interface ShardSignalStats {
  bytes: number;
  rows: number;
  /** Undefined when the signal's table is empty. */
  oldestUnixNano: bigint | undefined;
}

async function rows(client: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<unknown[][]> {
  const rs = await client.query({ query, format: 'JSONCompactEachRow', query_params: params });
  return rs.json<unknown[]>();
}

/**
 * Measures the tables of one shard; in cluster mode, of the whole cluster. Each URL's own parts
 * counted every replica's copy again (a deployment names two replicas, so that it keeps a node to
 * read from) and missed the shards no URL named.
 */
export async function statsOnShard(client: ClickHouseClient, o: SchemaOptions): Promise<Record<Signal, ShardSignalStats>> {
  const n = tableNames(o);
  const parts = o.cluster === '' ? 'system.parts' : `cluster(${quoteString(o.cluster)}, system.parts)`;
  // The trace-id lookup table serves trace reads only: its parts count towards traces' size, not rows.
  const partRows = await rows(
    client,
    `SELECT table, toString(sum(bytes_on_disk)), toString(sum(rows)) FROM ${parts}
     WHERE active AND database = {db:String} AND table IN {tables:Array(String)} GROUP BY table`,
    { db: o.database, tables: [n.tracesLocal, n.lookupLocal, n.logsLocal] },
  );
  const byTable = new Map(partRows.map((r) => [r[0] as string, { bytes: Number(r[1]), rows: Number(r[2]) }]));
  const oldest = async (table: string): Promise<bigint | undefined> => {
    const [r] = await rows(client, `SELECT toString(toUnixTimestamp64Nano(min(Timestamp))), count() FROM ${qualified(o, table)}`, {});
    return r !== undefined && Number(r[1]) > 0 ? BigInt(r[0] as string) : undefined;
  };
  const traces = byTable.get(n.tracesLocal);
  const logs = byTable.get(n.logsLocal);
  return {
    // n.traces and n.logs: the Distributed tables in cluster mode, the tables themselves otherwise.
    traces: { bytes: (traces?.bytes ?? 0) + (byTable.get(n.lookupLocal)?.bytes ?? 0), rows: traces?.rows ?? 0, oldestUnixNano: await oldest(n.traces) },
    logs: { bytes: logs?.bytes ?? 0, rows: logs?.rows ?? 0, oldestUnixNano: await oldest(n.logs) },
  };
}
