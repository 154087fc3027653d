// Certificates made for a test with the real openssl: a CA, and server or client certificates it
// signs (P-256 keys, valid for a day, SANs for localhost and 127.0.0.1).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pem {
  cert: Buffer;
  key: Buffer;
  certFile: string;
  keyFile: string;
}

const OPENSSL = '/usr/bin/openssl';

function openssl(args: string[]): void {
  execFileSync(OPENSSL, args, { stdio: 'pipe' });
}

/** A self-signed CA named cn, written to dir/<cn>.crt and .key. */
export function makeCa(dir: string, cn: string): Pem {
  const certFile = join(dir, `${cn}.crt`);
  const keyFile = join(dir, `${cn}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${cn}`]);
  return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, keyFile };
}

/** A certificate for cn signed by ca, for servers (localhost, 127.0.0.1) or clients, valid for days. */
export function makeCert(dir: string, ca: Pem, cn: string, use: 'server' | 'client' = 'server', days = 1): Pem {
  const certFile = join(dir, `${cn}.crt`);
  const keyFile = join(dir, `${cn}.key`);
  const csr = join(dir, `${cn}.csr`);
  const ext = join(dir, `${cn}.ext`);
  writeFileSync(ext, use === 'server' ? 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${cn}`]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', String(days), '-extfile', ext]);
  return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, keyFile };
}

/** A CA, two server certificates it signed (a, b), and tls.crt / tls.key in dir holding a: the files a rotation rewrites. */
export function servedCertificates(dir: string, caName = 'ca'): { ca: Pem; a: Pem; b: Pem; certFile: string; keyFile: string } {
  const ca = makeCa(dir, caName);
  const a = makeCert(dir, ca, 'server-a');
  const b = makeCert(dir, ca, 'server-b');
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  writeFileSync(certFile, a.cert);
  writeFileSync(keyFile, a.key);
  return { ca, a, b, certFile, keyFile };
}
