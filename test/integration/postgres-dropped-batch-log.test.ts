// A store that refuses every batch for good (a PostgreSQL trigger or CHECK constraint refusing
// rows each request holds) made the writer log one "dropped" line per batch: thousands a minute
// under load, where every other drop and failure line of the collector is logged at most once a
// minute with the count since the last one. The lines now say it once a minute for each signal
// and reason, with the rows and batches since the last line, and the stop writes what the minute
// still held; the metric counts every row.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { Writer, type WriterOptions } from '../../src/pipeline/writer.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createEncoder } from '../../src/storage/postgres/encoder.ts';
import { flushRecurringLogs } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend } from '../helpers/postgres-store.ts';
import { makeSpan } from '../helpers/rows.ts';

const opts: WriterOptions = {
  maxBatchRows: 100,
  flushIntervalMs: 5,
  maxInFlightBatches: 1,
  maxQueueBytes: 1 << 20,
  retryInitialMs: 1,
  retryMaxMs: 5,
  retryMaxElapsedMs: 0,
  writeTimeoutMs: 10_000,
};

describe('writer on postgres: batches refused for good', () => {
  let store: StorageBackend;
  let admin: pg.Client;

  beforeAll(async () => {
    const url = await createTestDatabase('pgdroppedlog');
    store = postgresBackend(url);
    await store.start();
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'poison row refused'; END $$`);
    await admin.query(`CREATE TRIGGER refuse_poison BEFORE INSERT ON tracehouse.spans FOR EACH ROW WHEN (NEW.name = 'poison') EXECUTE FUNCTION refuse_poison()`);
  }, 60_000);
  afterAll(async () => {
    await admin?.end();
    await store?.shutdown();
  });

  it('logs the dropped rows once a minute per signal and reason, counting every batch, and the rest at the stop', { timeout: 60_000 }, async () => {
    const { logger, lines } = capturedLogger();
    const metrics = createMetrics();
    const writer = new Writer(store, opts, metrics, logger);
    const request = (name: string, n = 1) => {
      // An encoder each: its chunks are views of the encoder's buffer until the next call.
      const chunks = createEncoder({ format: 'binary' }).encodeSpans(Array.from({ length: n }, () => makeSpan({ name, serviceName: 'dropped-log' })));
      return writer.reserve(chunks.reduce((s, c) => s + c.data.byteLength, 0))!.commit('traces', chunks, TENANT);
    };

    // Five batches the store refuses whole (every row refused): 2 rows each.
    for (let i = 0; i < 5; i++) expect((await request('poison', 2)).delivered).toBe('permanent_error');
    // Four batches of two requests, one refused (1 row), one stored: the store names the refused
    // request, whose row alone is dropped (acknowledged already, as delivery.ack = durable does).
    for (let i = 0; i < 4; i++) await Promise.all([request('poison'), request('fine')]);
    expect(Number((await admin.query(`SELECT count(*) AS n FROM tracehouse.spans WHERE service_name = 'dropped-log'`)).rows[0].n)).toBe(4);

    const whole = () => lines().filter((l) => l.msg.startsWith('dropped') && l.msg.includes('of accepted rows'));
    const partial = () => lines().filter((l) => l.msg.startsWith('dropped rows of') && l.msg.includes('the store refused for good'));
    // One line each within the minute, not one per batch.
    expect(whole()).toHaveLength(1);
    expect(partial()).toHaveLength(1);

    expect(await writer.shutdown(5_000)).toBe(0);
    flushRecurringLogs();
    // The stop writes what the minute held back: every batch and row counted in the lines.
    const sum = (ls: Record<string, unknown>[], field: string) => ls.reduce((s, l) => s + Number(l[field]), 0);
    expect(whole()).toHaveLength(2);
    expect(whole().every((l) => l['signal'] === 'traces' && l['reason'] === 'permanent_error' && l['err'] === 'poison row refused')).toBe(true);
    expect({ rows: sum(whole(), 'rows'), batches: sum(whole(), 'batches') }).toEqual({ rows: 10, batches: 5 });
    expect(partial()).toHaveLength(2);
    expect({ rows: sum(partial(), 'rows'), batches: sum(partial(), 'batches') }).toEqual({ rows: 4, batches: 4 });
    // The metric counts every row dropped, as before.
    const dropped = (await metrics.registry.getSingleMetricAsString('tracehouse_writer_dropped_rows_total')).split('\n').filter((l) => !l.startsWith('#') && l.includes('reason="permanent_error"'));
    expect(dropped.reduce((s, l) => s + Number(l.split(' ').pop()), 0)).toBe(14);
  });
});
