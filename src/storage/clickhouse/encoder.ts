// RowBinary encoder, loaded by every decode worker (see EncoderSpec in ../backend.ts). It routes
// each row to a shard by a stable hash of its trace id, so a whole trace lives on one shard, and
// returns one chunk per non-empty shard. Chunks of one table are plain RowBinary rows in the
// column order of schema.ts, so the writer may concatenate them freely.
//
// The exporter's columns are filled the way the exporter fills them (attribute values rendered
// as strings, SpanKind / StatusCode words, Duration in ns). What they cannot carry goes to the
// TracehouseExtra column: a JSON object holding only what differs from the defaults (usually
// just the span flags and the type tags of non-string attributes).
import type { AnyValue, KeyValue, LogRow, ResourceInfo, ScopeInfo, SpanRow } from '../../model/rows.ts';
import type { RowEncoder } from '../encoders.ts';
import type { EncodedChunk } from '../backend.ts';
import { RowBinaryWriter } from './rowbinary.ts';
import { stringifyExact, tagOf } from './values.ts';
import { anyValueToString } from '../../model/rows.ts';

/** JSON-safe options the backend hands to the workers. */
export interface EncoderOptions {
  /** Shard count (the backend's `partitions`). */
  partitions: number;
}

export const SPAN_KINDS = ['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer'] as const;
export const STATUS_CODES = ['Unset', 'Ok', 'Error'] as const;

const INT64_MAX = (1n << 63n) - 1n;

/** Per-event or per-link information the exporter's Nested columns lose. */
export interface NestedExtra {
  /** Type tags / whole values of the attributes (see values.ts). */
  t?: string;
  j?: AnyValue[];
  /** droppedAttributesCount */
  d?: number;
  /** Link flags. */
  f?: number;
  /** Exact event time when DateTime64(9) cannot hold it. */
  ts?: string;
}

/** What a span's TracehouseExtra may hold; absent fields take their default (0, '', all strings). */
export interface SpanExtra {
  /** flags */
  f?: number;
  /** kind / status code numbers outside the known words */
  k?: number;
  c?: number;
  /** exact start when Timestamp holds a clamped one (see MAX_KEY_NS); exact end when it is not start + duration */
  st?: string;
  en?: string;
  /** resource: attribute tags / whole values, dropped count, schema URL */
  rt?: string;
  rj?: AnyValue[];
  rd?: number;
  ru?: string;
  /** scope: attributes (no exporter column for them), dropped count, schema URL */
  sa?: KeyValue[];
  sd?: number;
  su?: string;
  /** span attributes: tags / whole values, dropped count */
  t?: string;
  j?: AnyValue[];
  d?: number;
  /** per event / per link extras (0 where nothing differs) and dropped counts */
  ev?: (NestedExtra | 0)[];
  de?: number;
  ln?: (NestedExtra | 0)[];
  dl?: number;
}

/** What a log record's TracehouseExtra may hold. */
export interface LogExtra {
  /** flags beyond TraceFlags UInt8, severity beyond SeverityNumber UInt8 */
  f?: number;
  sv?: number;
  /** exact times when the columns hold clamped ones (ts: Timestamp, see MAX_KEY_NS; ots: ObservedTimestamp) */
  ts?: string;
  ots?: string;
  /** 1: timeUnixNano was 0 and Timestamp holds the observed time */
  tz?: number;
  /** body type tag and whole value */
  bt?: string;
  bj?: AnyValue;
  rt?: string;
  rj?: AnyValue[];
  rd?: number;
  st?: string;
  sj?: AnyValue[];
  sd?: number;
  t?: string;
  j?: AnyValue[];
  d?: number;
}

/** FNV-1a over the trace id's characters: stable across processes and versions. */
export function hashTraceId(traceId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < traceId.length; i++) {
    h ^= traceId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The shard (0 … shards−1) that holds the trace. */
export function shardOf(traceId: string, shards: number): number {
  return shards <= 1 ? 0 : hashTraceId(traceId) % shards;
}

function logShard(row: LogRow, shards: number): number {
  if (shards <= 1) return 0;
  if (row.traceId !== '') return hashTraceId(row.traceId) % shards;
  // Unlinked records: spread by service and time (any stable choice will do).
  return ((hashTraceId(row.serviceName) ^ Number(row.timeUnixNano & 0xffffffffn)) >>> 0) % shards;
}

interface MapInfo {
  tags: string;
  whole: AnyValue[] | undefined;
}

const NO_TYPES: MapInfo = { tags: '', whole: undefined };

/** Writes an exporter attribute map and returns the type information it lost. */
function writeMap(w: RowBinaryWriter, attrs: readonly KeyValue[]): MapInfo {
  const n = attrs.length;
  w.varUInt(n);
  let tags = '';
  let typed = false;
  let whole: AnyValue[] | undefined;
  for (let i = 0; i < n; i++) {
    const kv = attrs[i]!;
    w.string(kv.key);
    const v = kv.value;
    if ('stringValue' in v) {
      w.string(v.stringValue);
      if (typed) tags += 's';
      continue;
    }
    if (!typed) {
      typed = true;
      tags = 's'.repeat(i);
    }
    const t = tagOf(v);
    tags += t;
    w.string(anyValueToString(v));
    if (t === 'j') (whole ??= []).push(v);
  }
  return typed ? { tags, whole } : NO_TYPES;
}

// TracehouseExtra is built as JSON text directly: tags are plain letters and counts integers, so
// only user strings and whole values need JSON.stringify. `x` is the text between the braces.
function field(x: string, key: string, json: string): string {
  return x === '' ? `"${key}":${json}` : `${x},"${key}":${json}`;
}

/** Fields for a map's type information under the given keys (tags / whole values). */
function mapFields(x: string, info: MapInfo, tagsKey: string, wholeKey: string): string {
  if (info.tags === '') return x;
  x = field(x, tagsKey, `"${info.tags}"`);
  return info.whole ? field(x, wholeKey, stringifyExact(info.whole, true)) : x;
}

function countField(x: string, key: string, n: number): string {
  return n === 0 ? x : field(x, key, String(n));
}

/** DateTime64(9) ticks are Int64: times beyond 2262 are clamped and kept exactly in the extra. */
function fitsDateTime64(t: bigint): boolean {
  return t >= 0n && t <= INT64_MAX;
}

/**
 * The exporter's keys convert Timestamp to DateTime (toDateTime, toDate), which wraps after
 * 2106-02-07 and then misleads partition pruning and primary-key analysis. Key timestamps are
 * clamped to that instant; the exact time goes to the extra.
 */
export const MAX_KEY_NS = 4294967295n * 1_000_000_000n;

interface CachedMap<T> {
  owner: T;
  bytes: Uint8Array;
  /** The owner's TracehouseExtra fields (spans and logs differ). */
  spanFields: string;
  logFields: string;
}

class ClickhouseEncoder implements RowEncoder {
  readonly #shards: number;
  readonly #w = new RowBinaryWriter();
  // Rows of one request share their resource and scope objects: encode each once.
  #resource: CachedMap<ResourceInfo> | undefined;
  #scope: CachedMap<ScopeInfo> | undefined;
  #spanScope: { owner: ScopeInfo; fields: string } | undefined;

  constructor(shards: number) {
    this.#shards = shards;
  }

  encodeSpans(rows: SpanRow[]): EncodedChunk[] {
    return this.#encode(rows, (r) => shardOf(r.traceId, this.#shards), (r) => this.#span(r));
  }

  encodeLogs(rows: LogRow[]): EncodedChunk[] {
    return this.#encode(rows, (r) => logShard(r, this.#shards), (r) => this.#log(r));
  }

  #encode<R>(rows: R[], shard: (r: R) => number, write: (r: R) => void): EncodedChunk[] {
    if (rows.length === 0) return [];
    const w = this.#w;
    w.reset();
    if (this.#shards <= 1) {
      for (const r of rows) write(r);
      return [{ partition: 0, rows: rows.length, data: w.take() }];
    }
    const groups: R[][] = Array.from({ length: this.#shards }, () => []);
    for (const r of rows) groups[shard(r)]!.push(r);
    const out: EncodedChunk[] = [];
    for (let p = 0; p < groups.length; p++) {
      const g = groups[p]!;
      if (g.length === 0) continue;
      for (const r of g) write(r);
      out.push({ partition: p, rows: g.length, data: w.take() });
    }
    return out;
  }

  /** Writes ResourceAttributes and returns the resource's extra fields. */
  #resourceMap(resource: ResourceInfo): CachedMap<ResourceInfo> {
    const w = this.#w;
    const c = this.#resource;
    if (c !== undefined && c.owner === resource) {
      w.raw(c.bytes);
      return c;
    }
    const m = w.mark();
    const info = writeMap(w, resource.attributes);
    let x = mapFields('', info, 'rt', 'rj');
    x = countField(x, 'rd', resource.droppedAttributesCount);
    const logFields = x;
    if (resource.schemaUrl !== '') x = field(x, 'ru', JSON.stringify(resource.schemaUrl));
    return (this.#resource = { owner: resource, bytes: w.sliceFrom(m), spanFields: x, logFields });
  }

  /** A span's scope fields (otel_traces has no column for scope attributes or schema URL). */
  #spanScopeFields(scope: ScopeInfo): string {
    const c = this.#spanScope;
    if (c !== undefined && c.owner === scope) return c.fields;
    let x = '';
    if (scope.attributes.length > 0) x = field(x, 'sa', stringifyExact(scope.attributes, true));
    x = countField(x, 'sd', scope.droppedAttributesCount);
    if (scope.schemaUrl !== '') x = field(x, 'su', JSON.stringify(scope.schemaUrl));
    this.#spanScope = { owner: scope, fields: x };
    return x;
  }

  /** Writes a log's ScopeAttributes and returns the scope's extra fields. */
  #logScopeMap(scope: ScopeInfo): string {
    const w = this.#w;
    const c = this.#scope;
    if (c !== undefined && c.owner === scope) {
      w.raw(c.bytes);
      return c.logFields;
    }
    const m = w.mark();
    const info = writeMap(w, scope.attributes);
    const x = countField(mapFields('', info, 'st', 'sj'), 'sd', scope.droppedAttributesCount);
    this.#scope = { owner: scope, bytes: w.sliceFrom(m), spanFields: '', logFields: x };
    return x;
  }

  #span(r: SpanRow): void {
    const w = this.#w;
    let x = '';

    const start = r.startTimeUnixNano;
    if (start <= MAX_KEY_NS) w.int64(start);
    else {
      w.int64(MAX_KEY_NS);
      x = field(x, 'st', `"${start}"`);
    }
    w.string(r.traceId);
    w.string(r.spanId);
    w.string(r.parentSpanId);
    w.string(r.traceState);
    w.string(r.name);
    const kind = SPAN_KINDS[r.kind];
    w.string(kind ?? 'Unspecified');
    if (kind === undefined) x = field(x, 'k', String(r.kind));
    w.string(r.serviceName);

    const rf = this.#resourceMap(r.resource).spanFields;
    if (rf !== '') x = x === '' ? rf : `${x},${rf}`;

    const sc = r.scope;
    w.string(sc.name);
    w.string(sc.version);
    const sf = this.#spanScopeFields(sc);
    if (sf !== '') x = x === '' ? sf : `${x},${sf}`;

    x = mapFields(x, writeMap(w, r.attributes), 't', 'j');
    x = countField(x, 'd', r.droppedAttributesCount);

    w.uint64(r.durationNano);
    if (r.endTimeUnixNano !== start + r.durationNano) x = field(x, 'en', `"${r.endTimeUnixNano}"`);
    const status = STATUS_CODES[r.statusCode];
    w.string(status ?? 'Unset');
    if (status === undefined) x = field(x, 'c', String(r.statusCode));
    w.string(r.statusMessage);

    const events = r.events;
    const ne = events.length;
    w.varUInt(ne);
    for (let i = 0; i < ne; i++) w.int64(events[i]!.timeUnixNano);
    w.varUInt(ne);
    for (let i = 0; i < ne; i++) w.string(events[i]!.name);
    w.varUInt(ne);
    if (ne > 0) {
      let ev: string[] | undefined;
      for (let i = 0; i < ne; i++) {
        const e = events[i]!;
        let n = mapFields('', writeMap(w, e.attributes), 't', 'j');
        n = countField(n, 'd', e.droppedAttributesCount);
        if (!fitsDateTime64(e.timeUnixNano)) n = field(n, 'ts', `"${e.timeUnixNano}"`);
        if (n !== '') (ev ??= new Array<string>(ne).fill('0'))[i] = `{${n}}`;
      }
      if (ev) x = field(x, 'ev', `[${ev.join(',')}]`);
    }
    x = countField(x, 'de', r.droppedEventsCount);

    const links = r.links;
    const nl = links.length;
    w.varUInt(nl);
    for (let i = 0; i < nl; i++) w.string(links[i]!.traceId);
    w.varUInt(nl);
    for (let i = 0; i < nl; i++) w.string(links[i]!.spanId);
    w.varUInt(nl);
    for (let i = 0; i < nl; i++) w.string(links[i]!.traceState);
    w.varUInt(nl);
    if (nl > 0) {
      let ln: string[] | undefined;
      for (let i = 0; i < nl; i++) {
        const l = links[i]!;
        let n = mapFields('', writeMap(w, l.attributes), 't', 'j');
        n = countField(n, 'd', l.droppedAttributesCount);
        n = countField(n, 'f', l.flags);
        if (n !== '') (ln ??= new Array<string>(nl).fill('0'))[i] = `{${n}}`;
      }
      if (ln) x = field(x, 'ln', `[${ln.join(',')}]`);
    }
    x = countField(x, 'dl', r.droppedLinksCount);
    x = countField(x, 'f', r.flags);
    w.string(x === '' ? '' : `{${x}}`);
  }

  #log(r: LogRow): void {
    const w = this.#w;
    let x = '';

    // Like the exporter: a record without a timestamp is filed under its observed time.
    const time = r.timeUnixNano !== 0n ? r.timeUnixNano : r.observedTimeUnixNano;
    if (time <= MAX_KEY_NS) w.int64(time);
    else {
      w.int64(MAX_KEY_NS);
      x = field(x, 'ts', `"${time}"`);
    }
    if (time !== r.timeUnixNano) x = field(x, 'tz', '1');
    w.string(r.traceId);
    w.string(r.spanId);
    w.uint8(r.flags);
    if (r.flags > 0xff || r.flags < 0) x = field(x, 'f', String(r.flags));
    w.string(r.severityText);
    w.uint8(r.severityNumber);
    if (r.severityNumber > 0xff || r.severityNumber < 0) x = field(x, 'sv', String(r.severityNumber));
    w.string(r.serviceName);

    const body = r.body;
    if ('stringValue' in body) {
      w.string(body.stringValue);
    } else {
      const bt = tagOf(body);
      w.string(anyValueToString(body));
      x = field(x, 'bt', `"${bt}"`);
      if (bt === 'j') x = field(x, 'bj', stringifyExact(body, true));
    }

    const res = r.resource;
    w.string(res.schemaUrl);
    const rf = this.#resourceMap(res).logFields;
    if (rf !== '') x = x === '' ? rf : `${x},${rf}`;

    const sc = r.scope;
    w.string(sc.schemaUrl);
    w.string(sc.name);
    w.string(sc.version);
    const sf = this.#logScopeMap(sc);
    if (sf !== '') x = x === '' ? sf : `${x},${sf}`;

    x = mapFields(x, writeMap(w, r.attributes), 't', 'j');
    x = countField(x, 'd', r.droppedAttributesCount);
    w.string(r.eventName);
    w.int64(r.observedTimeUnixNano);
    if (!fitsDateTime64(r.observedTimeUnixNano)) x = field(x, 'ots', `"${r.observedTimeUnixNano}"`);
    w.string(x === '' ? '' : `{${x}}`);
  }
}

/** The worker-side entry point named by the backend's EncoderSpec. */
export function createEncoder(options: EncoderOptions): RowEncoder {
  return new ClickhouseEncoder(Math.max(1, options.partitions));
}
