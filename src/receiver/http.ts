// OTLP/HTTP receiver (4318): POST /v1/traces and /v1/logs in protobuf or OTLP/JSON, identity,
// gzip, deflate or zstd. The main thread only moves bytes: it checks headers, enforces the size
// limit while receiving and while inflating (so a compression bomb stops at the limit), and hands the body to the
// shared ingest path. Every refusal is a google.rpc.Status in the request's content type.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Transform } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import { closeAfterUnreadBody, HttpService, MAX_URL_BYTES, RECEIVER_GRACE_MS, targetPath, targetTooLong } from '../common/http.ts';
import { releaseBuffer, wholeBuffer } from '../common/release.ts';
import { createZstdFrames } from '../common/zstd.ts';
import { REFUSALS, type RefusalReason } from '../common/refusals.ts';
import type { Signal } from '../model/signal.ts';
import type { Ingest, IngestOutcome } from '../pipeline/ingest.ts';
import type { OtlpFormat } from '../pipeline/pool.ts';
import type { Reservation } from '../pipeline/writer.ts';
import { OPEN, type Authenticator } from '../security/auth.ts';
import type { TlsCertificates } from '../security/tls.ts';
import { wwwAuthenticate } from '../security/tokens.ts';
import { RecurringLog, type Logger } from '../telemetry/logger.ts';
import { encodeExportResponse, encodeStatus, exportResponse, statusObject } from './otlp-messages.ts';

const ROUTES: ReadonlyMap<string, Signal> = new Map([
  ['/v1/traces', 'traces'],
  ['/v1/logs', 'logs'],
]);

const CONTENT_TYPES: ReadonlyMap<string, OtlpFormat> = new Map([
  ['application/x-protobuf', 'protobuf'],
  ['application/json', 'json'],
]);

/** Preflight answers are cached this long by browsers. */
const CORS_MAX_AGE_S = 7200;

/** The OTLP format named by a Content-Type header (parameters such as charset ignored), or undefined. */
export function formatOf(contentType: string | undefined): OtlpFormat | undefined {
  if (contentType === undefined) return undefined;
  const semi = contentType.indexOf(';');
  return CONTENT_TYPES.get((semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase());
}

/** The Content-Encodings accepted (the Collector's confighttp also takes snappy and lz4: not here). */
export type BodyEncoding = 'identity' | 'gzip' | 'deflate' | 'zstd';

/** Streaming decompressors by encoding; deflate is the zlib format, as HTTP defines it. */
const INFLATERS: Record<Exclude<BodyEncoding, 'identity'>, () => Transform> = {
  gzip: createGunzip,
  deflate: createInflate,
  zstd: createZstdFrames,
};

/**
 * The body encoding a Content-Encoding header names, or undefined for one the receiver does not
 * accept. `zlib` is deflate by another name: the Collector's otlphttp exporter with
 * `compression: zlib` sends it, and its receiver reads it as deflate.
 */
export function encodingOf(contentEncoding: string | undefined): BodyEncoding | undefined {
  const e = (contentEncoding ?? '').trim().toLowerCase();
  if (e === '' || e === 'identity') return 'identity';
  if (e === 'gzip' || e === 'x-gzip') return 'gzip';
  if (e === 'deflate' || e === 'zlib') return 'deflate';
  if (e === 'zstd') return e;
  return undefined;
}

/**
 * An allowed origin as a browser serializes its Origin header: an entry copied from the address
 * bar may end in '/' or a path, and one written as a URL may name its scheme's default port
 * (https://app.example.com:443) or an IDN host; the header has none of these, and a punycode host.
 * URL parsing keeps '*' in a host, so patterns such as https://*.example.com:443 are read the same
 * way; what it cannot read (http://localhost:*, 'null') or gives no origin for (non-special
 * schemes such as chrome-extension://) is kept as written.
 */
function serializedOrigin(entry: string): string {
  const trimmed = entry.replace(/\/+$/, '');
  if (!URL.canParse(trimmed)) return trimmed;
  const origin = new URL(trimmed).origin;
  return origin === 'null' ? trimmed : origin;
}

/** A matcher for Origin headers: exact origins, '*' for any, or patterns such as https://*.example.com. */
export function originMatcher(allowed: readonly string[]): (origin: string) => boolean {
  if (allowed.includes('*')) return () => true;
  allowed = allowed.map(serializedOrigin);
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

/** Why a body could not be read in full: one refusal reason of the catalogue. */
export class BodyError extends Error {
  readonly reason: RefusalReason;
  constructor(reason: RefusalReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** The client went away mid-body: nobody to answer. */
class BodyAborted extends Error {}

interface ReadOptions {
  encoding: BodyEncoding;
  /** Content-Length, when the client sent one (already checked against the limit). */
  declared: number | undefined;
  limit: number;
  timeoutMs: number;
  /** Queue room for the body, grown as its bytes are held (never before they arrive). */
  reservation: Reservation;
  /** Room taken per byte held: Ingest.decodeCharge() of the body's format (what decoding it will take). */
  charge: number;
}

/**
 * Reads a request body into one buffer of its own, never holding more than the limit: the raw
 * body is refused past it, and a compressed body is inflated once it has all arrived, stopped at
 * the first output chunk past the limit, so the rest of a bomb is never inflated. The queue
 * budget grows with the bytes actually held, so headers announcing large bodies reserve nothing.
 * A compressed body is held as it came, charged byte for byte, until its last byte: inflated as it
 * arrived, ~100 bytes of gzip held 64 KiB of inflated zeros, and a client that left a few such
 * bodies unfinished held the whole queue budget until receiver.http.bodyTimeoutMs for ~2 KB
 * sent, every other exporter answered 503 queue_full meanwhile.
 */
function readBody(req: IncomingMessage, o: ReadOptions): Promise<Uint8Array> {
  const encoding = o.encoding;
  // An identity body (the usual one) is the received one, with no promise around it.
  if (encoding === 'identity') return receive(req, o);
  return receive(req, { ...o, charge: 1 }).then((compressed) => inflateMessage(compressed, encoding, { limit: o.limit, reservation: o.reservation, charge: o.charge }));
}

/** Receives a body as sent, into one buffer of its own, refused past the limit, within the timeout. */
function receive(req: IncomingMessage, o: ReadOptions): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    // Content-Length sizes the buffer (once half of it is in).
    // Node's HTTP parser hands each piece of a body over as a copy of its own (the socket is read
    // into the parser's buffer), so once copied into the body it is ours to free.
    const body = new BodyBuffer(o.reservation, o.declared, true, o.charge);
    let settled = false;

    const finish = (err: Error | undefined, value?: Uint8Array): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      if (err) {
        // The rest of the body is not read: the answer closes the connection.
        req.pause();
        reject(err);
      } else resolve(value!);
    };
    const keep = keeper(body, o.limit, finish);

    const timer = setTimeout(() => finish(new BodyError('timeout', `request body not received within ${o.timeoutMs} ms`)), o.timeoutMs);

    const onData = (chunk: Buffer): void => keep(chunk, 'body');
    const onEnd = (): void => finish(undefined, body.take());
    const onClose = (): void => {
      if (!req.complete) finish(new BodyAborted('client went away before sending the whole body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onClose);
  });
}

/** A body (`what`: "body", "after decompression") past the size limit. */
function tooLargeError(what: string, limit: number): BodyError {
  return new BodyError('too_large', `request ${what} is over the limit of ${limit} bytes`);
}

/** Keeps a chunk in the body, or ends with too_large past the limit or queue_full when the budget has no room. */
function keeper(body: BodyBuffer, limit: number, finish: (err: Error) => void): (chunk: Uint8Array, what: string) => void {
  return (chunk, what) => {
    if (body.bytes + chunk.byteLength > limit) return finish(tooLargeError(what, limit));
    if (!body.push(chunk)) finish(new BodyError('queue_full', REFUSALS.queue_full.message));
  };
}

/**
 * Inflates a whole compressed message (a gRPC message, an OTLP/HTTP body once received) into one
 * buffer of its own, its output charged to the reservation as it comes (`charge` per byte) and
 * stopped at the first chunk past the limit, so a bomb is never inflated whole. Rejects with a
 * BodyError: too_large, queue_full or bad_encoding.
 */
export function inflateMessage(message: Uint8Array, encoding: Exclude<BodyEncoding, 'identity'>, o: { limit: number; reservation: Reservation; charge: number }): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const gz = INFLATERS[encoding]();
    let settled = false;
    const finish = (err: Error | undefined, value?: Uint8Array): void => {
      if (settled) return;
      settled = true;
      // Finished or given up: no more output is kept, and a late error is ignored.
      gz.removeAllListeners('data');
      gz.on('error', () => {});
      gz.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const body = new BodyBuffer(o.reservation, undefined, false, o.charge);
    const keep = keeper(body, o.limit, finish);
    gz.on('data', (chunk: Buffer) => keep(chunk, 'after decompression'));
    gz.on('end', () => finish(undefined, body.take()));
    gz.on('error', (err: Error) => finish(new BodyError('bad_encoding', `${encoding} body could not be inflated: ${err.message}`)));
    gz.end(message);
  });
}

/** Pieces shorter than this are copied into a shared tail buffer rather than kept one by one. */
const SMALL_PIECE_BYTES = 4096;
/** Largest tail buffer small pieces are gathered in. */
const TAIL_BYTES = 64 * 1024;
/** Smallest tail buffer: a tail is sized to the body so far (doubling), so a short body holds about its size. */
const MIN_TAIL_BYTES = 64;

/**
 * Body bytes gathered into one buffer of its own (not a slice of Node's buffer pool), every byte
 * reserved in the queue budget before it is held (`charge` bytes of it per byte). Chunks are kept
 * as they arrive; once half of a declared identity body is in, a buffer of exactly the declared
 * size takes them, so a large body is never held twice, and a client that sends a few bytes and
 * stalls holds only those. Small pieces (a chunked body can come one byte per chunk, each a Buffer
 * of its own from Node's parser, ~100 bytes of heap each) are copied into a tail buffer, so what a
 * body holds stays about its size, as its charge says.
 */
export class BodyBuffer {
  private list: Uint8Array[] = [];
  /** Where small pieces are gathered; its first tailBytes bytes follow everything in list. */
  private tail: Uint8Array | undefined;
  private tailBytes = 0;
  private exact: Uint8Array | undefined;
  private readonly reservation: Reservation;
  private readonly expected: number | undefined;
  /** Whether the chunks pushed are this body's alone, to be freed once copied (freeCopied). */
  private readonly ownsChunks: boolean;
  /** Queue room taken per byte held (whole bytes per chunk). */
  private readonly charge: number;
  bytes = 0;

  constructor(reservation: Reservation, expected: number | undefined, ownsChunks = false, charge = 1) {
    this.reservation = reservation;
    this.expected = expected;
    this.ownsChunks = ownsChunks;
    this.charge = charge;
  }

  /** Appends a chunk; false when the queue budget has no room for it. */
  push(chunk: Uint8Array): boolean {
    const need = this.bytes + chunk.byteLength;
    if (this.exact && need <= this.exact.byteLength) {
      this.exact.set(chunk, this.bytes);
      this.bytes = need;
      this.freeCopied(chunk);
      return true;
    }
    if (this.exact) {
      // More than declared (the client lied): fall back to a list.
      this.list = [this.exact.subarray(0, this.bytes)];
      this.exact = undefined;
    }
    if (!this.reservation.grow(Math.ceil(chunk.byteLength * this.charge))) return false;
    this.keep(chunk);
    this.bytes = need;
    const e = this.expected;
    if (e !== undefined && need * 2 >= e && need < e && this.reservation.grow(Math.ceil((e - need) * this.charge))) {
      // Not zero-filled: every byte is written before the body is used (take() copies a short one).
      const exact = Buffer.allocUnsafeSlow(e);
      let at = 0;
      for (const c of this.pieces()) {
        exact.set(c, at);
        at += c.byteLength;
        this.freeCopied(c);
      }
      this.exact = exact;
      this.list = [];
    }
    return true;
  }

  /**
   * Holds a piece: as it is when it is large, or the first; else copied into the tail (a new
   * tail, sized to the body so far up to 64 KiB, when it is full), the piece freed if it is ours.
   * A large piece closes the tail: its bytes move to a buffer of their own size, and the tail is
   * used again for the pieces after it.
   */
  private keep(chunk: Uint8Array): void {
    const n = chunk.byteLength;
    if (n >= SMALL_PIECE_BYTES || (this.list.length === 0 && this.tailBytes === 0)) {
      if (this.tailBytes > 0) {
        const closed = Buffer.allocUnsafeSlow(this.tailBytes);
        closed.set(this.tail!.subarray(0, this.tailBytes));
        this.list.push(closed);
        this.tailBytes = 0;
      }
      this.list.push(chunk);
      return;
    }
    if (this.tail === undefined || this.tailBytes + n > this.tail.byteLength) {
      if (this.tailBytes > 0) this.list.push(this.tail!.subarray(0, this.tailBytes));
      // As large as the body so far with this piece (a power of two), so a body that stops after
      // a few bytes holds about those, and a long one gets 64 KiB tails.
      const want = Math.max(MIN_TAIL_BYTES, this.bytes + n);
      this.tail = Buffer.allocUnsafeSlow(Math.min(TAIL_BYTES, 2 ** Math.ceil(Math.log2(want))));
      this.tailBytes = 0;
    }
    this.tail.set(chunk, this.tailBytes);
    this.tailBytes += n;
    this.freeCopied(chunk);
  }

  /** Every piece held, in order (the tail's bytes last); the tail is let go. */
  private pieces(): Uint8Array[] {
    if (this.tailBytes > 0) this.list.push(this.tail!.subarray(0, this.tailBytes));
    this.tail = undefined;
    this.tailBytes = 0;
    return this.list;
  }

  /**
   * Frees a pushed chunk now that its bytes are copied, when the body owns its chunks and the
   * chunk is the whole of its ArrayBuffer (a view of part of a buffer is shorter than it). V8
   * counts a received chunk's memory until a full collection finds it dead, and starts one for
   * every 64 MiB counted: freed here, request bodies stop driving those collections
   * (docs/performance.md, phase T).
   */
  private freeCopied(chunk: Uint8Array): void {
    if (this.ownsChunks && wholeBuffer(chunk)) releaseBuffer(chunk.buffer);
  }

  /** The body, in a buffer of exactly its size. */
  take(): Uint8Array {
    if (this.exact && this.bytes === this.exact.byteLength) return this.exact;
    const parts = this.exact ? [this.exact.subarray(0, this.bytes)] : this.pieces();
    if (parts.length === 1 && wholeBuffer(parts[0]!)) return parts[0]!;
    const out = Buffer.allocUnsafeSlow(this.bytes);
    let at = 0;
    for (const c of parts) {
      out.set(c, at);
      at += c.byteLength;
      this.freeCopied(c);
    }
    this.list = [];
    this.exact = undefined;
    return out;
  }
}

/** The OTLP/HTTP receiver's settings. */
export interface HttpReceiverOptions {
  listen: string;
  /** Largest body accepted, after decompression. */
  maxMessageBytes: number;
  bodyTimeoutMs: number;
  /** Origins allowed by CORS; empty turns CORS off. */
  corsAllowedOrigins: readonly string[];
  /** Host names answered on a loopback listener besides localhost and IP addresses (receiver.http.allowedHosts). */
  allowedHosts?: readonly string[];
  maxConnectionsPerClient: number;
  /** HTTPS with these certificates; plain when absent. */
  tls?: TlsCertificates | undefined;
  /** Who may send, and as which tenant; everyone as the default tenant when absent. */
  auth?: Authenticator;
}

/** The OTLP/HTTP server. */
export class HttpReceiver {
  private readonly http: HttpService;
  private closing = false;
  private readonly ingest: Ingest;
  private readonly logger: Logger;
  private readonly maxMessageBytes: number;
  private readonly bodyTimeoutMs: number;
  private readonly corsAllowed: ((origin: string) => boolean) | undefined;
  private readonly auth: Authenticator;
  /** Preflights refused for their origin: logged at most once a minute. */
  private readonly originLog = new RecurringLog();
  /** Connections Node's HTTP parser answered 400 (a malformed chunked body, say): a body cut by it is undecodable, not the client's leaving. */
  private readonly unparsable = new WeakSet<Socket>();

  constructor(options: HttpReceiverOptions, ingest: Ingest, logger: Logger) {
    this.ingest = ingest;
    this.auth = options.auth ?? OPEN;
    this.logger = logger;
    this.maxMessageBytes = options.maxMessageBytes;
    this.bodyTimeoutMs = options.bodyTimeoutMs;
    this.corsAllowed = options.corsAllowedOrigins.length > 0 ? originMatcher(options.corsAllowedOrigins) : undefined;
    const serverOptions = {
      // Our body timer answers 408 first; Node's own request timeout is the backstop for
      // anything that slips past it (headers that never finish, say).
      headersTimeout: Math.min(60_000, this.bodyTimeoutMs),
      requestTimeout: this.bodyTimeoutMs + 5_000,
      connectionsCheckingInterval: Math.min(30_000, Math.max(1_000, this.bodyTimeoutMs)),
    };
    this.http = new HttpService(
      {
        name: 'OTLP/HTTP receiver',
        listen: options.listen,
        shutdownGraceMs: RECEIVER_GRACE_MS,
        maxConnectionsPerClient: options.maxConnectionsPerClient,
        // Its exports are refused as surely as a 503 answer: counted as refused requests, one per connection.
        onClientOverLimit: (limit) => void this.ingest.refuse('http', 'connections_per_client', `closing connections of a client address over receiver.http.maxConnectionsPerClient (${limit})`),
        // The exports pipelined past the limit on the closed connection are refused unanswered: counted, one per connection.
        onOverPipelined: (limit) => void this.ingest.refuse('http', 'pipelined', `closing connections with more than ${limit} requests pipelined (in flight at once)`),
        server: serverOptions,
        tls: options.tls,
        onTargetTooLong: (req, res) => this.refuseLongTarget(req, res),
        hosts: { allowed: options.allowedHosts ?? [], option: 'receiver.http.allowedHosts' },
        onForeignHost: (req, res, message) => this.refuseForeignHost(req, res, message),
      },
      logger,
      (req, res) => this.onRequest(req, res, false),
      (server) => this.configure(server),
    );
  }

  get boundPort(): number {
    return this.http.boundPort;
  }

  private configure(server: Server): void {
    // Expect: 100-continue is answered only once the headers pass, so an oversized upload is refused before it is sent.
    // 'checkContinue' goes around HttpService's handler, so its pipelining count and target check are made here too.
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      if (!this.http.admitPipelined(req, res)) return;
      if (targetTooLong(req)) return this.refuseLongTarget(req, res);
      const foreign = this.http.foreignHost(req);
      if (foreign !== undefined) return this.refuseForeignHost(req, res, foreign);
      this.onRequest(req, res, true);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT';
      // Node times out a fresh connection that never sent a byte too (browsers and proxies open
      // spare ones ahead of use): no request began, so none was refused.
      if (timeout && (socket as Socket).bytesRead > 0) this.ingest.refuse('http', 'timeout');
      // A parse error (HPE_*), not the client leaving: the socket's own (ECONNRESET) or its end
      // mid-request (HPE_INVALID_EOF_STATE).
      else if (err.code?.startsWith('HPE_') && err.code !== 'HPE_INVALID_EOF_STATE') this.unparsable.add(socket as Socket);
      if (!socket.writable || socket.destroyed || err.code === 'ECONNRESET') return void socket.destroy();
      const line = timeout ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${line}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
  }

  start(): Promise<void> {
    this.closing = false;
    return this.http.start();
  }

  /** Stops accepting connections and waits for requests in flight to be answered (they are queued by then), for up to graceMs. */
  shutdown(graceMs?: number): Promise<void> {
    this.closing = true;
    return this.http.shutdown(graceMs);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    this.route(req, res, expectContinue).catch((err: Error) => {
      this.logger.error({ err: err.message, url: req.url }, 'OTLP/HTTP request failed unexpectedly');
      if (!res.headersSent) this.refuse(req, res, formatOf(req.headers['content-type']) ?? 'json', 'internal');
      else res.destroy();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> {
    const path = targetPath(req.url ?? '/');
    // One trailing slash is tolerated: some exporters join endpoint and path that way.
    const signal = ROUTES.get(path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path);
    const format = formatOf(req.headers['content-type']);
    // Errors before the content type is known are answered in JSON, the readable choice.
    const replyFormat = format ?? 'json';
    this.addCorsHeaders(req, res);
    if (!signal) return this.refuse(req, res, replyFormat, 'not_found', `no OTLP endpoint at ${path}; use /v1/traces or /v1/logs`);
    if (req.method === 'OPTIONS' && this.corsAllowed) return this.preflight(req, res);
    if (req.method !== 'POST') {
      res.setHeader('allow', this.corsAllowed ? 'POST, OPTIONS' : 'POST');
      return this.refuse(req, res, replyFormat, 'method_not_allowed', `method ${req.method ?? ''} not allowed on ${path}; use POST`);
    }
    // Before anything about the body is looked at: a client without a token learns nothing more.
    const who = this.auth.check(req.headers.authorization, 'ingest');
    if (who.kind === 'unauthenticated') {
      res.setHeader('www-authenticate', wwwAuthenticate(who));
      return this.refuse(req, res, replyFormat, 'unauthenticated');
    }
    if (who.kind === 'forbidden') return this.refuse(req, res, replyFormat, 'forbidden');
    if (!format) {
      const got = req.headers['content-type'] ?? '(none)';
      return this.refuse(req, res, 'json', 'unsupported_media_type', `unsupported Content-Type ${got}; use application/x-protobuf or application/json`);
    }
    const encoding = encodingOf(req.headers['content-encoding']);
    if (!encoding) return this.refuse(req, res, format, 'unsupported_encoding', `unsupported Content-Encoding ${req.headers['content-encoding'] ?? ''}; use gzip, deflate (zlib), zstd or identity`);
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    if (declared !== undefined && declared > this.maxMessageBytes) {
      return this.refuse(req, res, format, 'too_large', `request of ${declared} bytes is over the limit of ${this.maxMessageBytes} bytes`);
    }
    // Refused before the body is read: an overloaded collector should not also spend the bandwidth
    // and memory. Room in the queue budget is then taken as the body's bytes arrive, so headers
    // alone (a declared length that never comes) hold nothing and cannot starve other clients.
    const early = this.ingest.admissionRefusal();
    const reservation = early ? undefined : this.ingest.reserve(0);
    if (!reservation) return this.answer(req, res, signal, format, this.ingest.refuse('http', early ?? 'queue_full'));
    if (expectContinue) res.writeContinue();

    let body: Uint8Array;
    try {
      // An OTLP/JSON body takes its decoding's room as it arrives, so one that cannot have it is refused before it is all read.
      body = await readBody(req, { encoding, declared, limit: this.maxMessageBytes, timeoutMs: this.bodyTimeoutMs, reservation, charge: this.ingest.decodeCharge(format) });
    } catch (err) {
      reservation.release();
      if (err instanceof BodyError) return this.refuse(req, res, format, err.reason, err.message);
      if (err instanceof BodyAborted) {
        // The parser's 400 (clientError, which runs first) cut the body: the client is there and heard it.
        if (this.unparsable.has(req.socket)) this.ingest.refuse('http', 'undecodable', 'the request body is not valid HTTP (a malformed chunk)');
        else this.ingest.refuse('http', 'client_aborted');
        res.destroy();
        return;
      }
      throw err;
    }
    // The body buffer is ours alone (readBody sized it), so it moves to the worker without a copy.
    const outcome = await this.ingest.handle({ transport: 'http', signal, format, body, owned: true, reservation, tenant: who.tenant });
    // The connection closed while the rows were handled: the answer has no one to go to.
    if (res.destroyed) this.ingest.unanswered('http', outcome);
    this.answer(req, res, signal, format, outcome);
  }

  /** 414 as a google.rpc.Status in the request's content type, the connection closed after it. */
  private refuseLongTarget(req: IncomingMessage, res: ServerResponse): void {
    res.shouldKeepAlive = false;
    this.refuse(req, res, formatOf(req.headers['content-type']) ?? 'json', 'target_too_long', `request target longer than ${MAX_URL_BYTES} bytes`);
  }

  /** A request for another host than this machine's on a loopback listener (HttpService.foreignHost): its body is not read. */
  private refuseForeignHost(req: IncomingMessage, res: ServerResponse, message: string): void {
    res.shouldKeepAlive = false;
    this.refuse(req, res, formatOf(req.headers['content-type']) ?? 'json', 'foreign_host', message);
  }

  /** Counts a refusal and answers it. */
  private refuse(req: IncomingMessage, res: ServerResponse, format: OtlpFormat, reason: RefusalReason, message?: string): void {
    const out = this.ingest.refuse('http', reason, message);
    if (out.kind === 'refused') this.sendRefusal(req, res, format, out.reason, out.message);
  }

  private answer(req: IncomingMessage, res: ServerResponse, signal: Signal, format: OtlpFormat, out: IngestOutcome): void {
    if (out.kind === 'ok') {
      const body = format === 'json' ? JSON.stringify(exportResponse(signal, out.rejected, out.errorMessage)) : encodeExportResponse(signal, out.rejected, out.errorMessage);
      return this.send(req, res, 200, format, body);
    }
    this.sendRefusal(req, res, format, out.reason, out.message);
  }

  /** A refusal as its status code and a google.rpc.Status body; retryable ones with Retry-After and RetryInfo. */
  private sendRefusal(req: IncomingMessage, res: ServerResponse, format: OtlpFormat, reason: RefusalReason, message: string): void {
    const refusal = REFUSALS[reason];
    // 503, not 429, for overload: the collector is overloaded, not this client throttled; both are retried.
    const delayMs = refusal.retryable ? this.ingest.retryAfterMs(reason) : undefined;
    if (delayMs !== undefined) res.setHeader('retry-after', String(Math.max(1, Math.ceil(delayMs / 1000))));
    const body = format === 'json' ? JSON.stringify(statusObject(refusal.grpc, message, delayMs)) : encodeStatus(refusal.grpc, message, delayMs);
    this.send(req, res, refusal.http, format, body);
  }

  private addCorsHeaders(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (!this.corsAllowed || origin === undefined) return;
    res.setHeader('vary', 'Origin');
    if (!this.corsAllowed(origin)) return;
    res.setHeader('access-control-allow-origin', origin);
    // navigator.sendBeacon always sends with credentials (cookies): without this a beacon of an
    // application/json Blob (browser RUM scripts' way at page unload) failed its preflight and
    // was dropped by the browser, unseen here. The receiver reads no cookie, but a credentialed
    // request also carries the browser's TLS client certificate: under mtls an allowed origin
    // sends in its visitor's name (the README warns against '*' then; confighttp does the same).
    res.setHeader('access-control-allow-credentials', 'true');
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
    // A disallowed origin gets no CORS headers, which the browser treats as a refusal: the page's
    // export is never sent, so it is counted and logged here, or a misspelt origin went unseen.
    else if (origin !== undefined) {
      this.ingest.refuse('http', 'origin_not_allowed');
      this.originLog.log((refused) => this.logger.warn({ origin, refused }, `refusing CORS preflights from an origin not in receiver.http.corsAllowedOrigins: the browser does not send that page's exports`));
    }
    this.send(req, res, 204, undefined, undefined);
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, format: OtlpFormat | undefined, body: string | Uint8Array | undefined): void {
    if (res.headersSent) return;
    // A body we did not read (refused early) is not drained: the connection closes after the
    // answer, taking what the client still sends for a moment, so the answer reaches it.
    if (!req.complete && hasBody(req)) closeAfterUnreadBody(req, res);
    else if (this.closing) res.shouldKeepAlive = false;
    if (format !== undefined && body !== undefined) {
      res.setHeader('content-type', format === 'json' ? 'application/json' : 'application/x-protobuf');
      res.setHeader('content-length', typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
    }
    res.statusCode = status;
    res.end(body);
  }
}
