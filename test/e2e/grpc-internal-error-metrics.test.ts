// An export that fails inside the collector (a bug, an error nothing expected) is refused INTERNAL
// / 500 on both transports. OTLP/HTTP counted it as tracehouse_receiver_refused_requests_total
// {reason="internal"}; OTLP/gRPC only logged it, so an alert on that counter never fired for
// gRPC exporters, the usual ones. The failure is injected by making the shared ingest path throw
// once, as a bug in it would.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { framed } from '../helpers/grpc-calls.ts';
import { RawOtlpClient } from '../helpers/otlp-proto.ts';

describe('an export that fails unexpectedly', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(async () => {
    await c?.stop();
  });

  /** Makes the next export the ingest path handles throw. */
  function failNext(): void {
    const ingest = c.collector.ingest;
    const handle = ingest.handle.bind(ingest);
    ingest.handle = (req) => {
      ingest.handle = handle;
      req.reservation?.release();
      return Promise.reject(new Error('injected failure'));
    };
  }

  it('is counted as internal on OTLP/gRPC, as on OTLP/HTTP, once each', async () => {
    failNext();
    const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: framed(100).subarray(5) });
    expect(res.status).toBe(500);
    failNext();
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      const { error } = await client.traces(framed(100).subarray(5));
      expect(error?.code).toBe(grpc.status.INTERNAL);
    } finally {
      client.close();
    }
    const internal = (transport: string) => metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport, reason: 'internal' });
    await eventually(async () => ((await internal('grpc')) === 1 ? true : undefined), 5000, 'a gRPC internal refusal');
    await new Promise((r) => setTimeout(r, 200));
    expect(await internal('http')).toBe(1);
    expect(await internal('grpc')).toBe(1);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc' })).toBe(1);
  });
});
