// `tracehouse migrate` on a SQLite file a collector is writing: the operator turns
// storage.sqlite.attributeIndex on again and runs migrate before restarting the collector (README:
// migrate spends the filling of the runs' filters before the start instead). The collector still
// writes meanwhile.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { makeTrace } from '../helpers/rows.ts';
import { writeSpansOneASecond } from '../helpers/sqlite-fill.ts';
import { tempDir } from '../helpers/tmp.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const encoder = createEncoder({});

it('tracehouse migrate fills the runs\' filters of a file a running collector writes into', async () => {
  const path = join(tempDir(), 'running.db');
  const old = openDatabase(path, { attributeIndex: false });
  writeSpansOneASecond(new SqliteStore(old, { indexAttributes: false }), 40_000, 'before');
  old.close();
  const config = loadConfig({ flags: { 'storage.sqlite.path': path, 'storage.sqlite.attributeIndex': 'false' } });
  const b = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await b.start();
  const child = spawn(process.execPath, [CLI, 'migrate', `--storage.sqlite.path=${path}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let done = false;
  const refused: string[] = [];
  let writes = 0;
  void exited.then(() => (done = true));
  try {
    // The collector's writes meanwhile, one small batch after another.
    for (let i = 0; !done; i++, writes++) {
      const chunks = encoder.encodeSpans(makeTrace(5)).map((c) => c.data);
      const r = await b.write({ signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows: 5, bytes: chunks.reduce((n, c) => n + c.byteLength, 0), chunks, batchId: `w${i}` });
      if (r.kind !== 'success') refused.push(`${i}: ${r.error.message}`);
    }
    expect(await exited, out).toBe(0);
    // Each waits for migrate's page of filters (a fraction of a second) instead of being refused.
    expect(writes).toBeGreaterThan(10);
    expect(refused.slice(0, 3)).toEqual([]);
  } finally {
    child.kill();
    await b.shutdown();
  }
  const db = new DatabaseSync(path, { readOnly: true });
  // The runs before migrate all have their filters (the collector's own since, written with the index off, may not).
  expect((db.prepare("SELECT count(*) AS n FROM span_runs WHERE attr_filter IS NULL AND service_name = 'before'").get() as { n: number } | undefined)?.n ?? 0).toBe(0);
  db.close();
}, 60_000);
