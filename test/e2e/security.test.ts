// TLS, mTLS, bearer tokens and tenants end to end: a collector with certificates made here by
// openssl and a tokens file, the real OpenTelemetry SDK exporters configured the standard way
// (OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_HEADERS, client certificate variables),
// and what a user would check: data arrives, plain and unauthenticated requests are refused with
// the right status, and one tenant never sees another's traces, logs or services.
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeCert, servedCertificates, type Pem } from '../helpers/certs.ts';
import { eventually, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';
import { sendSdkLogs, sendSdkTrace } from '../helpers/sdk.ts';
import { tempDir } from '../helpers/tmp.ts';

const TOKENS = {
  acme: 'acme-ingest-and-read-' + randomBytes(8).toString('hex'),
  globex: 'globex-ingest-and-read-' + randomBytes(8).toString('hex'),
  acmeReadOnly: 'acme-read-only-' + randomBytes(8).toString('hex'),
  acmeIngestOnly: 'acme-ingest-only-' + randomBytes(8).toString('hex'),
};

function tokensFile(dir: string): string {
  const file = join(dir, 'tokens.yaml');
  const sha = createHash('sha256').update(TOKENS.globex).digest('hex');
  writeFileSync(
    file,
    `tokens:
  - token: "${TOKENS.acme}"
    tenant: acme
    scopes: [ingest, read]
  - tokenSha256: "${sha}"
    tenant: globex
    scopes: [ingest, read]
  - token: "${TOKENS.acmeReadOnly}"
    tenant: acme
    scopes: [read]
  - token: "${TOKENS.acmeIngestOnly}"
    tenant: acme
    scopes: [ingest]
`,
  );
  return file;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface Call {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  ca?: Buffer;
  client?: Pem;
}

/** One HTTP(S) request with Node's own client (fetch cannot take a private CA or a client certificate). */
function call(url: string, o: Call = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const opts = { method: o.method ?? 'GET', headers: o.headers ?? {}, ...(o.ca ? { ca: o.ca } : {}), ...(o.client ? { cert: o.client.cert, key: o.client.key } : {}) };
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, opts, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(o.body);
  });
}

const https = (plainUrl: string) => plainUrl.replace('http://', 'https://');
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** An OTLP protobuf trace request of one span of `service` in trace `traceId`. */
function oneSpan(service: string, traceId = randomBytes(16)): { body: Uint8Array; traceId: string } {
  const now = BigInt(Date.now()) * 1_000_000n;
  const body = encodeTraces({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8), name: 'op', kind: 2, startTimeUnixNano: now.toString(), endTimeUnixNano: (now + 1000n).toString() }] }],
      },
    ],
  });
  return { body, traceId: traceId.toString('hex') };
}

/** Sets OTEL_* variables for the exporters built inside fn (they read them when constructed). */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('TLS and bearer tokens on every listener, tenants through the read API', () => {
  let dir: string;
  let ca: Pem;
  let c: TestCollector;
  const logLines: string[] = [];

  beforeAll(async () => {
    dir = tempDir('tracehouse-sec-');
    ca = makeCa(dir, 'test-ca');
    const server = makeCert(dir, ca, 'localhost');
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          logLines.push(chunk.toString('utf8'));
          cb();
        },
      }),
    );
    c = await startCollector(
      { 'storage.backend': 'sqlite', 'tls.certFile': server.certFile, 'tls.keyFile': server.keyFile, 'auth.tokensFile': tokensFile(dir), 'ops.requireAuth': 'true' },
      { logger },
    );
  });
  afterAll(async () => c?.stop());

  it('takes traces from the SDK OTLP/HTTP exporter over TLS with its bearer token, and reads them back as that tenant only', async () => {
    const caFile = join(dir, 'test-ca.crt');
    // The space percent-encoded, as README and the chart's NOTES write it (the variable is W3C Baggage).
    const env = { OTEL_EXPORTER_OTLP_CERTIFICATE: caFile, OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer%20${TOKENS.acme}` };
    const { spans, service } = await withEnv(env, () => sendSdkTrace(new ProtoTraceExporter({ url: `${https(c.httpUrl)}/v1/traces`, timeoutMillis: 10_000 })));
    const traceId = spans[0]!.spanContext().traceId;
    const mine = await eventually(async () => {
      const r = await call(`${https(c.queryUrl)}/v1/traces/${traceId}`, { ca: ca.cert, headers: bearer(TOKENS.acmeReadOnly) });
      return r.status === 200 ? JSON.parse(r.body) : undefined;
    }, 10_000, 'trace readable by acme');
    expect(mine.resourceSpans[0].scopeSpans[0].spans).toHaveLength(spans.length);
    // Another tenant: the id is unknown, the service never listed or found.
    expect((await call(`${https(c.queryUrl)}/v1/traces/${traceId}`, { ca: ca.cert, headers: bearer(TOKENS.globex) })).status).toBe(404);
    expect(JSON.parse((await call(`${https(c.queryUrl)}/api/services`, { ca: ca.cert, headers: bearer(TOKENS.globex) })).body).data).not.toContain(service);
    expect(JSON.parse((await call(`${https(c.queryUrl)}/v1/traces?service=${service}`, { ca: ca.cert, headers: bearer(TOKENS.globex) })).body).traces).toEqual([]);
    expect((await call(`${https(c.queryUrl)}/api/traces/${traceId}`, { ca: ca.cert, headers: bearer(TOKENS.globex) })).status).toBe(404);
    expect(JSON.parse((await call(`${https(c.queryUrl)}/api/services`, { ca: ca.cert, headers: bearer(TOKENS.acme) })).body).data).toContain(service);
  });

  it('takes traces and logs from the SDK OTLP/gRPC exporters over TLS (OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_HEADERS)', async () => {
    const env = { OTEL_EXPORTER_OTLP_CERTIFICATE: join(dir, 'test-ca.crt'), OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer ${TOKENS.globex}` };
    const url = `https://localhost:${c.collector.grpc!.boundPort}`;
    // The exporters read the files when they first connect, so the variables stay set while they send.
    const { spans, service } = await withEnv(env, () => sendSdkTrace(new GrpcTraceExporter({ url })));
    const { logs } = await withEnv(env, () => sendSdkLogs(new GrpcLogExporter({ url })));
    const traceId = spans[0]!.spanContext().traceId;
    await eventually(async () => ((await call(`${https(c.queryUrl)}/v1/traces/${traceId}`, { ca: ca.cert, headers: bearer(TOKENS.globex) })).status === 200 ? true : undefined), 10_000, 'trace readable by globex');
    expect((await call(`${https(c.queryUrl)}/v1/traces/${traceId}`, { ca: ca.cert, headers: bearer(TOKENS.acme) })).status).toBe(404);
    const logTrace = logs.find((l) => l.spanContext)!.spanContext!.traceId;
    const theirs = await eventually(async () => {
      const r = JSON.parse((await call(`${https(c.queryUrl)}/v1/logs?traceId=${logTrace}`, { ca: ca.cert, headers: bearer(TOKENS.globex) })).body);
      return r.resourceLogs.length > 0 ? r : undefined;
    }, 10_000, 'logs readable by globex');
    expect(theirs.resourceLogs[0].scopeLogs[0].logRecords.length).toBeGreaterThan(0);
    expect(JSON.parse((await call(`${https(c.queryUrl)}/v1/logs?traceId=${logTrace}`, { ca: ca.cert, headers: bearer(TOKENS.acme) })).body).resourceLogs).toEqual([]);
    expect(JSON.parse((await call(`${https(c.queryUrl)}/api/services`, { ca: ca.cert, headers: bearer(TOKENS.acme) })).body).data).not.toContain(service);
  });

  it('refuses plain HTTP and plain gRPC on the TLS ports', async () => {
    for (const url of [c.httpUrl + '/v1/traces', c.queryUrl + '/v1/traces', c.opsUrl + '/healthz']) {
      await expect(call(url, { method: url.endsWith('/healthz') ? 'GET' : 'POST' })).rejects.toThrow();
    }
    expect(await metricValueTls(c, ca.cert, 'tracehouse_tls_handshake_failures_total', { listener: 'receiver.http' })).toBeGreaterThanOrEqual(1);
    expect(await metricValueTls(c, ca.cert, 'tracehouse_tls_handshake_failures_total', { listener: 'query' })).toBeGreaterThanOrEqual(1);
    const plain = new RawOtlpClient(c.grpcAddress);
    const r = await plain.traces(oneSpan('plain').body);
    plain.close();
    expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('answers OTLP/HTTP ingest without a valid token 401 with WWW-Authenticate, and without the ingest scope 403', async () => {
    const { body } = oneSpan('refused-http');
    const post = (headers: Record<string, string>) => call(`${https(c.httpUrl)}/v1/traces`, { method: 'POST', ca: ca.cert, body, headers: { 'content-type': 'application/x-protobuf', ...headers } });
    const before = await metricValueTls(c, ca.cert, 'tracehouse_receiver_refused_requests_total', { transport: 'http', reason: 'unauthenticated' });
    const missing = await post({});
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="tracehouse"');
    const wrong = await post(bearer('not-a-token-of-this-collector'));
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="tracehouse", error="invalid_token"');
    expect((await post({ authorization: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' })).status).toBe(401);
    expect((await post(bearer(TOKENS.acmeReadOnly))).status).toBe(403);
    expect((await post(bearer(TOKENS.acmeIngestOnly))).status).toBe(200);
    expect(await metricValueTls(c, ca.cert, 'tracehouse_receiver_refused_requests_total', { transport: 'http', reason: 'unauthenticated' })).toBe(before + 3);
  });

  it('answers gRPC ingest without a valid token UNAUTHENTICATED, and without the ingest scope PERMISSION_DENIED', async () => {
    const client = new RawOtlpClient(`localhost:${c.collector.grpc!.boundPort}`, {}, grpc.credentials.createSsl(ca.cert));
    const md = (token?: string) => {
      const m = new grpc.Metadata();
      if (token !== undefined) m.set('authorization', `Bearer ${token}`);
      return m;
    };
    const { body } = oneSpan('refused-grpc');
    try {
      expect((await client.traces(body, md())).error?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await client.traces(body, md('unknown-token-unknown-token'))).error?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await client.logs(body, md(TOKENS.acmeReadOnly))).error?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect((await client.traces(body, md(TOKENS.acmeIngestOnly))).error).toBeNull();
    } finally {
      client.close();
    }
    expect(await metricValueTls(c, ca.cert, 'tracehouse_auth_refused_requests_total', { listener: 'grpc', reason: 'forbidden' })).toBeGreaterThanOrEqual(1);
  });

  it('needs a read token for the read API and /metrics, leaves /healthz, /readyz and the UI page open', async () => {
    const get = (base: string, path: string, headers: Record<string, string> = {}) => call(`${https(base)}${path}`, { ca: ca.cert, headers });
    for (const path of ['/v1/traces', '/v1/logs', '/api/services', `/v1/traces/${'ab'.repeat(16)}`]) {
      const r = await get(c.queryUrl, path);
      expect([path, r.status]).toEqual([path, 401]);
      expect(r.headers['www-authenticate']).toBe('Bearer realm="tracehouse"');
      expect((await get(c.queryUrl, path, bearer(TOKENS.acmeIngestOnly))).status).toBe(403);
    }
    expect((await get(c.queryUrl, '/')).status).toBe(200);
    expect((await get(c.opsUrl, '/metrics')).status).toBe(401);
    expect((await get(c.opsUrl, '/metrics', bearer(TOKENS.acmeIngestOnly))).status).toBe(403);
    expect((await get(c.opsUrl, '/metrics', bearer(TOKENS.acmeReadOnly))).status).toBe(200);
    expect((await get(c.opsUrl, '/healthz')).status).toBe(200);
    expect((await get(c.opsUrl, '/readyz')).status).toBe(200);
  });

  it('never writes a token into its log', () => {
    expect(logLines.length).toBeGreaterThan(0);
    const all = logLines.join('');
    for (const t of Object.values(TOKENS)) expect(all).not.toContain(t);
  });
});

describe('mTLS: client certificates required and verified', () => {
  let dir: string;
  let ca: Pem;
  let client: Pem;
  let stranger: Pem;
  let c: TestCollector;

  beforeAll(async () => {
    dir = tempDir('tracehouse-mtls-');
    ca = makeCa(dir, 'mtls-ca');
    const server = makeCert(dir, ca, 'localhost');
    client = makeCert(dir, ca, 'client', 'client');
    // A certificate from a CA the collector does not trust.
    stranger = makeCert(dir, makeCa(dir, 'other-ca'), 'stranger', 'client');
    c = await startCollector({ 'tls.certFile': server.certFile, 'tls.keyFile': server.keyFile, 'tls.clientCaFile': ca.certFile, 'ops.tls.mode': 'off' });
  });
  afterAll(async () => c?.stop());

  it('serves a client with a certificate the CA signed and refuses one without or with a stranger', async () => {
    const url = `${https(c.queryUrl)}/api/services`;
    expect((await call(url, { ca: ca.cert, client })).status).toBe(200);
    await expect(call(url, { ca: ca.cert })).rejects.toThrow();
    await expect(call(url, { ca: ca.cert, client: stranger })).rejects.toThrow();
    // ops.tls.mode=off: the kubelet's probes need no certificate.
    expect((await call(`${c.opsUrl}/healthz`)).status).toBe(200);
  });

  it('takes OTLP/gRPC from the SDK exporter with its client certificate, and refuses a client without one', async () => {
    const env = { OTEL_EXPORTER_OTLP_CERTIFICATE: ca.certFile, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: client.certFile, OTEL_EXPORTER_OTLP_CLIENT_KEY: client.keyFile };
    const { spans } = await withEnv(env, () => sendSdkTrace(new GrpcTraceExporter({ url: `https://localhost:${c.collector.grpc!.boundPort}` })));
    const traceId = spans[0]!.spanContext().traceId;
    await eventually(async () => ((await call(`${https(c.queryUrl)}/v1/traces/${traceId}`, { ca: ca.cert, client })).status === 200 ? true : undefined), 10_000, 'trace stored');
    const anonymous = new RawOtlpClient(`localhost:${c.collector.grpc!.boundPort}`, {}, grpc.credentials.createSsl(ca.cert));
    const r = await anonymous.traces(oneSpan('anonymous').body);
    anonymous.close();
    expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('takes OTLP/HTTP with a client certificate and refuses it without', async () => {
    const { body } = oneSpan('mtls-http');
    const post = (o: Call) => call(`${https(c.httpUrl)}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' }, ...o });
    expect((await post({ ca: ca.cert, client })).status).toBe(200);
    await expect(post({ ca: ca.cert })).rejects.toThrow();
  });
});

describe('certificate rotation through the collector', () => {
  it('serves the rotated certificate on all four ports without a restart', async () => {
    const { ca, b, certFile, keyFile } = servedCertificates(tempDir('tracehouse-rotate-'), 'rotate-ca');
    const c = await startCollector({ 'tls.certFile': certFile, 'tls.keyFile': keyFile, 'tls.reloadCheckIntervalMs': '100' });
    try {
      const ports = [c.collector.grpc!.boundPort, c.collector.http!.boundPort, c.collector.query!.boundPort, c.collector.ops.boundPort];
      const names = () => Promise.all(ports.map((port) => peerName(port, ca.cert)));
      expect(await names()).toEqual(['server-a', 'server-a', 'server-a', 'server-a']);
      writeFileSync(keyFile, b.key);
      writeFileSync(certFile, b.cert);
      await eventually(async () => ((await names()).every((n) => n === 'server-b') ? true : undefined), 10_000, 'every port on the rotated certificate');
    } finally {
      await c.stop();
    }
  });
});

/** The CN of the certificate a TLS port presents to a new connection. */
function peerName(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      const cn = String(s.getPeerCertificate().subject.CN);
      s.end();
      resolve(cn);
    });
    s.on('error', reject);
  });
}

describe('tokens file reload through the collector', () => {
  it('stops accepting a token removed from the file, without a restart', async () => {
    const dir = tempDir('tracehouse-revoke-');
    const file = join(dir, 'tokens.yaml');
    const kept = 'kept-token-' + randomBytes(8).toString('hex');
    const revoked = 'revoked-token-' + randomBytes(8).toString('hex');
    const entry = (t: string) => `  - token: "${t}"\n    tenant: acme\n    scopes: [read]\n`;
    writeFileSync(file, 'tokens:\n' + entry(kept) + entry(revoked));
    const c = await startCollector({ 'auth.tokensFile': file, 'auth.reloadCheckIntervalMs': '100' });
    try {
      const status = async (t: string) => (await call(`${c.queryUrl}/api/services`, { headers: bearer(t) })).status;
      expect(await status(revoked)).toBe(200);
      writeFileSync(file, 'tokens:\n' + entry(kept));
      await eventually(async () => ((await status(revoked)) === 401 ? true : undefined), 10_000, 'the revoked token refused');
      expect(await status(kept)).toBe(200);
    } finally {
      await c.stop();
    }
  });
});

describe('start-up with unusable security files', () => {
  it('stops before any port opens, naming the key and the path', async () => {
    const missing = join(tempDir('tracehouse-sec-bad-'), 'nope.pem');
    await expect(startCollector({ 'tls.certFile': missing, 'tls.keyFile': missing })).rejects.toThrow(/tls\.certFile = ".*nope\.pem": cannot read the file \(ENOENT\)/);
    await expect(startCollector({ 'auth.tokensFile': missing })).rejects.toThrow(/auth\.tokensFile = ".*nope\.pem": cannot read the file \(ENOENT\)/);
  });
});

/** A metric read from /metrics over TLS with a read token (the collector above has ops.requireAuth). */
async function metricValueTls(c: TestCollector, ca: Buffer, name: string, labels: Record<string, string>): Promise<number> {
  const text = (await call(`${https(c.opsUrl)}/metrics`, { ca, headers: bearer(TOKENS.acmeReadOnly) })).body;
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)\{([^}]*)\}\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = Object.fromEntries(m[2]!.split(',').map((p) => [p.slice(0, p.indexOf('=')), JSON.parse(p.slice(p.indexOf('=') + 1)) as string]));
    if (Object.entries(labels).every(([k, v]) => ls[k] === v)) sum += Number(m[3]);
  }
  return sum;
}
