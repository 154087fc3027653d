// An OTLP/gRPC export whose message is over receiver.maxMessageBytes, sent while the write queue
// has less room left than the message's bytes would take. grpc-js answers RESOURCE_EXHAUSTED as
// soon as the message's length prefix arrives (past any interceptor), and the client lets the
// export go (not retryable). The receiver's charge of the arriving bytes failed for want of room
// at the same time and counted the call as queue_full, an overload the client is told to retry:
// tracehouse_receiver_refused_requests_total said "queue full" for an answer of "too large",
// too_large stayed at 0, and an operator looking for why exports were lost saw overload instead
// of clients sending messages over the limit.
import * as grpc from '@grpc/grpc-js';
import { connect, type ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gated, memoryBackend, type Gate } from '../helpers/backends.ts';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { exportCall, framed } from '../helpers/grpc-calls.ts';
import { RawOtlpClient } from '../helpers/otlp-proto.ts';

/** Sends one whole Export call (headers and message at once); resolves to its gRPC status. */
function sent(session: ClientHttp2Session, message: Buffer): Promise<number | undefined> {
  const call = exportCall(session);
  call.stream.end(message);
  return call.status;
}

describe('OTLP/gRPC export over the size limit while the write queue is nearly full', () => {
  let c: TestCollector;
  let gate: Gate;
  let session: ClientHttp2Session;
  beforeAll(async () => {
    gate = gated(await memoryBackend());
    // A store that takes nothing for now: what is accepted stays in the queue.
    gate.close();
    c = await startCollector({ 'delivery.ack': 'queued', 'writer.maxQueueBytes': String(150 * 1024), 'receiver.maxMessageBytes': String(64 * 1024) }, { backend: gate.backend });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      // About 113 KiB of the 150 KiB queue taken: less room left than either call below needs.
      for (const bytes of [60_000, 53_000]) expect((await client.traces(framed(bytes).subarray(5))).error).toBeNull();
    } finally {
      client.close();
    }
    session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
  });
  afterAll(async () => {
    session?.destroy();
    gate?.open();
    await c?.stop();
  });
  const refused = (reason: string) => metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason });

  it('counts the RESOURCE_EXHAUSTED answer as too_large, not as queue_full', async () => {
    expect(await sent(session, framed(200_000))).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await eventually(async () => ((await refused('too_large')) === 1 ? true : undefined), 5000, 'one refusal too_large');
    expect(await refused('queue_full')).toBe(0);
  });

  it('still counts a message within the limit that the queue has no room for as queue_full', async () => {
    const [queueFull, tooLarge] = [await refused('queue_full'), await refused('too_large')];
    expect(await sent(session, framed(50_000))).toBe(grpc.status.UNAVAILABLE);
    await eventually(async () => ((await refused('queue_full')) === queueFull + 1 ? true : undefined), 5000, 'one more refusal queue_full');
    expect(await refused('too_large')).toBe(tooLarge);
  });
});
