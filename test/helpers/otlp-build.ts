// Shared by the decode-*.test.ts files: the real .proto files loaded with protobufjs, a small
// model of OTLP requests with fast-check generators, and three independent renderings of a model
// (protobufjs message, OTLP/JSON, and the rows a correct decoder must produce).
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import Long from 'long';
import protobuf from 'protobufjs';
import { WireWriter } from '../../src/pipeline/decode/index.ts';
import type { AnyValue, KeyValue, LogRow, ResourceInfo, ScopeInfo, SpanRow } from '../../src/model/rows.ts';

export const PROTO_ROOT = fileURLToPath(new URL('../../proto/', import.meta.url));

/** A protobufjs root over our proto/ tree, optionally with the given files' messages extended. */
export function loadProtoRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : PROTO_ROOT + target);
  root.loadSync(
    ['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'opentelemetry/proto/collector/logs/v1/logs_service.proto'],
    { keepCase: false },
  );
  root.resolveAll();
  return root;
}

const root = loadProtoRoot();
export const TraceRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
export const LogsRequest = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');

export const LIMITS = { maxNestingDepth: 100 };

// ---------------------------------------------------------------------------------------------
// The model.

export type MValue =
  | { kind: 'string'; v: string }
  | { kind: 'bool'; v: boolean }
  | { kind: 'int'; v: bigint }
  | { kind: 'double'; v: number }
  | { kind: 'bytes'; v: Uint8Array }
  | { kind: 'array'; v: MValue[] }
  | { kind: 'kvlist'; v: MKeyValue[] }
  | { kind: 'empty' };

export interface MKeyValue {
  key: string;
  value: MValue;
}

export interface MResource {
  attributes: MKeyValue[];
  dropped: number;
  schemaUrl: string;
}

export interface MScope {
  name: string;
  version: string;
  attributes: MKeyValue[];
  dropped: number;
  schemaUrl: string;
}

export interface MEvent {
  time: bigint;
  name: string;
  attributes: MKeyValue[];
  dropped: number;
}

export interface MLink {
  traceId: Uint8Array;
  spanId: Uint8Array;
  traceState: string;
  flags: number;
  attributes: MKeyValue[];
  dropped: number;
}

export interface MSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId: Uint8Array;
  traceState: string;
  flags: number;
  name: string;
  kind: number;
  start: bigint;
  end: bigint;
  attributes: MKeyValue[];
  dropped: number;
  events: MEvent[];
  droppedEvents: number;
  links: MLink[];
  droppedLinks: number;
  statusCode: number;
  statusMessage: string;
}

export interface MLog {
  time: bigint;
  observed: bigint;
  severityNumber: number;
  severityText: string;
  body: MValue | undefined;
  attributes: MKeyValue[];
  dropped: number;
  flags: number;
  traceId: Uint8Array;
  spanId: Uint8Array;
  eventName: string;
}

export interface MTraces {
  resources: { resource: MResource; scopes: { scope: MScope; spans: MSpan[] }[] }[];
}

export interface MLogs {
  resources: { resource: MResource; scopes: { scope: MScope; logs: MLog[] }[] }[];
}

// ---------------------------------------------------------------------------------------------
// Generators.

const U32 = fc.nat({ max: 0xffffffff });
// Times up to int64 nanoseconds (2262): later ones are rejected by design (see MAX_TIME_NS).
const U64 = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }), fc.bigInt({ min: 1n << 53n, max: (1n << 53n) + 1000n }), fc.constant(0n));
const I64 = fc.oneof(
  fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
  fc.bigInt({ min: -(1n << 53n) - 100n, max: -(1n << 53n) + 100n }),
  fc.bigInt({ min: (1n << 53n) - 100n, max: (1n << 53n) + 100n }),
  fc.constantFrom(0n, -1n, 1n, -(1n << 63n), (1n << 63n) - 1n, 1023n, 1024n),
);
const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ maxLength: 12 }), fc.constantFrom('', 'http.method', 'GET', '€uro ✓', 'x'.repeat(33)));
const key = fc.oneof(fc.string({ maxLength: 16 }), fc.constantFrom('__proto__', 'constructor', 'prototype', 'service.name', 'toString', "k'; DROP TABLE spans; --"));
const nonZeroBytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).filter((b) => b.some((x) => x !== 0));

/** AnyValues of every kind, arrays and kvlists nested up to `depth` containers. */
export function arbValue(depth: number): fc.Arbitrary<MValue> {
  const scalars: fc.Arbitrary<MValue>[] = [
    text.map((v) => ({ kind: 'string' as const, v })),
    fc.boolean().map((v) => ({ kind: 'bool' as const, v })),
    I64.map((v) => ({ kind: 'int' as const, v })),
    fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 1e300, 5e-324)).map((v) => ({ kind: 'double' as const, v })),
    fc.uint8Array({ maxLength: 20 }).map((v) => ({ kind: 'bytes' as const, v })),
    fc.constant({ kind: 'empty' as const }),
  ];
  if (depth <= 0) return fc.oneof(...scalars);
  return fc.oneof(
    { arbitrary: fc.oneof(...scalars), weight: 4 },
    { arbitrary: fc.array(arbValue(depth - 1), { maxLength: 3 }).map((v) => ({ kind: 'array' as const, v })), weight: 1 },
    { arbitrary: arbKeyValues(depth - 1, 3).map((v) => ({ kind: 'kvlist' as const, v })), weight: 1 },
  );
}

/** Attribute lists with unique keys (duplicates are tested on their own). */
export function arbKeyValues(depth = 2, maxLength = 6): fc.Arbitrary<MKeyValue[]> {
  return fc.uniqueArray(fc.record({ key, value: arbValue(depth) }), { maxLength, selector: (kv) => kv.key });
}

const arbResource: fc.Arbitrary<MResource> = fc.record({
  attributes: fc.oneof(
    arbKeyValues(1, 4),
    text.map((s) => [{ key: 'service.name', value: { kind: 'string' as const, v: s } }]),
  ),
  dropped: U32,
  schemaUrl: text,
});

const arbScope: fc.Arbitrary<MScope> = fc.record({ name: text, version: text, attributes: arbKeyValues(1, 3), dropped: U32, schemaUrl: text });

export const arbSpan: fc.Arbitrary<MSpan> = fc.record({
  traceId: nonZeroBytes(16),
  spanId: nonZeroBytes(8),
  parentSpanId: fc.oneof(fc.constant(new Uint8Array(0)), nonZeroBytes(8)),
  traceState: text,
  flags: U32,
  name: text,
  kind: fc.nat({ max: 5 }),
  start: U64,
  end: U64,
  attributes: arbKeyValues(),
  dropped: U32,
  events: fc.array(fc.record({ time: U64, name: text, attributes: arbKeyValues(1, 3), dropped: U32 }), { maxLength: 2 }),
  droppedEvents: U32,
  links: fc.array(
    fc.record({ traceId: nonZeroBytes(16), spanId: nonZeroBytes(8), traceState: text, flags: U32, attributes: arbKeyValues(1, 2), dropped: U32 }),
    { maxLength: 2 },
  ),
  droppedLinks: U32,
  statusCode: fc.nat({ max: 2 }),
  statusMessage: text,
});

export const arbTraces: fc.Arbitrary<MTraces> = fc.record({
  resources: fc.array(
    fc.record({ resource: arbResource, scopes: fc.array(fc.record({ scope: arbScope, spans: fc.array(arbSpan, { maxLength: 4 }) }), { maxLength: 3 }) }),
    { maxLength: 3 },
  ),
});

export const arbLog: fc.Arbitrary<MLog> = fc.record({
  time: U64,
  observed: U64,
  severityNumber: fc.nat({ max: 24 }),
  severityText: text,
  body: fc.option(arbValue(3), { nil: undefined }),
  attributes: arbKeyValues(),
  dropped: U32,
  flags: U32,
  traceId: fc.oneof(fc.constant(new Uint8Array(0)), nonZeroBytes(16)),
  spanId: fc.oneof(fc.constant(new Uint8Array(0)), nonZeroBytes(8)),
  eventName: text,
});

export const arbLogs: fc.Arbitrary<MLogs> = fc.record({
  resources: fc.array(
    fc.record({ resource: arbResource, scopes: fc.array(fc.record({ scope: arbScope, logs: fc.array(arbLog, { maxLength: 4 }) }), { maxLength: 3 }) }),
    { maxLength: 3 },
  ),
});

// ---------------------------------------------------------------------------------------------
// Rendering 1: protobufjs objects (for fromObject + encode).

const long = (v: bigint, unsigned: boolean) => {
  const u = BigInt.asUintN(64, v);
  return Long.fromBits(Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0, unsigned);
};

export function pbValue(v: MValue): Record<string, unknown> {
  switch (v.kind) {
    case 'string':
      return { stringValue: v.v };
    case 'bool':
      return { boolValue: v.v };
    case 'int':
      return { intValue: long(v.v, false) };
    case 'double':
      return { doubleValue: v.v };
    case 'bytes':
      return { bytesValue: v.v };
    case 'array':
      return { arrayValue: { values: v.v.map(pbValue) } };
    case 'kvlist':
      return { kvlistValue: { values: v.v.map(pbKeyValue) } };
    case 'empty':
      return {};
  }
}

const pbKeyValue = (kv: MKeyValue) => ({ key: kv.key, value: pbValue(kv.value) });
const pbResource = (r: MResource) => ({ attributes: r.attributes.map(pbKeyValue), droppedAttributesCount: r.dropped });
const pbScope = (s: MScope) => ({ name: s.name, version: s.version, attributes: s.attributes.map(pbKeyValue), droppedAttributesCount: s.dropped });

export function pbSpan(s: MSpan): Record<string, unknown> {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId,
    traceState: s.traceState,
    flags: s.flags,
    name: s.name,
    kind: s.kind,
    startTimeUnixNano: long(s.start, true),
    endTimeUnixNano: long(s.end, true),
    attributes: s.attributes.map(pbKeyValue),
    droppedAttributesCount: s.dropped,
    events: s.events.map((e) => ({ timeUnixNano: long(e.time, true), name: e.name, attributes: e.attributes.map(pbKeyValue), droppedAttributesCount: e.dropped })),
    droppedEventsCount: s.droppedEvents,
    links: s.links.map((l) => ({
      traceId: l.traceId,
      spanId: l.spanId,
      traceState: l.traceState,
      flags: l.flags,
      attributes: l.attributes.map(pbKeyValue),
      droppedAttributesCount: l.dropped,
    })),
    droppedLinksCount: s.droppedLinks,
    status: { code: s.statusCode, message: s.statusMessage },
  };
}

export function pbLog(l: MLog): Record<string, unknown> {
  return {
    timeUnixNano: long(l.time, true),
    observedTimeUnixNano: long(l.observed, true),
    severityNumber: l.severityNumber,
    severityText: l.severityText,
    ...(l.body === undefined ? {} : { body: pbValue(l.body) }),
    attributes: l.attributes.map(pbKeyValue),
    droppedAttributesCount: l.dropped,
    flags: l.flags,
    traceId: l.traceId,
    spanId: l.spanId,
    eventName: l.eventName,
  };
}

export function encodeTraces(m: MTraces): Uint8Array {
  const obj = {
    resourceSpans: m.resources.map((r) => ({
      resource: pbResource(r.resource),
      schemaUrl: r.resource.schemaUrl,
      scopeSpans: r.scopes.map((s) => ({ scope: pbScope(s.scope), schemaUrl: s.scope.schemaUrl, spans: s.spans.map(pbSpan) })),
    })),
  };
  return TraceRequest.encode(TraceRequest.fromObject(obj)).finish();
}

export function encodeLogs(m: MLogs): Uint8Array {
  const obj = {
    resourceLogs: m.resources.map((r) => ({
      resource: pbResource(r.resource),
      schemaUrl: r.resource.schemaUrl,
      scopeLogs: r.scopes.map((s) => ({ scope: pbScope(s.scope), schemaUrl: s.scope.schemaUrl, logRecords: s.logs.map(pbLog) })),
    })),
  };
  return LogsRequest.encode(LogsRequest.fromObject(obj)).finish();
}

// ---------------------------------------------------------------------------------------------
// Rendering 2: OTLP/JSON, with the variations senders use.

export interface JsonStyle {
  /** snake_case keys instead of lowerCamelCase. */
  snake: boolean;
  /** int64 and fixed64 as JSON numbers (exact digits) instead of strings. */
  numbers: boolean;
  /** Enums by name instead of number. */
  enumNames: boolean;
  /** Hex ids in upper case. */
  upperHex: boolean;
}

const SPAN_KIND_NAMES = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
const STATUS_NAMES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];
const SEVERITY_NAMES = ['UNSPECIFIED', 'TRACE', 'TRACE2', 'TRACE3', 'TRACE4', 'DEBUG', 'DEBUG2', 'DEBUG3', 'DEBUG4', 'INFO', 'INFO2', 'INFO3', 'INFO4', 'WARN', 'WARN2', 'WARN3', 'WARN4', 'ERROR', 'ERROR2', 'ERROR3', 'ERROR4', 'FATAL', 'FATAL2', 'FATAL3', 'FATAL4'].map((n) => 'SEVERITY_NUMBER_' + n);

/** A marker for an integer that must appear in the JSON text as a bare number literal. */
class RawInt {
  readonly digits: string;
  constructor(digits: string) {
    this.digits = digits;
  }
}

/** OTLP/JSON text of a model; integers requested as numbers are written as exact literals. */
export function toJsonText(value: unknown): string {
  const marks: string[] = [];
  const s = JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof RawInt) {
      marks.push(v.digits);
      return `\u0000RAW${marks.length - 1}\u0000`;
    }
    return v;
  });
  return s.replace(/"\\u0000RAW(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)]);
}

export function jsonTraces(m: MTraces, st: JsonStyle): Record<string, unknown> {
  const k = keyStyle(st);
  return {
    [k('resourceSpans')]: m.resources.map((r) => ({
      [k('resource')]: jsonResource(r.resource, st),
      [k('schemaUrl')]: r.resource.schemaUrl,
      [k('scopeSpans')]: r.scopes.map((s) => ({
        [k('scope')]: jsonScope(s.scope, st),
        [k('schemaUrl')]: s.scope.schemaUrl,
        [k('spans')]: s.spans.map((sp) => jsonSpan(sp, st)),
      })),
    })),
  };
}

export function jsonLogs(m: MLogs, st: JsonStyle): Record<string, unknown> {
  const k = keyStyle(st);
  return {
    [k('resourceLogs')]: m.resources.map((r) => ({
      [k('resource')]: jsonResource(r.resource, st),
      [k('schemaUrl')]: r.resource.schemaUrl,
      [k('scopeLogs')]: r.scopes.map((s) => ({
        [k('scope')]: jsonScope(s.scope, st),
        [k('schemaUrl')]: s.scope.schemaUrl,
        [k('logRecords')]: s.logs.map((l) => jsonLog(l, st)),
      })),
    })),
  };
}

function keyStyle(st: JsonStyle): (camel: string) => string {
  return st.snake ? (c) => c.replace(/[A-Z]/g, (ch) => '_' + ch.toLowerCase()) : (c) => c;
}

function int(v: bigint, st: JsonStyle): string | RawInt {
  return st.numbers ? new RawInt(v.toString()) : v.toString();
}

function hexOf(b: Uint8Array, st: JsonStyle): string {
  const h = Buffer.from(b).toString('hex');
  return st.upperHex ? h.toUpperCase() : h;
}

function jsonValue(v: MValue, st: JsonStyle): Record<string, unknown> {
  const k = keyStyle(st);
  switch (v.kind) {
    case 'string':
      return { [k('stringValue')]: v.v };
    case 'bool':
      return { [k('boolValue')]: v.v };
    case 'int':
      return { [k('intValue')]: int(v.v, st) };
    case 'double':
      // JSON.stringify writes -0 as 0; the literal -0 is valid JSON and parses back to -0.
      return { [k('doubleValue')]: Object.is(v.v, -0) ? new RawInt('-0') : Number.isFinite(v.v) ? v.v : String(v.v) };
    case 'bytes':
      return { [k('bytesValue')]: Buffer.from(v.v).toString('base64') };
    case 'array':
      return { [k('arrayValue')]: { values: v.v.map((x) => jsonValue(x, st)) } };
    case 'kvlist':
      return { [k('kvlistValue')]: { values: v.v.map((kv) => jsonKeyValue(kv, st)) } };
    case 'empty':
      return {};
  }
}

const jsonKeyValue = (kv: MKeyValue, st: JsonStyle) => ({ key: kv.key, value: jsonValue(kv.value, st) });
const jsonAttrs = (a: MKeyValue[], st: JsonStyle) => a.map((kv) => jsonKeyValue(kv, st));

function jsonResource(r: MResource, st: JsonStyle) {
  const k = keyStyle(st);
  return { attributes: jsonAttrs(r.attributes, st), [k('droppedAttributesCount')]: r.dropped };
}

function jsonScope(s: MScope, st: JsonStyle) {
  const k = keyStyle(st);
  return { name: s.name, version: s.version, attributes: jsonAttrs(s.attributes, st), [k('droppedAttributesCount')]: s.dropped };
}

function jsonSpan(s: MSpan, st: JsonStyle) {
  const k = keyStyle(st);
  return {
    [k('traceId')]: hexOf(s.traceId, st),
    [k('spanId')]: hexOf(s.spanId, st),
    [k('parentSpanId')]: hexOf(s.parentSpanId, st),
    [k('traceState')]: s.traceState,
    flags: s.flags,
    name: s.name,
    kind: st.enumNames ? SPAN_KIND_NAMES[s.kind] : s.kind,
    [k('startTimeUnixNano')]: int(s.start, st),
    [k('endTimeUnixNano')]: int(s.end, st),
    attributes: jsonAttrs(s.attributes, st),
    [k('droppedAttributesCount')]: s.dropped,
    events: s.events.map((e) => ({ [k('timeUnixNano')]: int(e.time, st), name: e.name, attributes: jsonAttrs(e.attributes, st), [k('droppedAttributesCount')]: e.dropped })),
    [k('droppedEventsCount')]: s.droppedEvents,
    links: s.links.map((l) => ({
      [k('traceId')]: hexOf(l.traceId, st),
      [k('spanId')]: hexOf(l.spanId, st),
      [k('traceState')]: l.traceState,
      flags: l.flags,
      attributes: jsonAttrs(l.attributes, st),
      [k('droppedAttributesCount')]: l.dropped,
    })),
    [k('droppedLinksCount')]: s.droppedLinks,
    status: { code: st.enumNames ? STATUS_NAMES[s.statusCode] : s.statusCode, message: s.statusMessage },
  };
}

function jsonLog(l: MLog, st: JsonStyle) {
  const k = keyStyle(st);
  return {
    [k('timeUnixNano')]: int(l.time, st),
    [k('observedTimeUnixNano')]: int(l.observed, st),
    [k('severityNumber')]: st.enumNames ? SEVERITY_NAMES[l.severityNumber] : l.severityNumber,
    [k('severityText')]: l.severityText,
    ...(l.body === undefined ? {} : { body: jsonValue(l.body, st) }),
    attributes: jsonAttrs(l.attributes, st),
    [k('droppedAttributesCount')]: l.dropped,
    flags: l.flags,
    [k('traceId')]: hexOf(l.traceId, st),
    [k('spanId')]: hexOf(l.spanId, st),
    [k('eventName')]: l.eventName,
  };
}

export const arbJsonStyle: fc.Arbitrary<JsonStyle> = fc.record({ snake: fc.boolean(), numbers: fc.boolean(), enumNames: fc.boolean(), upperHex: fc.boolean() });

// ---------------------------------------------------------------------------------------------
// Rendering 3: the rows a correct decoder produces.

export function rowValue(v: MValue): AnyValue {
  switch (v.kind) {
    case 'string':
      return { stringValue: v.v };
    case 'bool':
      return { boolValue: v.v };
    case 'int':
      return { intValue: v.v.toString() };
    case 'double':
      return { doubleValue: Number.isNaN(v.v) ? 'NaN' : v.v === Infinity ? 'Infinity' : v.v === -Infinity ? '-Infinity' : v.v };
    case 'bytes':
      return { bytesValue: Buffer.from(v.v).toString('base64') };
    case 'array':
      return { arrayValue: { values: v.v.map(rowValue) } };
    case 'kvlist':
      return { kvlistValue: { values: rowAttrs(v.v) } };
    case 'empty':
      return {};
  }
}

export const rowAttrs = (a: MKeyValue[]): KeyValue[] => a.map((kv) => ({ key: kv.key, value: rowValue(kv.value) }));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function rowResource(r: MResource): ResourceInfo {
  return { attributes: rowAttrs(r.attributes), droppedAttributesCount: r.dropped, schemaUrl: r.schemaUrl };
}

function rowScope(s: MScope): ScopeInfo {
  return { name: s.name, version: s.version, attributes: rowAttrs(s.attributes), droppedAttributesCount: s.dropped, schemaUrl: s.schemaUrl };
}

function serviceName(r: MResource): string {
  const kv = r.attributes.find((a) => a.key === 'service.name');
  return kv && kv.value.kind === 'string' ? kv.value.v : 'unknown_service';
}

export function expectedSpanRows(m: MTraces): SpanRow[] {
  return m.resources.flatMap((r) =>
    r.scopes.flatMap((s) =>
      s.spans.map((sp) => ({
        traceId: hex(sp.traceId),
        spanId: hex(sp.spanId),
        parentSpanId: hex(sp.parentSpanId),
        traceState: sp.traceState,
        flags: sp.flags,
        name: sp.name,
        kind: sp.kind,
        startTimeUnixNano: sp.start,
        endTimeUnixNano: sp.end,
        durationNano: sp.end > sp.start ? sp.end - sp.start : 0n,
        statusCode: sp.statusCode,
        statusMessage: sp.statusMessage,
        serviceName: serviceName(r.resource),
        resource: rowResource(r.resource),
        scope: rowScope(s.scope),
        attributes: rowAttrs(sp.attributes),
        droppedAttributesCount: sp.dropped,
        events: sp.events.map((e) => ({ timeUnixNano: e.time, name: e.name, attributes: rowAttrs(e.attributes), droppedAttributesCount: e.dropped })),
        droppedEventsCount: sp.droppedEvents,
        links: sp.links.map((l) => ({
          traceId: hex(l.traceId),
          spanId: hex(l.spanId),
          traceState: l.traceState,
          flags: l.flags,
          attributes: rowAttrs(l.attributes),
          droppedAttributesCount: l.dropped,
        })),
        droppedLinksCount: sp.droppedLinks,
      })),
    ),
  );
}

export function expectedLogRows(m: MLogs): LogRow[] {
  return m.resources.flatMap((r) =>
    r.scopes.flatMap((s) =>
      s.logs.map((l) => ({
        timeUnixNano: l.time,
        observedTimeUnixNano: l.observed,
        traceId: hex(l.traceId),
        spanId: hex(l.spanId),
        flags: l.flags,
        severityNumber: l.severityNumber,
        severityText: l.severityText,
        body: l.body === undefined ? {} : rowValue(l.body),
        eventName: l.eventName,
        serviceName: serviceName(r.resource),
        resource: rowResource(r.resource),
        scope: rowScope(s.scope),
        attributes: rowAttrs(l.attributes),
        droppedAttributesCount: l.dropped,
      })),
    ),
  );
}

/** A model span with every field set to a recognizable value; override what a test needs. */
export function sampleSpan(o: Partial<MSpan> = {}): MSpan {
  return {
    traceId: Buffer.from('5b8efff798038103d269b633813fc60c', 'hex'),
    spanId: Buffer.from('eee19b7ec3c1b174', 'hex'),
    parentSpanId: Buffer.from('eee19b7ec3c1b173', 'hex'),
    traceState: 'congo=t61rcWkgMzE',
    flags: 0x301,
    name: 'GET /api/orders/{id}',
    kind: 2,
    start: 1_700_000_000_000_000_001n,
    end: 1_700_000_000_250_000_003n,
    attributes: [
      { key: 'http.method', value: { kind: 'string', v: 'GET' } },
      { key: 'http.status_code', value: { kind: 'int', v: 200n } },
    ],
    dropped: 1,
    events: [{ time: 1_700_000_000_100_000_000n, name: 'exception', attributes: [{ key: 'exception.type', value: { kind: 'string', v: 'Error' } }], dropped: 2 }],
    droppedEvents: 3,
    links: [
      {
        traceId: Buffer.from('0af7651916cd43dd8448eb211c80319c', 'hex'),
        spanId: Buffer.from('b7ad6b7169203331', 'hex'),
        traceState: 'rojo=00f067aa0ba902b7',
        flags: 0x101,
        attributes: [{ key: 'link.kind', value: { kind: 'string', v: 'follows' } }],
        dropped: 4,
      },
    ],
    droppedLinks: 5,
    statusCode: 2,
    statusMessage: 'upstream timed out',
    ...o,
  };
}

export function sampleResource(o: Partial<MResource> = {}): MResource {
  return {
    attributes: [
      { key: 'service.name', value: { kind: 'string', v: 'checkout' } },
      { key: 'host.name', value: { kind: 'string', v: 'node-1' } },
    ],
    dropped: 6,
    schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
    ...o,
  };
}

export function sampleScope(o: Partial<MScope> = {}): MScope {
  return {
    name: '@opentelemetry/instrumentation-http',
    version: '0.57.0',
    attributes: [{ key: 'scope.attr', value: { kind: 'bool', v: true } }],
    dropped: 7,
    schemaUrl: 'https://opentelemetry.io/schemas/1.25.0',
    ...o,
  };
}

export function sampleLog(o: Partial<MLog> = {}): MLog {
  return {
    time: 1_700_000_000_000_000_001n,
    observed: 1_700_000_000_000_000_002n,
    severityNumber: 17,
    severityText: 'ERROR',
    body: { kind: 'string', v: 'payment failed' },
    attributes: [{ key: 'user.id', value: { kind: 'int', v: 42n } }],
    dropped: 1,
    flags: 1,
    traceId: Buffer.from('5b8efff798038103d269b633813fc60c', 'hex'),
    spanId: Buffer.from('eee19b7ec3c1b174', 'hex'),
    eventName: 'payment.failed',
    ...o,
  };
}

/** A request with one resource, one scope and the given spans. */
export function tracesOf(spans: MSpan[], resource = sampleResource(), scope = sampleScope()): MTraces {
  return { resources: [{ resource, scopes: [{ scope, spans }] }] };
}

export function logsOf(logs: MLog[], resource = sampleResource(), scope = sampleScope()): MLogs {
  return { resources: [{ resource, scopes: [{ scope, logs }] }] };
}

/** An AnyValue that nests `levels` arrayValues around a string. */
export function nestedArray(levels: number): MValue {
  let v: MValue = { kind: 'string', v: 'bottom' };
  for (let i = 0; i < levels; i++) v = { kind: 'array', v: [v] };
  return v;
}

// ---------------------------------------------------------------------------------------------
// Rendering 4: our own WireWriter, for what protobufjs refuses to build (values nested deeper
// than its fromObject recursion limit).

function wireValue(w: WireWriter, v: MValue): void {
  switch (v.kind) {
    case 'string':
      w.stringField(1, v.v);
      return;
    case 'bool':
      w.varintField(2, v.v);
      return;
    case 'int':
      w.varintField(3, v.v);
      return;
    case 'double':
      w.doubleField(4, v.v);
      return;
    case 'array':
      w.fork();
      for (const x of v.v) {
        wireValue(w.fork(), x);
        w.join(1);
      }
      w.join(5);
      return;
    case 'kvlist':
      w.fork();
      for (const kv of v.v) wireKeyValue(w, kv, 1);
      w.join(6);
      return;
    case 'bytes':
      w.bytesField(7, v.v);
      return;
    case 'empty':
      return;
  }
}

function wireKeyValue(w: WireWriter, kv: MKeyValue, field: number): void {
  w.fork().stringField(1, kv.key).fork();
  wireValue(w, kv.value);
  w.join(2).join(field);
}

function wireResourceScope(w: WireWriter, resource: MResource, scope: MScope | undefined): void {
  if (scope) {
    w.fork().stringField(1, scope.name).stringField(2, scope.version);
    for (const kv of scope.attributes) wireKeyValue(w, kv, 3);
    w.varintField(4, scope.dropped).join(1);
    return;
  }
  w.fork();
  for (const kv of resource.attributes) wireKeyValue(w, kv, 1);
  w.varintField(2, resource.dropped).join(1);
}

/** The same bytes protobufjs would produce for a traces model, without its depth limit. */
export function encodeTracesWire(m: MTraces): Uint8Array {
  const w = new WireWriter();
  for (const r of m.resources) {
    w.fork();
    wireResourceScope(w, r.resource, undefined);
    for (const s of r.scopes) {
      w.fork();
      wireResourceScope(w, r.resource, s.scope);
      for (const sp of s.spans) {
        w.fork().bytesField(1, sp.traceId).bytesField(2, sp.spanId).stringField(3, sp.traceState).bytesField(4, sp.parentSpanId);
        w.stringField(5, sp.name).varintField(6, sp.kind).fixed64Field(7, sp.start).fixed64Field(8, sp.end);
        for (const kv of sp.attributes) wireKeyValue(w, kv, 9);
        w.varintField(10, sp.dropped);
        for (const e of sp.events) {
          w.fork().fixed64Field(1, e.time).stringField(2, e.name);
          for (const kv of e.attributes) wireKeyValue(w, kv, 3);
          w.varintField(4, e.dropped).join(11);
        }
        w.varintField(12, sp.droppedEvents);
        for (const l of sp.links) {
          w.fork().bytesField(1, l.traceId).bytesField(2, l.spanId).stringField(3, l.traceState);
          for (const kv of l.attributes) wireKeyValue(w, kv, 4);
          w.varintField(5, l.dropped).fixed32Field(6, l.flags).join(13);
        }
        w.varintField(14, sp.droppedLinks);
        w.fork().stringField(2, sp.statusMessage).varintField(3, sp.statusCode).join(15);
        w.fixed32Field(16, sp.flags).join(2);
      }
      w.stringField(3, s.scope.schemaUrl).join(2);
    }
    w.stringField(3, r.resource.schemaUrl).join(1);
  }
  return w.finish();
}

/** The same bytes protobufjs would produce for a logs model, without its depth limit. */
export function encodeLogsWire(m: MLogs): Uint8Array {
  const w = new WireWriter();
  for (const r of m.resources) {
    w.fork();
    wireResourceScope(w, r.resource, undefined);
    for (const s of r.scopes) {
      w.fork();
      wireResourceScope(w, r.resource, s.scope);
      for (const l of s.logs) {
        w.fork().fixed64Field(1, l.time).varintField(2, l.severityNumber).stringField(3, l.severityText);
        if (l.body !== undefined) {
          w.fork();
          wireValue(w, l.body);
          w.join(5);
        }
        for (const kv of l.attributes) wireKeyValue(w, kv, 6);
        w.varintField(7, l.dropped).fixed32Field(8, l.flags).bytesField(9, l.traceId).bytesField(10, l.spanId);
        w.fixed64Field(11, l.observed).stringField(12, l.eventName).join(2);
      }
      w.stringField(3, s.scope.schemaUrl).join(2);
    }
    w.stringField(3, r.resource.schemaUrl).join(1);
  }
  return w.finish();
}

const EDGE_ID = '"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708"';
const EDGE_DEEP = '{"arrayValue":{"values":['.repeat(150) + '{}' + ']}}'.repeat(150);

/** OTLP/JSON spans at the edges: duplicate keys, bad ids, deep values, wrong types, big numbers, lone surrogates, -0. */
export const JSON_EDGE_SPANS: readonly string[] = [
  `{${EDGE_ID},"name":"a\ud800b","attributes":[{"key":"k","value":{"intValue":1}},{"key":"k","value":{"doubleValue":"NaN"}},{"key":"x"}]}`,
  `{${EDGE_ID},"startTimeUnixNano":18446744073709551615,"endTimeUnixNano":9223372036854775807}`,
  `{${EDGE_ID},"startTimeUnixNano":1700000000000000001,"endTimeUnixNano":"1700000000000000000","attributes":[{"key":"d","value":${EDGE_DEEP}}]}`,
  `{${EDGE_ID},"parentSpanId":"0000000000000000"}`,
  `{${EDGE_ID},"links":[{"traceId":"01","spanId":"0102030405060708"}],"events":[{"timeUnixNano":"5","attributes":[{"key":"b","value":{"bytesValue":"-_8"}}]}]}`,
  `{${EDGE_ID},"kind":"SPAN_KIND_SERVER","status":{"code":"STATUS_CODE_ERROR","message":"\u0001"},"attributes":[{"key":"n","value":{"doubleValue":${'9'.repeat(400)}}},{"key":"z","value":{"doubleValue":-0}},{"key":"i","value":{"intValue":"-9223372036854775808"}}]}`,
];

/** An OTLP/JSON traces request of one span (JSON text) under a service named "é". */
export function jsonEdgeRequest(span: string): Uint8Array {
  return new Uint8Array(Buffer.from(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"é"}}]},"scopeSpans":[{"spans":[${span}]}]}]}`, 'utf8'));
}

/** OTLP/JSON requests refused whole. */
export const JSON_BAD_REQUESTS: readonly string[] = ['{"resourceSpans":[{"scopeSpans":[{"spans":[{"flags":-1}]}]}]}', '{"resourceSpans":{}}', '[', '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":"x"}}]}]}]}'];
