// An OTLP/JSON request too large for a decode worker's heap. Decoding JSON takes 7-10 times the
// body in the worker's V8 heap at its peak (JSON.parse's tree and the rows), and a worker's heap
// is bounded like the main thread's: by --max-old-space-size, or by V8 from the container's memory
// limit (Node 24 sizes it from the cgroup: ~0.5 GB under the chart's 1 GiB). A body within
// receiver.maxMessageBytes (64 MiB) ran the worker out of memory: the request was answered 503
// "decoding failed on the server; retry", so its exporter sent it again and again, each time
// killing a worker (and, when V8 could not stop the worker in time, the whole process:
// "FATAL ERROR: ... JavaScript heap out of memory"). It is refused as too large instead (413,
// not retried), before its decoding starts, and the collector goes on serving.
import { describe, expect, it } from 'vitest';
import { eventually, getJson } from '../helpers/collector.ts';
import { spawnCollector, type CollectorChild } from '../helpers/process.ts';

const MiB = 2 ** 20;
// The workers' old generation: 128 MiB (a 20 MiB body takes ~220 MiB to decode).
const HEAP_MB = 128;

/** An OTLP/JSON trace request of one span with `n` short, distinct attributes (~50 bytes each). */
function jsonRequest(traceId: string, n: number): string {
  const attrs = Array.from({ length: n }, (_, i) => `{"key":"k${i}","value":{"stringValue":"v${i}"}}`).join(',');
  return `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-heap"}}]},"scopeSpans":[{"spans":[{"traceId":"${traceId}","spanId":"0102030405060708","name":"big","startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000000000001","attributes":[${attrs}]}]}]}]}`;
}

const post = (c: CollectorChild, body: string) => fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/json' }, body });

describe('an OTLP/JSON request larger than a decode worker can decode', () => {
  it('is refused as too large (413, not retried), and the collector keeps serving', async () => {
    const c = await spawnCollector({ 'storage.backend': 'memory', 'delivery.ack': 'queued', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0' }, 20_000, [`--max-old-space-size=${HEAP_MB}`]);
    const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
    const body = jsonRequest('a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 600_000);
    expect(body.length).toBeGreaterThan(29 * MiB);
    const res = await post(c, body);
    const text = await res.text();
    expect({ status: res.status, text }).toMatchObject({ status: 413, text: expect.stringMatching(/decode worker/) });
    expect(c.child.exitCode).toBeNull();
    expect(c.output()).not.toMatch(/FATAL ERROR|a decode worker failed/);

    // A request that fits is still decoded and stored.
    const small = await post(c, jsonRequest('b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2', 20_000));
    expect(small.status).toBe(200);
    const trace = await eventually(async () => {
      const r = await getJson(queryUrl, '/v1/traces/b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2');
      return r.status === 200 ? r.body : undefined;
    }, 10_000, 'the small trace');
    expect(trace.resourceSpans[0].scopeSpans[0].spans[0].attributes).toHaveLength(20_000);
  });

  it('counts the objects and arrays a body opens: a small body of many empty values is refused too, not decoded', async () => {
    // An array attribute of three million empty AnyValues (what an array of nulls becomes): 9 MiB,
    // eight times which fits the heap, but JSON.parse makes an object of each `{}` (~50 bytes of
    // heap per 3 bytes of body, more once the walk keeps each as a value): decoded, it ran the
    // worker out of memory, and V8 aborted the whole process as it stopped the worker.
    const c = await spawnCollector({ 'storage.backend': 'memory', 'delivery.ack': 'queued', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0' }, 20_000, [`--max-old-space-size=${HEAP_MB}`]);
    const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
    const values = (n: number) => '{},'.repeat(n - 1) + '{}';
    const spanWith = (traceId: string, n: number) =>
      `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"${traceId}","spanId":"0102030405060708","name":"nulls","startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000000000001","attributes":[{"key":"nulls","value":{"arrayValue":{"values":[${values(n)}]}}}]}]}]}]}`;
    const body = spanWith('c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3', 3_000_000);
    expect(body.length * 8).toBeLessThan(HEAP_MB * MiB);
    const res = await post(c, body);
    const text = await res.text();
    expect({ status: res.status, text }).toMatchObject({ status: 413, text: expect.stringMatching(/decode worker/) });
    expect(c.child.exitCode).toBeNull();
    expect(c.output()).not.toMatch(/FATAL ERROR|a decode worker failed/);

    // Such values in a request that fits are still stored.
    const small = await post(c, spanWith('d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4', 1_000));
    expect(small.status).toBe(200);
    const trace = await eventually(async () => {
      const r = await getJson(queryUrl, '/v1/traces/d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4');
      return r.status === 200 ? r.body : undefined;
    }, 10_000, 'the trace of empty values');
    expect(trace.resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.arrayValue.values).toHaveLength(1_000);
  });
});
