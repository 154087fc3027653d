// A log search of a time range reads the partitions and granules of that range only: the
// exporter's otel_logs is partitioned and keyed by TimestampTime (DateTime), not by Timestamp
// (DateTime64), and a condition on Timestamp alone prunes neither.
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import type { LogQuery, StorageBackend } from '../../src/storage/backend.ts';
import { logsKeyedByTime, searchLogsOnShard } from '../../src/storage/clickhouse/reads.ts';
import type { SchemaOptions } from '../../src/storage/clickhouse/schema.ts';
import { chdbBackend, chdbClient, exporter2023Logs, removeChdbDir, select, uniqueDatabase } from '../helpers/clickhouse.ts';
import { makeLog, writeLogs } from '../helpers/rows.ts';

const HOUR = 3_600_000_000_000n;
const DAY = 24n * HOUR;
const NOW = BigInt(Date.now()) * 1_000_000n;

describe('clickhouse: a log search of a time range', () => {
  const database = uniqueDatabase('logrange');
  let b: StorageBackend;
  let client: ClickHouseClient;
  const o: SchemaOptions = { database, tracesTable: 'otel_traces', logsTable: 'otel_logs', ttlDays: 0, codec: 'ZSTD(1)', cluster: '' };

  beforeAll(async () => {
    b = await chdbBackend([database]);
    // A record an hour for five days, of two services: five daily partitions.
    for (let d = 0n; d < 5n; d++) {
      await writeLogs(b, Array.from({ length: 24 }, (_, h) => makeLog({ serviceName: h % 2 === 0 ? 'web' : 'checkout', timeUnixNano: NOW - d * DAY - BigInt(h) * HOUR })));
    }
    client = await chdbClient();
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await b?.shutdown();
    removeChdbDir();
  });

  /** The search's SQL as the store sends it (the table's layout as the store reads it), and the parts ClickHouse reads for it (EXPLAIN indexes = 1). */
  async function partsRead(q: LogQuery): Promise<{ found: number; selected: number; total: number }> {
    const sent: { query: string; params: Record<string, unknown> }[] = [];
    const spy = { query: (a: { query: string; query_params: Record<string, unknown> }) => (sent.push({ query: a.query, params: a.query_params }), client.query(a as never)) } as unknown as ClickHouseClient;
    const found = (await searchLogsOnShard(spy, o, TENANT, q, await logsKeyedByTime(client, o))).length;
    expect(sent).toHaveLength(1);
    const plan = (await select(client, `EXPLAIN indexes = 1 ${sent[0]!.query}`, sent[0]!.params)).map((r) => String(r[0])).join('\n');
    // The last pruning step's parts: "Parts: selected/total".
    const steps = [...plan.matchAll(/Parts: (\d+)\/(\d+)/g)];
    expect(steps.length).toBeGreaterThan(0);
    const last = steps[steps.length - 1]!;
    return { found, selected: Number(last[1]), total: Number(last[2]) };
  }

  it('reads the day of its range, not every day stored', async () => {
    const parts = Number((await select(client, `SELECT count() FROM system.parts WHERE database = {db:String} AND table = 'otel_logs' AND active`, { db: database }))[0]![0]);
    expect(parts).toBeGreaterThanOrEqual(5);
    // Two hours of two days ago, of every service and of one.
    const range = { startNano: NOW - 2n * DAY - 2n * HOUR, endNano: NOW - 2n * DAY, limit: 100 };
    const all = await partsRead(range);
    expect(all.found).toBe(3);
    expect(all.selected).toBeLessThanOrEqual(2);
    const one = await partsRead({ ...range, service: 'web' });
    expect(one.found).toBe(2);
    expect(one.selected).toBeLessThanOrEqual(2);
    // The store's own answer: the same records.
    expect((await b.searchLogs(TENANT, range)).length).toBe(3);
  });

  it('still searches a range of a log table without TimestampTime (the exporter\'s of 2023)', async () => {
    const db = uniqueDatabase('logrange2023');
    await client.command({ query: `CREATE DATABASE ${db}` });
    await exporter2023Logs(client, db);
    const old = await chdbBackend([db]);
    try {
      await writeLogs(old, [makeLog({ timeUnixNano: NOW - DAY }), makeLog({ timeUnixNano: NOW - 3n * DAY })]);
      expect(await old.searchLogs(TENANT, { startNano: NOW - DAY - HOUR, endNano: NOW - DAY + HOUR, limit: 10 })).toHaveLength(1);
    } finally {
      await old.shutdown();
    }
  });

  it('keeps the records of the range\'s first and last nanoseconds, whatever their second', async () => {
    const edge = NOW - 4n * DAY - 999_999_999n;
    const sub = await chdbBackend([database]);
    try {
      await writeLogs(sub, [makeLog({ serviceName: 'edge', timeUnixNano: edge }), makeLog({ serviceName: 'edge', timeUnixNano: edge + 999_999_998n })]);
      expect(await sub.searchLogs(TENANT, { service: 'edge', startNano: edge, endNano: edge, limit: 10 })).toHaveLength(1);
      expect(await sub.searchLogs(TENANT, { service: 'edge', startNano: edge + 999_999_998n, endNano: edge + 999_999_998n, limit: 10 })).toHaveLength(1);
      expect(await sub.searchLogs(TENANT, { service: 'edge', startNano: edge, endNano: edge + 999_999_998n, limit: 10 })).toHaveLength(2);
    } finally {
      await sub.shutdown();
    }
  });
});
