// Tables the OpenTelemetry exporter created (its DDL has no non_replicated_deduplication_window):
// Tracehouse migrates them (version 4) and writes into them, but a retried batch is stored twice.
import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { migrations } from '../../src/storage/clickhouse/schema.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { chdbBackend, chdbClient, removeChdbDir, select, uniqueDatabase } from '../helpers/clickhouse.ts';
import { makeLog, makeTrace, writeLogs, writeSpans } from '../helpers/rows.ts';

let client: ClickHouseClient;
const backends: StorageBackend[] = [];
beforeAll(async () => { client = await chdbClient(); });
afterAll(async () => { for (const b of backends) await b.shutdown(); await client.close(); removeChdbDir(); });

describe('clickhouse: tables the exporter made', () => {
  it('keeps one copy of a batch retried with its token', async () => {
    const db = uniqueDatabase('exporterdedup');
    await client.command({ query: `CREATE DATABASE ${db}` });
    const o = { database: db, tracesTable: 'otel_traces', logsTable: 'otel_logs', ttlDays: 0, codec: 'ZSTD(1)', cluster: '' };
    // The exporter's DDL: Tracehouse's version 1 without its own columns and with the exporter's
    // SETTINGS (index_granularity, ttl_only_drop_parts; no deduplication window).
    for (const q of migrations(o)[0]!.statements) {
      const ddl = q
        .split('\n')
        .filter((l) => !/TracehouseExtra|ObservedTimestamp|EventName/.test(l))
        .join('\n')
        .replace(/, non_replicated_deduplication_window = \d+/, '');
      await client.command({ query: ddl, clickhouse_settings: { flatten_nested: 1 } });
    }
    const b = await chdbBackend([db]);
    backends.push(b);
    const spans = makeTrace(3);
    const service = 'svc-' + randomUUID();
    const logs = [makeLog({ serviceName: service }), makeLog({ serviceName: service })];
    const token = randomUUID();
    // The first attempt reached the server but its answer was lost (a timeout): the writer retries.
    await writeSpans(b, spans, token);
    await writeSpans(b, spans, token);
    await writeLogs(b, logs, token);
    await writeLogs(b, logs, token);
    expect(await select(client, `SELECT count() FROM ${db}.otel_traces`)).toEqual([[3]]);
    expect(await select(client, `SELECT count() FROM ${db}.otel_logs`)).toEqual([[2]]);
    expect(await b.searchLogs(TENANT, { service, limit: 10 })).toHaveLength(2);
  });
});
