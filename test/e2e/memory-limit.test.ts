// The memory limiter wired into both receivers: over limits.memorySoftBytes an export is refused
// as retryable (503 + Retry-After, gRPC UNAVAILABLE) with reason memory_limited, readiness says
// why, and the gauge shows it; with the limiter off the same exports are accepted.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { getJson, metricValue, startCollector } from '../helpers/collector.ts';
import { RawOtlpClient, RetryInfo, RpcStatus, encodeTraces } from '../helpers/otlp-proto.ts';

const body = encodeTraces({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans: [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'op', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }] }] }] });

async function exportBoth(c: { httpUrl: string; grpcAddress: string }): Promise<{ http: Response; grpc: grpc.ServiceError | null }> {
  const http = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
  await http.arrayBuffer();
  const client = new RawOtlpClient(c.grpcAddress);
  try {
    return { http, grpc: (await client.traces(body)).error };
  } finally {
    client.close();
  }
}

describe('memory limiter', () => {
  it('refuses exports on both receivers while memory is over limits.memorySoftBytes', async () => {
    // 1 MiB: any Node.js process is above it from the first sample.
    const c = await startCollector({ 'limits.memorySoftBytes': String(1 << 20), 'limits.memoryCheckIntervalMs': '50' });
    onTestFinished(async () => void (await c.stop()));
    const { http, grpc: err } = await exportBoth(c);
    expect(http.status).toBe(503);
    expect(Number(http.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(err?.details).toContain('memory');
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'memory_limited', transport: 'http' })).toBe(1);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'memory_limited', transport: 'grpc' })).toBe(1);
    expect(await metricValue(c.opsUrl, 'tracehouse_memory_limited')).toBe(1);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_spans_total')).toBe(0);
    const ready = await getJson(c.opsUrl, '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.stringify(ready.body)).toContain('memory');
  });

  it('asks clients to wait two of its samples, on both receivers', async () => {
    // With samples 4 s apart a retry after the default 1 s meets the same sample and is refused
    // again: the hint follows limits.memoryCheckIntervalMs.
    const c = await startCollector({ 'limits.memorySoftBytes': String(1 << 20), 'limits.memoryCheckIntervalMs': '4000' });
    onTestFinished(async () => void (await c.stop()));
    const { http, grpc: err } = await exportBoth(c);
    expect(http.status).toBe(503);
    expect(http.headers.get('retry-after')).toBe('8');
    const status = RpcStatus.decode(err!.metadata.get('grpc-status-details-bin')[0] as Buffer) as unknown as { details: { type_url: string; value: Uint8Array }[] };
    const retry = RetryInfo.toObject(RetryInfo.decode(status.details[0]!.value), { longs: Number }) as { retryDelay: { seconds?: number } };
    expect(retry.retryDelay.seconds).toBe(8);
  });

  it('accepts the same exports with the limiter off', async () => {
    const c = await startCollector({ 'limits.memorySoftBytes': '0' });
    onTestFinished(async () => void (await c.stop()));
    const { http, grpc: err } = await exportBoth(c);
    expect(http.status).toBe(200);
    expect(err).toBeNull();
    expect(await metricValue(c.opsUrl, 'tracehouse_memory_limited')).toBe(0);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_spans_total')).toBe(2);
  });
});
