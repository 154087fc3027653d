// The attribute index's terms. One term per span attribute: a 64-bit hash of its key and its
// rendered value, each cut to ATTR_VALUE_CHARS characters, written as 14 base-32 characters
// (AttributeHash). Strings, integers (decimal), booleans and bytes (base64, as OTLP/JSON writes
// them) are rendered; doubles, arrays, maps and empty values give the value-less term (the hash of
// the key alone). The index only finds candidates: every candidate is checked against its decoded
// span, so a term too many (a hash collision included) costs a check, never a wrong answer.
// Hashed rather than spelled out: a term of 14 characters instead of the hex of both (58 bytes a
// term on the bench traffic), which FTS5 hashes, compares and stores at a third less CPU per span.
import { type SlicingBuffer, WireReader } from '../../pipeline/decode/wire.ts';
import { ByteOut } from '../../pipeline/transcode/byte-out.ts';
import { KV, scanKeyValue } from '../../pipeline/transcode/wire-scan.ts';

/** Longest attribute key or value the index keeps; a longer one is indexed by its prefix and confirmed on the document. */
export const ATTR_VALUE_CHARS = 128;

/** Base-32 digits of a term: lowercase, as FTS5's ascii tokenizer folds case. */
const DIGITS = new TextEncoder().encode('0123456789abcdefghijklmnopqrstuv');
/** Characters of a term: 7 base-32 digits per 32-bit lane. */
const TERM_CHARS = 14;
/** Between key and value in the hash's input: a byte UTF-8 never holds, so no key and value pair reads as another. */
const SEPARATOR = 0xff;

/**
 * A 64-bit hash of bytes in two 32-bit lanes: FNV-1a (offset 2166136261, prime 16777619) and
 * a second FNV-style lane with another offset and multiplier, each finished by MurmurHash3's
 * 32-bit finalizer. Stored in the index, so fixed: changing it means renaming the index table.
 */
class AttributeHash {
  a = 0;
  b = 0;

  reset(): void {
    this.a = 0x811c9dc5;
    this.b = 0x9747b28c;
  }

  byte(c: number): void {
    this.a = Math.imul(this.a ^ c, 0x01000193);
    this.b = Math.imul(this.b ^ c, 0x5bd1e995);
  }

  bytes(buf: Uint8Array, start: number, end: number): void {
    let a = this.a;
    let b = this.b;
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    this.a = a;
    this.b = b;
  }

  /** Writes the term (TERM_CHARS bytes) at out[at]. */
  write(out: Uint8Array, at: number): void {
    lane(fmix32(this.a), out, at);
    lane(fmix32(this.b), out, at + TERM_CHARS / 2);
  }
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Seven base-32 digits of a 32-bit value, most significant first. */
function lane(v: number, out: Uint8Array, at: number): void {
  for (let i = TERM_CHARS / 2 - 1; i >= 0; i--) {
    out[at + i] = DIGITS[v & 31]!;
    v >>>= 5;
  }
}

const utf8 = new TextEncoder();
/** UTF-8 of a string cut to ATTR_VALUE_CHARS code points (as SQLite's substr() counts characters). */
const cutUtf8 = (v: string): Uint8Array => utf8.encode(Array.from(v).slice(0, ATTR_VALUE_CHARS).join(''));

const queryHash = new AttributeHash();
const queryTerm = new Uint8Array(TERM_CHARS);

/** The index term of an attribute key and rendered value, as the store writes it; '' value: the value-less term. */
export function attributeTerm(key: string, value: string): string {
  const h = queryHash;
  h.reset();
  const k = cutUtf8(key);
  h.bytes(k, 0, k.length);
  h.byte(SEPARATOR);
  const v = cutUtf8(value);
  h.bytes(v, 0, v.length);
  h.write(queryTerm, 0);
  return Buffer.from(queryTerm).toString('latin1');
}

const SPACE = 0x20;
// AnyValue fields the terms render (its tags).
const STRING_VALUE = 10;
const BOOL_VALUE = 16;
const INT_VALUE = 24;
const BYTES_VALUE = 58;

/** Writes the terms of stored spans' attributes, read from their protobuf bytes; one instance per thread that uses it (the write thread, a search). */
export class TermWriter {
  private readonly out = new ByteOut(8192);
  private readonly hash = new AttributeHash();
  private readonly one = new Uint8Array(TERM_CHARS);

  /**
   * The terms of the span whose bytes are r.buf[start, end), space-separated, as ASCII bytes
   * (undefined when it has none): a view of this writer's buffer, valid until its next call. Bound
   * as they are, FTS5 reads them as text, and no string is made per span. The bytes were
   * validated by the decode worker (malformed ones throw).
   */
  spanTerms(r: WireReader, start: number, end: number): Uint8Array | undefined {
    this.begin();
    this.add(r, start, end);
    return this.terms();
  }

  /** Starts a document of several spans' terms: add() each span, then terms(). */
  begin(): void {
    this.out.pos = 0;
  }

  /** Adds the terms of the span whose bytes are r.buf[start, end) to the document begun. */
  add(r: WireReader, start: number, end: number): void {
    const out = this.out;
    const h = this.hash;
    r.pos = start;
    while (r.pos < end) {
      const tag = r.uint32();
      if (tag === 74) {
        // attributes: a KeyValue
        const e = r.lenEnd();
        scanKeyValue(r, e);
        this.hashKeyValue(r);
        out.ensure(TERM_CHARS + 1);
        h.write(out.buf, out.pos);
        out.pos += TERM_CHARS;
        out.buf[out.pos++] = SPACE;
        r.pos = e;
      } else r.skip(tag);
    }
  }

  /** The term of the KeyValue scanKeyValue() just read from r, as a string. */
  keyValueTerm(r: WireReader): string {
    this.hashKeyValue(r);
    this.hash.write(this.one, 0);
    return Buffer.from(this.one.buffer, 0, TERM_CHARS).toString('latin1');
  }

  /** Hashes the KeyValue scanKeyValue() just read from r: its key, the separator, its rendered value. */
  private hashKeyValue(r: WireReader): void {
    this.hash.reset();
    this.text(r.nb, KV.keyStart, KV.keyEnd);
    this.hash.byte(SEPARATOR);
    if (KV.values > 0) this.value(r, KV.valueStart, KV.valueEnd);
  }

  /** The document's terms, space-separated (undefined when it has none): a view of this writer's buffer, valid until begin(). */
  terms(): Uint8Array | undefined {
    return this.out.pos === 0 ? undefined : this.out.buf.subarray(0, this.out.pos - 1);
  }

  /** Hashes the rendered value of the AnyValue r.buf[start, end): its last field, as protobuf's oneof reads it. */
  private value(r: WireReader, start: number, end: number): void {
    r.pos = start;
    let tag = 0;
    let at = 0;
    while (r.pos < end) {
      tag = r.uint32();
      at = r.pos;
      r.skip(tag);
    }
    r.pos = at;
    switch (tag) {
      case STRING_VALUE: {
        const e = r.lenEnd();
        this.text(r.nb, r.pos, e);
        break;
      }
      case BOOL_VALUE:
        this.ascii(r.bool() ? 'true' : 'false');
        break;
      case INT_VALUE:
        this.ascii(r.int64String());
        break;
      case BYTES_VALUE: {
        const e = r.lenEnd();
        this.ascii(r.nb.base64Slice(r.pos, e).slice(0, ATTR_VALUE_CHARS));
        break;
      }
    }
  }

  /** Hashes UTF-8 text nb[start, end), cut to ATTR_VALUE_CHARS characters. */
  private text(nb: SlicingBuffer, start: number, end: number): void {
    // An ASCII prefix as long as the cut is the cut (one byte per character): hash the bytes as they are.
    const cut = Math.min(end, start + ATTR_VALUE_CHARS);
    let i = start;
    while (i < cut && nb[i]! < 0x80) i++;
    if (i === cut) return this.hash.bytes(nb, start, cut);
    // Invalid UTF-8 reads as U+FFFD, as the decoder reads it; then cut by code points.
    const chars = cutUtf8(nb.utf8Slice(start, end));
    this.hash.bytes(chars, 0, chars.length);
  }

  /** Hashes an ASCII string's characters. */
  private ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.hash.byte(s.charCodeAt(i));
  }
}

/**
 * Whether a stored span's own attributes give, for every condition, its value's term or its
 * key's value-less one: what a per-span index document would have answered. Searches run it on
 * the spans of the traces the index found (its documents are runs of a trace's spans) before
 * decoding one: only the KeyValues with a wanted key are hashed. Only the document says yes.
 */
export class SpanTermCheck {
  private readonly writer = new TermWriter();
  private readonly conditions: readonly { key: string; value: string }[];
  private readonly keys: Uint8Array[];
  private readonly wanted: [string, string][];

  constructor(conditions: readonly { key: string; value: string }[]) {
    this.conditions = conditions;
    this.keys = conditions.map((a) => utf8.encode(a.key));
    this.wanted = conditions.map((a) => [attributeTerm(a.key, a.value), attributeTerm(a.key, '')]);
  }

  /** For a span's protobuf bytes. */
  mayMatch(doc: Uint8Array): boolean {
    const n = this.conditions.length;
    const held = new Uint8Array(n);
    let left = n;
    const r = new WireReader(doc);
    while (r.pos < doc.length && left > 0) {
      const tag = r.uint32();
      if (tag !== 74) {
        r.skip(tag);
        continue;
      }
      const e = r.lenEnd();
      scanKeyValue(r, e);
      for (let i = 0; i < n; i++) {
        if (held[i] || !this.isKey(r.nb, i)) continue;
        const term = this.writer.keyValueTerm(r);
        if (term === this.wanted[i]![0] || term === this.wanted[i]![1]) {
          held[i] = 1;
          left--;
        }
      }
      r.pos = e;
    }
    return left === 0;
  }

  /** Whether the key scanKeyValue() just read is condition i's: bytes for ASCII, else as the decoder reads it (invalid UTF-8 as U+FFFD). */
  private isKey(nb: SlicingBuffer, i: number): boolean {
    const want = this.keys[i]!;
    let ascii = true;
    for (let j = KV.keyStart; j < KV.keyEnd; j++) if (nb[j]! >= 0x80) ascii = false;
    if (!ascii) return nb.utf8Slice(KV.keyStart, KV.keyEnd) === this.conditions[i]!.key;
    if (KV.keyEnd - KV.keyStart !== want.length) return false;
    for (let j = 0; j < want.length; j++) if (nb[KV.keyStart + j] !== want[j]) return false;
    return true;
  }
}
