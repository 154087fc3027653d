// Scenario: one huge trace read through the read API, cut to query.maxSpansPerTrace. What the
// read holds the collector's event loop (ingest, /healthz, gRPC) for: the largest event-loop delay
// while GET /v1/traces/{id} of a 100,000-span trace answers its 100 earliest spans, on the memory
// store (which decodes on the main thread) and on SQLite (its read thread, then the rows it sends).
// With --base-tree=<checkout> the same read runs against that checkout's code too, alternating,
// each run a child process of its own. Not part of `npm run bench` (about a minute).
//
//   node bench/trace-read.ts [--runs=3] [--spans=100000] [--base-tree=<checkout>]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cliFlag } from './harness.ts';

const STORES = ['memory', 'sqlite'] as const;
const MAX_SPANS = 100;
const BATCH = 5000;

// The child: writes the trace into a store of --tree, reads it once to warm up, then measures one read.
const CHILD_STORE = cliFlag('child-store');
if (CHILD_STORE !== undefined) {
  const tree = cliFlag('tree')!;
  const spans = Number(cliFlag('spans'));
  const from = (p: string) => import(pathToFileURL(join(tree, p)).href);
  const { pino } = await import('pino');
  const { loadConfig } = await from('src/config/index.ts');
  const { DEFAULT_TENANT } = await from('src/model/tenant.ts');
  const { createEncoder } = await from('src/pipeline/transcode/otlp/rows.ts');
  const { QueryServer } = await from('src/query/server.ts');
  const { createBackend } = await from('src/storage/index.ts');
  const { createMetrics } = await from('src/telemetry/metrics.ts');
  const { makeSpan } = await from('test/helpers/rows.ts');
  const dir = mkdtempSync(join(tmpdir(), 'trace-read-'));
  const logger = pino({ level: 'silent' });
  const flags = { 'storage.backend': CHILD_STORE, 'storage.sqlite.path': join(dir, 'th.db'), 'storage.memory.maxSpans': String(2 * spans) };
  const store = await createBackend(loadConfig({ flags }), { logger, metrics: createMetrics() });
  await store.start();
  const traceId = randomBytes(16).toString('hex');
  const template = makeSpan({ traceId, serviceName: 'job', attributes: [{ key: 'step', value: { intValue: '1' } }], events: [], links: [] });
  const now = BigInt(Date.now()) * 1_000_000n;
  const encoder = createEncoder({});
  for (let b = 0; b < spans; b += BATCH) {
    const rows = Array.from({ length: Math.min(BATCH, spans - b) }, (_, i) => ({ ...template, spanId: randomBytes(8).toString('hex'), startTimeUnixNano: now + BigInt(b + i), endTimeUnixNano: now + BigInt(b + i) + 5000n, durationNano: 5000n }));
    const chunks = encoder.encodeSpans(rows).map((c: { data: Uint8Array }) => c.data);
    const r = await store.write({ signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows: rows.length, bytes: 1, chunks, batchId: `b${b}` });
    if (r.kind !== 'success') throw new Error(`write failed: ${r.kind}`);
  }
  const server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 100, maxSpansPerTrace: MAX_SPANS }, store, logger);
  await server.start();
  const read = async () => {
    const body = (await (await fetch(`http://127.0.0.1:${server.boundPort}/v1/traces/${traceId}`)).json()) as { warnings?: string[] };
    if (!body.warnings?.[0]?.includes(`${MAX_SPANS} earliest of its ${spans}`)) throw new Error(`not cut as expected: ${JSON.stringify(body.warnings)}`);
  };
  await read();
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  await read();
  h.disable();
  await server.shutdown();
  await store.shutdown();
  rmSync(dir, { recursive: true, force: true });
  console.log((h.max / 1e6).toFixed(1));
  process.exit(0);
}

const RUNS = Number(cliFlag('runs') ?? 3);
const SPANS = Number(cliFlag('spans') ?? 100_000);
const here = fileURLToPath(new URL('..', import.meta.url));
const trees: [string, string][] = [['this', here]];
const base = cliFlag('base-tree');
if (base !== undefined) trees.push(['base', base]);
for (const store of STORES) {
  const ms = new Map<string, number[]>(trees.map(([name]) => [name, []]));
  for (let r = 0; r < RUNS; r++) {
    for (const [name, tree] of trees) {
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), `--child-store=${store}`, `--tree=${tree}`, `--spans=${SPANS}`], { encoding: 'utf8' });
      ms.get(name)!.push(Number(out.trim().split('\n').pop()));
    }
  }
  for (const [name, values] of ms) {
    const sorted = [...values].sort((a, b) => a - b);
    console.log(`${store} ${name}: largest event-loop delay of a read cut to ${MAX_SPANS} of ${SPANS} spans, median ${sorted[Math.floor(sorted.length / 2)]} ms (runs ${values.join(', ')})`);
  }
}
