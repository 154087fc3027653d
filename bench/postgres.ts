// Scenario: spans written through the PostgreSQL adapter (encoder in-process + writeSpans of
// 10k-span batches: COPY into staging, INSERT … ON CONFLICT into daily partitions, trace index)
// against the baseline of a plain COPY of the same rows, encoded the same way, into an
// unpartitioned table with the same columns and indexes, in the same run. Also COPY binary vs
// text, and a baseline without indexes for scale. Prints one JSON object of figures.
//
//   node bench/postgres.ts [--spans=100000] [--rounds=2]
//   TRACEHOUSE_BENCH_POSTGRES_URL=postgres://… node bench/postgres.ts   (else an embedded server)
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig } from '../src/config/index.ts';
import type { KeyValue, ResourceInfo, ScopeInfo, SpanRow } from '../src/model/rows.ts';
import type { StorageBackend } from '../src/storage/backend.ts';
import { SPAN_COLUMNS, columnDefs, columnList, type CopyFormat } from '../src/storage/postgres/columns.ts';
import { copyChunks } from '../src/storage/postgres/copy.ts';
import { createEncoder } from '../src/storage/postgres/encoder.ts';
import { createPostgresBackend } from '../src/storage/postgres/index.ts';
import { createMetrics } from '../src/telemetry/metrics.ts';
import { createTestDatabase, startEmbeddedPostgres } from '../test/helpers/postgres.ts';
import { postgresOptions } from '../src/storage/index.ts';
import { DEFAULT_TENANT as TENANT } from '../src/model/tenant.ts';
import { cliFlag } from './harness.ts';

const BATCH = 10_000;

/** Deterministic pseudo-random numbers, so every run writes the same rows. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SERVICES = ['checkout', 'cart', 'payment', 'inventory', 'shipping', 'frontend', 'auth', 'search', 'recommendation', 'email'];
const ROUTES = ['/api/cart', '/api/orders/{id}', '/api/users/{id}', '/api/products', '/api/search', '/healthz'];

/** Realistic spans: traces of ~10 spans, 10–20 attributes of mixed types, 0–2 events, ~10 resource attributes. */
export function makeSpans(count: number, seed = 1): SpanRow[] {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const hex = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += Math.floor(r() * 256).toString(16).padStart(2, '0');
    return s;
  };
  const resources: ResourceInfo[] = [];
  for (let i = 0; i < 40; i++) {
    const service = SERVICES[i % SERVICES.length]!;
    resources.push({
      attributes: [
        { key: 'service.name', value: { stringValue: service } },
        { key: 'service.version', value: { stringValue: `1.${i % 7}.${i % 13}` } },
        { key: 'service.namespace', value: { stringValue: 'shop' } },
        { key: 'service.instance.id', value: { stringValue: randomBytes(16).toString('hex') } },
        { key: 'deployment.environment.name', value: { stringValue: 'production' } },
        { key: 'host.name', value: { stringValue: `node-${i}.eu-west-1.compute.internal` } },
        { key: 'host.arch', value: { stringValue: 'amd64' } },
        { key: 'os.type', value: { stringValue: 'linux' } },
        { key: 'process.pid', value: { intValue: String(1000 + i * 37) } },
        { key: 'telemetry.sdk.language', value: { stringValue: pick(['java', 'go', 'nodejs', 'python']) } },
      ],
      droppedAttributesCount: 0,
      schemaUrl: 'https://opentelemetry.io/schemas/1.27.0',
    });
  }
  const scope: ScopeInfo = { name: 'io.opentelemetry.http', version: '2.10.0', attributes: [], droppedAttributesCount: 0, schemaUrl: '' };
  const now = BigInt(Date.now()) * 1_000_000n;
  const out: SpanRow[] = [];
  while (out.length < count) {
    const traceId = hex(16);
    const spans = 5 + Math.floor(r() * 11);
    const t0 = now - BigInt(Math.floor(r() * 3_600_000)) * 1_000_000n;
    let parent = '';
    for (let i = 0; i < spans && out.length < count; i++) {
      const resource = pick(resources);
      const spanId = hex(8);
      const start = t0 + BigInt(i) * 1_000_000n + BigInt(Math.floor(r() * 1000));
      const dur = BigInt(Math.floor(r() * 50_000_000));
      const attrs: KeyValue[] = [
        { key: 'http.request.method', value: { stringValue: pick(['GET', 'POST', 'PUT', 'DELETE']) } },
        { key: 'http.route', value: { stringValue: pick(ROUTES) } },
        { key: 'url.full', value: { stringValue: `https://shop.example.com${pick(ROUTES)}?q=${hex(6)}` } },
        { key: 'http.response.status_code', value: { intValue: String(pick([200, 200, 200, 201, 404, 500])) } },
        { key: 'server.address', value: { stringValue: 'shop.example.com' } },
        { key: 'server.port', value: { intValue: '443' } },
        { key: 'network.protocol.version', value: { stringValue: '1.1' } },
        { key: 'user_agent.original', value: { stringValue: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36' } },
        { key: 'client.address', value: { stringValue: `10.${Math.floor(r() * 255)}.${Math.floor(r() * 255)}.${Math.floor(r() * 255)}` } },
        { key: 'app.cache_hit', value: { boolValue: r() < 0.5 } },
      ];
      const extra = Math.floor(r() * 11);
      for (let k = 0; k < extra; k++) {
        switch (k % 5) {
          case 0:
            attrs.push({ key: `app.ratio.${k}`, value: { doubleValue: Math.round(r() * 1e6) / 1e3 } });
            break;
          case 1:
            attrs.push({ key: `app.count.${k}`, value: { intValue: String(Math.floor(r() * 1e9)) } });
            break;
          case 2:
            attrs.push({ key: `app.tags.${k}`, value: { arrayValue: { values: [{ stringValue: 'a' }, { stringValue: hex(3) }] } } });
            break;
          case 3:
            attrs.push({ key: `db.query.text.${k}`, value: { stringValue: `SELECT id, name, price FROM products WHERE id = ${Math.floor(r() * 1e6)}` } });
            break;
          default:
            attrs.push({ key: `app.flag.${k}`, value: { boolValue: r() < 0.3 } });
        }
      }
      const events = [];
      const nEvents = Math.floor(r() * 3);
      for (let e = 0; e < nEvents; e++) {
        events.push({
          timeUnixNano: start + BigInt(e) * 1000n,
          name: e === 0 ? 'exception' : 'cache.miss',
          attributes: [
            { key: 'exception.type', value: { stringValue: 'java.lang.IllegalStateException' } },
            { key: 'exception.message', value: { stringValue: `order ${hex(4)} not found` } },
          ],
          droppedAttributesCount: 0,
        });
      }
      out.push({
        traceId,
        spanId,
        parentSpanId: parent,
        traceState: '',
        flags: 1,
        name: `${pick(['GET', 'POST'])} ${pick(ROUTES)}`,
        kind: i === 0 ? 2 : 3,
        startTimeUnixNano: start,
        endTimeUnixNano: start + dur,
        durationNano: dur,
        statusCode: r() < 0.05 ? 2 : 0,
        statusMessage: '',
        serviceName: (resource.attributes[0]!.value as { stringValue: string }).stringValue,
        resource,
        scope,
        attributes: attrs,
        droppedAttributesCount: 0,
        events,
        droppedEventsCount: 0,
        links: [],
        droppedLinksCount: 0,
      });
      if (i === 0) parent = spanId;
    }
  }
  return out;
}

interface Rate {
  /** Wall clock, encoding and writing one batch after the other. */
  spansPerSec: number;
  encodeMs: number;
  writeMs: number;
  /** CPU of this process (encoder, adapter, pg driver) per span. */
  clientCpuUsPerSpan: number;
  /** CPU of every PostgreSQL process per span (local servers only; 0 when unknown). */
  serverCpuUsPerSpan: number;
  /** Spans per second of CPU, client and server together: what the run costs, whatever else the machine does. */
  spansPerCpuSec: number;
}

/** CPU milliseconds of a local PostgreSQL: the postmaster, its reaped children and its live ones. */
function serverCpuMs(postmaster: number | undefined): number {
  if (postmaster === undefined) return 0;
  const fields = (pid: number | string): string[] | undefined => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    } catch {
      return undefined;
    }
  };
  const pm = fields(postmaster);
  if (!pm) return 0;
  // After "comm)": state ppid … utime(11) stime(12) cutime(13) cstime(14), in clock ticks (100 Hz).
  let ticks = Number(pm[11]) + Number(pm[12]) + Number(pm[13]) + Number(pm[14]);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = fields(d);
    if (f && Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks * 10;
}

class Meter {
  private readonly postmaster: number | undefined;
  private readonly c0 = process.cpuUsage();
  private readonly s0: number;
  constructor(postmaster: number | undefined) {
    this.postmaster = postmaster;
    this.s0 = serverCpuMs(postmaster);
  }
  rate(spans: number, encodeMs: number, writeMs: number): Rate {
    const c = process.cpuUsage(this.c0);
    const clientMs = (c.user + c.system) / 1000;
    const serverMs = serverCpuMs(this.postmaster) - this.s0;
    return {
      spansPerSec: Math.round(spans / ((encodeMs + writeMs) / 1000)),
      encodeMs: Math.round(encodeMs),
      writeMs: Math.round(writeMs),
      clientCpuUsPerSpan: Math.round((clientMs * 1000) / spans),
      serverCpuUsPerSpan: Math.round((serverMs * 1000) / spans),
      spansPerCpuSec: Math.round(spans / ((clientMs + serverMs) / 1000)),
    };
  }
}

function batches(spans: SpanRow[]): SpanRow[][] {
  const out: SpanRow[][] = [];
  for (let i = 0; i < spans.length; i += BATCH) out.push(spans.slice(i, i + BATCH));
  return out;
}

async function throughAdapter(url: string, schema: string, format: CopyFormat, spans: SpanRow[], postmaster?: number): Promise<Rate> {
  const config = loadConfig({
    flags: { 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.schema': schema, 'storage.postgres.copyFormat': format },
  });
  const backend: StorageBackend = createPostgresBackend(postgresOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await backend.start();
  try {
    const enc = createEncoder(postgresOptions(config).copyFormat === 'text' ? { format: 'text' } : { format: 'binary' });
    const meter = new Meter(postmaster);
    let encodeMs = 0;
    let writeMs = 0;
    let n = 0;
    for (const rows of batches(spans)) {
      const t0 = performance.now();
      const chunks = enc.encodeSpans(rows);
      const t1 = performance.now();
      const r = await backend.write({
        signal: 'traces',
        partition: 0,
        tenant: TENANT,
        rows: rows.length,
        bytes: chunks.reduce((s, c) => s + c.data.byteLength, 0),
        chunks: chunks.map((c) => c.data),
        batchId: `bench-${schema}-${n++}`,
      });
      const t2 = performance.now();
      if (r.kind !== 'success') throw new Error(`adapter write failed: ${r.error.message}`);
      encodeMs += t1 - t0;
      writeMs += t2 - t1;
    }
    return meter.rate(spans.length, encodeMs, writeMs);
  } finally {
    await backend.shutdown();
  }
}

/** The baseline: the same encoded rows COPYed straight into one plain table. */
async function plainCopy(url: string, table: string, format: CopyFormat, indexes: boolean, spans: SpanRow[], postmaster?: number): Promise<Rate> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE ${table} (${columnDefs(SPAN_COLUMNS)})`);
    if (indexes) {
      // The same indexes the adapter's spans table has.
      await client.query(`CREATE UNIQUE INDEX ON ${table} (trace_id, span_id, start_time_unix_nano)`);
      await client.query(`CREATE INDEX ON ${table} (left(service_name, 256), start_time_unix_nano)`);
      await client.query(`CREATE INDEX ON ${table} (start_time_unix_nano)`);
      await client.query(`CREATE INDEX ON ${table} USING gin (attr_tokens)`);
    }
    const enc = createEncoder({ format });
    const cols = columnList(SPAN_COLUMNS);
    const meter = new Meter(postmaster);
    let encodeMs = 0;
    let writeMs = 0;
    for (const rows of batches(spans)) {
      const t0 = performance.now();
      const chunks = enc.encodeSpans(rows);
      const t1 = performance.now();
      await copyChunks(client as unknown as pg.PoolClient, table, cols, chunks.map((c) => c.data), format);
      const t2 = performance.now();
      encodeMs += t1 - t0;
      writeMs += t2 - t1;
    }
    return meter.rate(spans.length, encodeMs, writeMs);
  } finally {
    await client.end();
  }
}

function best(rates: Rate[]): Rate {
  return rates.reduce((a, b) => (b.spansPerSec > a.spansPerSec ? b : a));
}

export interface PostgresBenchFigures {
  scenario: 'postgres-write';
  spans: number;
  batchRows: number;
  rounds: number;
  server: string;
  /** Through the adapter, binary COPY (the default). */
  adapterBinary: Rate;
  adapterText: Rate;
  /** Baseline: plain COPY of the same rows into an unpartitioned table with the same indexes. */
  plainCopyBinary: Rate;
  plainCopyText: Rate;
  /** For scale: plain COPY into a table without any index. */
  plainCopyBinaryNoIndexes: Rate;
  /** adapterBinary / plainCopyBinary spans per second (target ≥ 0.7). */
  ratio: number;
  /** Same, counting only the time in writeSpans / COPY (encoding runs in the workers in production). */
  ratioWriteOnly: number;
  /** adapterBinary / plainCopyBinary spans per CPU second (client + server), null for a remote server. */
  ratioCpu: number | null;
  /** Binary over text COPY, through the adapter and plain. */
  binaryOverTextAdapter: number;
  binaryOverTextPlain: number;
  binaryOverTextAdapterCpu: number | null;
}

/** Runs the scenario and returns its figures. */
export async function run(opts: { spans?: number; rounds?: number; url?: string } = {}): Promise<PostgresBenchFigures> {
  const total = opts.spans ?? 100_000;
  const rounds = opts.rounds ?? 2;
  const external = opts.url ?? process.env['TRACEHOUSE_BENCH_POSTGRES_URL'];
  // Durable settings (fsync on) unless the caller brings a server: the figures should be real.
  const server = external ? undefined : await startEmbeddedPostgres({ fast: false });
  try {
    const serverUrl = external ?? server!.url;
    const url = await createTestDatabase('bench', serverUrl);
    const spans = makeSpans(total);
    const version = await (async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const v = (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
      await c.end();
      return v;
    })();
    const pm = server?.pid();
    // Warm up both paths (JIT, caches) on a small set.
    const warm = makeSpans(BATCH, 99);
    await throughAdapter(url, 'warmup', 'binary', warm, pm);
    await plainCopy(url, 'warmup_plain', 'binary', true, warm, pm);

    const r = { ab: [] as Rate[], at: [] as Rate[], pb: [] as Rate[], pt: [] as Rate[], pn: [] as Rate[] };
    for (let i = 0; i < rounds; i++) {
      // Interleaved, each into fresh tables, so drift hits every variant alike.
      r.pb.push(await plainCopy(url, `plain_bin_${i}`, 'binary', true, spans, pm));
      r.ab.push(await throughAdapter(url, `adapter_bin_${i}`, 'binary', spans, pm));
      r.pt.push(await plainCopy(url, `plain_text_${i}`, 'text', true, spans, pm));
      r.at.push(await throughAdapter(url, `adapter_text_${i}`, 'text', spans, pm));
      r.pn.push(await plainCopy(url, `plain_noidx_${i}`, 'binary', false, spans, pm));
    }
    const adapterBinary = best(r.ab);
    const adapterText = best(r.at);
    const plainCopyBinary = best(r.pb);
    const plainCopyText = best(r.pt);
    const cpu = (rs: Rate[]): number => Math.max(...rs.map((x) => x.spansPerCpuSec));
    const round2 = (x: number): number => Math.round(x * 100) / 100;
    return {
      scenario: 'postgres-write',
      spans: total,
      batchRows: BATCH,
      rounds,
      server: `PostgreSQL ${version}${external ? '' : ' (embedded, fsync on)'}`,
      adapterBinary,
      adapterText,
      plainCopyBinary,
      plainCopyText,
      plainCopyBinaryNoIndexes: best(r.pn),
      ratio: round2(adapterBinary.spansPerSec / plainCopyBinary.spansPerSec),
      ratioWriteOnly: round2(plainCopyBinary.writeMs / adapterBinary.writeMs),
      ratioCpu: pm === undefined ? null : round2(cpu(r.ab) / cpu(r.pb)),
      binaryOverTextAdapter: round2(adapterBinary.spansPerSec / adapterText.spansPerSec),
      binaryOverTextPlain: round2(plainCopyBinary.spansPerSec / plainCopyText.spansPerSec),
      binaryOverTextAdapterCpu: pm === undefined ? null : round2(cpu(r.ab) / cpu(r.at)),
    };
  } finally {
    await server?.destroy();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string): number | undefined => {
    const a = cliFlag(name);
    return a ? Number(a) : undefined;
  };
  const spans = arg('spans');
  const rounds = arg('rounds');
  const figures = await run({ ...(spans !== undefined ? { spans } : {}), ...(rounds !== undefined ? { rounds } : {}) });
  console.log(JSON.stringify(figures, null, 2));
}
