// An Export call whose message arrives whole but whose stream is never half-closed (no END_STREAM):
// grpc-js runs a unary handler only at the half-close, so the message's charge to the queue budget
// must not be held for as long as the client keeps the stream open.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';

const MiB = 1024 * 1024;

function traces(name = 'ok'): Uint8Array {
  const span = { traceId: randomBytes(16), spanId: randomBytes(8), name, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' };
  return encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
}

describe('OTLP/gRPC: a whole message on a stream that is never half-closed', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'writer.maxQueueBytes': String(4 * MiB), 'receiver.maxMessageBytes': String(16 * MiB), 'receiver.grpc.receiveTimeoutMs': '1000' });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('does not hold its room in the queue past receiveTimeoutMs, so other exporters are served', async () => {
    const session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      // A valid 3.5 MiB export, sent whole, the stream left open (no END_STREAM).
      const message = traces('x'.repeat(3.5 * MiB));
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(message.byteLength, 1);
      const stream = session.request({ ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => {});
      let status: number | undefined;
      stream.on('response', (h) => void (h['grpc-status'] !== undefined && (status = Number(h['grpc-status']))));
      stream.on('trailers', (h) => void (h['grpc-status'] !== undefined && (status = Number(h['grpc-status']))));
      stream.resume();
      stream.write(Buffer.concat([prefix, message]));
      await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes')) > 0 ? true : undefined), 5000, 'the message charged');
      // Answered at receiveTimeoutMs (1 s) and its room given back. Waited for, not a fixed 2.5 s
      // that left 1.5 s for the timer and the answer on a loaded machine; a call held for good
      // still times out here.
      const charged = Date.now();
      await eventually(async () => (status !== undefined ? true : undefined), 10_000, 'the open call answered');
      // 1 s timer, 5 s of slack for a loaded machine: not held until some other limit.
      expect(Date.now() - charged).toBeLessThan(6000);
      expect(status).toBe(grpc.status.DEADLINE_EXCEEDED);
      await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes')) === 0 ? true : undefined), 5000, 'its room given back');
      const other = await client.traces(traces());
      expect(other.error?.details ?? null).toBeNull();
    } finally {
      client.close();
      session.destroy();
    }
  });
});
