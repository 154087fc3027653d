// TLS for the four listeners: which certificate each one serves (global tls.* keys with
// per-listener overrides), loading and checking the PEM files at start-up, and swapping in new
// certificates when the files change (cert-manager rotation) without dropping connections:
// node:https / node:tls servers get server.setSecureContext, grpc-js servers a ServerCredentials
// whose secure context is pushed to the server the same way.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions, type Server as TlsServer, type TlsOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ConfigError, type Config } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { FileWatch } from './watch.ts';

export const TLS_LISTENERS = ['receiver.grpc', 'receiver.http', 'query', 'ops'] as const;
export type TlsListener = (typeof TLS_LISTENERS)[number];
export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

type ListenerKey = `${TlsListener}.tls.${'mode' | 'certFile' | 'keyFile' | 'clientCaFile' | 'minVersion'}`;
/** The options TLS reads: the global tls.* keys and every listener's overrides. */
export type TlsConfig = Pick<Config, 'tls.certFile' | 'tls.keyFile' | 'tls.clientCaFile' | 'tls.minVersion' | 'tls.reloadCheckIntervalMs' | ListenerKey>;

/** A file named by an option: the key is kept so that every error can name it. */
export interface KeyedFile {
  key: string;
  path: string;
}

/** One listener's resolved TLS: what it serves and whether clients must present a certificate. */
export interface TlsSettings {
  listener: TlsListener;
  certFile: KeyedFile;
  keyFile: KeyedFile;
  /** Set: client certificates are required and verified against it (mTLS). */
  clientCaFile?: KeyedFile;
  minVersion: TlsVersion;
  reloadCheckIntervalMs: number;
}

/** Resolves a listener's TLS from the global keys and its overrides; undefined means plain. Throws ConfigError naming the key. */
export function resolveTls(config: TlsConfig, listener: TlsListener): TlsSettings | undefined {
  const p = listener;
  const mode = config[`${p}.tls.mode`];
  if (mode === 'off') return undefined;
  // Empty or 'inherit' (the word minVersion and mode take) falls back to the global tls.* file.
  const own = (k: `${TlsListener}.tls.${'certFile' | 'keyFile' | 'clientCaFile'}`): string => (config[k] === 'inherit' ? '' : config[k]);
  const ownCert = own(`${p}.tls.certFile`);
  const ownKey = own(`${p}.tls.keyFile`);
  // A listener's own certificate with the global key (or the reverse) is a typo, never a plan.
  if ((ownCert === '') !== (ownKey === '')) {
    const missing = ownCert === '' ? `${p}.tls.certFile` : `${p}.tls.keyFile`;
    throw new ConfigError(`invalid configuration: ${missing} is empty but ${ownCert === '' ? `${p}.tls.keyFile` : `${p}.tls.certFile`} is set; set both or neither`);
  }
  const certFile: KeyedFile = ownCert !== '' ? { key: `${p}.tls.certFile`, path: ownCert } : { key: 'tls.certFile', path: config['tls.certFile'] };
  const keyFile: KeyedFile = ownKey !== '' ? { key: `${p}.tls.keyFile`, path: ownKey } : { key: 'tls.keyFile', path: config['tls.keyFile'] };
  if ((certFile.path === '') !== (keyFile.path === '')) {
    const missing = certFile.path === '' ? 'tls.certFile' : 'tls.keyFile';
    throw new ConfigError(`invalid configuration: ${missing} is empty but ${missing === 'tls.certFile' ? 'tls.keyFile' : 'tls.certFile'} is set; set both or neither`);
  }
  if (certFile.path === '') {
    if (mode === 'inherit') {
      // A client CA asks for client certificates: serving plain instead would take any client.
      const caKey = own(`${p}.tls.clientCaFile`) !== '' ? `${p}.tls.clientCaFile` : 'tls.clientCaFile';
      const ca = config[caKey as 'tls.clientCaFile'];
      if (ca !== '') throw new ConfigError(`invalid configuration: ${caKey} = ${JSON.stringify(ca)} asks for client certificates, but the ${p} listener has no certificate: set tls.certFile and tls.keyFile (or ${p}.tls.certFile and ${p}.tls.keyFile), or ${p}.tls.mode = "off" to serve it plain`);
      return undefined;
    }
    throw new ConfigError(`invalid configuration: ${p}.tls.mode = "${mode}" needs a certificate: set tls.certFile and tls.keyFile (or ${p}.tls.certFile and ${p}.tls.keyFile)`);
  }
  const ownCa = own(`${p}.tls.clientCaFile`);
  const ca: KeyedFile | undefined = ownCa !== '' ? { key: `${p}.tls.clientCaFile`, path: ownCa } : config['tls.clientCaFile'] !== '' ? { key: 'tls.clientCaFile', path: config['tls.clientCaFile'] } : undefined;
  if (mode === 'mtls' && ca === undefined) {
    throw new ConfigError(`invalid configuration: ${p}.tls.mode = "mtls" needs a client CA: set tls.clientCaFile or ${p}.tls.clientCaFile`);
  }
  const ownMin = config[`${p}.tls.minVersion`];
  const settings: TlsSettings = {
    listener,
    certFile,
    keyFile,
    minVersion: (ownMin === 'inherit' ? config['tls.minVersion'] : ownMin) as TlsVersion,
    reloadCheckIntervalMs: config['tls.reloadCheckIntervalMs'],
  };
  if (ca !== undefined && mode !== 'tls') settings.clientCaFile = ca;
  return settings;
}

interface Material {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
}

function readKeyed(f: KeyedFile): Buffer {
  try {
    return readFileSync(f.path);
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${f.key} = ${JSON.stringify(f.path)}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Listens for new secure-context options after a rotation. */
export type ContextListener = (options: SecureContextOptions) => void;

/**
 * The certificate, key and client CA of one listener, kept current: the files are re-read when
 * they change, checked (a pair that does not match, half-written or unparsable PEM is refused
 * and the previous certificate stays), and the new context is pushed to the attached servers.
 */
export class TlsCertificates {
  private material: Material;
  private readonly watch: FileWatch;
  private readonly listeners = new Set<ContextListener>();
  private lastFailure = '';
  /** Rotations applied since start (for tests and logs). */
  reloads = 0;

  readonly settings: TlsSettings;
  private readonly logger: Logger;
  private readonly onReload: (result: 'applied' | 'failed') => void;

  /** Counts a connection whose handshake failed (the servers' tlsClientError). */
  readonly handshakeFailed: () => void;

  constructor(settings: TlsSettings, logger: Logger, onReload: (result: 'applied' | 'failed') => void = () => {}, onHandshakeFailure: () => void = () => {}) {
    this.settings = settings;
    this.logger = logger;
    this.onReload = onReload;
    this.handshakeFailed = onHandshakeFailure;
    this.material = this.read();
    const problem = this.check(this.material);
    if (problem !== undefined) {
      throw new ConfigError(`invalid configuration: ${settings.certFile.key} = ${JSON.stringify(settings.certFile.path)}, ${settings.keyFile.key} = ${JSON.stringify(settings.keyFile.path)}${settings.clientCaFile ? `, ${settings.clientCaFile.key} = ${JSON.stringify(settings.clientCaFile.path)}` : ''}: ${problem}`);
    }
    const files = [settings.certFile.path, settings.keyFile.path, ...(settings.clientCaFile ? [settings.clientCaFile.path] : [])];
    this.watch = new FileWatch(files, settings.reloadCheckIntervalMs, () => this.reload());
  }

  /** When the certificate served now (the chain's first) expires, in Unix seconds. */
  expiresAt(): number {
    return new X509Certificate(this.material.cert).validToDate.getTime() / 1000;
  }

  /** True when client certificates are required and verified (mTLS). */
  get mutual(): boolean {
    return this.settings.clientCaFile !== undefined;
  }

  /** The current context options (certificate, key, client CA, minimum version). */
  contextOptions(): SecureContextOptions {
    const o: SecureContextOptions = { cert: this.material.cert, key: this.material.key, minVersion: this.settings.minVersion };
    if (this.material.ca) o.ca = this.material.ca;
    return o;
  }

  /** Options for node:https / node:tls createServer; pair with attach() so rotations reach the server. */
  serverOptions(): TlsOptions {
    return { ...this.contextOptions(), requestCert: this.mutual, rejectUnauthorized: this.mutual };
  }

  /** Keeps a node:https / node:tls server on the current certificate; open connections keep theirs. */
  attach(server: TlsServer): void {
    const l: ContextListener = (o) => server.setSecureContext(o);
    this.listeners.add(l);
    server.once('close', () => this.listeners.delete(l));
  }

  /** grpc-js server credentials that follow rotations the same way. */
  grpcCredentials(): grpc.ServerCredentials {
    return new RotatingServerCredentials(this);
  }

  /** Calls l with the new context options after each applied rotation; returns an unsubscribe function. */
  onChange(l: ContextListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  start(): void {
    this.watch.start();
  }

  shutdown(): void {
    this.watch.shutdown();
  }

  /** Re-reads the files and applies them if they changed and are a usable certificate. */
  reload(): void {
    let next: Material;
    try {
      next = this.read();
    } catch (err) {
      return this.failed((err as Error).message);
    }
    const cur = this.material;
    if (next.cert.equals(cur.cert) && next.key.equals(cur.key) && (next.ca?.equals(cur.ca ?? Buffer.alloc(0)) ?? cur.ca === undefined)) {
      // Back to the files in use (a bad rotation undone): the next bad one is news again.
      this.lastFailure = '';
      return;
    }
    const problem = this.check(next);
    if (problem !== undefined) return this.failed(`${this.settings.certFile.path}: ${problem}`);
    this.material = next;
    this.reloads++;
    this.lastFailure = '';
    const options = this.contextOptions();
    for (const l of this.listeners) {
      try {
        l(options);
      } catch (err) {
        this.logger.error({ listener: this.settings.listener, err: (err as Error).message }, 'a server refused the rotated certificate');
      }
    }
    this.onReload('applied');
    this.logger.info({ listener: this.settings.listener, certFile: this.settings.certFile.path }, 'TLS certificate reloaded');
  }

  private failed(problem: string): void {
    this.onReload('failed');
    // Said once per distinct problem: a half-finished rotation is re-checked every few seconds.
    if (problem === this.lastFailure) return;
    this.lastFailure = problem;
    this.logger.warn({ listener: this.settings.listener, problem }, 'TLS certificate files changed but cannot be used; keeping the previous certificate');
  }

  private read(): Material {
    const s = this.settings;
    return { cert: readKeyed(s.certFile), key: readKeyed(s.keyFile), ca: s.clientCaFile ? readKeyed(s.clientCaFile) : undefined };
  }

  /** Why the material cannot serve, or undefined. OpenSSL checks PEM syntax and that key and certificate match. */
  private check(m: Material): string | undefined {
    try {
      const o: SecureContextOptions = { cert: m.cert, key: m.key, minVersion: this.settings.minVersion };
      if (m.ca) o.ca = m.ca;
      createSecureContext(o);
    } catch (err) {
      return `not a usable PEM certificate, key${m.ca ? ' and client CA' : ''} (${(err as Error).message})`;
    }
    if (!m.cert.includes('-----BEGIN CERTIFICATE-----')) return 'no PEM certificate in the certificate file';
    if (m.ca && !m.ca.includes('-----BEGIN CERTIFICATE-----')) return 'no PEM certificate in the client CA file';
    return undefined;
  }
}

// grpc-js 1.14 pushes a credentials object's secure-context options to its http2 server through
// setSecureContext whenever updateSecureContextOptions is called. Its own experimental
// FileWatcherCertificateProvider reads certificate and key separately (a half-swapped pair takes
// the port down until the next poll) and cannot carry minVersion, hence this small subclass.
class RotatingServerCredentials extends grpc.ServerCredentials {
  constructor(certs: TlsCertificates) {
    const mutual = certs.mutual;
    super({ requestCert: mutual, rejectUnauthorized: mutual, minVersion: certs.settings.minVersion }, certs.contextOptions());
    certs.onChange((o) => this.updateSecureContextOptions(o));
  }

  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}
