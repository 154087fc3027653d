// OTLP/gRPC receiver (4317): TraceService/Export and LogsService/Export, grpc.health.v1 (from
// grpc-health-check, following the collector's readiness) and server reflection (grpcurl list, describe and calls).
// Requests arrive as raw bytes (identity deserializer) and go to the decode workers untouched.
// Their bytes are charged to the queue as they arrive (ReceiveCharge); gzip, deflate and zstd
// messages are inflated here, charged as they inflate, and grpc-js enforces the size limit of the
// rest. A call naming another grpc-encoding is refused UNIMPLEMENTED at its headers.
import { randomBytes } from 'node:crypto';
import { gunzipSync, inflateSync } from 'node:zlib';
import { constants as http2Constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as HEALTH_PROTO_PATH, type ServingStatus } from 'grpc-health-check';
import { RECEIVER_GRACE_MS } from '../common/http.ts';
import { GRPC_CODE, REFUSALS, type RefusalReason } from '../common/refusals.ts';
import type { Signal } from '../model/signal.ts';
import type { Ingest, IngestOutcome } from '../pipeline/ingest.ts';
import type { Reservation } from '../pipeline/writer.ts';
import { OPEN, type Authenticator } from '../security/auth.ts';
import type { TlsCertificates } from '../security/tls.ts';
import { RecurringLog, type Logger } from '../telemetry/logger.ts';
import type { Readiness } from '../telemetry/ops.ts';
import { BodyError, inflateMessage } from './http.ts';
import { tuneGrpcSessions, type FlowControlWindows } from './http2-sessions.ts';
import { LOGS_SERVICE_PROTO, PROTO_DIR, TRACE_SERVICE_PROTO, encodeExportResponse, encodeRetryInfo, encodeStatus } from './otlp-messages.ts';
import { reflectionDefinition } from './reflection-descriptors.ts';

const identity = (b: Buffer): Buffer => b;

/** A client's header value as a refusal's message quotes it: its first 64 characters. */
const quotedHeader = (v: string): string => JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v);

/** A grpc-timeout grpc-js reads (its DEADLINE_REGEX): any other it answers INTERNAL itself. */
const GRPC_TIMEOUT = /(\d{1,8})\s*([HMSmun])/;

/** The grpc-encodings the receiver inflates itself (the Collector's otlp exporter sends zstd too; snappy is not here). */
type MessageEncoding = 'gzip' | 'deflate' | 'zstd';
const MESSAGE_ENCODINGS: ReadonlySet<string> = new Set<MessageEncoding>(['gzip', 'deflate', 'zstd']);
/** grpc-accept-encoding of an UNIMPLEMENTED answer to an encoding not served (gRPC's compression.md). */
const ACCEPT_ENCODING = 'identity,gzip,deflate,zstd';

/**
 * Metadata key through which admission hands the authenticated tenant to the Export handler; set
 * (overwriting anything a client sent under that name) on every admitted call.
 */
const TENANT_METADATA = 'x-tracehouse-tenant';

/**
 * Header (and so metadata) through which an Export stream's ReceiveCharge reaches its call: set on
 * every Export stream as it is created, overwriting anything a client sent under that name, to a
 * key that holds the receiver's random prefix, which no client sees.
 */
const STREAM_METADATA = 'x-tracehouse-stream';

/**
 * An Export call's request bytes as they arrive on its stream: counted from the first DATA
 * frame, and charged to the queue budget from its admission on (per byte what its rows will take,
 * Ingest.decodeCharge, as OTLP/HTTP bodies are), until the handler takes the room over for its
 * rows. grpc-js buffers each message whole before the handler runs: without the charge, what it
 * buffered was bounded only by receiver.grpc.maxReceivingCalls × receiver.maxMessageBytes.
 */
class ReceiveCharge {
  /** The stream's grpc-encoding when it is one the receiver inflates itself (not grpc-js: see watchStream). */
  encoding: MessageEncoding | undefined;
  /** The grpc-encoding the call names when it is none the receiver has (admission refuses it). */
  unsupportedEncoding: string | undefined;
  /** The call's grpc-timeout when grpc-js cannot read it (admission refuses it). */
  malformedTimeout: string | undefined;
  /** Its refusal was counted already (by admission or ingest), so watchStream must not count its answer again. */
  refusalCounted = false;
  /** Admission let it in (start). */
  admitted = false;
  /** The handler took the call over (its whole message arrived): what becomes of it is ingest's to count. */
  handedOver = false;
  /** Its stream, to tell whether the call was answered already (grpc-js's own answers pass no interceptor). */
  stream: ServerHttp2Stream | undefined;
  /** The message's 5-byte prefix (zeros until it arrives): compressed flag and length. */
  private readonly prefix = Buffer.alloc(5);
  private received = 0;
  private reservation: Reservation | undefined;
  /** Arriving bytes grow the reservation (between admission and the handler taking it over). */
  private growing = false;
  private onFull: (() => void) | undefined;
  private readonly perByte: number;
  private readonly maxMessageBytes: number;

  constructor(perByte: number, maxMessageBytes: number) {
    this.perByte = perByte;
    this.maxMessageBytes = maxMessageBytes;
  }

  /** A DATA frame's bytes arrived. */
  add(chunk: Buffer): void {
    if (this.received < 5) chunk.copy(this.prefix, this.received, 0, Math.min(chunk.byteLength, 5 - this.received));
    this.received += chunk.byteLength;
    if (this.growing && !this.reservation!.grow(Math.ceil(chunk.byteLength * this.perByte))) this.full();
  }

  /** Whether no byte of a message arrived. */
  get nothingReceived(): boolean {
    return this.received === 0;
  }

  /** Whether its message's compressed flag is set (the prefix's first byte). */
  private get compressed(): boolean {
    return this.prefix[0] === 1;
  }

  /**
   * Whether the message's prefix announces more than receiver.maxMessageBytes: grpc-js answers it
   * RESOURCE_EXHAUSTED itself, past any interceptor (watchStream counts it as too_large).
   */
  private get oversized(): boolean {
    return this.received >= 5 && this.prefix.readUInt32BE(1) > this.maxMessageBytes;
  }

  /** Whether the message arrived whole: its prefix and the bytes it announces. */
  get messageArrived(): boolean {
    return this.received >= 5 && this.received >= 5 + this.prefix.readUInt32BE(1);
  }

  /** How the message handed over is compressed, when it is. */
  get messageEncoding(): MessageEncoding | undefined {
    return this.compressed ? this.encoding : undefined;
  }

  /**
   * Whether the message's compressed flag is set on a call that names no encoding the receiver
   * inflates (none, or identity: any other grpc-js refuses itself). PROTOCOL-HTTP2.md: the flag
   * means compressed "using the mechanism declared by the Message-Encoding header"; grpc-js hands
   * such bytes over as they are.
   */
  get compressedWithoutEncoding(): boolean {
    return this.compressed && this.encoding === undefined;
  }

  /** Admitted with this room: what arrived so far and what arrives until stop() is charged to it; onFull when the queue has no room for it. */
  start(reservation: Reservation, onFull: () => void): void {
    this.admitted = true;
    this.reservation = reservation;
    this.onFull = onFull;
    this.growing = true;
    if (this.received > 0 && !reservation.grow(Math.ceil(this.received * this.perByte))) this.full();
  }

  /** The call is being refused: nothing more is charged (the room goes back at the stream's close). */
  stop(): void {
    this.growing = false;
  }

  /** The room taken so far, now the handler's to commit or release. */
  take(): Reservation | undefined {
    this.handedOver = true;
    return this.letGo();
  }

  release(): void {
    this.letGo()?.release();
  }

  private letGo(): Reservation | undefined {
    const r = this.reservation;
    this.reservation = undefined;
    this.growing = false;
    return r;
  }

  private full(): void {
    const onFull = this.onFull;
    this.release();
    this.onFull = undefined;
    // A message over the size limit is refused by grpc-js (RESOURCE_EXHAUSTED, the answer the
    // client gets): refusing it for queue room too would count it as queue_full.
    if (!this.oversized) onFull?.();
  }
}

const TRACE_SERVICE = 'opentelemetry.proto.collector.trace.v1.TraceService';
const LOGS_SERVICE = 'opentelemetry.proto.collector.logs.v1.LogsService';
/** Health is reported for the whole server ("") and for each service it serves; others are NOT_FOUND. */
const HEALTH_SERVICES = ['', TRACE_SERVICE, LOGS_SERVICE] as const;

/** Everything the server serves, in one package definition: the export services and what reflection describes. */
const PACKAGE = protoLoader.loadSync([TRACE_SERVICE_PROTO, LOGS_SERVICE_PROTO, HEALTH_PROTO_PATH], {
  includeDirs: [PROTO_DIR],
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: false,
});

/** The export service with bytes in and bytes out: decoding happens in the workers, encoding here is of our own reply bytes. */
function rawExportService(name: string): grpc.ServiceDefinition {
  const svc = PACKAGE[name] as grpc.ServiceDefinition | undefined;
  const exp = svc?.['Export'];
  if (!exp) throw new Error(`service ${name} not found in the OTLP protos`);
  return { Export: { ...exp, requestDeserialize: identity, responseSerialize: identity } };
}

/**
 * Request bytes a call other than an export (health, reflection) may send: theirs are a service
 * name or a symbol. grpc-js would otherwise buffer messages of up to receiver.maxMessageBytes for
 * them, from anyone, token or not, outside admission and the queue's budget.
 */
const SMALL_CALL_BYTES = 64 * 1024;

/** The grpc-encodings grpc-js inflates itself (those of calls other than an export), with a bounded inflater of each. */
const SMALL_CALL_INFLATERS: Readonly<Record<string, (b: Buffer, o: { maxOutputLength: number }) => Buffer>> = { gzip: gunzipSync, deflate: inflateSync };

/**
 * Resets a stream (ENHANCE_YOUR_CALM) once it has sent more than SMALL_CALL_BYTES, or messages
 * that inflate to more. grpc-js inflates a gzip or deflate message of these calls itself, up to
 * receiver.maxMessageBytes: 64 KiB of gzip inflate to 64 MiB, so the wire bytes alone bounded
 * nothing (twenty health checks of 58 KiB each took the collector from 0.25 to 1.7 GB). Each
 * message is inflated here as its last bytes arrive, at most what is left of SMALL_CALL_BYTES
 * after the call's earlier messages (a reflection stream may send many small ones): this
 * listener runs before grpc-js's, which skips the data of a stream closed by then.
 */
function capSmallCall(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  const encoding = headers['grpc-encoding'];
  const inflate = typeof encoding === 'string' ? SMALL_CALL_INFLATERS[encoding] : undefined;
  let bytes = 0;
  /** Bytes the call's messages inflated to so far: many small messages of a bomb each, together, are as large as one. */
  let inflated = 0;
  /** Bytes of the message not yet whole (compressed calls only). */
  let pending = Buffer.alloc(0);
  const reset = (): void => {
    if (!stream.destroyed) stream.close(http2Constants.NGHTTP2_ENHANCE_YOUR_CALM);
  };
  // Paused before the listener is added, as an Export stream's (watchStream).
  stream.pause();
  stream.on('data', (chunk: Buffer) => {
    bytes += chunk.byteLength;
    if (bytes > SMALL_CALL_BYTES) return reset();
    if (!inflate) return;
    pending = Buffer.concat([pending, chunk]);
    while (pending.byteLength >= 5 && pending.byteLength >= 5 + pending.readUInt32BE(1)) {
      const end = 5 + pending.readUInt32BE(1);
      if (pending[0] !== 1) inflated += end - 5;
      else {
        try {
          inflated += inflate(pending.subarray(5, end), { maxOutputLength: Math.max(1, SMALL_CALL_BYTES - inflated) }).byteLength;
        } catch (err) {
          // Over the bound; a message that is not gzip or deflate at all is grpc-js's to answer.
          if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return reset();
        }
      }
      if (inflated > SMALL_CALL_BYTES) return reset();
      pending = pending.subarray(end);
    }
  });
}

/** The gRPC receiver's settings. */
export interface GrpcReceiverOptions {
  listen: string;
  /** Largest request accepted, after decompression. */
  maxMessageBytes: number;
  maxConcurrentStreams: number;
  /** Export calls still receiving their message, over all connections. */
  maxReceivingCalls: number;
  /** Time an admitted Export call's message may take to arrive before DEADLINE_EXCEEDED frees its slot. */
  receiveTimeoutMs: number;
  maxConnectionIdleMs: number;
  /** 0: connections are never aged out. */
  maxConnectionAgeMs: number;
  keepaliveTimeMs: number;
  /** HTTP/2 receive windows of its connections (grpc-js alone keeps 64 KiB). */
  windows: FlowControlWindows;
  /** Where health status comes from; polled every readinessPollMs while serving. */
  readiness?: Readiness;
  readinessPollMs?: number;
  /** TLS (or mTLS) with these certificates; plain when absent. */
  tls?: TlsCertificates | undefined;
  /** Who may send, and as which tenant; everyone as the default tenant when absent. */
  auth?: Authenticator;
}

/** grpc-js's words for a call's header it leaves out of the metadata (a name gRPC does not allow, such as `x!y`). */
const REFUSED_METADATA = /^Failed to add metadata entry ([^:]*):/;

/**
 * grpc-js's own log lines into the collector's log. Left to grpc-js they went to stderr as plain
 * text ('E …'), outside the JSON log, and one of them came per call from any client, before its
 * token was checked: a header whose name gRPC does not allow was written out with its value (a
 * secret, as like as not), a line for each call that carried it. That one is said at most once a
 * minute with its count and the header's name alone; the rest (a port that could not be bound, a
 * certificate refused) as they come.
 */
function routeGrpcLogs(logger: Logger): void {
  const refusedMetadata = new RecurringLog();
  const say = (level: 'warn' | 'info') => (...args: unknown[]): void => {
    const message = args.map(String).join(' ');
    const refused = REFUSED_METADATA.exec(message);
    if (refused) {
      const header = refused[1]!.slice(0, 64);
      refusedMetadata.log((calls) => logger.warn({ header, calls }, 'gRPC calls carried a header that is no valid gRPC metadata name; the header was left out'));
      return;
    }
    logger[level]({ component: 'grpc-js' }, message);
  };
  // grpc-js writes info and debug lines only when GRPC_VERBOSITY asks for them: shown at log.level info.
  grpc.setLogger({ error: say('warn'), info: say('info'), debug: say('info') });
}

/** The OTLP/gRPC server. */
export class GrpcReceiver {
  private server: grpc.Server | undefined;
  private health: HealthImplementation | undefined;
  /** The status health last reported (setHealth). */
  private healthStatus: ServingStatus | undefined;
  private poll: NodeJS.Timeout | undefined;
  private stopTuning: (() => void) | undefined;
  /** Open Watch streams: ended at shutdown, or the graceful close would wait for them. */
  private readonly watchers = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  /** Export calls admitted whose message has not been handed over yet (grpc-js buffers each whole). */
  private receiving = 0;
  /** The open Export streams' charges, by their STREAM_METADATA key. */
  private readonly charges = new Map<string, ReceiveCharge>();
  private readonly streamKeyPrefix = randomBytes(12).toString('base64url') + '-';
  private streamSeq = 0;
  private readonly opts: GrpcReceiverOptions;
  private readonly ingest: Ingest;
  private readonly logger: Logger;
  boundPort = 0;

  constructor(options: GrpcReceiverOptions, ingest: Ingest, logger: Logger) {
    this.opts = options;
    this.ingest = ingest;
    this.logger = logger;
    routeGrpcLogs(logger);
  }

  private exportHandler(signal: Signal): grpc.handleUnaryCall<Buffer, Buffer> {
    return (call, callback) => {
      const tenant = call.metadata.get(TENANT_METADATA)[0];
      // Admission sets it on every Export call; without it, refuse rather than guess a tenant.
      if (typeof tenant !== 'string') return callback({ code: grpc.status.INTERNAL, details: REFUSALS.internal.message });
      const charge = this.chargeOf(call.metadata);
      if (charge?.compressedWithoutEncoding) {
        charge.release();
        charge.refusalCounted = true;
        return callback(this.refused('undecodable', 'the message has its compressed flag set, but the call names no grpc-encoding (or identity)'));
      }
      const encoding = charge?.messageEncoding;
      // The room its bytes took as they arrived becomes its rows' (handle grows it to their charge).
      const reservation = charge?.take();
      this.export(signal, tenant, call.request, encoding, reservation).then(
        (out) => {
          // grpc-js marks the call once its stream closed: the deadline's answer went out, or the client left.
          if (call.cancelled) this.ingest.unanswered('grpc', out);
          if (out.kind === 'ok') return callback(null, Buffer.from(encodeExportResponse(signal, out.rejected, out.errorMessage)));
          if (charge) charge.refusalCounted = true;
          return callback(this.refusalStatus(out.reason, out.message));
        },
        (err: Error) => {
          this.logger.error({ err: err.message, signal }, 'grpc export failed unexpectedly');
          // Counted as OTLP/HTTP counts its own (internal): the handler had the call, so the
          // stream's close counts nothing, and it went uncounted.
          if (charge) charge.refusalCounted = true;
          callback(this.refused('internal'));
        },
      );
    };
  }

  /**
   * One Export message to the pipeline: inflated first when it came compressed with an encoding
   * the receiver inflates itself, its output charged to the queue as it comes. A message that
   * inflates past the size limit is refused too_large here, as the handler's other refusals are,
   * so it is counted even when the client's deadline passed while it inflated (watchStream, which
   * counts grpc-js's own RESOURCE_EXHAUSTED, has returned by then: the message was handed over).
   */
  private async export(signal: Signal, tenant: string, message: Buffer, encoding: MessageEncoding | undefined, reservation: Reservation | undefined): Promise<IngestOutcome> {
    let body: Uint8Array = message;
    if (encoding !== undefined) {
      const room = reservation ?? this.ingest.reserve(0);
      if (room === undefined) return this.ingest.refuse('grpc', 'queue_full');
      reservation = room;
      try {
        body = await inflateMessage(message, encoding, { limit: this.opts.maxMessageBytes, reservation: room, charge: this.ingest.decodeCharge('protobuf') });
      } catch (err) {
        room.release();
        if (!(err instanceof BodyError)) throw err;
        return this.ingest.refuse('grpc', err.reason, err.message);
      }
    }
    // grpc-js hands over a message it no longer reads: one assembled from several frames has an
    // ArrayBuffer of its own and moves to the worker without a copy (pool.decode copies anything
    // else), as does one inflated here.
    return this.ingest.handle({ transport: 'grpc', signal, format: 'protobuf', body, owned: true, tenant, ...(reservation ? { reservation } : {}) });
  }

  private chargeOf(metadata: grpc.Metadata): ReceiveCharge | undefined {
    const key = metadata.get(STREAM_METADATA)[0];
    return typeof key === 'string' ? this.charges.get(key) : undefined;
  }

  /**
   * Sees each stream of the server before grpc-js does. An Export stream gets a ReceiveCharge that
   * counts its DATA frames as they arrive (read alongside grpc-js, which pauses and resumes the
   * stream as it reads) and is let go when the stream closes. A RESOURCE_EXHAUSTED it closes with
   * is grpc-js's size limit (nothing of ours answers with it), which grpc-js sends itself, past
   * any interceptor: it is counted here.
   */
  private watchStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    delete headers[STREAM_METADATA];
    if (!headers[':path']?.endsWith('/Export')) return capSmallCall(stream, headers);
    const key = this.streamKeyPrefix + ++this.streamSeq;
    const charge = new ReceiveCharge(this.ingest.decodeCharge('protobuf'), this.opts.maxMessageBytes);
    // gzip, deflate and zstd are inflated by the handler, charged as they inflate: grpc-js would
    // inflate a message whole before anything could charge it (and has no zstd). Without its
    // grpc-encoding, grpc-js hands the compressed bytes over as they are. Any other is refused by
    // admission, counted, with grpc-accept-encoding (grpc-js would answer it uncounted, without).
    const encoding = headers['grpc-encoding'];
    if (typeof encoding === 'string' && encoding !== 'identity') {
      if (MESSAGE_ENCODINGS.has(encoding)) charge.encoding = encoding as MessageEncoding;
      else charge.unsupportedEncoding = encoding;
      delete headers['grpc-encoding'];
    }
    // grpc-js answers a grpc-timeout it cannot read INTERNAL itself, past any interceptor, and
    // nothing counted it: admission refuses it instead, counted, as a malformed request.
    const timeout = headers['grpc-timeout'];
    if (typeof timeout === 'string' && !GRPC_TIMEOUT.test(timeout)) {
      charge.malformedTimeout = timeout;
      delete headers['grpc-timeout'];
    }
    headers[STREAM_METADATA] = key;
    charge.stream = stream;
    this.charges.set(key, charge);
    // Paused before the listener is added, so adding it does not start the flow before grpc-js's is there.
    stream.pause();
    stream.on('data', (chunk: Buffer) => charge.add(chunk));
    stream.once('close', () => {
      this.charges.delete(key);
      charge.release();
      // A stream closed before any answer has sent no headers (Node's types say otherwise).
      const sent = stream.sentTrailers ?? (stream.sentHeaders as typeof stream.sentHeaders | undefined);
      const status = sent?.['grpc-status'];
      if (charge.refusalCounted) return;
      if (Number(status) === GRPC_CODE.RESOURCE_EXHAUSTED) return void this.ingest.refuse('grpc', 'too_large');
      // An admitted call whose message never became the handler's is refused as an OTLP/HTTP
      // body that never all arrives is: grpc-js's DEADLINE_EXCEEDED when the client's
      // grpc-timeout passed first (answered past any interceptor); cut short when the client
      // cancelled the call or its connection dropped mid-message. Once the handler has the
      // message, ingest counts what becomes of it.
      if (!charge.admitted || charge.handedOver) return;
      if (Number(status) === GRPC_CODE.DEADLINE_EXCEEDED) this.ingest.refuse('grpc', 'timeout', 'the client\'s deadline (grpc-timeout) passed before its message arrived');
      else if (!charge.messageArrived) this.ingest.refuse('grpc', 'client_aborted');
    });
  }

  /**
   * Admission before a call's message is buffered: grpc-js reads each message whole before the
   * handler runs, so an overloaded collector, or one already receiving maxReceivingCalls
   * messages, refuses at the headers, and the bytes are never read. The bearer token is checked
   * here too, so an unauthenticated client cannot make the server buffer a message either. An
   * admitted call's bytes are charged to the queue as they arrive (ReceiveCharge); one the queue
   * has no room for is refused as they arrive, and its stream reset.
   */
  private admission(): grpc.ServerInterceptor {
    const auth = this.opts.auth ?? OPEN;
    return (method, call) => {
      if (!method.path.endsWith('/Export')) return new grpc.ServerInterceptingCall(call);
      let holding = false;
      /** Request messages grpc-js handed over (an Export call is unary: one). */
      let messages = 0;
      let charge: ReceiveCharge | undefined;
      let receiveTimer: NodeJS.Timeout | undefined;
      const letGo = (): void => {
        if (holding) this.receiving--;
        holding = false;
        clearTimeout(receiveTimer);
      };
      /**
       * The call was answered (by admission, the handler or grpc-js itself): a later refusal would
       * count it twice. A stream already closed (the client cancelled or left) is the stream's
       * close's to count.
       */
      let answered = false;
      const refuse = (reason: RefusalReason, message?: string, metadata?: grpc.Metadata): void => {
        const stream = charge?.stream;
        if (answered || stream?.headersSent || stream?.closed || stream?.destroyed) return;
        answered = true;
        // Counted here: the stream's close must not count its answer again.
        if (charge) charge.refusalCounted = true;
        const status = this.refused(reason, message);
        if (metadata) status.metadata = metadata;
        call.sendStatus(status);
      };
      const listener = new grpc.ServerListenerBuilder()
        .withOnReceiveMetadata((metadata, next) => {
          const header = metadata.get('authorization')[0];
          const who = auth.check(typeof header === 'string' ? header : undefined, 'ingest');
          if (who.kind !== 'allowed') return refuse(who.kind === 'forbidden' ? 'forbidden' : 'unauthenticated');
          metadata.set(TENANT_METADATA, who.tenant);
          const unsupported = this.chargeOf(metadata)?.unsupportedEncoding;
          if (unsupported !== undefined) {
            // grpc-go answers so at the headers, whatever the messages' compressed flag.
            const answer = new grpc.Metadata();
            answer.set('grpc-accept-encoding', ACCEPT_ENCODING);
            return refuse('unsupported_encoding', `grpc-encoding ${quotedHeader(unsupported)} is not supported; use ${ACCEPT_ENCODING}`, answer);
          }
          const timeout = this.chargeOf(metadata)?.malformedTimeout;
          if (timeout !== undefined) return refuse('undecodable', `grpc-timeout ${quotedHeader(timeout)} is malformed: up to 8 digits and a unit, H, M, S, m, u or n`);
          const reason = this.ingest.admissionRefusal() ?? (this.receiving >= this.opts.maxReceivingCalls ? 'receivers_busy' : undefined);
          if (reason !== undefined) return refuse(reason);
          // A stream the watcher did not see (its session closing as it came) is charged only
          // when its message is handed over, as before the watcher.
          charge = this.chargeOf(metadata);
          const reservation = charge === undefined ? undefined : this.ingest.reserve(0);
          if (charge !== undefined && reservation === undefined) return refuse('queue_full');
          holding = true;
          this.receiving++;
          // A message that stops arriving would hold its slot (and its room in the queue) for as
          // long as the client keeps the connection open: every other exporter would hear
          // UNAVAILABLE. DEADLINE_EXCEEDED frees it; OTLP clients retry it.
          receiveTimer = setTimeout(() => {
            letGo();
            charge?.stop();
            refuse('timeout');
          }, this.opts.receiveTimeoutMs).unref();
          charge?.start(reservation!, () => {
            letGo();
            refuse('queue_full');
          });
          if (holding) next(metadata);
        })
        .withOnReceiveMessage((message, next) => {
          // Whole, but still charged for what follows: grpc-js reads on after a unary call's
          // message and buffers a second one whole before it is refused, so bytes after it were
          // held outside the queue budget. The slot and the receive timer stay
          // until the half-close, when grpc-js runs the handler (and it takes the room over): a
          // stream left open after its message would otherwise hold the message's room in the
          // queue for as long as the client likes.
          // A second message is refused here, counted: grpc-js answered it UNIMPLEMENTED itself
          // ("Received a second request message"), past any count, so a client sending them was
          // refused without a trace in tracehouse_receiver_refused_requests_total.
          if (++messages > 1) {
            letGo();
            return refuse('undecodable', 'an Export call is unary: a second request message followed the first');
          }
          next(message);
        })
        .withOnReceiveHalfClose((next) => {
          letGo();
          // Ended before any of a message arrived: grpc-js answered UNIMPLEMENTED ("Received no
          // request message") itself, and the stream's close counted the call as client_aborted,
          // though the client was there to hear the answer. (One ended mid-message still is:
          // Node's clients cancel a call, grpc-js's cancel() and deadline alike, by ending it and
          // then resetting it, so a half-close after part of a message is most often a cancel.)
          if (messages === 0 && charge?.nothingReceived) return refuse('undecodable', 'the call ended without a request message');
          next();
        })
        .withOnCancel(letGo)
        .build();
      const responder = new grpc.ResponderBuilder()
        .withStart((next) => next(listener))
        .withSendStatus((status, next) => {
          answered = true;
          letGo();
          next(status);
        })
        .build();
      return new grpc.ServerInterceptingCall(call, responder);
    };
  }

  /** Counts a refusal (Ingest.refuse) and answers it as a gRPC status (refusalStatus). */
  private refused(reason: RefusalReason, message: string = REFUSALS[reason].message): { code: grpc.status; details: string; metadata?: grpc.Metadata } {
    this.ingest.refuse('grpc', reason, message);
    return this.refusalStatus(reason, message);
  }

  /**
   * A refusal as a gRPC status; retryable ones carry a google.rpc.RetryInfo detail, which OTLP
   * exporters honour (Go's, the Collector's), and the same RetryInfo as the trailer
   * google.rpc.retryinfo-bin, the one place the Python SDK's exporter reads a delay from (without
   * it, its own backoff of 1, 2, 4 s).
   */
  private refusalStatus(reason: RefusalReason, message: string): { code: grpc.status; details: string; metadata?: grpc.Metadata } {
    const refusal = REFUSALS[reason];
    if (!refusal.retryable) return { code: refusal.grpc, details: message };
    const delayMs = this.ingest.retryAfterMs(reason);
    const metadata = new grpc.Metadata();
    metadata.set('grpc-status-details-bin', Buffer.from(encodeStatus(refusal.grpc, message, delayMs)));
    metadata.set('google.rpc.retryinfo-bin', Buffer.from(encodeRetryInfo(delayMs)));
    return { code: refusal.grpc, details: message, metadata };
  }

  private setHealth(status: ServingStatus): void {
    // grpc-health-check sends each Watch stream every status set, changed or not: set on each
    // readiness poll, watchers heard SERVING every second. grpc.health.v1 sends one "whenever the
    // service's serving status changes".
    if (status === this.healthStatus) return;
    this.healthStatus = status;
    for (const name of HEALTH_SERVICES) this.health?.setStatus(name, status);
  }

  /** Follows the collector's readiness: SERVING when ready, NOT_SERVING otherwise (Watch streams see each change). */
  async refreshHealth(): Promise<void> {
    const readiness = this.opts.readiness;
    if (!readiness) return;
    const reason = await readiness.notReadyReason().catch((err: unknown) => String(err));
    if (this.server) this.setHealth(reason === null ? 'SERVING' : 'NOT_SERVING');
  }

  async start(): Promise<void> {
    if (this.server) return;
    const o = this.opts;
    const server = new grpc.Server({
      'grpc.max_receive_message_length': o.maxMessageBytes,
      'grpc.max_send_message_length': 4 * 1024 * 1024,
      'grpc.max_concurrent_streams': o.maxConcurrentStreams,
      'grpc.max_connection_idle_ms': o.maxConnectionIdleMs,
      ...(o.maxConnectionAgeMs > 0 ? { 'grpc.max_connection_age_ms': o.maxConnectionAgeMs, 'grpc.max_connection_age_grace_ms': 30_000 } : {}),
      'grpc.keepalive_time_ms': o.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': 20_000,
      interceptors: [this.admission()],
    });
    server.addService(rawExportService(TRACE_SERVICE), { Export: this.exportHandler('traces') });
    server.addService(rawExportService(LOGS_SERVICE), { Export: this.exportHandler('logs') });
    const health = new HealthImplementation();
    health.addToServer({
      addService: (service, impl) => {
        const watch = impl['watch'] as grpc.handleServerStreamingCall<unknown, unknown>;
        server.addService(service, {
          ...impl,
          watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
            this.watchers.add(call);
            call.on('cancelled', () => this.watchers.delete(call));
            // grpc-health-check keeps a map entry per service name ever watched (emptied, never
            // removed, at the cancel): a client watching names of its choosing grew the heap for
            // good. A service not served never changes status, so its watch hears SERVICE_UNKNOWN
            // once and stays open (grpc.health.v1), without an entry.
            const service = (call.request as { service?: unknown } | undefined)?.service;
            if (!(HEALTH_SERVICES as readonly unknown[]).includes(service ?? '')) return void call.write({ status: 'SERVICE_UNKNOWN' });
            watch(call);
          },
        });
      },
    });
    new ReflectionService(reflectionDefinition(PACKAGE)).addToServer(server);
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.opts.listen, this.opts.tls?.grpcCredentials() ?? grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
    this.stopTuning = tuneGrpcSessions(() => this.boundPort, o.windows, (stream, headers) => this.watchStream(stream, headers));
    this.health = health;
    this.healthStatus = undefined;
    // Serving until the first readiness answer says otherwise; without a readiness source, always.
    this.setHealth('SERVING');
    if (this.opts.readiness) {
      this.poll = setInterval(() => void this.refreshHealth(), this.opts.readinessPollMs ?? 1000);
      this.poll.unref();
    }
    const tls = this.opts.tls;
    this.logger.info({ listen: this.opts.listen, tls: tls ? (tls.mutual ? 'mtls' : 'tls') : 'off', port: this.boundPort }, 'OTLP/gRPC receiver listening');
  }

  /** Stops accepting calls and waits for in-flight ones to finish, for up to graceMs. */
  async shutdown(graceMs = RECEIVER_GRACE_MS): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    clearInterval(this.poll);
    this.stopTuning?.();
    // Watchers hear NOT_SERVING before their streams end, so clients move on at once.
    this.setHealth('NOT_SERVING');
    this.health = undefined;
    for (const w of this.watchers) w.end();
    this.watchers.clear();
    await new Promise<void>((resolve) => {
      // After the grace, stop waiting too: forceShutdown destroys the sessions, but one closed
      // gracefully first only ends its socket (Node's finishSessionClose), and tryShutdown's
      // callback waits for a peer that may never close its side (a frozen or vanished client).
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
