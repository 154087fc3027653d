// Spans the OpenTelemetry Collector's ClickHouse exporter wrote into the same tables before
// Tracehouse read them. Its releases up to 2024 wrote the proto's enum names (traceutil.SpanKindStr /
// StatusCodeStr: 'SPAN_KIND_SERVER', 'STATUS_CODE_ERROR'), later ones the short words ('Server',
// 'Error'); Grafana's ClickHouse data source reads both. Tracehouse's reads must too.
import type { ClickHouseClient } from '@clickhouse/client';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { chdbBackend, chdbClient, removeChdbDir, uniqueDatabase } from '../helpers/clickhouse.ts';
import { hex } from '../helpers/rows.ts';

let client: ClickHouseClient;
let b: StorageBackend;
const db = uniqueDatabase('exporterwords');
const service = 'svc-' + randomUUID();
const traceId = hex(16);
const root = hex(8);
const child = hex(8);
const now = BigInt(Date.now()) * 1_000_000n;

beforeAll(async () => {
  client = await chdbClient();
  b = await chdbBackend([db]);
  // As the exporter inserts: its columns only (TracehouseExtra and TenantId take their defaults).
  const insert = async (spanId: string, parent: string, name: string, kind: string, status: string, start: bigint) =>
    client.command({
      query: `INSERT INTO ${db}.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage)
VALUES (fromUnixTimestamp64Nano({start:Int64}), {traceId:String}, {spanId:String}, {parent:String}, '', {name:String}, {kind:String}, {service:String}, map('service.name', {service:String}), '', '', map(), 1000000, {status:String}, '')`,
      query_params: { start: String(start), traceId, spanId, parent, name, kind, service, status },
    });
  await insert(root, '', 'GET /cart', 'SPAN_KIND_SERVER', 'STATUS_CODE_ERROR', now - 5_000_000n);
  await insert(child, root, 'SELECT cart', 'SPAN_KIND_CLIENT', 'STATUS_CODE_OK', now - 4_000_000n);
});

afterAll(async () => {
  await b.shutdown();
  await client.close();
  removeChdbDir();
});

describe("clickhouse reads spans of the exporter's enum-name releases", () => {
  it('reads their kind and status', async () => {
    const spans = await b.getTrace(TENANT, traceId);
    expect(spans.map((s) => [s.spanId, s.kind, s.statusCode]).sort()).toEqual([[root, 2, 2], [child, 3, 1]].sort());
  });

  it('finds them by status and kind, and summarizes the trace as failed', async () => {
    const range = { startNano: now - 60_000_000_000n, endNano: now + 60_000_000_000n, limit: 10 };
    const errors = await b.searchTraces(TENANT, { ...range, service, statusCode: 2 });
    expect(errors.map((t) => [t.traceId, t.hasError])).toEqual([[traceId, true]]);
    expect((await b.searchTraces(TENANT, { ...range, service, kind: 3 })).map((t) => t.traceId)).toEqual([traceId]);
    expect((await b.searchTraces(TENANT, { ...range, service })).map((t) => t.hasError)).toEqual([true]);
  });

  it('lists their operations with their kinds', async () => {
    const ops = await b.getOperations(TENANT, { service });
    expect(ops.map((o) => [o.name, o.kind]).sort()).toEqual([['GET /cart', 2], ['SELECT cart', 3]]);
    expect((await b.getOperations(TENANT, { service, kind: 2 })).map((o) => o.name)).toEqual(['GET /cart']);
  });
});
