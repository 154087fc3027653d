// Scenario: handing requests to the decode workers. Main-thread CPU per request and process CPU
// per span for 100-span requests kept N in flight (as the receivers would), through DecodePool
// with the memory/SQLite encoder. Run it on two commits to compare dispatch designs.
//
//   node bench/dispatch.ts [inFlight=8] [requests=3000]
import { DecodePool } from '../src/pipeline/pool.ts';
import { median } from './stats.ts';
import { defaultSpec, loadTraffic } from './traffic.ts';

const inFlight = Number(process.argv[2] ?? 8);
const total = Number(process.argv[3] ?? 3000);
const requests = loadTraffic({ ...defaultSpec('traces', 100), minItems: 100, maxItems: 100 });
const pool = new DecodePool({ threads: 2, maxPendingTasks: 256, maxNestingDepth: 100 }, { name: 'otlp', options: {} });
await pool.start();

async function round(): Promise<{ mainUsPerRequest: number; processUsPerSpan: number; requestsPerTask: number }> {
  let next = 0;
  const tasks0 = pool.tasks;
  let spans = 0;
  const main0 = process.threadCpuUsage();
  const proc0 = process.cpuUsage();
  const lane = async () => {
    while (next < total) {
      const r = requests[next++ % requests.length]!;
      const out = await pool.decode('traces', 'protobuf', new Uint8Array(r.bytes), true);
      if (out.kind === 'ok') spans += out.accepted;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const main = process.threadCpuUsage(main0);
  const proc = process.cpuUsage(proc0);
  return { mainUsPerRequest: (main.user + main.system) / total, processUsPerSpan: (proc.user + proc.system) / spans, requestsPerTask: total / (pool.tasks - tasks0) };
}

await round();
const rounds = [];
for (let i = 0; i < 7; i++) rounds.push(await round());
await pool.shutdown();
console.log(`${total} requests of 100 spans, ${inFlight} in flight, 7 rounds (median):`);
console.log(`  main thread CPU per request: ${median(rounds.map((r) => r.mainUsPerRequest)).toFixed(1)} µs`);
console.log(`  process CPU per span: ${median(rounds.map((r) => r.processUsPerSpan)).toFixed(2)} µs`);
console.log(`  requests per worker task: ${median(rounds.map((r) => r.requestsPerTask)).toFixed(2)}`);
