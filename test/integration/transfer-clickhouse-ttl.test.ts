// import and copy migrate their target as a collector would, but its retention is the collector's
// (README: none of them runs retention on a store). On ClickHouse the retention is the tables'
// TTL, which a start with another storage.clickhouse.ttlDays rewrites: an import run with a stale
// configuration (or a --storage.clickhouse.ttlDays typed for the file's rows) shortened the
// collector's TTL and ClickHouse deleted the rows past it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTransferCommand } from '../../src/transfer/cli.ts';
import { chdbBackend, chdbClient, chdbUrls, removeChdbDir, select, uniqueDatabase } from '../helpers/clickhouse.ts';
import { tempDir } from '../helpers/tmp.ts';

/** A file of one line: a span of today. */
function backup(): string {
  const file = join(tempDir(), 'backup.jsonl');
  const now = BigInt(Date.now()) * 1_000_000n;
  const span = { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'op', kind: 2, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n) };
  writeFileSync(file, JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'restored' } }] }, scopeSpans: [{ spans: [span] }] }] }) + '\n');
  return file;
}

afterAll(removeChdbDir);

describe('import into ClickHouse', () => {
  it("leaves the tables' TTL as the collector set it, whatever the command's ttlDays", async () => {
    const db = uniqueDatabase('transferttl');
    // The collector's store, kept 30 days.
    await (await chdbBackend([db], { 'storage.clickhouse.ttlDays': '30' })).shutdown();
    const client = await chdbClient();
    const ttls = async () => Object.fromEntries(((await select(client, `SELECT name, engine_full FROM system.tables WHERE database = '${db}' AND name IN ('otel_traces', 'otel_logs') ORDER BY name`)) as [string, string][]).map(([n, e]) => [n, / TTL (.*?)(?: SETTINGS |$)/.exec(e)?.[1]]));
    const before = await ttls();
    expect(before['otel_traces']).toMatch(/toIntervalDay\(30\)$/);

    const code = await runTransferCommand(['import', backup(), '--storage.backend=clickhouse', `--storage.clickhouse.urls=${chdbUrls([db])}`, '--storage.clickhouse.ttlDays=7', '--quiet']);
    expect(code).toBe(0);
    expect(await ttls()).toEqual(before);
    const [[spans]] = (await select(client, `SELECT count() FROM ${db}.otel_traces`)) as [[number | string]];
    expect(Number(spans)).toBe(1);
  });

  it('gives the tables it creates the configured TTL', async () => {
    const db = uniqueDatabase('transferttlnew');
    expect(await runTransferCommand(['import', backup(), '--storage.backend=clickhouse', `--storage.clickhouse.urls=${chdbUrls([db])}`, '--storage.clickhouse.ttlDays=7', '--quiet'])).toBe(0);
    const client = await chdbClient();
    const [[engine]] = (await select(client, `SELECT engine_full FROM system.tables WHERE database = '${db}' AND name = 'otel_traces'`)) as [[string]];
    expect(engine).toMatch(/ TTL .*toIntervalDay\(7\)/);
  });
});
