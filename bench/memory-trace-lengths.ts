// Scenario: the memory store's write by the length of traces and how they arrive. To keep each
// span once it checks a trace's stored span ids: by a walk of the trace up to IDS_SET_FROM spans,
// past that in a set of the trace's ids (IdSet in src/storage/id-set.ts). The bench's
// traffic (traces of 3-30 spans) never reaches the set; this does, in three layouts of 200k spans
// in batches of 1,000, written three times over through a store that holds 70,000 spans (so
// eviction takes ids out of the sets too):
//   - whole: traces of ten spans, each in one batch;
//   - t100: traces of 100 spans, each in one batch;
//   - long: ten traces of 20,000 spans, every batch 100 spans of each (a long job's trace).
// Each run is a child process of its own, which encodes its batches (before its clock starts)
// and writes them through the store of --tree; with --base-tree=<checkout> that checkout's store
// runs beside this one's, the two alternating. Prints the write's CPU-µs per span (the child's
// CPU around its writes), the median of the runs. Not part of `npm run bench` (about a minute).
//
//   node bench/memory-trace-lengths.ts [--runs=3] [--layouts=whole,t100,long] [--base-tree=<checkout>]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cliFlag } from './harness.ts';
import { alternateTrees, benchTrees, layoutsFlag, printMedians } from './tree-pairs.ts';

const ALL_LAYOUTS = ['whole', 't100', 'long'] as const;
type Layout = (typeof ALL_LAYOUTS)[number];
const SPANS = 200_000;
const BATCH = 1000;
const ROUNDS = 3;

// The child: writes the layout's batches through the store of --tree, prints its CPU-µs per span.
const CHILD_LAYOUT = cliFlag('child-layout') as Layout | undefined;
if (CHILD_LAYOUT !== undefined) {
  const tree = cliFlag('tree')!;
  const from = (p: string) => import(pathToFileURL(join(tree, p)).href);
  const { pino } = await import('pino');
  const { loadConfig } = await from('src/config/index.ts');
  const { DEFAULT_TENANT } = await from('src/model/tenant.ts');
  const { createEncoder } = await from('src/pipeline/transcode/otlp/rows.ts');
  const { memoryOptions } = await from('src/storage/index.ts');
  const { createMemoryBackend } = await from('src/storage/memory/index.ts');
  const { createMetrics } = await from('src/telemetry/metrics.ts');
  const { makeSpan } = await from('test/helpers/rows.ts');

  const [traces, length] = CHILD_LAYOUT === 'long' ? [10, SPANS / 10] : CHILD_LAYOUT === 't100' ? [SPANS / 100, 100] : [SPANS / 10, 10];
  const ids = Array.from({ length: traces }, () => randomBytes(16).toString('hex'));
  const order: [number, number][] = [];
  if (CHILD_LAYOUT === 'long') for (let f = 0; f < length; f += 100) for (let t = 0; t < traces; t++) for (let i = f; i < f + 100; i++) order.push([t, i]);
  else for (let t = 0; t < traces; t++) for (let i = 0; i < length; i++) order.push([t, i]);
  const template = makeSpan({ serviceName: 'svc', events: [], links: [] });
  const now = BigInt(Date.now()) * 1_000_000n;
  const encoder = createEncoder({});
  const batches: Uint8Array[][] = [];
  for (let b = 0; b < SPANS; b += BATCH) {
    const spans = order.slice(b, b + BATCH).map(([t, i]) => {
      const start = now + BigInt(i);
      return { ...template, traceId: ids[t]!, spanId: randomBytes(8).toString('hex'), parentSpanId: '', startTimeUnixNano: start, endTimeUnixNano: start + 5000n, durationNano: 5000n };
    });
    batches.push(encoder.encodeSpans(spans).map((c: { data: Uint8Array }) => c.data));
  }
  // The store releases an evicted chunk's buffer: each round writes copies, made before the clock starts.
  const rounds = Array.from({ length: ROUNDS }, () => batches.map((b) => b.map((c) => c.slice())));
  const config = loadConfig({ flags: { 'storage.backend': 'memory', 'storage.memory.maxSpans': '70000' } });
  const store = createMemoryBackend(memoryOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await store.start();
  const c0 = process.cpuUsage();
  let n = 0;
  for (const round of rounds) {
    for (const chunks of round) {
      const r = await store.write({ signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows: BATCH, bytes: 1, chunks, batchId: `b${n++}` });
      if (r.kind !== 'success') throw new Error(`write failed: ${r.kind}`);
    }
  }
  const c = process.cpuUsage(c0);
  await store.shutdown();
  console.log(((c.user + c.system) / (SPANS * ROUNDS)).toFixed(4));
  process.exit(0);
}

const RUNS = Number(cliFlag('runs') ?? 3);
const stores = benchTrees();
const results = new Map<string, number[]>();
for (const layout of layoutsFlag(ALL_LAYOUTS)) {
  alternateTrees(results, layout, RUNS, stores, (tree) => Number(execFileSync(process.execPath, [fileURLToPath(import.meta.url), `--child-layout=${layout}`, `--tree=${tree}`], { encoding: 'utf8' }).trim()));
}
console.log(`${SPANS} spans in batches of ${BATCH}, written ${ROUNDS} times through a store of 70,000: the write in CPU-µs per span (median of ${RUNS}; every run):`);
printMedians(results, 3);
