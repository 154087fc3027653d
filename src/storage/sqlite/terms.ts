// The attribute index's terms and filters. One term per span attribute: a 32-bit hash of its key
// and its rendered value, each cut to ATTR_VALUE_CHARS characters (AttributeHash). Strings,
// integers (decimal), booleans and bytes (base64, as OTLP/JSON writes them) are rendered;
// doubles, arrays, maps and empty values give the value-less term (the hash of the key alone).
// A span run keeps its spans' terms as a Bloom filter (RunTerms, bloomHas): a search passes over
// a run whose filter lacks a wanted term, and checks every span of the others against its own
// terms and then its decoded document, so a term too many (a hash collision or a filter's false
// positive) costs a check, never a wrong answer.
import type { KeyValue } from '../../model/rows.ts';
import { type SlicingBuffer, WireReader } from '../../pipeline/decode/wire.ts';
import { KV, scalarValueInPlace, scanKeyValue } from '../../pipeline/transcode/wire-scan.ts';

/** Longest attribute key or value the index keeps; a longer one is indexed by its prefix and confirmed on the document. */
export const ATTR_VALUE_CHARS = 128;

/** Between key and value in the hash's input: a byte UTF-8 never holds, so no key and value pair reads as another. */
const SEPARATOR = 0xff;
/**
 * The first byte of a span name's term. No attribute term starts with it (they start with the
 * key's UTF-8, and 0xfe is never a byte of UTF-8), so a name is never taken for an attribute.
 */
const NAME_MARK = 0xfe;

/**
 * A 32-bit hash of bytes: FNV-1a (offset 2166136261, prime 16777619), finished two ways by
 * MurmurHash3's 32-bit finalizer into the two values a filter's bit positions are made of (h1,
 * h2). A collision of two terms costs what a filter's false positive costs: a span checked. Stored
 * in the runs' filters, so fixed: changing it (or the filter's layout) means renaming the filter's
 * column.
 */
class AttributeHash {
  a = 0;

  reset(): void {
    this.a = 0x811c9dc5;
  }

  byte(c: number): void {
    this.a = Math.imul(this.a ^ c, 0x01000193);
  }

  bytes(buf: Uint8Array, start: number, end: number): void {
    let a = this.a;
    for (let i = start; i < end; i++) a = Math.imul(a ^ buf[i]!, 0x01000193);
    this.a = a;
  }

  /**
   * Hashes ASCII bytes buf[start, end) and returns true, or returns false without hashing at the
   * first byte that is not ASCII.
   */
  asciiBytes(buf: Uint8Array, start: number, end: number): boolean {
    let a = this.a;
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (c >= 0x80) return false;
      a = Math.imul(a ^ c, 0x01000193);
    }
    this.a = a;
    return true;
  }

  h1(): number {
    return fmix32(this.a);
  }

  h2(): number {
    return fmix32((this.a + 0x9e3779b9) | 0);
  }
}

/** murmur3's 32-bit finalizer: a bijection of 32-bit words that spreads nearby ones apart. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A term: its hash finished two ways (h1, h2). */
export type Term = readonly [h1: number, h2: number];

const utf8 = new TextEncoder();
/** UTF-8 of a string cut to ATTR_VALUE_CHARS code points. */
const cutUtf8 = (v: string): Uint8Array => utf8.encode(Array.from(v).slice(0, ATTR_VALUE_CHARS).join(''));

const queryHash = new AttributeHash();

/** The term of an attribute key and rendered value, as the store writes it; '' value: the value-less term. */
export function attributeTerm(key: string, value: string): Term {
  const h = queryHash;
  h.reset();
  const k = cutUtf8(key);
  h.bytes(k, 0, k.length);
  h.byte(SEPARATOR);
  const v = cutUtf8(value);
  h.bytes(v, 0, v.length);
  return [h.h1(), h.h2()];
}

/** The term of a span name, as runs of records write it (cut as values are). */
export function nameTerm(name: string): Term {
  const h = queryHash;
  h.reset();
  h.byte(NAME_MARK);
  const v = cutUtf8(name);
  h.bytes(v, 0, v.length);
  return [h.h1(), h.h2()];
}

/** An attribute value as the terms render it (its OTLP/JSON text for strings, integers, booleans and bytes; '' for the rest). */
export function renderedValue(v: KeyValue['value']): string {
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return String(v.intValue);
  if ('boolValue' in v) return v.boolValue ? 'true' : 'false';
  if ('bytesValue' in v) return v.bytesValue;
  return '';
}

// A run's Bloom filter: a power-of-two number of bytes, at least BITS_PER_TERM bits per term the
// run's spans gave (a term given twice counts twice), between MIN and MAX_FILTER_BYTES; each term
// sets FILTER_HASHES bits, h1 + i * h2 (h2 made odd) modulo the filter's bits (bit j is bit j % 8
// of byte j / 8). At 8 to 16 bits per term, 0.2–2.4 % of the runs without a term pass its test.
const BITS_PER_TERM = 8;
const FILTER_HASHES = 4;
const MIN_FILTER_BYTES = 8;
/** A run of very many spans fills its filter past that rate (every test passes): correct, not selective. */
const MAX_FILTER_BYTES = 32768;

function filterBytes(terms: number): number {
  let bytes = MIN_FILTER_BYTES;
  while (bytes * 8 < terms * BITS_PER_TERM && bytes < MAX_FILTER_BYTES) bytes *= 2;
  return bytes;
}

/** Whether a run's filter may hold the term (false: none of the run's spans has it). */
export function bloomHas(filter: Uint8Array, h1: number, h2: number): boolean {
  const mask = filter.length * 8 - 1;
  const step = (h2 | 1) >>> 0;
  let h = h1;
  for (let i = 0; i < FILTER_HASHES; i++) {
    const bit = h & mask;
    if ((filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
    h = (h + step) >>> 0;
  }
  return true;
}

function bloomSet(filter: Uint8Array, h1: number, h2: number): void {
  const mask = filter.length * 8 - 1;
  const step = (h2 | 1) >>> 0;
  let h = h1;
  for (let i = 0; i < FILTER_HASHES; i++) {
    const bit = h & mask;
    filter[bit >>> 3]! |= 1 << (bit & 7);
    h = (h + step) >>> 0;
  }
}

// AnyValue fields the terms render (its tags).
const STRING_VALUE = 10;
const BOOL_VALUE = 16;
const INT_VALUE = 24;
const BYTES_VALUE = 58;

/**
 * The terms of a run of stored spans, read from their protobuf bytes, and the run's filter; one
 * instance per thread that uses it (the write thread, a search). No object or string is made per
 * span or term: the terms' hashes collect in a typed array.
 */
export class RunTerms {
  private readonly hash = new AttributeHash();
  /** h1, h2 of each term added since begin(). */
  private hashes = new Uint32Array(1024);
  private n = 0;
  private readonly scratch = new Uint8Array(MAX_FILTER_BYTES);
  /** The digits of an integer value being hashed. */
  private readonly digits = new Uint8Array(10);

  /** Starts a run: add() each span, then filter(). */
  begin(): void {
    this.n = 0;
  }

  /**
   * Adds the terms of the span whose bytes are r.buf[start, end) (validated by the decode
   * worker: malformed ones throw).
   */
  add(r: WireReader, start: number, end: number): void {
    r.pos = start;
    while (r.pos < end) {
      const tag = r.uint32();
      if (tag === 74) {
        // attributes: a KeyValue
        const e = r.lenEnd();
        scanKeyValue(r, e);
        this.hashKeyValue(r);
        this.push(this.hash.h1(), this.hash.h2());
        r.pos = e;
      } else r.skip(tag);
    }
  }

  /** Adds the term of a span name, the UTF-8 text nb[start, end). */
  addName(nb: SlicingBuffer, start: number, end: number): void {
    this.hash.reset();
    this.hash.byte(NAME_MARK);
    this.text(nb, start, end);
    this.push(this.hash.h1(), this.hash.h2());
  }

  /** Adds the term of a decoded span name (the JSON documents of older versions). */
  addNameText(name: string): void {
    const [h1, h2] = nameTerm(name);
    this.push(h1, h2);
  }

  /** Adds the terms of decoded attributes (the JSON documents of older versions). */
  addAttributes(attributes: readonly KeyValue[]): void {
    for (const a of attributes) {
      const [h1, h2] = attributeTerm(a.key, renderedValue(a.value));
      this.push(h1, h2);
    }
  }

  private push(h1: number, h2: number): void {
    if (this.n * 2 === this.hashes.length) {
      const grown = new Uint32Array(this.hashes.length * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[this.n * 2] = h1;
    this.hashes[this.n * 2 + 1] = h2;
    this.n++;
  }

  /** The filter of the terms added since begin(): a view of this instance's buffer, valid until its next call. */
  filter(): Uint8Array {
    const f = this.scratch.subarray(0, filterBytes(this.n));
    f.fill(0);
    for (let i = 0; i < this.n; i++) bloomSet(f, this.hashes[i * 2]!, this.hashes[i * 2 + 1]!);
    return f;
  }

  /** The term of the KeyValue scanKeyValue() just read from r. */
  keyValueTerm(r: WireReader): Term {
    this.hashKeyValue(r);
    return [this.hash.h1(), this.hash.h2()];
  }

  /** Hashes the KeyValue scanKeyValue() just read from r: its key, the separator, its rendered value. */
  private hashKeyValue(r: WireReader): void {
    this.hash.reset();
    this.text(r.nb, KV.keyStart, KV.keyEnd);
    this.hash.byte(SEPARATOR);
    if (KV.values > 0) this.value(r, KV.valueStart, KV.valueEnd);
  }

  /** Hashes the rendered value of the AnyValue r.buf[start, end): its last field, as protobuf's oneof reads it. */
  private value(r: WireReader, start: number, end: number): void {
    // A string or an integer in the layout SDKs write is read in place; anything else field by field.
    const t = scalarValueInPlace(r.buf, start, end);
    if (t === STRING_VALUE) {
      this.text(r.nb, start + 2, end);
      return;
    }
    if (t === INT_VALUE) {
      this.decimal(r.buf[start + 1]!);
      return;
    }
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
      case INT_VALUE: {
        const at = r.pos;
        r.varint64();
        if (r.hi === 0) this.decimal(r.lo);
        else {
          r.pos = at;
          this.ascii(r.int64String());
        }
        break;
      }
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
    if (this.hash.asciiBytes(nb, start, Math.min(end, start + ATTR_VALUE_CHARS))) return;
    // Invalid UTF-8 reads as U+FFFD, as the decoder reads it; then cut by code points.
    const chars = cutUtf8(nb.utf8Slice(start, end));
    this.hash.bytes(chars, 0, chars.length);
  }

  /** Hashes the decimal digits of an unsigned 32-bit integer, as its rendering's characters (no string made). */
  private decimal(n: number): void {
    const d = this.digits;
    let i = d.length;
    do {
      d[--i] = 48 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
    this.hash.bytes(d, i, d.length);
  }

  /** Hashes an ASCII string's characters. */
  private ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.hash.byte(s.charCodeAt(i));
  }
}

/**
 * A search's attribute conditions as terms: whether a run's filter may hold, and whether a stored
 * span's own attributes give, for every condition, its value's term or its key's value-less one.
 * A run that fails the first is passed over; a span that fails the second is not decoded (only the
 * KeyValues with a wanted key are hashed). Only the document says yes.
 */
export class SpanTermCheck {
  private readonly writer = new RunTerms();
  private readonly conditions: readonly { key: string; value: string }[];
  private readonly keys: Uint8Array[];
  private readonly wanted: [Term, Term][];

  constructor(conditions: readonly { key: string; value: string }[]) {
    this.conditions = conditions;
    this.keys = conditions.map((a) => utf8.encode(a.key));
    this.wanted = conditions.map((a) => [attributeTerm(a.key, a.value), attributeTerm(a.key, '')]);
  }

  /** For a run's filter. */
  runMayMatch(filter: Uint8Array): boolean {
    return this.wanted.every(([value, key]) => bloomHas(filter, value[0], value[1]) || bloomHas(filter, key[0], key[1]));
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
        const [h1, h2] = this.writer.keyValueTerm(r);
        const [value, key] = this.wanted[i]!;
        if ((h1 === value[0] && h2 === value[1]) || (h1 === key[0] && h2 === key[1])) {
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
