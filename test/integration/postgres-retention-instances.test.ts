// Several collectors on one database run retention at the same time (each pod's maintenance, at
// start and on its interval). Each one drops the partitions its own catalog read named, under the
// schema's DDL lock, with DROP TABLE IF EXISTS: the first to get the lock drops them, the others
// find them gone. Every pod still logged "postgres retention dropped partitions" with the count
// it had meant to drop, so two pods said 4 partitions were dropped where 2 were. Only what a pod
// dropped itself is now logged (and returned).
import pg from 'pg';
import type { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { postgresOptions } from '../../src/storage/index.ts';
import { createPostgresBackend } from '../../src/storage/postgres/index.ts';
import { advisoryKey } from '../../src/storage/postgres/sql.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend, spanBatch } from '../helpers/postgres-store.ts';
import { makeSpan } from '../helpers/rows.ts';

const DAY_NS = 86_400_000_000_000n;
const today = (): number => Math.floor(Date.now() / 86_400_000);

function pod(url: string, logger: pino.Logger) {
  const config = loadConfig({ flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.poolSize': '2', 'storage.postgres.retentionDays': '3' } });
  return createPostgresBackend(postgresOptions(config), { logger, metrics: createMetrics() });
}

describe('postgres: retention run by two collectors at once', () => {
  it('logs each dropped partition once, by the collector that dropped it', { timeout: 60_000 }, async () => {
    const url = await createTestDatabase('pgretentionpods');
    const keeper = postgresBackend(url, { 'storage.postgres.retentionDays': '0' });
    await keeper.start();
    // One old day, one partition (of spans).
    expect((await keeper.write(spanBatch([makeSpan({ startTimeUnixNano: BigInt(today() - 9) * DAY_NS + 5n })]))).kind).toBe('success');
    await keeper.shutdown();

    // Both pods read the catalog, then meet at the DDL lock: held here until both have read it.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock($1::int8)', [advisoryKey('partitions', 'tracehouse')]);
    const logs = [capturedLogger(), capturedLogger()];
    const pods = logs.map((l) => pod(url, l.logger));
    try {
      const started = Promise.all(pods.map((p) => p.start()));
      await new Promise((r) => setTimeout(r, 1500));
      await holder.query('COMMIT');
      await started;
      const { rows } = await holder.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_class WHERE relname = 'spans_p' || to_char(now() - interval '9 days', 'YYYYMMDD')`);
      expect(rows[0]!.n).toBe(0);
      const said = logs.flatMap((l) => l.lines().filter((x) => x.msg === 'postgres retention dropped partitions').map((x) => x['partitions']));
      expect(said).toEqual([1]);
    } finally {
      await Promise.all(pods.map((p) => p.shutdown()));
      await holder.end();
    }
  });
});
