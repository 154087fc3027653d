// A chdb:// directory written before the embedded engine was opened in UTC (2568b7a) was written
// in the process's time zone: its day partitions (toDate of the time) are that zone's days.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { createClickhouseBackend } from '../../src/storage/clickhouse/index.ts';
import { clickhouseOptions } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
// 2026-12-05 20:00 UTC: 2026-12-06 05:00 in Tokyo, a day later there.
const T = 1796500800n * 1_000_000_000n;

it('searches a chdb:// directory written in another time zone by an earlier build, its records all found', async () => {
  const dir = tempDir();
  const urls = `chdb://${join(dir, 'chdb')}?database=zone`;
  // The earlier build: the engine started in the process's zone (Asia/Tokyo).
  const child = `
    import { createChdbConnection } from 'chdb/connection';
    createChdbConnection({ path: ${JSON.stringify(join(dir, 'chdb'))} });
    const { loadConfig } = await import(${JSON.stringify(join(ROOT, 'src/config/index.ts'))});
    const { createClickhouseBackend } = await import(${JSON.stringify(join(ROOT, 'src/storage/clickhouse/index.ts'))});
    const { clickhouseOptions } = await import(${JSON.stringify(join(ROOT, 'src/storage/index.ts'))});
    const { createMetrics } = await import(${JSON.stringify(join(ROOT, 'src/telemetry/metrics.ts'))});
    const { loadRowEncoder } = await import(${JSON.stringify(join(ROOT, 'src/storage/encoders.ts'))});
    const { makeLog } = await import(${JSON.stringify(join(ROOT, 'test/helpers/rows.ts'))});
    const { pino } = await import('pino');
    const b = createClickhouseBackend(clickhouseOptions(loadConfig({ flags: { 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': ${JSON.stringify(urls)} } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await b.start();
    const enc = await loadRowEncoder(b.encoder);
    const chunks = enc.encodeLogs([makeLog({ serviceName: 'zone', timeUnixNano: ${T}n, observedTimeUnixNano: ${T}n })]);
    const r = await b.write({ signal: 'logs', partition: 0, tenant: 'default', rows: 1, bytes: chunks[0].data.byteLength, chunks: chunks.map((c) => c.data), batchId: 'zone' });
    if (r.kind !== 'success') throw new Error(JSON.stringify(r));
    await b.shutdown();
  `;
  await promisify(execFile)(process.execPath, ['--input-type=module', '-e', child], { cwd: ROOT, env: { ...process.env, TZ: 'Asia/Tokyo' } });
  // This build, in the same zone as that one ran in (the user's machine).
  const tz = process.env['TZ'];
  process.env['TZ'] = 'Asia/Tokyo';
  const b = createClickhouseBackend(clickhouseOptions(loadConfig({ flags: { 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': urls } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  try {
    await b.start();
  } finally {
    if (tz === undefined) delete process.env['TZ'];
    else process.env['TZ'] = tz;
  }
  try {
    expect(await b.searchLogs(TENANT, { service: 'zone', limit: 10 })).toHaveLength(1);
    // An hour's search around it: found too.
    expect(await b.searchLogs(TENANT, { service: 'zone', startNano: T - 1_800_000_000_000n, endNano: T + 1_800_000_000_000n, limit: 10 })).toHaveLength(1);
  } finally {
    await b.shutdown();
  }
}, 60_000);
