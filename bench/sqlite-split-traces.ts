// Scenario: the SQLite store's write when a trace's spans arrive over several batches, as they
// do from services that each export their own spans. The store keeps each span once, so a run of a
// trace it has stored spans of must be checked against them (RecentTraces in
// src/storage/sqlite/store.ts, else a read of the trace's stored spans). The bench's traffic
// sends whole traces of one service per request and never meets that; this does, through the
// store's write path (SqliteStore.writeSpans, in-process, one thread), in three layouts of the
// same spans (traces of ten spans, batches of 1,000):
//   - whole: every trace's spans in one batch (what the bench's traffic does);
//   - services: three services per trace (4, 3 and 3 spans), each service's spans a batch
//     after the one before;
//   - spans: each span of a trace a batch after the one before (a long trace fed a span at a time);
//   - long: the same spans as ten traces of a tenth each, every batch 100 spans of each (a long
//     job's trace, exported as it runs: past RecentTraces' length, so each run reads its trace);
//   - counter: long, with span ids from a counter (0000000000000001, ...), whose first four bytes
//     are the same for every span;
//   - resent: long, each batch sent again right after it with its spans in runs of one span (the
//     traces interleaved, as an SDK's batch has them): a retried export of long traces.
// Each layout's batches are encoded once, into a file, and written through a store in a child
// process of its own per run, `--runs` times (a new database each time), so that nothing the
// encoder runs shares a module with the store; with --base-tree=<checkout> that checkout's store is
// run beside this one's, the two alternating. Prints the write's CPU-µs per span per layout and
// store (the child's CPU around its writes), the median of the runs. Not part of `npm run bench`
// (a few minutes).
//
//   node bench/sqlite-split-traces.ts [--traces=20000] [--runs=5] [--layouts=whole,services,spans] [--base-tree=<checkout>]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { SpanRow } from '../src/model/rows.ts';
import type { SqliteStore, openDatabase } from '../src/storage/sqlite/store.ts';
import { cliFlag } from './harness.ts';
import { alternateTrees, benchTrees, layoutsFlag, printMedians } from './tree-pairs.ts';

type StoreModule = { openDatabase: typeof openDatabase; SqliteStore: typeof SqliteStore };

// The child: writes the batches in --batches=<file> through the store of --tree into --db, prints its CPU-µs per span.
const CHILD_BATCHES = cliFlag('batches');
if (CHILD_BATCHES !== undefined) {
  const code = (await import(pathToFileURL(join(cliFlag('tree')!, 'src/storage/sqlite/store.ts')).href)) as StoreModule;
  const file = readFileSync(CHILD_BATCHES);
  const batches: Uint8Array[][] = [];
  let spans = 0;
  for (let at = 0; at < file.length; ) {
    const chunks: Uint8Array[] = [];
    const n = file.readUInt32LE(at);
    spans += file.readUInt32LE(at + 4);
    at += 8;
    for (let i = 0; i < n; i++) {
      const len = file.readUInt32LE(at);
      chunks.push(new Uint8Array(file.subarray(at + 4, at + 4 + len)));
      at += 4 + len;
    }
    batches.push(chunks);
  }
  const db = code.openDatabase(cliFlag('db')!);
  const store = new code.SqliteStore(db);
  const c0 = process.cpuUsage();
  for (const b of batches) {
    const r = store.writeSpans(b);
    if (r.kind !== 'success') throw new Error(`write failed: ${r.kind}`);
  }
  const c = process.cpuUsage(c0);
  db.close();
  console.log(((c.user + c.system) / spans).toFixed(4));
  process.exit(0);
}

const { createEncoder } = await import('../src/pipeline/transcode/otlp/rows.ts');
const { makeSpan } = await import('../test/helpers/rows.ts');

const TRACES = Number(cliFlag('traces') ?? 20_000);
const RUNS = Number(cliFlag('runs') ?? 5);
const SPANS = 10;
const BATCH = 1000;
const PER_BATCH = BATCH / SPANS;
const ALL_LAYOUTS = ['whole', 'services', 'spans', 'long', 'counter', 'resent'] as const;
const LONG_TRACES = 10;
type Layout = (typeof ALL_LAYOUTS)[number];
const LAYOUTS = layoutsFlag(ALL_LAYOUTS);
const stores = benchTrees();

const serviceOf = (layout: Layout, i: number): number => (layout === 'services' ? (i < 4 ? 0 : i < 7 ? 1 : 2) : 0);
// One resource and scope per service, as in a request.
const templates = [0, 1, 2].map((s) => makeSpan({ serviceName: `svc-${s}`, events: [], links: [] }));
const now = BigInt(Date.now()) * 1_000_000n;
const newTraces = (count: number, spans: number) => Array.from({ length: count }, () => ({ id: randomBytes(16).toString('hex'), spans: Array.from({ length: spans }, () => randomBytes(8).toString('hex')) }));
const traces = newTraces(TRACES, SPANS);
const longTraces = newTraces(LONG_TRACES, (TRACES * SPANS) / LONG_TRACES);
const counterTraces = longTraces.map((t, n) => ({ id: t.id, spans: t.spans.map((_, i) => (n * t.spans.length + i + 1).toString(16).padStart(16, '0')) }));

/** The (trace, span) pairs of each batch, in the layout's order. */
function order(layout: Layout): [number, number][][] {
  const out: [number, number][] = [];
  if (layout === 'whole') for (let t = 0; t < TRACES; t++) for (let i = 0; i < SPANS; i++) out.push([t, i]);
  else if (layout === 'long' || layout === 'counter' || layout === 'resent') {
    const each = BATCH / LONG_TRACES;
    for (let first = 0; first < longTraces[0]!.spans.length; first += each) {
      for (let t = 0; t < LONG_TRACES; t++) for (let i = first; i < first + each; i++) out.push([t, i]);
      if (layout === 'resent') for (let i = first; i < first + each; i++) for (let t = 0; t < LONG_TRACES; t++) out.push([t, i]);
    }
  } else {
    // Batch k holds part p of the traces that started k - p batches ago.
    const parts = layout === 'services' ? 3 : SPANS;
    const part = (i: number): number => (layout === 'services' ? serviceOf(layout, i) : i);
    for (let k = 0; k < TRACES / PER_BATCH + parts; k++) {
      for (let p = 0; p < parts; p++) {
        const first = (k - p) * PER_BATCH;
        for (let t = Math.max(0, first); t < Math.min(TRACES, first + PER_BATCH); t++) for (let i = 0; i < SPANS; i++) if (part(i) === p) out.push([t, i]);
      }
    }
  }
  const batches: [number, number][][] = [];
  for (let b = 0; b < out.length; b += BATCH) batches.push(out.slice(b, b + BATCH));
  return batches;
}

const encoder = createEncoder({});
/** The layout's batches into a file: per batch its chunk count and spans, then each chunk's length and bytes. */
function encode(layout: Layout, file: string): void {
  const parts: Buffer[] = [];
  const u32 = (...ns: number[]): Buffer => {
    const b = Buffer.alloc(4 * ns.length);
    ns.forEach((n, i) => b.writeUInt32LE(n, 4 * i));
    return b;
  };
  for (const batch of order(layout)) {
    const spans: SpanRow[] = batch.map(([t, i]) => {
      const tpl = templates[serviceOf(layout, i)]!;
      const tr = (layout === 'long' || layout === 'resent' ? longTraces : layout === 'counter' ? counterTraces : traces)[t]!;
      const start = now + BigInt(t * 1000 + i);
      return { ...tpl, traceId: tr.id, spanId: tr.spans[i]!, parentSpanId: i === 0 ? '' : tr.spans[0]!, startTimeUnixNano: start, endTimeUnixNano: start + 5000n, durationNano: 5000n };
    });
    const chunks = encoder.encodeSpans(spans).map((c) => c.data);
    parts.push(u32(chunks.length, spans.length));
    for (const c of chunks) parts.push(u32(c.byteLength), Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  }
  writeFileSync(file, Buffer.concat(parts));
}

const dir = mkdtempSync(join(tmpdir(), 'tracehouse-bench-split-'));
const results = new Map<string, number[]>();
try {
  for (const layout of LAYOUTS) {
    const batches = join(dir, `${layout}.batches`);
    encode(layout, batches);
    alternateTrees(results, layout, RUNS, stores, (tree, name, run) => {
      const db = join(dir, `${layout}-${name}-${run}.db`);
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), `--batches=${batches}`, `--tree=${tree}`, `--db=${db}`], { encoding: 'utf8' });
      rmSync(db, { force: true });
      rmSync(`${db}-traces`, { force: true });
      return Number(out.trim());
    });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${TRACES * SPANS} spans in batches of ${BATCH}, the store's write in CPU-µs per span (median of ${RUNS}; every run):`);
printMedians(results, 2);
