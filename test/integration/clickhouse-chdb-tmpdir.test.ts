// The embedded engine's inserts go through a temporary directory (see shard.ts): one removed while
// the collector runs (a /tmp cleaner such as systemd-tmpfiles after days without writes, an operator
// clearing /tmp) must not stop every later batch from being stored.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { chdbBackend, chdbClient, removeChdbDir, select, uniqueDatabase } from '../helpers/clickhouse.ts';
import { makeLog, makeTrace, writeLogs, writeSpans } from '../helpers/rows.ts';

let client: ClickHouseClient;
const backends: StorageBackend[] = [];
const savedTmp = process.env.TMPDIR;
const tmp = mkdtempSync(join(tmpdir(), 'tracehouse-tmpdir-test-'));

beforeAll(async () => {
  client = await chdbClient();
});

afterAll(async () => {
  for (const b of backends) await b.shutdown();
  await client.close();
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  rmSync(tmp, { recursive: true, force: true });
  removeChdbDir();
});

describe('clickhouse on chdb: the temporary directory of its inserts', () => {
  it('stores batches again at once after the directory was removed', async () => {
    process.env.TMPDIR = tmp;
    const db = uniqueDatabase('tmpdir');
    const b = await chdbBackend([db]);
    backends.push(b);
    await writeSpans(b, makeTrace(2));
    const made = readdirSync(tmp).filter((n) => n.startsWith('tracehouse-chdb-'));
    expect(made).toHaveLength(1);
    rmSync(join(tmp, made[0]!), { recursive: true, force: true });
    // Before: every later insert failed (ENOENT, retryable) for as long as the process ran.
    const spans = makeTrace(3);
    await writeSpans(b, spans);
    const log = makeLog();
    await writeLogs(b, [log]);
    expect(await b.getTrace(TENANT, spans[0]!.traceId)).toHaveLength(3);
    expect(await b.searchLogs(TENANT, { traceId: log.traceId, limit: 10 })).toHaveLength(1);
    expect(await select(client, `SELECT count() FROM ${db}.otel_traces`)).toEqual([[5]]);
  });
});
