// The read API (16686): traces by id, trace search and log search, as OTLP/JSON.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeHttp, listenHttp, sendJson as send } from '../common/http.ts';
import type { Config } from '../config/index.ts';
import type { LogQuery, StorageBackend, TraceQuery } from '../storage/backend.ts';
import type { Logger } from '../telemetry/logger.ts';
import { JaegerApi } from './jaeger-api.ts';
import { renderLogs, renderSummaries, renderTraces } from './otlp-json.ts';
import { WebUi } from './ui/index.ts';

/** A request parameter that is not what the API accepts; answered with 400 naming it. */
export class BadParameter extends Error {
  override readonly name = 'BadParameter';
}

const HEX32 = /^[0-9a-fA-F]{32}$/;
const INT64_MAX = (1n << 63n) - 1n;
const DEFAULT_LIMIT = 20;

/** Nanoseconds from decimal unix nanoseconds or an ISO 8601 / RFC 3339 date. */
export function parseTime(name: string, v: string): bigint {
  if (/^\d{1,20}$/.test(v)) {
    const ns = BigInt(v);
    if (ns > INT64_MAX) throw new BadParameter(`${name}: beyond the latest storable time (int64 nanoseconds), got '${v}'`);
    return ns;
  }
  const ms = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(ms)) throw new BadParameter(`${name}: expected unix nanoseconds or an RFC 3339 time, got '${v}'`);
  return BigInt(ms) * 1_000_000n;
}

function parseMs(name: string, v: string): bigint {
  const ms = Number(v);
  if (!/^\d{1,15}(\.\d+)?$/.test(v) || !Number.isFinite(ms)) throw new BadParameter(`${name}: expected a non-negative number of milliseconds, got '${v}'`);
  return BigInt(Math.round(ms * 1_000_000));
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
  checkKnown(params, ['service', 'name', 'start', 'end', 'minDurationMs', 'maxDurationMs', 'limit', 'attr']);
  const q: TraceQuery = { limit: DEFAULT_LIMIT };
  const service = single(params, 'service');
  const name = single(params, 'name');
  const start = single(params, 'start');
  const end = single(params, 'end');
  const minD = single(params, 'minDurationMs');
  const maxD = single(params, 'maxDurationMs');
  const limit = single(params, 'limit');
  if (service !== undefined) q.service = service;
  if (name !== undefined) q.name = name;
  if (start !== undefined) q.startNano = parseTime('start', start);
  if (end !== undefined) q.endNano = parseTime('end', end);
  if (minD !== undefined) q.minDurationNano = parseMs('minDurationMs', minD);
  if (maxD !== undefined) q.maxDurationNano = parseMs('maxDurationMs', maxD);
  if (limit !== undefined) q.limit = parseIntParam('limit', limit, 1, maxLimit);
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
  const q: LogQuery = { limit: DEFAULT_LIMIT };
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

/** The read API server. */
export class QueryServer {
  private server: Server | undefined;
  private readonly backend: StorageBackend;
  private readonly logger: Logger;
  private readonly listen: string;
  private readonly maxLimit: number;
  private readonly jaeger: JaegerApi;
  private readonly ui: WebUi;
  boundPort = 0;

  constructor(config: Config, backend: StorageBackend, logger: Logger) {
    this.backend = backend;
    this.logger = logger;
    this.listen = config['query.listen'];
    this.maxLimit = config['query.maxLimit'];
    this.jaeger = new JaegerApi(backend, this.maxLimit);
    this.ui = new WebUi({ maxLimit: this.maxLimit });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (path.startsWith('/api/')) return this.jaeger.handle(req, res, url);
    if (this.ui.owns(path)) return this.ui.handle(req, res, path);
    if (path !== '/v1/traces' && path !== '/v1/logs' && !path.startsWith('/v1/traces/')) return send(res, 404, { error: `no route ${path}` });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, { error: `method ${req.method} not allowed` });
    }
    if (path === '/v1/traces') return send(res, 200, renderSummaries(await this.backend.searchTraces(parseTraceQuery(url.searchParams, this.maxLimit))));
    if (path === '/v1/logs') return send(res, 200, renderLogs(await this.backend.searchLogs(parseLogQuery(url.searchParams, this.maxLimit))));
    const raw = path.slice('/v1/traces/'.length);
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      throw new BadParameter(`traceId: malformed escape in '${raw}'`);
    }
    if (!HEX32.test(id)) throw new BadParameter(`traceId: expected 32 hex characters, got '${id}'`);
    const spans = await this.backend.getTrace(id.toLowerCase());
    if (spans.length === 0) return send(res, 404, { error: `trace ${id.toLowerCase()} not found` });
    return send(res, 200, renderTraces(spans));
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => {
      this.route(req, res).catch((err: Error) => {
        if (err instanceof BadParameter) return send(res, 400, { error: err.message });
        this.logger.error({ err: err.message, url: req.url }, 'read API request failed');
        // A read stopped by its time budget says so; anything else is the store failing.
        send(res, 503, { error: err.name === 'QueryTimeout' ? err.message : 'storage unavailable: ' + err.message });
      });
    });
    this.boundPort = await listenHttp(server, this.listen);
    this.server = server;
    this.logger.info({ listen: this.listen, port: this.boundPort }, 'read API listening');
  }

  async shutdown(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await closeHttp(server);
  }
}
