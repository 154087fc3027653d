// delivery.ack = durable across a change of store: the write-ahead log holds rows encoded for the
// store that accepted them (JSON for SQLite, COPY rows for PostgreSQL…). A start on another store
// while rows are still in the log (after a crash, or a stop during an outage) must stop and say
// so, not replay them into a store that refuses each batch for good; the rows stay in the log for
// a start on their own store. An empty log takes the new store.
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Collector } from '../../src/app.ts';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { WriteAheadLog } from '../../src/pipeline/wal/index.ts';
import type { EncodedChunk } from '../../src/storage/backend.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { gated } from '../helpers/backends.ts';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { storedInSqlite } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SERVICE = 'wal-store-switch';
const LISTEN = { 'receiver.grpc.listen': '127.0.0.1:0', 'receiver.http.listen': '127.0.0.1:0', 'query.listen': '127.0.0.1:0', 'ops.listen': '127.0.0.1:0', 'workers.threads': '1' };

async function sqlite(db: string) {
  const b = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': db } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await b.start();
  return b;
}

/** Starts a collector on PostgreSQL with the given log directory; shuts it down whatever start does. */
async function startOnPostgres(wal: string, url: string): Promise<void> {
  const config = loadConfig({ flags: { ...LISTEN, 'storage.backend': 'postgres', 'storage.postgres.url': url, 'delivery.ack': 'durable', 'delivery.walDir': wal } });
  const collector = await Collector.create(config, { logger: pino({ level: 'silent' }) });
  try {
    await collector.start();
  } finally {
    await collector.shutdown();
  }
}

/**
 * A durable run on SQLite that is down for its whole life: one export of 3 spans accepted, kept in
 * the log at the stop. Returns the trace id.
 */
async function leaveRowsInLog(flags: Record<string, string>, db: string): Promise<Buffer> {
  const down = gated(await sqlite(db));
  down.failNext(Number.MAX_SAFE_INTEGER, { kind: 'retryable', error: new Error('store down') });
  const first = await startCollector({ ...flags, 'writer.retryMaxElapsedMs': '200', 'shutdown.timeoutMs': '1000' }, { backend: down.backend });
  const traceId = randomBytes(16);
  const spans = Array.from({ length: 3 }, () => ({ traceId, spanId: randomBytes(8), name: 'op', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }));
  const body = encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: SERVICE } }] }, scopeSpans: [{ spans }] }] });
  expect((await fetch(first.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body })).status).toBe(200);
  await first.stop();
  return traceId;
}

describe('delivery.ack = durable: a start on another store', () => {
  it('stops, naming the store and the log, while the log holds rows of the old one; they are stored by the old one after', async () => {
    const dir = tempDir('wal-switch-');
    const db = join(dir, 'th.db');
    const wal = join(dir, 'wal');
    const flags = { 'storage.backend': 'sqlite', 'storage.sqlite.path': db, 'delivery.walDir': wal, 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40' };

    const traceId = await leaveRowsInLog(flags, db);

    const url = await createTestDatabase('wal_switch');
    const refused = startOnPostgres(wal, url);
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toThrow(`delivery.walDir = ${JSON.stringify(wal)} holds 3 accepted rows encoded for the sqlite store`);
    await expect(refused).rejects.toThrow('which storage.backend = "postgres"');

    // Back on SQLite, the rows the refused start left alone are stored.
    const back = await startCollector(flags);
    try {
      await eventually(async () => (storedInSqlite(db, SERVICE).spansByTrace.get(traceId.toString('hex')) === 3 ? true : undefined), 10_000, 'the kept rows stored');
      expect(await metricValue(back.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
      await eventually(async () => ((await metricValue(back.opsUrl, 'tracehouse_wal_pending_entries')) === 0 ? true : undefined), 10_000, 'the log emptied');
    } finally {
      await back.stop();
    }

    // The log is empty now: PostgreSQL takes it over.
    await startOnPostgres(wal, url);
  }, 60_000);
});

describe('delivery.ack = durable, then a start without the log (queued or stored)', () => {
  // README, Delivery guarantees: under durable, what the store did not take at a stop "stays in
  // the log ...; the next start writes it". A start with queued or stored opens no log, so it
  // would neither write those rows nor say they wait.
  it('stops, naming delivery.ack and the log, while the log holds rows; a durable start stores them after', async () => {
    const dir = tempDir('wal-ack-switch-');
    const db = join(dir, 'th.db');
    const wal = join(dir, 'wal');
    const flags = { 'storage.backend': 'sqlite', 'storage.sqlite.path': db, 'delivery.walDir': wal, 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40' };

    const traceId = await leaveRowsInLog(flags, db);

    for (const ack of ['queued', 'stored']) {
      const refused = startCollector({ ...flags, 'delivery.ack': ack });
      await expect(refused).rejects.toThrow(ConfigError);
      await expect(refused).rejects.toThrow(`delivery.ack = "${ack}": delivery.walDir = ${JSON.stringify(wal)} holds 3 accepted rows`);
    }

    const back = await startCollector(flags);
    try {
      await eventually(async () => (storedInSqlite(db, SERVICE).spansByTrace.get(traceId.toString('hex')) === 3 ? true : undefined), 10_000, 'the kept rows stored');
    } finally {
      await back.stop();
    }
    // The log is empty now: a queued start is welcome.
    const queued = await startCollector({ ...flags, 'delivery.ack': 'queued' });
    await queued.stop();
  }, 60_000);
});

describe('a start without the log (queued or stored) on a log with damaged records', () => {
  // deploy/prometheus/alerts.yaml TracehouseWalRecordsLost watches tracehouse_wal_corrupt_bytes_total
  // {kind="corrupt"}: acknowledged rows lost to records that failed their checksum when the log was
  // read at a start. A queued or stored start reads the log too (to refuse while it holds rows).
  it('counts the damaged records it found, as a durable start does', async () => {
    const dir = tempDir('wal-ack-damaged-');
    const wal = join(dir, 'wal');
    const w = new WriteAheadLog({ dir: wal, maxBytes: 64 << 20, segmentBytes: 64 << 20 });
    await w.start();
    const chunk = (): EncodedChunk => ({ partition: 0, rows: 1, data: randomBytes(1000) });
    const cs = [chunk(), chunk(), chunk()];
    const seqs: number[] = [];
    for (const c of cs) seqs.push(await w.append('traces', [c]));
    // The first and last are stored; the middle one's record is then damaged on disk.
    const batch = { signal: 'traces' as const, partition: 0, tenant: DEFAULT_TENANT, rows: 2, bytes: 2000, chunks: [cs[0]!.data, cs[2]!.data], batchId: randomUUID() };
    w.markStored(await w.recordBatch(batch, [{ entry: seqs[0]!, index: 0 }, { entry: seqs[2]!, index: 0 }]));
    await w.flush();
    await w.shutdown();
    const segment = join(wal, readdirSync(wal).find((n) => n.endsWith('.wal'))!);
    const buf = readFileSync(segment);
    buf[1500]! ^= 0x01;
    writeFileSync(segment, buf);

    const c = await startCollector({ 'storage.backend': 'memory', 'delivery.ack': 'queued', 'delivery.walDir': wal });
    try {
      expect(await metricValue(c.opsUrl, 'tracehouse_wal_corrupt_bytes_total', { kind: 'corrupt' })).toBeGreaterThan(0);
    } finally {
      await c.stop();
    }
  });
});
