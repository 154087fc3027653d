// `tracehouse migrate` as an operator runs it before starting collectors with autoMigrate off.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { writeSpansOneASecond } from '../helpers/sqlite-fill.ts';
import { tempDir } from '../helpers/tmp.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('tracehouse migrate (postgres)', () => {
  it('refuses to start on an unmigrated schema with autoMigrate off, then migrates and starts', async () => {
    const url = await createTestDatabase('migrate_cli');
    const common = ['--storage.backend=postgres', `--storage.postgres.url=${url}`, '--storage.postgres.autoMigrate=false'];
    const ports = ['--receiver.grpc.listen=127.0.0.1:0', '--receiver.http.listen=127.0.0.1:0', '--query.listen=127.0.0.1:0', '--ops.listen=127.0.0.1:0', `--delivery.walDir=${join(tempDir(), 'wal')}`];

    const refused = cli([...common, ...ports]);
    expect(refused.status).toBe(1);
    expect(refused.stdout).toContain("run 'tracehouse migrate'");

    const migrated = cli(['migrate', ...common]);
    expect(migrated.status).toBe(0);
    expect(migrated.stdout).toContain('migrations applied');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const { rows } = await db.query('SELECT version FROM tracehouse.schema_migrations ORDER BY version');
      expect(rows.length).toBeGreaterThan(0);
      expect(rows[0].version).toBe(1);
    } finally {
      await db.end();
    }
    // Running it again (a Helm hook runs it at every upgrade) is a no-op that still succeeds and
    // says nothing was needed, not that migrations were applied.
    const again = cli(['migrate', ...common]);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('schema up to date: no migrations needed');
    expect(again.stdout).not.toContain('migrations applied');
  });

  it('refuses a schema name PostgreSQL cannot take, naming the key, before touching the database', async () => {
    const url = await createTestDatabase('migrate_schema');
    for (const schema of ['', 'pg_traces']) {
      // As an empty variable gives it: TRACEHOUSE_STORAGE_POSTGRES_SCHEMA= (a compose file's unset ${…}).
      const r = spawnSync(process.execPath, [CLI, 'migrate', '--storage.backend=postgres', `--storage.postgres.url=${url}`], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, TRACEHOUSE_CONFIG: '', TRACEHOUSE_STORAGE_POSTGRES_SCHEMA: schema },
      });
      expect(r.status, schema).toBe(2);
      expect(r.stderr).toContain(`storage.postgres.schema = ${JSON.stringify(schema)}`);
    }
  });
});

describe('tracehouse migrate (sqlite)', () => {
  it('brings a file of an earlier version up to date before a collector starts on it, and creates none', () => {
    const dir = tempDir();
    // Runs without attribute filters (an earlier version's, or attributeIndex off): a start fills
    // them when it opens the file, minutes for a large one.
    const path = join(dir, 'old.db');
    const old = openDatabase(path, { attributeIndex: false });
    writeSpansOneASecond(new SqliteStore(old, { indexAttributes: false }), 100, 'before');
    old.close();
    const unfiltered = (): number => {
      const db = new DatabaseSync(path);
      try {
        return (db.prepare('SELECT count(*) AS n FROM span_runs WHERE attr_filter IS NULL').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    expect(unfiltered()).toBeGreaterThan(0);
    const migrated = cli(['migrate', `--storage.sqlite.path=${path}`]);
    expect(migrated.status, migrated.stderr).toBe(0);
    expect(migrated.stdout).toContain('migrations applied');
    expect(unfiltered()).toBe(0);

    // A path with no file yet (a collector's first start makes it): nothing is created.
    const missing = join(dir, 'none', 'new.db');
    const none = cli(['migrate', `--storage.sqlite.path=${missing}`]);
    expect(none.status, none.stderr).toBe(0);
    expect(none.stdout).toContain('the collector creates it at its first start');
    expect(none.stdout).not.toContain('migrations applied');
    expect(existsSync(missing)).toBe(false);
  });
});
