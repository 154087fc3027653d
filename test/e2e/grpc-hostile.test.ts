// Hostile or careless gRPC clients: silent connections are closed, and calls whose messages are
// still arriving are capped before grpc-js buffers them, so one client cannot hold the others off.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { connect, type ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';

function traces(): Uint8Array {
  const span = { traceId: randomBytes(16), spanId: randomBytes(8), name: 'ok', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' };
  return encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
}

/** Opens an Export call and sends only the start of a message that announces `announced` bytes. */
function trickle(session: ClientHttp2Session, announced: number) {
  const stream = session.request({
    ':method': 'POST',
    ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(announced, 1);
  stream.write(Buffer.concat([prefix, Buffer.alloc(100)]));
  stream.on('error', () => {});
  return stream;
}

describe('OTLP/gRPC against hostile clients', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'receiver.grpc.maxReceivingCalls': '2', 'receiver.grpc.maxConnectionIdleMs': '1000' });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('refuses new calls with UNAVAILABLE while maxReceivingCalls messages are still arriving, and serves again when they end', async () => {
    const session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
    const slow = [trickle(session, 1_000_000), trickle(session, 1_000_000)];
    await new Promise((r) => setTimeout(r, 200));
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      const refused = await client.traces(traces());
      expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(refused.error?.details).toMatch(/too many requests/);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'receivers_busy' })).toBe(1);
      for (const s of slow) s.close(0x8); // CANCEL
      session.close();
      await new Promise((r) => setTimeout(r, 200));
      expect((await client.traces(traces())).error).toBeNull();
    } finally {
      client.close();
      session.destroy();
    }
  });

  it('closes a connection that stays silent past maxConnectionIdleMs', async () => {
    const sessions = Array.from({ length: 5 }, () => connect(`http://${c.grpcAddress}`));
    const closed = sessions.map(
      (s) =>
        new Promise<number>((resolve) => {
          const t0 = Date.now();
          s.on('error', () => {});
          s.on('goaway', () => resolve(Date.now() - t0));
          s.on('close', () => resolve(Date.now() - t0));
        }),
    );
    const times = await Promise.all(closed);
    for (const t of times) expect(t).toBeLessThan(5000);
    for (const s of sessions) s.destroy();
  });
});
