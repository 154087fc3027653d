// Creating a day's partition while another session (another pod, whose window leaves that day
// out: a clock a day behind at midnight, a smaller partitionsAheadDays) is inserting that day's
// rows into the default partition: the creation looked in the default partition, found none
// committed, and its CREATE TABLE … PARTITION OF then waited for the insert and failed with
// SQLSTATE 23514 ("updated partition constraint for default partition would be violated"), a
// failed write (retried) or, for start-up's partitions ahead, a failed start. The creation now
// waits for such inserts before it looks, and moves the rows it then finds.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { NS_PER_DAY } from '../../src/storage/postgres/columns.ts';
import { partitionName } from '../../src/storage/postgres/partitions.ts';
import { createTestDatabase, untilWaitingOnLock } from '../helpers/postgres.ts';
import { postgresBackend, spanBatch } from '../helpers/postgres-store.ts';
import { makeSpan } from '../helpers/rows.ts';

const today = (): number => Math.floor(Date.now() / 86_400_000);

describe('postgres: a partition created while another session inserts its day into the default partition', () => {
  let url: string;
  let store: StorageBackend;
  let other: pg.Client;
  let admin: pg.Client;
  beforeAll(async () => {
    url = await createTestDatabase('pgpartdefault');
    // Partitions ahead: today's only, so a day three days on is in the window but has none yet.
    store = postgresBackend(url, { 'storage.postgres.partitionsAheadDays': '0' });
    await store.start();
    other = new pg.Client({ connectionString: url, application_name: 'test-other-pod' });
    await other.connect();
    admin = new pg.Client({ connectionString: url, application_name: 'test-admin' });
    await admin.connect();
  });
  afterAll(async () => {
    await other?.end();
    await admin?.end();
    await store?.shutdown();
  });

  it('stores the batch, and the other session\'s rows end in the new partition', async () => {
    const day = today() + 3;
    const start = BigInt(day) * NS_PER_DAY + 1_000n;
    const service = 'svc-' + randomUUID();
    // A row to copy for the other session's insert.
    expect((await store.write(spanBatch([makeSpan({ serviceName: service })]))).kind).toBe('success');
    await other.query('BEGIN');
    await other.query(`CREATE TEMP TABLE copied ON COMMIT DROP AS SELECT * FROM tracehouse.spans WHERE service_name = $1`, [service]);
    await other.query(`UPDATE copied SET start_time_unix_nano = $1::int8, end_time_unix_nano = $1::int8 + 10`, [start.toString()]);
    // Into the default partition (that day has no partition), not committed yet.
    await other.query('INSERT INTO tracehouse.spans SELECT * FROM copied');
    const write = store.write(spanBatch([makeSpan({ serviceName: service, startTimeUnixNano: start + 5n, endTimeUnixNano: start + 50n })]));
    try {
      // The partition's creation waits for the other session's insert.
      await untilWaitingOnLock(admin, 'the partition creation waiting on the insert');
    } finally {
      await other.query('COMMIT');
    }
    const result = await write;
    expect(result.kind, result.kind === 'success' ? '' : String((result as { error?: unknown }).error)).toBe('success');
    const inPartition = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM tracehouse.${partitionName('traces', day)} WHERE service_name = $1`, [service]);
    expect(inPartition.rows[0]!.n).toBe(2);
    const inDefault = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM tracehouse.spans_default WHERE service_name = $1`, [service]);
    expect(inDefault.rows[0]!.n).toBe(0);
  }, 20_000);
});
