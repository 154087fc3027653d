// grpc-encoding values beyond gzip and deflate. The Collector's otlp exporter sends zstd (and
// snappy) over gRPC (configgrpc `compression`), and its otlpreceiver takes them; OTLP/HTTP here
// takes zstd too. A zstd export was answered UNIMPLEMENTED by grpc-js, which OTLP exporters do not
// retry: the Collector in front dropped every batch, and refused_requests_total did not count one.
// An encoding the receiver does not have is UNIMPLEMENTED with grpc-accept-encoding
// (gRPC's compression.md), counted.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:http2';
import { zstdCompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';

function frame(msg: Uint8Array, compressed: boolean): Buffer {
  const h = Buffer.alloc(5);
  h[0] = compressed ? 1 : 0;
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}

/** One Export call by hand: the answer's headers and trailers together. */
async function call(addr: string, headers: Record<string, string>, body: Buffer): Promise<Record<string, unknown>> {
  const s = connect(`http://${addr}`);
  s.on('error', () => {});
  try {
    return await new Promise((resolve, reject) => {
      const st = s.request({ ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'content-type': 'application/grpc', te: 'trailers', ...headers });
      let head: Record<string, unknown> = {};
      st.on('response', (h) => (head = h));
      st.on('trailers', (t) => (head = { ...head, ...t }));
      st.on('close', () => resolve(head));
      st.on('error', reject);
      st.resume();
      st.end(body);
    });
  } finally {
    s.close();
  }
}

describe('OTLP/gRPC grpc-encoding other than gzip and deflate', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('stores a zstd-compressed export, as the Collector otlp exporter with compression: zstd sends it', async () => {
    const traceId = randomBytes(16);
    const req = encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8), name: 'zstd', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' }] }] }] });
    const answer = await call(c.grpcAddress, { 'grpc-encoding': 'zstd' }, frame(zstdCompressSync(req), true));
    expect([answer['grpc-status'], decodeURIComponent(String(answer['grpc-message'] ?? ''))]).toEqual(['0', 'OK']);
    await eventually(async () => ((await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`)).status === 200 ? true : undefined));
  });

  it('answers an encoding it does not have with UNIMPLEMENTED and grpc-accept-encoding, counted', async () => {
    const before = await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'unsupported_encoding' });
    const answer = await call(c.grpcAddress, { 'grpc-encoding': 'snappy' }, frame(Buffer.from('not really snappy'), true));
    expect(Number(answer['grpc-status'])).toBe(grpc.status.UNIMPLEMENTED);
    expect(String(answer['grpc-accept-encoding']).split(',')).toEqual(expect.arrayContaining(['gzip', 'zstd']));
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'unsupported_encoding' })).toBe(before + 1);
  });

  it('quotes a long unsupported grpc-encoding cut short, not back at six times its size', async () => {
    // Each 'é' is percent-encoded in grpc-message: 10,000 of them made ~60 KB of answer headers.
    const answer = await call(c.grpcAddress, { 'grpc-encoding': 'é'.repeat(10_000) }, frame(Buffer.from('x'), true));
    expect(Number(answer['grpc-status'])).toBe(grpc.status.UNIMPLEMENTED);
    const message = decodeURIComponent(String(answer['grpc-message']));
    expect(message).toMatch(/^grpc-encoding "é{64}…" is not supported; use /);
    expect(String(answer['grpc-message']).length).toBeLessThan(1024);
  });
});
