// deploy/Dockerfile's HEALTHCHECK against a collector serving TLS (tls.certFile set, the ops port
// inheriting it): the container must not turn unhealthy because its own check speaks plain HTTP.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeCa, makeCert } from '../helpers/certs.ts';
import { startCollector } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const DOCKERFILE = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
const line = DOCKERFILE.split('\n').find((l) => l.startsWith('HEALTHCHECK'))!;
const [, ...ARGS] = JSON.parse(/CMD\s+(\[.*\])\s*$/.exec(line)![1]!) as string[];

function runHealthcheck(env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    execFile(process.execPath, ARGS, { env: { ...process.env, ...env }, timeout: 15_000 }, (err) => resolve(err ? Number(err.code ?? 1) : 0));
  });
}

function httpsStatus(port: string, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/healthz', ca }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject).end();
  });
}

function httpsBody(port: string, path: string, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, ca }, (res) => {
      let t = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (t += d));
      res.on('end', () => resolve(t));
    }).on('error', reject).end();
  });
}

describe('deploy/Dockerfile with TLS', () => {
  it('HEALTHCHECK passes on a running collector whose ops port serves TLS, and fails once it stopped', async () => {
    const dir = tempDir();
    const ca = makeCa(dir, 'ca');
    const server = makeCert(dir, ca, 'server');
    const c = await startCollector({ 'storage.backend': 'memory', 'tls.certFile': server.certFile, 'tls.keyFile': server.keyFile });
    const port = new URL(c.opsUrl).port;
    const env = { TRACEHOUSE_OPS_LISTEN: `0.0.0.0:${port}` };
    try {
      expect(await httpsStatus(port, ca.cert)).toBe(200);
      expect(await runHealthcheck(env)).toBe(0);
    } finally {
      await c.stop();
    }
    expect(await runHealthcheck(env)).toBe(1);
  });

  it('counts no failed TLS handshake at each check (it asks over HTTPS first)', async () => {
    const dir = tempDir();
    const ca = makeCa(dir, 'ca');
    const server = makeCert(dir, ca, 'server');
    const c = await startCollector({ 'storage.backend': 'memory', 'tls.certFile': server.certFile, 'tls.keyFile': server.keyFile });
    const port = new URL(c.opsUrl).port;
    try {
      expect(await runHealthcheck({ TRACEHOUSE_OPS_LISTEN: `0.0.0.0:${port}` })).toBe(0);
      await new Promise((r) => setTimeout(r, 200));
      const metrics = await httpsBody(port, '/metrics', ca.cert);
      expect(/tracehouse_tls_handshake_failures_total\{listener="ops"\} (\d+)/.exec(metrics)?.[1]).toBe('0');
    } finally {
      await c.stop();
    }
  });
});
