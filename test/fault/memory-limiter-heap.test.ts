// The memory limiter's heap check under a small heap. It compared the main thread's heap in use
// with V8's heap_size_limit, which on Node 24 counts the young generation too: 288 MiB under
// --max-old-space-size=96, a line the 96 MiB old generation never reaches. A memory store filling
// the heap with span names of their own (each an entry of its operations) ran the collector out of
// memory, "FATAL ERROR: ... JavaScript heap out of memory", every stored row lost, and no request
// was ever refused. The heap in use is the old generation now, against its own limit: the
// collector refuses new data (503, memory_limited) and stays up with what it holds.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { getJson } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { spawnCollector } from '../helpers/process.ts';

const PER_REQUEST = 1_000;
const NAME = 'n'.repeat(2_000);

describe('the memory limiter under a small heap', () => {
  // RSS alone would never stop it (the bound is far above, or none: limits.memorySoftBytes' default
  // with no cgroup limit, where the limiter was off whole): only the heap check can.
  it.each([[{ 'limits.memorySoftBytes': String(64 * 2 ** 30) }], [{}]])('refuses new data as the heap fills, and the collector stays up (%j)', async (limits) => {
    const c = await spawnCollector(
      { 'storage.backend': 'memory', ...limits, 'limits.memoryCheckIntervalMs': '20', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0' },
      20_000,
      ['--max-old-space-size=96'],
    );
    const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'heap-filler' } }] };
    const now = BigInt(Date.now()) * 1_000_000n;
    const statuses: number[] = [];
    // 2 MB of span names a request: 200 of them are four times the old generation.
    for (let i = 0; i < 200 && c.child.exitCode === null && !statuses.includes(503); i++) {
      const spans = Array.from({ length: PER_REQUEST }, (_, k) => ({ traceId: randomBytes(16), spanId: randomBytes(8), name: `${i}.${k}.${NAME}`, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n) }));
      const res = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans }] }] }) }).catch(() => undefined);
      statuses.push(res?.status ?? 0);
      await res?.arrayBuffer();
      // Let the writer store it and the limiter sample.
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(c.output()).not.toMatch(/FATAL ERROR|heap out of memory/);
    expect(c.child.exitCode).toBeNull();
    expect(statuses).toContain(503);
    expect(c.output()).toContain('memory over the soft limit');
    // What it took is still there to read.
    const services = await getJson(queryUrl, '/api/services');
    expect(services.status).toBe(200);
    expect(services.body.data).toContain('heap-filler');
  }, 90_000);

  // docs/performance.md's way to a smaller heap: a smaller young generation. The old generation was
  // measured as V8's heap limit less the young generation a worker is told (resourceLimits, V8's
  // default, 192 MiB here), not the one the flag set: 96 + 48 - 192, less than nothing, so the
  // heap was "over the limit" from the first sample and every export refused with 503. Under
  // --max-heap-size=128 the same subtraction gave -64 MiB.
  it.each([[['--max-old-space-size=96', '--max-semi-space-size=16']], [['--max-heap-size=128']]])('takes data under V8 heap flags %j', async (flags) => {
    const c = await spawnCollector({ 'storage.backend': 'memory', 'limits.memorySoftBytes': String(64 * 2 ** 30), 'limits.memoryCheckIntervalMs': '20' }, 20_000, flags);
    const now = BigInt(Date.now()) * 1_000_000n;
    const spans = [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'small', startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n) }];
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans }] }] }) });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(c.output()).not.toContain('memory over the soft limit');
  }, 30_000);
});
