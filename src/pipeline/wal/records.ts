// The write-ahead log's record format: framing, encoding, and reading a segment back.
//
// Framing: magic u32 | length u32 | type u8 | format u8 | base hint u16 | crc32 u32, then
// `length` payload bytes. Format 1 (written since segment files are reused): the CRC covers the
// segment's base (its file name's number, u64) and then bytes 4..12 of the header and the
// payload; the hint is the base's low 16 bits. Format 0 (older versions; hint zero): the CRC
// covers bytes 4..12 and the payload alone.
//
// Why the base: a stored segment's file is renamed to the next segment and written again from
// its first byte (index.ts: its pages are in the page cache already, where a new file's have to
// be allocated). Its old records stay past the new ones, whole and with valid checksums of their
// own, and must never be read as the new segment's: under the new base their checksums fail.
//
// A record that fails the checks is skipped to the next offset where a whole valid record starts
// (magic, length, CRC), its bytes counted as corrupt (bit rot in a written segment: the records
// after it are acknowledged data and are kept). What follows a segment's last valid record is a
// torn append (crash mid-write: cut off, counted, logged once), unless the file holds an earlier
// use's records there: then only a header of this segment's (a record cut short) is, as far as
// that record runs, and the rest is what the file held before. Neither stops the start. (A crash
// in the middle of a round can also leave a hole followed by a later record of the same round;
// that counts as corrupt, though nothing of that round had been acknowledged.) A replayed batch
// that lost chunks to corruption gets a new id, see WriteAheadLog.open() in index.ts.
import { crc32 } from 'node:zlib';
import type { Signal } from '../../model/signal.ts';
import { DEFAULT_TENANT } from '../../model/tenant.ts';
import type { EncodedChunk, WriteBatch } from '../../storage/backend.ts';

const MAGIC = 0x4c574854; // 'THWL' little-endian
const HEADER_BYTES = 16;
export const ENTRY = 1;
export const BATCH = 2;
export const STORED = 3;

/** Where a chunk lives in the log: its entry's sequence number and its index in that entry. */
export interface WalChunkRef {
  entry: number;
  index: number;
}

const SIGNALS: readonly Signal[] = ['traces', 'logs'];

/** Format 1: the CRC covers the segment's base first (see the top of this file). */
const FORMAT_BASED = 1;

/** The hint a format-1 header carries of its segment's base. */
const hintOf = (base: number): number => base & 0xffff;

/** The base hint of a format-1 header at off (whole in buf), or -1 for a header of another format. */
function basedHint(buf: Buffer, off: number): number {
  return buf.readUInt8(off + 9) === FORMAT_BASED ? buf.readUInt16LE(off + 10) : -1;
}

/** A record's header and payload, to be sealed (seal()) for the segment it is written to. */
function frame(type: number, payload: readonly Uint8Array[]): Uint8Array[] {
  let len = 0;
  for (const p of payload) len += p.byteLength;
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt32LE(len, 4);
  h.writeUInt8(type, 8);
  return [h, ...payload];
}

/** The CRC's start for a format-1 record of the segment with this base (seal, scanSegment). */
export function baseSeed(base: number): number {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(base));
  return crc32(b);
}

/**
 * Stamps a record (an encode* result) with the format, the base's hint and its CRC for the
 * segment with this base; seed is baseSeed(base), computed once for all the records a round seals.
 */
export function seal(parts: readonly Uint8Array[], base: number, seed: number): void {
  const h = parts[0] as Buffer;
  h.writeUInt8(FORMAT_BASED, 9);
  h.writeUInt16LE(hintOf(base), 10);
  let crc = crc32(h.subarray(4, 12), seed);
  for (let i = 1; i < parts.length; i++) crc = crc32(parts[i]!, crc);
  h.writeUInt32LE(crc, 12);
}

/**
 * A tenant as stored in a record: UTF-8, at most 255 bytes, and empty for the default tenant, so
 * records written before tenants existed (the length byte was zero) read back as the default's.
 */
function tenantBytes(tenant: string): Buffer {
  const t = Buffer.from(tenant === DEFAULT_TENANT ? '' : tenant, 'utf8');
  if (t.byteLength > 255) throw new RangeError(`tenant longer than 255 bytes: ${tenant.slice(0, 40)}…`);
  return t;
}

function tenantOf(p: Buffer, off: number, len: number): string {
  return len === 0 ? DEFAULT_TENANT : p.toString('utf8', off, off + len);
}

/** The ENTRY record of one request's chunks, as buffers for writev (the chunks are not copied). */
export function encodeEntry(seq: number, signal: Signal, chunks: readonly EncodedChunk[], tenant: string = DEFAULT_TENANT): Uint8Array[] {
  const t = tenantBytes(tenant);
  const head = Buffer.alloc(16 + 12 * chunks.length + t.byteLength);
  head.writeBigUInt64LE(BigInt(seq), 0);
  head.writeUInt8(SIGNALS.indexOf(signal), 8);
  head.writeUInt8(t.byteLength, 9);
  head.writeUInt32LE(chunks.length, 12);
  chunks.forEach((c, i) => {
    head.writeUInt32LE(c.partition, 16 + 12 * i);
    head.writeUInt32LE(c.rows, 20 + 12 * i);
    head.writeUInt32LE(c.data.byteLength, 24 + 12 * i);
  });
  t.copy(head, 16 + 12 * chunks.length);
  return frame(ENTRY, [head, ...chunks.map((c) => c.data)]);
}

/** The BATCH record naming a write batch's chunks, in order. */
export function encodeBatch(seq: number, batch: WriteBatch, refs: readonly WalChunkRef[]): Uint8Array[] {
  const id = Buffer.from(batch.batchId, 'utf8');
  if (id.byteLength > 255) throw new RangeError(`batch id longer than 255 bytes: ${batch.batchId.slice(0, 40)}…`);
  const t = tenantBytes(batch.tenant);
  const b = Buffer.alloc(20 + id.byteLength + 12 * refs.length + t.byteLength);
  b.writeBigUInt64LE(BigInt(seq), 0);
  b.writeUInt8(SIGNALS.indexOf(batch.signal), 8);
  b.writeUInt8(id.byteLength, 9);
  b.writeUInt8(t.byteLength, 10);
  b.writeUInt32LE(batch.partition, 12);
  b.writeUInt32LE(refs.length, 16);
  id.copy(b, 20);
  let o = 20 + id.byteLength;
  for (const r of refs) {
    b.writeBigUInt64LE(BigInt(r.entry), o);
    b.writeUInt32LE(r.index, o + 8);
    o += 12;
  }
  t.copy(b, o);
  return frame(BATCH, [b]);
}

/** The STORED record of batches the store committed. */
export function encodeStored(seqs: readonly number[]): Uint8Array[] {
  const b = Buffer.alloc(4 + 8 * seqs.length);
  b.writeUInt32LE(seqs.length, 0);
  seqs.forEach((s, i) => b.writeBigUInt64LE(BigInt(s), 4 + 8 * i));
  return frame(STORED, [b]);
}

/** Total length of a record's buffers. */
export function bytesOf(parts: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  return n;
}

function signalAt(code: number): Signal {
  const s = SIGNALS[code];
  if (s === undefined) throw new RangeError(`unknown signal code ${code}`);
  return s;
}

/** A record read back. */
export type Parsed =
  | { type: typeof ENTRY; seq: number; signal: Signal; tenant: string; chunks: EncodedChunk[] }
  | { type: typeof BATCH; seq: number; signal: Signal; tenant: string; partition: number; batchId: string; refs: WalChunkRef[] }
  | { type: typeof STORED; seqs: number[] };

/** Whether `off` starts a header of this segment's (format 1, its base's hint): what a torn append leaves. */
function ownHeaderAt(buf: Buffer, off: number, base: number): boolean {
  return off + HEADER_BYTES <= buf.length && buf.readUInt32LE(off) === MAGIC && basedHint(buf, off) === hintOf(base);
}

/** The first offset from `off` on holding a format-1 header of another segment (an earlier use of the file), or -1. */
function otherHeaderAfter(buf: Buffer, off: number, base: number): number {
  for (let i = buf.indexOf(MAGIC_BYTES, off); i !== -1 && i + HEADER_BYTES <= buf.length; i = buf.indexOf(MAGIC_BYTES, i + 1)) {
    const hint = basedHint(buf, i);
    if (hint !== -1 && hint !== hintOf(base)) return i;
  }
  return -1;
}

/** The record at `off` of the segment with this base when it is whole and its checksum matches, else undefined. */
function recordAt(buf: Buffer, off: number, base: number, seed: number): { end: number; type: number; payload: Buffer } | undefined {
  if (off + HEADER_BYTES > buf.length || buf.readUInt32LE(off) !== MAGIC) return undefined;
  const hint = basedHint(buf, off);
  // Format 0 has a zero format byte and a zero hint.
  if (hint === -1 ? buf.readUInt8(off + 9) !== 0 || buf.readUInt16LE(off + 10) !== 0 : hint !== hintOf(base)) return undefined;
  const len = buf.readUInt32LE(off + 4);
  const end = off + HEADER_BYTES + len;
  if (end > buf.length) return undefined;
  const payload = buf.subarray(off + HEADER_BYTES, end);
  if (crc32(payload, crc32(buf.subarray(off + 4, off + 12), hint === -1 ? 0 : seed)) !== buf.readUInt32LE(off + 12)) return undefined;
  return { end, type: buf.readUInt8(off + 8), payload };
}

/** Decodes a checksummed payload; throws on a layout this version does not know. */
function parsePayload(type: number, p: Buffer): Parsed {
  const seqAt = (o: number): number => Number(p.readBigUInt64LE(o));
  if (type === ENTRY) {
    const n = p.readUInt32LE(12);
    const tenantLen = p.readUInt8(9);
    const tenantOff = 16 + 12 * n;
    let dataOff = tenantOff + tenantLen;
    const chunks: EncodedChunk[] = [];
    for (let i = 0; i < n; i++) {
      const len = p.readUInt32LE(24 + 12 * i);
      if (dataOff + len > p.length) throw new RangeError('entry chunk beyond its record');
      // A view for now; what is replayed is copied out (see own()), so segment buffers do not stay.
      chunks.push({ partition: p.readUInt32LE(16 + 12 * i), rows: p.readUInt32LE(20 + 12 * i), data: p.subarray(dataOff, dataOff + len) });
      dataOff += len;
    }
    return { type, seq: seqAt(0), signal: signalAt(p.readUInt8(8)), tenant: tenantOf(p, tenantOff, tenantLen), chunks };
  }
  if (type === BATCH) {
    const idLen = p.readUInt8(9);
    const tenantLen = p.readUInt8(10);
    const n = p.readUInt32LE(16);
    const tenantOff = 20 + idLen + 12 * n;
    if (tenantOff + tenantLen > p.length) throw new RangeError('batch refs beyond their record');
    const refs: WalChunkRef[] = [];
    for (let i = 0, o = 20 + idLen; i < n; i++, o += 12) refs.push({ entry: seqAt(o), index: p.readUInt32LE(o + 8) });
    return { type, seq: seqAt(0), signal: signalAt(p.readUInt8(8)), tenant: tenantOf(p, tenantOff, tenantLen), partition: p.readUInt32LE(12), batchId: p.toString('utf8', 20, 20 + idLen), refs };
  }
  if (type === STORED) {
    const n = p.readUInt32LE(0);
    if (4 + 8 * n > p.length) throw new RangeError('stored list beyond its record');
    return { type, seqs: Array.from({ length: n }, (_, i) => seqAt(4 + 8 * i)) };
  }
  throw new RangeError(`unknown record type ${type}`);
}

/** A region of a segment that failed the checks; `end`: nothing valid follows it. */
export interface BadRegion {
  offset: number;
  bytes: number;
  end: boolean;
}

/**
 * Reads one segment (base: the number in its file name): its valid records, the regions that
 * failed the checks, and where its last valid record ends.
 */
export function scanSegment(buf: Buffer, base: number): { records: Parsed[]; bad: BadRegion[]; validEnd: number } {
  const records: Parsed[] = [];
  const bad: BadRegion[] = [];
  const seed = baseSeed(base);
  let off = 0;
  let validEnd = 0;
  while (off < buf.length) {
    const r = recordAt(buf, off, base, seed);
    let parsed: Parsed | undefined;
    if (r) {
      try {
        parsed = parsePayload(r.type, r.payload);
      } catch {
        parsed = undefined;
      }
    }
    if (r && parsed) {
      records.push(parsed);
      off = r.end;
      validEnd = off;
      continue;
    }
    // Resynchronize: the next offset holding a whole record with a matching checksum.
    let next = -1;
    for (let i = buf.indexOf(MAGIC_BYTES, off + 1); i !== -1; i = buf.indexOf(MAGIC_BYTES, i + 1)) {
      if (recordAt(buf, i, base, seed)) {
        next = i;
        break;
      }
    }
    if (next !== -1) {
      bad.push({ offset: off, bytes: next - off, end: false });
      off = next;
      continue;
    }
    // The segment's end. In a file holding no other segment's records (a new file, or an older
    // version's, which is never reused) anything after the last record is damage. A reused file
    // holds its earlier use's records past the new ones: damage there is only a header of this
    // segment's (a torn or damaged last record), as far as that record says it runs.
    const earlier = otherHeaderAfter(buf, off, base);
    if (earlier === -1) bad.push({ offset: off, bytes: buf.length - off, end: true });
    else if (ownHeaderAt(buf, off, base)) bad.push({ offset: off, bytes: Math.min(earlier, off + HEADER_BYTES + buf.readUInt32LE(off + 4)) - off, end: true });
    break;
  }
  return { records, bad, validEnd };
}

const MAGIC_BYTES = (() => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(MAGIC);
  return b;
})();
