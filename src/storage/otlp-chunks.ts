// The chunk format of the stores that keep what arrived (memory and SQLite): what arrived, plus
// what the store indexes. A span or log record is kept as its own OTLP protobuf bytes; its
// resource and scope are kept once per group; a small fixed header carries the columns the store
// indexes, so ingest reads a few numbers and slices, and only a read decodes a row (with the row
// decoder, from a one-item request rebuilt around the stored bytes). Protobuf bytes are about a quarter of the row lines' JSON and cost
// nothing to write beyond their validation (docs/performance.md, "Store what arrived").
//
// A chunk is CHUNK_MAGIC, the number of its span or log records (u32), then its records, all
// integers little-endian (chunks of versions before the count start with CHUNK_MAGIC_UNCOUNTED
// and go straight to their records: write-ahead logs keep them, and they are read as they were):
//
//   group  REC_GROUP  u32 serviceLen  service name (UTF-8)
//                     u32 resourceLen  the ResourceSpans/ResourceLogs fields but its scopes (field 2)
//                     u32 scopeLen     the ScopeSpans/ScopeLogs fields but its items (field 2)
//   span   REC_SPAN   trace id (16)  span id (8)  u8 parentLen (0 or 8)  parent id (8, zeros if none)
//                     u32 startLo u32 startHi u32 endLo u32 endHi  i32 statusCode  i32 kind
//                     u32 nameOffset u32 nameLen (within the span bytes)  u32 spanLen  span bytes
//   log    REC_LOG    u32 timeLo u32 timeHi (its time, or its observed time when unset)
//                     u8 traceLen (0 or 16)  trace id (16, zeros if none)  i32 severityNumber
//                     u32 logLen  log record bytes
//
// Items belong to the group record before them. The transcoder that writes chunks is
// src/pipeline/transcode/otlp/.
import type { LogRow, SpanRow } from '../model/rows.ts';
import { decodeLogsProto, decodeTracesProto } from '../pipeline/decode/index.ts';
import type { SlicingBuffer } from '../pipeline/decode/wire.ts';

export const CHUNK_MAGIC = 0x50; // 'P'
/** The first byte of a chunk written before chunks carried their record count. */
export const CHUNK_MAGIC_UNCOUNTED = 0x4f; // 'O'
/** Bytes before a chunk's first record. */
export const CHUNK_HEAD_BYTES = 5;
export const REC_GROUP = 1;
export const REC_SPAN = 2;
export const REC_LOG = 3;
// Offsets of a span record's fields from its type byte.
export const S_TRACE = 1;
export const S_SPAN = 17;
export const S_PARENT_LEN = 25;
export const S_PARENT = 26;
export const S_START = 34;
export const S_END = 42;
export const S_STATUS = 50;
export const S_KIND = 54;
export const S_NAME_OFFSET = 58;
export const S_NAME_LEN = 62;
export const S_LEN = 66;
/** Bytes of a span record before its span bytes. */
export const SPAN_HEAD_BYTES = 70;
// Offsets of a log record's fields.
export const L_TIME = 1;
export const L_TRACE_LEN = 9;
export const L_TRACE = 10;
export const L_SEVERITY = 26;
export const L_LEN = 30;
/** Bytes of a log record before its log record bytes. */
export const LOG_HEAD_BYTES = 34;

/** Where a group's pieces are in a chunk: its record starts at `at`. */
export interface GroupRef {
  at: number;
  service: string;
  resourceStart: number;
  resourceEnd: number;
  scopeStart: number;
  scopeEnd: number;
}

/** Thrown for bytes that are not a chunk of this format (a write-ahead log of another version, say). */
export class ChunkFormatError extends Error {
  override readonly name = 'ChunkFormatError';
}

function readGroup(buf: Buffer, at: number): GroupRef & { end: number } {
  const serviceLen = groupLength(buf, at + 1, at);
  const service = buf.toString('utf8', at + 5, at + 5 + serviceLen);
  const resourceStart = at + 9 + serviceLen;
  const resourceEnd = resourceStart + groupLength(buf, at + 5 + serviceLen, at);
  const scopeStart = resourceEnd + 4;
  const scopeEnd = scopeStart + groupLength(buf, resourceEnd, at);
  if (scopeEnd > buf.length) throw new ChunkFormatError(`the group record at byte ${at} runs ${scopeEnd - buf.length} bytes past the chunk's end`);
  return { at, service, resourceStart, resourceEnd, scopeStart, scopeEnd, end: scopeEnd };
}

/**
 * The bytes of the resource and scope of the group record at `at`: what each of its items carries
 * once read as a row (a byte bound on rows read counts them with each item's own bytes).
 */
export function groupPartsBytes(buf: Buffer, at: number): number {
  const g = readGroup(buf, at);
  return g.resourceEnd - g.resourceStart + (g.scopeEnd - g.scopeStart);
}

/** The u32 length at byte `p` of the group record at `at`, refused if the chunk ends before it. */
function groupLength(buf: Buffer, p: number, at: number): number {
  if (p + 4 > buf.length) throw new ChunkFormatError(`the group record at byte ${at} is cut short`);
  return buf.readUInt32LE(p);
}

/** Calls onSpan with each span record of a traces chunk (its type byte at `record`) and its group. */
export function readSpanChunk(c: Uint8Array, onSpan: (group: GroupRef, buf: SlicingBuffer, record: number) => void): void {
  readChunk(c, REC_SPAN, SPAN_HEAD_BYTES, S_LEN, onSpan);
}

/** Calls onLog with each log record of a logs chunk and its group. */
export function readLogChunk(c: Uint8Array, onLog: (group: GroupRef, buf: SlicingBuffer, record: number) => void): void {
  readChunk(c, REC_LOG, LOG_HEAD_BYTES, L_LEN, onLog);
}

/** Whether c is a chunk of this format (of this version or an earlier one), not one of the JSON lines of older versions. */
export const isOtlpChunk = (c: Uint8Array): boolean => c.length > 0 && (c[0] === CHUNK_MAGIC || c[0] === CHUNK_MAGIC_UNCOUNTED);

/**
 * The number of span or log records chunk c says it holds, read from its head alone; -1 for a
 * chunk without the count (an earlier version's), whose records only a walk can count.
 */
export function chunkRecordCount(c: Uint8Array): number {
  if (c.length === 0) return 0;
  if (c[0] === CHUNK_MAGIC) {
    if (c.length < CHUNK_HEAD_BYTES) throw new ChunkFormatError(`a chunk of ${c.length} bytes, shorter than its head`);
    return (c[1]! | (c[2]! << 8) | (c[3]! << 16) | (c[4]! << 24)) >>> 0;
  }
  if (c[0] === CHUNK_MAGIC_UNCOUNTED) return -1;
  throw new ChunkFormatError('not an otlp chunk (first byte ' + c[0] + ')');
}

function readChunk(c: Uint8Array, itemType: number, headBytes: number, lenAt: number, onItem: (group: GroupRef, buf: SlicingBuffer, record: number) => void): void {
  const cursor = new ChunkCursor(c, itemType, headBytes, lenAt);
  while (cursor.next()) onItem(cursor.group!, cursor.buf, cursor.record);
}

/**
 * The span or log records of a chunk, one next() at a time: after a next() that returns true,
 * `record` is the offset of a record's type byte in `buf` and `group` its group. For a loop that
 * does the work of each record itself, without a call per record (the memory store's spans).
 * Throws ChunkFormatError where readSpanChunk and readLogChunk do.
 */
export class ChunkCursor {
  readonly buf: SlicingBuffer;
  group: (GroupRef & { end: number }) | undefined;
  record = -1;
  private p: number;
  private n = 0;
  private readonly count: number;
  private readonly itemType: number;
  private readonly headBytes: number;
  private readonly lenAt: number;

  constructor(c: Uint8Array, itemType: number, headBytes: number, lenAt: number) {
    this.buf = Buffer.from(c.buffer, c.byteOffset, c.byteLength) as SlicingBuffer;
    this.count = this.buf.length === 0 ? 0 : chunkRecordCount(this.buf);
    this.p = this.count < 0 ? 1 : CHUNK_HEAD_BYTES;
    this.itemType = itemType;
    this.headBytes = headBytes;
    this.lenAt = lenAt;
  }

  /** Moves to the next record; false at the chunk's end. A record or group that runs past the chunk's end is refused before it is returned. */
  next(): boolean {
    const buf = this.buf;
    let p = this.p;
    while (p < buf.length) {
      const type = buf[p];
      if (type === REC_GROUP) {
        this.group = readGroup(buf, p);
        p = this.group.end;
      } else if (type === this.itemType && this.group !== undefined) {
        this.record = p;
        this.p = recordEnd(buf, p, this.headBytes, this.lenAt);
        this.n++;
        return true;
      } else throw new ChunkFormatError(`unexpected record type ${type} at byte ${p}`);
    }
    this.p = p;
    this.record = -1;
    if (this.count >= 0 && this.n !== this.count) throw new ChunkFormatError(`a chunk that says it holds ${this.count} records holds ${this.n}`);
    return false;
  }
}

/** Where the record at `p` (headBytes of header, its length after them at lenAt) ends; refused if its header or its bytes run past the end of buf. */
function recordEnd(buf: Buffer, p: number, headBytes: number, lenAt: number): number {
  if (p + headBytes > buf.length) throw new ChunkFormatError(`the record at byte ${p} is cut short in its header`);
  const end = p + headBytes + buf.readUInt32LE(p + lenAt);
  if (end > buf.length) throw new ChunkFormatError(`the record at byte ${p} runs ${end - buf.length} bytes past the chunk's end`);
  return end;
}

/** A cursor over the span records of a traces chunk. */
export const spanCursor = (c: Uint8Array): ChunkCursor => new ChunkCursor(c, REC_SPAN, SPAN_HEAD_BYTES, S_LEN);

/**
 * Calls onSpan with each span record of `records`: span records one after another, with no group
 * record (the SQLite store keeps a run of a trace's spans so, their group beside them). Records
 * that break off (not a span record, or one running past the end) throw ChunkFormatError, or, given
 * onFault, end the walk there with a call to it: why, and how many records were read before.
 */
export function readSpanRecords(records: Uint8Array, onSpan: (buf: SlicingBuffer, record: number) => void, onFault?: (err: ChunkFormatError, read: number) => void): void {
  const buf = Buffer.from(records.buffer, records.byteOffset, records.byteLength) as SlicingBuffer;
  let p = 0;
  let n = 0;
  while (p < buf.length) {
    let end: number;
    try {
      if (buf[p] !== REC_SPAN) throw new ChunkFormatError(`not a span record at byte ${p}`);
      end = recordEnd(buf, p, SPAN_HEAD_BYTES, S_LEN);
    } catch (err) {
      if (!onFault) throw err;
      onFault(err as ChunkFormatError, n);
      return;
    }
    onSpan(buf, p);
    n++;
    p = end;
  }
}

/** Where the span record at `r` ends (its span bytes' end). */
export const spanRecordEnd = (buf: Buffer, r: number): number => r + SPAN_HEAD_BYTES + buf.readUInt32LE(r + S_LEN);
/** Where the span name's UTF-8 bytes start in buf (spanNameLength bytes). */
export const spanNameStart = (buf: Buffer, r: number): number => r + SPAN_HEAD_BYTES + buf.readUInt32LE(r + S_NAME_OFFSET);
export const spanNameLength = (buf: Buffer, r: number): number => buf.readUInt32LE(r + S_NAME_LEN);
/** The span's own protobuf bytes, without copying. */
export const spanBytes = (buf: Buffer, r: number): Buffer => buf.subarray(r + SPAN_HEAD_BYTES, spanRecordEnd(buf, r));

// The indexed columns of the span record at `r`.

export const spanTraceId = (buf: SlicingBuffer, r: number): string => buf.hexSlice(r + S_TRACE, r + S_SPAN);
export const spanId = (buf: SlicingBuffer, r: number): string => buf.hexSlice(r + S_SPAN, r + S_PARENT_LEN);
/** The span id as two int32 words, for comparing without a string. */
export const spanIdWord = (buf: Buffer, r: number, word: 0 | 1): number => buf.readInt32LE(r + S_SPAN + 4 * word);
export const spanParentId = (buf: SlicingBuffer, r: number): string => (buf[r + S_PARENT_LEN] === 0 ? '' : buf.hexSlice(r + S_PARENT, r + S_START));
export const spanStart = (buf: Buffer, r: number): bigint => buf.readBigUInt64LE(r + S_START);
export const spanEnd = (buf: Buffer, r: number): bigint => buf.readBigUInt64LE(r + S_END);
export const spanStatus = (buf: Buffer, r: number): number => buf.readInt32LE(r + S_STATUS);
export const spanKind = (buf: Buffer, r: number): number => buf.readInt32LE(r + S_KIND);
/** Whether the span records at r1 and r2 of buf have the same trace id. */
export function sameTraceId(buf: Buffer, r1: number, r2: number): boolean {
  for (let i = S_TRACE; i < S_SPAN; i += 4) if (buf.readInt32LE(r1 + i) !== buf.readInt32LE(r2 + i)) return false;
  return true;
}

export function spanName(buf: SlicingBuffer, r: number): string {
  const at = spanNameStart(buf, r);
  return buf.utf8Slice(at, at + spanNameLength(buf, r));
}

/** An OperationCache's slot: the operation's service, kind and name (UTF-8, and a DataView of it for comparing four bytes at a time). */
interface CachedOperation<T> {
  readonly service: string;
  readonly kind: number;
  readonly name: Uint8Array;
  readonly nameView: DataView;
  readonly value: T;
}

/** Slots of an OperationCache: a power of two. */
const OPERATION_CACHE_SLOTS = 4096;

/**
 * The longest span name an OperationCache keeps, in bytes. A slot outlives its operation's spans
 * (until another operation takes it), uncounted by the store's bounds, so what the slots hold must
 * be small whatever the names are: at most ~4,096 × (this, a string of it and ~100 bytes), ~3 MiB.
 * Longer names (an SQL statement, a URL) are looked up by name each time.
 */
export const MAX_CACHED_NAME_BYTES = 256;

/**
 * What a store keeps per operation (T), for the span records whose operation it met lately: found
 * by the bytes of a span's name, its kind and its group's service, so that a span whose operation
 * is known needs no name string and no map lookup. A slot holds the last operation put after a
 * get() that hashed to it; a miss is only slower. (A cache per chunk with 64 slots, hashed on four
 * bytes of the name, missed for 40 % of the bench traffic's spans.) The memory store keeps one
 * across its writes, the SQLite store one per batch.
 */
export class OperationCache<T> {
  private readonly slots = new Array<CachedOperation<T> | undefined>(OPERATION_CACHE_SLOTS);
  /** The slot of the last get(), for put(). */
  private slot = 0;
  /** The hash of the last service met (its spans come one group at a time). */
  private hashedService: string | undefined;
  private serviceHash = 0;

  /** Forgets every operation. */
  clear(): void {
    this.slots.fill(undefined);
  }

  /**
   * The operation of the span record at `record` of buf (view: a DataView of the same bytes), whose
   * group's service is `service`, if it was met lately.
   */
  get(service: string, buf: Buffer, view: DataView, record: number): T | undefined {
    if (service !== this.hashedService) {
      let h = 0x811c9dc5;
      for (let i = 0; i < service.length; i++) h = Math.imul(h ^ service.charCodeAt(i), 0x01000193);
      this.hashedService = service;
      this.serviceHash = h;
    }
    const at = record + SPAN_HEAD_BYTES + view.getUint32(record + S_NAME_OFFSET, true);
    const len = view.getUint32(record + S_NAME_LEN, true);
    if (len > MAX_CACHED_NAME_BYTES) return undefined;
    const kind = view.getInt32(record + S_KIND, true);
    const end = at + len;
    const whole = end - (len & 3);
    // FNV-1a over the name four bytes at a time, then its last bytes, seeded with the service's hash and the kind.
    let h = Math.imul(this.serviceHash ^ kind, 0x01000193);
    for (let i = at; i < whole; i += 4) h = Math.imul(h ^ view.getInt32(i, true), 0x01000193);
    for (let i = whole; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
    this.slot = (h ^ (h >>> 16)) & (OPERATION_CACHE_SLOTS - 1);
    const op = this.slots[this.slot];
    if (op === undefined || op.kind !== kind || op.service !== service) return undefined;
    const name = op.name;
    if (name.length !== len) return undefined;
    const words = op.nameView;
    for (let i = 0; i < len - 3; i += 4) if (words.getInt32(i, true) !== view.getInt32(at + i, true)) return undefined;
    for (let i = len & ~3; i < len; i++) if (name[i] !== buf[at + i]) return undefined;
    return op.value;
  }

  /** Keeps `value` as the operation of the span record the last get() missed (the same service, buf and record), unless its name is too long to keep; returns it. */
  put(service: string, buf: Buffer, record: number, value: T): T {
    const len = spanNameLength(buf, record);
    if (len > MAX_CACHED_NAME_BYTES) return value;
    const at = spanNameStart(buf, record);
    const name = new Uint8Array(buf.subarray(at, at + len));
    this.slots[this.slot] = { service, kind: spanKind(buf, record), name, nameView: new DataView(name.buffer), value };
    return value;
  }
}

// The indexed columns of the log record at `r`.

/** Its time, or its observed time when unset. */
export const logTime = (buf: Buffer, r: number): bigint => buf.readBigUInt64LE(r + L_TIME);
export const logTraceId = (buf: SlicingBuffer, r: number): string => (buf[r + L_TRACE_LEN] === 0 ? '' : buf.hexSlice(r + L_TRACE, r + L_SEVERITY));
export const logSeverity = (buf: Buffer, r: number): number => buf.readInt32LE(r + L_SEVERITY);

// ---------------------------------------------------------------------------------------------
// Reads: a one-item export request around the stored bytes, decoded by the row decoder.

/** Items were validated at ingest under a nesting limit of at most 1000 (receiver.maxNestingDepth). */
const READ_LIMITS = { maxNestingDepth: 1000 };

function varintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n >>>= 7;
    len++;
  }
  return len;
}

function putVarint(out: Uint8Array, p: number, n: number): number {
  while (n >= 0x80) {
    out[p++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[p++] = n;
  return p;
}

/** Export request { 1: group { resource fields, 2: scope { scope fields, 2: item } } } around one item's bytes. */
function oneItemRequest(resource: Uint8Array, scope: Uint8Array, item: Uint8Array): Uint8Array {
  const scopeLen = scope.length + 1 + varintLen(item.length) + item.length;
  const groupLen = resource.length + 1 + varintLen(scopeLen) + scopeLen;
  const out = new Uint8Array(1 + varintLen(groupLen) + groupLen);
  out[0] = 10;
  let p = putVarint(out, 1, groupLen);
  out.set(resource, p);
  p += resource.length;
  out[p++] = 18;
  p = putVarint(out, p, scopeLen);
  out.set(scope, p);
  p += scope.length;
  out[p++] = 18;
  p = putVarint(out, p, item.length);
  out.set(item, p);
  return out;
}

/**
 * A stored span as a row, from its group's pieces (the ResourceSpans fields but its scopes, the
 * ScopeSpans fields but its spans) and its own bytes. The SQLite store keeps the same pieces.
 */
export function spanFromParts(resource: Uint8Array, scope: Uint8Array, span: Uint8Array): SpanRow {
  const rows = decodeTracesProto(oneItemRequest(resource, scope, span), READ_LIMITS).rows;
  if (rows.length !== 1) throw new ChunkFormatError('a stored span did not decode to one row');
  return rows[0]!;
}

/** A stored log record as a row, from its group's pieces and its own bytes. */
export function logFromParts(resource: Uint8Array, scope: Uint8Array, log: Uint8Array): LogRow {
  const rows = decodeLogsProto(oneItemRequest(resource, scope, log), READ_LIMITS).rows;
  if (rows.length !== 1) throw new ChunkFormatError('a stored log record did not decode to one row');
  return rows[0]!;
}

/** The group's resource and scope pieces, without copying. */
export function groupParts(buf: Buffer, g: GroupRef): { resource: Uint8Array; scope: Uint8Array } {
  return { resource: buf.subarray(g.resourceStart, g.resourceEnd), scope: buf.subarray(g.scopeStart, g.scopeEnd) };
}

/** The stored span whose record starts at `record` (its group's record at `group`) as a row. */
export function spanAt(buf: Buffer, group: number, record: number): SpanRow {
  const { resource, scope } = groupParts(buf, readGroup(buf, group));
  const start = record + SPAN_HEAD_BYTES;
  return spanFromParts(resource, scope, buf.subarray(start, start + buf.readUInt32LE(record + S_LEN)));
}

/** The stored log record whose record starts at `record` as a row. */
export function logAt(buf: Buffer, group: number, record: number): LogRow {
  const { resource, scope } = groupParts(buf, readGroup(buf, group));
  const start = record + LOG_HEAD_BYTES;
  return logFromParts(resource, scope, buf.subarray(start, start + buf.readUInt32LE(record + L_LEN)));
}
