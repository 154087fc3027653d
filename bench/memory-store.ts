// Scenario: the memory store kept full. Writes spans well past storage.memory.maxBytes (so the
// oldest are evicted all along) and reports the process RSS against the bound the issue sets:
// maxBytes + 25% (the baseline: RSS of the same process before the store holds anything).
//
//   node --expose-gc bench/memory-store.ts [maxMiB=256] [spans=800000]
import { pino } from 'pino';
import { createMemoryBackend } from '../src/storage/memory/index.ts';
import { createEncoder } from '../src/storage/rowjson.ts';
import { createMetrics } from '../src/telemetry/metrics.ts';
import { makeTrace } from '../test/helpers/rows.ts';
import { DEFAULT_TENANT } from '../src/model/tenant.ts';

const maxMiB = Number(process.argv[2] ?? 256);
const total = Number(process.argv[3] ?? 800_000);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const store = createMemoryBackend({ maxSpans: 100_000_000, maxLogs: 1000, maxBytes: maxMiB * 2 ** 20, maxAgeMs: 0 }, { logger: pino({ level: 'silent' }), metrics: createMetrics() });
await store.start();
const encoder = createEncoder();
gc();
const rest = process.memoryUsage().rss;
let peak = rest;
let written = 0;
for (let i = 0; written < total; i++) {
  const spans = Array.from({ length: 200 }, () => makeTrace(5)).flat();
  const chunks = encoder.encodeSpans(spans);
  await store.write({ signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows: spans.length, bytes: 0, chunks: chunks.map((c) => c.data), batchId: `b${i}` });
  written += spans.length;
  if (i % 20 === 0) peak = Math.max(peak, process.memoryUsage().rss);
}
gc();
const mu = process.memoryUsage();
const after = mu.rss;
peak = Math.max(peak, after);
const kept = (await store.searchTraces(DEFAULT_TENANT, { limit: 1 })).length;
const mib = (n: number) => (n / 2 ** 20).toFixed(0);
const bound = rest + maxMiB * 1.25 * 2 ** 20;
console.log(
  `memory store, maxBytes ${maxMiB} MiB, ${written} spans written (evicting): RSS at rest ${mib(rest)} MiB, after ${mib(after)} MiB, peak ${mib(peak)} MiB; ` +
    `bound rest + maxBytes + 25% = ${mib(bound)} MiB: ${peak <= bound ? 'HELD' : 'EXCEEDED'} (store non-empty: ${kept > 0}); ` +
    `after a full GC: V8 heap used ${mib(mu.heapUsed)} of ${mib(mu.heapTotal)} MiB, array buffers ${mib(mu.arrayBuffers)} MiB`,
);
await store.shutdown();
