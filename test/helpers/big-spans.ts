// One trace of spans far larger than usual (a 100 KB attribute each), for the tests of reads under
// a small heap (test/fault/*trace-read*heap.test.ts).
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { encodeTraces } from './otlp-proto.ts';

const BIG = 'y'.repeat(100_000);

/**
 * Sends one trace of service "big-spans" in `requests` OTLP/HTTP requests of 40 spans (4 MB each),
 * the attribute `big` of span k of request i starting `i/k/`, then waits until a search at
 * queryUrl counts them all (a summary reads no span's attributes). Its trace id.
 */
export async function sendBigTrace(httpUrl: string, queryUrl: string, requests: number): Promise<Buffer> {
  const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'big-spans' } }] };
  const traceId = randomBytes(16);
  const now = BigInt(Date.now()) * 1_000_000n;
  for (let i = 0; i < requests; i++) {
    const spans = Array.from({ length: 40 }, (_, k) => ({ traceId, spanId: randomBytes(8), name: 'op', kind: 2, startTimeUnixNano: String(now + BigInt(i * 40 + k)), endTimeUnixNano: String(now + BigInt(i * 40 + k + 5)), attributes: [{ key: 'big', value: { stringValue: `${i}/${k}/${BIG}` } }] }));
    const res = await fetch(httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans }] }] }) });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
  }
  const total = requests * 40;
  const deadline = Date.now() + 15_000;
  const stored = async () => ((await fetch(`${queryUrl}/v1/traces?service=big-spans&limit=1`, { signal: AbortSignal.timeout(5000) }).then((r) => r.json(), () => ({}))) as { traces?: { spanCount: number }[] }).traces?.[0]?.spanCount ?? 0;
  while ((await stored()) < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(await stored()).toBe(total);
  return traceId;
}
