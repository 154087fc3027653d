// OTLP/JSON → JSON lines (the memory and SQLite row format) without row objects: JSON.parse's
// tree is walked once and each line is written straight into the output buffer, with the
// resource and scope serialized once per group. The walk applies otlp-json.ts's own field
// readers, so it accepts, rejects and refuses exactly what decodeTracesJson / decodeLogsJson do;
// a request refused whole is decoded again by them so that the error message is theirs.
import {
  arrayField,
  base64Value,
  doubleValue,
  enumField,
  get,
  hexId,
  int64Text,
  isObject,
  readSpanHead,
  requestItems,
  resourceOf,
  scopeOf,
  SEVERITY_NUMBERS,
  SPAN_HEAD,
  SPAN_KINDS,
  startWalk,
  STATUS_CODES,
  stringField,
  uint32Field,
  uint64Field,
  walkJsonRequest,
  decodeLogsJson,
  decodeTracesJson,
  fail,
  type Json,
} from '../../decode/otlp-json.ts';
import { MAX_TIME_NS, REASON_LINK_ID, REASON_PARENT_SPAN_ID, REASON_SPAN_ID, REASON_TIME, REASON_TOO_DEEP, REASON_TRACE_ID, Rejections, serviceNameOf, type DecodeLimits } from '../../decode/common.ts';
import { DecodeError } from '../../decode/wire.ts';
import { ascii, ByteOut } from '../byte-out.ts';
import type { EncodedRequest } from '../encoder.ts';

const out = new ByteOut(1 << 20);
let maxDepth = 100;
let tooDeep = false;

const T_EMPTY = ascii('{}');
const T_LIST_END = ascii(']}}');

/** The KeyValues of one list: written in arrival order, rewritten as dedupeAttributes orders them when a key repeats. */
class KvList {
  keys: string[] = [];
  starts: number[] = [];
  ends: number[] = [];
  n = 0;
  listStart = 0;
  dup = false;
  seen: Set<string> | null = null;

  begin(): void {
    this.n = 0;
    this.listStart = out.pos;
    this.dup = false;
    this.seen = null;
  }

  push(key: string, start: number, end: number): void {
    const n = this.n;
    if (!this.dup) {
      if (n < 16) {
        for (let j = 0; j < n; j++) if (this.keys[j] === key) this.dup = true;
      } else {
        this.seen ??= new Set(this.keys.slice(0, n));
        if (this.seen.has(key)) this.dup = true;
        else this.seen.add(key);
      }
    }
    this.keys[n] = key;
    this.starts[n] = start;
    this.ends[n] = end;
    this.n = n + 1;
  }

  finish(): void {
    if (!this.dup) return;
    const index = new Map<string, number>();
    const order: number[] = [];
    for (let i = 0; i < this.n; i++) {
      const at = index.get(this.keys[i]!);
      if (at === undefined) {
        index.set(this.keys[i]!, order.length);
        order.push(i);
      } else order[at] = i;
    }
    const base = this.listStart;
    const copy = out.buf.slice(base, out.pos);
    out.pos = base;
    for (let k = 0; k < order.length; k++) {
      if (k > 0) out.byte(0x2c);
      out.bytes(copy, this.starts[order[k]!]! - base, this.ends[order[k]!]! - base);
    }
  }
}

const lists: KvList[] = [];

function keyValues(list: unknown[], depth: number): void {
  const l = (lists[depth] ??= new KvList());
  l.begin();
  for (let i = 0; i < list.length; i++) {
    const kv = list[i];
    if (!isObject(kv)) fail('attributes', 'KeyValue objects', kv);
    const key = kv.key ?? '';
    if (typeof key !== 'string') fail('key', 'a string', key);
    if (i > 0) out.byte(0x2c);
    const start = out.pos;
    out.asciiText('{"key":');
    out.jsonString(key);
    out.asciiText(',"value":');
    anyValue(kv.value, depth);
    out.byte(0x7d);
    l.push(key, start, out.pos);
  }
  l.finish();
}

function attributes(o: Json): void {
  out.asciiText(',"attributes":[');
  keyValues(arrayField(o, 'attributes', 'attributes'), 0);
  out.asciiText('],"droppedAttributesCount":');
}

function anyValue(v: unknown, depth: number): void {
  if (v === undefined || v === null) return out.bytes(T_EMPTY);
  if (!isObject(v)) fail('value', 'an AnyValue object', v);
  let x = get(v, 'stringValue', 'string_value');
  if (x !== undefined) {
    if (typeof x !== 'string') fail('stringValue', 'a string', x);
    out.asciiText('{"stringValue":');
    out.jsonString(x);
    return out.byte(0x7d);
  }
  x = get(v, 'boolValue', 'bool_value');
  if (x !== undefined) {
    if (typeof x !== 'boolean') fail('boolValue', 'a boolean', x);
    return out.asciiText(x ? '{"boolValue":true}' : '{"boolValue":false}');
  }
  x = get(v, 'intValue', 'int_value');
  if (x !== undefined) {
    const t = int64Text(x);
    if (t === undefined) fail('intValue', 'a 64-bit integer (string or number)', x);
    out.asciiText('{"intValue":"');
    out.asciiText(t);
    return out.asciiText('"}');
  }
  x = get(v, 'doubleValue', 'double_value');
  if (x !== undefined) {
    const d = doubleValue(x);
    if (d === undefined) fail('doubleValue', 'a number', x);
    out.asciiText('{"doubleValue":');
    out.asciiText(JSON.stringify(d));
    return out.byte(0x7d);
  }
  x = get(v, 'arrayValue', 'array_value');
  if (x !== undefined) {
    if (!isObject(x)) fail('arrayValue', 'an object', x);
    if (depth >= maxDepth) {
      tooDeep = true;
      return out.bytes(T_EMPTY);
    }
    const list = arrayField(x, 'values', 'values');
    out.asciiText('{"arrayValue":{"values":[');
    for (let i = 0; i < list.length; i++) {
      if (i > 0) out.byte(0x2c);
      anyValue(list[i], depth + 1);
    }
    return out.bytes(T_LIST_END);
  }
  x = get(v, 'kvlistValue', 'kvlist_value');
  if (x !== undefined) {
    if (!isObject(x)) fail('kvlistValue', 'an object', x);
    if (depth >= maxDepth) {
      tooDeep = true;
      return out.bytes(T_EMPTY);
    }
    out.asciiText('{"kvlistValue":{"values":[');
    keyValues(arrayField(x, 'values', 'values'), depth + 1);
    return out.bytes(T_LIST_END);
  }
  x = get(v, 'bytesValue', 'bytes_value');
  if (x !== undefined) {
    const b = base64Value(x);
    if (b === undefined) fail('bytesValue', 'base64 text', x);
    out.asciiText('{"bytesValue":"');
    out.asciiText(b);
    return out.asciiText('"}');
  }
  out.bytes(T_EMPTY);
}

const textEncoder = new TextEncoder();
/** What one group's lines share, as UTF-8: the document's start (resource and scope), the service name. */
let groupJson = new Uint8Array(0);
let serviceJson = new Uint8Array(0);

/** Walks the request's groups; item() writes one line and says whether it was kept. */
function groups(root: unknown, names: readonly [string, string, string], snake: readonly [string, string, string], item: (v: unknown, rej: Rejections) => boolean, rej: Rejections): number {
  startWalk(names);
  let accepted = 0;
  const rss = requestItems(root, names[0], snake[0]);
  for (let i = 0; i < rss.length; i++) {
    const rs = rss[i];
    if (!isObject(rs)) fail('', 'a group object', rs);
    const { resource, deep: resourceDeep } = resourceOf(rs);
    serviceJson = textEncoder.encode(JSON.stringify(serviceNameOf(resource.attributes)));
    const resourceJson = JSON.stringify(resource);
    const sss = arrayField(rs, names[1], snake[1]);
    for (let j = 0; j < sss.length; j++) {
      const ss = sss[j];
      if (!isObject(ss)) fail('', 'a scope group object', ss);
      const { scope, deep: scopeDeep } = scopeOf(ss);
      const items = arrayField(ss, names[2], snake[2]);
      if (resourceDeep || scopeDeep) {
        // The resource or scope cannot be stored faithfully, so neither can its items.
        rej.add(REASON_TOO_DEEP, items.length);
        continue;
      }
      groupJson = textEncoder.encode('{"resource":' + resourceJson + ',"scope":' + JSON.stringify(scope));
      for (let k = 0; k < items.length; k++) {
        const lineStart = out.pos;
        if (item(items[k], rej)) accepted++;
        else out.pos = lineStart;
      }
    }
  }
  return accepted;
}

function reject(rej: Rejections, reason: number): false {
  rej.add(reason);
  return false;
}

function span(v: unknown, rej: Rejections): boolean {
  if (!isObject(v)) fail('', 'a Span object', v);
  tooDeep = false;
  readSpanHead(v);
  const { traceId, spanId, parentSpanId, start, end, status } = SPAN_HEAD;
  const events = arrayField(v, 'events', 'events');
  for (let i = 0; i < events.length; i++) if (!isObject(events[i])) fail('events', 'Event objects', events[i]);
  const links = arrayField(v, 'links', 'links');
  for (let i = 0; i < links.length; i++) if (!isObject(links[i])) fail('links', 'Link objects', links[i]);
  const traceState = stringField(v, 'traceState', 'trace_state');
  const flags = uint32Field(v, 'flags', 'flags');
  const name = stringField(v, 'name', 'name');
  const kind = enumField(v, 'kind', 'kind', SPAN_KINDS);
  const statusCode = status ? enumField(status, 'code', 'code', STATUS_CODES) : 0;
  const statusMessage = status ? stringField(status, 'message', 'message') : '';
  const startText = start.toString();
  const endText = end.toString();
  const durText = (end > start ? end - start : 0n).toString();
  const tid = traceId ?? '';
  const sid = spanId ?? '';
  const pid = parentSpanId ?? '';

  out.asciiText(`["${tid}","${sid}","${pid}",`);
  out.bytes(serviceJson);
  out.byte(0x2c);
  out.jsonString(name);
  out.asciiText(`,"${startText}","${endText}","${durText}",${statusCode},${kind}]\t`);
  out.bytes(groupJson);
  out.asciiText(`,"traceId":"${tid}","spanId":"${sid}","parentSpanId":"${pid}","traceState":`);
  out.jsonString(traceState);
  out.asciiText(`,"flags":${flags},"name":`);
  out.jsonString(name);
  out.asciiText(`,"kind":${kind},"startTimeUnixNano":"${startText}","endTimeUnixNano":"${endText}","durationNano":"${durText}","statusCode":${statusCode},"statusMessage":`);
  out.jsonString(statusMessage);
  out.asciiText(',"serviceName":');
  out.bytes(serviceJson);
  attributes(v);
  out.asciiText(String(uint32Field(v, 'droppedAttributesCount', 'dropped_attributes_count')));
  out.asciiText(',"events":[');
  let eventTimesOk = true;
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as Json;
    const time = uint64Field(e, 'timeUnixNano', 'time_unix_nano');
    if (time > MAX_TIME_NS) eventTimesOk = false;
    if (i > 0) out.byte(0x2c);
    out.asciiText(`{"timeUnixNano":"${time.toString()}","name":`);
    out.jsonString(stringField(e, 'name', 'name'));
    attributes(e);
    out.asciiText(String(uint32Field(e, 'droppedAttributesCount', 'dropped_attributes_count')));
    out.byte(0x7d);
  }
  out.asciiText(`],"droppedEventsCount":${uint32Field(v, 'droppedEventsCount', 'dropped_events_count')},"links":[`);
  let badLink = false;
  let written = 0;
  for (let i = 0; i < links.length; i++) {
    const l = links[i] as Json;
    const lt = hexId(l, 'traceId', 'trace_id', 16);
    const ls = hexId(l, 'spanId', 'span_id', 8);
    const mark = out.pos;
    if (written > 0) out.byte(0x2c);
    out.asciiText(`{"traceId":"${lt ?? ''}","spanId":"${ls ?? ''}","traceState":`);
    out.jsonString(stringField(l, 'traceState', 'trace_state'));
    out.asciiText(`,"flags":${uint32Field(l, 'flags', 'flags')}`);
    attributes(l);
    out.asciiText(String(uint32Field(l, 'droppedAttributesCount', 'dropped_attributes_count')));
    out.byte(0x7d);
    if (lt === null || ls === null) {
      badLink = true;
      out.pos = mark;
    } else written++;
  }
  out.asciiText(`],"droppedLinksCount":${uint32Field(v, 'droppedLinksCount', 'dropped_links_count')}}\n`);
  if (traceId === null || traceId === '') return reject(rej, REASON_TRACE_ID);
  if (spanId === null || spanId === '') return reject(rej, REASON_SPAN_ID);
  if (parentSpanId === null) return reject(rej, REASON_PARENT_SPAN_ID);
  if (badLink) return reject(rej, REASON_LINK_ID);
  if (tooDeep) return reject(rej, REASON_TOO_DEEP);
  if (start > MAX_TIME_NS || end > MAX_TIME_NS || !eventTimesOk) return reject(rej, REASON_TIME);
  return true;
}

function logRecord(v: unknown, rej: Rejections): boolean {
  if (!isObject(v)) fail('', 'a LogRecord object', v);
  tooDeep = false;
  // Empty, all-zero or malformed ids mean "not linked": the record is kept.
  const traceId = hexId(v, 'traceId', 'trace_id', 16) ?? '';
  const spanId = hexId(v, 'spanId', 'span_id', 8) ?? '';
  const time = uint64Field(v, 'timeUnixNano', 'time_unix_nano');
  const observed = uint64Field(v, 'observedTimeUnixNano', 'observed_time_unix_nano');
  const flags = uint32Field(v, 'flags', 'flags');
  const severity = enumField(v, 'severityNumber', 'severity_number', SEVERITY_NUMBERS);
  const severityText = stringField(v, 'severityText', 'severity_text');
  const timeText = time.toString();
  const observedText = observed.toString();
  out.asciiText(`["${time !== 0n ? timeText : observedText}","${traceId}",`);
  out.bytes(serviceJson);
  out.asciiText(`,${severity}]\t`);
  out.bytes(groupJson);
  out.asciiText(`,"timeUnixNano":"${timeText}","observedTimeUnixNano":"${observedText}","traceId":"${traceId}","spanId":"${spanId}","flags":${flags},"severityNumber":${severity},"severityText":`);
  out.jsonString(severityText);
  out.asciiText(',"body":');
  anyValue(get(v, 'body', 'body'), 0);
  out.asciiText(',"eventName":');
  out.jsonString(stringField(v, 'eventName', 'event_name'));
  out.asciiText(',"serviceName":');
  out.bytes(serviceJson);
  attributes(v);
  out.asciiText(String(uint32Field(v, 'droppedAttributesCount', 'dropped_attributes_count')));
  out.asciiText('}\n');
  if (tooDeep) return reject(rej, REASON_TOO_DEEP);
  if (time > MAX_TIME_NS || observed > MAX_TIME_NS) return reject(rej, REASON_TIME);
  return true;
}

function transcode(bytes: Uint8Array, limits: DecodeLimits, run: (root: unknown, rej: Rejections) => number, singular: string, plural: string, rowPath: (b: Uint8Array, l: DecodeLimits) => unknown): EncodedRequest {
  maxDepth = limits.maxNestingDepth;
  let rej = new Rejections(limits.maxNestingDepth);
  let accepted = 0;
  try {
    // A second walk (over an exact re-parse) starts over.
    accepted = walkJsonRequest(bytes, limits, (root) => {
      out.pos = 0;
      rej = new Rejections(limits.maxNestingDepth);
      return run(root, rej);
    });
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    rowPath(bytes, limits);
    throw err;
  }
  const chunks = accepted === 0 ? [] : [{ partition: 0, rows: accepted, data: out.take() }];
  if (out.buf.length > 32 << 20) out.buf = new Uint8Array(1 << 20);
  return { accepted, rejected: rej.total, errorMessage: rej.message(singular, plural), chunks };
}

const TRACE_NAMES = ['resourceSpans', 'scopeSpans', 'spans'] as const;
const TRACE_SNAKE = ['resource_spans', 'scope_spans', 'spans'] as const;
const LOG_NAMES = ['resourceLogs', 'scopeLogs', 'logRecords'] as const;
const LOG_SNAKE = ['resource_logs', 'scope_logs', 'log_records'] as const;

/** An OTLP/JSON ExportTraceServiceRequest as memory/SQLite row lines, the bytes the row path writes. Throws DecodeError as decodeTracesJson does. */
export function transcodeTracesJson(bytes: Uint8Array, limits: DecodeLimits): EncodedRequest {
  return transcode(bytes, limits, (root, rej) => groups(root, TRACE_NAMES, TRACE_SNAKE, span, rej), 'span', 'spans', decodeTracesJson);
}

/** An OTLP/JSON ExportLogsServiceRequest as memory/SQLite row lines, the bytes the row path writes. Throws DecodeError as decodeLogsJson does. */
export function transcodeLogsJson(bytes: Uint8Array, limits: DecodeLimits): EncodedRequest {
  return transcode(bytes, limits, (root, rej) => groups(root, LOG_NAMES, LOG_SNAKE, logRecord, rej), 'log record', 'log records', decodeLogsJson);
}
