// An Export call is unary: one message, then the half-close. grpc-js keeps reading after the first
// message (a second one is answered UNIMPLEMENTED only once it is whole) and buffers what follows
// in its decoder. The receiver stopped charging the call's bytes at its first message, so a client
// could follow a small export with up to receiver.maxMessageBytes of a "second message", held
// uncharged until receiver.grpc.receiveTimeoutMs: maxReceivingCalls × maxMessageBytes (64 × 64 MiB
// by default) outside writer.maxQueueBytes, the bound the charge exists for.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';

const MiB = 1024 * 1024;

function traces(): Uint8Array {
  const span = { traceId: randomBytes(16), spanId: randomBytes(8), name: 'ok', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' };
  return encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
}

function frame(msg: Uint8Array, announced = msg.byteLength): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(announced, 1);
  return Buffer.concat([h, msg]);
}

describe('OTLP/gRPC: bytes after an Export call\'s message', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'writer.maxQueueBytes': String(4 * MiB), 'receiver.maxMessageBytes': String(16 * MiB), 'receiver.grpc.receiveTimeoutMs': '20000' });
  });
  afterAll(async () => {
    await c?.stop();
  });
  const queued = () => metricValue(c.opsUrl, 'tracehouse_queue_size_bytes');

  it('are charged to writer.maxQueueBytes as they arrive: side by side, a second message the queue has no room for is refused as it arrives', async () => {
    const session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      // Each a small export, then 12 MiB of a 13 MiB second message, the stream left open. One
      // alone in the queue may go past the budget (as any request may); the other does not fit.
      for (const fill of [1, 2]) {
        const stream = session.request({ ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'content-type': 'application/grpc', te: 'trailers' });
        stream.on('error', () => {});
        stream.resume();
        stream.write(frame(traces()));
        stream.write(frame(Buffer.alloc(12 * MiB, fill), 13 * MiB));
      }
      // Well before receiveTimeoutMs: one is refused as its bytes arrive ...
      await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'queue_full' })) === 1 ? true : undefined), 10_000, 'a queue_full refusal');
      // ... and the other's 12 MiB are held in the queue's count (1.25 bytes a byte), not outside it.
      await eventually(async () => ((await queued()) >= 12 * MiB ? true : undefined), 10_000, 'the held bytes in the queue');
      session.destroy();
      await eventually(async () => ((await queued()) === 0 ? true : undefined), 10_000, 'an empty queue');
      expect((await client.traces(traces())).error).toBeNull();
    } finally {
      client.close();
      session.destroy();
    }
  });
});
