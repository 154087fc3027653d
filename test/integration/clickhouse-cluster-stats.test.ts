// The storage metrics of a ClickHouse cluster (storage.clickhouse.cluster) named by two URLs, its
// entry points: here two replicas of one shard, what a deployment lists so that reads and schema
// work survive one node. The store's size and rows were the sum of each URL's local parts, so every
// replica's copy counted again (twice here; and one URL in front of several shards counted only the
// node that answered). They are measured once now, through the cluster: a replica of each shard.
//
// chdb is given a cluster `pair` of one shard whose two replicas are both this process (localhost
// at the configured tcp_port, so ClickHouse runs the query locally: no network, no Keeper), and is
// served over HTTP twice, as the two entry points. The tables are the cluster DDL of schema.ts
// without ON CLUSTER and with plain engines. One engine per file, and this one is opened with the
// cluster's configuration before anything else opens it.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { createClickhouseBackend } from '../../src/storage/clickhouse/index.ts';
import { createEncoder } from '../../src/storage/clickhouse/encoder.ts';
import { bootstrapStatements, migrations, qualified, quoteIdent, tableNames, TRACE_COLUMNS, type SchemaOptions } from '../../src/storage/clickhouse/schema.ts';
import { connectShard, type Shard } from '../../src/storage/clickhouse/shard.ts';
import { clickhouseOptions } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { serveChdbOverHttp, type ChdbHttp } from '../helpers/clickhouse-http.ts';
import { chdbClient, chdbDir, removeChdbDir, uniqueDatabase } from '../helpers/clickhouse.ts';
import { makeSpan } from '../helpers/rows.ts';

const MS = 1_000_000n;
const CLUSTER = 'pair';

let session: { close(): void } | undefined;
let client: ClickHouseClient;
let shard: Shard;
const entryPoints: ChdbHttp[] = [];

beforeAll(async () => {
  const config = join(chdbDir(), `cluster-${randomUUID()}.xml`);
  const replica = (host: string) => `<replica><host>${host}</host><port>9000</port></replica>`;
  writeFileSync(config, `<clickhouse><tcp_port>9000</tcp_port><remote_servers><${CLUSTER}><shard>${replica('localhost')}${replica('127.0.0.1')}</shard></${CLUSTER}></remote_servers></clickhouse>`);
  // The first connection of the process binds the directory with the engine's arguments.
  const { Session } = (await import('chdb')) as unknown as { Session: new (path: string, opts: { connectionArgs: string[] }) => { close(): void } };
  session = new Session(chdbDir(), { connectionArgs: [`--config-file=${config}`] });
  client = await chdbClient();
  shard = await connectShard({ kind: 'chdb', path: chdbDir(), database: 'unused', display: 'chdb' }, { requestTimeoutMs: 60_000, maxConnections: 4 });
  for (let i = 0; i < 2; i++) entryPoints.push(await serveChdbOverHttp(client));
});

afterAll(async () => {
  for (const e of entryPoints) await e.close();
  await shard?.close();
  await client?.close();
  session?.close();
  removeChdbDir();
});

/** Makes the cluster-mode tables of `o` on this single node (its DDL without ON CLUSTER and Replicated engines), migrated to the latest version. */
async function clusterTables(o: SchemaOptions): Promise<void> {
  const local = (q: string) => q.replaceAll(` ON CLUSTER ${quoteIdent(CLUSTER)}`, '').replace(/Replicated(\w*MergeTree)\('[^']*', '[^']*'\)/, '$1');
  for (const q of bootstrapStatements(o)) await client.command({ query: local(q) });
  for (const m of migrations(o)) {
    for (const q of m.statements) await client.command({ query: local(q), clickhouse_settings: { flatten_nested: 1 } });
    await client.command({ query: `INSERT INTO ${qualified(o, tableNames(o).migrations)} (Version, Name) VALUES (${m.version}, 'test')` });
  }
}

describe('clickhouse cluster mode: storage metrics', () => {
  it('counts the rows and bytes of the cluster once, however many of its nodes the URLs name', async () => {
    const o: SchemaOptions = { database: uniqueDatabase('clusterstats'), tracesTable: 'otel_traces', logsTable: 'otel_logs', ttlDays: 0, codec: 'ZSTD(1)', cluster: CLUSTER };
    await clusterTables(o);
    const now = BigInt(Date.now()) * MS;
    const spans = Array.from({ length: 40 }, (_, i) => makeSpan({ serviceName: 'stats', startTimeUnixNano: now - BigInt(i) * MS, endTimeUnixNano: now }));
    // What each replica's local table holds (here the one local table both replicas are).
    const [chunk] = createEncoder({ partitions: 1 }).encodeSpans(spans);
    await shard.insertRowBinary(`${qualified(o, tableNames(o).tracesLocal)} (${TRACE_COLUMNS.map(quoteIdent).join(', ')})`, [], [chunk!.data]);
    const local = await client.query({ query: `SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = {db:String} AND table IN ({t:String}, {l:String})`, query_params: { db: o.database, t: tableNames(o).tracesLocal, l: tableNames(o).lookupLocal }, format: 'JSONCompactEachRow' });
    const localBytes = Number((await local.json<[string]>())[0]![0]);

    const config = loadConfig({
      flags: {
        'storage.backend': 'clickhouse',
        'storage.clickhouse.urls': entryPoints.map((e) => `${e.url}/?database=${o.database}`).join(','),
        'storage.clickhouse.cluster': CLUSTER,
        'storage.clickhouse.autoMigrate': 'false',
      },
    });
    const b = createClickhouseBackend(clickhouseOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await b.start();
    try {
      const stats = await (b as unknown as { stats(): Promise<{ signals: { signal: string; rows?: number; bytes?: number; oldestUnixNano?: bigint }[] }> }).stats();
      const traces = stats.signals.find((s) => s.signal === 'traces')!;
      expect(traces.rows).toBe(spans.length);
      expect(traces.bytes).toBe(localBytes);
      expect(traces.oldestUnixNano).toBe(now - 39n * MS);
      const logs = stats.signals.find((s) => s.signal === 'logs')!;
      expect(logs).toEqual({ signal: 'logs', bytes: 0, rows: 0 });
    } finally {
      await b.shutdown();
    }
  });
});
