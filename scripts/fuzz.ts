// Long fuzz run of the OTLP receivers against a collector started in this process:
//   node scripts/fuzz.ts [--seed=N] [--duration-s=60] [--cases=N] [--concurrency=4] [--out=dir]
// Prints the answers by transport and code, the memory before and after, and each finding; with
// --out, writes every finding's body there (bad-fuzz-<n>.bin|json plus a .txt saying what it is)
// to be kept as a fixture. Exits 1 when something was found.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { metricValue, startCollector } from '../test/helpers/collector.ts';
import { Sender, fuzz } from '../test/fuzz/fuzz-core.ts';

const args = Object.fromEntries(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v ?? 'true']; }));
const seed = Number(args['seed'] ?? Date.now() % 2 ** 31);
const durationS = Number(args['duration-s'] ?? 60);
const maxCases = Number(args['cases'] ?? Number.MAX_SAFE_INTEGER);
const concurrency = Number(args['concurrency'] ?? 4);
const out = args['out'];

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const mib = (n: number) => (n / 2 ** 20).toFixed(1);

const c = await startCollector({ 'receiver.maxMessageBytes': String(4 * 2 ** 20), 'workers.threads': '2' });
const sender = new Sender(c.grpcAddress, c.httpUrl);
await fuzz(sender, { seed: 1, maxCases: 200, concurrency }); // warm-up: pools, JIT, first allocations
gc();
const before = process.memoryUsage();
const t0 = Date.now();
// RSS over time says whether growth levels off (allocator caches, worker heaps) or keeps climbing.
const samples: string[] = [];
const sampler = setInterval(() => samples.push(mib(process.memoryUsage().rss)), 10_000);
const run = await fuzz(sender, { seed, maxCases, deadline: t0 + durationS * 1000, concurrency });
clearInterval(sampler);
const seconds = (Date.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, 500));
gc();
const after = process.memoryUsage();
const good = await sender.send('http-proto', 'traces', (await import('../test/fuzz/fuzz-core.ts')).validBody(Math.random, 'http-proto', 'traces'));
const workerHeap = await metricValue(c.opsUrl, 'tracehouse_worker_heap_bytes');
sender.close();
await c.stop();

console.log(`seed ${seed}: ${run.cases} cases in ${seconds.toFixed(1)} s (${(run.cases / seconds).toFixed(0)}/s), concurrency ${concurrency}`);
for (const [k, n] of Object.entries(run.byCode).sort()) console.log(`  ${k.padEnd(32)} ${n}`);
console.log(`heap used ${mib(before.heapUsed)} -> ${mib(after.heapUsed)} MiB, rss ${mib(before.rss)} -> ${mib(after.rss)} MiB`);
console.log(`rss every 10 s: ${samples.join(' ')} MiB; decode workers' heaps at the end ${mib(workerHeap)} MiB`);
console.log(`a valid request afterwards: ${good.code}`);
const distinct = new Map<string, number>();
run.findings.forEach((f, i) => {
  const key = `${f.transport} ${f.problem.slice(0, 120)}`;
  distinct.set(key, (distinct.get(key) ?? 0) + 1);
  if (out) {
    mkdirSync(out, { recursive: true });
    const base = join(out, `bad-fuzz-${seed}-${i}`);
    writeFileSync(base + (f.transport === 'http-json' ? '.json' : '.bin'), f.body);
    writeFileSync(base + '.txt', `${f.transport} ${f.signal}\nmutation: ${f.mutation}\nproblem: ${f.problem}\n`);
  }
});
console.log(`${run.findings.length} findings, ${distinct.size} distinct:`);
for (const [k, n] of distinct) console.log(`  ${n}x ${k}`);
process.exit(run.findings.length > 0 || good.code !== '200' ? 1 : 0);
