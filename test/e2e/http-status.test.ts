// Raw OTLP/HTTP requests against a running collector: every status code the receiver answers,
// google.rpc.Status bodies in both encodings, partial success, OTLP/JSON edge cases, CORS,
// overload (503 + Retry-After) and shutdown with a request in flight.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { deflateSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { pino } from 'pino';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { WireWriter } from '../../src/pipeline/decode/index.ts';
import { PROTO_DIR } from '../../src/receiver/otlp-messages.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createBackend } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient } from '../helpers/otlp-proto.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { STORE_BYTES_PER_REQUEST_BYTE } from '../../src/storage/encoders.ts';

const FIXTURES = new URL('../fixtures/http/', import.meta.url);
const fixture = (name: string): Buffer => readFileSync(new URL(name, FIXTURES));

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : PROTO_DIR + target);
root.loadSync(
  ['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'opentelemetry/proto/collector/logs/v1/logs_service.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto'],
  { keepCase: false },
);
const TraceRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const TraceResponse = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const LogsRequest = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
const LogsResponse = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse');
const Status = root.lookupType('google.rpc.Status');
const RetryInfo = root.lookupType('google.rpc.RetryInfo');

const PB = 'application/x-protobuf';
const JSON_CT = 'application/json';
const TO_OBJECT = { longs: String, enums: Number, bytes: String, defaults: false } as const;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Whether a 100 Continue arrived before the final answer. */
  continued: boolean;
}

interface RawOptions {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  body?: Uint8Array | string;
  /** Writes the body itself (slowly, in pieces …); `answered()` turns true once the response is in. */
  write?: (req: ReturnType<typeof request>, answered: () => boolean) => Promise<void>;
}

/** One request on a fresh connection, answered with status, headers and the whole body. */
function raw(base: string, o: RawOptions): Promise<Reply> {
  const url = new URL(base);
  return new Promise<Reply>((resolve, reject) => {
    let answered = false;
    let continued = false;
    const req = request({ host: url.hostname, port: url.port, method: o.method ?? 'POST', path: o.path, headers: o.headers ?? {}, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), continued }));
      res.on('error', reject);
    });
    req.on('continue', () => (continued = true));
    // Writing into a connection the server closed after answering fails; the answer is what counts.
    req.on('error', (err) => (answered ? undefined : reject(err)));
    if (o.write) o.write(req, () => answered).catch(() => {});
    else req.end(o.body);
  });
}

const post = (base: string, path: string, contentType: string, body: Uint8Array | string, headers: Record<string, string> = {}) =>
  raw(base, { path, headers: { 'content-type': contentType, ...headers }, body });

/** A POST with Expect: 100-continue whose body is sent only once the server says 100 Continue. */
const postOnContinue = (base: string, path: string, contentType: string, body: Uint8Array | string) =>
  raw(base, {
    path,
    headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body), expect: '100-continue' },
    write: async (req) => {
      req.flushHeaders();
      req.once('continue', () => req.end(body));
    },
  });

/** google.protobuf.Any is one of protobufjs's built-in types and keeps its snake_case field name. */
function statusOf(r: Reply): { code: number; message: string; details?: { type_url: string; value: Uint8Array }[] } {
  if (String(r.headers['content-type']).startsWith(PB)) return Status.toObject(Status.decode(r.body), { defaults: true }) as never;
  return JSON.parse(r.body.toString('utf8'));
}

const hexBuf = (h: string): Buffer => Buffer.from(h, 'hex');
const BASE_NS = 1_750_000_000_000_000_000n;

function pbSpan(traceId: string, spanId: string, name: string, extra: Record<string, unknown> = {}) {
  return { traceId: hexBuf(traceId), spanId: hexBuf(spanId), name, kind: 2, startTimeUnixNano: String(BASE_NS), endTimeUnixNano: String(BASE_NS + 1000n), ...extra };
}

function pbTraces(service: string, spans: unknown[]): Uint8Array {
  const msg = { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 'raw' }, spans }] }] };
  return TraceRequest.encode(TraceRequest.fromObject(msg)).finish();
}

function jsonTraces(service: string, spans: unknown[]): string {
  return JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 'raw' }, spans }] }] });
}

const randHex = (bytes: number): string => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');

/** An AnyValue nested `depth` kvlists deep, in OTLP/JSON form. */
function deepValue(depth: number): unknown {
  let v: unknown = { stringValue: 'bottom' };
  for (let i = 0; i < depth; i++) v = { kvlistValue: { values: [{ key: 'k', value: v }] } };
  return v;
}

/** Field `field` with wire type 2 (length-delimited). */
const lenField = (field: number, payload: Uint8Array | string): Uint8Array => {
  const w = protobuf.Writer.create().uint32((field << 3) | 2);
  return (typeof payload === 'string' ? w.string(payload) : w.bytes(payload)).finish();
};

/**
 * ExportLogsServiceRequest bytes with one ResourceLogs holding one record whose body nests `depth`
 * kvlists deep, written by hand (protobufjs itself refuses to build anything that deep).
 */
function deepLogsRequest(service: string, depth: number, timeNs: bigint): Uint8Array {
  let v = lenField(1, 'bottom'); // AnyValue.string_value
  for (let i = 0; i < depth; i++) {
    const kv = Buffer.concat([lenField(1, 'k'), lenField(2, v)]); // KeyValue
    v = lenField(6, lenField(1, kv)); // AnyValue.kvlist_value { values }
  }
  const time = protobuf.Writer.create().uint32((1 << 3) | 1).fixed64(timeNs.toString()).finish();
  const record = Buffer.concat([time, lenField(5, v)]); // LogRecord { time_unix_nano, body }
  const scopeLogs = lenField(2, record); // ScopeLogs.log_records
  const resource = lenField(1, lenField(1, Buffer.concat([lenField(1, 'service.name'), lenField(2, lenField(1, service))])));
  return lenField(1, Buffer.concat([resource, lenField(2, scopeLogs)])); // resource_logs
}

async function traceSpans(c: TestCollector, traceId: string, count: number): Promise<{ spanId: string; name: string }[]> {
  return eventually(async () => {
    const r = await getJson(c.queryUrl, `/v1/traces/${traceId}`);
    const spans = r.body?.resourceSpans?.flatMap((rs: { scopeSpans: { spans: unknown[] }[] }) => rs.scopeSpans.flatMap((s) => s.spans)) ?? [];
    return spans.length === count ? spans : undefined;
  }, 10_000, `${count} spans of ${traceId}`);
}

const refused = (c: TestCollector, reason: string) => metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'http', reason });

describe('OTLP/HTTP: a request whose store bytes pass their bound', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'writer.maxQueueBytes': '4MiB' });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('answers 413 for a small request whose store bytes would pass their bound (a huge resource repeated per item)', async () => {
    const before = await refused(c, 'too_large');
    // One 32 KiB resource over 600 scopes of one span: 56 KB asks for ~19 MB of store bytes, past
    // the queue's 4 MiB and 64 times its size.
    const w = new WireWriter().fork();
    w.fork().fork().stringField(1, 'service.name').fork().stringField(1, 'x'.repeat(32 * 1024)).join(2).join(1).join(1);
    for (let s = 0; s < 600; s++) w.fork().fork().bytesField(1, hexBuf(randHex(16))).bytesField(2, hexBuf(randHex(8))).join(2).join(2);
    const body = w.join(1).finish();
    const r = await post(c.httpUrl, '/v1/traces', PB, body);
    expect(r.status).toBe(413);
    expect(statusOf(r).message).toMatch(/would take more than 4194304 bytes in the store/);
    expect(await refused(c, 'too_large')).toBe(before + 1);
    // Not retryable, and the collector goes on serving.
    expect(r.headers['retry-after']).toBeUndefined();
    expect((await post(c.httpUrl, '/v1/traces', PB, pbTraces('after-413', [pbSpan(randHex(16), randHex(8), 'ok')]))).status).toBe(200);
    // Over gRPC: RESOURCE_EXHAUSTED, counted once as well (the stream's close also sees the code).
    const grpcBefore = await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'too_large' });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      expect((await client.traces(body)).error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect((await client.traces(pbTraces('after-grpc-refusal', [pbSpan(randHex(16), randHex(8), 'ok')]))).error).toBeNull();
    } finally {
      client.close();
    }
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'too_large' })).toBe(grpcBefore + 1);
  });
});

describe('OTLP/HTTP status codes', () => {
  let c: TestCollector;
  const LIMIT = 64 * 1024;
  const BODY_TIMEOUT_MS = 400;
  beforeAll(async () => {
    c = await startCollector({ 'receiver.maxMessageBytes': String(LIMIT), 'receiver.http.bodyTimeoutMs': String(BODY_TIMEOUT_MS) });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('answers 200 with an empty ExportTraceServiceResponse for a full success, in protobuf', async () => {
    const traceId = randHex(16);
    const r = await post(c.httpUrl, '/v1/traces', PB, pbTraces('raw-ok', [pbSpan(traceId, randHex(8), 'ok')]));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(PB);
    expect(TraceResponse.toObject(TraceResponse.decode(r.body))).toEqual({});
    await traceSpans(c, traceId, 1);
  });

  it('answers 200 with {} for a full success in JSON, accepting a charset parameter', async () => {
    const traceId = randHex(16);
    const span = { traceId, spanId: randHex(8), name: 'ok', kind: 1, startTimeUnixNano: String(BASE_NS), endTimeUnixNano: String(BASE_NS + 5n) };
    const r = await post(c.httpUrl, '/v1/traces', 'application/json; charset=utf-8', jsonTraces('raw-ok-json', [span]));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(JSON_CT);
    expect(JSON.parse(r.body.toString())).toEqual({});
    await traceSpans(c, traceId, 1);
  });

  it('accepts an empty request as a success', async () => {
    const pb = await post(c.httpUrl, '/v1/logs', PB, new Uint8Array(0));
    expect(pb.status).toBe(200);
    expect(LogsResponse.toObject(LogsResponse.decode(pb.body))).toEqual({});
    const js = await post(c.httpUrl, '/v1/traces', JSON_CT, '{}');
    expect(js.status).toBe(200);
    expect(JSON.parse(js.body.toString())).toEqual({});
  });

  it('accepts gzip in both encodings and identity spelled out', async () => {
    const t1 = randHex(16);
    const t2 = randHex(16);
    const pb = await post(c.httpUrl, '/v1/traces', PB, gzipSync(pbTraces('raw-gzip', [pbSpan(t1, randHex(8), 'gz')])), { 'content-encoding': 'gzip' });
    expect(pb.status).toBe(200);
    const span = { traceId: t2, spanId: randHex(8), name: 'gz-json', startTimeUnixNano: String(BASE_NS), endTimeUnixNano: String(BASE_NS) };
    const js = await post(c.httpUrl, '/v1/traces', JSON_CT, gzipSync(jsonTraces('raw-gzip', [span])), { 'content-encoding': 'gzip' });
    expect(js.status).toBe(200);
    const id = await post(c.httpUrl, '/v1/logs', PB, new Uint8Array(0), { 'content-encoding': 'identity' });
    expect(id.status).toBe(200);
    await traceSpans(c, t1, 1);
    await traceSpans(c, t2, 1);
  });

  it('accepts zstd and deflate (zlib) bodies as the Collector does', async () => {
    const t1 = randHex(16);
    const t2 = randHex(16);
    const zs = await post(c.httpUrl, '/v1/traces', PB, zstdCompressSync(pbTraces('raw-zstd', [pbSpan(t1, randHex(8), 'zs')])), { 'content-encoding': 'zstd' });
    expect(zs.status).toBe(200);
    const span = { traceId: t2, spanId: randHex(8), name: 'df-json', startTimeUnixNano: String(BASE_NS), endTimeUnixNano: String(BASE_NS) };
    const df = await post(c.httpUrl, '/v1/traces', JSON_CT, deflateSync(jsonTraces('raw-deflate', [span])), { 'content-encoding': 'deflate' });
    expect(df.status).toBe(200);
    await traceSpans(c, t1, 1);
    await traceSpans(c, t2, 1);
  });

  it("accepts Content-Encoding: zlib, what the Collector's otlphttp exporter sends with compression: zlib", async () => {
    // The Collector's compressRoundTripper names its compression type as the Content-Encoding, and
    // its receiver takes zlib as deflate: a 415 here is not retried, so the export would be lost.
    const traceId = randHex(16);
    const r = await post(c.httpUrl, '/v1/traces', PB, deflateSync(pbTraces('raw-zlib', [pbSpan(traceId, randHex(8), 'zl')])), { 'content-encoding': 'zlib' });
    expect(r.status).toBe(200);
    await traceSpans(c, traceId, 1);
  });

  it('reads every frame of a zstd body (RFC 8878: one or more frames), and refuses bytes after a frame that are none', async () => {
    // Node's decompressor ends at its first frame and dropped what followed: 200 with one span of two.
    const traceId = randHex(16);
    const frames = Buffer.concat([zstdCompressSync(pbTraces('zstd-frames', [pbSpan(traceId, randHex(8), 'frame-1')])), zstdCompressSync(pbTraces('zstd-frames', [pbSpan(traceId, randHex(8), 'frame-2')]))]);
    expect((await post(c.httpUrl, '/v1/traces', PB, frames, { 'content-encoding': 'zstd' })).status).toBe(200);
    await traceSpans(c, traceId, 2);
    const trailing = Buffer.concat([zstdCompressSync(pbTraces('zstd-frames', [pbSpan(randHex(16), randHex(8), 'only')])), Buffer.from('trailing bytes that are not zstd')]);
    const bad = await post(c.httpUrl, '/v1/traces', PB, trailing, { 'content-encoding': 'zstd' });
    expect(bad.status).toBe(400);
    expect(statusOf(bad).message).toContain('zstd');
  });

  it('answers 413 when zstd or deflate inflates past the limit, and 400 for a body that is not what it claims', async () => {
    const inflated = Buffer.alloc(LIMIT * 4, 0x0a);
    for (const [enc, body] of [['zstd', zstdCompressSync(inflated)], ['deflate', deflateSync(inflated)]] as const) {
      const r = await post(c.httpUrl, '/v1/traces', JSON_CT, body, { 'content-encoding': enc });
      expect(r.status, enc).toBe(413);
      expect(statusOf(r).message).toMatch(/decompression/);
      const bad = await post(c.httpUrl, '/v1/traces', PB, Buffer.from('not compressed at all'), { 'content-encoding': enc });
      expect(bad.status, enc).toBe(400);
      expect(statusOf(bad).message).toContain(enc);
    }
  });

  it('answers 400 with a google.rpc.Status in protobuf for an undecodable protobuf body', async () => {
    // Field 1, wire type 2, length 100, then 3 bytes: truncated.
    const r = await post(c.httpUrl, '/v1/traces', PB, Buffer.from([0x0a, 0x64, 1, 2, 3]));
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toBe(PB);
    const s = statusOf(r);
    expect(s.code).toBe(3);
    expect(s.message).not.toBe('');
  });

  it('answers 400 with a google.rpc.Status in JSON for invalid JSON', async () => {
    const r = await post(c.httpUrl, '/v1/traces', JSON_CT, fixture('bad-truncated-traces.json'));
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toBe(JSON_CT);
    const s = statusOf(r);
    expect(s.code).toBe(3);
    expect(typeof s.message).toBe('string');
    expect(s.message).not.toBe('');
  });

  it('answers 400 for a body that claims gzip but is not', async () => {
    const before = await refused(c, 'bad_encoding');
    const r = await post(c.httpUrl, '/v1/logs', PB, Buffer.from('definitely not gzip'), { 'content-encoding': 'gzip' });
    expect(r.status).toBe(400);
    expect(statusOf(r).code).toBe(3);
    const truncated = gzipSync(pbTraces('t', [pbSpan(randHex(16), randHex(8), 'x')])).subarray(0, 20);
    const r2 = await post(c.httpUrl, '/v1/traces', JSON_CT, truncated, { 'content-encoding': 'gzip' });
    expect(r2.status).toBe(400);
    expect(statusOf(r2).message).toMatch(/gzip/);
    expect(await refused(c, 'bad_encoding')).toBe(before + 2);
  });

  it('answers 404 for other paths, without counting them as refused exports', async () => {
    const before = await refused(c, 'not_found');
    for (const path of ['/v1/metrics', '/', '/v1/traces//', '/v2/traces', '/v1/logsx']) {
      const r = await post(c.httpUrl, path, PB, new Uint8Array(0));
      expect(r.status, path).toBe(404);
      expect(statusOf(r).code).toBe(5);
    }
    // A query string does not change the route.
    expect((await post(c.httpUrl, '/v1/traces?x=1', PB, new Uint8Array(0))).status).toBe(200);
    // Nor does a trailing slash, which some exporters' endpoint joining leaves.
    expect((await post(c.httpUrl, '/v1/traces/', PB, new Uint8Array(0))).status).toBe(200);
    expect((await post(c.httpUrl, '/v1/logs/', PB, new Uint8Array(0))).status).toBe(200);
    expect(await refused(c, 'not_found')).toBe(before);
  });

  it('answers 414 for an overlong target as a Status in the request content type, with Expect: 100-continue too', async () => {
    const path = '/v1/traces?pad=' + 'a'.repeat(9000);
    const plain = await post(c.httpUrl, path, PB, new Uint8Array(0));
    expect(plain.status).toBe(414);
    expect(plain.headers['content-type']).toBe(PB);
    expect(statusOf(plain).code).toBe(3);
    const e = await postOnContinue(c.httpUrl, path, JSON_CT, '{}');
    expect(e.continued).toBe(false);
    expect(e.status).toBe(414);
    expect(statusOf(e).message).toMatch(/request target longer than 8192 bytes/);
  });

  it('takes a request target in absolute form (RFC 9112 3.2.2)', async () => {
    const url = new URL(c.httpUrl);
    const traceId = randHex(16);
    const r = await post(c.httpUrl, `http://${url.host}/v1/traces?x=1`, PB, pbTraces('absolute-form', [pbSpan(traceId, randHex(8), 'a')]));
    expect(r.status).toBe(200);
    expect(await traceSpans(c, traceId, 1)).toHaveLength(1);
  });

  it('answers 405 with Allow for other methods', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await raw(c.httpUrl, { method, path: '/v1/traces', headers: { 'content-type': JSON_CT } });
      expect(r.status, method).toBe(405);
      expect(r.headers['allow']).toBe('POST');
      expect(statusOf(r).code).toBe(12);
    }
    const head = await raw(c.httpUrl, { method: 'HEAD', path: '/v1/logs' });
    expect(head.status).toBe(405);
  });

  it('answers 415 for other content types, in JSON', async () => {
    const before = await refused(c, 'unsupported_media_type');
    for (const ct of ['text/plain', 'application/protobuf', 'application/grpc', 'multipart/form-data; boundary=x']) {
      const r = await post(c.httpUrl, '/v1/traces', ct, 'x');
      expect(r.status, ct).toBe(415);
      expect(r.headers['content-type']).toBe(JSON_CT);
      expect(statusOf(r).message).toMatch(/Content-Type/);
    }
    const none = await raw(c.httpUrl, { path: '/v1/logs', body: 'x' });
    expect(none.status).toBe(415);
    expect(await refused(c, 'unsupported_media_type')).toBe(before + 5);
  });

  it('answers 415 for other content encodings, with a Status in the request content type', async () => {
    const before = await refused(c, 'unsupported_encoding');
    for (const enc of ['br', 'compress', 'lz4', 'snappy', 'gzip, br', 'x-custom']) {
      const r = await post(c.httpUrl, '/v1/traces', PB, Buffer.from([1, 2, 3]), { 'content-encoding': enc });
      expect(r.status, enc).toBe(415);
      expect(r.headers['content-type']).toBe(PB);
      expect(statusOf(r).message).toMatch(/Content-Encoding/);
    }
    expect(await refused(c, 'unsupported_encoding')).toBe(before + 6);
  });

  it('answers 413 from Content-Length before reading the body', async () => {
    const before = await refused(c, 'too_large');
    // The body is never sent: the answer has to come from the header alone.
    const r = await raw(c.httpUrl, {
      path: '/v1/traces',
      headers: { 'content-type': PB, 'content-length': 1024 * 1024 * 1024 },
      write: async (req) => {
        req.flushHeaders();
      },
    });
    expect(r.status).toBe(413);
    expect(statusOf(r).code).toBe(8);
    expect(r.headers['connection']).toBe('close');
    // With Expect: 100-continue the client is told not to send.
    const e = await raw(c.httpUrl, {
      path: '/v1/logs',
      headers: { 'content-type': JSON_CT, 'content-length': LIMIT + 1, expect: '100-continue' },
      write: async (req) => {
        req.flushHeaders();
      },
    });
    expect(e.status).toBe(413);
    expect(e.continued).toBe(false);
    expect(statusOf(e).code).toBe(8);
    expect(await refused(c, 'too_large')).toBe(before + 2);
  });

  it('sends 100 Continue when the headers pass', async () => {
    const r = await postOnContinue(c.httpUrl, '/v1/traces', PB, pbTraces('continue', [pbSpan(randHex(16), randHex(8), 'c')]));
    expect(r.continued).toBe(true);
    expect(r.status).toBe(200);
  });

  it('answers 413 while streaming a chunked body past the limit', async () => {
    const before = await refused(c, 'too_large');
    let sent = 0;
    const r = await raw(c.httpUrl, {
      path: '/v1/traces',
      headers: { 'content-type': PB, 'transfer-encoding': 'chunked' },
      write: async (req, answered) => {
        const chunk = Buffer.alloc(16 * 1024, 0x0a);
        // Keep sending far past the limit; the server must answer before we are done.
        for (let i = 0; i < 4096 && !answered() && !req.destroyed; i++) {
          sent += chunk.byteLength;
          if (!req.write(chunk)) await new Promise((resolve) => req.once('drain', resolve));
        }
        if (!answered()) req.end();
      },
    });
    expect(r.status).toBe(413);
    expect(statusOf(r).code).toBe(8);
    expect(sent).toBeLessThan(64 * 1024 * 1024);
    expect(await refused(c, 'too_large')).toBe(before + 1);
  });

  it('answers 413 when gzip inflates past the limit', async () => {
    const inflated = Buffer.alloc(LIMIT * 4, 0x0a);
    const r = await post(c.httpUrl, '/v1/traces', JSON_CT, gzipSync(inflated), { 'content-encoding': 'gzip' });
    expect(r.status).toBe(413);
    expect(r.headers['content-type']).toBe(JSON_CT);
    expect(statusOf(r)).toMatchObject({ code: 8 });
    expect(statusOf(r).message).toMatch(/decompression/);
  });

  it('answers 408 when the body trickles in slower than bodyTimeoutMs', async () => {
    const before = await refused(c, 'timeout');
    const t0 = Date.now();
    const r = await raw(c.httpUrl, {
      path: '/v1/traces',
      headers: { 'content-type': PB, 'content-length': 1000 },
      write: async (req, answered) => {
        for (let i = 0; i < 1000 && !answered() && !req.destroyed; i++) {
          req.write(Buffer.from([0x0a]));
          await sleep(50);
        }
      },
    });
    const elapsed = Date.now() - t0;
    expect(r.status).toBe(408);
    expect(statusOf(r).code).toBe(4);
    expect(elapsed).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(BODY_TIMEOUT_MS + 3000);
    expect(await refused(c, 'timeout')).toBe(before + 1);
  });

  it('answers 408 for a body that stalls completely', async () => {
    const r = await raw(c.httpUrl, {
      path: '/v1/logs',
      headers: { 'content-type': JSON_CT, 'transfer-encoding': 'chunked' },
      write: async (req) => {
        req.write('{"resourceLogs": [');
      },
    });
    expect(r.status).toBe(408);
    expect(r.headers['content-type']).toBe(JSON_CT);
  });

  it('does not count a connection that never sent a byte as a timed-out request; one that began a request still counts', async () => {
    const url = new URL(c.httpUrl);
    // Node ends a connection whose request has not arrived within headersTimeout (bodyTimeoutMs
    // here) through clientError; resolves with what the server wrote before closing it.
    const idleFor = (sent: string) =>
      new Promise<string>((resolve) => {
        const s = createConnection({ host: url.hostname, port: Number(url.port) });
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('error', () => {});
        s.once('close', () => resolve(got));
        if (sent) s.write(sent);
      });
    const before = await refused(c, 'timeout');
    // A spare connection (browsers and proxies open them ahead of use) made no request.
    await idleFor('');
    expect(await refused(c, 'timeout')).toBe(before);
    // Headers that stop half-way are a request that timed out.
    expect(await idleFor('POST /v1/traces HTTP/1.1\r\nHost: localhost\r\n')).toMatch(/^HTTP\/1.1 408/);
    expect(await refused(c, 'timeout')).toBe(before + 1);
  });

  it('counts a client that goes away mid-body and keeps serving', async () => {
    const before = await refused(c, 'client_aborted');
    await new Promise<void>((resolve) => {
      const url = new URL(c.httpUrl);
      // Part of the body once the server has the request (its 100 Continue), not on a fixed 50 ms:
      // a loaded machine could go away before the collector (in this process) saw the request.
      const req = request({ host: url.hostname, port: url.port, method: 'POST', path: '/v1/traces', agent: false, headers: { 'content-type': PB, 'content-length': 1000, expect: '100-continue' } });
      req.on('error', () => resolve());
      req.once('continue', () => {
        req.write(Buffer.alloc(100, 0x0a));
        setTimeout(() => req.destroy(), 50);
      });
      req.flushHeaders();
    });
    await eventually(async () => ((await refused(c, 'client_aborted')) === before + 1 ? true : undefined), 5000, 'client_aborted counted');
  });

  it('still serves requests after refusing others (no connection or memory left behind)', async () => {
    const traceId = randHex(16);
    const r = await post(c.httpUrl, '/v1/traces', PB, pbTraces('after', [pbSpan(traceId, randHex(8), 'after')]));
    expect(r.status).toBe(200);
    await traceSpans(c, traceId, 1);
  });
});

describe('OTLP/HTTP partial success', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('protobuf: 200 with rejected_spans, the valid spans stored', async () => {
    const traceId = randHex(16);
    const good1 = randHex(8);
    const good2 = randHex(8);
    const body = pbTraces('pb-partial', [
      pbSpan(traceId, good1, 'valid one'),
      pbSpan(traceId, 'b7ad6b71', 'span id too short'),
      pbSpan('00000000000000000000000000000000', randHex(8), 'zero trace id'),
      pbSpan(traceId, good2, 'valid two', { parentSpanId: hexBuf(good1) }),
    ]);
    const r = await post(c.httpUrl, '/v1/traces', PB, body);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(PB);
    const resp = TraceResponse.toObject(TraceResponse.decode(r.body), TO_OBJECT) as { partialSuccess?: { rejectedSpans: string; errorMessage: string } };
    expect(resp.partialSuccess?.rejectedSpans).toBe('2');
    expect(resp.partialSuccess?.errorMessage).not.toBe('');
    const spans = await traceSpans(c, traceId, 2);
    expect(spans.map((s) => s.spanId).sort()).toEqual([good1, good2].sort());
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_spans_total', { transport: 'http' })).toBeGreaterThanOrEqual(2);
  });

  it('JSON: 200 with {"partialSuccess":{"rejectedSpans":"2",…}}, the valid spans stored', async () => {
    const r = await post(c.httpUrl, '/v1/traces', JSON_CT, fixture('bad-span-ids-traces.json'));
    expect(r.status).toBe(200);
    const resp = JSON.parse(r.body.toString());
    expect(Object.keys(resp)).toEqual(['partialSuccess']);
    expect(resp.partialSuccess.rejectedSpans).toBe('2');
    expect(typeof resp.partialSuccess.errorMessage).toBe('string');
    expect(resp.partialSuccess.errorMessage).not.toBe('');
    const spans = await traceSpans(c, '0af7651916cd43dd8448eb211c80319c', 2);
    expect(spans.map((s) => s.name).sort()).toEqual(['valid one', 'valid two']);
  });

  it('logs: a record nested deeper than the limit is rejected, the others stored (both encodings)', async () => {
    const service = 'logs-partial-' + randHex(3);
    const rec = (body: unknown, n: number) => ({ timeUnixNano: String(BASE_NS + BigInt(n)), severityNumber: 9, body });
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: service } }] };
    const fine = { resourceLogs: [{ resource, scopeLogs: [{ scope: { name: 'p' }, logRecords: [rec({ stringValue: 'fine' }, 1), rec({ intValue: '5' }, 3)] }] }] };
    // Concatenated messages merge: their resource_logs append.
    const pbBody = Buffer.concat([LogsRequest.encode(LogsRequest.fromObject(fine)).finish(), deepLogsRequest(service, 500, BASE_NS + 2n)]);
    const pb = await post(c.httpUrl, '/v1/logs', PB, pbBody);
    expect(pb.status).toBe(200);
    const pbResp = LogsResponse.toObject(LogsResponse.decode(pb.body), TO_OBJECT) as { partialSuccess?: { rejectedLogRecords: string } };
    expect(pbResp.partialSuccess?.rejectedLogRecords).toBe('1');
    const msg = { resourceLogs: [{ resource, scopeLogs: [{ scope: { name: 'p' }, logRecords: [rec({ stringValue: 'fine' }, 1), rec(deepValue(500), 2), rec({ intValue: '5' }, 3)] }] }] };
    const js = await post(c.httpUrl, '/v1/logs', JSON_CT, JSON.stringify(msg));
    expect(js.status).toBe(200);
    expect(JSON.parse(js.body.toString()).partialSuccess.rejectedLogRecords).toBe('1');
    await eventually(async () => {
      const r = await getJson(c.queryUrl, `/v1/logs?service=${service}`);
      const n = r.body?.resourceLogs?.[0]?.scopeLogs?.flatMap((s: { logRecords: unknown[] }) => s.logRecords).length ?? 0;
      return n === 4 ? true : undefined;
    }, 10_000, 'four stored log records');
  });
});

describe('OTLP/JSON edge cases end to end', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('accepts snake_case keys, int64 beyond 2^53 as strings and numbers, enum integers, unknown fields and uppercase hex ids', async () => {
    const r = await post(c.httpUrl, '/v1/traces', JSON_CT, fixture('traces-edge-cases.json'));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())).toEqual({});
    const got = await eventually(async () => {
      const q = await getJson(c.queryUrl, '/v1/traces/5b8efff798038103d269b633813fc60c');
      return q.status === 200 ? q.body : undefined;
    }, 10_000, 'edge-case trace');
    const rs = got.resourceSpans[0];
    expect(rs.resource.attributes).toEqual([{ key: 'service.name', value: { stringValue: 'json-edge-cases' } }]);
    expect(rs.scopeSpans[0].scope).toMatchObject({ name: 'edge-scope', version: '0.0.1' });
    const span = rs.scopeSpans[0].spans[0];
    expect(span).toMatchObject({
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: 'eee19b7ec3c1b174',
      parentSpanId: '',
      name: 'snake_case span',
      kind: 3,
      startTimeUnixNano: '1750000000123456789',
      endTimeUnixNano: '1750000001987654321',
      status: { code: 2, message: 'boom' },
    });
    expect(span.attributes).toEqual([
      { key: 'int64.max.string', value: { intValue: '9223372036854775807' } },
      { key: 'int64.min.string', value: { intValue: '-9223372036854775808' } },
      { key: 'int.beyond.2^53.number', value: { intValue: '9007199254740993' } },
      { key: 'double', value: { doubleValue: 0.1 } },
      { key: 'bytes', value: { bytesValue: 'AAEC/w==' } },
      { key: 'kv', value: { kvlistValue: { values: [{ key: 'a', value: { boolValue: true } }] } } },
      { key: 'arr', value: { arrayValue: { values: [{ stringValue: 'x' }, { intValue: '1' }] } } },
    ]);
    expect(span.events).toEqual([{ timeUnixNano: '1750000000500000001', name: 'ev', attributes: [], droppedAttributesCount: 0 }]);
  });
});

/** A memory backend whose writes wait until `open()`: the write queue fills and stays full. */
async function stallingBackend(): Promise<{ backend: StorageBackend; open: () => void }> {
  const cfg = loadConfig({ flags: { 'storage.backend': 'memory' } });
  const inner = await createBackend(cfg, { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const backend: StorageBackend = {
    name: inner.name,
    encoder: inner.encoder,
    start: () => inner.start(),
    write: async (b) => {
      await gate;
      return inner.write(b);
    },
    getTrace: (t, id) => inner.getTrace(t, id),
    readTrace: (t, id, max) => inner.readTrace(t, id, max),
    searchTraces: (t, q) => inner.searchTraces(t, q),
    searchLogs: (t, q) => inner.searchLogs(t, q),
    getServices: (t) => inner.getServices(t),
    getOperations: (t, q) => inner.getOperations(t, q),
    getDependencies: (t, q) => inner.getDependencies(t, q),
    scanSpans: (t, q) => inner.scanSpans(t, q),
    scanLogs: (t, q) => inner.scanLogs(t, q),
    health: () => inner.health(),
    shutdown: () => inner.shutdown(),
  };
  return { backend, open };
}

describe('OTLP/HTTP overload', () => {
  let c: TestCollector;
  let open: () => void;
  const QUEUE = 16 * 1024;
  beforeAll(async () => {
    const s = await stallingBackend();
    open = s.open;
    c = await startCollector({ 'writer.maxQueueBytes': String(QUEUE) }, { backend: s.backend });
  });
  afterAll(async () => {
    open?.();
    await c?.stop();
  });

  const padded = (traceId: string, bytes: number) => pbTraces('overload', [pbSpan(traceId, randHex(8), 'padded', { attributes: [{ key: 'padding', value: { stringValue: 'x'.repeat(bytes) } }] })]);

  function expectRetryable(r: Reply): void {
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    const s = statusOf(r);
    expect(s.code).toBe(14);
    if (String(r.headers['content-type']).startsWith(PB)) {
      expect(s.details?.[0]?.type_url).toBe('type.googleapis.com/google.rpc.RetryInfo');
      const retry = RetryInfo.toObject(RetryInfo.decode(s.details![0]!.value), { longs: Number }) as { retryDelay: { seconds?: number; nanos?: number } };
      expect((retry.retryDelay.seconds ?? 0) * 1000 + (retry.retryDelay.nanos ?? 0) / 1e6).toBeGreaterThan(0);
    }
  }

  it('answers 503 with Retry-After and a RetryInfo Status when the write queue has no room, never 500', async () => {
    const first = randHex(16);
    expect((await post(c.httpUrl, '/v1/traces', PB, padded(first, 2048))).status).toBe(200);
    // Its rows sit in the queue behind a stalled write; the queue is not full yet.
    await eventually(async () => (c.collector.writer.queueBytes > 0 ? true : undefined), 5000, 'queued bytes');
    expect(c.collector.writer.isFull).toBe(false);

    const before = await refused(c, 'queue_full');
    // Read, then refused by the ingest path: this request does not fit beside what is queued.
    const pb = await post(c.httpUrl, '/v1/traces', PB, padded(randHex(16), QUEUE + 1024));
    expectRetryable(pb);
    const js = await post(c.httpUrl, '/v1/logs', JSON_CT, JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: 'x'.repeat(QUEUE + 1024) } }] }] }] }));
    expectRetryable(js);
    expect(js.headers['content-type']).toBe(JSON_CT);
    expect(await refused(c, 'queue_full')).toBe(before + 2);
  });

  it('charges an OTLP/JSON body eight times its bytes: refused where the same size of protobuf fits', async () => {
    // What the first test queued is still there (the write is stalled).
    const room = QUEUE - c.collector.writer.queueBytes;
    expect(room).toBeGreaterThan(8 * 1024);
    const pad = Math.floor(room / 5);
    const span = { traceId: randHex(16), spanId: randHex(8), name: 'json', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000000001', attributes: [{ key: 'padding', value: { stringValue: 'x'.repeat(pad) } }] };
    const json = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
    expect(json.length).toBeLessThan(room / 2);
    const before = await refused(c, 'queue_full');
    const js = await post(c.httpUrl, '/v1/traces', JSON_CT, json);
    expectRetryable(js);
    expect(await refused(c, 'queue_full')).toBe(before + 1);
    expect((await post(c.httpUrl, '/v1/traces', PB, padded(randHex(16), pad))).status).toBe(200);
  });

  it('refuses before reading the body once the queue is full', async () => {
    // Fill the queue: a request is admitted when its charge (the rows it is expected to make:
    // 1.25 times its body in the memory store's format) fits the room left, and its rows (the
    // body plus an index header) then take what they take. A body of the room left over the
    // charge leaves a fifth of the room less the header, so a few such bodies fill the queue.
    const growth = async (body: Uint8Array) => {
      const before = c.collector.writer.queueBytes;
      expect((await post(c.httpUrl, '/v1/traces', PB, body)).status).toBe(200);
      return c.collector.writer.queueBytes - before - body.length;
    };
    expect(await growth(padded(randHex(16), 10))).toBeGreaterThan(0);
    for (let i = 0; i < 8 && !c.collector.writer.isFull; i++) {
      const target = Math.floor((QUEUE - c.collector.writer.queueBytes) / STORE_BYTES_PER_REQUEST_BYTE.otlp);
      const traceId = randHex(16);
      let pad = Math.max(0, target - padded(traceId, 0).length);
      while (pad > 0 && padded(traceId, pad).length > target) pad--;
      await growth(padded(traceId, pad));
    }
    expect(c.collector.writer.isFull).toBe(true);
    const before = await refused(c, 'queue_full');
    const r = await raw(c.httpUrl, {
      path: '/v1/traces',
      headers: { 'content-type': PB, 'content-length': 4096 },
      // Headers only: the answer must not wait for the body.
      write: async (req) => {
        req.flushHeaders();
      },
    });
    expectRetryable(r);
    expect(r.headers['connection']).toBe('close');
    expect(await refused(c, 'queue_full')).toBe(before + 1);
  });

  it('accepts again once the backend catches up', async () => {
    open();
    await eventually(async () => (c.collector.writer.queueBytes === 0 ? true : undefined), 10_000, 'an empty queue');
    const again = randHex(16);
    expect((await post(c.httpUrl, '/v1/traces', PB, padded(again, 10))).status).toBe(200);
    await traceSpans(c, again, 1);
  });
});

describe('OTLP/HTTP CORS', () => {
  let cors: TestCollector;
  let plain: TestCollector;
  beforeAll(async () => {
    cors = await startCollector({ 'receiver.http.corsAllowedOrigins': 'https://app.example.com,https://*.example.org' });
    plain = await startCollector();
  });
  afterAll(async () => {
    await cors?.stop();
    await plain?.stop();
  });

  const preflight = (base: string, origin: string) =>
    raw(base, {
      method: 'OPTIONS',
      path: '/v1/traces',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,content-encoding,x-api-key' },
    });

  it('answers a preflight from an allowed origin', async () => {
    for (const origin of ['https://app.example.com', 'https://ui.example.org']) {
      const r = await preflight(cors.httpUrl, origin);
      expect(r.status).toBe(204);
      expect(r.headers['access-control-allow-origin']).toBe(origin);
      expect(r.headers['access-control-allow-methods']).toMatch(/POST/);
      expect(String(r.headers['access-control-allow-headers']).toLowerCase()).toContain('content-type');
      expect(String(r.headers['access-control-allow-headers']).toLowerCase()).toContain('x-api-key');
      expect(Number(r.headers['access-control-max-age'])).toBeGreaterThan(0);
      // Beacons are sent with credentials: without it the browser drops them after the preflight.
      expect(r.headers['access-control-allow-credentials']).toBe('true');
    }
  });

  it('gives a disallowed origin no CORS headers', async () => {
    const r = await preflight(cors.httpUrl, 'https://evil.example.net');
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    expect(r.headers['access-control-allow-credentials']).toBeUndefined();
    const p = await post(cors.httpUrl, '/v1/traces', JSON_CT, '{}', { origin: 'https://evil.example.net' });
    expect(p.status).toBe(200);
    expect(p.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('adds Access-Control-Allow-Origin to answers for an allowed origin, errors included', async () => {
    const ok = await post(cors.httpUrl, '/v1/traces', JSON_CT, '{}', { origin: 'https://app.example.com' });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(ok.headers['vary']).toMatch(/Origin/);
    const bad = await post(cors.httpUrl, '/v1/traces', JSON_CT, 'not json', { origin: 'https://app.example.com' });
    expect(bad.status).toBe(400);
    expect(bad.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(String(bad.headers['access-control-expose-headers'])).toMatch(/Retry-After/i);
  });

  it('has no CORS when not configured', async () => {
    const r = await preflight(plain.httpUrl, 'https://app.example.com');
    expect(r.status).toBe(405);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    const p = await post(plain.httpUrl, '/v1/traces', JSON_CT, '{}', { origin: 'https://app.example.com' });
    expect(p.status).toBe(200);
    expect(p.headers['access-control-allow-origin']).toBeUndefined();
  });

  it("allows any origin with '*'", async () => {
    const any = await startCollector({ 'receiver.http.corsAllowedOrigins': '*' });
    try {
      const r = await preflight(any.httpUrl, 'http://localhost:5173');
      expect(r.status).toBe(204);
      expect(r.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    } finally {
      await any.stop();
    }
  });
});

describe('OTLP/HTTP shutdown', () => {
  it('lets a request in flight finish and stores it before the writer drains', async () => {
    const c = await startCollector();
    const traceId = randHex(16);
    const body = pbTraces('shutdown', [pbSpan(traceId, randHex(8), 'in flight')]);
    let stopping: Promise<number> | undefined;
    // The stop comes once the server has the request (its 100 Continue), not after a fixed 100 ms:
    // a loaded machine could run the stop before the connection was accepted, and it was reset.
    const r = await raw(c.httpUrl, {
      path: '/v1/traces',
      headers: { 'content-type': PB, 'content-length': body.byteLength, expect: '100-continue' },
      write: async (req) => {
        req.flushHeaders();
        await new Promise((resolve) => req.once('continue', resolve));
        req.write(body.subarray(0, 5));
        await sleep(100);
        stopping = c.stop();
        await sleep(100);
        req.end(body.subarray(5));
      },
    });
    expect(r.status).toBe(200);
    await stopping;
    expect(await c.collector.backend.getTrace(TENANT, traceId)).toHaveLength(1);
    // New connections are refused once stopped.
    await expect(post(c.httpUrl, '/v1/traces', PB, body)).rejects.toThrow();
  });
});
