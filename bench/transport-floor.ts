// What grpc-js's server costs per call: the null receiver on grpc-js (the bench's baseline, the
// collector's stack) against the same null receiver on Node's HTTP/2 server alone, in
// interleaved pairs on the same traffic and in the same minutes. Both read each call's message
// into one buffer and answer it without decoding; the difference is grpc-js's own work (its
// per-call objects, metadata, stream decoder and response path).
//
//   node bench/transport-floor.ts [--pairs=3] [--small] [--seconds=10]
import { parseArgs } from 'node:util';
import { runIngest, type IngestFigures } from './ingest.ts';
import { inAlternatingOrder, mean, sig3 as round } from './stats.ts';
import { defaultSpec, smallSpec } from './traffic.ts';

const { values: args } = parseArgs({
  options: {
    pairs: { type: 'string', default: '3' },
    small: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '10' },
  },
});
const pairs = Number(args.pairs);
const seconds = Number(args.seconds);
if (!Number.isInteger(pairs) || pairs < 1) throw new Error(`--pairs must be a whole number of at least 1, not ${JSON.stringify(args.pairs)}`);
if (!(seconds >= 1)) throw new Error(`--seconds must be at least 1, not ${JSON.stringify(args.seconds)}`);

const STACKS = ['grpc-js', 'node-http2'] as const;
const traffic = args.small ? smallSpec('traces') : defaultSpec('traces');
const runs: Record<(typeof STACKS)[number], IngestFigures[]> = { 'grpc-js': [], 'node-http2': [] };
console.log(`null receiver, traces over gRPC, ${args.small ? 'small' : 'standard'} requests, ${seconds} s a run, ${pairs} pair${pairs === 1 ? '' : 's'}`);
for (let p = 0; p < pairs; p++) {
  for (const stack of inAlternatingOrder(p, STACKS)) {
    const f = await runIngest({
      name: `null receiver on ${stack}`,
      transport: 'grpc',
      signal: 'traces',
      traffic,
      durationMs: seconds * 1000,
      mode: { kind: 'max', concurrency: 8 },
      connections: 2,
      target: { kind: 'null', grpcStack: stack },
    });
    runs[stack].push(f);
    console.log(JSON.stringify({ pair: p + 1, stack, cpuPerMillion: round(f.cpuSecondsPerMillionItems), acceptedPerS: Math.round(f.acceptedItemsPerS), loadgenCpuS: round(f.loadgenCpuS), errors: f.errorRequests }));
  }
}
console.log('\nCPU-s per million spans (receiver process), pair by pair:');
for (let p = 0; p < pairs; p++) {
  const [g, h] = [runs['grpc-js'][p]!.cpuSecondsPerMillionItems, runs['node-http2'][p]!.cpuSecondsPerMillionItems];
  console.log(`  pair ${p + 1}: node-http2 ${round(h)} against grpc-js ${round(g)} (grpc-js's share ${round(g - h)}, ${(((g - h) / g) * 100).toFixed(1)} %)`);
}
for (const stack of STACKS) {
  const rs = runs[stack];
  console.log(`${stack}: mean ${round(mean(rs.map((f) => f.cpuSecondsPerMillionItems)))} CPU-s per million at ${Math.round(mean(rs.map((f) => f.acceptedItemsPerS)))} spans/s`);
}
