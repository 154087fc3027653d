// The read API and the operations endpoints as a user calls them.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';

describe('read API and operations endpoints', () => {
  let c: TestCollector;
  let client: RawOtlpClient;
  const service = 'read-' + randomBytes(4).toString('hex');
  const traceId = randomBytes(16);
  const rootId = randomBytes(8);
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'sqlite', 'query.maxLimit': '50' });
    client = new RawOtlpClient(c.grpcAddress);
    const res = await client.traces(
      encodeTraces({
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
            scopeSpans: [
              {
                spans: [
                  { traceId, spanId: rootId, name: 'GET /a', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000250000000', attributes: [{ key: 'http.route', value: { stringValue: '/a' } }] },
                  { traceId, spanId: randomBytes(8), parentSpanId: rootId, name: 'db', startTimeUnixNano: '1700000000010000000', endTimeUnixNano: '1700000000020000000', status: { code: 2, message: 'x' } },
                ],
              },
            ],
          },
        ],
      }),
    );
    expect(res.error).toBeNull();
    await eventually(async () => ((await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`)).status === 200 ? true : undefined));
  });
  afterAll(async () => {
    client?.close();
    await c?.stop();
  });

  it('finds traces with summaries by service, name, time, duration and attribute', async () => {
    const q = (s: string) => getJson(c.queryUrl, `/v1/traces?service=${service}${s}`);
    const all = await q('');
    expect(all.status).toBe(200);
    expect(all.body.traces).toEqual([
      { traceId: traceId.toString('hex'), rootServiceName: service, rootSpanName: 'GET /a', startTimeUnixNano: '1700000000000000000', durationNano: '250000000', spanCount: 2, hasError: true },
    ]);
    expect((await q('&name=db')).body.traces).toHaveLength(1);
    expect((await q('&name=nope')).body.traces).toHaveLength(0);
    expect((await q('&minDurationMs=200')).body.traces).toHaveLength(1);
    expect((await q('&minDurationMs=200&name=db')).body.traces).toHaveLength(0);
    expect((await q('&maxDurationMs=5')).body.traces).toHaveLength(0);
    expect((await q('&start=2023-11-14T22:13:19Z&end=2023-11-14T22:13:21Z')).body.traces).toHaveLength(1);
    expect((await q('&start=1700000001000000000')).body.traces).toHaveLength(0);
    expect((await q('&attr=http.route=/a')).body.traces).toHaveLength(1);
    expect((await q('&attr=http.route=/b')).body.traces).toHaveLength(0);
  });

  it('accepts trace ids in upper case and answers 404 for unknown ones', async () => {
    expect((await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex').toUpperCase()}`)).status).toBe(200);
    const missing = await getJson(c.queryUrl, `/v1/traces/${'0'.repeat(31)}1`);
    expect(missing.status).toBe(404);
  });

  it.each([
    ['/v1/traces/xyz', 'traceId'],
    ['/v1/traces?limit=0', 'limit'],
    ['/v1/traces?limit=51', 'limit'],
    ['/v1/traces?limit=ten', 'limit'],
    ['/v1/traces?start=yesterday', 'start'],
    ['/v1/traces?start=99999999999999999999', 'start'],
    ['/v1/traces/%E0%A4%A', 'traceId'],
    ['/v1/traces?minDurationMs=1000000000000000000000', 'minDurationMs'],
    ['/v1/traces?minDurationMs=-1', 'minDurationMs'],
    ['/v1/traces?minDurationMs=5&maxDurationMs=1', 'minDurationMs'],
    ['/v1/traces?attr=novalue', 'attr'],
    ['/v1/traces?servce=x', 'servce'],
    ['/v1/logs?traceId=abc', 'traceId'],
    ['/v1/logs?minSeverity=25', 'minSeverity'],
    ['/v1/logs?service=a&service=b', 'service'],
  ])('answers %s with 400 naming %s', async (path, param) => {
    const r = await getJson(c.queryUrl, path);
    expect(r.status).toBe(400);
    expect(r.body.error.startsWith(param + ':')).toBe(true);
  });

  it('answers a request target that is no URL with 400, not as a store failure', async () => {
    // Absolute-form targets (a proxy's), malformed: new URL threw, which read as 503 "storage unavailable".
    for (const target of ['http://[bad/v1/traces', 'http://a:b@/api/services']) {
      const { port } = new URL(c.queryUrl);
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: target }, (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status, target).toBe(400);
    }
  });

  it("on its loopback listener, answers this machine's names and refuses a web page's rebound to 127.0.0.1 (DNS rebinding)", async () => {
    const withHost = (url: string, host: string, path: string) => new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
      const { hostname, port } = new URL(url);
      const req = request({ host: hostname.replace(/^\[(.*)\]$/, '$1'), port, path, headers: { host } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('error', reject);
      req.end();
    });
    const { port } = new URL(c.queryUrl);
    const path = `/api/traces/${traceId.toString('hex')}`;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `app.localhost:${port}`, 'LOCALHOST.']) {
      expect((await withHost(c.queryUrl, host, path)).status, host).toBe(200);
    }
    // The page's name, as the browser sends it once the name resolves to 127.0.0.1: refused, the UI's shell too.
    for (const p of [path, '/v1/traces', '/']) {
      const r = await withHost(c.queryUrl, `rebind.attacker.example:${port}`, p);
      expect(r.status, p).toBe(403);
      expect(r.body).toContain('query.allowedHosts');
    }
    // A proxy on this machine that passes its own Host is named in query.allowedHosts.
    const proxied = await startCollector({ 'query.allowedHosts': 'traces.internal.example' });
    try {
      expect((await withHost(proxied.queryUrl, 'traces.internal.example', '/api/services')).status).toBe(200);
      expect((await withHost(proxied.queryUrl, 'other.example', '/api/services')).status).toBe(403);
    } finally {
      await proxied.stop();
    }
    // Loopback spelled otherwise is loopback all the same.
    for (const listen of ['LOCALHOST:0', '[0:0:0:0:0:0:0:1]:0', '[::ffff:127.0.0.1]:0']) {
      const other = await startCollector({ 'query.listen': listen });
      try {
        const url = listen.startsWith('[0:') ? `http://[::1]:${other.collector.query!.boundPort}` : `http://127.0.0.1:${other.collector.query!.boundPort}`;
        expect((await withHost(url, 'rebind.attacker.example', '/api/services')).status, listen).toBe(403);
      } finally {
        await other.stop();
      }
    }
    // On an address other hosts reach, names are the network's business (a Service, an Ingress).
    const open = await startCollector({ 'query.listen': '0.0.0.0:0' });
    try {
      const { port: openPort } = new URL(open.queryUrl);
      expect((await withHost(`http://127.0.0.1:${openPort}`, 'tracehouse.monitoring.svc', '/api/services')).status).toBe(200);
    } finally {
      await open.stop();
    }
  });

  it('answers unknown paths with 404 and other methods with 405', async () => {
    expect((await fetch(c.queryUrl + '/v2/whatever')).status).toBe(404);
    const post = await fetch(c.queryUrl + '/v1/traces', { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toContain('GET');
  });

  it('serves health, readiness and the metrics named in the docs', async () => {
    expect((await getJson(c.opsUrl, '/healthz')).status).toBe(200);
    expect((await getJson(c.opsUrl, '/readyz')).body).toEqual({ status: 'ready' });
    const text = await (await fetch(c.opsUrl + '/metrics')).text();
    for (const name of [
      'tracehouse_receiver_accepted_spans_total',
      'tracehouse_receiver_refused_spans_total',
      'tracehouse_receiver_accepted_log_records_total',
      'tracehouse_receiver_refused_log_records_total',
      'tracehouse_queue_size_bytes',
      'tracehouse_queue_capacity_bytes',
      'tracehouse_writer_written_rows_total',
      'tracehouse_writer_failed_batches_total',
      'tracehouse_writer_batch_duration_seconds',
      'tracehouse_worker_decode_duration_seconds',
      'tracehouse_worker_heap_bytes',
      'process_cpu_seconds_total',
    ]) {
      expect(text).toContain(`# TYPE ${name}`);
    }
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_spans_total', { transport: 'grpc' })).toBe(2);
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total', { backend: 'sqlite', signal: 'traces' })).toBe(2);
    expect(await metricValue(c.opsUrl, 'tracehouse_queue_capacity_bytes')).toBe(256 * 1024 * 1024);
    expect(await metricValue(c.opsUrl, 'tracehouse_worker_heap_bytes')).toBeGreaterThan(1024 * 1024);
  });
});

describe('memory backend bounds', () => {
  it('evicts the oldest spans past maxSpans and counts them', async () => {
    const c = await startCollector({ 'storage.memory.maxSpans': '10' });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      const traces = Array.from({ length: 15 }, () => randomBytes(16));
      for (const t of traces) {
        const res = await client.traces(encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: t, spanId: randomBytes(8), name: 'x', startTimeUnixNano: '1', endTimeUnixNano: '2' }] }] }] }));
        expect(res.error).toBeNull();
        c.collector.writer.flush();
      }
      await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total')) === 15 ? true : undefined));
      expect(await metricValue(c.opsUrl, 'tracehouse_storage_evicted_rows_total', { signal: 'traces' })).toBe(5);
      expect((await getJson(c.queryUrl, `/v1/traces/${traces[0]!.toString('hex')}`)).status).toBe(404);
      expect((await getJson(c.queryUrl, `/v1/traces/${traces[14]!.toString('hex')}`)).status).toBe(200);
    } finally {
      client.close();
      await c.stop();
    }
  });
});
