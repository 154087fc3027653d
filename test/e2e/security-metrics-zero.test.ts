// The security counters start at 0 for every label set the collector can count, as the
// other counters do (src/telemetry/metrics.ts), so that rate()/increase() see the first refusal,
// failed reload or failed handshake. A series born at 1 shows an increase of 0 in Prometheus.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeCa, makeCert } from '../helpers/certs.ts';
import { startCollector } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

function scrape(url: string, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('security counters before their first event', () => {
  it('are exported at 0 for each label set the configuration can count', async () => {
    const dir = tempDir('tracehouse-secmetrics-');
    const ca = makeCa(dir, 'ca');
    const server = makeCert(dir, ca, 'localhost');
    const tokens = join(dir, 'tokens.yaml');
    writeFileSync(tokens, `tokens:\n  - token: "t-${randomBytes(12).toString('hex')}"\n    tenant: acme\n    scopes: [ingest, read]\n`);
    const c = await startCollector({ 'tls.certFile': server.certFile, 'tls.keyFile': server.keyFile, 'auth.tokensFile': tokens });
    try {
      const text = await scrape(`https://127.0.0.1:${c.collector.ops.boundPort}/metrics`, ca.cert);
      const has = (series: string) => text.split('\n').includes(`${series} 0`);
      const missing = [
        'tracehouse_security_reloads_total{file="tokens",result="failed"}',
        'tracehouse_security_reloads_total{file="tls",result="failed"}',
        'tracehouse_auth_refused_requests_total{listener="grpc",reason="unknown"}',
        'tracehouse_auth_refused_requests_total{listener="http",reason="missing"}',
        'tracehouse_auth_refused_requests_total{listener="query",reason="forbidden"}',
        'tracehouse_tls_handshake_failures_total{listener="receiver.http"}',
        'tracehouse_tls_handshake_failures_total{listener="query"}',
      ].filter((s) => !has(s));
      expect(missing).toEqual([]);
    } finally {
      await c.stop();
    }
  });
});
