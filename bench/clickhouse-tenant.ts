// What a tenant other than the default costs a ClickHouse write. The default tenant's batches are
// plain `INSERT … FORMAT RowBinary` (the column DEFAULT fills TenantId); another tenant's go
// through `INSERT … SELECT *, '<tenant>' FROM file(…)` on chdb (input() over HTTP). Baseline: the
// same batches written as the default tenant, interleaved with the tenant's in the same run.
//
//   node bench/clickhouse-tenant.ts [--rows=100000] [--batch-rows=25000]
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { loadConfig } from '../src/config/index.ts';
import { DEFAULT_TENANT } from '../src/model/tenant.ts';
import { createEncoder } from '../src/storage/clickhouse/encoder.ts';
import { createClickhouseBackend } from '../src/storage/clickhouse/index.ts';
import { clickhouseOptions } from '../src/storage/index.ts';
import { createMetrics } from '../src/telemetry/metrics.ts';
import { benchSpans } from './clickhouse.ts';
import { cliFlag } from './harness.ts';

function arg(name: string, fallback: number): number {
  const a = cliFlag(name);
  return a === undefined ? fallback : Number(a);
}

const rows = arg('rows', 100_000);
const batchRows = arg('batch-rows', 25_000);
const chunkRows = 500;
const dir = mkdtempSync(join(tmpdir(), 'tracehouse-bench-tenant-'));
try {
  const spans = benchSpans(rows, chunkRows);
  const encoder = createEncoder({ partitions: 1 });
  const batches: Uint8Array[][] = [];
  for (let i = 0; i < spans.length; i += batchRows) {
    const chunks: Uint8Array[] = [];
    for (let j = i; j < Math.min(i + batchRows, spans.length); j += chunkRows) chunks.push(...encoder.encodeSpans(spans.slice(j, j + chunkRows)).map((c) => c.data));
    batches.push(chunks);
  }
  const config = loadConfig({ flags: { 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': `chdb://${dir}/engine?database=bench_tenant` } });
  const backend = createClickhouseBackend(clickhouseOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await backend.start();
  const seconds = { [DEFAULT_TENANT]: 0, acme: 0 };
  const write = async (tenant: 'default' | 'acme', chunks: Uint8Array[], n: number) => {
    const t0 = performance.now();
    const r = await backend.write({ signal: 'traces', partition: 0, tenant, rows: n, bytes: 0, chunks, batchId: randomUUID() });
    if (r.kind !== 'success') throw r.error;
    seconds[tenant] += (performance.now() - t0) / 1000;
  };
  // Warm-up of both paths (the tenant path's first insert also reads the column types).
  await write(DEFAULT_TENANT, batches[0]!.slice(0, 1), chunkRows);
  await write('acme', batches[0]!.slice(0, 1), chunkRows);
  seconds[DEFAULT_TENANT] = 0;
  seconds.acme = 0;
  for (const [i, b] of batches.entries()) {
    const n = Math.min(batchRows, rows - i * batchRows);
    // Interleaved, each going first in turn, so merges and drift hit both alike.
    if (i % 2 === 0) {
      await write(DEFAULT_TENANT, b, n);
      await write('acme', b, n);
    } else {
      await write('acme', b, n);
      await write(DEFAULT_TENANT, b, n);
    }
  }
  await backend.shutdown();
  const rate = (s: number) => Math.round(rows / s);
  console.log(
    JSON.stringify({
      rows,
      batchRows,
      defaultTenant: { seconds: +seconds[DEFAULT_TENANT].toFixed(3), spansPerSecond: rate(seconds[DEFAULT_TENANT]) },
      otherTenant: { seconds: +seconds.acme.toFixed(3), spansPerSecond: rate(seconds.acme) },
      ratio: +(seconds.acme / seconds[DEFAULT_TENANT]).toFixed(2),
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
