// The queue budget holds for PostgreSQL, whose rows (binary COPY tuples) take about four times
// the protobuf they come from: a request is charged what its rows are expected to take while it
// decodes, so requests admitted side by side cannot leave the queue holding several times
// writer.maxQueueBytes once their rows arrive. Real PostgreSQL behind a switch that stalls writes.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { Ingest } from '../../src/pipeline/ingest.ts';
import { DecodePool } from '../../src/pipeline/pool.ts';
import { Writer } from '../../src/pipeline/writer.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { gated, type Gate } from '../helpers/backends.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { createTestDatabase } from '../helpers/postgres.ts';

const BUDGET = 4 << 20;
const REQUESTS = 16;

/** n spans of one service, each with a few attributes, starting now. */
function traces(service: string, n: number): Uint8Array {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: randomBytes(16),
    spanId: randomBytes(8),
    name: `op${i % 20}`,
    startTimeUnixNano: String(now + BigInt(i)),
    endTimeUnixNano: String(now + BigInt(i) + 1_000_000n),
    attributes: Array.from({ length: 4 }, (_, k) => ({ key: `attribute.${k}`, value: { stringValue: `value ${k} of ${i}` } })),
  }));
  return encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] });
}

describe('PostgreSQL: the queue budget against rows larger than their request', () => {
  let store: StorageBackend;
  let gate: Gate;
  let pool: DecodePool;
  let writer: Writer;
  let ingest: Ingest;
  beforeAll(async () => {
    const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': await createTestDatabase('queue') } });
    store = createPostgresBackend(postgresOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await store.start();
    gate = gated(store);
    const metrics = createMetrics();
    const logger = pino({ level: 'silent' });
    pool = new DecodePool({ threads: 1, maxPendingTasks: 64, maxNestingDepth: 100 }, gate.backend.encoder);
    await pool.start();
    writer = new Writer(gate.backend, { maxBatchRows: 1000, flushIntervalMs: 5, maxInFlightBatches: 2, maxQueueBytes: BUDGET, retryInitialMs: 1, retryMaxMs: 5, retryMaxElapsedMs: 0, writeTimeoutMs: 10_000 }, metrics, logger);
    ingest = new Ingest(pool, writer, metrics, logger);
  });
  afterAll(async () => {
    gate?.open();
    await writer?.shutdown(5000);
    await pool?.shutdown();
    await store?.shutdown();
  });

  it('keeps the rows of requests admitted side by side within writer.maxQueueBytes, and stores every one admitted', async () => {
    gate.close();
    // Each request a tenth of the budget: charged only its body, ten would be admitted and their
    // tuples would take ~3.6 times the budget; charged its tuples, two.
    const body = traces('sized', 100);
    const n = Math.floor(BUDGET / 10 / body.byteLength) * 100;
    const bodies = Array.from({ length: REQUESTS }, (_, i) => traces(`queue-${i}`, n));
    expect(bodies[0]!.byteLength).toBeGreaterThan(BUDGET / 12);
    const outs = await Promise.all(bodies.map((b) => ingest.handle({ transport: 'grpc', signal: 'traces', format: 'protobuf', tenant: TENANT, body: b })));
    const admitted = outs.flatMap((o, i) => (o.kind === 'ok' ? [i] : []));
    expect(admitted.length).toBeGreaterThan(1);
    for (const o of outs) if (o.kind !== 'ok') expect(o.reason).toBe('queue_full');
    // The rows, as they are, within the budget.
    expect(writer.queueBytes).toBeGreaterThan(BUDGET / 4);
    expect(writer.queueBytes).toBeLessThanOrEqual(BUDGET);
    gate.open();
    await writer.drain();
    expect(writer.queueBytes).toBe(0);
    for (const i of admitted) {
      const found = await store.searchTraces(TENANT, { service: `queue-${i}`, limit: n + 1 });
      expect(found.reduce((sum, t) => sum + t.spanCount, 0)).toBe(n);
    }
  }, 60_000);
});
