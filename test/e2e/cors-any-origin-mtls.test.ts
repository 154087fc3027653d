// A browser sends its TLS client certificate with a credentialed request, and OTLP/HTTP exports
// to allowed origins are credentialed: with receiver.http.corsAllowedOrigins = * and client
// certificates required (mTLS), any page a certificate holder opens can send in their name. The
// README warned; start-up said nothing. It now warns once, naming the key and the value.
import { describe, expect, it } from 'vitest';
import { makeCa, makeCert } from '../helpers/certs.ts';
import { startCollector } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('receiver.http.corsAllowedOrigins = * with mTLS on the OTLP/HTTP port', () => {
  it('warns at start-up, and not for listed origins or without client certificates', { timeout: 60_000 }, async () => {
    const dir = tempDir('tracehouse-cors-mtls-');
    const ca = makeCa(dir, 'cors-ca');
    const server = makeCert(dir, ca, 'localhost');
    const tls = { 'tls.certFile': server.certFile, 'tls.keyFile': server.keyFile, 'ops.tls.mode': 'off' };
    const warnings = async (flags: Record<string, string>): Promise<string[]> => {
      const { logger, lines } = capturedLogger();
      const c = await startCollector({ ...tls, ...flags }, { logger });
      await c.stop();
      return lines().filter((l) => l.level === 40 && String(l.msg).includes('corsAllowedOrigins')).map((l) => l.msg);
    };
    expect(await warnings({ 'tls.clientCaFile': ca.certFile, 'receiver.http.corsAllowedOrigins': '*' })).toEqual([expect.stringMatching(/receiver\.http\.corsAllowedOrigins = \* with client certificates \(mTLS\).*any web page/)]);
    expect(await warnings({ 'tls.clientCaFile': ca.certFile, 'receiver.http.corsAllowedOrigins': 'https://app.example' })).toEqual([]);
    expect(await warnings({ 'receiver.http.corsAllowedOrigins': '*' })).toEqual([]);
  });
});
