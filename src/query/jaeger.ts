// Renders stored rows in the JSON shapes of Jaeger's query service (its UI model, internal/uimodel
// in jaegertracing/jaeger): what the Jaeger UI and Grafana's Jaeger data source read. OTLP fields
// map the way Jaeger's own OTLP translator maps them (span kind, status, scope and trace state
// become tags; events become logs; links become references, FOLLOWS_FROM unless their
// opentracing.ref_type says child_of); what has no place in
// Jaeger's model is named in the span's warnings instead of being dropped silently.
import type { AnyValue, KeyValue, SpanLink, SpanRow } from '../model/rows.ts';
import type { DependencyLink, Operation } from '../storage/backend.ts';
import { byStartThenId } from '../storage/query-helpers.ts';
import { anyValueToString } from '../model/rows.ts';
import { Deferred, JsonArray, JsonObject } from './json-stream.ts';

export type JaegerValueType = 'string' | 'bool' | 'int64' | 'float64' | 'binary';

export interface JaegerKeyValue {
  key: string;
  type: JaegerValueType;
  value: string | number | boolean;
}

export interface JaegerReference {
  refType: 'CHILD_OF' | 'FOLLOWS_FROM';
  traceID: string;
  spanID: string;
}

export interface JaegerLog {
  timestamp: number;
  fields: JaegerKeyValue[];
}

export interface JaegerProcess {
  serviceName: string;
  tags: JaegerKeyValue[];
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  flags?: number;
  operationName: string;
  references: JaegerReference[];
  /** Microseconds since the epoch. */
  startTime: number;
  /** Microseconds. */
  duration: number;
  tags: JaegerKeyValue[];
  logs: JaegerLog[];
  processID: string;
  warnings: string[] | null;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, JaegerProcess>;
  warnings: string[] | null;
}

export interface JaegerError {
  code: number;
  msg: string;
  traceID?: string;
}

/** Jaeger's response envelope: every /api answer has this shape. */
export interface JaegerResponse<T> {
  data: T;
  total: number;
  limit: number;
  offset: number;
  errors: JaegerError[] | null;
}

/** Jaeger's span kind words, indexed by OTLP SpanKind number. */
export const JAEGER_SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;

/** The OTLP SpanKind number of a Jaeger span kind word, or undefined when it is not one. */
export function spanKindNumber(word: string): number | undefined {
  const i = (JAEGER_SPAN_KINDS as readonly string[]).indexOf(word.toLowerCase());
  return i < 0 ? undefined : i;
}

/** Jaeger's envelope around data; total is the item count, as Jaeger reports it for listings. */
export function envelope<T>(data: T, total = 0): JaegerResponse<T> {
  return { data, total, limit: 0, offset: 0, errors: null };
}

/** Jaeger's error envelope. */
export function errorEnvelope(code: number, msg: string): JaegerResponse<null> {
  return { data: null, total: 0, limit: 0, offset: 0, errors: [{ code, msg }] };
}

/**
 * A trace id as Jaeger writes it: a 64-bit id (high half zero, as Jaeger and Zipkin clients make
 * them) is 16 hex digits, not 32 with a run of zeros. The Jaeger UI shows an id's first 7 digits;
 * parseTraceId reads either form back.
 */
export function jaegerTraceId(id: string): string {
  return id.length === 32 && id.startsWith('0000000000000000') ? id.slice(16) : id;
}

/** Nanoseconds → whole microseconds, as a JSON-safe number (exact to 2^53 µs, year 2255). */
function micros(ns: bigint): number {
  return Number(ns / 1000n);
}

/** One OTLP attribute as a Jaeger tag; `warn` receives what could not be kept exactly. */
function keyValue(key: string, v: AnyValue, warn: (w: string) => void): JaegerKeyValue {
  if ('stringValue' in v) return { key, type: 'string', value: v.stringValue };
  if ('boolValue' in v) return { key, type: 'bool', value: v.boolValue };
  if ('intValue' in v) {
    const n = Number(v.intValue);
    if (Number.isSafeInteger(n)) return { key, type: 'int64', value: n };
    // A JSON number past 2^53 would be rounded by every JavaScript reader, the Jaeger UI included.
    warn(`attribute ${key}: int64 ${v.intValue} is beyond 2^53, sent as a string`);
    return { key, type: 'string', value: v.intValue };
  }
  if ('doubleValue' in v) {
    if (typeof v.doubleValue === 'number') return { key, type: 'float64', value: v.doubleValue };
    warn(`attribute ${key}: ${v.doubleValue} has no JSON number, sent as a string`);
    return { key, type: 'string', value: v.doubleValue };
  }
  if ('bytesValue' in v) return { key, type: 'binary', value: v.bytesValue };
  // Arrays and maps: Jaeger's translator writes them as JSON text too.
  return { key, type: 'string', value: anyValueToString(v) };
}

function keyValues(kvs: readonly KeyValue[], warn: (w: string) => void): JaegerKeyValue[] {
  return kvs.map((kv) => keyValue(kv.key, kv.value, warn));
}

const STATUS_WORDS = ['', 'OK', 'ERROR'];

function spanTags(s: SpanRow, warn: (w: string) => void): JaegerKeyValue[] {
  const tags = keyValues(s.attributes, warn);
  const kind = JAEGER_SPAN_KINDS[s.kind];
  if (kind === undefined) warn(`span kind ${s.kind} is not an OTLP span kind`);
  else if (s.kind !== 0) tags.push({ key: 'span.kind', type: 'string', value: kind });
  if (s.statusCode === 1 || s.statusCode === 2) tags.push({ key: 'otel.status_code', type: 'string', value: STATUS_WORDS[s.statusCode]! });
  if (s.statusCode === 2) tags.push({ key: 'error', type: 'bool', value: true });
  if (s.statusMessage !== '') tags.push({ key: 'otel.status_description', type: 'string', value: s.statusMessage });
  if (s.scope.name !== '') tags.push({ key: 'otel.scope.name', type: 'string', value: s.scope.name });
  if (s.scope.version !== '') tags.push({ key: 'otel.scope.version', type: 'string', value: s.scope.version });
  if (s.traceState !== '') tags.push({ key: 'w3c.tracestate', type: 'string', value: s.traceState });
  if (s.scope.attributes.length > 0) warn(`instrumentation scope attributes (${s.scope.attributes.length}) have no place in Jaeger's model`);
  if (s.scope.droppedAttributesCount > 0) warn(`instrumentation scope: the sender dropped ${s.scope.droppedAttributesCount} attributes`);
  return tags;
}

/** The link attribute in which OTLP keeps a Jaeger / OpenTracing reference's type (the Collector's Jaeger receiver writes it). */
const REF_TYPE = 'opentracing.ref_type';

/** A link's reference type as Jaeger's translator reads it: CHILD_OF when opentracing.ref_type is child_of, else FOLLOWS_FROM. */
function linkRefType(l: SpanLink): JaegerReference['refType'] {
  const v = l.attributes.find((kv) => kv.key === REF_TYPE)?.value;
  return v !== undefined && 'stringValue' in v && v.stringValue === 'child_of' ? 'CHILD_OF' : 'FOLLOWS_FROM';
}

function spanJson(s: SpanRow, processID: string): JaegerSpan {
  const warnings: string[] = [];
  const warn = (w: string) => warnings.push(w);
  const references: JaegerReference[] = [];
  const parent: JaegerReference | undefined = s.parentSpanId === '' ? undefined : { refType: 'CHILD_OF', traceID: jaegerTraceId(s.traceId), spanID: s.parentSpanId };
  if (parent !== undefined) references.push(parent);
  for (const l of s.links) {
    const refType = linkRefType(l);
    // As Jaeger's translator: a link to the parent itself gives the parent reference its type
    // (a FOLLOWS_FROM parent from a Jaeger client) instead of referencing the parent twice.
    if (parent !== undefined && l.traceId === s.traceId && l.spanId === s.parentSpanId) parent.refType = refType;
    else references.push({ refType, traceID: jaegerTraceId(l.traceId), spanID: l.spanId });
    // opentracing.ref_type is carried by the reference's type.
    if (l.attributes.some((kv) => kv.key !== REF_TYPE) || l.traceState !== '') warn(`link to ${l.traceId}/${l.spanId}: its attributes and trace state have no place in a Jaeger reference`);
    if (l.droppedAttributesCount > 0) warn(`link to ${l.traceId}/${l.spanId}: the sender dropped ${l.droppedAttributesCount} attributes`);
  }
  const tags = spanTags(s, warn);
  const logs = s.events.map((e) => {
    if (e.droppedAttributesCount > 0) warn(`event ${e.name}: the sender dropped ${e.droppedAttributesCount} attributes`);
    const fields = keyValues(e.attributes, warn);
    // As Jaeger's translator: the name goes in an `event` field unless it is empty (OpenTracing
    // logs arrive unnamed) or an `event` attribute already holds that field.
    if (e.attributes.some((kv) => kv.key === 'event')) {
      if (e.name !== '') warn(`event ${e.name}: its attribute "event" is shown in place of its name`);
    } else if (e.name !== '') fields.unshift({ key: 'event', type: 'string', value: e.name });
    return { timestamp: micros(e.timeUnixNano), fields };
  });
  if (s.droppedAttributesCount > 0) warn(`the sender dropped ${s.droppedAttributesCount} attributes`);
  if (s.droppedEventsCount > 0) warn(`the sender dropped ${s.droppedEventsCount} events`);
  if (s.droppedLinksCount > 0) warn(`the sender dropped ${s.droppedLinksCount} links`);
  const span: JaegerSpan = {
    traceID: jaegerTraceId(s.traceId),
    spanID: s.spanId,
    operationName: s.name,
    references,
    startTime: micros(s.startTimeUnixNano),
    duration: micros(s.durationNano),
    tags,
    logs,
    processID,
    warnings: warnings.length > 0 ? warnings : null,
  };
  // W3C trace flags live in the low byte; Jaeger omits flags when zero.
  const flags = s.flags & 0xff;
  if (flags !== 0) span.flags = flags;
  return span;
}

/** A trace's spans in Jaeger's order: by start time, then span id. */
function byStart(spans: readonly SpanRow[]): SpanRow[] {
  return [...spans].sort(byStartThenId);
}

/** Spans (sorted) as Jaeger spans, one at a time, filling processes and the trace's warnings as their processes are met. */
function* jaegerSpans(sorted: readonly SpanRow[], processes: Record<string, JaegerProcess>, traceWarnings: string[]): Generator<JaegerSpan> {
  const processIds = new Map<string, string>();
  for (const s of sorted) {
    // The dropped count too: a resource of the same attributes that dropped some is a process of its own, whose warning names them.
    const key = JSON.stringify([s.serviceName, s.resource.attributes, s.resource.droppedAttributesCount]);
    let pid = processIds.get(key);
    const processWarnings: string[] = [];
    if (pid === undefined) {
      pid = `p${processIds.size + 1}`;
      processIds.set(key, pid);
      const warn = (w: string) => processWarnings.push(`process ${pid}: ${w}`);
      // service.name is the process's serviceName; Jaeger does not repeat it as a tag.
      processes[pid] = { serviceName: s.serviceName, tags: keyValues(s.resource.attributes.filter((kv) => kv.key !== 'service.name'), warn) };
      if (s.resource.droppedAttributesCount > 0) warn(`the sender dropped ${s.resource.droppedAttributesCount} attributes`);
    }
    const span = spanJson(s, pid);
    // A process's warnings are shown on its first span too: the Jaeger UI and Grafana read no trace's own.
    if (processWarnings.length > 0) {
      traceWarnings.push(...processWarnings);
      span.warnings = [...processWarnings, ...(span.warnings ?? [])];
    }
    yield span;
  }
}

/** Renders the spans of one trace (any order) as a Jaeger trace: spans by start time, processes deduplicated as p1, p2, …. */
export function toJaegerTrace(spans: readonly SpanRow[]): JaegerTrace {
  const sorted = byStart(spans);
  const processes: Record<string, JaegerProcess> = {};
  const traceWarnings: string[] = [];
  const out = [...jaegerSpans(sorted, processes, traceWarnings)];
  return { traceID: jaegerTraceId(sorted[0]?.traceId ?? ''), spans: out, processes, warnings: traceWarnings.length > 0 ? traceWarnings : null };
}

/**
 * toJaegerTrace(spans) as the writer makes it (sendJsonSliced): a span at a time, so a trace of
 * 20,000 spans does not hold the event loop in one go; its JSON text is toJaegerTrace's, byte for
 * byte, but for warnings about the whole trace: `first` goes before the trace's warnings and
 * `last` after them, both in the trace's warnings and in those of its first span (the earliest
 * kept), because neither the Jaeger UI (transformTraceData) nor Grafana's Jaeger data source reads
 * a trace's own warnings, only its spans': a trace cut short would otherwise show as if whole.
 */
export function slicedJaegerTrace(spans: readonly SpanRow[], first?: string, last?: string): JsonObject {
  const sorted = byStart(spans);
  const processes: Record<string, JaegerProcess> = {};
  const traceWarnings: string[] = [];
  const around = (list: string[] | null): string[] | null => (first === undefined && last === undefined ? list : [...(first === undefined ? [] : [first]), ...(list ?? []), ...(last === undefined ? [] : [last])]);
  function* spansOut(): Generator<JaegerSpan> {
    let isFirst = true;
    for (const span of jaegerSpans(sorted, processes, traceWarnings)) {
      if (isFirst) span.warnings = around(span.warnings);
      isFirst = false;
      yield span;
    }
  }
  return new JsonObject([
    ['traceID', jaegerTraceId(sorted[0]?.traceId ?? '')],
    ['spans', new JsonArray(spansOut())],
    ['processes', new Deferred(() => processes)],
    ['warnings', new Deferred(() => around(traceWarnings.length > 0 ? traceWarnings : null))],
  ]);
}

/** Operations as /api/operations returns them. */
export function toJaegerOperations(ops: readonly Operation[]): { name: string; spanKind: string }[] {
  return ops.map((o) => ({ name: o.name, spanKind: JAEGER_SPAN_KINDS[o.kind] ?? 'unspecified' }));
}

/** Dependency links as /api/dependencies returns them. */
export function toJaegerDependencies(links: readonly DependencyLink[]): { parent: string; child: string; callCount: number }[] {
  return links.map((l) => ({ parent: l.parent, child: l.child, callCount: l.callCount }));
}
