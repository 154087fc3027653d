// Log records of 100 KB each, more than a heap-bounded read holds: for the tests of log searches
// cut to the read API's byte bound.
import { expect } from 'vitest';
import { getJson } from './collector.ts';
import { encodeLogs } from './otlp-proto.ts';
import type { CollectorChild } from './process.ts';

/** A large log record's body: 100 KB. */
export const BIG_LOG_BODY = 'x'.repeat(100_000);

/**
 * Sends `requests` OTLP/HTTP requests of 40 records of service big-logs (bodies `i/k/` then 100 KB,
 * one nanosecond apart) to c, and waits (10 s at most) until the last request's records are
 * stored: they are acknowledged once queued.
 */
export async function sendBigLogs(c: CollectorChild, queryUrl: string, requests: number): Promise<void> {
  const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'big-logs' } }] };
  const now = BigInt(Date.now()) * 1_000_000n;
  for (let i = 0; i < requests; i++) {
    const logRecords = Array.from({ length: 40 }, (_, k) => ({ timeUnixNano: String(now + BigInt(i * 40 + k)), body: { stringValue: `${i}/${k}/${BIG_LOG_BODY}` } }));
    const res = await fetch(c.httpUrl + '/v1/logs', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords }] }] }) });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
  }
  const deadline = Date.now() + 10_000;
  const newest = async () => (await getJson(queryUrl, '/v1/logs?limit=1')).body.resourceLogs?.[0]?.scopeLogs[0].logRecords[0].body.stringValue as string | undefined;
  while (!(await newest())?.startsWith(`${requests - 1}/39/`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}
