// The collector's schema dropped under running writes (by hand, a restore of the database
// without it): writes failed with 3F000 / 42P01, which the writer retries as "being migrated", but
// nothing migrated again until a restart, so every batch waited (and with delivery.ack=durable the
// log filled towards 503). With autoMigrate the store now migrates again and the retries land.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';
import { createTestDatabase } from '../helpers/postgres.ts';

function traces(traceId: Buffer, agoMs = 0): Uint8Array {
  const now = BigInt(Date.now() - agoMs) * 1_000_000n;
  const spans = [0, 1].map((i) => ({ traceId, spanId: randomBytes(8), name: `s${i}`, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n) }));
  return encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'dropped' } }] }, scopeSpans: [{ spans }] }] });
}

describe('postgres: the schema dropped while the collector runs', () => {
  it('is migrated again, and spans sent after the drop are stored and readable', async () => {
    const url = await createTestDatabase('schema_dropped');
    const c = await startCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.schema': 'gone', 'writer.retryInitialMs': '50', 'writer.retryMaxMs': '500' });
    const client = new RawOtlpClient(c.grpcAddress);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const read = (id: Buffer) =>
      eventually(async () => {
        const r = await getJson(c.queryUrl, `/v1/traces/${id.toString('hex')}`);
        return r.status === 200 ? r.body.resourceSpans[0].scopeSpans[0].spans.length : undefined;
      }, 15_000, `trace ${id.toString('hex')} readable`);
    try {
      const before = randomBytes(16);
      expect((await client.traces(traces(before))).error).toBeNull();
      expect(await read(before)).toBe(2);
      await admin.query('DROP SCHEMA gone CASCADE');
      const after = randomBytes(16);
      expect((await client.traces(traces(after))).error).toBeNull();
      expect(await read(after)).toBe(2);
    } finally {
      client.close();
      await admin.end();
      await c.stop();
    }
  }, 30_000);

  it('is migrated again when the rows after the drop are of a day it had no partition for', async () => {
    // Late spans (two days ago: within retention, so they get a partition of their own) went to
    // creating that partition first, which failed in the missing schema; that failure was retried
    // as "creating partitions" and never started the migration, so they waited for ever.
    const url = await createTestDatabase('schema_dropped_late');
    const c = await startCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.schema': 'gone_late', 'writer.retryInitialMs': '50', 'writer.retryMaxMs': '500' });
    const client = new RawOtlpClient(c.grpcAddress);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query('DROP SCHEMA gone_late CASCADE');
      const late = randomBytes(16);
      expect((await client.traces(traces(late, 2 * 86_400_000))).error).toBeNull();
      const n = await eventually(async () => {
        const r = await getJson(c.queryUrl, `/v1/traces/${late.toString('hex')}`);
        return r.status === 200 ? r.body.resourceSpans[0].scopeSpans[0].spans.length : undefined;
      }, 15_000, `trace ${late.toString('hex')} readable`);
      expect(n).toBe(2);
    } finally {
      client.close();
      await admin.end();
      await c.stop();
    }
  }, 30_000);
});
