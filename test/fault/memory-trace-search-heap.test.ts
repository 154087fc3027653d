// A trace search on a memory store of many small traces. The search held an entry with its spans
// for every matching trace before it sorted them and kept `limit`: 300,000 single-span traces (a
// third of what storage.memory.maxSpans keeps by default) and a search at limit=1 (the web UI's
// search page, Grafana's Jaeger data source) ran a 96 MiB heap out of memory, "FATAL ERROR: ...
// JavaScript heap out of memory", and every row the store held was gone. Only the `limit` best
// ranked are held now.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { getJson } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { spawnCollector } from '../helpers/process.ts';

const HEAP_MB = 96;
const PER_REQUEST = 20_000;
const REQUESTS = 15;

describe('a trace search over the memory store\'s many traces', () => {
  it('answers the newest traces, and the collector stays up', async () => {
    const c = await spawnCollector({ 'storage.backend': 'memory', 'storage.memory.maxSpans': String(PER_REQUEST * REQUESTS), 'limits.memorySoftBytes': '0', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0' }, 20_000, [`--max-old-space-size=${HEAP_MB}`]);
    const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'many-traces' } }] };
    const now = BigInt(Date.now()) * 1_000_000n;
    let newest = '';
    for (let i = 0; i < REQUESTS; i++) {
      const spans = Array.from({ length: PER_REQUEST }, (_, k) => {
        const traceId = randomBytes(16);
        // Start times not in arrival order: each request's spans run backwards.
        const start = now + BigInt(i * PER_REQUEST + (PER_REQUEST - 1 - k)) * 1000n;
        if (i === REQUESTS - 1 && k === 0) newest = traceId.toString('hex');
        return { traceId, spanId: randomBytes(8), name: 'op', startTimeUnixNano: String(start), endTimeUnixNano: String(start + 1000n) };
      });
      const res = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans }] }] }) });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
    }
    // Until the last request's spans are stored (acknowledged once queued).
    const deadline = Date.now() + 20_000;
    let res: { status: number; body: any } = { status: 0, body: undefined };
    while (Date.now() < deadline) {
      res = await getJson(queryUrl, '/v1/traces?limit=2').catch((err: Error) => ({ status: 0, body: { error: err.message } }));
      if (res.status !== 200 || res.body.traces[0]?.traceId === newest) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(c.output()).not.toMatch(/FATAL ERROR|heap out of memory/);
    expect(c.child.exitCode).toBeNull();
    expect(res.status).toBe(200);
    expect(res.body.traces).toHaveLength(2);
    expect(res.body.traces[0].traceId).toBe(newest);
  }, 60_000);
});
