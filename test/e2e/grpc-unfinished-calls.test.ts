// Export calls whose message never all arrives: the client's own deadline (grpc-timeout) passes,
// or the client cancels the call or drops its connection mid-message. Nothing is stored, and the
// operator sees them in tracehouse_receiver_refused_requests_total as OTLP/HTTP bodies that never
// all arrive are counted (client_aborted, timeout).
import * as grpc from '@grpc/grpc-js';
import { connect, type ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { exportCall, framed } from '../helpers/grpc-calls.ts';
import { RawOtlpClient } from '../helpers/otlp-proto.ts';

describe('OTLP/gRPC export calls whose message never all arrives', () => {
  let c: TestCollector;
  let session: ClientHttp2Session;
  beforeAll(async () => {
    c = await startCollector({ 'receiver.grpc.receiveTimeoutMs': '600', 'receiver.maxMessageBytes': String(1024 * 1024) });
    session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
  });
  afterAll(async () => {
    session?.destroy();
    await c?.stop();
  });
  const refused = (reason: string) => metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason });
  const counted = (reason: string, n: number) => eventually(async () => ((await refused(reason)) === n ? true : undefined), 5000, `${n} refusals ${reason}`);

  it('counts a call cut by the client\'s own deadline (grpc-timeout) mid-message as timeout', async () => {
    const message = framed(100_000);
    const call = exportCall(session, { 'grpc-timeout': '200m' });
    call.stream.write(message.subarray(0, 50_000));
    expect(await call.status).toBe(grpc.status.DEADLINE_EXCEEDED);
    await counted('timeout', 1);
    expect(await refused('client_aborted')).toBe(0);
  });

  it('counts a call the client cancels mid-message as client_aborted, as OTLP/HTTP counts a body cut short', async () => {
    const message = framed(100_000);
    const call = exportCall(session);
    call.stream.write(message.subarray(0, 50_000));
    await new Promise((r) => setTimeout(r, 100));
    call.stream.close(0x8); // CANCEL
    expect(await call.status).toBeUndefined();
    await counted('client_aborted', 1);
  });

  it('counts a call whose connection drops mid-message as client_aborted', async () => {
    const other = connect(`http://${c.grpcAddress}`);
    other.on('error', () => {});
    const call = exportCall(other);
    call.stream.write(framed(100_000).subarray(0, 50_000));
    // The PING's answer comes after the server read the frames sent before it (the call's headers
    // and data): a fixed 100 ms left a loaded machine dropping a connection the server never saw.
    if (other.connecting) await new Promise((resolve) => other.once('connect', resolve));
    await new Promise<void>((resolve, reject) => other.ping((err) => (err ? reject(err) : resolve())));
    other.destroy();
    await call.status;
    await counted('client_aborted', 2);
  });

  it('still counts its own receive timeout, a message over the limit and a finished call once each, or not at all', async () => {
    const slow = exportCall(session);
    slow.stream.write(framed(100_000).subarray(0, 50_000));
    expect(await slow.status).toBe(grpc.status.DEADLINE_EXCEEDED);
    const big = exportCall(session);
    big.stream.end(framed(2 * 1024 * 1024));
    expect(await big.status).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      expect((await client.traces(framed(100).subarray(5))).error).toBeNull();
    } finally {
      client.close();
    }
    await counted('timeout', 2);
    await counted('too_large', 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(await refused('timeout')).toBe(2);
    expect(await refused('too_large')).toBe(1);
    expect(await refused('client_aborted')).toBe(2);
  });
});
