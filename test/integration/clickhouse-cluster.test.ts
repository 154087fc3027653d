// Cluster mode (storage.clickhouse.cluster) against the real engine. chdb is given a cluster of two
// shards whose replicas are both this process (localhost at the configured tcp_port, so ClickHouse
// runs each shard's part of a query locally: no network, no Keeper). The tables are the cluster
// DDL of schema.ts without ON CLUSTER and with plain engines; Distributed tables fan out over the
// two shards, which hold the one local table (every row is read twice: each read must count a
// span once anyway, as it does a span a client sent twice). One engine per file, and this one is
// opened with the cluster's configuration before anything else opens it.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { createEncoder } from '../../src/storage/clickhouse/encoder.ts';
import { dependenciesOnShard } from '../../src/storage/clickhouse/listings.ts';
import { migrations, qualified, quoteIdent, TRACE_COLUMNS, type SchemaOptions } from '../../src/storage/clickhouse/schema.ts';
import { connectShard, type Shard } from '../../src/storage/clickhouse/shard.ts';
import { chdbClient, chdbDir, removeChdbDir, uniqueDatabase } from '../helpers/clickhouse.ts';
import { makeSpan } from '../helpers/rows.ts';

const MS = 1_000_000n;
const CLUSTER = 'two';

let session: { close(): void } | undefined;
let client: ClickHouseClient;
let shard: Shard;

beforeAll(async () => {
  const config = join(chdbDir(), `cluster-${randomUUID()}.xml`);
  const replica = (host: string) => `<shard><replica><host>${host}</host><port>9000</port></replica></shard>`;
  writeFileSync(config, `<clickhouse><tcp_port>9000</tcp_port><remote_servers><${CLUSTER}>${replica('localhost')}${replica('127.0.0.1')}</${CLUSTER}></remote_servers></clickhouse>`);
  // The first connection of the process binds the directory with the engine's arguments.
  const { Session } = (await import('chdb')) as unknown as { Session: new (path: string, opts: { connectionArgs: string[] }) => { close(): void } };
  session = new Session(chdbDir(), { connectionArgs: [`--config-file=${config}`] });
  client = await chdbClient();
  shard = await connectShard({ kind: 'chdb', path: chdbDir(), database: 'unused', display: 'chdb' }, { requestTimeoutMs: 60_000, maxConnections: 4 });
});

afterAll(async () => {
  await shard?.close();
  await client?.close();
  session?.close();
  removeChdbDir();
});

/** Makes the cluster-mode tables of `o` on this single node: its DDL without ON CLUSTER and Replicated engines. */
async function clusterTables(o: SchemaOptions): Promise<void> {
  await client.command({ query: `CREATE DATABASE ${quoteIdent(o.database)}` });
  for (const m of migrations(o)) {
    for (const q of m.statements) {
      const local = q.replaceAll(` ON CLUSTER ${quoteIdent(CLUSTER)}`, '').replace(/Replicated(\w*MergeTree)\('[^']*', '[^']*'\)/, '$1');
      await client.command({ query: local, clickhouse_settings: { flatten_nested: 1 } });
    }
  }
}

describe('clickhouse cluster mode reads', () => {
  const o: SchemaOptions = { database: uniqueDatabase('cluster'), tracesTable: 'otel_traces', logsTable: 'otel_logs', ttlDays: 0, codec: 'ZSTD(1)', cluster: CLUSTER };
  const now = BigInt(Date.now()) * MS;
  const web = 'web-' + randomUUID();
  const db = 'db-' + randomUUID();
  const root = makeSpan({ serviceName: web, name: 'GET /', parentSpanId: '', startTimeUnixNano: now, endTimeUnixNano: now + 10n * MS });
  const child = makeSpan({ traceId: root.traceId, parentSpanId: root.spanId, serviceName: db, name: 'SELECT', startTimeUnixNano: now + MS, endTimeUnixNano: now + 2n * MS });

  beforeAll(async () => {
    await clusterTables(o);
    // Written as the backend writes in cluster mode: into the Distributed table, synchronously.
    const [chunk] = createEncoder({ partitions: 1 }).encodeSpans([root, child]);
    await shard.insertRowBinary(`${qualified(o, o.tracesTable)} (${TRACE_COLUMNS.map(quoteIdent).join(', ')})`, ['insert_distributed_sync = 1'], [chunk!.data]);
  });

  it('counts calls between services over the Distributed tables (Jaeger /api/dependencies), not refused as a double-distributed subquery', async () => {
    const range = { startNano: now - 1000n * MS, endNano: now + 1000n * MS };
    expect(await dependenciesOnShard(client, o, TENANT, range)).toEqual([{ parent: web, child: db, callCount: 1 }]);
  });
});
