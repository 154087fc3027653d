// Hostile or careless gRPC clients: silent connections are closed, and calls whose messages are
// still arriving are capped before grpc-js buffers them, so one client cannot hold the others off.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { connect, type ClientHttp2Session } from 'node:http2';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';

function traces(): Uint8Array {
  const span = { traceId: randomBytes(16), spanId: randomBytes(8), name: 'ok', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' };
  return encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
}

/** Opens an Export call and sends only the start of a message that announces `announced` bytes (and `sent` of them). */
function trickle(session: ClientHttp2Session, announced: number, sent = 100) {
  const stream = session.request({
    ':method': 'POST',
    ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(announced, 1);
  stream.write(Buffer.concat([prefix, Buffer.alloc(sent)]));
  stream.on('error', () => {});
  return stream;
}

// A real gc() for measuring from a clean start.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The gRPC status a stream was answered with (trailers-only or in trailers), once it has closed. */
function answered(stream: ReturnType<typeof trickle>): Promise<number | undefined> {
  return new Promise((resolve) => {
    let status: number | undefined;
    const note = (h: Record<string, unknown>): void => {
      if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
    };
    stream.on('response', note);
    stream.on('trailers', note);
    stream.resume();
    stream.on('close', () => resolve(status));
  });
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
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      // The two slow calls hold both slots once the server has read their headers, which a fixed
      // 200 ms did not promise on a loaded machine: send until a call is refused (a call let
      // through before is stored, and not refused).
      const refused = await eventually(async () => {
        const r = await client.traces(traces());
        return r.error ? r : undefined;
      }, 10_000, 'a call refused while two messages are arriving');
      expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(refused.error?.details).toMatch(/too many requests/);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'receivers_busy' })).toBe(1);
      for (const s of slow) s.close(0x8); // CANCEL
      session.close();
      // Served again once the server has seen the cancels (not at a fixed 200 ms).
      await eventually(async () => ((await client.traces(traces())).error === null ? true : undefined), 10_000, 'a call served after the slow ones ended');
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

describe('OTLP/gRPC calls that stall or are not exports', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'receiver.grpc.maxReceivingCalls': '2', 'receiver.grpc.receiveTimeoutMs': '1000' });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('answers DEADLINE_EXCEEDED to a message that stops arriving, freeing its slot for other exporters', async () => {
    const session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      const stalled = [trickle(session, 1000, 10), trickle(session, 1000, 10)].map(answered);
      expect(await Promise.all(stalled)).toEqual([grpc.status.DEADLINE_EXCEEDED, grpc.status.DEADLINE_EXCEEDED]);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'timeout' })).toBe(2);
      // The connection stays open, and the slots are free.
      expect((await client.traces(traces())).error).toBeNull();
    } finally {
      client.close();
      session.destroy();
    }
  });

  it('resets a health or reflection call that sends more than a small request, buffering none of it', async () => {
    const session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/grpc.health.v1.Health/Check', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => {});
      const big = Buffer.alloc(4 * 1024 * 1024 + 5);
      big.writeUInt32BE(4 * 1024 * 1024, 1);
      stream.write(big);
      await new Promise((resolve) => stream.on('close', resolve));
      expect(stream.rstCode).toBe(0xb); // ENHANCE_YOUR_CALM
      // A health check of its usual size is answered.
      const health = new grpc.Client(c.grpcAddress, grpc.credentials.createInsecure());
      const check = await new Promise<Buffer>((resolve, reject) =>
        health.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (err, out) => (err ? reject(err) : resolve(out!))),
      );
      health.close();
      expect([...check]).toEqual([0x08, 0x01]); // status: SERVING
    } finally {
      session.destroy();
    }
  });
});

describe('OTLP/gRPC health and reflection calls, compressed', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(async () => {
    await c?.stop();
  });

  /** A grpc.health.v1.HealthCheckRequest naming `service`. */
  const healthRequest = (service: string): Buffer => {
    const length: number[] = [];
    for (let n = service.length; ; n = Math.floor(n / 128)) {
      if (n < 128) {
        length.push(n);
        break;
      }
      length.push((n & 127) | 128);
    }
    return Buffer.concat([Buffer.from([0x0a, ...length]), Buffer.from(service)]);
  };
  /** A health Check from a grpc-js client whose channel gzips every message (grpc.default_compression_algorithm). */
  const gzipCheck = (request: Buffer): Promise<{ err: grpc.ServiceError | null; out: Buffer | undefined }> => {
    const client = new grpc.Client(c.grpcAddress, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip });
    return new Promise((resolve) =>
      client.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, request, (err, out) => {
        client.close();
        resolve({ err, out });
      }),
    );
  };

  it('resets one whose gzip message inflates past the small-request bound, inflating none of it whole', async () => {
    // 8 KiB on the wire, 8 MiB inflated: grpc-js inflated it (up to receiver.maxMessageBytes),
    // outside any budget, for anyone, token or not, and answered NOT_FOUND quoting all of it.
    const bomb = await gzipCheck(healthRequest('x'.repeat(8 * 1024 * 1024)));
    expect(bomb.err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED); // grpc-js's reading of ENHANCE_YOUR_CALM
    // A compressed health check of its usual size is answered.
    const check = await gzipCheck(healthRequest(''));
    expect(check.err).toBeNull();
    expect([...check.out!]).toEqual([0x08, 0x01]); // status: SERVING
  });

  it('resets a reflection stream whose gzip messages together inflate past the small-request bound, each under it', async () => {
    // A ServerReflectionRequest asking for a symbol of `size` bytes (field 4, file_containing_symbol).
    const symbolRequest = (size: number): Buffer => Buffer.concat([Buffer.from([0x22]), healthRequest('x'.repeat(size)).subarray(1)]);
    /** The status a gzip reflection stream sending `requests` ends with, and the answers it got. */
    const reflect = (requests: Buffer[]): Promise<{ code: number; answers: number }> => {
      const client = new grpc.Client(c.grpcAddress, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip });
      const call = client.makeBidiStreamRequest('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', (b: Buffer) => b, (b: Buffer) => b);
      let answers = 0;
      call.on('data', () => answers++);
      for (const r of requests) call.write(r);
      call.end();
      return new Promise((resolve) => {
        const done = (code: number) => {
          client.close();
          resolve({ code, answers });
        };
        call.on('error', (err: grpc.ServiceError) => done(err.code));
        call.on('status', (s: grpc.StatusObject) => s.code === grpc.status.OK && done(s.code));
      });
    };
    // Each message inflates to 48 KiB (about 100 bytes on the wire): 40 of them answered NOT_FOUND,
    // each quoting its 48 KiB symbol; held unread, 50 such streams took 650 MB for 3 MB sent.
    const many = await reflect(Array.from({ length: 40 }, () => symbolRequest(48 * 1024)));
    expect(many.code).toBe(grpc.status.RESOURCE_EXHAUSTED); // grpc-js's reading of ENHANCE_YOUR_CALM
    expect(many.answers).toBeLessThanOrEqual(1);
    // Several small requests on one stream (grpcurl describe asks for a few files) are answered.
    const few = await reflect(Array.from({ length: 4 }, () => symbolRequest(1024)));
    expect(few).toEqual({ code: grpc.status.OK, answers: 4 });
  });
});

describe('OTLP/gRPC messages still arriving', () => {
  const MiB = 1024 * 1024;
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'writer.maxQueueBytes': String(4 * MiB), 'receiver.maxMessageBytes': String(16 * MiB) });
  });
  afterAll(async () => {
    await c?.stop();
  });
  const queued = () => metricValue(c.opsUrl, 'tracehouse_queue_size_bytes');
  const heldInQueue = () => eventually(async () => ((await queued()) >= 1.25 * MiB ? true : undefined), 10_000, 'the held bytes in the queue');
  const emptyQueue = () => eventually(async () => ((await queued()) === 0 ? true : undefined), 10_000, 'an empty queue');
  /** A whole export is served. */
  const servesAnExport = async () => {
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      expect((await client.traces(traces())).error).toBeNull();
    } finally {
      client.close();
    }
  };

  it('give their room back when the client goes away mid-message, unanswered', async () => {
    const session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
    trickle(session, 3 * MiB, MiB);
    await heldInQueue();
    // The connection drops: the stream closes with nothing sent on it.
    session.destroy();
    await emptyQueue();
    await servesAnExport();
  });

  it('are charged to writer.maxQueueBytes as their bytes arrive; one the queue has no room for is refused with UNAVAILABLE as it arrives', async () => {
    const session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
    try {
      // 1 MiB of a 3 MiB message, held: charged 1.25 bytes per byte (the memory store's rows).
      const held = trickle(session, 3 * MiB, MiB);
      await heldInQueue();
      // A second one sending all of its 3 MiB does not fit beside it.
      const big = trickle(session, 3 * MiB, 3 * MiB);
      expect(await answered(big)).toBe(grpc.status.UNAVAILABLE);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'queue_full' })).toBe(1);
      // Its room goes back; the one held keeps its own, and gives it back when cancelled.
      expect(await queued()).toBeLessThan(2 * MiB);
      expect(await queued()).toBeGreaterThanOrEqual(1.25 * MiB);
      held.close(0x8); // CANCEL
      await emptyQueue();
      await servesAnExport();
    } finally {
      session.destroy();
    }
  });
  it('are charged as they inflate when gzip-compressed: side by side, they are refused before they are inflated whole', async () => {
    // Eight 12 MiB messages in ~12 KB of gzip each. grpc-js would inflate them all before any
    // could be charged (132-156 MiB of ArrayBuffers at the peak, measured); inflated by the
    // receiver, one fills the 4 MiB queue (a request alone in it may go past) and the others are
    // refused at their first bytes over it (18-30 MiB).
    const request = encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'x'.repeat(12 * MiB), startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' }] }] }] });
    // Sent as raw frames, so that the client holds ~12 KB, not a copy of each message.
    const gz = gzipSync(request);
    const prefix = Buffer.alloc(5);
    prefix[0] = 1; // compressed
    prefix.writeUInt32BE(gz.byteLength, 1);
    const session = connect(`http://${c.grpcAddress}`);
    session.on('error', () => {});
    // Garbage of earlier tests collected first, or its collection would hide the growth.
    gc();
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
    }, 1);
    try {
      const codes = await Promise.all(
        Array.from({ length: 8 }, () => {
          const stream = session.request({ ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'content-type': 'application/grpc', 'grpc-encoding': 'gzip', te: 'trailers' });
          stream.on('error', () => {});
          const status = answered(stream);
          stream.end(Buffer.concat([prefix, gz]));
          return status;
        }),
      );
      expect(codes).toContain(grpc.status.OK);
      expect(codes).toContain(grpc.status.UNAVAILABLE);
      expect(codes.every((code) => code === grpc.status.OK || code === grpc.status.UNAVAILABLE)).toBe(true);
    } finally {
      clearInterval(sampler);
      session.destroy();
    }
    expect(peak, `ArrayBuffers at their peak: ${(peak / MiB).toFixed(0)} MiB`).toBeLessThan(64 * MiB);
    await emptyQueue();
  });
});
