// TLS on real node:https, node:tls and grpc-js servers with certificates made by openssl in the
// test: plain TLS, mTLS, minimum version, and rotation the way cert-manager does it (a symlinked
// folder swapped atomically) while an open connection keeps working.
import { existsSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest, Agent, type Server as HttpsServer } from 'node:https';
import { request as httpRequest } from 'node:http';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { resolveTls, TlsCertificates, type TlsSettings } from '../../src/security/tls.ts';
import { makeCa, makeCert, type Pem } from '../helpers/certs.ts';
import { eventually } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Lays out a certificate the way a Kubernetes Secret volume does: name -> ..data/name, ..data -> ..<version>. */
function secretVolume(dir: string, pem: Pem, version: string): { certFile: string; keyFile: string } {
  const v = join(dir, `..${version}`);
  mkdirSync(v);
  writeFileSync(join(v, 'tls.crt'), pem.cert);
  writeFileSync(join(v, 'tls.key'), pem.key);
  symlinkSync(`..${version}`, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  if (!existsSync(join(dir, 'tls.crt'))) {
    symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
    symlinkSync('..data/tls.key', join(dir, 'tls.key'));
  }
  return { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
}

function settings(certFile: string, keyFile: string, extra: Partial<TlsSettings> = {}): TlsSettings {
  return { listener: 'receiver.http', certFile: { key: 'tls.certFile', path: certFile }, keyFile: { key: 'tls.keyFile', path: keyFile }, minVersion: 'TLSv1.2', reloadCheckIntervalMs: 60_000, ...extra };
}

async function httpsServer(certs: TlsCertificates): Promise<{ server: HttpsServer; port: number }> {
  const server = createHttpsServer(certs.serverOptions(), (req, res) => {
    res.end(`hello ${req.socket.remoteAddress ?? ''}`);
  });
  certs.attach(server);
  certs.start();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => certs.shutdown(), () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return { server, port: (server.address() as { port: number }).port };
}

function get(port: number, opts: { ca: Buffer; cert?: Buffer; key?: Buffer; agent?: Agent }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/', servername: 'localhost', ...opts }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The CN of the certificate the server presents to a new connection, and the TLS version agreed. */
function peer(port: number, opts: ConnectionOptions): Promise<{ cn: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...opts }, () => {
      const cn = String(s.getPeerCertificate().subject.CN);
      const protocol = s.getProtocol() ?? '';
      s.end();
      resolve({ cn, protocol });
    });
    s.on('error', reject);
  });
}

let dir: string;
let ca: Pem;
let ca2: Pem;
let serverA: Pem;
let serverB: Pem;
let client: Pem;
beforeAll(() => {
  dir = tempDir();
  ca = makeCa(dir, 'ca-one');
  ca2 = makeCa(dir, 'ca-two');
  serverA = makeCert(dir, ca, 'server-a');
  serverB = makeCert(dir, ca2, 'server-b');
  client = makeCert(dir, ca, 'client-one', 'client');
});

describe('resolveTls', () => {
  const cfg = (flags: Record<string, string>) => loadConfig({ flags });

  it('serves plain when no certificate is configured, and every listener inherits the global one', () => {
    expect(resolveTls(cfg({}), 'receiver.grpc')).toBeUndefined();
    const c = cfg({ 'tls.certFile': '/c.pem', 'tls.keyFile': '/k.pem', 'tls.clientCaFile': '/ca.pem', 'tls.minVersion': 'TLSv1.3' });
    for (const l of ['receiver.grpc', 'receiver.http', 'query', 'ops'] as const) {
      expect(resolveTls(c, l)).toMatchObject({ certFile: { key: 'tls.certFile', path: '/c.pem' }, clientCaFile: { key: 'tls.clientCaFile' }, minVersion: 'TLSv1.3' });
    }
  });

  it('lets one listener go plain, drop client certificates, or use its own files and version', () => {
    const c = cfg({
      'tls.certFile': '/c.pem', 'tls.keyFile': '/k.pem', 'tls.clientCaFile': '/ca.pem',
      'ops.tls.mode': 'off', 'query.tls.mode': 'tls',
      'receiver.http.tls.certFile': '/h.pem', 'receiver.http.tls.keyFile': '/hk.pem', 'receiver.http.tls.minVersion': 'TLSv1.3',
    });
    expect(resolveTls(c, 'ops')).toBeUndefined();
    const q = resolveTls(c, 'query')!;
    expect(q.clientCaFile).toBeUndefined();
    expect(q.certFile.path).toBe('/c.pem');
    expect(resolveTls(c, 'receiver.http')).toMatchObject({ certFile: { key: 'receiver.http.tls.certFile', path: '/h.pem' }, keyFile: { key: 'receiver.http.tls.keyFile' }, minVersion: 'TLSv1.3' });
    expect(resolveTls(c, 'receiver.grpc')!.minVersion).toBe('TLSv1.2');
  });

  it('reads inherit in a listener file key as the global file, as it does for minVersion (README, TLS)', () => {
    const c = cfg({
      'tls.certFile': '/c.pem', 'tls.keyFile': '/k.pem', 'tls.clientCaFile': '/ca.pem',
      'query.tls.certFile': 'inherit', 'query.tls.keyFile': 'inherit', 'query.tls.clientCaFile': 'inherit', 'query.tls.minVersion': 'inherit',
    });
    expect(resolveTls(c, 'query')).toMatchObject({ certFile: { key: 'tls.certFile', path: '/c.pem' }, keyFile: { key: 'tls.keyFile', path: '/k.pem' }, clientCaFile: { key: 'tls.clientCaFile', path: '/ca.pem' }, minVersion: 'TLSv1.2' });
    expect(resolveTls(cfg({ 'ops.tls.certFile': 'inherit', 'ops.tls.keyFile': 'inherit' }), 'ops')).toBeUndefined();
  });

  it('reads an empty minVersion as the global one, as README says of every override (flag, env, file)', () => {
    const file = join(dir, 'empty-overrides.yaml');
    writeFileSync(file, 'tls:\n  minVersion: TLSv1.3\nquery:\n  tls:\n    minVersion: ""\n');
    const global = { 'tls.certFile': '/c.pem', 'tls.keyFile': '/k.pem', 'tls.minVersion': 'TLSv1.3' };
    for (const c of [
      cfg({ ...global, 'query.tls.minVersion': '' }),
      loadConfig({ flags: global, env: { TRACEHOUSE_QUERY_TLS_MIN_VERSION: '' } }),
      loadConfig({ file, flags: { 'tls.certFile': '/c.pem', 'tls.keyFile': '/k.pem' } }),
    ]) {
      expect(resolveTls(c, 'query')).toMatchObject({ certFile: { path: '/c.pem' }, minVersion: 'TLSv1.3' });
    }
  });

  it('names the key when the configuration cannot work', () => {
    expect(() => resolveTls(cfg({ 'tls.certFile': '/c.pem' }), 'query')).toThrow(/tls\.keyFile is empty but tls\.certFile is set/);
    expect(() => resolveTls(cfg({ 'ops.tls.keyFile': '/k.pem' }), 'ops')).toThrow(/ops\.tls\.certFile is empty/);
    expect(() => resolveTls(cfg({ 'query.tls.mode': 'tls' }), 'query')).toThrow(/query\.tls\.mode = "tls" needs a certificate/);
    expect(() => resolveTls(cfg({ 'tls.certFile': '/c', 'tls.keyFile': '/k', 'receiver.grpc.tls.mode': 'mtls' }), 'receiver.grpc')).toThrow(/receiver\.grpc\.tls\.mode = "mtls" needs a client CA/);
    // A client CA without a certificate: before, the listener served plain and took any client.
    expect(() => resolveTls(cfg({ 'tls.clientCaFile': '/ca.pem' }), 'receiver.http')).toThrow('tls.clientCaFile = "/ca.pem" asks for client certificates, but the receiver.http listener has no certificate');
    expect(() => resolveTls(cfg({ 'receiver.http.tls.clientCaFile': '/ca.pem' }), 'receiver.http')).toThrow('receiver.http.tls.clientCaFile = "/ca.pem" asks for client certificates, but the receiver.http listener has no certificate');
    // Only where it would apply: a listener turned off is plain as asked.
    const one = cfg({ 'tls.clientCaFile': '/ca.pem', 'receiver.grpc.tls.certFile': '/g.pem', 'receiver.grpc.tls.keyFile': '/gk.pem', 'receiver.http.tls.mode': 'off' });
    expect(resolveTls(one, 'receiver.grpc')!.clientCaFile).toEqual({ key: 'tls.clientCaFile', path: '/ca.pem' });
    expect(resolveTls(one, 'receiver.http')).toBeUndefined();
    expect(() => resolveTls(one, 'query')).toThrow(/the query listener has no certificate/);
  });

  it('stops start-up naming the key and path of a missing or unusable file', () => {
    const { logger } = capturingLogger();
    const missing = join(dir, 'nope.pem');
    expect(() => new TlsCertificates(settings(missing, serverA.keyFile), logger)).toThrow(ConfigError);
    expect(() => new TlsCertificates(settings(missing, serverA.keyFile), logger)).toThrow(`tls.certFile = ${JSON.stringify(missing)}: cannot read the file (ENOENT)`);
    // A key that is not the certificate's.
    expect(() => new TlsCertificates(settings(serverA.certFile, serverB.keyFile), logger)).toThrow(/tls\.certFile = .*server-a\.crt.*tls\.keyFile = .*server-b\.key.*not a usable PEM/);
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not pem');
    expect(() => new TlsCertificates(settings(garbage, serverA.keyFile), logger)).toThrow(/not a usable PEM/);
  });
});

describe('TLS on node:https', () => {
  it('serves TLS and refuses plain HTTP on the same port', async () => {
    const { logger } = capturingLogger();
    const { port } = await httpsServer(new TlsCertificates(settings(serverA.certFile, serverA.keyFile), logger));
    expect(await get(port, { ca: ca.cert })).toMatchObject({ status: 200, body: expect.stringMatching(/^hello/) });
    // A client that does not trust the CA is refused by its own verification.
    await expect(get(port, { ca: ca2.cert })).rejects.toThrow(/self-signed|unable to verify|certificate/i);
    const plain = new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/' }, (res) => resolve(res.statusCode ?? 0));
      req.on('error', reject);
      req.end();
    });
    await expect(plain).rejects.toThrow();
  });

  it('with a client CA (mTLS) refuses a client without a certificate and serves one with', async () => {
    const { logger } = capturingLogger();
    const certs = new TlsCertificates(settings(serverA.certFile, serverA.keyFile, { clientCaFile: { key: 'tls.clientCaFile', path: ca.certFile } }), logger);
    expect(certs.mutual).toBe(true);
    const { port } = await httpsServer(certs);
    await expect(get(port, { ca: ca.cert })).rejects.toThrow(/certificate|socket hang up|ECONNRESET/i);
    // A certificate from another CA is refused as well.
    const stranger = makeCert(dir, ca2, 'client-stranger', 'client');
    await expect(get(port, { ca: ca.cert, cert: stranger.cert, key: stranger.key })).rejects.toThrow();
    expect(await get(port, { ca: ca.cert, cert: client.cert, key: client.key })).toMatchObject({ status: 200 });
  });

  it('honours the minimum TLS version', async () => {
    const { logger } = capturingLogger();
    const { port } = await httpsServer(new TlsCertificates(settings(serverA.certFile, serverA.keyFile, { minVersion: 'TLSv1.3' }), logger));
    await expect(peer(port, { ca: ca.cert, maxVersion: 'TLSv1.2' })).rejects.toThrow(/protocol version|alert|handshake|ECONNRESET/i);
    expect((await peer(port, { ca: ca.cert })).protocol).toBe('TLSv1.3');

    const { port: port12 } = await httpsServer(new TlsCertificates(settings(serverA.certFile, serverA.keyFile, { minVersion: 'TLSv1.2' }), logger));
    expect((await peer(port12, { ca: ca.cert, maxVersion: 'TLSv1.2' })).protocol).toBe('TLSv1.2');
    await expect(peer(port12, { ca: ca.cert, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' })).rejects.toThrow();
  });

  it('picks up a rotated certificate (symlink swap) without a restart, keeping open connections', async () => {
    const { logger, lines } = capturingLogger();
    const vol = tempDir();
    const files = secretVolume(vol, serverA, 'v1');
    const certs = new TlsCertificates(settings(files.certFile, files.keyFile, { minVersion: 'TLSv1.3' }), logger);
    const { port } = await httpsServer(certs);
    const both = Buffer.concat([ca.cert, ca2.cert]);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    expect((await get(port, { ca: both, agent })).status).toBe(200);
    expect((await peer(port, { ca: both })).cn).toBe('server-a');

    secretVolume(vol, serverB, 'v2');
    await eventually(async () => ((await peer(port, { ca: both })).cn === 'server-b' ? true : undefined), 5000, 'the rotated certificate');
    expect(certs.reloads).toBe(1);
    expect(lines.filter((l) => l['msg'] === 'TLS certificate reloaded')).toHaveLength(1);
    // The reloaded context keeps the minimum version.
    await expect(peer(port, { ca: both, maxVersion: 'TLSv1.2' })).rejects.toThrow();
    // The keep-alive connection opened before the rotation is still the one serving.
    const sockets = Object.values(agent.freeSockets).flat();
    expect(sockets).toHaveLength(1);
    expect((await get(port, { ca: both, agent })).status).toBe(200);
    expect(Object.values(agent.freeSockets).flat()[0]).toBe(sockets[0]);
  });

  it('keeps the previous certificate when the new files are unusable, saying so once', async () => {
    const { logger, lines } = capturingLogger();
    const vol = tempDir();
    const certFile = join(vol, 'tls.crt');
    const keyFile = join(vol, 'tls.key');
    writeFileSync(certFile, serverA.cert);
    writeFileSync(keyFile, serverA.key);
    const results: string[] = [];
    const certs = new TlsCertificates(settings(certFile, keyFile), logger, (r) => results.push(r));
    const { port } = await httpsServer(certs);

    writeFileSync(certFile, serverB.cert); // the key still belongs to server-a: a half-done rotation
    certs.reload();
    certs.reload();
    expect(results).toEqual(['failed', 'failed']);
    expect(lines.filter((l) => l['level'] === 40)).toHaveLength(1);
    expect((await peer(port, { ca: ca.cert })).cn).toBe('server-a');

    writeFileSync(keyFile, serverB.key); // the rotation completes
    certs.reload();
    expect(results).toEqual(['failed', 'failed', 'applied']);
    expect((await peer(port, { ca: ca2.cert })).cn).toBe('server-b');
  });
});

describe('TLS on grpc-js', () => {
  const ECHO: grpc.ServiceDefinition = {
    Echo: {
      path: '/test.Echo/Echo',
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  };
  const EchoClient = grpc.makeGenericClientConstructor(ECHO, 'Echo');

  async function grpcServer(certs: TlsCertificates): Promise<number> {
    const server = new grpc.Server();
    server.addService(ECHO, { Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request) });
    certs.start();
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', certs.grpcCredentials(), (err, p) => (err ? reject(err) : resolve(p))));
    cleanups.push(() => certs.shutdown(), () => server.forceShutdown());
    return port;
  }

  function echo(port: number, creds: grpc.ChannelCredentials, text = 'ping'): { call: Promise<string>; client: grpc.Client } {
    const client = new EchoClient(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
    cleanups.push(() => client.close());
    const call = new Promise<string>((resolve, reject) => {
      (client as unknown as Record<string, (req: Buffer, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void>)['Echo']!(Buffer.from(text), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r!.toString())));
    });
    return { call, client };
  }

  it('serves TLS to a grpc-js client and refuses a plain one', async () => {
    const { logger } = capturingLogger();
    const port = await grpcServer(new TlsCertificates(settings(serverA.certFile, serverA.keyFile), logger));
    expect(await echo(port, grpc.credentials.createSsl(ca.cert)).call).toBe('ping');
    await expect(echo(port, grpc.credentials.createInsecure()).call).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('with mTLS refuses a client without a certificate', async () => {
    const { logger } = capturingLogger();
    const port = await grpcServer(new TlsCertificates(settings(serverA.certFile, serverA.keyFile, { clientCaFile: { key: 'tls.clientCaFile', path: ca.certFile } }), logger));
    await expect(echo(port, grpc.credentials.createSsl(ca.cert)).call).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(await echo(port, grpc.credentials.createSsl(ca.cert, client.key, client.cert)).call).toBe('ping');
  });

  it('honours the minimum TLS version, also after a rotation', async () => {
    const { logger } = capturingLogger();
    const vol = tempDir();
    const files = secretVolume(vol, serverA, 'v1');
    const certs = new TlsCertificates(settings(files.certFile, files.keyFile, { minVersion: 'TLSv1.3' }), logger);
    const port = await grpcServer(certs);
    const both = Buffer.concat([ca.cert, ca2.cert]);
    await expect(peer(port, { ca: both, maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'] })).rejects.toThrow();
    expect(await peer(port, { ca: both, ALPNProtocols: ['h2'] })).toEqual({ cn: 'server-a', protocol: 'TLSv1.3' });
    secretVolume(vol, serverB, 'v2');
    await eventually(async () => ((await peer(port, { ca: both, ALPNProtocols: ['h2'] })).cn === 'server-b' ? true : undefined), 5000, 'the rotation');
    await expect(peer(port, { ca: both, maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'] })).rejects.toThrow();
  });

  it('rotates the certificate for new connections while an open channel keeps working', async () => {
    const { logger } = capturingLogger();
    const vol = tempDir();
    const files = secretVolume(vol, serverA, 'v1');
    const certs = new TlsCertificates(settings(files.certFile, files.keyFile), logger);
    const port = await grpcServer(certs);
    const old = echo(port, grpc.credentials.createSsl(ca.cert), 'before');
    expect(await old.call).toBe('before');
    // A client trusting only the second CA cannot connect until the rotation.
    await expect(echo(port, grpc.credentials.createSsl(ca2.cert)).call).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });

    secretVolume(vol, serverB, 'v2');
    await eventually(async () => (certs.reloads === 1 ? true : undefined), 5000, 'the rotation');
    expect(await echo(port, grpc.credentials.createSsl(ca2.cert), 'after').call).toBe('after');
    // The channel opened before the rotation still has its connection.
    const again = await new Promise<string>((resolve, reject) => {
      (old.client as unknown as Record<string, (req: Buffer, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void>)['Echo']!(Buffer.from('still'), (e, r) => (e ? reject(e) : resolve(r!.toString())));
    });
    expect(again).toBe('still');
  });
});
