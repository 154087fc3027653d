// The memory store's write alone, in one thread: CPU per span (or log record) of store.write()
// for chunks the `otlp` transcoder made beforehand from the bench traffic (fresh trace ids for
// each request), into a store small enough to evict all along. Each round writes every chunk into
// a new store, on copies made before its clock starts: 300 requests' chunks (~110 MB) are more
// than the caches hold, so the store reads most of them from memory, as it reads a decode
// worker's from another core. Changes to the store's ingest are smaller than the collector's runs
// can show; this shows them.
//
//   node bench/memory-write.ts [--signal=traces|logs] [--requests=300] [--rounds=25] [--max-mib=48] [--tree=<checkout>]
//
// --tree measures another checkout's store and transcoder (bench/ab.ts --memory-write passes a
// worktree of the revision it compares against). Prints one JSON line: each round's CPU-µs per
// item, the fastest, the lower quartile and the median (the first round, which warms the JIT up,
// is left out of the three).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { DEFAULT_TENANT } from '../src/model/tenant.ts';
import type * as MemoryStore from '../src/storage/memory/index.ts';
import type * as Metrics from '../src/telemetry/metrics.ts';
import type * as OtlpTranscoder from '../src/pipeline/transcode/otlp/proto.ts';
import { REPO_DIR } from './harness.ts';
import { roundSummary } from './stats.ts';
import { defaultSpec, loadTraffic, stampTraceIds, type BenchSignal } from './traffic.ts';

const { values: args } = parseArgs({
  options: {
    signal: { type: 'string', default: 'traces' },
    requests: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '25' },
    'max-mib': { type: 'string', default: '48' },
    tree: { type: 'string', default: REPO_DIR },
  },
});
const signal = args.signal as BenchSignal;
if (signal !== 'traces' && signal !== 'logs') throw new Error(`--signal must be traces or logs, not ${JSON.stringify(args.signal)}`);
const requests = Number(args.requests);
const rounds = Number(args.rounds);
const maxMiB = Number(args['max-mib']);
if (!(requests >= 1 && rounds >= 2 && maxMiB > 0)) throw new Error('--requests must be at least 1, --rounds at least 2 and --max-mib above 0');

const tree = pathToFileURL(resolve(args.tree) + '/');
const { createMemoryBackend } = (await import(new URL('src/storage/memory/index.ts', tree).href)) as typeof MemoryStore;
const { createMetrics } = (await import(new URL('src/telemetry/metrics.ts', tree).href)) as typeof Metrics;
const transcoder = (await import(new URL('src/pipeline/transcode/otlp/proto.ts', tree).href)) as typeof OtlpTranscoder;
const transcode = signal === 'traces' ? transcoder.transcodeTracesProto : transcoder.transcodeLogsProto;

const traffic = loadTraffic(defaultSpec(signal));
const batches: { chunks: Uint8Array[]; rows: number }[] = [];
for (let i = 0; i < requests; i++) {
  const e = transcode(stampTraceIds(traffic[i % traffic.length]!, 1, i), { maxNestingDepth: 100 });
  batches.push({ chunks: e.chunks.map((c) => c.data), rows: e.accepted });
}

const perItem: number[] = [];
for (let round = 0; round < rounds; round++) {
  const store = createMemoryBackend({ maxSpans: 100_000_000, maxLogs: 100_000_000, maxBytes: maxMiB * 2 ** 20, maxAgeMs: 0 }, { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await store.start();
  const copies = batches.map((b) => b.chunks.map((c) => c.slice()));
  let items = 0;
  const t0 = process.cpuUsage();
  for (let i = 0; i < batches.length; i++) {
    const b = batches[i]!;
    const result = await store.write({ signal, partition: 0, tenant: DEFAULT_TENANT, rows: b.rows, bytes: 0, chunks: copies[i]!, batchId: `r${round}-${i}` });
    if (result.kind !== 'success') throw new Error(`the store refused a write: ${result.kind}`);
    items += b.rows;
  }
  const t = process.cpuUsage(t0);
  perItem.push((t.user + t.system) / items);
  await store.shutdown();
}
console.log(JSON.stringify({ signal, tree: args.tree, cpuUsPerItem: perItem.map((x) => Number(x.toPrecision(3))), ...roundSummary(perItem.slice(1)) }));
