// OTLP/HTTP receiver (4318): POST /v1/traces and /v1/logs in protobuf or OTLP/JSON, identity or
// gzip. The main thread only moves bytes: it checks headers, enforces the size limit while
// receiving and while inflating (so a gzip bomb stops at the limit), and hands the body to the
// shared ingest path. Every refusal is a google.rpc.Status in the request's content type.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createGunzip, type Gunzip } from 'node:zlib';
import { listenHttp } from '../common/http.ts';
import type { Config } from '../config/index.ts';
import type { OtlpFormat } from '../pipeline/pool.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Ingest, IngestOutcome } from './ingest.ts';
import { encodeExportResponse, encodeStatus, exportResponse, statusObject, type SignalName } from './otlp-messages.ts';

/** gRPC status codes carried in google.rpc.Status bodies. */
const GRPC = { INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14 } as const;

const ROUTES: ReadonlyMap<string, SignalName> = new Map([
  ['/v1/traces', 'traces'],
  ['/v1/logs', 'logs'],
]);

const CONTENT_TYPES: ReadonlyMap<string, OtlpFormat> = new Map([
  ['application/x-protobuf', 'protobuf'],
  ['application/json', 'json'],
]);

/** How long shutdown waits for requests in flight before closing their connections. */
const SHUTDOWN_GRACE_MS = 10_000;
/** Retry-After for requests refused before their body is read because the write queue is full. */
const OVERLOAD_RETRY_AFTER_MS = 1000;
/** Preflight answers are cached this long by browsers. */
const CORS_MAX_AGE_S = 7200;

/** The OTLP format named by a Content-Type header (parameters such as charset ignored), or undefined. */
export function formatOf(contentType: string | undefined): OtlpFormat | undefined {
  if (contentType === undefined) return undefined;
  const semi = contentType.indexOf(';');
  return CONTENT_TYPES.get((semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase());
}

/** 'identity', 'gzip', or undefined for an encoding the receiver does not accept. */
export function encodingOf(contentEncoding: string | undefined): 'identity' | 'gzip' | undefined {
  const e = (contentEncoding ?? '').trim().toLowerCase();
  if (e === '' || e === 'identity') return 'identity';
  if (e === 'gzip' || e === 'x-gzip') return 'gzip';
  return undefined;
}

/** A matcher for Origin headers: exact origins, '*' for any, or patterns such as https://*.example.com. */
export function originMatcher(allowed: readonly string[]): (origin: string) => boolean {
  if (allowed.includes('*')) return () => true;
  const exact = new Set(allowed.filter((a) => !a.includes('*')).map((a) => a.toLowerCase()));
  const patterns = allowed
    .filter((a) => a.includes('*'))
    .map((a) => new RegExp('^' + a.toLowerCase().split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*') + '$'));
  return (origin) => {
    const o = origin.toLowerCase();
    return exact.has(o) || patterns.some((p) => p.test(o));
  };
}

/** Whether a request comes with a body (chunked or a non-zero Content-Length). */
function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** Why a body could not be read in full; each maps to one status code and one refusal reason. */
class BodyError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly grpcCode: number;
  constructor(status: number, reason: string, grpcCode: number, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.grpcCode = grpcCode;
  }
}

/** The client went away mid-body: nobody to answer. */
class BodyAborted extends Error {}

interface ReadOptions {
  encoding: 'identity' | 'gzip';
  /** Content-Length, when the client sent one (already checked against the limit). */
  declared: number | undefined;
  limit: number;
  timeoutMs: number;
}

/**
 * Reads a request body into one buffer of its own, never holding more than the limit: the raw
 * body is refused past it, and gzip is inflated as it arrives and stopped at the first output
 * chunk past it, so the rest of a bomb is never inflated.
 */
function readBody(req: IncomingMessage, o: ReadOptions): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const gzip = o.encoding === 'gzip';
    // Content-Length sizes the buffer only when it is the size of what is kept.
    const body = new Chunks(gzip ? undefined : o.declared);
    let settled = false;
    let gunzip: Gunzip | undefined;

    const finish = (err: Error | undefined, value?: Uint8Array): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      if (gunzip) {
        req.unpipe(gunzip);
        gunzip.removeAllListeners('data');
        gunzip.on('error', () => {});
        gunzip.destroy();
      }
      if (err) {
        // The rest of the body is not read: the answer closes the connection.
        req.pause();
        reject(err);
      } else resolve(value!);
    };
    const tooLarge = (what: string): void =>
      finish(new BodyError(413, 'too_large', GRPC.RESOURCE_EXHAUSTED, `request ${what} is over the limit of ${o.limit} bytes`));

    const timer = setTimeout(
      () => finish(new BodyError(408, 'timeout', GRPC.DEADLINE_EXCEEDED, `request body not received within ${o.timeoutMs} ms`)),
      o.timeoutMs,
    );

    let received = 0;
    const onData = (chunk: Buffer): void => {
      received += chunk.byteLength;
      if (received > o.limit) return tooLarge('body');
      // Compressed bytes only pass through to the inflater.
      if (!gzip) body.push(chunk);
    };
    const onEnd = (): void => {
      if (!gzip) finish(undefined, body.take());
    };
    const onClose = (): void => {
      if (!req.complete) finish(new BodyAborted('client went away before sending the whole body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onClose);

    if (gzip) {
      const gz = createGunzip();
      gunzip = gz;
      gz.on('data', (chunk: Buffer) => {
        if (body.bytes + chunk.byteLength > o.limit) return tooLarge('after decompression');
        body.push(chunk);
      });
      gz.on('end', () => finish(undefined, body.take()));
      gz.on('error', (err: Error) => finish(new BodyError(400, 'bad_gzip', GRPC.INVALID_ARGUMENT, `gzip body could not be inflated: ${err.message}`)));
      req.pipe(gz);
    }
  });
}

/**
 * Body bytes gathered into one buffer of its own (not a slice of Node's buffer pool). When the
 * final size is known (Content-Length of an identity body) chunks are copied straight into place
 * instead of being kept and concatenated, so the body is never held twice.
 */
class Chunks {
  private list: Uint8Array[] = [];
  private exact: Uint8Array | undefined;
  private readonly expected: number | undefined;
  bytes = 0;

  constructor(expected: number | undefined) {
    this.expected = expected;
  }

  push(chunk: Uint8Array): void {
    if (this.expected !== undefined && this.list.length === 0 && this.bytes + chunk.byteLength <= this.expected) {
      // Allocated at the first byte rather than at the headers, so an idle client holds nothing.
      this.exact ??= new Uint8Array(this.expected);
      this.exact.set(chunk, this.bytes);
    } else {
      if (this.exact) this.list.push(this.exact.subarray(0, this.bytes));
      this.exact = undefined;
      this.list.push(chunk);
    }
    this.bytes += chunk.byteLength;
  }

  take(): Uint8Array {
    if (this.exact && this.bytes === this.exact.byteLength) return this.exact;
    const parts = this.exact ? [this.exact.subarray(0, this.bytes)] : this.list;
    const out = new Uint8Array(this.bytes);
    let at = 0;
    for (const c of parts) {
      out.set(c, at);
      at += c.byteLength;
    }
    this.list = [];
    this.exact = undefined;
    return out;
  }
}

/** The OTLP/HTTP server. */
export class HttpReceiver {
  private server: Server | undefined;
  private closing = false;
  private stopping: Promise<void> | undefined;
  private readonly ingest: Ingest;
  private readonly logger: Logger;
  private readonly listen: string;
  private readonly maxMessageBytes: number;
  private readonly bodyTimeoutMs: number;
  private readonly corsAllowed: ((origin: string) => boolean) | undefined;
  boundPort = 0;

  constructor(config: Config, ingest: Ingest, logger: Logger) {
    this.ingest = ingest;
    this.logger = logger;
    this.listen = config['receiver.http.listen'];
    this.maxMessageBytes = config['receiver.maxMessageBytes'];
    this.bodyTimeoutMs = config['receiver.http.bodyTimeoutMs'];
    const origins = config['receiver.http.corsAllowedOrigins'];
    this.corsAllowed = origins.length > 0 ? originMatcher(origins) : undefined;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer({
      // Our body timer answers 408 first; Node's own request timeout is the backstop for
      // anything that slips past it (headers that never finish, say).
      headersTimeout: Math.min(60_000, this.bodyTimeoutMs),
      requestTimeout: this.bodyTimeoutMs + 5_000,
      connectionsCheckingInterval: Math.min(30_000, Math.max(1_000, this.bodyTimeoutMs)),
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res, false));
    // Expect: 100-continue is answered only once the headers pass, so an oversized upload is refused before it is sent.
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res, true));
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT';
      if (timeout) this.ingest.countRefusedRequest('http', 'timeout');
      if (!socket.writable || socket.destroyed || err.code === 'ECONNRESET') return void socket.destroy();
      const line = timeout ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${line}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
    this.boundPort = await listenHttp(server, this.listen);
    this.server = server;
    this.closing = false;
    this.logger.info({ listen: this.listen, port: this.boundPort }, 'OTLP/HTTP receiver listening');
  }

  /** Stops accepting connections and waits for requests in flight to be answered (they are queued by then). */
  shutdown(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) this.stopping = this.close(server);
    return this.stopping ?? Promise.resolve();
  }

  private async close(server: Server): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
    try {
      await closed;
    } finally {
      clearTimeout(force);
    }
  }

  private onRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    this.route(req, res, expectContinue).catch((err: Error) => {
      this.logger.error({ err: err.message, url: req.url }, 'OTLP/HTTP request failed unexpectedly');
      if (!res.headersSent) this.sendStatus(req, res, formatOf(req.headers['content-type']) ?? 'json', 500, GRPC.INTERNAL, 'internal error');
      else res.destroy();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const signal = ROUTES.get(path);
    const format = formatOf(req.headers['content-type']);
    // Errors before the content type is known are answered in JSON, the readable choice.
    const replyFormat = format ?? 'json';
    this.addCorsHeaders(req, res);
    if (!signal) {
      this.ingest.countRefusedRequest('http', 'not_found');
      return this.sendStatus(req, res, replyFormat, 404, GRPC.NOT_FOUND, `no OTLP endpoint at ${path}; use /v1/traces or /v1/logs`);
    }
    if (req.method === 'OPTIONS' && this.corsAllowed) return this.preflight(req, res);
    if (req.method !== 'POST') {
      res.setHeader('allow', this.corsAllowed ? 'POST, OPTIONS' : 'POST');
      this.ingest.countRefusedRequest('http', 'method_not_allowed');
      return this.sendStatus(req, res, replyFormat, 405, GRPC.UNIMPLEMENTED, `method ${req.method ?? ''} not allowed on ${path}; use POST`);
    }
    if (!format) {
      this.ingest.countRefusedRequest('http', 'unsupported_media_type');
      const got = req.headers['content-type'] ?? '(none)';
      return this.sendStatus(req, res, 'json', 415, GRPC.INVALID_ARGUMENT, `unsupported Content-Type ${got}; use application/x-protobuf or application/json`);
    }
    const encoding = encodingOf(req.headers['content-encoding']);
    if (!encoding) {
      this.ingest.countRefusedRequest('http', 'unsupported_encoding');
      return this.sendStatus(req, res, format, 415, GRPC.INVALID_ARGUMENT, `unsupported Content-Encoding ${req.headers['content-encoding'] ?? ''}; use gzip or identity`);
    }
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    if (declared !== undefined && declared > this.maxMessageBytes) {
      this.ingest.countRefusedRequest('http', 'too_large');
      return this.sendStatus(req, res, format, 413, GRPC.RESOURCE_EXHAUSTED, `request of ${declared} bytes is over the limit of ${this.maxMessageBytes} bytes`);
    }
    // Refused before the body is read: an overloaded collector should not also spend the bandwidth
    // and memory. A declared body takes its room in the queue budget before it arrives, so many
    // concurrent uploads cannot together outgrow writer.maxQueueBytes.
    const held = declared !== undefined && declared > 0 ? declared : undefined;
    if (held !== undefined ? !this.ingest.reserveBody(held) : this.ingest.overloaded) {
      this.ingest.countRefusedRequest('http', 'queue_full');
      return this.answer(req, res, signal, format, { kind: 'unavailable', message: 'the write queue is full', retryAfterMs: OVERLOAD_RETRY_AFTER_MS });
    }
    if (expectContinue) res.writeContinue();

    let body: Uint8Array;
    try {
      body = await this.readBody(req, encoding, declared);
    } catch (err) {
      if (held !== undefined) this.ingest.releaseBody(held);
      if (err instanceof BodyError) {
        this.ingest.countRefusedRequest('http', err.reason);
        return this.sendStatus(req, res, format, err.status, err.grpcCode, err.message);
      }
      if (err instanceof BodyAborted) {
        this.ingest.countRefusedRequest('http', 'client_aborted');
        res.destroy();
        return;
      }
      throw err;
    }
    // The body buffer is ours alone (readBody sized it), so it moves to the worker without a copy.
    const outcome = await this.ingest.handle('http', signal, format, body, true, held);
    this.answer(req, res, signal, format, outcome);
  }

  private answer(req: IncomingMessage, res: ServerResponse, signal: SignalName, format: OtlpFormat, out: IngestOutcome): void {
    switch (out.kind) {
      case 'ok':
        return this.send(req, res, 200, format, format === 'json' ? JSON.stringify(exportResponse(signal, out.rejected, out.errorMessage)) : encodeExportResponse(signal, out.rejected, out.errorMessage));
      case 'invalid':
        return this.sendStatus(req, res, format, 400, GRPC.INVALID_ARGUMENT, out.message);
      case 'unavailable':
        // 503, not 429: the collector is overloaded, not this client throttled; both are retried.
        res.setHeader('retry-after', String(Math.max(1, Math.ceil(out.retryAfterMs / 1000))));
        return this.sendStatus(req, res, format, 503, GRPC.UNAVAILABLE, out.message, out.retryAfterMs);
    }
  }

  /** Reads the body, bounded by maxMessageBytes and bodyTimeoutMs. */
  private readBody(req: IncomingMessage, encoding: 'identity' | 'gzip', declared: number | undefined): Promise<Uint8Array> {
    return readBody(req, { encoding, declared, limit: this.maxMessageBytes, timeoutMs: this.bodyTimeoutMs });
  }

  private addCorsHeaders(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (!this.corsAllowed || origin === undefined) return;
    res.setHeader('vary', 'Origin');
    if (!this.corsAllowed(origin)) return;
    res.setHeader('access-control-allow-origin', origin);
    // Browser exporters read Retry-After to back off.
    res.setHeader('access-control-expose-headers', 'Retry-After');
  }

  private preflight(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (origin !== undefined && this.corsAllowed!(origin)) {
      res.setHeader('access-control-allow-methods', 'POST, OPTIONS');
      const requested = req.headers['access-control-request-headers'];
      res.setHeader('access-control-allow-headers', requested ?? 'Content-Type, Content-Encoding');
      res.setHeader('access-control-max-age', String(CORS_MAX_AGE_S));
      res.setHeader('vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
    }
    // A disallowed origin gets no CORS headers, which the browser treats as a refusal.
    this.send(req, res, 204, undefined, undefined);
  }

  private sendStatus(req: IncomingMessage, res: ServerResponse, format: OtlpFormat, status: number, grpcCode: number, message: string, retryDelayMs?: number): void {
    const body = format === 'json' ? JSON.stringify(statusObject(grpcCode, message, retryDelayMs)) : encodeStatus(grpcCode, message, retryDelayMs);
    this.send(req, res, status, format, body);
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, format: OtlpFormat | undefined, body: string | Uint8Array | undefined): void {
    if (res.headersSent) return;
    // A body we did not read (refused early) is not drained: the connection closes after the answer.
    if (this.closing || (!req.complete && hasBody(req))) res.shouldKeepAlive = false;
    if (format !== undefined && body !== undefined) {
      res.setHeader('content-type', format === 'json' ? 'application/json' : 'application/x-protobuf');
      res.setHeader('content-length', typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
    }
    res.statusCode = status;
    res.end(body);
  }
}
