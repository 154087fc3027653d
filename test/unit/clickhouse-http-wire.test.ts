// The HTTP wire format of the ClickHouse adapter: what it sends for a write (the INSERT, its
// settings, the RowBinary body streamed as the chunks) and how it maps HTTP answers to write
// results. A local HTTP listener records the requests; no ClickHouse server runs here, so the
// storage behaviour itself is tested against the real engine (chdb) in the integration tests.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createClickhouseBackend } from '../../src/storage/clickhouse/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { clickhouseOptions } from '../../src/storage/index.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { COLUMN_TYPES, migrations } from '../../src/storage/clickhouse/schema.ts';

/** Every migration's version, one JSON row each, as the server answers the migrations check. */
const VERSIONS = migrations({ database: 'tel', tracesTable: 'otel_traces', logsTable: 'otel_logs', ttlDays: 0, codec: 'ZSTD(1)', cluster: '' })
  .map((m) => `[${m.version}]\n`)
  .join('');

const TABLES = ['otel_traces', 'otel_traces_trace_id_ts', 'otel_traces_trace_id_ts_mv', 'otel_logs'].map((t) => `["${t}"]\n`).join('');

interface Seen {
  query: string;
  body: Buffer;
  auth: string | undefined;
}

describe('clickhouse over HTTP', () => {
  let server: Server;
  let url: string;
  const seen: Seen[] = [];
  let answer: (req: Seen, res: ServerResponse) => void = (_r, res) => res.end();
  /** Log columns whose type the server's table has other than the encoder's. */
  let logTypes: Record<string, string> = {};

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const u = new URL(req.url ?? '/', 'http://x');
        if (u.pathname === '/ping') return void res.end('Ok.\n');
        const body = Buffer.concat(parts);
        const s: Seen = { query: u.searchParams.get('query') ?? body.toString('utf8'), body, auth: req.headers.authorization };
        seen.push(s);
        // The migrations check: every schema version of this build is there.
        if (s.query.includes('SELECT DISTINCT Version')) return void res.end(VERSIONS);
        // ... and the tables they made are there.
        if (s.query.includes('FROM system.tables')) return void res.end(TABLES);
        // The insert columns' types, asked once per shard and signal before the first insert: the table's
        // are the encoder's (the tables Tracehouse makes).
        if (s.query.includes('FROM system.columns')) {
          const types = u.searchParams.get('param_table') === 'otel_logs' ? { ...COLUMN_TYPES.logs, ...logTypes } : COLUMN_TYPES.traces;
          return void res.end(Object.entries(types).map((e) => JSON.stringify(e)).join('\n') + '\n');
        }
        answer(s, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  async function start(flags: Record<string, string> = {}): Promise<StorageBackend> {
    const config = loadConfig({
      flags: {
        'storage.backend': 'clickhouse',
        'storage.clickhouse.urls': `http://alice:pw@${url.slice('http://'.length)}/tel`,
        'storage.clickhouse.autoMigrate': 'false',
        ...flags,
      },
    });
    const b = createClickhouseBackend(clickhouseOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await b.start();
    return b;
  }

  it('streams the chunks as one INSERT … FORMAT RowBinary with the batch token', async () => {
    const b = await start();
    seen.length = 0;
    const chunks = [Uint8Array.from([1, 2, 3]), Uint8Array.from([4, 5]), Uint8Array.from([0, 255])];
    const batchId = randomUUID();
    expect(await b.write({ signal: 'traces', partition: 0, tenant: TENANT, rows: 3, bytes: 7, chunks, batchId })).toEqual({ kind: 'success' });
    const [w] = seen.filter((x) => x.query.startsWith('INSERT'));
    expect(w!.body).toEqual(Buffer.from([1, 2, 3, 4, 5, 0, 255]));
    expect(w!.query).toMatch(/^INSERT INTO `tel`\.`otel_traces` \(`Timestamp`, `TraceId`, .*`Events\.Timestamp`.*`TracehouseExtra`\) SETTINGS /);
    expect(w!.query).toContain(`insert_deduplication_token = '${batchId}', insert_deduplicate = 1, max_partitions_per_insert_block = 0, async_insert = 0 FORMAT RowBinary`);
    expect(w!.auth).toBe('Basic ' + Buffer.from('alice:pw').toString('base64'));
    expect((await b.health()).ok).toBe(true);
    await b.shutdown();
  });

  it("appends another tenant's name to every row through input(), with the data's column types", async () => {
    const b = await start();
    seen.length = 0;
    const batch = { signal: 'traces' as const, partition: 0, tenant: 'acme', rows: 1, bytes: 2, chunks: [Uint8Array.from([7, 8])] };
    expect(await b.write({ ...batch, batchId: randomUUID() })).toEqual({ kind: 'success' });
    expect(await b.write({ ...batch, batchId: randomUUID() })).toEqual({ kind: 'success' });
    // The types are asked once per shard and signal, then every insert carries them.
    expect(seen.filter((s) => s.query.includes('system.columns'))).toHaveLength(1);
    const inserts = seen.filter((s) => s.query.startsWith('INSERT'));
    expect(inserts).toHaveLength(2);
    expect(inserts[0]!.query).toMatch(/^INSERT INTO `tel`\.`otel_traces` \(`Timestamp`, .*`TracehouseExtra`, `TenantId`\) SETTINGS .* SELECT \*, 'acme' FROM input\('`Timestamp` DateTime64\(9\), `TraceId` String, .*`TracehouseExtra` String'\) FORMAT RowBinary$/);
    expect(inserts[0]!.body).toEqual(Buffer.from([7, 8]));
    await b.shutdown();
  });

  it("converts rows for a table of other column types on the server (SELECT * FROM input() with the encoder's types)", async () => {
    // The exporter's earlier log tables: TraceFlags UInt32, SeverityNumber Int32.
    logTypes = { TraceFlags: 'UInt32', SeverityNumber: 'Int32' };
    try {
      const b = await start();
      seen.length = 0;
      const batch = { signal: 'logs' as const, partition: 0, tenant: TENANT, rows: 1, bytes: 2, chunks: [Uint8Array.from([7, 8])] };
      expect(await b.write({ ...batch, batchId: randomUUID() })).toEqual({ kind: 'success' });
      const [w] = seen.filter((x) => x.query.startsWith('INSERT'));
      expect(w!.query).toMatch(/^INSERT INTO `tel`\.`otel_logs` \(`Timestamp`, .*`TracehouseExtra`\) SETTINGS .* SELECT \* FROM input\('`Timestamp` DateTime64\(9\), .*`TraceFlags` UInt8, .*`SeverityNumber` UInt8, .*'\) FORMAT RowBinary$/);
      expect(w!.body).toEqual(Buffer.from([7, 8]));
      await b.shutdown();
    } finally {
      logTypes = {};
    }
  });

  it('asks for async inserts only together with waiting for them', async () => {
    const b = await start({ 'storage.clickhouse.asyncInsert': 'true' });
    seen.length = 0;
    await b.write({ signal: 'logs', partition: 0, tenant: TENANT, rows: 1, bytes: 1, chunks: [Uint8Array.from([9])], batchId: "it's" });
    const [w] = seen.filter((x) => x.query.startsWith('INSERT'));
    expect(w!.query).toMatch(/^INSERT INTO `tel`\.`otel_logs` \(/);
    expect(w!.query).toContain("insert_deduplication_token = 'it\\'s', insert_deduplicate = 1, max_partitions_per_insert_block = 0, async_insert = 1, wait_for_async_insert = 1, async_insert_deduplicate = 1 FORMAT RowBinary");
    await b.shutdown();
  });

  it('maps server errors to permanent (bad data) or retryable (overload, outage)', async () => {
    const b = await start();
    const batch = { signal: 'traces' as const, partition: 0, tenant: TENANT, rows: 1, bytes: 1, chunks: [Uint8Array.from([1])], batchId: randomUUID() };
    const fail = (code: number, type: string) => (_r: Seen, res: ServerResponse) => {
      res.writeHead(500, { 'X-ClickHouse-Exception-Code': String(code) });
      res.end(`Code: ${code}. DB::Exception: something. (${type}) (version 26.1.1.1)\n`);
    };
    answer = fail(33, 'CANNOT_READ_ALL_DATA');
    expect((await b.write(batch)).kind).toBe('permanent');
    answer = fail(252, 'TOO_MANY_PARTS');
    expect(await b.write(batch)).toMatchObject({ kind: 'retryable', retryAfterMs: 1000 });
    answer = (_r, res) => res.socket?.destroy();
    expect((await b.write(batch)).kind).toBe('retryable');
    answer = (_r, res) => res.end();
    await b.shutdown();
  });

  it('reports an unreachable server as retryable writes and unhealthy', async () => {
    const config = loadConfig({ flags: { 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': 'http://127.0.0.1:1', 'storage.clickhouse.requestTimeoutMs': '1000' } });
    const b = createClickhouseBackend(clickhouseOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await expect(b.start()).rejects.toThrow();
    expect((await b.health()).ok).toBe(false);
    const batch = { signal: 'traces' as const, partition: 0, tenant: TENANT, rows: 1, bytes: 1, chunks: [Uint8Array.from([1])], batchId: randomUUID() };
    expect((await b.write(batch)).kind).toBe('retryable');
    await b.shutdown();
  });
});
