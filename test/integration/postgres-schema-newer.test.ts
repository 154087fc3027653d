// A schema a newer Tracehouse migrated (a rollback, an older pod restarting during an upgrade):
// an older build started on it, and its writes then named a constraint the newer schema no longer
// had, so every batch was refused for good and dropped. A build refuses a schema newer than it
// knows at start-up and in `tracehouse migrate`, saying which version to run.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { LATEST_VERSION } from '../../src/storage/postgres/migrations.ts';
import { postgresBackend } from '../helpers/postgres-store.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { runCli } from '../helpers/cli.ts';

describe('postgres: a schema newer than this build', () => {
  it('stops start-up (autoMigrate on or off) and `tracehouse migrate`, naming the versions', { timeout: 60_000 }, async () => {
    const url = await createTestDatabase('pgnewer');
    const first = postgresBackend(url);
    await first.start();
    await first.shutdown();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query("INSERT INTO tracehouse.schema_migrations (version, name) VALUES ($1, 'from a newer build')", [LATEST_VERSION + 1]);
    } finally {
      await admin.end();
    }
    const newer = new RegExp(`postgres schema tracehouse is at version ${LATEST_VERSION + 1}, newer than this build knows \\(${LATEST_VERSION}\\)`);
    for (const autoMigrate of ['true', 'false']) {
      const store = postgresBackend(url, { 'storage.postgres.autoMigrate': autoMigrate });
      try {
        await expect(store.start(), `autoMigrate ${autoMigrate}`).rejects.toThrow(newer);
      } finally {
        await store.shutdown();
      }
    }
    const migrate = runCli(['migrate', '--storage.backend=postgres', `--storage.postgres.url=${url}`, '--storage.startWaitMs=0']);
    expect(migrate.status).toBe(1);
    expect(migrate.stderr).toMatch(newer);
  });
});
