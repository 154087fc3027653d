// Building the security components from the configuration: what each listener gets, and the
// start-up errors that name the option and path.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { createSecurity, type Security } from '../../src/security/index.ts';
import { makeCa, makeCert, type Pem } from '../helpers/certs.ts';
import { tempDir } from '../helpers/tmp.ts';

const logger = pino({ level: 'silent' });
const built: Security[] = [];
afterEach(() => {
  for (const s of built.splice(0)) s.shutdown();
});
function build(flags: Record<string, string>, registry = new Registry()): Security {
  const s = createSecurity(loadConfig({ flags }), logger, registry);
  built.push(s);
  return s;
}

let dir: string;
let server: Pem;
let ca: Pem;
beforeAll(() => {
  dir = tempDir();
  ca = makeCa(dir, 'ca');
  server = makeCert(dir, ca, 'server');
});

describe('createSecurity', () => {
  it('without options: every listener plain, no tokens', () => {
    const s = build({});
    expect(s.tls).toEqual({});
    expect(s.tokens).toBeUndefined();
    expect(s.opsRequireAuth).toBe(false);
  });

  it('gives each listener its certificates, mTLS where a client CA applies, none where turned off', () => {
    const s = build({ 'tls.certFile': server.certFile, 'tls.keyFile': server.keyFile, 'tls.clientCaFile': ca.certFile, 'ops.tls.mode': 'off', 'query.tls.mode': 'tls' });
    expect(Object.keys(s.tls).sort()).toEqual(['query', 'receiver.grpc', 'receiver.http']);
    expect(s.tls['receiver.grpc']!.mutual).toBe(true);
    expect(s.tls['query']!.mutual).toBe(false);
    s.start();
  });

  it('stops start-up naming the option and path of a missing file', () => {
    const missing = join(dir, 'missing.key');
    expect(() => build({ 'tls.certFile': server.certFile, 'tls.keyFile': missing })).toThrow(ConfigError);
    expect(() => build({ 'tls.certFile': server.certFile, 'tls.keyFile': missing })).toThrow(`tls.keyFile = ${JSON.stringify(missing)}: cannot read the file (ENOENT)`);
    expect(() => build({ 'receiver.http.tls.certFile': server.certFile, 'receiver.http.tls.keyFile': join(dir, 'ca.crt') })).toThrow(/receiver\.http\.tls\.keyFile = .*not a usable PEM/);
    expect(() => build({ 'auth.tokensFile': join(dir, 'tokens.yaml') })).toThrow(/auth\.tokensFile = ".*tokens\.yaml": cannot read the file \(ENOENT\)/);
    expect(() => build({ 'ops.requireAuth': 'true' })).toThrow('ops.requireAuth = true needs auth.tokensFile');
  });

  it('counts tokens file reloads, applied and refused', async () => {
    const file = join(dir, 'tokens.yaml');
    const entry = (tenant: string) => `tokens:\n  - token: "0123456789abcdef-${tenant}"\n    tenant: ${tenant}\n    scopes: [read]\n`;
    writeFileSync(file, entry('acme'));
    const registry = new Registry();
    const s = build({ 'auth.tokensFile': file, 'ops.requireAuth': 'true' }, registry);
    expect(s.opsRequireAuth).toBe(true);
    writeFileSync(file, entry('globex'));
    s.tokens!.reload();
    writeFileSync(file, entry('bad tenant'));
    s.tokens!.reload();
    const text = await registry.metrics();
    expect(text).toContain('tracehouse_security_reloads_total{file="tokens",result="applied"} 1');
    expect(text).toContain('tracehouse_security_reloads_total{file="tokens",result="failed"} 1');
    expect(s.tokens!.authorize('Bearer 0123456789abcdef-globex', 'read')).toMatchObject({ kind: 'allowed', tenant: 'globex' });
  });
});
