// The Jaeger query service's HTTP JSON API (/api/…) on the read port, with its parameters and
// answers: what the Jaeger UI and Grafana's Jaeger data source call. Parameters follow Jaeger's
// query parser (times in microseconds, durations as Go duration strings, tags as a JSON object);
// a bad one is answered 400 in Jaeger's error envelope, naming the parameter. Unknown parameters
// are ignored, as Jaeger ignores them: clients we do not control (Grafana versions, the Jaeger UI)
// send extras, and refusing them would break those clients.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StoreReader, TraceQuery, TraceSummary } from '../storage/backend.ts';
import { byNewestTrace } from '../storage/query-helpers.ts';
import { readBounded, readCapped, traceFound, type CappedTrace } from './cap.ts';
import { JAEGER_SPAN_KINDS, envelope, errorEnvelope, jaegerTraceId, slicedJaegerTrace, spanKindNumber, toJaegerDependencies, toJaegerOperations, type JaegerError } from './jaeger.ts';
import { JsonArray, NO_BODY, sendJsonSliced, type JsonObject } from './json-stream.ts';

/** A parameter the Jaeger API does not accept; answered 400 naming it. */
export class JaegerParamError extends Error {
  override readonly name = 'JaegerParamError';
  constructor(param: string, detail: string) {
    super(`unable to parse param '${param}': ${detail}`);
  }
}

const NS_PER_US = 1000n;
const NS_PER_MS = 1_000_000n;
const INT64_MAX = (1n << 63n) - 1n;
/** The Jaeger UI's default search window, used when neither start nor lookback is given. */
const DEFAULT_LOOKBACK_NS = 3_600_000_000_000n;
/** Jaeger's default for /api/dependencies. */
const DEFAULT_DEPENDENCY_LOOKBACK_MS = 86_400_000n;
/** Jaeger's default search limit. */
const DEFAULT_LIMIT = 20;
/** Bounds the work one request can ask for: trace ids per /api/traces?traceID= and tags per search. */
const MAX_TRACE_IDS = 100;
const MAX_TAGS = 50;

/** The otel.status_code tags toJaegerTrace makes of a span's status (jaeger.ts), as the status codes a search asks for. */
const STATUS_TAGS = new Map([['otel.status_code=ERROR', 2], ['otel.status_code=OK', 1]]);

/** The span.kind tag values toJaegerTrace writes (every kind but unspecified, which has no tag), as OTLP SpanKind numbers. */
const KIND_TAGS = new Map<string, number>(JAEGER_SPAN_KINDS.flatMap((word, kind) => (kind === 0 ? [] : [[word, kind] as const])));

const GO_UNITS: Record<string, bigint> = { ns: 1n, us: 1000n, µs: 1000n, μs: 1000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n };

/** Parses a Go duration string ("1.5s", "100ms", "1h30m") into nanoseconds, as Jaeger does for minDuration/maxDuration. */
export function parseGoDuration(param: string, v: string): bigint {
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0n;
  let pos = 0;
  if (v === '0') return 0n;
  while (pos < v.length) {
    re.lastIndex = pos;
    const m = re.exec(v);
    if (!m) throw new JaegerParamError(param, `expected a duration such as 250ms, 1.5s or 1h30m, got '${v}'`);
    const [whole, frac = ''] = m[1]!.split('.');
    const unit = GO_UNITS[m[2]!]!;
    const scale = 10n ** BigInt(frac.length);
    total += BigInt(whole || '0') * unit + (BigInt(frac || '0') * unit) / scale;
    if (total > INT64_MAX) throw new JaegerParamError(param, `duration too large, got '${v}'`);
    pos = re.lastIndex;
  }
  if (pos === 0) throw new JaegerParamError(param, `expected a duration such as 250ms, 1.5s or 1h30m, got '${v}'`);
  return total;
}

/** A lookback as the Jaeger UI words it: a Go duration, or whole days (2d) or weeks (2w). */
function parseLookback(v: string): bigint {
  const m = /^(\d{1,6})([dw])$/.exec(v);
  if (!m) return parseGoDuration('lookback', v);
  return BigInt(m[1]!) * (m[2] === 'd' ? 24n : 168n) * 3_600_000_000_000n;
}

const atMostInt64 = (ns: bigint): bigint => (ns > INT64_MAX ? INT64_MAX : ns);

function one(params: URLSearchParams, name: string): string | undefined {
  const all = params.getAll(name);
  if (all.length > 1) throw new JaegerParamError(name, 'given more than once');
  return all[0] === '' ? undefined : all[0];
}

/** A decimal count of `unit` nanoseconds since the epoch (Jaeger's start/end are microseconds, endTs milliseconds). */
function parseEpoch(params: URLSearchParams, name: string, unitNs: bigint): bigint | undefined {
  const v = one(params, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,19}$/.test(v)) throw new JaegerParamError(name, `expected a non-negative integer, got '${v}'`);
  const ns = BigInt(v) * unitNs;
  if (ns > INT64_MAX) throw new JaegerParamError(name, `beyond the latest storable time, got '${v}'`);
  return ns;
}

/** Tags from `tags` (JSON objects) and `tag` (key:value), as Jaeger's parser reads them. */
function parseTags(params: URLSearchParams): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (const t of params.getAll('tags')) {
    let obj: unknown;
    try {
      obj = JSON.parse(t);
    } catch {
      throw new JaegerParamError('tags', `expected a JSON object such as {"http.status_code":"500"}, got '${t}'`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new JaegerParamError('tags', `expected a JSON object, got '${t}'`);
    for (const [key, value] of Object.entries(obj)) {
      // As `tag` and /v1's `attr` refuse one: OTLP keys are never empty, and the stores do not agree on searching for one.
      if (key === '') throw new JaegerParamError('tags', `expected a non-empty key, got '${t}'`);
      if (typeof value === 'object' && value !== null) throw new JaegerParamError('tags', `value of ${key}: expected a string, number or boolean`);
      out.push({ key, value: String(value) });
    }
  }
  for (const t of params.getAll('tag')) {
    const i = t.indexOf(':');
    if (i <= 0) throw new JaegerParamError('tag', `expected key:value, got '${t}'`);
    out.push({ key: t.slice(0, i), value: t.slice(i + 1) });
  }
  if (out.length > MAX_TAGS) throw new JaegerParamError('tags', `at most ${MAX_TAGS} tags`);
  return out;
}

/** A Jaeger trace id: 1–32 hex digits, left-padded to 32 lowercase (Jaeger drops leading zeros of 64-bit ids). */
export function parseTraceId(param: string, v: string): string {
  if (!/^[0-9a-fA-F]{1,32}$/.test(v)) throw new JaegerParamError(param, `expected a trace id of 1 to 32 hex digits, got '${v}'`);
  return v.toLowerCase().padStart(32, '0');
}

/** The base64 (standard or URL-safe, padded or not) of 16 bytes, or of 8 (a 64-bit id). */
const BASE64_ID = /^(?:[A-Za-z0-9+/]{22}|[A-Za-z0-9_-]{22})(?:==)?$|^(?:[A-Za-z0-9+/]{11}|[A-Za-z0-9_-]{11})=?$/;

/**
 * The trace id of /api/traces/{traceID}: hex as parseTraceId reads it, else its bytes in base64,
 * as Jaeger reads it there (apiv3.TraceIDFromString): ids copied from OTLP protobuf JSON, which
 * writes bytes in base64.
 */
export function parseTraceIdPath(v: string, param = 'traceID'): string {
  if (/^[0-9a-fA-F]{1,32}$/.test(v) || !BASE64_ID.test(v)) return parseTraceId(param, v);
  return Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('hex').padStart(32, '0');
}

/**
 * A search of the Jaeger API: the store's query, and whether it asks for the tag error=true.
 * Jaeger's error is an ordinary tag, which its OTLP translation adds to a span of status ERROR
 * (as toJaegerTrace does) and which a span's own attribute error=true is too: such a search finds
 * traces with a span of status ERROR or with that attribute (searchJaeger), as Jaeger's stores of
 * its own model (Cassandra, Elasticsearch, Badger) find it (its v2 in-memory store reads it as the
 * status alone).
 */
export interface JaegerSearch {
  search: TraceQuery;
  errorTag?: true;
  /** Said beside the traces found: a limit asked above query.maxLimit, searched at it. */
  warning?: string;
}

/**
 * A search's limit as Jaeger reads it, of at most maxLimit: Jaeger's query service takes any
 * limit, and the Jaeger UI offers up to its search.maxLimit (1500 by default), so one above
 * query.maxLimit is searched at query.maxLimit (the warning says so, naming the parameter as the
 * request gave it) rather than refused.
 */
export function clampLimit(n: number, maxLimit: number, name = 'limit'): { limit: number; warning?: string } {
  if (n <= maxLimit) return { limit: n };
  return { limit: maxLimit, warning: `${name} ${n} is above query.maxLimit (${maxLimit}): searched for at most ${maxLimit} traces` };
}

/**
 * Adds tags a search asks for to q: the tags this API makes of a span's kind and status
 * (span.kind=server, otel.status_code=ERROR) are conditions on them, error=true a condition on
 * the status or the attribute (JaegerSearch), the others on attributes. Returns whether
 * error=true is asked for.
 */
export function applyTags(q: TraceQuery, tags: readonly { key: string; value: string }[]): boolean {
  let errorTag = false;
  const attributes = tags.filter((t) => {
    // The span.kind tag this API makes of a span's kind is a condition on the kind, not an attribute.
    const kind = t.key === 'span.kind' ? KIND_TAGS.get(t.value) : undefined;
    if (kind !== undefined) {
      q.kind = q.kind === undefined || q.kind === kind ? kind : -1;
      return false;
    }
    if (t.key === 'error' && t.value === 'true') {
      errorTag = true;
      return false;
    }
    // The otel.status_code tags this API makes of a span's status are conditions on the status, not attributes.
    const code = STATUS_TAGS.get(`${t.key}=${t.value}`);
    if (code === undefined) return true;
    // Two different statuses asked for: no span has both (-1 matches none).
    q.statusCode = q.statusCode === undefined || q.statusCode === code ? code : -1;
    return false;
  });
  if (attributes.length > 0) q.attributes = attributes;
  return errorTag;
}

/** A search with the tags applied (applyTags): error=true and a limit's warning (clampLimit) said beside the query. */
export function jaegerSearch(q: TraceQuery, tags: readonly { key: string; value: string }[], warning?: string): JaegerSearch {
  const s: JaegerSearch = { search: q };
  if (applyTags(q, tags)) s.errorTag = true;
  if (warning !== undefined) s.warning = warning;
  return s;
}

/**
 * The traces a Jaeger search finds. error=true (errorTag) is a span of status ERROR or one with
 * the attribute error=true (boolean or string): the stores' queries have no "or", so both are
 * asked, one after the other, and their traces merged, newest trace start first, up to the
 * limit. Each store answer is the limit traces whose newest matching span starts latest, so the
 * merge holds every trace the "or" would answer; of more than the limit, those whose traces start
 * latest are kept.
 */
export async function searchJaeger(backend: StoreReader, tenant: string, s: JaegerSearch, signal?: AbortSignal): Promise<TraceSummary[]> {
  const q = s.search;
  // otel.status_code=ERROR already asks for the status error=true stands for.
  if (s.errorTag === undefined || q.statusCode === 2) return backend.searchTraces(tenant, q, signal);
  const byAttribute = await backend.searchTraces(tenant, { ...q, attributes: [...(q.attributes ?? []), { key: 'error', value: 'true' }] }, signal);
  // Another status asked for (otel.status_code=OK): only the attribute can say error=true.
  if (q.statusCode !== undefined) return byAttribute;
  const byStatus = await backend.searchTraces(tenant, { ...q, statusCode: 2 }, signal);
  const merged = new Map(byStatus.map((t) => [t.traceId, t]));
  for (const t of byAttribute) if (!merged.has(t.traceId)) merged.set(t.traceId, t);
  return [...merged.values()].sort(byNewestTrace).slice(0, q.limit);
}

/** What /api/traces asks: trace ids, or a search. */
export type TraceRequest = { traceIds: string[] } | JaegerSearch;

/** Parses /api/traces parameters (Jaeger's query parser, plus lookback as the Jaeger UI sends it). */
export function parseTraceRequest(params: URLSearchParams, maxLimit: number, nowNs: bigint): TraceRequest {
  const ids = params.getAll('traceID');
  if (ids.length > MAX_TRACE_IDS) throw new JaegerParamError('traceID', `at most ${MAX_TRACE_IDS} trace ids`);
  if (ids.length > 0) return { traceIds: [...new Set(ids.map((id) => parseTraceId('traceID', id)))] };
  const service = one(params, 'service');
  if (service === undefined) throw new JaegerParamError('service', "parameter 'service' is required");
  const q: TraceQuery = { service, limit: Math.min(DEFAULT_LIMIT, maxLimit) };
  const operation = one(params, 'operation');
  if (operation !== undefined) q.name = operation;
  const endUs = parseEpoch(params, 'end', NS_PER_US);
  const end = endUs ?? nowNs;
  // The Jaeger UI sends its lookback (1h, 2d, 2w, custom) beside start and end; start decides.
  let start = parseEpoch(params, 'start', NS_PER_US);
  if (start === undefined) {
    const lookback = one(params, 'lookback');
    const lookbackNs = lookback === undefined || lookback === 'custom' ? DEFAULT_LOOKBACK_NS : parseLookback(lookback);
    start = end > lookbackNs ? end - lookbackNs : 0n;
  }
  if (start > end) throw new JaegerParamError('start', 'after end');
  q.startNano = start;
  // Jaeger's times and durations are whole microseconds (as this API shows them): an end, or a
  // longest duration, takes in every span within its microsecond.
  q.endNano = endUs === undefined ? end : atMostInt64(end + NS_PER_US - 1n);
  const minD = one(params, 'minDuration');
  const maxD = one(params, 'maxDuration');
  if (minD !== undefined) q.minDurationNano = parseGoDuration('minDuration', minD);
  if (maxD !== undefined) {
    const max = parseGoDuration('maxDuration', maxD);
    // As in Jaeger, 0 is no bound.
    if (max > 0n) q.maxDurationNano = atMostInt64((max / NS_PER_US) * NS_PER_US + NS_PER_US - 1n);
  }
  if (q.minDurationNano !== undefined && q.maxDurationNano !== undefined && q.minDurationNano > q.maxDurationNano) throw new JaegerParamError('minDuration', 'greater than maxDuration');
  const limit = one(params, 'limit');
  let warning: string | undefined;
  if (limit !== undefined) {
    const n = Number(limit);
    if (!/^\d{1,9}$/.test(limit)) throw new JaegerParamError('limit', `expected a non-negative integer, got '${limit}'`);
    // Jaeger reads 0 as "the default".
    if (n > 0) ({ limit: q.limit, warning } = clampLimit(n, maxLimit));
  }
  return jaegerSearch(q, parseTags(params), warning);
}

/** A read trace in Jaeger's shape, its truncation warning first (and `last` last), made as it is written. */
function jaegerTrace(capped: CappedTrace, last?: string): JsonObject {
  return slicedJaegerTrace(capped.spans, capped.warning, last);
}

/** Answers body as JSON (indented by 4 with prettyPrint), in slices (sendJsonSliced). */
function send(res: ServerResponse, status: number, body: unknown, pretty: boolean, stallMs?: number): Promise<void> {
  // A 503 says when to try again, as the read API's other routes do.
  return sendJsonSliced(res, status, body, status === 503 ? { 'retry-after': '1' } : {}, pretty ? '    ' : '', stallMs);
}

/** Serves /api/… from a backend. */
export class JaegerApi {
  private readonly backend: StoreReader;
  private readonly maxLimit: number;

  private readonly onStorageError: (err: Error, url: string | undefined) => void;
  private readonly maxSpansPerTrace: number;
  private readonly maxSpansPerSearch: number;
  /** Stored bytes one answer holds at most over all its traces (the read API's byte bound); none when absent. */
  private readonly maxReadBytes: number | undefined;
  /** Longest a client may take nothing of its answer (sendJsonSliced; WRITE_STALL_MS when absent). */
  private readonly writeStallMs: number | undefined;

  /** onStorageError hears the failures answered 503, whose details stay out of the answer. */
  constructor(backend: StoreReader, limits: { maxLimit: number; maxSpansPerTrace: number; maxSpansPerSearch: number; maxReadBytes?: number; writeStallMs?: number }, onStorageError: (err: Error, url: string | undefined) => void = () => {}) {
    this.backend = backend;
    this.maxLimit = limits.maxLimit;
    this.maxSpansPerTrace = limits.maxSpansPerTrace;
    this.maxSpansPerSearch = limits.maxSpansPerSearch;
    this.maxReadBytes = limits.maxReadBytes;
    this.writeStallMs = limits.writeStallMs;
    this.onStorageError = onStorageError;
  }

  /** A trace in Jaeger's shape, cut as a trace read is; undefined when unknown. */
  private async trace(tenant: string, traceId: string, signal: AbortSignal): Promise<JsonObject | undefined> {
    const capped = await readCapped(this.backend, tenant, traceId, this.maxSpansPerTrace, undefined, this.maxReadBytes, undefined, signal);
    if (capped.spans.length === 0) return undefined;
    return jaegerTrace(capped);
  }

  /**
   * The traces of ids in their order in Jaeger's shape, read within the search bounds
   * (readBounded): when traces are left out, the last trace kept says so.
   */
  private async traces(tenant: string, ids: readonly string[], signal: AbortSignal): Promise<{ traces: JsonArray; unknown: string[]; leftOut: string[] }> {
    const read = await readBounded(this.backend, tenant, ids, { maxSpansPerTrace: this.maxSpansPerTrace, maxSpansPerSearch: this.maxSpansPerSearch, maxReadBytes: this.maxReadBytes, signal });
    const n = read.traces.length;
    // Each trace is made as the answer reaches it; the last kept says why others were left out.
    const traces = new JsonArray((function* () {
      for (let i = 0; i < n; i++) yield jaegerTrace(read.traces[i]!, i === n - 1 ? read.cut : undefined);
    })());
    return { traces, unknown: read.unknown, leftOut: read.leftOut };
  }

  /**
   * Answers one /api/ request; storage failures answer 503 in Jaeger's error envelope.
   * `signal` is the read server's clientGone(res), aborted when the client is gone.
   */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, tenant: string, signal: AbortSignal): Promise<void> {
    const pretty = (url.searchParams.get('prettyPrint') ?? 'false') !== 'false' && url.searchParams.get('prettyPrint') !== '';
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return send(res, 405, errorEnvelope(405, `method ${req.method} not allowed`), pretty);
      }
      const [status, body] = await this.route(url, tenant, signal, req.method === 'HEAD');
      await send(res, status, body, pretty, this.writeStallMs);
    } catch (err) {
      // The client is gone and its read was stopped on the store: no failure, nobody to answer.
      if (signal.aborted) return;
      // Failed while the answer was written: its status is sent, and the response is destroyed.
      if (res.headersSent) return this.onStorageError(err as Error, req.url);
      if (err instanceof JaegerParamError) return send(res, 400, errorEnvelope(400, err.message), pretty);
      const e = err as Error;
      // The exception text can carry SQL, paths or driver internals: it goes to the log only.
      if (e.name !== 'QueryTimeout') this.onStorageError(e, req.url);
      return send(res, 503, errorEnvelope(503, e.name === 'QueryTimeout' ? e.message : 'storage unavailable; retry later'), pretty);
    }
  }

  private async route(url: URL, tenant: string, signal: AbortSignal, head: boolean): Promise<[number, unknown]> {
    const path = url.pathname;
    const params = url.searchParams;
    if (path === '/api/services') {
      const services = await this.backend.getServices(tenant);
      return [200, envelope(services, services.length)];
    }
    const opsMatch = /^\/api\/services\/([^/]+)\/operations$/.exec(path);
    if (opsMatch) {
      const service = decode('service', opsMatch[1]!);
      const names = [...new Set((await this.backend.getOperations(tenant, { service })).map((o) => o.name))];
      return [200, envelope(names, names.length)];
    }
    if (path === '/api/operations') {
      const service = one(params, 'service');
      if (service === undefined) throw new JaegerParamError('service', "parameter 'service' is required");
      const kindWord = one(params, 'spanKind');
      const kind = kindWord === undefined ? undefined : spanKindNumber(kindWord);
      if (kindWord !== undefined && kind === undefined) throw new JaegerParamError('spanKind', `unsupported span kind: '${kindWord}' (server, client, producer, consumer, internal, unspecified)`);
      const ops = toJaegerOperations(await this.backend.getOperations(tenant, kind === undefined ? { service } : { service, kind }));
      return [200, envelope(ops, ops.length)];
    }
    if (path === '/api/traces') {
      const r = parseTraceRequest(params, this.maxLimit, BigInt(Date.now()) * NS_PER_MS);
      if (!('traceIds' in r)) {
        const found = envelope((await this.traces(tenant, (await searchJaeger(this.backend, tenant, r, signal)).map((t) => t.traceId), signal)).traces);
        // A limit above query.maxLimit searched at it: said in errors, which clients read beside data (as Jaeger's own).
        return [200, r.warning === undefined ? found : { ...found, errors: [{ code: 413, msg: r.warning }] }];
      }
      // As Jaeger: each id asked for and not answered is named in errors (the Jaeger UI's trace
      // compare view shows an id as loading until data or errors name it).
      const { traces, unknown, leftOut } = await this.traces(tenant, r.traceIds, signal);
      const errors: JaegerError[] = [
        ...unknown.map((id) => ({ code: 404, msg: 'trace not found', traceID: jaegerTraceId(id) })),
        ...leftOut.map((id) => ({ code: 413, msg: 'trace left out: the answer reached its bound (see the last trace\'s warnings)', traceID: jaegerTraceId(id) })),
      ];
      return [200, { ...envelope(traces), errors: errors.length > 0 ? errors : null }];
    }
    const traceMatch = /^\/api\/traces\/([^/]+)$/.exec(path);
    if (traceMatch) {
      parseEpoch(params, 'start', NS_PER_US);
      parseEpoch(params, 'end', NS_PER_US);
      const id = parseTraceIdPath(decode('traceID', traceMatch[1]!));
      // HEAD: the status only, from one span (NO_BODY).
      if (head) return (await traceFound(this.backend, tenant, id, signal)) ? [200, NO_BODY] : [404, errorEnvelope(404, 'trace not found')];
      const t = await this.trace(tenant, id, signal);
      if (t === undefined) return [404, errorEnvelope(404, 'trace not found')];
      return [200, envelope(new JsonArray([t]))];
    }
    if (path === '/api/dependencies') {
      const end = parseEpoch(params, 'endTs', NS_PER_MS) ?? BigInt(Date.now()) * NS_PER_MS;
      const lookback = parseEpoch(params, 'lookback', NS_PER_MS) ?? DEFAULT_DEPENDENCY_LOOKBACK_MS * NS_PER_MS;
      const service = one(params, 'service');
      const links = await this.backend.getDependencies(tenant, { startNano: end > lookback ? end - lookback : 0n, endNano: end });
      const shown = service === undefined ? links : links.filter((l) => l.parent === service || l.child === service);
      return [200, envelope(toJaegerDependencies(shown))];
    }
    return [404, errorEnvelope(404, `no route ${path}`)];
  }
}

function decode(param: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new JaegerParamError(param, `malformed escape in '${raw}'`);
  }
}
