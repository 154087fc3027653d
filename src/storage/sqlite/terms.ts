// The attribute index's terms. One term per span attribute: hex(key) 'x' hex(rendered value),
// key and value cut to ATTR_VALUE_CHARS characters, uppercase hex of their UTF-8 (as SQLite's
// hex() writes it, which built the terms of files written before the store kept protobuf).
// Strings, integers (decimal), booleans and bytes (base64, as OTLP/JSON writes them) are
// rendered; doubles, arrays, maps and empty values give the value-less term hex(key) 'x'. The
// index only finds candidates: every candidate is checked against its decoded span, so a term
// too many costs a check, never a wrong answer.
import type { SlicingBuffer, WireReader } from '../../pipeline/decode/wire.ts';
import { ByteOut, HEX_UPPER } from '../../pipeline/transcode/byte-out.ts';
import { KV, scanKeyValue } from '../../pipeline/transcode/wire-scan.ts';

/** Longest attribute key or value the index keeps; a longer one is indexed by its prefix and confirmed on the document. */
export const ATTR_VALUE_CHARS = 128;

const utf8 = new TextEncoder();

/** The index term of an attribute key and rendered value, as the store writes it; '' value: the value-less term. */
export function attributeTerm(key: string, value: string): string {
  // Cut by code points, as SQLite's substr() counts characters, then hex the UTF-8.
  const hex = (v: string) => Buffer.from(utf8.encode(Array.from(v).slice(0, ATTR_VALUE_CHARS).join(''))).toString('hex').toUpperCase();
  return `${hex(key)}x${hex(value)}`;
}

const SPACE = 0x20;
const X = 0x78;
// AnyValue fields the terms render (its tags).
const STRING_VALUE = 10;
const BOOL_VALUE = 16;
const INT_VALUE = 24;
const BYTES_VALUE = 58;

/** Writes the terms of stored spans' attributes, read from their protobuf bytes; one instance per write thread. */
export class TermWriter {
  private readonly out = new ByteOut(8192);

  /**
   * The terms of the span whose bytes are r.buf[start, end), space-separated, as ASCII bytes
   * (undefined when it has none): a view of this writer's buffer, valid until its next call. Bound
   * as they are, FTS5 reads them as text, and no string is made per span. The bytes were
   * validated by the decode worker (malformed ones throw).
   */
  spanTerms(r: WireReader, start: number, end: number): Uint8Array | undefined {
    const out = this.out;
    out.pos = 0;
    r.pos = start;
    while (r.pos < end) {
      const tag = r.uint32();
      if (tag === 74) {
        // attributes: a KeyValue
        const e = r.lenEnd();
        scanKeyValue(r, e);
        this.text(r.nb, KV.keyStart, KV.keyEnd);
        out.byte(X);
        if (KV.values > 0) this.value(r, KV.valueStart, KV.valueEnd);
        out.byte(SPACE);
        r.pos = e;
      } else r.skip(tag);
    }
    return out.pos === 0 ? undefined : out.buf.subarray(0, out.pos - 1);
  }

  /** The rendered value of the AnyValue r.buf[start, end): its last field, as protobuf's oneof reads it. */
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

  /** Hex of UTF-8 text nb[start, end), cut to ATTR_VALUE_CHARS characters. */
  private text(nb: SlicingBuffer, start: number, end: number): void {
    // An ASCII prefix as long as the cut is the cut (one byte per character): hex the bytes as they are.
    const cut = Math.min(end, start + ATTR_VALUE_CHARS);
    let i = start;
    while (i < cut && nb[i]! < 0x80) i++;
    if (i === cut) return this.out.hex(nb, start, cut - start, HEX_UPPER);
    // Invalid UTF-8 reads as U+FFFD, as the decoder reads it; then cut by code points.
    const chars = Buffer.from(Array.from(nb.utf8Slice(start, end)).slice(0, ATTR_VALUE_CHARS).join(''), 'utf8');
    this.out.hex(chars, 0, chars.length, HEX_UPPER);
  }

  /** Hex of an ASCII string's characters. */
  private ascii(s: string): void {
    const out = this.out;
    out.ensure(2 * s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      out.buf[out.pos++] = HEX_UPPER[c >> 4]!;
      out.buf[out.pos++] = HEX_UPPER[c & 15]!;
    }
  }
}
