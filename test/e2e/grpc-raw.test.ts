// Raw OTLP/gRPC requests for what the SDK cannot produce, and every non-OK answer.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gated, memoryBackend } from '../helpers/backends.ts';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { LogsResponse, RawOtlpClient, RetryInfo, RpcStatus, TraceResponse, encodeLogs, encodeTraces } from '../helpers/otlp-proto.ts';

const id = (n: number) => randomBytes(n);
const SERVING = 1;
const NOT_SERVING = 2;

/** grpc.health.v1 by hand: the request and response are one small field each. */
class HealthClient {
  private readonly client: grpc.Client;
  constructor(address: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
  }
  private static request(service: string): Buffer {
    return Buffer.from(service ? [0x0a, service.length, ...Buffer.from(service)] : []);
  }
  check(service: string): Promise<{ err: grpc.ServiceError | null; status?: number }> {
    return new Promise((resolve) =>
      this.client.makeUnaryRequest('/grpc.health.v1.Health/Check', (a: Buffer) => a, (b: Buffer) => b, HealthClient.request(service), (err, value) =>
        resolve({ err, status: value && value.length >= 2 ? value[1] : 0 }),
      ),
    );
  }
  watch(service: string): { seen: number[]; cancel: () => void } {
    const seen: number[] = [];
    const call = this.client.makeServerStreamRequest('/grpc.health.v1.Health/Watch', (a: Buffer) => a, (b: Buffer) => b, HealthClient.request(service));
    call.on('data', (b: Buffer) => seen.push(b.length >= 2 ? b[1]! : 0));
    call.on('error', () => {});
    return { seen, cancel: () => call.cancel() };
  }
  close(): void {
    this.client.close();
  }
}

/** Lists services through grpc.reflection.v1 (what grpcurl list does). */
async function listServicesByReflection(address: string): Promise<string[]> {
  const def = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [fileURLToPath(new URL('../../node_modules/@grpc/reflection/build/proto/', import.meta.url))] });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<string[]>((resolve, reject) => {
      const call = client.ServerReflectionInfo();
      call.on('data', (r: any) => {
        resolve((r.listServicesResponse?.service ?? []).map((s: any) => s.name as string));
        call.end();
      });
      call.on('error', reject);
      call.write({ listServices: '' });
    });
  } finally {
    client.close();
  }
}
const kv = (key: string, value: Record<string, unknown>) => ({ key, value });

function spanObj(traceId: Buffer, spanId: Buffer, extra: Record<string, unknown> = {}) {
  return { traceId, spanId, name: 'op', kind: 2, startTimeUnixNano: '1700000000000000001', endTimeUnixNano: '1700000000000000002', ...extra };
}

function traceRequest(spans: unknown[], service = 'raw-svc') {
  return encodeTraces({ resourceSpans: [{ resource: { attributes: [kv('service.name', { stringValue: service })] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] });
}

describe('OTLP/gRPC raw requests', () => {
  let c: TestCollector;
  let client: RawOtlpClient;
  beforeAll(async () => {
    c = await startCollector({ 'receiver.maxMessageBytes': String(1024 * 1024) });
    client = new RawOtlpClient(c.grpcAddress, { 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  });
  afterAll(async () => {
    client?.close();
    await c?.stop();
  });

  it('keeps int64 beyond 2^53, bytes, kvlists and deep nesting exact', async () => {
    const traceId = id(16);
    const nested = { kvlistValue: { values: [kv('level1', { arrayValue: { values: [{ kvlistValue: { values: [kv('level3', { intValue: '-9223372036854775808' })] } }, { bytesValue: Buffer.from([0xde, 0xad]) }] } })] } };
    const res = await client.traces(
      traceRequest([
        spanObj(traceId, id(8), {
          startTimeUnixNano: '1700000000123456789',
          endTimeUnixNano: '9223372036854775807',
          attributes: [kv('max', { intValue: '9223372036854775807' }), kv('over53', { intValue: '9007199254740993' }), kv('raw', { bytesValue: Buffer.from('hi\u0000there') }), kv('tree', nested), kv('d', { doubleValue: 1e-300 })],
        }),
      ]),
    );
    expect(res.error).toBeNull();
    expect(TraceResponse.toObject(TraceResponse.decode(res.response!))).toEqual({});
    const doc = await eventually(async () => {
      const r = await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`);
      return r.status === 200 ? r.body : undefined;
    });
    const span = doc.resourceSpans[0].scopeSpans[0].spans[0];
    const attr = (k: string) => span.attributes.find((a: any) => a.key === k).value;
    expect(attr('max')).toEqual({ intValue: '9223372036854775807' });
    expect(attr('over53')).toEqual({ intValue: '9007199254740993' });
    expect(attr('raw')).toEqual({ bytesValue: Buffer.from('hi\u0000there').toString('base64') });
    expect(attr('tree')).toEqual({ kvlistValue: { values: [{ key: 'level1', value: { arrayValue: { values: [{ kvlistValue: { values: [{ key: 'level3', value: { intValue: '-9223372036854775808' } }] } }, { bytesValue: '3q0=' }] } } }] } });
    expect(attr('d')).toEqual({ doubleValue: 1e-300 });
    expect(span.startTimeUnixNano).toBe('1700000000123456789');
  });

  it('stores the valid spans and reports the invalid ones as partial success', async () => {
    const traceId = id(16);
    const before = await metricValue(c.opsUrl, 'tracehouse_receiver_refused_spans_total', { transport: 'grpc' });
    const res = await client.traces(
      traceRequest([
        spanObj(traceId, id(8)),
        spanObj(traceId, id(8)),
        spanObj(Buffer.alloc(16), id(8)), // all-zero trace id
        spanObj(id(15), id(8)), // short trace id
        spanObj(traceId, Buffer.alloc(8)), // all-zero span id
        spanObj(traceId, id(4)), // short span id
      ]),
    );
    expect(res.error).toBeNull();
    const body = TraceResponse.toObject(TraceResponse.decode(res.response!), { longs: String });
    expect(body.partialSuccess.rejectedSpans).toBe('4');
    expect(body.partialSuccess.errorMessage).toMatch(/trace id/);
    expect(body.partialSuccess.errorMessage).toMatch(/span id/);
    const stored = await eventually(async () => {
      const r = await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`);
      return r.status === 200 ? r.body.resourceSpans[0].scopeSpans[0].spans : undefined;
    });
    expect(stored).toHaveLength(2);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_spans_total', { transport: 'grpc' })).toBe(before + 4);
  });

  it('keeps log records with missing or malformed ids, stored as not linked', async () => {
    const service = 'raw-logs-' + id(4).toString('hex');
    const rec = (extra: Record<string, unknown>) => ({ timeUnixNano: '1700000000000000005', severityNumber: 9, body: { stringValue: 'x' }, ...extra });
    const res = await client.logs(
      encodeLogs({
        resourceLogs: [{ resource: { attributes: [kv('service.name', { stringValue: service })] }, scopeLogs: [{ logRecords: [rec({ traceId: id(16), spanId: id(8) }), rec({}), rec({ traceId: id(5) })] }] }],
      }),
    );
    expect(res.error).toBeNull();
    expect(LogsResponse.toObject(LogsResponse.decode(res.response!))).toEqual({});
    const logs = await eventually(async () => {
      const r = await getJson(c.queryUrl, `/v1/logs?service=${service}`);
      const recs = r.body?.resourceLogs?.[0]?.scopeLogs?.[0]?.logRecords;
      return recs?.length === 3 ? recs : undefined;
    });
    expect(logs.filter((l: any) => l.traceId === '')).toHaveLength(2);
  });

  it('accepts gzip-compressed requests', async () => {
    const traceId = id(16);
    const gz = new RawOtlpClient(c.grpcAddress, { 'grpc.default_compression_algorithm': 2 });
    const res = await gz.traces(traceRequest([spanObj(traceId, id(8))]));
    gz.close();
    expect(res.error).toBeNull();
    await eventually(async () => ((await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`)).status === 200 ? true : undefined));
  });

  it('answers an empty request with success', async () => {
    const res = await client.traces(new Uint8Array(0));
    expect(res.error).toBeNull();
    expect(TraceResponse.toObject(TraceResponse.decode(res.response!))).toEqual({});
  });

  it('answers undecodable bytes with INVALID_ARGUMENT', async () => {
    const res = await client.traces(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    expect(res.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('answers a request over the limit with RESOURCE_EXHAUSTED, also when it only grows past it while inflating', async () => {
    const big = traceRequest([spanObj(id(16), id(8), { name: 'x'.repeat(2 * 1024 * 1024) })]);
    expect((await client.traces(big)).error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(gzipSync(big).byteLength).toBeLessThan(1024 * 1024);
    const gz = new RawOtlpClient(c.grpcAddress, { 'grpc.default_compression_algorithm': 2, 'grpc.max_send_message_length': 64 * 1024 * 1024 });
    const res = await gz.traces(big);
    gz.close();
    expect(res.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // Both counted, as OTLP/HTTP counts its 413s (grpc-js answers them itself, past any interceptor).
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'too_large' })) === 2 ? true : undefined));
  });

  it('serves the standard gRPC health check for what it serves, NOT_FOUND for anything else', async () => {
    const health = new HealthClient(c.grpcAddress);
    expect(await health.check('')).toEqual({ err: null, status: SERVING });
    expect(await health.check('opentelemetry.proto.collector.trace.v1.TraceService')).toEqual({ err: null, status: SERVING });
    expect(await health.check('opentelemetry.proto.collector.logs.v1.LogsService')).toEqual({ err: null, status: SERVING });
    expect((await health.check('opentelemetry.proto.collector.metrics.v1.MetricsService')).err?.code).toBe(grpc.status.NOT_FOUND);
    expect((await health.check('no.such.Service')).err?.code).toBe(grpc.status.NOT_FOUND);
    health.close();
  });

  it('answers server reflection, so grpcurl can list the services', async () => {
    const services = await listServicesByReflection(c.grpcAddress);
    expect(services).toEqual(
      expect.arrayContaining(['opentelemetry.proto.collector.trace.v1.TraceService', 'opentelemetry.proto.collector.logs.v1.LogsService', 'grpc.health.v1.Health']),
    );
  });

  it('accepts deflate-compressed requests (grpc-encoding: deflate)', async () => {
    const traceId = id(16);
    const df = new RawOtlpClient(c.grpcAddress, { 'grpc.default_compression_algorithm': 1 });
    const res = await df.traces(traceRequest([spanObj(traceId, id(8), { name: 'deflated' })]));
    df.close();
    expect(res.error).toBeNull();
    await eventually(async () => ((await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`)).status === 200 ? true : undefined));
  });
});

describe('OTLP/gRPC calls to a service it does not serve (MetricsService/Export)', () => {
  // Each answered UNIMPLEMENTED without its request read; its stream stayed open until the
  // connection closed. An SDK pointed at the collector for every signal sends one a minute on the
  // connection its exporters share: past maxConcurrentStreams, trace and log exports failed too.
  it('let their streams go: exports on the same connection go through after more of them than the stream limit', async () => {
    const c = await startCollector({ 'receiver.grpc.maxConcurrentStreams': '4' });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      for (let i = 0; i < 6; i++) expect((await client.metrics(new Uint8Array(10))).error?.code, `metrics call ${i}`).toBe(grpc.status.UNIMPLEMENTED);
      expect((await client.traces(traceRequest([spanObj(id(16), id(8))]))).error).toBeNull();
    } finally {
      client.close();
    }
    // Nor do they hold the stop for the receivers' whole grace (10 s).
    const t0 = Date.now();
    await c.stop();
    expect(Date.now() - t0).toBeLessThan(5000);
  }, 30_000);
});

describe('OTLP/gRPC when the write queue is full', () => {
  it('answers UNAVAILABLE with RetryInfo, then accepts again once storage catches up, losing nothing', async () => {
    const gate = gated(await memoryBackend());
    gate.close();
    const c = await startCollector({ 'writer.maxQueueBytes': '4096', 'writer.flushIntervalMs': '1' }, { backend: gate.backend });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      const traceId = id(16);
      const first = await client.traces(traceRequest([spanObj(traceId, id(8), { name: 'a'.repeat(5000) })]));
      expect(first.error).toBeNull();
      const refused = await client.traces(traceRequest([spanObj(traceId, id(8), { name: 'b'.repeat(3000) })]));
      expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
      const details = refused.error!.metadata.get('grpc-status-details-bin')[0] as Buffer;
      const status = RpcStatus.toObject(RpcStatus.decode(details), { longs: Number }) as any;
      expect(status.code).toBe(grpc.status.UNAVAILABLE);
      expect(status.details[0].type_url).toBe('type.googleapis.com/google.rpc.RetryInfo');
      const retry = RetryInfo.toObject(RetryInfo.decode(status.details[0].value), { longs: Number }) as any;
      expect(retry.retryDelay.seconds * 1000 + (retry.retryDelay.nanos ?? 0) / 1e6).toBeGreaterThan(0);
      // The same delay as the trailer the Python SDK's exporter reads (only there): without it,
      // that exporter retried on its own 1, 2, 4 s.
      const trailer = refused.error!.metadata.get('google.rpc.retryinfo-bin')[0] as Buffer;
      expect(RetryInfo.toObject(RetryInfo.decode(trailer), { longs: Number })).toEqual(retry);
      expect((await getJson(c.opsUrl, '/readyz')).status).toBe(503);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'queue_full' })).toBe(1);
      // gRPC health follows readiness: a Watch stream hears NOT_SERVING, then SERVING again.
      const health = new HealthClient(c.grpcAddress);
      const watched = health.watch('');
      await eventually(async () => ((await health.check('')).status === NOT_SERVING ? true : undefined), 5000, 'NOT_SERVING');

      gate.open();
      await eventually(async () => ((await getJson(c.opsUrl, '/readyz')).status === 200 ? true : undefined));
      await eventually(async () => ((await health.check('')).status === SERVING ? true : undefined), 5000, 'SERVING again');
      await eventually(async () => (watched.seen.includes(NOT_SERVING) && watched.seen.at(-1) === SERVING ? true : undefined), 5000, 'watch updates');
      watched.cancel();
      health.close();
      const again = await client.traces(traceRequest([spanObj(traceId, id(8), { name: 'c' })]));
      expect(again.error).toBeNull();
      const names = await eventually(async () => {
        const r = await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`);
        const spans = r.body?.resourceSpans?.[0]?.scopeSpans?.[0]?.spans;
        return spans?.length === 2 ? spans.map((s: any) => s.name[0]).sort() : undefined;
      });
      expect(names).toEqual(['a', 'c']);
    } finally {
      client.close();
      gate.open();
      await c.stop();
    }
  });
});
