// Small node:http plumbing shared by the HTTP servers (read API, operations, OTLP/HTTP): one
// listener lifecycle for all three (plain or TLS), and JSON replies.
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, isIPv4, isIPv6, Server as NetServer, type Socket } from 'node:net';
import type { TlsCertificates } from '../security/tls.ts';
import { RecurringLog, type Logger } from '../telemetry/logger.ts';

/**
 * An IPv6 address as the kernel binds it: `::0` and `0:0:0:0:0:0:0:0` are `::`, and an IPv4-mapped
 * address (`::ffff:7f00:1`, `0:0:0:0:0:ffff:127.0.0.1`) takes its IPv4 address's port. Other hosts as written.
 */
export function canonicalHost(h: string): string {
  if (!isIPv6(h) || h.includes('%')) return h;
  const c = new URL(`http://[${h}]/`).hostname.slice(1, -1);
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(c);
  if (!m) return c;
  const [hi, lo] = [parseInt(m[1]!, 16), parseInt(m[2]!, 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * A request target's path, without its query: the origin form's as sent, and the absolute form's
 * (RFC 9112 3.2.2: `POST http://host/v1/traces`, as a forwarding proxy may pass one on) path.
 */
export function targetPath(target: string): string {
  const url = /^https?:\/\//i.test(target) && URL.canParse(target) ? new URL(target).pathname : target;
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** Splits "host:port" (or "[::1]:port") into what net.listen wants. */
export function parseListen(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(addr.slice(i + 1)) };
}

/**
 * The name a Host header gives, lowercased, without its port, brackets or a trailing dot; absent
 * without a Host header (HTTP/1.0), which no browser sends.
 */
function hostName(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(host.trim());
  return (m ? m[1]! : host).replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
}

/** Whether an IP address (as a server reports the one it bound) is a loopback one: ::ffff:127.0.0.1 too. */
function isLoopbackAddress(address: string): boolean {
  const host = canonicalHost(address);
  return host === '::1' || (isIPv4(host) && host.startsWith('127.'));
}

/**
 * The names a container on this machine reaches it by: Docker Desktop's and Podman's, which
 * reach the host's loopback and which their own resolvers answer, so no web page can rebind them
 * (an app in docker compose exporting to a collector started with npm start).
 */
const CONTAINER_HOST_NAMES: ReadonlySet<string> = new Set(['host.docker.internal', 'host.containers.internal']);

/**
 * Which Host names a listener answers (HttpServiceOptions.hosts). On loopback, a request naming
 * another host is a web page whose own name was pointed at 127.0.0.1 once loaded (DNS
 * rebinding): through the browser of someone on this machine it reaches the listener as its own
 * server, same-origin, so neither CORS nor a preflight stops it. Such a request carries the
 * page's name; localhost, *.localhost and an IP address (which no page can rebind) are this
 * machine's, and `allowed` names the rest (a proxy on this host that passes its own Host).
 */
export interface HostRule {
  allowed: readonly string[];
  /** The setting that names `allowed`, for the refusal's message (query.allowedHosts, say). */
  option: string;
}

/** Listens on "host:port" and resolves to the bound port (useful with port 0 in tests). */
async function listenHttp(server: Server, addr: string): Promise<number> {
  const { host, port } = parseListen(addr);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as { port: number }).port;
}

/**
 * Closes a server: idle connections (and those on which nothing was received) after a moment, busy ones after graceMs (a slow client cannot hold
 * shutdown). sockets holds every connection accepted: with TLS, one whose handshake never
 * finished is not among the server's HTTP connections, and would hold close() until Node's
 * handshake timeout (120 s).
 */
async function closeHttp(server: Server, sockets: ReadonlySet<Socket>, graceMs: number, asked: () => (s: Socket) => boolean): Promise<void> {
  // Node's Server.close() closes the connections it sees idle at once, and under load a kept-alive
  // connection is "idle" while the next request its client just wrote waits unread: that request
  // met a closed connection. The listener closes now (net.Server's close, without that); the
  // connections idle still after a moment go then, by when the requests written on the others
  // were read and are answered with Connection: close (HttpService.shutdown).
  const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
  // A connection on which nothing was asked (a browser's or a proxy's spare one; with TLS, one whose
  // handshake did not finish too) is not idle to Node, which waits for its first headers (or the
  // handshake): it would hold the stop until its headers timeout (or the handshake's, 120 s).
  const idle = setTimeout(() => {
    server.closeIdleConnections();
    const wasAsked = asked();
    for (const s of sockets) if (!wasAsked(s)) s.destroy();
  }, Math.min(IDLE_LINGER_MS, graceMs / 2));
  const force = setTimeout(() => {
    server.closeAllConnections();
    for (const s of sockets) s.destroy();
  }, graceMs);
  await closed;
  clearTimeout(idle);
  clearTimeout(force);
  // Server.close() now only stops the server's connection checks (its listener is closed: the error is expected).
  server.close(() => undefined);
}

/** How long a stop leaves kept-alive connections that look idle open, for requests already on their way (closeHttp). */
const IDLE_LINGER_MS = 300;

/** Longest a connection answered with its request body unread goes on reading (and dropping) that body. */
export const UNREAD_BODY_LINGER_MS = 2_000;

/** Connections in a lingering close (closeAfterUnreadBody), each with what cuts its linger short. */
const lingering = new WeakMap<Socket, () => void>();
/** Connections of a listener that is stopping: a lingering close on them lasts IDLE_LINGER_MS at most. */
const hurried = new WeakSet<Socket>();

/**
 * Closes the connection after this answer without resetting it under a client still sending the
 * body the server left unread (a lingering close, as Go's net/http and nginx make). Node destroys
 * the socket once the answer is written, and bytes arriving after that get a TCP reset: Go's
 * HTTP client, which writes the body while it waits, then reports the write's "broken pipe"
 * instead of the answer. Here the answer is followed by a FIN, and what the client still sends is
 * read and dropped until the body ends or the client closes, for at most UNREAD_BODY_LINGER_MS.
 */
export function closeAfterUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  res.shouldKeepAlive = false;
  const socket = req.socket;
  // What Node's server calls to end a connection after its last answer (resOnFinish).
  socket.destroySoon = function lingeringClose(this: Socket): void {
    if (this.writable) this.end();
    if (this.destroyed) return;
    // As Node's own destroySoon: not before the answer is all written out.
    const close = (): void => void (this.writableFinished ? this.destroy() : this.once('finish', () => this.destroy()));
    if (req.readableEnded) return close();
    // A stop does not wait on what a refused client still sends: its linger is cut to a moment.
    const deadline = Date.now() + (hurried.has(this) ? IDLE_LINGER_MS : UNREAD_BODY_LINGER_MS);
    let timer = setTimeout(() => this.destroy(), deadline - Date.now()).unref();
    lingering.set(this, () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.destroy(), Math.min(deadline - Date.now(), IDLE_LINGER_MS)).unref();
    });
    this.once('close', () => clearTimeout(timer));
    req.once('end', close);
    req.resume();
  };
}

/**
 * At a stop, a connection lingering after an early refusal (or one that will) is closed after
 * IDLE_LINGER_MS at most, not UNREAD_BODY_LINGER_MS: its answer is out, and a client still sending
 * must not hold the stop.
 */
function hurryLinger(socket: Socket): void {
  hurried.add(socket);
  lingering.get(socket)?.();
}

/** Sends a JSON body with its length. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export interface HttpServiceOptions {
  /** What the listener serves, for the start-up log line. */
  name: string;
  listen: string;
  /** How long shutdown lets requests in flight finish before closing their connections. */
  shutdownGraceMs: number;
  /** Open connections from one client address; more are closed at once (0: no limit). */
  maxConnectionsPerClient?: number;
  /** Counts (and logs) a connection closed over maxConnectionsPerClient; without it the service logs them once a minute itself. */
  onClientOverLimit?: (limit: number) => void;
  /** Counts (and logs) a connection closed for pipelining past MAX_PIPELINED_REQUESTS; without it the service logs them once a minute itself. */
  onOverPipelined?: (limit: number) => void;
  server?: ServerOptions;
  /** Serve HTTPS with these certificates (kept current on rotation); plain HTTP when absent. */
  tls?: TlsCertificates | undefined;
  /** Answers a request target longer than MAX_URL_BYTES (default: 414 with a JSON error). */
  onTargetTooLong?: (req: IncomingMessage, res: ServerResponse) => void;
  /** On a loopback listen address, refuse requests for other hosts than these (HostRule); off elsewhere. */
  hosts?: HostRule;
  /** Answers a request refused by `hosts`, with its message (default: 403 with a JSON error). */
  onForeignHost?: (req: IncomingMessage, res: ServerResponse, message: string) => void;
}

/** Longest an OTLP receiver waits at a stop for requests in flight (the collector passes less when shutdown.timeoutMs leaves less). */
export const RECEIVER_GRACE_MS = 10_000;

/** Longest request target accepted; longer ones get 414 (headers past maxHeaderSize get 431). */
export const MAX_URL_BYTES = 8 * 1024;

/** Whether a request's target is longer than MAX_URL_BYTES. */
export const targetTooLong = (req: IncomingMessage): boolean => (req.url ?? '').length > MAX_URL_BYTES;

/**
 * Limits every listener has unless it says otherwise: headers must arrive within 10 s, a whole
 * request within 60 s, an idle keep-alive connection is closed after 5 s, and headers are capped
 * at 16 KiB (431 beyond).
 */
const SERVER_DEFAULTS: ServerOptions = {
  headersTimeout: 10_000,
  requestTimeout: 60_000,
  keepAliveTimeout: 5_000,
  maxHeaderSize: 16 * 1024,
  connectionsCheckingInterval: 1_000,
};

/** Default per-client connection cap of every listener. */
const DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 256;

/**
 * Requests one connection may have in flight at once (HTTP/1.1 pipelining); a connection with
 * more is closed. Node hands the handler every request a received chunk holds (~1,500 short GETs
 * in 64 KiB) before any is answered, and pauses a connection only for answers already written:
 * an asynchronous handler (/metrics, a read API query) started them all together, and a few
 * dozen connections flooding /metrics ran the process out of heap. Clients that pipeline at all
 * send a few.
 */
export const MAX_PIPELINED_REQUESTS = 8;

/** One HTTP listener with the component lifecycle: start() listens once; shutdown() is idempotent and safe before start. */
export class HttpService {
  private server: Server | undefined;
  /** Every open connection of the server, HTTP or still in its TLS handshake. */
  private readonly sockets = new Set<Socket>();
  /** With TLS, the connections whose handshake finished, as TLS sockets: what a client sent is counted there, not on the connection's own socket. */
  private readonly secured = new Set<Socket>();
  private stopping: Promise<void> | undefined;
  /** Requests being answered, whose answers close their connection once a stop begins. */
  private readonly answering = new Set<ServerResponse>();
  private readonly opts: HttpServiceOptions;
  private readonly logger: Logger;
  private readonly onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  private readonly configure: ((server: Server) => void) | undefined;
  /** On a loopback listener with a HostRule, the names it answers besides this machine's (set once bound); absent otherwise. */
  private hosts: ReadonlySet<string> | undefined;
  /** Requests each connection has in flight (MAX_PIPELINED_REQUESTS). */
  private readonly inFlight = new WeakMap<Socket, number>();
  /** Connections closed for pipelining more than MAX_PIPELINED_REQUESTS, logged at most once a minute. */
  private readonly overPipelined = new RecurringLog();
  boundPort = 0;

  constructor(opts: HttpServiceOptions, logger: Logger, onRequest: (req: IncomingMessage, res: ServerResponse) => void, configure?: (server: Server) => void) {
    this.opts = opts;
    this.logger = logger;
    this.onRequest = onRequest;
    this.configure = configure;
  }

  /**
   * Why a request is refused for the host it names (HttpServiceOptions.hosts), or undefined when
   * answered. For handlers that go around the service's own (Node's 'checkContinue').
   */
  foreignHost(req: IncomingMessage): string | undefined {
    if (!this.hosts) return undefined;
    const name = hostName(req.headers.host);
    if (name === undefined || isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost') || CONTAINER_HOST_NAMES.has(name) || this.hosts.has(name)) return undefined;
    return (
      `host ${JSON.stringify(name)} is not this machine's: on a loopback address this port answers localhost, IP addresses and host.docker.internal (or host.containers.internal) only ` +
      `(a web page rebound to 127.0.0.1 must not reach it); a proxy on this host that passes its own Host needs it in ${this.opts.hosts!.option}`
    );
  }

  async start(): Promise<void> {
    if (this.server) return;
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      if (!this.admitPipelined(req, res)) return;
      if (targetTooLong(req)) {
        res.shouldKeepAlive = false;
        if (this.opts.onTargetTooLong) return this.opts.onTargetTooLong(req, res);
        return sendJson(res, 414, { error: `request target longer than ${MAX_URL_BYTES} bytes` });
      }
      const foreign = this.foreignHost(req);
      if (foreign !== undefined) {
        if (this.opts.onForeignHost) return this.opts.onForeignHost(req, res, foreign);
        return sendJson(res, 403, { error: foreign });
      }
      // During a stop the answer closes its connection: a client reading again and again on a
      // kept-alive one would otherwise hold the stop for the whole grace.
      if (this.stopping) res.shouldKeepAlive = false;
      else {
        // Taken out when it closes by admitPipelined's listener, which every request has.
        this.answering.add(res);
      }
      this.onRequest(req, res);
    };
    const options = { ...SERVER_DEFAULTS, ...this.opts.server };
    const certs = this.opts.tls;
    // With TLS a plain request never gets past the handshake: the connection is closed unanswered.
    let server: Server;
    if (certs) {
      const https = createHttpsServer({ ...options, ...certs.serverOptions() }, handler);
      https.on('secureConnection', (tls: Socket) => {
        this.secured.add(tls);
        tls.once('close', () => this.secured.delete(tls));
      });
      certs.attach(https);
      this.countHandshakeFailures(https, certs);
      server = https;
    } else server = createServer(options, handler);
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.limitConnectionsPerClient(server);
    this.configure?.(server);
    this.boundPort = await listenHttp(server, this.opts.listen);
    // Loopback by the address bound, whatever its spelling: LOCALHOST, 127.1, [::ffff:127.0.0.1],
    // or a name of this machine that resolves to 127.0.0.1 (its own in /etc/hosts).
    const bound = (server.address() as { address?: string } | null)?.address;
    const rule = this.opts.hosts;
    this.hosts = rule && bound !== undefined && isLoopbackAddress(bound) ? new Set(rule.allowed.map((h) => hostName(h)!)) : undefined;
    this.server = server;
    this.stopping = undefined;
    this.logger.info({ listen: this.opts.listen, tls: certs ? (certs.mutual ? 'mtls' : 'tls') : 'off', port: this.boundPort }, `${this.opts.name} listening`);
  }

  /**
   * Whether a request is answered: false for one on a connection already closed, or past
   * MAX_PIPELINED_REQUESTS in flight on its connection, which is closed then (nothing to answer).
   * A listener's own 'checkContinue' handler (Expect: 100-continue goes around the service's
   * handler) calls it first too: without, such requests were not counted.
   */
  admitPipelined(req: IncomingMessage, res: ServerResponse): boolean {
    const socket = req.socket;
    if (socket.destroyed) return false;
    const n = (this.inFlight.get(socket) ?? 0) + 1;
    if (n > MAX_PIPELINED_REQUESTS) {
      socket.destroy();
      if (this.opts.onOverPipelined) this.opts.onOverPipelined(MAX_PIPELINED_REQUESTS);
      else
        this.overPipelined.log((closedSinceLast) =>
          this.logger.warn({ listener: this.opts.name, limit: MAX_PIPELINED_REQUESTS, closedSinceLast }, 'closing connections with more requests pipelined than the limit (in flight at once)'),
        );
      return false;
    }
    this.inFlight.set(socket, n);
    // One listener per request for both: its connection's count, and the answers a stop looks at.
    res.once('close', () => {
      this.inFlight.set(socket, (this.inFlight.get(socket) ?? 1) - 1);
      this.answering.delete(res);
    });
    return true;
  }

  /** Failed TLS handshakes (plain HTTP, an untrusted or missing client certificate) are counted, and logged once a minute with a count. */
  private countHandshakeFailures(server: Server, certs: TlsCertificates): void {
    const failures = new RecurringLog();
    server.on('tlsClientError', (err: Error, socket) => {
      socket.destroy();
      certs.handshakeFailed();
      failures.log((failedSinceLast) => this.logger.warn({ listener: this.opts.name, failedSinceLast, err: err.message }, 'TLS handshakes failed (plain requests, untrusted or missing client certificates)'));
    });
  }

  /** One client (address) may not hold more than its share of connections; the rest are closed as they open. */
  private limitConnectionsPerClient(server: Server): void {
    const limit = this.opts.maxConnectionsPerClient ?? DEFAULT_MAX_CONNECTIONS_PER_CLIENT;
    if (limit <= 0) return;
    const open = new Map<string, number>();
    const closed = new RecurringLog();
    server.on('connection', (socket) => {
      const client = socket.remoteAddress ?? '';
      const n = (open.get(client) ?? 0) + 1;
      if (n > limit) {
        socket.destroy();
        if (this.opts.onClientOverLimit) return void this.opts.onClientOverLimit(limit);
        closed.log((closedSinceLast) => this.logger.warn({ listener: this.opts.name, limit, closedSinceLast }, 'closing connections of a client over its connection limit'));
        return;
      }
      open.set(client, n);
      socket.once('close', () => {
        const left = (open.get(client) ?? 1) - 1;
        if (left <= 0) open.delete(client);
        else open.set(client, left);
      });
    });
  }

  /**
   * Which connections received something (a request begun, at least): a TLS connection's own
   * socket counts its handshake, so it is told by its TLS socket, matched by the client's address
   * and port, which both share.
   */
  private askedOn(): (s: Socket) => boolean {
    if (!this.opts.tls) return (s) => s.bytesRead > 0;
    const peer = (s: Socket): string => `${s.remoteAddress}|${s.remotePort}`;
    const asked = new Set<string>();
    for (const t of this.secured) if (t.bytesRead > 0) asked.add(peer(t));
    return (s) => asked.has(peer(s));
  }

  /** Stops accepting connections and waits for requests in flight (up to the grace period, or graceMs). */
  shutdown(graceMs = this.opts.shutdownGraceMs): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      for (const res of this.answering) if (!res.headersSent) res.shouldKeepAlive = false;
      for (const s of this.sockets) hurryLinger(s);
      for (const s of this.secured) hurryLinger(s);
      this.answering.clear();
      this.stopping = closeHttp(server, this.sockets, graceMs, () => this.askedOn());
    }
    return this.stopping ?? Promise.resolve();
  }
}
