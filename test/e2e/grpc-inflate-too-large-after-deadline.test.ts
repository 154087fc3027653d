// An OTLP/gRPC export whose gzip message inflates past receiver.maxMessageBytes, found so only
// after the client's deadline (grpc-timeout) passed: grpc-js had answered DEADLINE_EXCEEDED and
// the stream was closed, but the handler (which had the message) returned its RESOURCE_EXHAUSTED
// outside what the receiver counts: neither tracehouse_receiver_refused_requests_total{reason=
// "too_large"} nor tracehouse_receiver_unanswered_requests_total moved, and an export the client
// would resend unchanged (and lose again) showed nowhere. Inflation runs on libuv's thread pool:
// the test keeps every thread of it busy longer than the deadline, so the inflation starts late.
import * as grpc from '@grpc/grpc-js';
import { pbkdf2, pbkdf2Sync } from 'node:crypto';
import { connect, type ClientHttp2Session } from 'node:http2';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { exportCall } from '../helpers/grpc-calls.ts';

const DEADLINE_MS = 300;

/** Keeps each of libuv's thread-pool threads busy for at least ms (one pbkdf2 each). */
function busyThreadPool(ms: number): Promise<void> {
  const probe = 20_000;
  const started = performance.now();
  pbkdf2Sync('x', 'y', probe, 32, 'sha256');
  const iterations = Math.ceil((probe * ms) / Math.max(1, performance.now() - started));
  const threads = Number(process.env['UV_THREADPOOL_SIZE'] ?? 4) || 4;
  return Promise.all(Array.from({ length: threads }, () => new Promise<void>((resolve, reject) => pbkdf2('x', 'y', iterations, 32, 'sha256', (err) => (err ? reject(err) : resolve()))))).then(() => undefined);
}

let c: TestCollector;
let session: ClientHttp2Session;
beforeAll(async () => {
  c = await startCollector({ 'delivery.ack': 'queued', 'receiver.maxMessageBytes': String(64 * 1024) });
  session = connect(`http://${c.grpcAddress}`);
  session.on('error', () => {});
});
afterAll(async () => {
  session?.destroy();
  await c?.stop();
});

it('counts a gzip message found too large after its deadline passed as too_large and as unanswered', async () => {
  const inflated = gzipSync(Buffer.alloc(1024 * 1024));
  const prefix = Buffer.alloc(5);
  prefix[0] = 1;
  prefix.writeUInt32BE(inflated.byteLength, 1);
  const busy = busyThreadPool(DEADLINE_MS * 4);
  const call = exportCall(session, { 'grpc-encoding': 'gzip', 'grpc-timeout': `${DEADLINE_MS}m` });
  call.stream.end(Buffer.concat([prefix, inflated]));
  expect(await call.status).toBe(grpc.status.DEADLINE_EXCEEDED);
  await busy;
  const refused = (reason: string) => metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason });
  await eventually(async () => ((await refused('too_large')) === 1 ? true : undefined), 5000, 'one refusal too_large');
  expect(await metricValue(c.opsUrl, 'tracehouse_receiver_unanswered_requests_total', { transport: 'grpc' })).toBe(1);
  // The message had arrived whole before the deadline: not a receive timeout.
  expect(await refused('timeout')).toBe(0);
}, 20_000);

it('still counts one found too large before its deadline once as too_large, not as unanswered', async () => {
  const refused = (reason: string) => metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason });
  const [tooLarge, unanswered] = [await refused('too_large'), await metricValue(c.opsUrl, 'tracehouse_receiver_unanswered_requests_total', { transport: 'grpc' })];
  const inflated = gzipSync(Buffer.alloc(1024 * 1024));
  const prefix = Buffer.alloc(5);
  prefix[0] = 1;
  prefix.writeUInt32BE(inflated.byteLength, 1);
  const call = exportCall(session, { 'grpc-encoding': 'gzip', 'grpc-timeout': '10S' });
  call.stream.end(Buffer.concat([prefix, inflated]));
  expect(await call.status).toBe(grpc.status.RESOURCE_EXHAUSTED);
  // The stream has closed: whatever counts it has counted.
  await new Promise((r) => setTimeout(r, 100));
  expect(await refused('too_large')).toBe(tooLarge + 1);
  expect(await metricValue(c.opsUrl, 'tracehouse_receiver_unanswered_requests_total', { transport: 'grpc' })).toBe(unanswered);
});
