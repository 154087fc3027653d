// Export calls that break the protocol: a second request message, none at all, a malformed
// grpc-timeout. grpc-js refuses them itself, past any interceptor (UNIMPLEMENTED, INTERNAL), and
// they were counted nowhere, or as client_aborted (a client that went away, though it was there
// to hear the answer): an operator's alert on tracehouse_receiver_refused_requests_total missed
// them. Each is counted once, as undecodable, and answered INVALID_ARGUMENT as other malformed
// requests are.
import * as grpc from '@grpc/grpc-js';
import { connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { exportCall, framed } from '../helpers/grpc-calls.ts';

const EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const identity = (b: Buffer): Buffer => b;

/** A client-streaming call on the Export path (grpc-js's own client): the messages given, then the half-close. */
function streamExport(client: grpc.Client, messages: Buffer[]): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest<Buffer, Buffer>(EXPORT, identity, identity, new grpc.Metadata(), (err) => resolve(err ?? null));
    for (const m of messages) call.write(m);
    call.end();
  });
}

describe('OTLP/gRPC Export calls that break the protocol', () => {
  let c: TestCollector;
  let client: grpc.Client;
  beforeAll(async () => {
    c = await startCollector();
    client = new grpc.Client(c.grpcAddress, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await c?.stop();
  });
  const refused = (reason?: string) => metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', ...(reason ? { reason } : {}) });
  const settled = async (total: number): Promise<void> => {
    await eventually(async () => ((await refused()) >= total ? true : undefined), 5000, `${total} refusals`);
    await new Promise((r) => setTimeout(r, 200));
    expect(await refused()).toBe(total);
  };

  it('counts a second request message as undecodable, once, answered INVALID_ARGUMENT', async () => {
    const before = await refused();
    const err = await streamExport(client, [framed(100).subarray(5), framed(100).subarray(5)]);
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/second request message/);
    await settled(before + 1);
    expect(await refused('undecodable')).toBe(1);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_requests_total', { transport: 'grpc' })).toBe(0);
  });

  it('counts a call ended without a request message as undecodable, not client_aborted', async () => {
    const before = await refused();
    const err = await streamExport(client, []);
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
    try {
      const call = exportCall(session);
      call.stream.end();
      expect(await call.status).toBe(grpc.status.INVALID_ARGUMENT);
    } finally {
      session.destroy();
    }
    await settled(before + 2);
    expect(await refused('undecodable')).toBe(3);
    expect(await refused('client_aborted')).toBe(0);
  });

  it('counts a call whose grpc-timeout is malformed as undecodable, answered INVALID_ARGUMENT; a well-formed one is served', async () => {
    const before = await refused();
    const session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
    try {
      const bad = exportCall(session, { 'grpc-timeout': 'soon' });
      bad.stream.end(framed(100));
      expect(await bad.status).toBe(grpc.status.INVALID_ARGUMENT);
      const good = exportCall(session, { 'grpc-timeout': '5S' });
      good.stream.end(framed(100));
      expect(await good.status).toBe(grpc.status.OK);
    } finally {
      session.destroy();
    }
    await settled(before + 1);
    expect(await refused('undecodable')).toBe(4);
  });
});
