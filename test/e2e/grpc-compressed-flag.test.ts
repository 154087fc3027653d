// A gRPC message whose Compressed-Flag is 1 on a call without grpc-encoding (or with identity):
// PROTOCOL-HTTP2.md makes that flag meaningful only with a Message-Encoding; grpc-go answers
// "grpc: compressed flag set with identity or empty encoding". Here the compressed bytes were
// decoded as protobuf, and the client heard about an "invalid wire type 7 for field 3".
import { connect } from 'node:http2';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type TestCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';

function frame(msg: Uint8Array, compressed: boolean): Buffer {
  const h = Buffer.alloc(5);
  h[0] = compressed ? 1 : 0;
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}

async function call(addr: string, headers: Record<string, string>, body: Buffer): Promise<{ status: string; message: string }> {
  const s = connect(`http://${addr}`);
  try {
    return await new Promise((resolve, reject) => {
      const st = s.request({ ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'content-type': 'application/grpc', te: 'trailers', ...headers });
      let head: Record<string, unknown> = {};
      st.on('response', (h) => (head = h));
      st.on('trailers', (t) => resolve({ status: String(t['grpc-status']), message: decodeURIComponent(String(t['grpc-message'] ?? '')) }));
      st.on('end', () => resolve({ status: String(head['grpc-status']), message: decodeURIComponent(String(head['grpc-message'] ?? '')) }));
      st.on('error', reject);
      st.resume();
      st.end(body);
    });
  } finally {
    s.close();
  }
}

describe('OTLP/gRPC: a compressed message on a call that names no grpc-encoding', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('is refused as what it is (compressed flag without an encoding), not decoded as protobuf', async () => {
    const req = encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2), name: 'x', startTimeUnixNano: '1', endTimeUnixNano: '2' }] }] }] });
    for (const headers of [{}, { 'grpc-encoding': 'identity' }]) {
      const r = await call(c.grpcAddress, headers, frame(gzipSync(req), true));
      expect(r.status).not.toBe('0');
      expect(r.message).toMatch(/compressed/i);
      expect(r.message).not.toMatch(/wire type/);
    }
    // Still fine: a gzip call, and an uncompressed one.
    expect((await call(c.grpcAddress, { 'grpc-encoding': 'gzip' }, frame(gzipSync(req), true))).status).toBe('0');
    expect((await call(c.grpcAddress, {}, frame(req, false))).status).toBe('0');
  });
});
