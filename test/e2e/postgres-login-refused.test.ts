// A collector on PostgreSQL whose role is refused new connections for a while (a password rotated
// before the collector's configuration, a role set NOLOGIN, pg_hba reloaded): the rows are not at
// fault, so the writer retries them, and every acknowledged span is stored once the role may log
// in again. Dropping them as refused for good lost acknowledged rows in every delivery.ack mode.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';
import { createTestDatabase, testPostgresUrl, withDatabase, withUser } from '../helpers/postgres.ts';

function traces(traceId: Buffer, n: number): Uint8Array {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spans = Array.from({ length: n }, (_, i) => ({ traceId, spanId: randomBytes(8), name: `s${i}`, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n) }));
  return encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'login-refused' } }] }, scopeSpans: [{ spans }] }] });
}

/** A collector on the role's URL and its own schema, retrying quickly, and a sender of one trace's spans that counts those acknowledged. */
async function sending(url: string, ack: string, schema: string, flags: Record<string, string> = {}) {
  const c: TestCollector = await startCollector({
    'delivery.ack': ack,
    'storage.backend': 'postgres',
    'storage.postgres.url': url,
    'storage.postgres.schema': schema,
    'writer.retryInitialMs': '50',
    'writer.retryMaxMs': '200',
    'writer.flushIntervalMs': '20',
    ...flags,
  });
  const client = new RawOtlpClient(c.grpcAddress);
  const traceId = randomBytes(16);
  let acked = 0;
  const send = async (n: number): Promise<void> => {
    const r = await client.traces(traces(traceId, n));
    if (r.error === null) acked += n;
  };
  return { c, client, traceId, send, acked: () => acked };
}

/** The spans of a trace the read API returns, once there are at least n (every acknowledged span readable). */
function readable(c: TestCollector, traceId: Buffer, n: number): Promise<number> {
  return eventually(async () => {
    const r = await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`);
    const got: number = r.body?.resourceSpans?.reduce((a: number, rs: any) => a + rs.scopeSpans.reduce((b: number, ss: any) => b + ss.spans.length, 0), 0) ?? 0;
    return got >= n ? got : undefined;
  }, 15_000, 'every acknowledged span readable');
}

describe('postgres: the role is refused new connections for a while', () => {
  let admin: pg.Client;
  let role: string;
  let url: string;
  /** The superuser in the test's database (grants are per database). */
  let adminUrl: string;
  beforeAll(async () => {
    const server = await testPostgresUrl();
    const db = await createTestDatabase('login_refused', server);
    const name = new URL(db).pathname.slice(1);
    role = `r_${name}`.slice(0, 60);
    admin = new pg.Client({ connectionString: server });
    await admin.connect();
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`ALTER DATABASE ${name} OWNER TO ${role}`);
    adminUrl = withDatabase(server, name);
    url = withUser(adminUrl, role);
  });
  afterAll(async () => {
    await admin?.query(`ALTER ROLE ${role} LOGIN`).catch(() => undefined);
    await admin?.end();
  });

  for (const ack of ['durable', 'stored', 'queued'] as const) {
    it(`delivery.ack=${ack}: no acknowledged span is dropped, all are stored once logins work again`, async () => {
      const { c, client, traceId, send, acked } = await sending(url, ack, `s_${ack}`, { 'storage.postgres.poolSize': '1' });
      try {
        await send(5);
        await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total', { signal: 'traces' })) === 5 ? true : undefined));
        // Logins refused from now on, and the open connections end (a restart, an idle timeout).
        await admin.query(`ALTER ROLE ${role} NOLOGIN`);
        await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
        // With ack=stored the request waits for the store: send without waiting for the answer.
        const pending = send(7);
        await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_writer_failed_batches_total', { signal: 'traces' })) >= 1 ? true : undefined), 10_000, 'failed writes');
        expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
        await admin.query(`ALTER ROLE ${role} LOGIN`);
        await pending;
        expect(acked()).toBe(12);
        expect(await readable(c, traceId, 12)).toBe(12);
        expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
      } finally {
        client.close();
        await admin.query(`ALTER ROLE ${role} LOGIN`).catch(() => undefined);
        await c.stop();
      }
    }, 30_000);
  }

  // The role loses INSERT on the tables for a while (a restore without the grants, a REVOKE run
  // for the wrong role): 42501 is not the rows' fault either. Dropped as refused for good, every
  // acknowledged span written meanwhile was lost; retried, all are stored once the grant is back.
  for (const ack of ['durable', 'stored'] as const) {
    it(`delivery.ack=${ack}: spans refused for want of a privilege are stored once it is granted again`, async () => {
      const schema = `p_${ack}`;
      const { c, client, traceId, send, acked } = await sending(url, ack, schema);
      const grants = new pg.Client({ connectionString: adminUrl });
      await grants.connect();
      try {
        await grants.query(`REVOKE INSERT ON ALL TABLES IN SCHEMA ${schema} FROM ${role}`);
        const pending = send(7);
        await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_writer_failed_batches_total', { signal: 'traces' })) >= 1 ? true : undefined), 10_000, 'failed writes');
        expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
        await grants.query(`GRANT INSERT ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
        await pending;
        expect(acked()).toBe(7);
        expect(await readable(c, traceId, 7)).toBe(7);
        expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
      } finally {
        client.close();
        await grants.query(`GRANT INSERT ON ALL TABLES IN SCHEMA ${schema} TO ${role}`).catch(() => undefined);
        await grants.end();
        await c.stop();
      }
    }, 30_000);
  }
});
