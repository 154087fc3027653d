// WAL replay into the real PostgreSQL: log records have no natural key there, only (time, batch
// id hash, position in batch), so a batch written before a crash and replayed after it must reach
// the store under the same id with the same chunks in the same order to be stored once.
import { randomUUID } from 'node:crypto';
import { cpSync } from 'node:fs';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { WriteAheadLog, type WalChunkRef } from '../../src/pipeline/wal/index.ts';
import type { EncodedChunk, StorageBackend, WriteBatch } from '../../src/storage/backend.ts';
import { createEncoder } from '../../src/storage/postgres/encoder.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { makeLog } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

const SERVICE = 'wal-replay-' + randomUUID();

async function logCount(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ n: string }>('SELECT count(*) AS n FROM tracehouse.logs WHERE service_name = $1', [SERVICE]);
    return Number(r.rows[0]!.n);
  } finally {
    await c.end();
  }
}

function batchOf(chunks: EncodedChunk[], batchId = randomUUID()): WriteBatch {
  return {
    signal: 'logs',
    partition: 0,
    tenant: TENANT,
    rows: chunks.reduce((n, c) => n + c.rows, 0),
    bytes: chunks.reduce((n, c) => n + c.data.byteLength, 0),
    chunks: chunks.map((c) => c.data),
    batchId,
  };
}

async function mustWrite(b: StorageBackend, batch: WriteBatch): Promise<void> {
  const r = await b.write(batch);
  if (r.kind !== 'success') throw new Error(`write failed: ${r.error.message}`);
}

describe('WAL replay into PostgreSQL', () => {
  let url: string;
  let store: StorageBackend;
  const logs: WriteAheadLog[] = [];

  beforeAll(async () => {
    url = await createTestDatabase('walreplay');
    const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.poolSize': '2' } });
    store = createPostgresBackend(postgresOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await store.start();
  });

  afterAll(async () => {
    await Promise.all(logs.map((w) => w.shutdown()));
    await store.shutdown();
  });

  function open(dir: string): WriteAheadLog {
    const w = new WriteAheadLog({ dir, maxBytes: 64 << 20, segmentBytes: 1 << 20 });
    logs.push(w);
    return w;
  }

  it('stores a batch written before a crash once when the replay writes it again, and the rest once too', async () => {
    const encoder = createEncoder({ format: 'binary' });
    const dir = tempDir('walreplay-');
    const w = open(dir);
    await w.start();
    // Three requests of log records that share a timestamp (the case a position key must tell apart).
    const t = BigInt(Date.now()) * 1_000_000n;
    const requests = [0, 1, 2].map(() => encoder.encodeLogs(Array.from({ length: 50 }, () => makeLog({ serviceName: SERVICE, timeUnixNano: t }))));
    const seqs: number[] = [];
    for (const chunks of requests) seqs.push(await w.append('logs', chunks));
    // The writer batched the second and the first request, recorded it, and wrote it…
    const picked = [1, 0].flatMap((r) => requests[r]!.map((c, index) => ({ c, ref: { entry: seqs[r]!, index } as WalChunkRef })));
    const batch = batchOf(picked.map((p) => p.c));
    await w.recordBatch(batch, picked.map((p) => p.ref));
    await mustWrite(store, batch);
    expect(await logCount(url)).toBe(100);
    // …and the process died before it could mark the batch stored.
    const snap = tempDir('walreplay-');
    cpSync(dir, snap, { recursive: true });

    const r = open(snap);
    const replay = await r.start();
    expect(replay.batches.map((b) => b.batch.batchId)).toEqual([batch.batchId]);
    for (const b of replay.batches) {
      await mustWrite(store, b.batch);
      r.markStored(b.seq);
    }
    expect(await logCount(url)).toBe(100);
    // The third request was in no batch: it is batched anew, and stored once.
    expect(replay.chunks.map((c) => c.ref.entry)).toEqual(requests[2]!.map(() => seqs[2]));
    const fresh = batchOf(replay.chunks);
    const seq = await r.recordBatch(fresh, replay.chunks.map((c) => c.ref));
    await mustWrite(store, fresh);
    r.markStored(seq);
    await r.shutdown();
    expect(await logCount(url)).toBe(150);
    expect(await open(snap).start()).toEqual({ batches: [], chunks: [] });

    // What the batch record prevents: the same rows under another id are stored again.
    await mustWrite(store, { ...batch, batchId: randomUUID() });
    expect(await logCount(url)).toBe(250);
  });
});
