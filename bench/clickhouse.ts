// ClickHouse adapter write throughput on chdb's in-process engine, against a baseline in the same
// run: the same RowBinary bytes inserted directly, without the adapter.
//
//   node bench/clickhouse.ts [--rows 200000] [--batch 50000] [--chunk 500]
//
// Both figures share one engine and identical tables (each in its own database):
//   adapter        backend.write(batch) with the batch's chunks as the encoder made them
//                  (@clickhouse/client → chdb Connection → temporary file → INSERT … FROM INFILE,
//                  with the deduplication token and settings the adapter always sends)
//   directFile     one INSERT … FROM INFILE per batch of an already concatenated file, on a bare
//                  chdb Session (what the adapter does, minus the adapter)
//
// There is no in-memory direct path to compare with: chdb's public insert API takes text formats
// only, and its native raw-insert entry, fed RowBinary, fails part-way through ("Cannot read all
// data") on batches of a few MiB.
//
// ratio = adapter rows/s ÷ directFile rows/s (target ≥ 0.8). The encoder, which runs in the
// decode workers, is measured on its own (rows/s on one thread).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../src/config/index.ts';
import type { KeyValue, ResourceInfo, ScopeInfo, SpanRow } from '../src/model/rows.ts';
import type { EncodedChunk } from '../src/storage/backend.ts';
import { createEncoder } from '../src/storage/clickhouse/encoder.ts';
import { createClickhouseBackend } from '../src/storage/clickhouse/index.ts';
import { TRACE_COLUMNS } from '../src/storage/clickhouse/schema.ts';
import { createMetrics } from '../src/telemetry/metrics.ts';
import { clickhouseOptions } from '../src/storage/index.ts';
import { DEFAULT_TENANT as TENANT } from '../src/model/tenant.ts';
import { prng } from '../test/helpers/prng.ts';

export interface BenchOptions {
  rows: number;
  /** Rows per write (the writer's maxBatchRows). */
  batchRows: number;
  /** Rows per encoder call (one OTLP request's worth). */
  chunkRows: number;
}

export interface Figure {
  rows: number;
  seconds: number;
  rowsPerSecond: number;
}

export interface BenchResult {
  scenario: 'clickhouse-write';
  engine: string;
  options: BenchOptions;
  bytesPerRow: number;
  encode: Figure;
  adapter: Figure;
  directFile: Figure;
  /** adapter ÷ direct. */
  ratio: number;
  target: number;
}

/** Spans shaped like SDK traffic: shared resource and scope per request, mixed attribute types, some events. */
export function benchSpans(count: number, chunkRows: number, seed = 5): SpanRow[] {
  const rnd = prng(seed);
  const hex = (n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += Math.floor(rnd() * 16).toString(16);
    return s;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const services = ['checkout', 'cart', 'payment', 'shipping', 'frontend', 'ads', 'recommendation', 'email'];
  const routes = ['/api/cart', '/api/checkout', '/api/products/{id}', '/api/recommendations', '/health', '/api/ads'];
  const base = 1_767_225_600_000_000_000n; // 2026-01-01
  const out: SpanRow[] = [];
  let resource: ResourceInfo | undefined;
  let scope: ScopeInfo | undefined;
  let service = '';
  let traceId = '';
  let rootId = '';
  for (let i = 0; i < count; i++) {
    if (i % chunkRows === 0) {
      service = pick(services);
      resource = {
        attributes: [
          { key: 'service.name', value: { stringValue: service } },
          { key: 'service.version', value: { stringValue: `1.${Math.floor(rnd() * 20)}.0` } },
          { key: 'service.instance.id', value: { stringValue: randomUUIDFrom(hex) } },
          { key: 'host.name', value: { stringValue: `node-${Math.floor(rnd() * 64)}` } },
          { key: 'os.type', value: { stringValue: 'linux' } },
          { key: 'process.pid', value: { intValue: String(1000 + Math.floor(rnd() * 30000)) } },
          { key: 'process.runtime.name', value: { stringValue: 'nodejs' } },
          { key: 'telemetry.sdk.language', value: { stringValue: 'nodejs' } },
          { key: 'telemetry.sdk.name', value: { stringValue: 'opentelemetry' } },
          { key: 'telemetry.sdk.version', value: { stringValue: '2.0.1' } },
        ],
        droppedAttributesCount: 0,
        schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
      };
      scope = { name: '@opentelemetry/instrumentation-http', version: '0.57.0', attributes: [], droppedAttributesCount: 0, schemaUrl: '' };
    }
    const newTrace = i % 8 === 0;
    if (newTrace) {
      traceId = hex(32);
      rootId = hex(16);
    }
    const start = base + BigInt(i) * 1_000_000n + BigInt(Math.floor(rnd() * 1_000_000));
    const duration = BigInt(Math.floor(rnd() * 50_000_000));
    const route = pick(routes);
    const attributes: KeyValue[] = [
      { key: 'http.request.method', value: { stringValue: pick(['GET', 'POST', 'PUT']) } },
      { key: 'http.route', value: { stringValue: route } },
      { key: 'url.full', value: { stringValue: `https://shop.example.com${route}?q=${hex(8)}` } },
      { key: 'http.response.status_code', value: { intValue: String(pick([200, 200, 200, 201, 404, 500])) } },
      { key: 'server.address', value: { stringValue: 'shop.example.com' } },
      { key: 'server.port', value: { intValue: '443' } },
      { key: 'network.protocol.version', value: { stringValue: '1.1' } },
      { key: 'user_agent.original', value: { stringValue: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36' } },
      { key: 'app.cart.items', value: { intValue: String(Math.floor(rnd() * 10)) } },
      { key: 'app.sampled', value: { boolValue: rnd() < 0.5 } },
    ];
    out.push({
      traceId,
      spanId: newTrace ? rootId : hex(16),
      parentSpanId: newTrace ? '' : rootId,
      traceState: '',
      flags: 0x301,
      name: `${pick(['GET', 'POST'])} ${route}`,
      kind: newTrace ? 2 : 3,
      startTimeUnixNano: start,
      endTimeUnixNano: start + duration,
      durationNano: duration,
      statusCode: rnd() < 0.05 ? 2 : 0,
      statusMessage: '',
      serviceName: service,
      resource: resource!,
      scope: scope!,
      attributes,
      droppedAttributesCount: 0,
      events:
        rnd() < 0.2
          ? [{ timeUnixNano: start + 1000n, name: 'exception', attributes: [{ key: 'exception.type', value: { stringValue: 'Error' } }, { key: 'exception.message', value: { stringValue: 'connection reset by peer' } }], droppedAttributesCount: 0 }]
          : [],
      droppedEventsCount: 0,
      links: [],
      droppedLinksCount: 0,
    });
  }
  return out;
}

function randomUUIDFrom(hex: (n: number) => string): string {
  return `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;
}

// The cheapest insert the engine offers: synchronous (chdb defaults to async_insert=1, which a
// server does not) and without deduplication (which, with no token, hashes every block).
const PLAIN = 'SETTINGS async_insert = 0, insert_deduplicate = 0';

function figure(rows: number, seconds: number): Figure {
  return { rows, seconds: Math.round(seconds * 1000) / 1000, rowsPerSecond: Math.round(rows / seconds) };
}

interface Batch {
  rows: number;
  chunks: Uint8Array[];
  /** The chunks concatenated, for the direct path. */
  whole: Buffer;
}

/** Encodes the bench rows on this thread, one call per request-sized chunk; the rows are garbage afterwards. */
function encodeRows(o: BenchOptions): { encode: Figure; chunks: EncodedChunk[] } {
  const spans = benchSpans(o.rows, o.chunkRows);
  const encoder = createEncoder({ partitions: 1 });
  const t = performance.now();
  const chunks: EncodedChunk[] = [];
  for (let i = 0; i < spans.length; i += o.chunkRows) chunks.push(...encoder.encodeSpans(spans.slice(i, i + o.chunkRows)));
  return { encode: figure(o.rows, (performance.now() - t) / 1000), chunks };
}

/** The part of chdb's root module the baseline uses (typed here: chdb is optional). */
interface ChdbSession {
  queryAsync(sql: string, opts?: { format?: string }): Promise<{ text(): string }>;
  close(): void;
}

/** Runs the benchmark and returns its figures. */
export async function run(opts: Partial<BenchOptions> = {}): Promise<BenchResult> {
  const o: BenchOptions = { rows: opts.rows ?? 200_000, batchRows: opts.batchRows ?? 50_000, chunkRows: opts.chunkRows ?? 500 };
  const dir = mkdtempSync(join(tmpdir(), 'tracehouse-bench-ch-'));
  const require = createRequire(import.meta.url);
  try {
    const { encode, chunks } = encodeRows(o);
    const totalBytes = chunks.reduce((n, c) => n + c.data.byteLength, 0);

    // Batches as the writer would hand them over: consecutive chunks up to batchRows. The direct
    // path's concatenations are made here, not while timing: allocating them then triggers full
    // garbage collections whose pauses would land in the direct figure.
    const batches: Batch[] = [];
    for (const c of chunks) {
      const last = batches.at(-1);
      if (last && last.rows + c.rows <= o.batchRows) {
        last.rows += c.rows;
        last.chunks.push(c.data);
      } else batches.push({ rows: c.rows, chunks: [c.data], whole: Buffer.alloc(0) });
    }
    for (const b of batches) b.whole = Buffer.concat(b.chunks);

    const config = loadConfig({
      flags: {
        'storage.backend': 'clickhouse',
        'storage.clickhouse.urls': `chdb://${dir}/engine?database=bench_adapter,chdb://${dir}/engine?database=bench_direct`,
      },
    });
    const backend = createClickhouseBackend(clickhouseOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await backend.start(); // creates both databases' tables the same way
    const { Session } = require('chdb') as { Session: new (path: string) => ChdbSession };
    const session = new Session(join(dir, 'engine'));
    const engine = (await session.queryAsync('SELECT version()', { format: 'TabSeparated' })).text().trim();
    const columns = (cs: readonly string[]) => `(${cs.map((c) => '`' + c + '`').join(', ')})`;
    const directTarget = `bench_direct.otel_traces ${columns(TRACE_COLUMNS)}`;

    // Warm-up: one small batch through each path (first-insert costs are not throughput).
    const warm = batches[0]!.chunks.slice(0, 1);
    await backend.write({ signal: 'traces', partition: 0, tenant: TENANT, rows: 1, bytes: 0, chunks: warm, batchId: randomUUID() });
    writeFileSync(join(dir, 'warm.bin'), warm[0]!);
    await session.queryAsync(`INSERT INTO ${directTarget} FROM INFILE '${join(dir, 'warm.bin')}' ${PLAIN} FORMAT RowBinary`);

    let adapterS = 0;
    let fileS = 0;
    const viaAdapter = async (b: Batch) => {
      const t0 = performance.now();
      const r = await backend.write({ signal: 'traces', partition: 0, tenant: TENANT, rows: b.rows, bytes: 0, chunks: b.chunks, batchId: randomUUID() });
      if (r.kind !== 'success') throw r.error;
      adapterS += (performance.now() - t0) / 1000;
    };
    const direct = async (b: Batch, i: number) => {
      const file = join(dir, `direct-${i}.bin`);
      const t0 = performance.now();
      writeFileSync(file, b.whole);
      await session.queryAsync(`INSERT INTO ${directTarget} FROM INFILE '${file}' ${PLAIN} FORMAT RowBinary`);
      fileS += (performance.now() - t0) / 1000;
      rmSync(file);
    };
    for (const [i, b] of batches.entries()) {
      // Interleaved, each going first in turn, so background merges and drift hit both alike.
      if (i % 2 === 0) {
        await viaAdapter(b);
        await direct(b, i);
      } else {
        await direct(b, i);
        await viaAdapter(b);
      }
    }
    const written = batches.reduce((n, b) => n + b.rows, 0);
    const adapter = figure(written, adapterS);
    const directFile = figure(written, fileS);
    session.close();
    await backend.shutdown(); // also waits for the engine to let go of the directory
    return {
      scenario: 'clickhouse-write',
      engine: `chdb ${engine}`,
      options: o,
      bytesPerRow: Math.round(totalBytes / o.rows),
      encode,
      adapter,
      directFile,
      ratio: Math.round((adapter.rowsPerSecond / directFile.rowsPerSecond) * 100) / 100,
      target: 0.8,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function flag(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const opts: Partial<BenchOptions> = {};
  const rows = flag('rows');
  const batch = flag('batch');
  const chunk = flag('chunk');
  if (rows !== undefined) opts.rows = rows;
  if (batch !== undefined) opts.batchRows = batch;
  if (chunk !== undefined) opts.chunkRows = chunk;
  console.log(JSON.stringify(await run(opts), null, 2));
}
