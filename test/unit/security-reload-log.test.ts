// A tokens file or certificate that turns bad is said in the log, also the second time
// it does, after it was put back to the version in use in between.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TlsCertificates } from '../../src/security/tls.ts';
import { TokenStore } from '../../src/security/tokens.ts';
import { servedCertificates } from '../helpers/certs.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { tempDir } from '../helpers/tmp.ts';

const stops: (() => void)[] = [];
afterEach(() => {
  for (const s of stops.splice(0)) s();
});

describe('a bad reload is logged each time the file turns bad', () => {
  it('tokens file: good, bad, good again (reverted), the same bad edit again: warned twice', () => {
    const file = join(tempDir(), 'tokens.yaml');
    const GOOD = 'tokens:\n  - token: "acme-secret-token-0123456789"\n    tenant: acme\n    scopes: [ingest, read]\n';
    const BAD = 'tokens:\n  - token: "acme-secret-token-0123456789"\n    tenant: acme\n    scopes: [ingest, admin]\n';
    writeFileSync(file, GOOD);
    const { logger, lines } = capturedLogger();
    const results: string[] = [];
    const s = new TokenStore(file, 60_000, logger, (r) => results.push(r));
    stops.push(() => s.shutdown());
    const warnings = () => lines().filter((l) => JSON.stringify(l).includes('keeping the previous tokens')).length;

    writeFileSync(file, BAD);
    s.reload();
    expect(warnings()).toBe(1);
    writeFileSync(file, GOOD); // the operator puts the file back
    s.reload();
    writeFileSync(file, BAD); // and later makes the same edit again
    s.reload();
    expect(results).toEqual(['failed', 'failed']);
    expect(warnings()).toBe(2);
  });

  it('certificate: good, half-rotated, good again, half-rotated again: warned twice', () => {
    const { a, b, certFile, keyFile } = servedCertificates(tempDir());
    const { logger, lines } = capturedLogger();
    const certs = new TlsCertificates({ listener: 'query', certFile: { key: 'tls.certFile', path: certFile }, keyFile: { key: 'tls.keyFile', path: keyFile }, minVersion: 'TLSv1.2', reloadCheckIntervalMs: 60_000 }, logger);
    stops.push(() => certs.shutdown());
    const warnings = () => lines().filter((l) => JSON.stringify(l).includes('keeping the previous certificate')).length;

    writeFileSync(certFile, b.cert); // key of a, certificate of b
    certs.reload();
    expect(warnings()).toBe(1);
    writeFileSync(certFile, a.cert); // put back
    certs.reload();
    writeFileSync(certFile, b.cert); // the same half-done rotation again
    certs.reload();
    expect(warnings()).toBe(2);
  });
});
