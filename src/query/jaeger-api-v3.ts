// Jaeger's api_v3 HTTP endpoints (/api/v3/…, the HTTP gateway of the QueryService in Jaeger's
// api_v3/query_service.proto) on the read port: what Jaeger v2's UI and Grafana's Jaeger data
// source with jaegerEnableGrpcEndpoint call. Traces answer as OTLP/JSON under `result`; times are
// RFC 3339 and durations Go duration strings; errors are {"error": {"httpCode", "message"}}, a bad
// parameter 400 naming it; /api/v3/trace-summaries lists what a search finds, as the Jaeger UI (2.15
// and later) searches. Parameters are read under their proto3 JSON names (query.serviceName)
// and under the snake_case names older clients send (query.service_name), as Jaeger reads both.
// Unknown parameters are ignored, as Jaeger ignores them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { timeNs } from '../common/time.ts';
import type { Operation, StoreReader, TraceQuery, TraceSummary } from '../storage/backend.ts';
import { readBounded, traceFound, type SearchBounds } from './cap.ts';
import { JaegerParamError, clampLimit, jaegerSearch, parseGoDuration, parseTraceIdPath, searchJaeger, type JaegerSearch } from './jaeger-api.ts';
import { JAEGER_SPAN_KINDS, spanKindNumber } from './jaeger.ts';
import { JsonArray, NO_BODY, sendJsonSliced } from './json-stream.ts';
import { slicedResourceSpans } from './render-otlp.ts';

/** A parameter api_v3 does not accept; answered 400 naming it. */
export class V3ParamError extends Error {
  override readonly name = 'V3ParamError';
}

/** Jaeger's api_v3 default search depth (traces a search answers). */
const DEFAULT_SEARCH_DEPTH = 100;
const MAX_ATTRIBUTES = 50;
/** Go's strconv.ParseBool, which Jaeger reads raw_traces with. */
const GO_BOOLS = new Map([...['1', 't', 'T', 'true', 'TRUE', 'True'].map((v) => [v, true] as const), ...['0', 'f', 'F', 'false', 'FALSE', 'False'].map((v) => [v, false] as const)]);

/** {"error": {"httpCode", "message"}}: api_v3's error answer (GRPCGatewayError). */
export function v3Error(httpCode: number, message: string): { error: { httpCode: number; message: string } } {
  return { error: { httpCode, message } };
}

/** A parameter's value and the name it was given under (proto3 JSON name first, then the older one); absent when empty, as Jaeger reads it. */
function param(params: URLSearchParams, ...names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const all = params.getAll(name);
    if (all.length > 1) throw new V3ParamError(`malformed parameter ${name}: given more than once`);
    if (all[0] !== undefined && all[0] !== '') return { name, value: all[0] };
  }
  return undefined;
}

/** Nanoseconds of an RFC 3339 time, as Jaeger reads its Timestamps. */
function parseTime(p: { name: string; value: string }): bigint {
  // Grafana appends its times to the query unencoded, so a "+01:00" offset arrives as " 01:00".
  const v = p.value.replace(/ (\d{2}:\d{2})$/, '+$1');
  const t = /^\d+$/.test(v) ? { error: 'expected an RFC 3339 time like 2026-01-31T12:00:00Z' } : timeNs(v);
  if ('error' in t) throw new V3ParamError(`malformed parameter ${p.name}: ${t.error}, got '${p.value}'`);
  return t.ns;
}

function parseBool(p: { name: string; value: string } | undefined): boolean | undefined {
  if (p === undefined) return undefined;
  const b = GO_BOOLS.get(p.value);
  if (b === undefined) throw new V3ParamError(`malformed parameter ${p.name}: expected true or false, got '${p.value}'`);
  return b;
}

/** Parses GET /api/v3/traces parameters (TraceQueryParameters) into a search. */
export function parseV3Search(params: URLSearchParams, maxLimit: number): JaegerSearch {
  const filter = param(params, 'query.filter');
  if (filter !== undefined) throw new V3ParamError(`malformed parameter ${filter.name}: filter expressions are not supported; use query.attributes`);
  const min = param(params, 'query.startTimeMin', 'query.start_time_min');
  const max = param(params, 'query.startTimeMax', 'query.start_time_max');
  if (min === undefined || max === undefined) throw new V3ParamError(`malformed parameter ${min === undefined ? 'query.start_time_min' : 'query.start_time_max'}: required (query.start_time_min and query.start_time_max are required)`);
  const q: TraceQuery = { startNano: parseTime(min), endNano: parseTime(max), limit: Math.min(DEFAULT_SEARCH_DEPTH, maxLimit) };
  if (q.startNano! >= q.endNano!) throw new V3ParamError(`malformed parameter ${min.name}: must be before ${max.name}`);
  const service = param(params, 'query.serviceName', 'query.service_name');
  const operation = param(params, 'query.operationName', 'query.operation_name');
  if (service !== undefined) q.service = service.value;
  if (operation !== undefined) q.name = operation.value;
  const depth = param(params, 'query.searchDepth', 'query.search_depth', 'query.num_traces');
  let warning: string | undefined;
  if (depth !== undefined) {
    const n = Number(depth.value);
    // As Jaeger reads it, 0 is the default.
    if (!/^\d{1,9}$/.test(depth.value)) throw new V3ParamError(`malformed parameter ${depth.name}: expected a non-negative integer, got '${depth.value}'`);
    if (n > 0) ({ limit: q.limit, warning } = clampLimit(n, maxLimit, depth.name));
  }
  const dMin = param(params, 'query.durationMin', 'query.duration_min');
  const dMax = param(params, 'query.durationMax', 'query.duration_max');
  if (dMin !== undefined) q.minDurationNano = parseGoDuration(dMin.name, dMin.value);
  if (dMax !== undefined) {
    const ns = parseGoDuration(dMax.name, dMax.value);
    // As in Jaeger, 0 is no bound.
    if (ns > 0n) q.maxDurationNano = ns;
  }
  if (q.minDurationNano !== undefined && q.maxDurationNano !== undefined && q.minDurationNano > q.maxDurationNano) throw new V3ParamError(`malformed parameter ${dMin!.name}: greater than ${dMax!.name}`);
  parseBool(param(params, 'query.rawTraces', 'query.raw_traces'));
  const attrs = param(params, 'query.attributes');
  if (attrs !== undefined) {
    let obj: unknown;
    try {
      obj = JSON.parse(attrs.value);
    } catch {
      obj = undefined;
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new V3ParamError(`malformed parameter ${attrs.name}: expected a JSON object such as {"http.status_code":"500"}, got '${attrs.value}'`);
    const tags = Object.entries(obj).map(([key, value]) => {
      if (key === '') throw new V3ParamError(`malformed parameter ${attrs.name}: expected non-empty keys, got '${attrs.value}'`);
      if (typeof value === 'object' && value !== null) throw new V3ParamError(`malformed parameter ${attrs.name}: value of ${key}: expected a string`);
      return { key, value: String(value) };
    });
    if (tags.length > MAX_ATTRIBUTES) throw new V3ParamError(`malformed parameter ${attrs.name}: at most ${MAX_ATTRIBUTES} attributes`);
    return jaegerSearch(q, tags, warning);
  }
  return jaegerSearch(q, [], warning);
}

/** api_v3's word for an operation's span kind: Jaeger shows an unspecified kind as internal. */
const kindWord = (kind: number): string => (kind === 0 ? 'internal' : (JAEGER_SPAN_KINDS[kind] ?? 'internal'));

/**
 * A trace found, as /api/v3/trace-summaries answers it (api_v3's TraceSummary): what the Jaeger
 * UI's search lists. Counts the store does not keep (error, orphan and per-service span counts)
 * are left out, which the UI reads as "not supported" and hides.
 */
function v3Summary(t: TraceSummary): Record<string, string | number> {
  return { traceId: t.traceId, rootServiceName: t.rootServiceName, rootOperationName: t.rootSpanName, minStartTimeUnixNano: String(t.startTimeUnixNano), maxEndTimeUnixNano: String(t.startTimeUnixNano + t.durationNano), spanCount: t.spanCount };
}

/** Serves /api/v3/… from a backend. */
export class JaegerApiV3 {
  private readonly backend: StoreReader;
  private readonly maxLimit: number;
  private readonly bounds: SearchBounds;
  private readonly onStorageError: (err: Error, url: string | undefined) => void;
  /** Longest a client may take nothing of its answer (sendJsonSliced; WRITE_STALL_MS when absent). */
  private readonly writeStallMs: number | undefined;

  /** onStorageError hears the failures answered 503, whose details stay out of the answer. */
  constructor(backend: StoreReader, limits: SearchBounds & { maxLimit: number; writeStallMs?: number }, onStorageError: (err: Error, url: string | undefined) => void = () => {}) {
    this.backend = backend;
    this.maxLimit = limits.maxLimit;
    this.bounds = { maxSpansPerTrace: limits.maxSpansPerTrace, maxSpansPerSearch: limits.maxSpansPerSearch, maxReadBytes: limits.maxReadBytes };
    this.writeStallMs = limits.writeStallMs;
    this.onStorageError = onStorageError;
  }

  /**
   * Answers one /api/v3/ request; storage failures answer 503 in api_v3's error shape.
   * `signal` is the read server's clientGone(res), aborted when the client is gone.
   */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, tenant: string, signal: AbortSignal): Promise<void> {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return sendJsonSliced(res, 405, v3Error(405, `method ${req.method} not allowed`));
      }
      const [status, body] = await this.route(url, tenant, signal, req.method === 'HEAD');
      await sendJsonSliced(res, status, body, {}, '', this.writeStallMs);
    } catch (err) {
      // The client is gone and its read was stopped on the store: no failure, nobody to answer.
      if (signal.aborted) return;
      // Failed while the answer was written: its status is sent, and the response is destroyed.
      if (res.headersSent) return this.onStorageError(err as Error, req.url);
      if (err instanceof V3ParamError || err instanceof JaegerParamError) return sendJsonSliced(res, 400, v3Error(400, err.message));
      const e = err as Error;
      // A read stopped by its time budget is the reader's to narrow: not logged. Anything else is
      // the store failing, and the exception text (SQL, paths, driver internals) goes to the log only.
      if (e.name !== 'QueryTimeout') this.onStorageError(e, req.url);
      return sendJsonSliced(res, 503, v3Error(503, e.name === 'QueryTimeout' ? e.message : 'storage unavailable; retry later'), { 'retry-after': '1' });
    }
  }

  private async route(url: URL, tenant: string, signal: AbortSignal, head: boolean): Promise<[number, unknown]> {
    const path = url.pathname;
    const params = url.searchParams;
    if (path === '/api/v3/services') return [200, { services: await this.backend.getServices(tenant) }];
    if (path === '/api/v3/operations') return [200, { operations: await this.operations(tenant, params) }];
    if (path === '/api/v3/traces') {
      const s = parseV3Search(params, this.maxLimit);
      const found = await searchJaeger(this.backend, tenant, s, signal);
      return this.traces(tenant, found.map((t) => t.traceId), 'No traces found', { ...this.bounds, signal }, s.warning);
    }
    if (path === '/api/v3/trace-summaries') {
      const s = parseV3Search(params, this.maxLimit);
      const summaries = (await searchJaeger(this.backend, tenant, s, signal)).map(v3Summary);
      return [200, s.warning === undefined ? { summaries } : { summaries, warnings: [s.warning] }];
    }
    const traceMatch = /^\/api\/v3\/traces\/([^/]+)$/.exec(path);
    if (traceMatch) {
      let raw: string;
      try {
        raw = decodeURIComponent(traceMatch[1]!);
      } catch {
        throw new V3ParamError(`malformed parameter trace_id: malformed escape in '${traceMatch[1]}'`);
      }
      const id = parseTraceIdPath(raw, 'trace_id');
      // The time range only helps stores that cannot find a trace by id alone; every store here
      // can, so it is checked and not needed. Raw traces are what is answered anyway: spans as stored.
      const start = param(params, 'startTime', 'start_time');
      const end = param(params, 'endTime', 'end_time');
      if (start !== undefined) parseTime(start);
      if (end !== undefined) parseTime(end);
      parseBool(param(params, 'rawTraces', 'raw_traces'));
      // HEAD: the status only, from one span (NO_BODY).
      if (head) return (await traceFound(this.backend, tenant, id, signal)) ? [200, NO_BODY] : [404, v3Error(404, `trace ${id} not found`)];
      // One trace is a trace read (as GET /api/traces/{id}): cut at query.maxSpansPerTrace, not at
      // query.maxSpansPerSearch, which bounds an answer of several.
      return this.traces(tenant, [id], `trace ${id} not found`, { ...this.bounds, maxSpansPerSearch: this.bounds.maxSpansPerTrace, signal });
    }
    return [404, v3Error(404, `no route ${path}`)];
  }

  /** {operations: [{name, spanKind}]} of a service, of one kind when spanKind (or span_kind) names it. */
  private async operations(tenant: string, params: URLSearchParams): Promise<{ name: string; spanKind: string }[]> {
    const service = param(params, 'service');
    if (service === undefined) throw new V3ParamError('malformed parameter service: required');
    const kindParam = param(params, 'spanKind', 'span_kind');
    let ops: Operation[];
    if (kindParam === undefined) ops = await this.backend.getOperations(tenant, { service: service.value });
    else {
      const kind = spanKindNumber(kindParam.value);
      if (kind === undefined) throw new V3ParamError(`malformed parameter ${kindParam.name}: unsupported span kind '${kindParam.value}' (server, client, producer, consumer, internal, unspecified)`);
      ops = await this.backend.getOperations(tenant, { service: service.value, kind });
      // Jaeger shows an unspecified kind as internal, so internal lists those too.
      if (kind === 1) ops = [...ops, ...(await this.backend.getOperations(tenant, { service: service.value, kind: 0 }))];
    }
    const seen = new Set<string>();
    const out: { name: string; spanKind: string }[] = [];
    for (const o of ops) {
      const op = { name: o.name, spanKind: kindWord(o.kind) };
      const key = JSON.stringify(op);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(op);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.spanKind < b.spanKind ? -1 : a.spanKind > b.spanKind ? 1 : 0));
  }

  /**
   * {result: {resourceSpans}} of traces read within the search bounds, each trace's resources in
   * turn; 404 (notFound) when none is found, as Jaeger answers, a search too. OTLP/JSON has no place for warnings: a trace
   * cut, or traces left out, are said in `warnings` beside `result`.
   */
  private async traces(tenant: string, ids: readonly string[], notFound: string, bounds = this.bounds, searchWarning?: string): Promise<[number, unknown]> {
    const read = await readBounded(this.backend, tenant, ids, bounds);
    if (read.traces.length === 0) return [404, v3Error(404, notFound)];
    // Each trace's resources made as the answer reaches them (sendJsonSliced).
    const resourceSpans = new JsonArray((function* () {
      for (const t of read.traces) yield* slicedResourceSpans(t.spans).items;
    })());
    const warnings = [...(searchWarning === undefined ? [] : [searchWarning]), ...read.traces.flatMap((t) => (t.warning === undefined ? [] : [`trace ${t.traceId}: ${t.warning}`])), ...(read.cut === undefined ? [] : [read.cut])];
    return [200, warnings.length > 0 ? { result: { resourceSpans }, warnings } : { result: { resourceSpans } }];
  }
}
