// An instance starting while the spans table is busy (a long read, another instance's DDL) could
// not create its partitions ahead within the DDL lock timeout; start-up then failed, and the
// collector exited, although writes create a missing partition on demand and maintenance runs
// again. Like retention, creation ahead that fails must not fail start-up.
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend as backend } from '../helpers/postgres-store.ts';
import { makeSpan, writeSpans } from '../helpers/rows.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

describe('postgres: start-up while the spans table is busy', () => {
  let url: string;
  beforeAll(async () => {
    url = await createTestDatabase('pgstartbusy');
    const first = backend(url);
    await first.start();
    await first.shutdown();
  });

  it('starts, and stores, when its partitions ahead cannot be created yet', { timeout: 60_000 }, async () => {
    const reader = new pg.Client({ connectionString: url });
    await reader.connect();
    const store = backend(url, { 'storage.postgres.partitionsAheadDays': '5' });
    try {
      // A long read holds the spans table.
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM tracehouse.spans');
      const started = store.start().then(() => 'started', (err: unknown) => `failed: ${(err as Error).message}`);
      const outcome = await Promise.race([started, new Promise<string>((r) => setTimeout(() => r('still starting'), 15_000))]);
      await reader.query('COMMIT');
      expect(outcome).toBe('started');
      const span = makeSpan();
      await writeSpans(store, [span]);
      expect(await store.getTrace(TENANT, span.traceId)).toHaveLength(1);
    } finally {
      await reader.end();
      await store.shutdown();
    }
  });
});
