// The read API (16686): traces by id, trace search and log search, as OTLP/JSON.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getHeapStatistics } from 'node:v8';
import { HttpService, MAX_URL_BYTES, sendJson as send } from '../common/http.ts';
import { timeNs } from '../common/time.ts';
import { OPEN, type Authenticator } from '../security/auth.ts';
import type { TlsCertificates } from '../security/tls.ts';
import { wwwAuthenticate } from '../security/tokens.ts';
import type { LogQuery, StoreReader, TraceQuery } from '../storage/backend.ts';
import { RecurringLog, type Logger } from '../telemetry/logger.ts';
import type { Registry } from 'prom-client';
import { JaegerApi } from './jaeger-api.ts';
import { JaegerApiV3 } from './jaeger-api-v3.ts';
import { clientGone, readCapped, traceFound } from './cap.ts';
import { ReadMetrics, routedTarget } from './metrics.ts';
import { NO_BODY, sendJsonSliced } from './json-stream.ts';
import { renderSummaries, slicedResourceLogs, slicedResourceSpans } from './render-otlp.ts';
import { WebUi } from './ui/index.ts';

/** A request parameter that is not what the API accepts; answered with 400 naming it. */
export class BadParameter extends Error {
  override readonly name = 'BadParameter';
}

const HEX32 = /^[0-9a-fA-F]{32}$/;
const INT64_MAX = (1n << 63n) - 1n;
const DEFAULT_LIMIT = 20;
const MAX_DURATION_MS = INT64_MAX / 1_000_000n;
/** /v1/traces?status=: the OTLP status code a matching span has. */
const STATUS_CODES = new Map([['unset', 0], ['ok', 1], ['error', 2]]);

/** Nanoseconds from decimal unix nanoseconds or an RFC 3339 time. */
export function parseTime(name: string, v: string): bigint {
  const t = timeNs(v);
  if ('error' in t) throw new BadParameter(`${name}: ${t.error}, got '${v}'`);
  return t.ns;
}

function parseMs(name: string, v: string): bigint {
  const m = /^(\d{1,15})(?:\.(\d{1,100}))?$/.exec(v);
  if (!m) throw new BadParameter(`${name}: expected a non-negative number of milliseconds, got '${v}'`);
  // Exact decimal arithmetic: a double loses nanoseconds near the int64 edge.
  const frac = (m[2] ?? '').padEnd(7, '0');
  const ns = BigInt(m[1]!) * 1_000_000n + BigInt(frac.slice(0, 6)) + (frac[6]! >= '5' ? 1n : 0n);
  if (ns > INT64_MAX) throw new BadParameter(`${name}: over ${MAX_DURATION_MS} ms, the longest duration int64 nanoseconds can hold, got '${v}'`);
  return ns;
}

function parseIntParam(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new BadParameter(`${name}: expected an integer from ${min} to ${max}, got '${v}'`);
  return n;
}

function single(params: URLSearchParams, name: string): string | undefined {
  const all = params.getAll(name);
  if (all.length > 1) throw new BadParameter(`${name}: given more than once`);
  const v = all[0];
  if (v === '') throw new BadParameter(`${name}: empty`);
  return v;
}

function checkKnown(params: URLSearchParams, known: readonly string[]): void {
  for (const k of params.keys()) if (!known.includes(k)) throw new BadParameter(`${k}: unknown parameter (known: ${known.join(', ')})`);
}

/** Parses /v1/traces search parameters. */
export function parseTraceQuery(params: URLSearchParams, maxLimit: number): TraceQuery {
  checkKnown(params, ['service', 'name', 'start', 'end', 'minDurationMs', 'maxDurationMs', 'status', 'limit', 'attr']);
  const q: TraceQuery = { limit: Math.min(DEFAULT_LIMIT, maxLimit) };
  const service = single(params, 'service');
  const name = single(params, 'name');
  const start = single(params, 'start');
  const end = single(params, 'end');
  const minD = single(params, 'minDurationMs');
  const maxD = single(params, 'maxDurationMs');
  const limit = single(params, 'limit');
  const status = single(params, 'status');
  if (service !== undefined) q.service = service;
  if (name !== undefined) q.name = name;
  if (start !== undefined) q.startNano = parseTime('start', start);
  if (end !== undefined) q.endNano = parseTime('end', end);
  if (minD !== undefined) q.minDurationNano = parseMs('minDurationMs', minD);
  if (maxD !== undefined) q.maxDurationNano = parseMs('maxDurationMs', maxD);
  if (limit !== undefined) q.limit = parseIntParam('limit', limit, 1, maxLimit);
  if (status !== undefined) {
    const code = STATUS_CODES.get(status);
    if (code === undefined) throw new BadParameter(`status: expected error, ok or unset, got '${status}'`);
    q.statusCode = code;
  }
  const attrs = params.getAll('attr');
  if (attrs.length > 0) {
    q.attributes = attrs.map((a) => {
      const i = a.indexOf('=');
      if (i <= 0) throw new BadParameter(`attr: expected key=value, got '${a}'`);
      return { key: a.slice(0, i), value: a.slice(i + 1) };
    });
  }
  if (q.startNano !== undefined && q.endNano !== undefined && q.startNano > q.endNano) throw new BadParameter('start: after end');
  if (q.minDurationNano !== undefined && q.maxDurationNano !== undefined && q.minDurationNano > q.maxDurationNano) throw new BadParameter('minDurationMs: greater than maxDurationMs');
  return q;
}

/** Parses /v1/logs search parameters. */
export function parseLogQuery(params: URLSearchParams, maxLimit: number): LogQuery {
  checkKnown(params, ['traceId', 'service', 'start', 'end', 'minSeverity', 'limit']);
  const q: LogQuery = { limit: Math.min(DEFAULT_LIMIT, maxLimit) };
  const traceId = single(params, 'traceId');
  const service = single(params, 'service');
  const start = single(params, 'start');
  const end = single(params, 'end');
  const minSeverity = single(params, 'minSeverity');
  const limit = single(params, 'limit');
  if (traceId !== undefined) {
    if (!HEX32.test(traceId)) throw new BadParameter(`traceId: expected 32 hex characters, got '${traceId}'`);
    q.traceId = traceId.toLowerCase();
  }
  if (service !== undefined) q.service = service;
  if (start !== undefined) q.startNano = parseTime('start', start);
  if (end !== undefined) q.endNano = parseTime('end', end);
  if (minSeverity !== undefined) q.minSeverity = parseIntParam('minSeverity', minSeverity, 0, 24);
  if (limit !== undefined) q.limit = parseIntParam('limit', limit, 1, maxLimit);
  return q;
}

/** A read whose answer is held to the byte bound (QueryOptions.maxConcurrentReads), by its routed path. */
function isBoundedRead(path: string): boolean {
  return path.startsWith('/v1/traces/') || path === '/v1/logs' || path.startsWith('/api/traces') || path.startsWith('/api/v3/traces');
}

/** Runs at most `limit` answers at once, the others in arrival order. */
class ReadTurns {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly limit: number;
  /** Reads waiting their turn. */
  get waitingCount(): number {
    return this.waiting.length;
  }
  constructor(limit: number) {
    this.limit = limit;
  }

  async run(res: ServerResponse, answer: () => Promise<void>): Promise<void> {
    if (this.running >= this.limit) {
      // A client that leaves while it waits leaves the line: it neither holds a place nor takes a turn.
      const turn = await new Promise<boolean>((resolve) => {
        const take = (): void => {
          res.off('close', leave);
          resolve(true);
        };
        const leave = (): void => {
          const at = this.waiting.indexOf(take);
          if (at >= 0) this.waiting.splice(at, 1);
          resolve(false);
        };
        this.waiting.push(take);
        res.once('close', leave);
      });
      if (!turn) return;
    } else this.running++;
    try {
      // The client left as its turn came: nothing to answer.
      if (res.destroyed) return;
      await answer();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/** The read API's settings. */
export interface QueryOptions {
  listen: string;
  /** Host names besides localhost and IP addresses that a loopback listener answers (query.allowedHosts). */
  allowedHosts?: readonly string[];
  /** Largest `limit` a search accepts. */
  maxLimit: number;
  /** Most spans a trace read answers (query.maxSpansPerTrace). */
  maxSpansPerTrace: number;
  /** Most spans a Jaeger API /api/traces answer holds over all its traces (query.maxSpansPerSearch). */
  maxSpansPerSearch: number;
  /**
   * Answers held to the byte bound (a trace, a Jaeger search's traces, a log search) running at
   * once (query.maxConcurrentReads); the others wait their turn. Each may hold a sixteenth of the
   * heap in stored bytes and two to three times that as rows and JSON while it is answered: without
   * a limit, 8 readers opening a large trace at once (a dashboard's panels, a team on one
   * incident) ran a ClickHouse collector out of heap, ingest with it (SQLite's 2 read threads and
   * PostgreSQL's read pool held theirs to a few; the memory store answers one at a time). 4 by default.
   */
  maxConcurrentReads?: number;
  /**
   * Longest a client may take nothing of a large answer before its connection is closed and its
   * read turn goes to the next (WRITE_STALL_MS, 30 s, by default).
   */
  writeStallMs?: number;
  /** HTTPS with these certificates; plain when absent. */
  tls?: TlsCertificates | undefined;
  /** Who may read, and which tenant's data; everyone reads the default tenant when absent. */
  auth?: Authenticator;
  /** This process's V8 old generation (oldSpaceOfThreads): the byte bound of a log search and a trace read follows it. */
  oldSpaceBytes?: number;
}

/** The read API server. */
export class QueryServer {
  private readonly http: HttpService;
  private readonly store: StoreReader;
  private readonly logger: Logger;
  private readonly maxLimit: number;
  private readonly maxSpansPerTrace: number;
  /**
   * Stored bytes a log search, or a trace read, answers at most: a sixteenth of the V8 heap's old
   * generation (the records and spans become rows, then JSON, on the heap of the thread that reads
   * them and on the main thread's), so that a search at query.maxLimit of large records, or a trace
   * of a few hundred large spans, cannot run either out of memory. The web UI asks for a trace's
   * logs at query.maxLimit, and for the whole trace.
   */
  private readonly maxReadBytes: number;
  /** QueryOptions.writeStallMs. */
  private readonly writeStallMs: number | undefined;
  private readonly jaeger: JaegerApi;
  private readonly jaegerV3: JaegerApiV3;
  private readonly ui: WebUi;
  private readonly auth: Authenticator;
  /** Reads that may each hold maxReadBytes, QueryOptions.maxConcurrentReads at a time. */
  private readonly boundedReads: ReadTurns;
  /** Reads the store failed, logged at most once a minute (readFailed). */
  private readonly failedReads = new RecurringLog();

  /** With a registry, request durations go to tracehouse_query_request_duration_seconds. */
  constructor(options: QueryOptions, store: StoreReader, logger: Logger, registry?: Registry) {
    this.store = store;
    this.auth = options.auth ?? OPEN;
    this.logger = logger;
    this.maxLimit = options.maxLimit;
    this.maxSpansPerTrace = options.maxSpansPerTrace;
    this.writeStallMs = options.writeStallMs;
    this.boundedReads = new ReadTurns(options.maxConcurrentReads ?? 4);
    this.maxReadBytes = Math.floor((options.oldSpaceBytes ?? getHeapStatistics().heap_size_limit) / 16);
    this.jaeger = new JaegerApi(store, { ...options, maxReadBytes: this.maxReadBytes }, (err, url) => this.readFailed(err, url));
    this.jaegerV3 = new JaegerApiV3(store, { ...options, maxReadBytes: this.maxReadBytes }, (err, url) => this.readFailed(err, url));
    this.ui = new WebUi({ maxLimit: this.maxLimit });
    const readMetrics = registry ? new ReadMetrics(registry, () => this.boundedReads.waitingCount) : undefined;
    const hosts = { allowed: options.allowedHosts ?? [], option: 'query.allowedHosts' };
    // A request refused for the Host it names is timed as the read API's others are.
    const onForeignHost = (req: IncomingMessage, res: ServerResponse, message: string): void => {
      readMetrics?.track(req, res);
      send(res, 403, { error: message });
    };
    // And one refused for its target's length (a Jaeger compare of hundreds of trace ids): a 4xx
    // of its route, not a request the read API's metrics never saw.
    const onTargetTooLong = (req: IncomingMessage, res: ServerResponse): void => {
      readMetrics?.track(req, res);
      send(res, 414, { error: `request target longer than ${MAX_URL_BYTES} bytes` });
    };
    this.http = new HttpService({ name: 'read API', listen: options.listen, shutdownGraceMs: 2000, tls: options.tls, hosts, onForeignHost, onTargetTooLong }, logger, (req, res) => {
      readMetrics?.track(req, res);
      const gone = clientGone(res);
      this.route(req, res, gone).catch((err: Error) => {
        // The client is gone and its read was stopped on the store: no failure, nobody to answer.
        if (gone.aborted) return;
        // Failed while the answer was written (sendJsonSliced destroyed it): no second status.
        if (res.headersSent) return this.readFailed(err, req.url);
        if (err instanceof BadParameter) return send(res, 400, { error: err.message });
        // A read stopped by its time budget says so, and is the reader's to narrow: not logged
        // (as the Jaeger API does), or each refresh of a heavy search would be a log line.
        if (err.name === 'QueryTimeout') return send(res, 503, { error: err.message }, { 'retry-after': '1' });
        // Anything else is the store failing, and the exception text stays in the log: it can
        // carry SQL, paths or driver internals.
        this.readFailed(err, req.url);
        send(res, 503, { error: 'storage unavailable; retry later' }, { 'retry-after': '1' });
      });
    });
  }

  get boundPort(): number {
    return this.http.boundPort;
  }

  /**
   * Logs a read the store failed at most once a minute, with the count since the last line: a
   * store that is down fails every read, and each reader's refresh would be a line of its own
   * (the 503s are counted in tracehouse_query_request_duration_seconds).
   */
  private readFailed(err: Error, url: string | undefined): void {
    this.failedReads.log((failedReads) => this.logger.error({ err: err.message, url, failedReads }, 'read API request failed (logged at most once a minute; failedReads: reads failed since the last such line)'));
  }

  private async route(req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    let url: URL;
    try {
      url = new URL(routedTarget(req.url ?? '/'), 'http://localhost');
    } catch {
      // An absolute-form target that is no URL (`GET http://[bad/…`): the client's fault.
      throw new BadParameter(`request target ${JSON.stringify(req.url)} is not a valid URL`);
    }
    const path = url.pathname;
    // The UI's page shell and assets hold no data and stay open, so a browser can load them
    // before it has a token; every data call (/api/, /v1/) needs a read token.
    if (this.ui.owns(path)) return this.ui.handle(req, res, path);
    const who = this.auth.check(req.headers.authorization, 'read');
    if (who.kind === 'unauthenticated') return send(res, 401, { error: 'a valid bearer token is required (Authorization: Bearer <token>)' }, { 'www-authenticate': wwwAuthenticate(who) });
    if (who.kind === 'forbidden') return send(res, 403, { error: 'the bearer token does not have the read scope' });
    // After the token check: a request without one is answered 401 at once, not after the reads ahead of it.
    if (isBoundedRead(path)) return this.boundedReads.run(res, () => this.answer(req, res, url, who.tenant, signal));
    return this.answer(req, res, url, who.tenant, signal);
  }

  /** The answer to an authorized data request (route). */
  private async answer(req: IncomingMessage, res: ServerResponse, url: URL, tenant: string, signal: AbortSignal): Promise<void> {
    const path = url.pathname;
    if (path.startsWith('/api/v3/')) return this.jaegerV3.handle(req, res, url, tenant, signal);
    if (path.startsWith('/api/')) return this.jaeger.handle(req, res, url, tenant, signal);
    if (path !== '/v1/traces' && path !== '/v1/logs' && !path.startsWith('/v1/traces/')) return send(res, 404, { error: `no route ${path}` });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, { error: `method ${req.method} not allowed` });
    }
    if (path === '/v1/traces') return send(res, 200, renderSummaries(await this.store.searchTraces(tenant, parseTraceQuery(url.searchParams, this.maxLimit), signal)));
    if (path === '/v1/logs') {
      const logs = await this.store.searchLogs(tenant, { ...parseLogQuery(url.searchParams, this.maxLimit), maxBytes: this.maxReadBytes }, signal);
      // OTLP/JSON has no place for warnings: a sibling of resourceLogs, as a cut trace read's.
      const warnings = logs.cut ? [`log search cut: showing the ${logs.length} newest matching records, the most the read API answers in one search (${this.maxReadBytes} stored bytes); narrow the search (end, service, minSeverity) for older ones`] : undefined;
      return sendJsonSliced(res, 200, warnings === undefined ? { resourceLogs: slicedResourceLogs(logs, true) } : { resourceLogs: slicedResourceLogs(logs, true), warnings }, {}, '', this.writeStallMs);
    }
    const raw = path.slice('/v1/traces/'.length);
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      throw new BadParameter(`traceId: malformed escape in '${raw}'`);
    }
    if (!HEX32.test(id)) throw new BadParameter(`traceId: expected 32 hex characters, got '${id}'`);
    const traceId = id.toLowerCase();
    const notFound = (): void => send(res, 404, { error: `trace ${traceId} not found` });
    // HEAD: the status only, from one span; no answer is made to be thrown away.
    if (req.method === 'HEAD') return (await traceFound(this.store, tenant, traceId, signal)) ? sendJsonSliced(res, 200, NO_BODY) : notFound();
    const capped = await readCapped(this.store, tenant, traceId, this.maxSpansPerTrace, undefined, this.maxReadBytes, undefined, signal);
    if (capped.spans.length === 0) return notFound();
    // OTLP/JSON has no place for warnings: a sibling of resourceSpans, which OTLP readers ignore.
    return sendJsonSliced(res, 200, capped.warning === undefined ? { resourceSpans: slicedResourceSpans(capped.spans) } : { resourceSpans: slicedResourceSpans(capped.spans), warnings: [capped.warning] }, {}, '', this.writeStallMs);
  }

  start(): Promise<void> {
    return this.http.start();
  }

  /** Stops listening; reads in flight are answered for up to graceMs (2 s by default). */
  shutdown(graceMs?: number): Promise<void> {
    return this.http.shutdown(graceMs);
  }
}
