// The PostgreSQL store as the integration tests drive it directly: a backend on a test database,
// and spans as one write batch in the store's own encoding.
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.ts';
import type { SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import type { StorageBackend, WriteBatch } from '../../src/storage/backend.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { createEncoder } from '../../src/storage/postgres/encoder.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';

/** A PostgreSQL backend on url (not started), logging nothing, with a pool of 2 unless flags set storage.postgres.poolSize. */
export function postgresBackend(url: string, flags: Record<string, string> = {}): StorageBackend {
  const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.poolSize': '2', ...flags } });
  return createPostgresBackend(postgresOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
}

/** Spans as one batch of the default tenant, in the PostgreSQL store's binary COPY encoding, under a fresh batch id. */
export function spanBatch(rows: SpanRow[]): WriteBatch {
  const chunks = createEncoder({ format: 'binary' }).encodeSpans(rows);
  return { signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows: rows.length, bytes: chunks.reduce((n, c) => n + c.data.byteLength, 0), chunks: chunks.map((c) => c.data), batchId: randomUUID() };
}
