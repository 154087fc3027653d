// OTLP/JSON → rows. JSON.parse does the parsing; this walks the result once, accepting both
// lowerCamelCase and snake_case keys, enum numbers and names, int64 as strings or numbers (exact
// beyond 2^53: such numbers are read from their source text), and hex ids in either case.
// Anything of the wrong shape refuses the whole request with a DecodeError that names the field.
import type { AnyValue, KeyValue, LogRow, ResourceInfo, ScopeInfo, SpanEvent, SpanLink, SpanRow } from '../../model/rows.ts';
import {
  dedupeAttributes,
  jsonDouble,
  REASON_LINK_ID,
  REASON_PARENT_SPAN_ID,
  REASON_SPAN_ID,
  MAX_TIME_NS,
  REASON_TIME,
  spanTimesStorable,
  REASON_TOO_DEEP,
  REASON_TRACE_ID,
  Rejections,
  serviceNameOf,
  type DecodeLimits,
  type DecodeResult,
} from './common.ts';
import { parseExactIntegers } from './json-exact.ts';
import { DecodeError } from './wire.ts';

export type Json = Record<string, unknown>;

// Per-call state; decoding is synchronous.
let maxDepth = 100;
let tooDeep = false;
// Where the walk is, for error messages ("resourceSpans[0].scopeSpans[2].spans[7]"); -1 = not there yet.
let signalNames: readonly [string, string, string] = ['resourceSpans', 'scopeSpans', 'spans'];
let atResource = -1;
let atScope = -1;
let atItem = -1;

/** Refuses the request: DecodeError naming the field, where the walk is, and what arrived. */
export function fail(field: string, expected: string, got: unknown): never {
  const shown = typeof got === 'string' ? JSON.stringify(got.length > 40 ? got.slice(0, 40) + '…' : got) : describe(got);
  let where = '';
  if (atResource >= 0) where += `${signalNames[0]}[${atResource}]`;
  if (atScope >= 0) where += `.${signalNames[1]}[${atScope}]`;
  if (atItem >= 0) where += `.${signalNames[2]}[${atItem}]`;
  if (where && field) where += '.';
  throw new DecodeError(`OTLP/JSON ${where + field || 'body'}: expected ${expected}, got ${shown}`);
}

/** Resets the walk's position (for error messages) at the start of a request. */
export function startWalk(names: readonly [string, string, string]): void {
  signalNames = names;
  atResource = atScope = atItem = -1;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'object') return 'an object';
  return String(v);
}

// ---------------------------------------------------------------------------------------------
// Parsing with exact integers.

const textDecoder = new TextDecoder('utf-8');

/**
 * Set while walking a parse made with parseExactIntegers. Without it, the first int64 number beyond
 * 2^53 throws NEED_EXACT and the request is parsed again with the reviver: nearly every sender
 * writes int64 as strings, so the common case never pays for a reviver call per value.
 */
let exact = false;
const NEED_EXACT = Symbol('need exact integers');

function parse(text: string): unknown {
  try {
    // Not JSON.parse with a reviver: V8 applies a reviver recursively, and a deeply nested
    // document overflowed the stack ("invalid JSON: Maximum call stack size exceeded") where
    // the same request in protobuf gets its partial success.
    return exact ? parseExactIntegers(text) : JSON.parse(text);
  } catch (err) {
    throw new DecodeError(`invalid JSON: ${(err as Error).message}`);
  }
}

/**
 * A JSON number in an int64 position: exact when safe, else a re-parse. In the exact parse every
 * integer beyond 2^53 is a bigint already, so a number still here had a fraction (undefined).
 */
export function integerNumber(v: number): bigint | undefined {
  if (Number.isSafeInteger(v)) return BigInt(v);
  if (exact) return undefined;
  throw NEED_EXACT;
}

/** Parses an OTLP/JSON request and runs fn over it (again over an exact parse if fn needs it), with the nesting limit set. */
export function walkJsonRequest<T>(bytes: Uint8Array, limits: DecodeLimits, fn: (root: unknown) => T): T {
  maxDepth = limits.maxNestingDepth;
  return walk(bytes, fn);
}

/**
 * The string as protobuf carries it: OTLP strings are UTF-8, which has no lone surrogates (only a
 * "\ud83d" escape makes one: half an emoji an SDK's length limit cut), so one becomes U+FFFD, as
 * in the request's protobuf form and the OpenTelemetry Collector's JSON decoder. Every store then
 * keeps the same text (PostgreSQL's json columns and ClickHouse's structured values kept the
 * surrogate, where no attribute search could match it and strict JSON readers refuse it).
 */
function utf8Text(s: string): string {
  return s.isWellFormed() ? s : s.toWellFormed();
}

/** Runs a walk over the parsed request, again over an exact parse if the first one needs it. */
function walk<T>(bytes: Uint8Array, fn: (root: unknown) => T): T {
  if (bytes.length === 0) return fn({});
  const text = textDecoder.decode(bytes);
  exact = false;
  try {
    return fn(parse(text));
  } catch (err) {
    if (err !== NEED_EXACT) throw err;
  }
  exact = true;
  try {
    return fn(parse(text));
  } finally {
    exact = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Field access and scalar conversions. A field is read by its lowerCamelCase name, then by its
// original snake_case name. null means absent, as in proto3 JSON.

/** A field by its lowerCamelCase name, else its snake_case name; undefined when absent or null. */
export function get(o: Json, camel: string, snake: string): unknown {
  const v = o[camel];
  return v !== undefined && v !== null ? v : (o[snake] ?? undefined);
}

/** True for a JSON object (not null, not an array). */
export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An array field ([] when absent); anything else refuses the request. */
export function arrayField(o: Json, camel: string, snake: string): unknown[] {
  const v = get(o, camel, snake);
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(camel, 'an array', v);
  return v;
}

/** An object field (undefined when absent); anything else refuses the request. */
export function objectField(o: Json, camel: string, snake: string): Json | undefined {
  const v = get(o, camel, snake);
  if (v === undefined) return undefined;
  if (!isObject(v)) fail(camel, 'an object', v);
  return v;
}

/** A string field ('' when absent); anything else refuses the request. */
export function stringField(o: Json, camel: string, snake: string): string {
  const v = get(o, camel, snake);
  if (v === undefined) return '';
  if (typeof v !== 'string') fail(camel, 'a string', v);
  return utf8Text(v);
}

const UINT32_TEXT = /^\d{1,10}$/;

/** A uint32 field as a number or numeric string (0 when absent). */
export function uint32Field(o: Json, camel: string, snake: string): number {
  const v = get(o, camel, snake);
  if (v === undefined) return 0;
  const n = typeof v === 'number' ? v : typeof v === 'string' && UINT32_TEXT.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) fail(camel, 'an unsigned 32-bit integer', v);
  return n;
}

const INT32_TEXT = /^-?\d{1,10}$/;

/** An enum: its number (as a number or numeric string) or its name. Unknown numbers are kept, as proto3 does. */
export function enumField(o: Json, camel: string, snake: string, names: ReadonlyMap<string, number>): number {
  const v = get(o, camel, snake);
  if (v === undefined) return 0;
  if (typeof v === 'string') {
    const byName = names.get(v);
    if (byName !== undefined) return byName;
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && INT32_TEXT.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) fail(camel, 'an enum number or name', v);
  return n;
}

const TWO_64 = 1n << 64n;

/** A fixed64 timestamp: a decimal string or a number, exact. */
export function uint64Field(o: Json, camel: string, snake: string): bigint {
  const v = get(o, camel, snake);
  if (v === undefined) return 0n;
  let b: bigint | undefined;
  if (typeof v === 'string') {
    if (/^\d{1,20}$/.test(v)) b = BigInt(v);
  } else if (typeof v === 'number') {
    if (Number.isInteger(v)) b = integerNumber(v);
  } else if (typeof v === 'bigint') {
    b = v;
  }
  if (b === undefined || b < 0n || b >= TWO_64) fail(camel, 'an unsigned 64-bit integer (string or number)', v);
  return b;
}

const SMALL_INT_TEXT = /^-?(?:0|[1-9]\d{0,14})$/;
const INT_TEXT = /^-?\d{1,20}$/;

/** An int64 as its exact decimal text. */
export function int64Text(v: unknown): string | undefined {
  if (typeof v === 'string') {
    if (SMALL_INT_TEXT.test(v)) return v === '-0' ? '0' : v;
    if (!INT_TEXT.test(v)) return undefined;
    v = BigInt(v);
  } else if (typeof v === 'number') {
    if (!Number.isInteger(v)) return undefined;
    if (Number.isSafeInteger(v)) return String(v === 0 ? 0 : v);
    v = integerNumber(v);
    if (v === undefined) return undefined;
  }
  if (typeof v === 'bigint' && BigInt.asIntN(64, v) === v) return v.toString();
  return undefined;
}

/** A doubleValue as OTLP/JSON stores it; undefined when it is not a number. */
export function doubleValue(v: unknown): number | 'NaN' | 'Infinity' | '-Infinity' | undefined {
  if (typeof v === 'number') return jsonDouble(v);
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return v;
    const n = Number(v);
    if (v.trim() !== '' && !Number.isNaN(n)) return jsonDouble(n);
  }
  return undefined;
}

const BASE64_TEXT = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** bytesValue text (standard or URL-safe, padding optional) as canonical base64; undefined when not base64. */
export function base64Value(v: unknown): string | undefined {
  if (typeof v !== 'string' || !BASE64_TEXT.test(v)) return undefined;
  // Whole quantums: 2 or 3 characters may end the text (their padding optional), 1 cannot, and padding only completes a quantum.
  const pad = v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0;
  const data = v.length - pad;
  if (data % 4 === 1 || (pad > 0 && (data % 4 === 0 || v.length % 4 !== 0))) return undefined;
  // Accepts the URL-safe alphabet and missing padding; stores canonical base64.
  return Buffer.from(v, 'base64').toString('base64');
}

const HEX_TEXT = /^[0-9a-fA-F]*$/;
const ZERO_ID = /^0*$/;

/** A hex id of `size` bytes, lowercased; '' when absent, empty or all zero; null otherwise. */
export function hexId(o: Json, camel: string, snake: string, size: number): string | null {
  const v = get(o, camel, snake);
  if (v === undefined || v === '') return '';
  if (typeof v !== 'string' || v.length !== size * 2 || !HEX_TEXT.test(v)) return null;
  if (ZERO_ID.test(v)) return '';
  return v.toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// Common messages.

function anyValue(v: unknown, depth: number): AnyValue {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) fail('value', 'an AnyValue object', v);
  let x = get(v, 'stringValue', 'string_value');
  if (x !== undefined) {
    if (typeof x !== 'string') fail('stringValue', 'a string', x);
    return { stringValue: utf8Text(x) };
  }
  x = get(v, 'boolValue', 'bool_value');
  if (x !== undefined) {
    if (typeof x !== 'boolean') fail('boolValue', 'a boolean', x);
    return { boolValue: x };
  }
  x = get(v, 'intValue', 'int_value');
  if (x !== undefined) {
    const t = int64Text(x);
    if (t !== undefined) return { intValue: t };
    // The JS SDK's JSON serializer writes every integral JS number as intValue, 2 ** 64 and 1e21
    // too (and -(2 ** 63) as -9223372036854776000); its protobuf serializer sends the double such
    // a number is as an int64 when in range, else as doubleValue. Stored so, as over protobuf,
    // rather than refusing the request (and the batch with it) for one attribute. Only a number
    // written as JSON writes a double (its shortest text): digits past a double's, such as
    // 123456789012345678901234567890, were meant exact, and are refused as no int64.
    if ((typeof x === 'number' && Number.isInteger(x)) || (typeof x === 'bigint' && String(Number(x)) === x.toString())) {
      const d = Number(x);
      return d >= -(2 ** 63) && d < 2 ** 63 ? { intValue: BigInt(d).toString() } : { doubleValue: jsonDouble(d) };
    }
    fail('intValue', 'a 64-bit integer (string or number)', x);
  }
  x = get(v, 'doubleValue', 'double_value');
  if (x !== undefined) {
    const d = doubleValue(x);
    if (d === undefined) fail('doubleValue', 'a number', x);
    return { doubleValue: d };
  }
  x = get(v, 'arrayValue', 'array_value');
  if (x !== undefined) {
    if (!isObject(x)) fail('arrayValue', 'an object', x);
    if (depth >= maxDepth) {
      tooDeep = true;
      return {};
    }
    const list = arrayField(x, 'values', 'values');
    const values: AnyValue[] = new Array<AnyValue>(list.length);
    for (let i = 0; i < list.length; i++) values[i] = anyValue(list[i], depth + 1);
    return { arrayValue: { values } };
  }
  x = get(v, 'kvlistValue', 'kvlist_value');
  if (x !== undefined) {
    if (!isObject(x)) fail('kvlistValue', 'an object', x);
    if (depth >= maxDepth) {
      tooDeep = true;
      return {};
    }
    return { kvlistValue: { values: keyValues(arrayField(x, 'values', 'values'), depth + 1) } };
  }
  x = get(v, 'bytesValue', 'bytes_value');
  if (x !== undefined) {
    const b = base64Value(x);
    if (b === undefined) fail('bytesValue', 'base64 text', x);
    return { bytesValue: b };
  }
  return {};
}

function keyValues(list: unknown[], depth: number): KeyValue[] {
  const out: KeyValue[] = new Array<KeyValue>(list.length);
  for (let i = 0; i < list.length; i++) {
    const kv = list[i];
    if (!isObject(kv)) fail('attributes', 'KeyValue objects', kv);
    const key = kv.key ?? '';
    if (typeof key !== 'string') fail('key', 'a string', key);
    out[i] = { key: utf8Text(key), value: anyValue(kv.value, depth) };
  }
  return dedupeAttributes(out);
}

function attributes(o: Json): KeyValue[] {
  return keyValues(arrayField(o, 'attributes', 'attributes'), 0);
}

/** The group's resource, and whether one of its values nests too deep. */
export function resourceOf(o: Json): { resource: ResourceInfo; deep: boolean } {
  const res = objectField(o, 'resource', 'resource');
  tooDeep = false;
  const resource: ResourceInfo = {
    attributes: res ? attributes(res) : [],
    droppedAttributesCount: res ? uint32Field(res, 'droppedAttributesCount', 'dropped_attributes_count') : 0,
    schemaUrl: stringField(o, 'schemaUrl', 'schema_url'),
  };
  return { resource, deep: tooDeep };
}

/** The group's scope, and whether one of its values nests too deep. */
export function scopeOf(o: Json): { scope: ScopeInfo; deep: boolean } {
  const s = objectField(o, 'scope', 'scope');
  tooDeep = false;
  const scope: ScopeInfo = {
    name: s ? stringField(s, 'name', 'name') : '',
    version: s ? stringField(s, 'version', 'version') : '',
    attributes: s ? attributes(s) : [],
    droppedAttributesCount: s ? uint32Field(s, 'droppedAttributesCount', 'dropped_attributes_count') : 0,
    schemaUrl: stringField(o, 'schemaUrl', 'schema_url'),
  };
  return { scope, deep: tooDeep };
}

/** The request's top-level groups (resourceSpans / resourceLogs). */
export function requestItems(root: unknown, camel: string, snake: string): unknown[] {
  if (!isObject(root)) fail('', `an ${camel === 'resourceSpans' ? 'ExportTraceServiceRequest' : 'ExportLogsServiceRequest'} object`, root);
  return arrayField(root, camel, snake);
}

// ---------------------------------------------------------------------------------------------
// Traces.

/** SpanKind names (proto3 JSON enum form) to numbers. */
export const SPAN_KINDS: ReadonlyMap<string, number> = new Map([
  ['SPAN_KIND_UNSPECIFIED', 0],
  ['SPAN_KIND_INTERNAL', 1],
  ['SPAN_KIND_SERVER', 2],
  ['SPAN_KIND_CLIENT', 3],
  ['SPAN_KIND_PRODUCER', 4],
  ['SPAN_KIND_CONSUMER', 5],
]);

/** Status code names to numbers. */
export const STATUS_CODES: ReadonlyMap<string, number> = new Map([
  ['STATUS_CODE_UNSET', 0],
  ['STATUS_CODE_OK', 1],
  ['STATUS_CODE_ERROR', 2],
]);

function event(v: unknown): SpanEvent {
  if (!isObject(v)) fail('events', 'Event objects', v);
  return {
    timeUnixNano: uint64Field(v, 'timeUnixNano', 'time_unix_nano'),
    name: stringField(v, 'name', 'name'),
    attributes: attributes(v),
    droppedAttributesCount: uint32Field(v, 'droppedAttributesCount', 'dropped_attributes_count'),
  };
}

/** A link, or null when one of its ids is invalid (all-zero ids are stored as ''). */
function link(v: unknown): SpanLink | null {
  if (!isObject(v)) fail('links', 'Link objects', v);
  const traceId = hexId(v, 'traceId', 'trace_id', 16);
  const spanId = hexId(v, 'spanId', 'span_id', 8);
  const l: SpanLink = {
    traceId: traceId ?? '',
    spanId: spanId ?? '',
    traceState: stringField(v, 'traceState', 'trace_state'),
    flags: uint32Field(v, 'flags', 'flags'),
    attributes: attributes(v),
    droppedAttributesCount: uint32Field(v, 'droppedAttributesCount', 'dropped_attributes_count'),
  };
  return traceId === null || spanId === null ? null : l;
}

/** The fields of a Span object both JSON readers take first, as readSpanHead left them. */
export const SPAN_HEAD: { traceId: string | null; spanId: string | null; parentSpanId: string | null; start: bigint; end: bigint; status: Json | undefined } = {
  traceId: '',
  spanId: '',
  parentSpanId: '',
  start: 0n,
  end: 0n,
  status: undefined,
};

/** Reads span v's ids (null when malformed; a root span's parent is ''), times and status into SPAN_HEAD, in the order that decides which error a malformed span gets. */
export function readSpanHead(v: Json): void {
  SPAN_HEAD.traceId = hexId(v, 'traceId', 'trace_id', 16);
  SPAN_HEAD.spanId = hexId(v, 'spanId', 'span_id', 8);
  // Empty or all zero (the invalid-id sentinel some exporters write for a root): a root span.
  SPAN_HEAD.parentSpanId = hexId(v, 'parentSpanId', 'parent_span_id', 8);
  SPAN_HEAD.start = uint64Field(v, 'startTimeUnixNano', 'start_time_unix_nano');
  SPAN_HEAD.end = uint64Field(v, 'endTimeUnixNano', 'end_time_unix_nano');
  SPAN_HEAD.status = objectField(v, 'status', 'status');
}

function span(v: unknown, resource: ResourceInfo, scope: ScopeInfo, serviceName: string, rows: SpanRow[], rej: Rejections): void {
  if (!isObject(v)) fail('', 'a Span object', v);
  tooDeep = false;
  readSpanHead(v);
  const { traceId, spanId, parentSpanId, start: startTimeUnixNano, end: endTimeUnixNano, status } = SPAN_HEAD;
  const eventList = arrayField(v, 'events', 'events');
  const events: SpanEvent[] = new Array<SpanEvent>(eventList.length);
  for (let i = 0; i < eventList.length; i++) events[i] = event(eventList[i]);
  const linkList = arrayField(v, 'links', 'links');
  const links: SpanLink[] = [];
  let badLink = false;
  for (let i = 0; i < linkList.length; i++) {
    const l = link(linkList[i]);
    if (l === null) badLink = true;
    else links.push(l);
  }
  const row: SpanRow = {
    traceId: traceId ?? '',
    spanId: spanId ?? '',
    parentSpanId: parentSpanId ?? '',
    traceState: stringField(v, 'traceState', 'trace_state'),
    flags: uint32Field(v, 'flags', 'flags'),
    name: stringField(v, 'name', 'name'),
    kind: enumField(v, 'kind', 'kind', SPAN_KINDS),
    startTimeUnixNano,
    endTimeUnixNano,
    durationNano: endTimeUnixNano > startTimeUnixNano ? endTimeUnixNano - startTimeUnixNano : 0n,
    statusCode: status ? enumField(status, 'code', 'code', STATUS_CODES) : 0,
    statusMessage: status ? stringField(status, 'message', 'message') : '',
    serviceName,
    resource,
    scope,
    attributes: attributes(v),
    droppedAttributesCount: uint32Field(v, 'droppedAttributesCount', 'dropped_attributes_count'),
    events,
    droppedEventsCount: uint32Field(v, 'droppedEventsCount', 'dropped_events_count'),
    links,
    droppedLinksCount: uint32Field(v, 'droppedLinksCount', 'dropped_links_count'),
  };
  if (traceId === null || traceId === '') return rej.add(REASON_TRACE_ID);
  if (spanId === null || spanId === '') return rej.add(REASON_SPAN_ID);
  if (parentSpanId === null) return rej.add(REASON_PARENT_SPAN_ID);
  if (badLink) return rej.add(REASON_LINK_ID);
  if (tooDeep) return rej.add(REASON_TOO_DEEP);
  if (!spanTimesStorable(row.startTimeUnixNano, row.endTimeUnixNano, row.events)) return rej.add(REASON_TIME);
  rows.push(row);
}

/** Decodes an OTLP/JSON ExportTraceServiceRequest into span rows. Throws DecodeError for malformed input. */
export function decodeTracesJson(text: Uint8Array, limits: DecodeLimits): DecodeResult<SpanRow> {
  maxDepth = limits.maxNestingDepth;
  return walk(text, traces);
}

function traces(root: unknown): DecodeResult<SpanRow> {
  startWalk(['resourceSpans', 'scopeSpans', 'spans']);
  const rej = new Rejections(maxDepth);
  const rows: SpanRow[] = [];
  const rss = requestItems(root, 'resourceSpans', 'resource_spans');
  for (let i = 0; i < rss.length; i++) {
    const rs = rss[i];
    atResource = i;
    atScope = atItem = -1;
    if (!isObject(rs)) fail('', 'a ResourceSpans object', rs);
    const { resource, deep: resourceDeep } = resourceOf(rs);
    const serviceName = serviceNameOf(resource.attributes);
    const sss = arrayField(rs, 'scopeSpans', 'scope_spans');
    for (let j = 0; j < sss.length; j++) {
      const ss = sss[j];
      atScope = j;
      atItem = -1;
      if (!isObject(ss)) fail('', 'a ScopeSpans object', ss);
      const { scope, deep: scopeDeep } = scopeOf(ss);
      const spans = arrayField(ss, 'spans', 'spans');
      if (resourceDeep || scopeDeep) {
        // The resource or scope cannot be stored faithfully, so neither can its spans.
        rej.add(REASON_TOO_DEEP, spans.length);
        continue;
      }
      for (let k = 0; k < spans.length; k++) {
        atItem = k;
        span(spans[k], resource, scope, serviceName, rows, rej);
      }
    }
  }
  return { rows, rejected: rej.total, errorMessage: rej.message('span', 'spans') };
}

// ---------------------------------------------------------------------------------------------
// Logs.

/** SeverityNumber names to numbers. */
export const SEVERITY_NUMBERS: ReadonlyMap<string, number> = new Map(
  ['UNSPECIFIED', 'TRACE', 'TRACE2', 'TRACE3', 'TRACE4', 'DEBUG', 'DEBUG2', 'DEBUG3', 'DEBUG4', 'INFO', 'INFO2', 'INFO3', 'INFO4',
    'WARN', 'WARN2', 'WARN3', 'WARN4', 'ERROR', 'ERROR2', 'ERROR3', 'ERROR4', 'FATAL', 'FATAL2', 'FATAL3', 'FATAL4'].map(
    (name, i) => [`SEVERITY_NUMBER_${name}`, i] as const,
  ),
);

function logRecord(v: unknown, resource: ResourceInfo, scope: ScopeInfo, serviceName: string, rows: LogRow[], rej: Rejections): void {
  if (!isObject(v)) fail('', 'a LogRecord object', v);
  tooDeep = false;
  // Empty, all-zero or malformed ids mean "not linked" (OTLP: a log record with an invalid trace
  // id is treated as not linked to a trace): the record itself is good data and is kept.
  const traceId = hexId(v, 'traceId', 'trace_id', 16) ?? '';
  const spanId = hexId(v, 'spanId', 'span_id', 8) ?? '';
  const row: LogRow = {
    timeUnixNano: uint64Field(v, 'timeUnixNano', 'time_unix_nano'),
    observedTimeUnixNano: uint64Field(v, 'observedTimeUnixNano', 'observed_time_unix_nano'),
    traceId,
    spanId,
    flags: uint32Field(v, 'flags', 'flags'),
    severityNumber: enumField(v, 'severityNumber', 'severity_number', SEVERITY_NUMBERS),
    severityText: stringField(v, 'severityText', 'severity_text'),
    body: anyValue(get(v, 'body', 'body'), 0),
    eventName: stringField(v, 'eventName', 'event_name'),
    serviceName,
    resource,
    scope,
    attributes: attributes(v),
    droppedAttributesCount: uint32Field(v, 'droppedAttributesCount', 'dropped_attributes_count'),
  };
  if (tooDeep) return rej.add(REASON_TOO_DEEP);
  if (row.timeUnixNano > MAX_TIME_NS || row.observedTimeUnixNano > MAX_TIME_NS) return rej.add(REASON_TIME);
  rows.push(row);
}

/** Decodes an OTLP/JSON ExportLogsServiceRequest into log rows. Throws DecodeError for malformed input. */
export function decodeLogsJson(text: Uint8Array, limits: DecodeLimits): DecodeResult<LogRow> {
  maxDepth = limits.maxNestingDepth;
  return walk(text, logs);
}

function logs(root: unknown): DecodeResult<LogRow> {
  startWalk(['resourceLogs', 'scopeLogs', 'logRecords']);
  const rej = new Rejections(maxDepth);
  const rows: LogRow[] = [];
  const rls = requestItems(root, 'resourceLogs', 'resource_logs');
  for (let i = 0; i < rls.length; i++) {
    const rl = rls[i];
    atResource = i;
    atScope = atItem = -1;
    if (!isObject(rl)) fail('', 'a ResourceLogs object', rl);
    const { resource, deep: resourceDeep } = resourceOf(rl);
    const serviceName = serviceNameOf(resource.attributes);
    const sls = arrayField(rl, 'scopeLogs', 'scope_logs');
    for (let j = 0; j < sls.length; j++) {
      const sl = sls[j];
      atScope = j;
      atItem = -1;
      if (!isObject(sl)) fail('', 'a ScopeLogs object', sl);
      const { scope, deep: scopeDeep } = scopeOf(sl);
      const records = arrayField(sl, 'logRecords', 'log_records');
      if (resourceDeep || scopeDeep) {
        rej.add(REASON_TOO_DEEP, records.length);
        continue;
      }
      for (let k = 0; k < records.length; k++) {
        atItem = k;
        logRecord(records[k], resource, scope, serviceName, rows, rej);
      }
    }
  }
  return { rows, rejected: rej.total, errorMessage: rej.message('log record', 'log records') };
}
