// Two checkouts' decode-worker transcoders in one process, their rounds alternating: CPU per item
// of RequestEncoder.encode() over the bench traffic (protobuf requests), in one thread. Both
// trees' modules are loaded side by side (each has its own module state), so both sides share
// the process, its heap and the same minutes of the host; a change to a transcoder is smaller
// than the collector's runs can show, and separate processes add their own variance.
//
//   node bench/transcoder-pair.ts --base-tree=<checkout> [--change-tree=<checkout>]
//                                 [--encoder=otlp|postgres|clickhouse] [--shards=1] [--signal=traces|logs] [--rounds=16]
//
// postgres is binary COPY, clickhouse RowBinary into one shard (--shards: that many). bench/ab.ts
// --transcoder passes a worktree of the revision it compares against as the base. Prints one
// JSON line per side: the fastest round, the lower quartile and the median in CPU-µs per item
// (warm-up passes left out).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type * as Registry from '../src/pipeline/transcode/registry.ts';
import { REPO_DIR, TRANSCODER_SPECS, transcoderSpec } from './harness.ts';
import { roundSummary } from './stats.ts';
import { defaultSpec, loadTraffic, type BenchSignal } from './traffic.ts';

const { values: args } = parseArgs({
  options: {
    'base-tree': { type: 'string' },
    'change-tree': { type: 'string', default: REPO_DIR },
    encoder: { type: 'string', default: 'otlp' },
    shards: { type: 'string', default: '1' },
    signal: { type: 'string', default: 'traces' },
    rounds: { type: 'string', default: '16' },
  },
});

const spec = transcoderSpec(args.encoder, Number(args.shards));
if (spec === undefined) throw new Error(`--encoder must be one of ${Object.keys(TRANSCODER_SPECS).join(', ')}, not ${JSON.stringify(args.encoder)}`);
const signal = args.signal as BenchSignal;
if (signal !== 'traces' && signal !== 'logs') throw new Error(`--signal must be traces or logs, not ${JSON.stringify(args.signal)}`);
const rounds = Number(args.rounds);
if (!(rounds >= 4)) throw new Error(`--rounds must be at least 4, not ${JSON.stringify(args.rounds)}`);
if (args['base-tree'] === undefined) throw new Error('--base-tree=<checkout> is required');

const sides = { base: args['base-tree'], change: args['change-tree'] };
const encoders = await Promise.all(
  Object.values(sides).map(async (tree) => {
    const registry = (await import(new URL('src/pipeline/transcode/registry.ts', pathToFileURL(resolve(tree) + '/')).href)) as typeof Registry;
    return registry.loadRequestEncoder(spec, { maxNestingDepth: 100 });
  }),
);

const requests = loadTraffic(defaultSpec(signal));
let items = 0;
for (const r of requests) items += r.items;
const encodeAll = (side: number): void => {
  for (const r of requests) encoders[side]!.encode(signal, 'protobuf', r.bytes);
};
const w0 = performance.now();
for (let warm = 0; warm < 3; warm++) for (let side = 0; side < 2; side++) encodeAll(side);
// A round passes over the traffic often enough to last ~250 ms: the thread's CPU time is counted
// in scheduler ticks (4 ms here), which would quantize a single pass of a few milliseconds.
const passes = Math.max(1, Math.ceil(250 / ((performance.now() - w0) / 6)));

const perItem: number[][] = [[], []];
for (let round = 0; round < rounds; round++) {
  // Which side goes first alternates, so a host speeding up or slowing down favours neither.
  for (let k = 0; k < 2; k++) {
    const side = (round + k) % 2;
    const t0 = process.threadCpuUsage();
    for (let n = 0; n < passes; n++) encodeAll(side);
    const t = process.threadCpuUsage(t0);
    perItem[side]!.push((t.user + t.system) / (items * passes));
  }
}
Object.keys(sides).forEach((name, side) => {
  console.log(JSON.stringify({ side: name, encoder: args.encoder, signal, tree: Object.values(sides)[side], ...roundSummary(perItem[side]!) }));
});
