// A collector on PostgreSQL whose server goes away mid-stream: receivers keep accepting while the
// queue has room, then answer UNAVAILABLE; /readyz says not ready; when the server is back the
// writer resumes by itself and every accepted span is stored exactly once.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';
import { createTestDatabase, startEmbeddedPostgres, type EmbeddedServer } from '../helpers/postgres.ts';

describe('postgres outage under load', () => {
  let server: EmbeddedServer;
  let url: string;
  let c: TestCollector;
  let client: RawOtlpClient;
  beforeAll(async () => {
    server = await startEmbeddedPostgres();
    url = await createTestDatabase('outage', server.url);
    c = await startCollector({
      'storage.backend': 'postgres',
      'storage.postgres.url': url,
      'storage.postgres.poolSize': '2',
      'writer.maxQueueBytes': String(2 * 1024 * 1024),
      'writer.retryMaxMs': '200',
      'writer.maxBatchRows': '200',
      'writer.writeTimeoutMs': '3000',
    });
    client = new RawOtlpClient(c.grpcAddress);
  });
  afterAll(async () => {
    client?.close();
    await c?.stop();
    await server?.destroy();
  });

  it('refuses with UNAVAILABLE once the queue is full, then stores every accepted span exactly once', async () => {
    const traceId = randomBytes(16);
    let accepted = 0;
    let refused = 0;
    const send = async (n: number) => {
      const spans = Array.from({ length: n }, (_, i) => ({ traceId, spanId: randomBytes(8), name: `op-${i}`, startTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n), endTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n + 1000n), attributes: [{ key: 'pad', value: { stringValue: 'x'.repeat(200) } }] }));
      const res = await client.traces(encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'outage' } }] }, scopeSpans: [{ spans }] }] }));
      if (res.error === null) accepted += n;
      else {
        expect(res.error.code).toBe(grpc.status.UNAVAILABLE);
        refused += n;
      }
    };
    await send(100);
    await server.stop();
    const down = await eventually(async () => {
      const r = await getJson(c.opsUrl, '/readyz');
      return r.status === 503 ? r.body : undefined;
    }, 15_000, 'not ready');
    // The probe is open to anyone who reaches the port: its reason names the store, never the
    // driver's text (the database's address; host and user names in other failures).
    expect(down).toEqual({ status: 'not ready', reason: 'storage postgres unhealthy' });
    // While the server is down, keep sending until the queue is full and requests are refused.
    for (let i = 0; i < 200 && refused === 0; i++) await send(100);
    expect(refused).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(100);
    expect((await getJson(c.opsUrl, '/readyz')).status).toBe(503);

    await server.start();
    await eventually(async () => ((await getJson(c.opsUrl, '/readyz')).status === 200 ? true : undefined), 30_000, 'ready again');
    await send(100);
    const written = await eventually(async () => {
      const n = await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total', { backend: 'postgres', signal: 'traces' });
      return n >= accepted ? n : undefined;
    }, 30_000, 'everything written');
    expect(written).toBe(accepted);
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const { rows } = await db.query('SELECT count(*)::int AS n, count(DISTINCT span_id)::int AS d FROM tracehouse.spans WHERE trace_id = $1', [traceId]);
      expect(rows[0]).toEqual({ n: accepted, d: accepted });
    } finally {
      await db.end();
    }
  });
});
