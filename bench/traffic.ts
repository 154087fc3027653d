// The request generator: OTLP export requests shaped like real SDK traffic (semantic-convention
// attributes of mixed types, a ~10-attribute resource, 0–2 events, traces of several spans,
// 100–1000 items per request), encoded once with protobufjs from our .proto files.
//
// The same seed gives the same bytes in every process, so the null receiver, the collector and
// the decode benchmark see identical requests. Before each send the load generator stamps a
// copy with fresh trace ids (stampTraceIds), so stores that deduplicate on trace/span id see new
// data every time while the request stays pre-encoded.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { PROTO_DIR } from '../src/receiver/otlp-messages.ts';
import { fmix32 } from '../src/storage/sqlite/terms.ts';

export type BenchSignal = 'traces' | 'logs';

export interface TrafficSpec {
  signal: BenchSignal;
  /** Distinct requests to build (the load generator cycles through them). */
  requests: number;
  seed: number;
  /** Items (spans or log records) per request, uniformly in [minItems, maxItems]. */
  minItems: number;
  maxItems: number;
}

export interface TrafficRequest {
  bytes: Uint8Array;
  /** Spans or log records in the request. */
  items: number;
  /** Where each 16-byte trace id starts in bytes (spans, links' ids excluded, and log records that carry one). */
  traceIdOffsets: Uint32Array;
  /** Where each fixed64 time starts in bytes (spans' start and end, their events'; log records' time and observed time), for stampTimes. */
  timeOffsets: Uint32Array;
  /** The newest of those times. */
  newestNs: bigint;
}

/** The default shape of issue #6: 100–1000 items per request. */
export function defaultSpec(signal: BenchSignal, requests = 24, seed = 6): TrafficSpec {
  return { signal, requests, seed, minItems: 100, maxItems: 1000 };
}

/** Small requests, 100 items each, as SDK batch exporters often send them (issue #10's small-request variant). */
export function smallSpec(signal: BenchSignal): TrafficSpec {
  return { ...defaultSpec(signal, 100), minItems: 100, maxItems: 100 };
}

// ---------------------------------------------------------------------------------------------
// protobufjs types

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : PROTO_DIR + target);
root.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'opentelemetry/proto/collector/logs/v1/logs_service.proto'], { keepCase: false });
const TraceRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const LogsRequest = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');

// ---------------------------------------------------------------------------------------------
// A small deterministic PRNG (mulberry32): Math.random cannot be seeded.

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    if (b.every((x) => x === 0)) b[n - 1] = 1;
    return b;
  }
  hex(n: number): string {
    return this.bytes(n).toString('hex');
  }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary: semantic-convention keys with values that repeat the way real ones do (methods,
// routes, hosts) mixed with high-cardinality ones (ids in paths, query text, user ids).

type Val = { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean } | { arrayValue: { values: Val[] } };
type Kv = { key: string; value: Val };

const s = (v: string): Val => ({ stringValue: v });
const i = (v: number): Val => ({ intValue: String(v) });
const d = (v: number): Val => ({ doubleValue: v });
const b = (v: boolean): Val => ({ boolValue: v });
const kv = (key: string, value: Val): Kv => ({ key, value });

const SERVICES = ['checkout', 'cart', 'frontend', 'payment', 'inventory', 'shipping', 'recommendation', 'ad', 'email', 'currency'];
const ROUTES = ['/api/cart', '/api/cart/{id}', '/api/products/{id}', '/api/checkout', '/api/users/{id}/orders', '/api/recommendations', '/health', '/api/currency/convert'];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];
const STATUS = [200, 200, 200, 200, 201, 204, 304, 400, 404, 500, 503];
const DB_SYSTEMS = ['postgresql', 'redis', 'mysql', 'mongodb'];
const TABLES = ['orders', 'order_items', 'users', 'products', 'carts', 'payments', 'shipments'];
const USER_AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'okhttp/4.12.0',
  'python-requests/2.32.3',
  'Go-http-client/2.0',
];
const FUNCTIONS = ['OrderService.placeOrder', 'CartRepository.load', 'PriceCalculator.total', 'InventoryClient.reserve', 'PaymentGateway.charge', 'Serializer.write', 'CacheLayer.get', 'RateLimiter.check'];
const LOGGERS = ['com.example.checkout.OrderService', 'http.access', 'db.pool', 'cache', 'payment.gateway', 'scheduler'];
const EXCEPTIONS = ['java.net.SocketTimeoutException', 'IllegalStateException', 'ConnectionResetError', 'ValueError', 'context deadline exceeded'];
const EVENT_NAMES = ['cache.miss', 'retry', 'message.sent', 'lock.acquired'];

function stacktrace(rng: Rng): string {
  let out = `${rng.pick(EXCEPTIONS)}: ${rng.pick(['timed out', 'connection reset by peer', 'unexpected state', 'invalid value'])}\n`;
  const frames = rng.int(6, 14);
  for (let f = 0; f < frames; f++) out += `\tat ${rng.pick(FUNCTIONS)}(${rng.pick(['Order', 'Cart', 'Gateway', 'Client'])}.java:${rng.int(20, 900)})\n`;
  return out;
}

function resourceAttrs(rng: Rng, service: string): Kv[] {
  return [
    kv('service.name', s(service)),
    kv('service.version', s(`1.${rng.int(0, 30)}.${rng.int(0, 9)}`)),
    kv('service.namespace', s('shop')),
    kv('service.instance.id', s(`${rng.hex(4)}-${rng.hex(2)}-${rng.hex(2)}-${rng.hex(2)}-${rng.hex(6)}`)),
    kv('deployment.environment.name', s(rng.pick(['production', 'staging']))),
    kv('host.name', s(`node-${rng.int(1, 40)}.eu-west-1.compute.internal`)),
    kv('host.arch', s('amd64')),
    kv('os.type', s('linux')),
    kv('process.pid', i(rng.int(1, 65000))),
    kv('process.runtime.name', s(rng.pick(['OpenJDK Runtime Environment', 'node', 'CPython', 'go']))),
    kv('telemetry.sdk.name', s('opentelemetry')),
    kv('telemetry.sdk.language', s(rng.pick(['java', 'nodejs', 'python', 'go']))),
    kv('telemetry.sdk.version', s('1.40.0')),
    kv('k8s.pod.name', s(`${service}-${rng.hex(5)}-${rng.hex(3)}`)),
    kv('k8s.namespace.name', s('shop')),
    kv('cloud.region', s('eu-west-1')),
  ].slice(0, rng.int(9, 12));
}

/** Distinct extra attributes of every type (none shares a key with a span's base set), used to bring an item to its drawn attribute count. */
const EXTRA_COUNT = 16;

function extraAttr(rng: Rng, n: number): Kv {
  switch (n % EXTRA_COUNT) {
    case 0:
      return kv('thread.id', i(rng.int(1, 400)));
    case 1:
      return kv('thread.name', s(rng.pick(['main', 'http-nio-8080-exec-3', 'worker-7', 'grpc-default-executor-1'])));
    case 2:
      return kv('app.cache.hit', b(rng.chance(0.7)));
    case 3:
      return kv('app.items.count', i(rng.int(0, 50)));
    case 4:
      return kv('app.sampling.ratio', d(Math.round(rng.next() * 1000) / 1000));
    case 5:
      return kv('enduser.id', s(`user-${rng.int(1, 200_000)}`));
    case 6:
      return kv('app.feature.flags', { arrayValue: { values: [s('new-checkout'), s(rng.pick(['ab-a', 'ab-b'])), s('dark-mode')].slice(0, rng.int(1, 3)) } });
    case 7:
      return kv('code.lineno', i(rng.int(10, 2000)));
    case 8:
      return kv('session.id', s(rng.hex(8)));
    case 9:
      return kv('app.tenant', s(rng.pick(['acme', 'globex', 'initech', 'umbrella', 'hooli'])));
    case 10:
      return kv('app.region.primary', b(rng.chance(0.8)));
    case 11:
      return kv('messaging.batch.message_count', i(rng.int(1, 64)));
    case 12:
      return kv('app.queue.wait_ms', d(Math.round(rng.next() * 50_000) / 100));
    case 13:
      return kv('feature_flag.key', s(rng.pick(['checkout-v2', 'fast-cart', 'recs-ml'])));
    case 14:
      return kv('app.user.premium', b(rng.chance(0.2)));
    default:
      return kv('app.build.id', s(`build-${rng.int(1000, 9999)}`));
  }
}

/** Fills attrs up to `want` with consecutive distinct extras (at most EXTRA_COUNT of them). */
function addExtras(rng: Rng, attrs: Kv[], want: number): void {
  const start = rng.int(0, EXTRA_COUNT - 1);
  for (let n = 0; attrs.length < want && n < EXTRA_COUNT; n++) attrs.push(extraAttr(rng, start + n));
}

function spanAttrs(rng: Rng, kind: number, service: string): { name: string; attrs: Kv[] } {
  let name: string;
  let attrs: Kv[];
  if (kind === 2) {
    const method = rng.pick(METHODS);
    const route = rng.pick(ROUTES);
    const path = route.replace('{id}', String(rng.int(1, 1_000_000)));
    name = `${method} ${route}`;
    attrs = [
      kv('http.request.method', s(method)),
      kv('http.route', s(route)),
      kv('url.path', s(path)),
      kv('url.scheme', s('https')),
      kv('http.response.status_code', i(rng.pick(STATUS))),
      kv('server.address', s(`${service}.shop.svc.cluster.local`)),
      kv('server.port', i(8080)),
      kv('network.protocol.version', s(rng.pick(['1.1', '2']))),
      kv('client.address', s(`10.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`)),
      kv('user_agent.original', s(rng.pick(USER_AGENTS))),
      kv('http.request.body.size', i(rng.int(0, 20_000))),
    ];
  } else if (kind === 3) {
    const system = rng.pick(DB_SYSTEMS);
    const table = rng.pick(TABLES);
    const op = rng.pick(['SELECT', 'SELECT', 'INSERT', 'UPDATE']);
    name = `${op} ${table}`;
    attrs = [
      kv('db.system.name', s(system)),
      kv('db.namespace', s('shop')),
      kv('db.operation.name', s(op)),
      kv('db.collection.name', s(table)),
      kv('db.query.text', s(`${op} id, user_id, status, total_cents, currency, created_at, updated_at FROM ${table} WHERE user_id = $1 AND status = ANY($2) ORDER BY created_at DESC LIMIT ${rng.int(1, 100)}`)),
      kv('server.address', s(`${system}.shop.svc.cluster.local`)),
      kv('server.port', i(rng.pick([5432, 6379, 3306, 27017]))),
      kv('db.response.returned_rows', i(rng.int(0, 100))),
      kv('network.peer.address', s(`10.0.${rng.int(0, 255)}.${rng.int(1, 254)}`)),
    ];
  } else {
    const fn = rng.pick(FUNCTIONS);
    name = fn;
    attrs = [
      kv('code.function.name', s(fn)),
      kv('code.file.path', s(`src/main/java/com/example/${fn.split('.')[0]}.java`)),
      kv('app.order.id', s(`ord_${rng.hex(8)}`)),
      kv('app.order.total', d(Math.round(rng.next() * 100_000) / 100)),
      kv('app.retry', b(rng.chance(0.1))),
    ];
  }
  addExtras(rng, attrs, rng.int(10, 20));
  return { name, attrs };
}

function events(rng: Rng, startNs: bigint, durNs: bigint, error: boolean): Record<string, unknown>[] {
  const count = error ? 1 : rng.pick([0, 0, 0, 1, 1, 2]);
  const out: Record<string, unknown>[] = [];
  for (let e = 0; e < count; e++) {
    const t = startNs + (durNs * BigInt(rng.int(0, 100))) / 100n;
    if (error && e === 0) {
      out.push({
        timeUnixNano: t.toString(),
        name: 'exception',
        attributes: [kv('exception.type', s(rng.pick(EXCEPTIONS))), kv('exception.message', s('request failed after 3 attempts')), kv('exception.stacktrace', s(stacktrace(rng)))],
      });
    } else {
      out.push({ timeUnixNano: t.toString(), name: rng.pick(EVENT_NAMES), attributes: [kv('attempt', i(rng.int(1, 3))), kv('key', s(`k:${rng.int(1, 5000)}`))] });
    }
  }
  return out;
}

/** Midnight UTC today: time-partitioned stores (PostgreSQL) have today's partition. */
const DAY_MS = 86_400_000;
const TODAY_MS = Math.floor(Date.now() / DAY_MS) * DAY_MS;
const NOW_NS = BigInt(TODAY_MS) * 1_000_000n;

function buildTraceObject(rng: Rng, items: number, baseNs: bigint): Record<string, unknown> {
  const service = rng.pick(SERVICES);
  const spans: Record<string, unknown>[] = [];
  while (spans.length < items) {
    // One trace: a server root and a subtree of client/internal spans.
    const traceId = Buffer.concat([Buffer.alloc(8, 0x5a), rng.bytes(8)]);
    const size = Math.min(items - spans.length, rng.int(3, 30));
    const ids: Buffer[] = [];
    const traceStart = baseNs + BigInt(rng.int(0, 60_000)) * 1_000_000n;
    for (let n = 0; n < size; n++) {
      const spanId = rng.bytes(8);
      const kind = n === 0 ? 2 : rng.pick([3, 3, 1, 1, 3]);
      const { name, attrs } = spanAttrs(rng, kind, service);
      const start = traceStart + BigInt(n * rng.int(10, 500)) * 1000n;
      const dur = BigInt(rng.int(50, 500_000)) * 1000n;
      const error = rng.chance(0.03);
      spans.push({
        traceId,
        spanId,
        parentSpanId: n === 0 ? undefined : ids[rng.int(0, ids.length - 1)],
        flags: 0x101,
        name,
        kind,
        startTimeUnixNano: start.toString(),
        endTimeUnixNano: (start + dur).toString(),
        attributes: attrs,
        events: events(rng, start, dur, error),
        status: error ? { code: 2, message: 'request failed' } : rng.chance(0.1) ? { code: 1 } : undefined,
      });
      ids.push(spanId);
    }
  }
  // Most SDK requests carry one resource with one or two instrumentation scopes.
  const split = rng.chance(0.5) ? Math.floor(spans.length * 0.7) : spans.length;
  const scopes = [{ scope: { name: 'io.opentelemetry.spring-webmvc-6.0', version: '2.10.0' }, spans: spans.slice(0, split) }];
  if (split < spans.length) scopes.push({ scope: { name: 'io.opentelemetry.jdbc', version: '2.10.0' }, spans: spans.slice(split) });
  return { resourceSpans: [{ resource: { attributes: resourceAttrs(rng, service) }, scopeSpans: scopes, schemaUrl: 'https://opentelemetry.io/schemas/1.27.0' }] };
}

function buildLogsObject(rng: Rng, items: number, baseNs: bigint): Record<string, unknown> {
  const service = rng.pick(SERVICES);
  const records: Record<string, unknown>[] = [];
  for (let n = 0; n < items; n++) {
    const sev = rng.pick([9, 9, 9, 9, 5, 13, 17]);
    const t = baseNs + BigInt(rng.int(0, 60_000_000)) * 1000n;
    const linked = rng.chance(0.6);
    const route = rng.pick(ROUTES).replace('{id}', String(rng.int(1, 1_000_000)));
    const attrs: Kv[] = [
      kv('log.logger', s(rng.pick(LOGGERS))),
      kv('thread.name', s(rng.pick(['main', 'http-nio-8080-exec-3', 'worker-7']))),
      kv('code.function.name', s(rng.pick(FUNCTIONS))),
      kv('http.route', s(route)),
      kv('http.response.status_code', i(rng.pick(STATUS))),
    ];
    addExtras(rng, attrs, rng.int(5, 10));
    const body =
      sev >= 17
        ? s(`request failed: ${stacktrace(rng)}`)
        : s(`${rng.pick(METHODS)} ${route} completed with ${rng.pick(STATUS)} in ${rng.int(1, 900)} ms (user=${rng.int(1, 200_000)}, items=${rng.int(0, 40)})`);
    records.push({
      timeUnixNano: t.toString(),
      observedTimeUnixNano: (t + 1000n).toString(),
      severityNumber: sev,
      severityText: sev >= 17 ? 'ERROR' : sev >= 13 ? 'WARN' : sev >= 9 ? 'INFO' : 'DEBUG',
      body,
      attributes: attrs,
      traceId: linked ? Buffer.concat([Buffer.alloc(8, 0x5a), rng.bytes(8)]) : undefined,
      spanId: linked ? rng.bytes(8) : undefined,
      flags: linked ? 1 : 0,
    });
  }
  return { resourceLogs: [{ resource: { attributes: resourceAttrs(rng, service) }, scopeLogs: [{ scope: { name: 'org.slf4j', version: '2.0.16' }, logRecords: records }] }] };
}

// ---------------------------------------------------------------------------------------------
// Trace id offsets: a walk over the encoded bytes along resource → scope → item → trace_id.

function varint(buf: Uint8Array, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    const byte = buf[pos++]!;
    v += (byte & 0x7f) * mul;
    if (byte < 0x80) return [v, pos];
    mul *= 128;
  }
}

/**
 * Calls fn(field, start, end) for each length-delimited field of the message in buf[start, end),
 * and fixed64(field, start) for each 8-byte field when given; skips the rest.
 */
function eachLenField(buf: Uint8Array, start: number, end: number, fn: (field: number, s: number, e: number) => void, fixed64?: (field: number, s: number) => void): void {
  let pos = start;
  while (pos < end) {
    let tag;
    [tag, pos] = varint(buf, pos);
    const wire = tag & 7;
    if (wire === 0) [, pos] = varint(buf, pos);
    else if (wire === 1) {
      fixed64?.(tag >>> 3, pos);
      pos += 8;
    } else if (wire === 5) pos += 4;
    else if (wire === 2) {
      let len;
      [len, pos] = varint(buf, pos);
      fn(tag >>> 3, pos, pos + len);
      pos += len;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
}

/** Calls fn(start, end) for each item (span or log record) of an encoded export request: resource → scope → item. */
function eachItem(buf: Uint8Array, fn: (s: number, e: number) => void): void {
  eachLenField(buf, 0, buf.length, (f, s1, e1) => {
    if (f !== 1) return;
    eachLenField(buf, s1, e1, (f2, s2, e2) => {
      if (f2 !== 2) return;
      eachLenField(buf, s2, e2, (f3, s3, e3) => {
        if (f3 === 2) fn(s3, e3);
      });
    });
  });
}

/** Offsets of the trace ids of every span (or log record) in an encoded export request. */
export function traceIdOffsets(signal: BenchSignal, buf: Uint8Array): Uint32Array {
  const out: number[] = [];
  const idField = signal === 'traces' ? 1 : 9;
  eachItem(buf, (s, e) =>
    eachLenField(buf, s, e, (f, s4, e4) => {
      if (f === idField && e4 - s4 === 16) out.push(s4);
    }),
  );
  return Uint32Array.from(out);
}

/** Fixed64 time fields: of a span (start, end), of a span event (time), of a log record (time, observed time). */
const SPAN_TIMES = new Set([7, 8]);
const EVENT_TIMES = new Set([1]);
const LOG_TIMES = new Set([1, 11]);

/** Offsets of the times of every span and span event (or log record) in an encoded export request, and the newest time. */
export function timeOffsets(signal: BenchSignal, buf: Uint8Array): { timeOffsets: Uint32Array; newestNs: bigint } {
  const out: number[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let newestNs = 0n;
  const time = (fields: Set<number>) => (f: number, at: number) => {
    if (!fields.has(f)) return;
    out.push(at);
    const t = view.getBigUint64(at, true);
    if (t > newestNs) newestNs = t;
  };
  const none = () => {};
  eachItem(buf, (s, e) => {
    if (signal === 'logs') return eachLenField(buf, s, e, none, time(LOG_TIMES));
    // Events (field 11) carry their own time.
    eachLenField(buf, s, e, (f, s4, e4) => f === 11 && eachLenField(buf, s4, e4, none, time(EVENT_TIMES)), time(SPAN_TIMES));
  });
  return { timeOffsets: Uint32Array.from(out), newestNs };
}

/**
 * Moves every time of a request (bytes from stampTraceIds, changed in place) by the same amount,
 * so that its newest is atNs: the request as an exporter sends it, moments after its spans ended,
 * instead of the times it was built with, replayed on every send.
 */
export function stampTimes(bytes: Buffer, req: TrafficRequest, atNs: bigint): void {
  const shift = atNs - req.newestNs;
  const offs = req.timeOffsets;
  for (let k = 0; k < offs.length; k++) bytes.writeBigUInt64LE(BigInt.asUintN(64, bytes.readBigUInt64LE(offs[k]!) + shift), offs[k]!);
}

/** A request of the traffic: its bytes and where its trace ids and times are. */
export function trafficRequest(signal: BenchSignal, bytes: Uint8Array, items: number): TrafficRequest {
  return { bytes, items, traceIdOffsets: traceIdOffsets(signal, bytes), ...timeOffsets(signal, bytes) };
}

/**
 * A copy of the request with fresh trace ids: each one's first 4 bytes XORed with fmix32(sendNo)
 * and the next 4 replaced by runId. Each send carries trace ids never seen before (for one
 * trace, the word differs from send to send; traces of a request differ in their last 8 bytes),
 * spans of one trace stay together, and the ids are spread as an SDK's random ones are, not
 * sorted by send: a store's trace index takes them all over its pages, as it would in a
 * deployment (phase AB of docs/performance.md: with ids in send order, a B-tree of trace ids
 * only ever appended).
 */
export function stampTraceIds(req: TrafficRequest, runId: number, sendNo: number): Buffer {
  const out = Buffer.allocUnsafe(req.bytes.byteLength);
  out.set(req.bytes);
  const offs = req.traceIdOffsets;
  const word = fmix32(sendNo >>> 0);
  for (let k = 0; k < offs.length; k++) {
    out.writeUInt32BE((out.readUInt32BE(offs[k]!) ^ word) >>> 0, offs[k]!);
    out.writeUInt32BE(runId >>> 0, offs[k]! + 4);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/** Builds the requests of a spec (deterministic in the spec). */
export function buildTraffic(spec: TrafficSpec): TrafficRequest[] {
  const rng = new Rng(spec.seed * 7919 + (spec.signal === 'traces' ? 1 : 2));
  const out: TrafficRequest[] = [];
  for (let n = 0; n < spec.requests; n++) {
    const items = rng.int(spec.minItems, spec.maxItems);
    const baseNs = NOW_NS + BigInt(n) * 60_000_000_000n;
    const type = spec.signal === 'traces' ? TraceRequest : LogsRequest;
    const obj = spec.signal === 'traces' ? buildTraceObject(rng, items, baseNs) : buildLogsObject(rng, items, baseNs);
    const bytes = type.encode(type.fromObject(obj)).finish();
    out.push(trafficRequest(spec.signal, bytes, items));
  }
  return out;
}

/**
 * The local modules a module runs: its own file and, transitively, those its relative imports and
 * re-exports name (type-only imports left out: they do not run). A specifier that names no file
 * (a comment's, say) is passed over: an import that did fail would have failed the module's load.
 */
export function localModules(entry: string): string[] {
  const seen = new Set<string>();
  const todo = [resolve(entry)];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(/\b(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      if (m[1]) continue;
      const target = resolve(dirname(file), (m[2] ?? m[3])!);
      if (existsSync(target)) todo.push(target);
    }
  }
  return [...seen].sort();
}

/** A hash of files' contents, in the order given (each one's length first: no two lists of contents run together alike). */
export function inputsKey(files: readonly string[]): string {
  const hash = createHash('sha256');
  for (const file of files) {
    const content = readFileSync(file);
    hash.update(`${content.byteLength}:`).update(content);
  }
  return hash.digest('hex').slice(0, 12);
}

/**
 * Everything a request's bytes depend on: the generator's source and the local modules it runs,
 * the .proto files it encodes with, and the protobufjs that encodes. A cached request set built
 * from other inputs is not read (a stale one would be benchmarked as today's traffic).
 */
export const GENERATOR_INPUTS: readonly string[] = [
  ...localModules(fileURLToPath(import.meta.url)),
  ...[...root.files].sort(),
  createRequire(import.meta.url).resolve('protobufjs/package.json'),
];
const GENERATOR = inputsKey(GENERATOR_INPUTS);

/** The part of a cached set's name that names the spec; the day and the generator's key follow it. */
function specPrefix(spec: TrafficSpec): string {
  return `${spec.signal}-r${spec.requests}-s${spec.seed}-${spec.minItems}-${spec.maxItems}-`;
}

function specKey(spec: TrafficSpec): string {
  return `${specPrefix(spec)}d${TODAY_MS / DAY_MS}-${GENERATOR}`;
}

/**
 * Removes the sets of this spec cached for another day or generator (several MB each, never read
 * again): only names of the cache's own pattern, never another builder's temporary files.
 */
function removeOtherSets(dir: string, spec: TrafficSpec): void {
  const own = specKey(spec);
  const prefix = specPrefix(spec);
  const pattern = /^d\d+-[0-9a-z]+\.(?:bin|json)$/;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix) || name.startsWith(own + '.') || !pattern.test(name.slice(prefix.length))) continue;
    try {
      unlinkSync(join(dir, name));
    } catch (err) {
      // Another builder removed it first.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** A cached set, or undefined when it is not there (never written, or removed by a builder of other inputs while being read). */
function readCached(spec: TrafficSpec, base: string): TrafficRequest[] | undefined {
  try {
    const index = JSON.parse(readFileSync(base + '.json', 'utf8')) as { items: number; length: number }[];
    const all = readFileSync(base + '.bin');
    let at = 0;
    return index.map(({ items, length }) => {
      const bytes = new Uint8Array(all.subarray(at, at + length));
      at += length;
      return trafficRequest(spec.signal, bytes, items);
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** buildTraffic, cached as files in dir (building takes a second or two; every scenario needs it). */
export function loadTraffic(spec: TrafficSpec, dir?: string): TrafficRequest[] {
  if (!dir) return buildTraffic(spec);
  const base = join(dir, specKey(spec));
  const cached = readCached(spec, base);
  if (cached) return cached;
  const reqs = buildTraffic(spec);
  mkdirSync(dir, { recursive: true });
  // Written under temporary names and renamed: concurrent builders never see half a file.
  const tmp = `.${process.pid}.tmp`;
  writeFileSync(base + '.bin' + tmp, Buffer.concat(reqs.map((r) => r.bytes)));
  writeFileSync(base + '.json' + tmp, JSON.stringify(reqs.map((r) => ({ items: r.items, length: r.bytes.byteLength }))));
  renameSync(base + '.bin' + tmp, base + '.bin');
  renameSync(base + '.json' + tmp, base + '.json');
  removeOtherSets(dir, spec);
  return reqs;
}

/** Totals of a request set, for reports. */
export function trafficSummary(reqs: readonly TrafficRequest[]): { requests: number; items: number; bytes: number; meanItems: number; meanBytesPerItem: number } {
  let items = 0;
  let bytes = 0;
  for (const r of reqs) {
    items += r.items;
    bytes += r.bytes.byteLength;
  }
  return { requests: reqs.length, items, bytes, meanItems: items / reqs.length, meanBytesPerItem: bytes / items };
}
