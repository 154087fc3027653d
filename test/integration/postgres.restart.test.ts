// The server goes away mid-stream and comes back: writes answer retryable while it is down,
// health says so, writing resumes by itself, and every row is stored exactly once. Uses a server
// of its own (it is stopped), even when TRACEHOUSE_TEST_POSTGRES_URL names another.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { LogRow, SpanRow } from '../../src/model/rows.ts';
import type { StorageBackend, WriteBatch, WriteResult } from '../../src/storage/backend.ts';
import { createEncoder } from '../../src/storage/postgres/encoder.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createTestDatabase, startEmbeddedPostgres, type EmbeddedServer } from '../helpers/postgres.ts';
import { makeLog, makeTrace } from '../helpers/rows.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('postgres: server stopped and restarted mid-stream', () => {
  let server: EmbeddedServer;
  let url: string;
  let backend: StorageBackend;

  beforeAll(async () => {
    server = await startEmbeddedPostgres();
    url = await createTestDatabase('restart', server.url);
    const config = loadConfig({
      flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.poolSize': '4', 'storage.postgres.statementTimeoutMs': '10000' },
    });
    backend = createPostgresBackend(postgresOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await backend.start();
  });
  afterAll(async () => {
    await backend?.shutdown();
    await server?.destroy();
  });

  it('answers retryable while down, then stores every row exactly once', async () => {
    const enc = createEncoder({ format: 'binary' });
    const toBatch = (signal: 'traces' | 'logs', rows: SpanRow[] | LogRow[]): WriteBatch => {
      const chunks = signal === 'traces' ? enc.encodeSpans(rows as SpanRow[]) : enc.encodeLogs(rows as LogRow[]);
      return { signal, partition: 0, tenant: TENANT, rows: rows.length, bytes: chunks.reduce((n, c) => n + c.data.byteLength, 0), chunks: chunks.map((c) => c.data), batchId: randomUUID() };
    };
    const spanBatches = Array.from({ length: 30 }, () => toBatch('traces', Array.from({ length: 50 }, () => makeTrace(4)).flat()));
    const logBatches = Array.from({ length: 30 }, () => toBatch('logs', Array.from({ length: 100 }, () => makeLog())));

    const results: WriteResult['kind'][] = [];
    let written = 0;
    // A minimal writer: each batch retried until it succeeds (the pipeline's job, not the adapter's).
    const writer = async (batches: WriteBatch[]): Promise<void> => {
      for (const b of batches) {
        const deadline = Date.now() + 60_000;
        for (;;) {
          const r = await backend.write(b);
          results.push(r.kind);
          if (r.kind === 'success') break;
          if (r.kind === 'permanent') throw new Error(`permanent failure: ${r.error.message}`);
          if (Date.now() > deadline) throw new Error(`still failing: ${r.error.message}`);
          await sleep(50);
        }
        written++;
        await sleep(10);
      }
    };
    const writers = [writer(spanBatches.slice(0, 15)), writer(spanBatches.slice(15)), writer(logBatches)];

    while (written < 10) await sleep(5);
    await server.stop();
    const down = await backend.health();
    expect(down.ok).toBe(false);
    const writtenWhileDown = written;
    await sleep(1000);
    expect(written - writtenWhileDown).toBeLessThanOrEqual(3); // at most those in flight at the stop
    expect(results).toContain('retryable');
    expect((await backend.health()).ok).toBe(false);
    await server.start();

    await Promise.all(writers);
    expect((await backend.health()).ok).toBe(true);
    expect(written).toBe(60);

    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const spans = await c.query<{ n: string; d: string }>('SELECT count(*)::text AS n, count(DISTINCT (trace_id, span_id))::text AS d FROM tracehouse.spans');
      expect(spans.rows[0]).toEqual({ n: String(30 * 200), d: String(30 * 200) });
      const logs = await c.query<{ n: string }>('SELECT count(*)::text AS n FROM tracehouse.logs');
      expect(logs.rows[0]!.n).toBe(String(30 * 100));
    } finally {
      await c.end();
    }
  });
});
