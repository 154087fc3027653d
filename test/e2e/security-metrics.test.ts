// The security metrics as Prometheus scrapes them: the counters start at 0 for every label set the
// collector can count, as the other counters do (src/telemetry/metrics.ts), so that
// rate()/increase() see the first refusal, failed reload or failed handshake (a series born at 1
// shows an increase of 0); and each TLS listener's certificate expiry follows rotations.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeCa, makeCert } from '../helpers/certs.ts';
import { eventually, startCollector } from '../helpers/collector.ts';
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

/**
 * A collector whose listeners inherit a certificate valid for a day (tls.certFile, the ops port
 * plain), its files checked every 100 ms; renew() swaps in one valid for 30 days, key first, as a
 * Secret swap delivers both.
 */
async function rotatingCollector(prefix: string) {
  const dir = tempDir(prefix);
  const ca = makeCa(dir, 'ca');
  const first = makeCert(dir, ca, 'localhost', 'server', 1);
  const renewed = makeCert(dir, ca, 'renewed', 'server', 30);
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  writeFileSync(certFile, first.cert);
  writeFileSync(keyFile, first.key);
  const c = await startCollector({ 'tls.certFile': certFile, 'tls.keyFile': keyFile, 'ops.tls.mode': 'off', 'tls.reloadCheckIntervalMs': '100' });
  const renew = (): void => {
    writeFileSync(keyFile, renewed.key);
    writeFileSync(certFile, readFileSync(renewed.certFile));
  };
  /** A series' value on the ops port's /metrics (`name{labels}`), or undefined when not exported. */
  const metric = async (series: string): Promise<number | undefined> => {
    const line = (await (await fetch(`${c.opsUrl}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };
  return { c, renew, metric };
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
      // What Grafana's metric browser shows of them: every reason counted is named, and the port
      // whose handshakes are not counted is said (an operator would read its 0 as no failures).
      const help = (name: string) => text.split('\n').find((l) => l.startsWith(`# HELP ${name} `)) ?? '';
      for (const reason of ['missing', 'malformed', 'unknown']) expect(help('tracehouse_auth_refused_requests_total')).toContain(reason);
      expect(help('tracehouse_tls_handshake_failures_total')).toMatch(/gRPC port's are not counted/);
    } finally {
      await c.stop();
    }
  });

  it('exports when each listener\'s certificate expires, and follows a rotation', async () => {
    const { c, renew, metric } = await rotatingCollector('tracehouse-expiry-');
    try {
      const expiry = (listener: string) => metric(`tracehouse_tls_certificate_expiry_timestamp_seconds{listener="${listener}"}`);
      const day = 86_400;
      const now = Date.now() / 1000;
      for (const listener of ['receiver.grpc', 'receiver.http', 'query']) {
        const e = await expiry(listener);
        expect(e, listener).toBeDefined();
        expect(Math.abs(e! - (now + day)), listener).toBeLessThan(120);
      }
      // The ops port serves plain: no certificate to expire.
      expect(await expiry('ops')).toBeUndefined();

      // A renewal (key first, then the certificate, as a Secret swap delivers both).
      renew();
      // Each listener watches its files on its own timer, so one may see the renewal before another.
      const renewedOn = async (listener: string) => ((await expiry(listener)) ?? 0) > now + 29 * day;
      for (const listener of ['query', 'receiver.grpc', 'receiver.http']) {
        await eventually(async () => ((await renewedOn(listener)) ? true : undefined), 10_000, `the renewed expiry on ${listener}`);
      }
    } finally {
      await c.stop();
    }
  });

  it('exports certificates and handshake counts of the listeners that serve only', async () => {
    // A disabled listener inheriting tls.certFile serves nothing: a series for it put its name in
    // TracehouseCertificateExpiring's alerts and the dashboard beside the ports that do serve.
    const dir = tempDir('tracehouse-disabled-');
    const ca = makeCa(dir, 'ca');
    const server = makeCert(dir, ca, 'localhost');
    const c = await startCollector({ 'tls.certFile': server.certFile, 'tls.keyFile': server.keyFile, 'ops.tls.mode': 'off', 'receiver.grpc.enabled': 'false', 'query.enabled': 'false' });
    try {
      const text = await (await fetch(`${c.opsUrl}/metrics`)).text();
      const listeners = (name: string) => [...text.matchAll(new RegExp(`^${name}\\{listener="([^"]+)"\\}`, 'gm'))].map((m) => m[1]);
      expect(listeners('tracehouse_tls_certificate_expiry_timestamp_seconds')).toEqual(['receiver.http']);
      expect(listeners('tracehouse_tls_handshake_failures_total')).toEqual(['receiver.http']);
    } finally {
      await c.stop();
    }
  });

  it('counts one rotation of the certificate files the listeners share once, not once per listener', async () => {
    // tls.certFile serves every listener that inherits it; each checks the files on its own timer.
    // One rotation, or one check of a refused file, is one event for the operator (the dashboard's
    // reload rate, increase() over a day): counted per listener it read 3 (4 with the ops port).
    const { c, renew, metric: scrapeValue } = await rotatingCollector('tracehouse-reloads-');
    try {
      const now = Date.now() / 1000;
      renew();
      for (const listener of ['receiver.grpc', 'receiver.http', 'query']) {
        const series = `tracehouse_tls_certificate_expiry_timestamp_seconds{listener="${listener}"}`;
        await eventually(async () => (((await scrapeValue(series)) ?? 0) > now + 29 * 86_400 ? true : undefined), 10_000, `the renewed expiry on ${listener}`);
      }
      // A few more checks: nothing changed, nothing more to count.
      await new Promise((r) => setTimeout(r, 500));
      expect(await scrapeValue('tracehouse_security_reloads_total{file="tls",result="applied"}')).toBe(1);
      expect(await scrapeValue('tracehouse_security_reloads_total{file="tls",result="failed"}')).toBe(0);
    } finally {
      await c.stop();
    }
  });
});
