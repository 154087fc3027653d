// On a loopback address the OTLP/HTTP receiver and the operations endpoints answer only requests
// for this machine's names, as the read API does (read-api.test.ts): a web page whose name was
// pointed at 127.0.0.1 once loaded (DNS rebinding) is same-origin with them, so neither CORS nor
// a preflight would stop it posting spans or reading /metrics through a local browser.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';

interface Reply {
  status: number | undefined;
  body: string;
}

/** A request to `url` that names `host` in its Host header; with `body`, a POST of OTLP/JSON (and Expect: 100-continue when asked). */
function withHost(url: string, host: string, body?: string, expectContinue = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string> = { host };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
      if (expectContinue) headers['expect'] = '100-continue';
    }
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: body === undefined ? 'GET' : 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    // With Expect the body waits for 100 Continue, which a refused request never gets.
    if (body !== undefined && expectContinue) req.on('continue', () => req.end(body));
    else req.end(body);
  });
}

const traceIds = new Set<string>();
/** An OTLP/JSON request with one span of a new trace; its trace id is remembered in traceIds. */
function exportBody(service: string): { body: string; traceId: string } {
  const traceId = (traceIds.size + 1).toString(16).padStart(32, 'a');
  traceIds.add(traceId);
  const span = { traceId, spanId: '0102030405060708', name: 'op', kind: 1, startTimeUnixNano: String(Date.now() * 1e6), endTimeUnixNano: String(Date.now() * 1e6 + 1000) };
  const body = JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ spans: [span] }] }] });
  return { body, traceId };
}

async function stored(c: TestCollector, traceId: string): Promise<number> {
  const got = await getJson(c.queryUrl, `/v1/traces/${traceId}`);
  return got.status === 200 ? (got.body as { resourceSpans: unknown[] }).resourceSpans.length : 0;
}

describe('loopback listeners and the Host they are asked for', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'delivery.ack': 'stored', 'receiver.http.allowedHosts': 'otlp.internal.example', 'ops.allowedHosts': 'ops.internal.example' });
  });
  afterAll(async () => {
    await c.stop();
  });

  it('the OTLP/HTTP receiver stores what this machine names send and refuses a page rebound to 127.0.0.1', async () => {
    const { port } = new URL(c.httpUrl);
    // An app in a container (Docker Desktop, Podman) exports to the host by a name of their own.
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `app.localhost:${port}`, 'otlp.internal.example', `host.docker.internal:${port}`, 'host.containers.internal']) {
      const { body, traceId } = exportBody('own');
      expect((await withHost(`${c.httpUrl}/v1/traces`, host, body)).status, host).toBe(200);
      expect(await stored(c, traceId), host).toBe(1);
    }
    const before = await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'http', reason: 'foreign_host' });
    for (const expectContinue of [false, true]) {
      const { body, traceId } = exportBody('rebound');
      const r = await withHost(`${c.httpUrl}/v1/traces`, `rebind.attacker.example:${port}`, body, expectContinue);
      expect(r.status, `expect 100-continue: ${expectContinue}`).toBe(403);
      expect(r.body).toContain('receiver.http.allowedHosts');
      expect(await stored(c, traceId)).toBe(0);
    }
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'http', reason: 'foreign_host' })).toBe(before + 2);
  });

  it('counts a refusal for the Host apart from a bearer token without the ingest scope', async () => {
    // reason="forbidden" is a token without the ingest scope (README, Security): an operator who
    // sees it rise looks at tokens, not at a proxy's Host missing from receiver.http.allowedHosts.
    const { port } = new URL(c.httpUrl);
    const labels = (reason: string) => ({ transport: 'http', reason });
    const forbidden = await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', labels('forbidden'));
    const foreign = await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', labels('foreign_host'));
    const { body } = exportBody('rebound');
    expect((await withHost(`${c.httpUrl}/v1/traces`, `rebind.attacker.example:${port}`, body)).status).toBe(403);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', labels('forbidden'))).toBe(forbidden);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', labels('foreign_host'))).toBe(foreign + 1);
  });

  it('the operations endpoints answer this machine and a named proxy, and refuse a page rebound to 127.0.0.1', async () => {
    const { port } = new URL(c.opsUrl);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, 'ops.internal.example']) {
      const r = await withHost(`${c.opsUrl}/metrics`, host);
      expect(r.status, host).toBe(200);
      expect(r.body).toContain('tracehouse_receiver_refused_requests_total');
    }
    for (const path of ['/metrics', '/readyz', '/healthz']) {
      const r = await withHost(`${c.opsUrl}${path}`, `rebind.attacker.example:${port}`);
      expect(r.status, path).toBe(403);
      expect(r.body).not.toContain('tracehouse_');
      expect(r.body).toContain('ops.allowedHosts');
    }
  });

  it('a loopback address in another spelling (127.1, or a name of this machine that resolves to 127.0.0.1) is loopback too', async () => {
    // Node binds such a listen address as 127.0.0.1: the listener is as reachable by a rebound page.
    const spelled = await startCollector({ 'receiver.http.listen': '127.1:0', 'query.listen': '127.1:0', 'ops.listen': '127.1:0' });
    try {
      const { body, traceId } = exportBody('rebound-127.1');
      const otlp = await withHost(`${spelled.httpUrl}/v1/traces`, 'rebind.attacker.example', body);
      expect(otlp.status).toBe(403);
      expect(otlp.body).toContain('receiver.http.allowedHosts');
      expect(await stored(spelled, traceId)).toBe(0);
      const ops = await withHost(`${spelled.opsUrl}/metrics`, 'rebind.attacker.example');
      expect(ops.status).toBe(403);
      expect(ops.body).toContain('ops.allowedHosts');
      const read = await withHost(`${spelled.queryUrl}/api/services`, 'rebind.attacker.example');
      expect(read.status).toBe(403);
      expect(read.body).toContain('query.allowedHosts');
      // This machine's names are still answered.
      expect((await withHost(`${spelled.opsUrl}/healthz`, 'localhost')).status).toBe(200);
    } finally {
      await spelled.stop();
    }
  });

  it('on an address other hosts reach, names are the network’s business', async () => {
    const open = await startCollector({ 'receiver.http.listen': '0.0.0.0:0', 'ops.listen': '0.0.0.0:0' });
    try {
      const { body } = exportBody('open');
      expect((await withHost(`${open.httpUrl}/v1/traces`, 'tracehouse.monitoring.svc:4318', body)).status).toBe(200);
      expect((await withHost(`${open.opsUrl}/readyz`, 'tracehouse.monitoring.svc:8888')).status).toBe(200);
    } finally {
      await open.stop();
    }
  });
});
