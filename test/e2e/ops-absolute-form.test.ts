// The operations port (8888) takes a request target in absolute form (RFC 9112 3.2.2: a server
// MUST accept it), as the OTLP/HTTP receiver and the read API do: a scrape or probe passed on by a
// forwarding proxy as `GET http://host:8888/metrics` reaches /metrics, /healthz and /readyz.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type TestCollector } from '../helpers/collector.ts';

/** GETs a raw request target (sent as it is) and returns the status and body. */
function getTarget(base: string, target: string): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: target }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('operations endpoints with an absolute-form request target', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(() => c?.stop());

  it('answers /metrics, /healthz and /readyz as for their origin form', async () => {
    const host = new URL(c.opsUrl).host;
    const metrics = await getTarget(c.opsUrl, `http://${host}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('tracehouse_ready ');
    expect((await getTarget(c.opsUrl, `http://${host}/healthz`)).status).toBe(200);
    const ready = await getTarget(c.opsUrl, `http://${host}/readyz?verbose=1`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready' });
    expect((await getTarget(c.opsUrl, `http://${host}/nothing`)).status).toBe(404);
  });
});
