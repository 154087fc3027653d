// A role that may write the tables but not create their day partitions (a schema migrated by the
// DBA, the collector's role given SELECT and INSERT only, autoMigrate off) must not start: every
// batch would then fail on its day's partition and be retried for ever, the collector ready all
// along. Start-up refuses it, naming the privilege (partition creation ahead, PostgresBackend
// maintain: "Other errors (no privilege, say) still do" fail start-up).
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createLoginRole, createTestDatabase, dropLoginRole, withUser } from '../helpers/postgres.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { join } from 'node:path';
import { existsSync, writeFileSync } from 'node:fs';

function backend(url: string, flags: Record<string, string> = {}): StorageBackend & { migrate(): Promise<void> } {
  const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.poolSize': '2', ...flags } });
  return createPostgresBackend(postgresOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() }) as StorageBackend & { migrate(): Promise<void> };
}

describe('postgres: a role that may not create partitions', () => {
  let adminUrl: string;
  let roleUrl: string;
  const role = `thp_${process.pid}_${Date.now().toString(36)}`;
  const schema = 'th_granted';

  beforeAll(async () => {
    adminUrl = await createTestDatabase('pgpartpriv');
    // The DBA migrates the schema (no day partition made yet) and grants the role its rows only.
    const dba = backend(adminUrl, { 'storage.postgres.schema': schema });
    try {
      await dba.migrate();
    } finally {
      await dba.shutdown();
    }
    await createLoginRole(adminUrl, role, [
      `GRANT USAGE ON SCHEMA ${schema} TO ${role}`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`,
      `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${schema} TO ${role}`,
    ]);
    roleUrl = withUser(adminUrl, role);
  });
  afterAll(() => dropLoginRole(adminUrl, role, schema));

  it('refuses to start, naming the missing privilege, instead of starting to retry every batch', async () => {
    const store = backend(roleUrl, { 'storage.postgres.schema': schema, 'storage.postgres.autoMigrate': 'false' });
    try {
      await expect(store.start()).rejects.toThrow(/owner|permission denied/);
    } finally {
      await store.shutdown();
    }
  });
  it('still lets export read the store with that role: a backup creates no partition, so needs no right to', () => {
    // The store's collector stopped (no partition of today or ahead made): the backup job's role
    // may read the rows, and export migrates and writes nothing.
    const out = join(tempDir(), 'backup.jsonl');
    const r = runCli(['export', '--out', out, '--storage.backend=postgres', `--storage.postgres.url=${roleUrl}`, `--storage.postgres.schema=${schema}`, '--storage.postgres.poolSize=2', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
  }, 60_000);
  it('fails an import at once when a day it brings needs a partition the role may not create, as when it may not insert', async () => {
    // The collector's (owner) role made today's partitions and those ahead: the import's role starts.
    const dba = backend(adminUrl, { 'storage.postgres.schema': schema });
    try {
      await dba.start();
    } finally {
      await dba.shutdown();
    }
    // Spans of ten days ago: a day the import (which runs no retention) gives a partition of its own.
    const file = join(tempDir(), 'old.jsonl');
    const t = BigInt(Date.now() - 10 * 86_400_000) * 1_000_000n;
    const span = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', name: 'old', startTimeUnixNano: String(t), endTimeUnixNano: String(t + 1000n) };
    writeFileSync(file, JSON.stringify({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans: [span] }] }] }) + '\n');
    const t0 = Date.now();
    const r = runCli(['import', file, '--storage.backend=postgres', `--storage.postgres.url=${roleUrl}`, `--storage.postgres.schema=${schema}`, '--storage.postgres.autoMigrate=false', '--storage.postgres.poolSize=2', '--writer.retryMaxElapsedMs=60000', '--quiet']);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/owner|permission denied/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 120_000);
});
