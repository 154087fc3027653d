// What the tests of abandoned reads (read-abandoned-*.test.ts) share: a read API client that goes
// away before its answer, one that times its answer, and PostgreSQL's side of it.
import { request } from 'node:http';
import pg from 'pg';
import { expect } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import type { Logger } from '../../src/telemetry/logger.ts';
import { spanBatch } from './postgres-store.ts';
import { makeSpan } from './rows.ts';

/** Sends a GET and closes the connection before any answer: after ms, or once `leave` settles. */
export function getAndLeave(port: number, path: string, leave: number | Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.end();
    if (typeof leave === 'number') setTimeout(() => req.destroy(), leave);
    else void leave.finally(() => req.destroy());
  });
}

/** A GET's status and how long its whole answer took, given up after timeoutMs. */
export async function timedGet(port: number, path: string, timeoutMs: number): Promise<{ status: number; ms: number }> {
  const t = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t };
}

/** A PostgreSQL store at url (storage.postgres.poolSize 2: two read connections) holding one span of service "svc", and a read API on it. */
export async function postgresReadServer(url: string, logger: Logger): Promise<{ store: StorageBackend; server: QueryServer }> {
  const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.poolSize': '2' } });
  const store = createPostgresBackend(postgresOptions(config), { logger, metrics: createMetrics() });
  await store.start();
  expect((await store.write(spanBatch([makeSpan({ serviceName: 'svc' })]))).kind).toBe('success');
  const server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 100, maxSpansPerTrace: 1000, maxSpansPerSearch: 10_000 }, store, logger);
  await server.start();
  return { store, server };
}

/** Runs body while a session of its own (at url) holds tracehouse.logs in ACCESS EXCLUSIVE mode: a log search waits, active on the server. */
export async function withLogsLocked(url: string, body: () => Promise<void>): Promise<void> {
  const locker = new pg.Client({ connectionString: url, application_name: 'test-locker' });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE tracehouse.logs IN ACCESS EXCLUSIVE MODE');
    await body();
  } finally {
    await locker.query('COMMIT');
    await locker.end();
  }
}

/** Polls count until it is 0 or withinMs have passed; the last count. */
export async function untilNone(count: () => Promise<number>, withinMs: number): Promise<number> {
  const t = performance.now();
  let n = await count();
  while (n > 0 && performance.now() - t < withinMs) {
    await new Promise((r) => setTimeout(r, 50));
    n = await count();
  }
  return n;
}
