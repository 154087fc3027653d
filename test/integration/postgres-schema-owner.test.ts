// A database someone else runs (README: "a database you already run") usually gives the
// collector's role a schema of its own, made by the DBA (CREATE SCHEMA … AUTHORIZATION role), and
// no CREATE on the database. The collector must start and migrate inside that schema: CREATE
// SCHEMA IF NOT EXISTS checks the database privilege before it looks whether the schema exists,
// so every start failed with "permission denied for database".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLoginRole, createTestDatabase, dropLoginRole, withUser } from '../helpers/postgres.ts';
import { postgresBackend as backend } from '../helpers/postgres-store.ts';
import { makeSpan, writeSpans } from '../helpers/rows.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

describe('postgres: a schema the DBA made for the collector', () => {
  let adminUrl: string;
  let roleUrl: string;
  const role = `th_${process.pid}_${Date.now().toString(36)}`;
  const schema = 'th_owned';

  beforeAll(async () => {
    adminUrl = await createTestDatabase('pgschemaowner');
    await createLoginRole(adminUrl, role, [`CREATE SCHEMA ${schema} AUTHORIZATION ${role}`]);
    roleUrl = withUser(adminUrl, role);
  });
  afterAll(() => dropLoginRole(adminUrl, role, schema));

  it('migrates into it, starts and stores without CREATE on the database', async () => {
    const store = backend(roleUrl, { 'storage.postgres.schema': schema });
    try {
      await store.start();
      const span = makeSpan();
      await writeSpans(store, [span]);
      expect(await store.getTrace(TENANT, span.traceId)).toHaveLength(1);
    } finally {
      await store.shutdown();
    }
    // A second start (schema already migrated) too.
    const again = backend(roleUrl, { 'storage.postgres.schema': schema });
    try {
      await again.start();
    } finally {
      await again.shutdown();
    }
  });
});
