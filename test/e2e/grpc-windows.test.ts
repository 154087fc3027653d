// The gRPC receiver's HTTP/2 receive windows: a client is told the configured windows (grpc-js
// alone keeps 64 KiB), over plain connections and TLS, exports larger than either window still
// arrive whole, and a client whose export is refused at its headers is told to stop sending it.
import { randomBytes } from 'node:crypto';
import { connect, constants, type SecureClientSessionOptions } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeCert } from '../helpers/certs.ts';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';
import { tempDir } from '../helpers/tmp.ts';

const STREAM_WINDOW = 256 * 1024;
const CONNECTION_WINDOW = 3 * 1024 * 1024;

/** An export of `n` spans, each with a 1 KiB attribute. */
function traces(n: number): Uint8Array {
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: randomBytes(16),
    spanId: randomBytes(8),
    name: `op-${i % 7}`,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000100000000',
    attributes: [{ key: 'payload', value: { stringValue: randomBytes(512).toString('hex') } }],
  }));
  return encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'windows' } }] }, scopeSpans: [{ spans }] }] });
}

/** A unary Export call over a plain HTTP/2 session: gRPC framing, the response's grpc-status. */
function exportOver(session: ReturnType<typeof connect>, body: Uint8Array): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'content-type': 'application/grpc', te: 'trailers' });
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(body.length, 1);
    stream.on('trailers', (trailers) => resolve(trailers['grpc-status'] as string | undefined));
    stream.on('error', reject);
    stream.resume();
    stream.end(Buffer.concat([prefix, body]));
  });
}

/** Calls once over a new session to `url`; the stream window the server's SETTINGS then carry and the connection window left to send in. */
async function windowsSeen(url: string, options: SecureClientSessionOptions = {}): Promise<{ stream: number | string | undefined; connection: number | undefined }> {
  const session = connect(url, options);
  session.on('error', () => {});
  try {
    // The first call widens the session: a SETTINGS frame carries the stream window.
    const settings = new Promise<number | undefined>((resolve) => {
      session.on('remoteSettings', (s) => {
        if (s.initialWindowSize !== 65_535) resolve(s.initialWindowSize);
      });
    });
    expect(await exportOver(session, traces(1))).toBe('0');
    const none = new Promise<string>((resolve) => setTimeout(() => resolve('no SETTINGS with a window'), 5000).unref());
    // The connection window: what the client may send now without waiting for the server.
    return { stream: await Promise.race([settings, none]), connection: session.state.remoteWindowSize };
  } finally {
    session.destroy();
  }
}

const WINDOWS = { 'receiver.grpc.streamWindowBytes': String(STREAM_WINDOW), 'receiver.grpc.connectionWindowBytes': String(CONNECTION_WINDOW) };

describe('OTLP/gRPC receive windows', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'memory', ...WINDOWS });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('tells a client the configured stream and connection windows once it calls', async () => {
    const seen = await windowsSeen(`http://${c.grpcAddress}`);
    expect(seen.stream).toBe(STREAM_WINDOW);
    expect(seen.connection).toBeGreaterThan(CONNECTION_WINDOW / 2);
  });

  it('widens TLS connections alike', async () => {
    const dir = tempDir('tracehouse-windows-');
    const ca = makeCa(dir, 'windows-ca');
    const cert = makeCert(dir, ca, 'localhost');
    const tls = await startCollector({ 'storage.backend': 'memory', 'tls.certFile': cert.certFile, 'tls.keyFile': cert.keyFile, 'ops.tls.mode': 'off', ...WINDOWS });
    try {
      const seen = await windowsSeen(`https://localhost:${tls.collector.grpc!.boundPort}`, { ca: ca.cert });
      expect(seen.stream).toBe(STREAM_WINDOW);
      expect(seen.connection).toBeGreaterThan(CONNECTION_WINDOW / 2);
    } finally {
      await tls.stop();
    }
  });

  it('receives exports larger than both windows whole, several at once on one connection', async () => {
    const before = await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_spans_total', { transport: 'grpc' });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      // ~4.3 MiB each: past the stream window sixteen times over, and past the connection window.
      const bodies = Array.from({ length: 4 }, () => traces(4000));
      expect(bodies[0]!.length).toBeGreaterThan(CONNECTION_WINDOW);
      const results = await Promise.all(bodies.map((b) => client.traces(b)));
      for (const r of results) expect(r.error).toBeNull();
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_spans_total', { transport: 'grpc' })).toBe(before + 16_000);
    } finally {
      client.close();
    }
  });
});

describe('OTLP/gRPC refused exports', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'memory', 'receiver.grpc.maxReceivingCalls': '1', ...WINDOWS });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('answers a refused export, then resets its stream with NO_ERROR so the client stops sending the body', async () => {
    const session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
    try {
      const path = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
      const headers = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' };
      // One call whose message is still arriving holds the only receiving slot.
      const holder = session.request(headers);
      holder.on('error', () => {});
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(1_000_000, 1);
      holder.write(Buffer.concat([prefix, Buffer.alloc(100)]));
      // The holder holds the slot once the server has read its headers, which a fixed 200 ms did
      // not promise on a loaded machine: wait until a call on another connection is refused.
      const probe = new RawOtlpClient(c.grpcAddress);
      try {
        await eventually(async () => ((await probe.traces(traces(1))).error?.code === 14 ? true : undefined), 10_000, 'the holder in the only receiving slot');
      } finally {
        probe.close();
      }

      const body = Buffer.alloc(8 * 1024 * 1024);
      const refused = session.request(headers);
      refused.on('error', () => {});
      const status = new Promise<string | undefined>((resolve) => refused.on('response', (h) => resolve(h['grpc-status'] as string | undefined)));
      const closed = new Promise<number>((resolve) => refused.on('close', () => resolve(refused.rstCode ?? -1)));
      refused.resume();
      refused.end(body);
      const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 5000).unref());
      expect(await status).toBe('14'); // UNAVAILABLE
      expect(await Promise.race([closed, timeout])).toBe(constants.NGHTTP2_NO_ERROR);
      // At most the stream window of the body crossed before the reset, not all 8 MiB.
      expect(session.socket.bytesWritten).toBeLessThan(STREAM_WINDOW + 64 * 1024);
      holder.close(constants.NGHTTP2_CANCEL);
    } finally {
      session.destroy();
    }
  });
});
