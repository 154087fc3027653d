// A growing output buffer that transcoders write store bytes into: JSON text written byte by
// byte from wire bytes, decimal digits of 64-bit integers without BigInt, hex ids from raw
// bytes. One per worker, reused for every request; a request's result is copied out of it, but
// for a large one, which takes the buffer with it.
import { isUtf8 } from 'node:buffer';
import { giveBuffer } from '../../common/release.ts';

const textEncoder = new TextEncoder();
/** Strings up to this many UTF-16 units are tried as ASCII first (ByteOut.utf8). */
const ASCII_LOOP_CHARS = 64;
const HEX = new Uint8Array([48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102]);
/** Uppercase hex digits, for ByteOut.hex (as SQLite's hex() writes them). */
export const HEX_UPPER = new Uint8Array([48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 65, 66, 67, 68, 69, 70]);
/** JSON.stringify's short escapes for control characters; 0 = use \u00XX. */
const SHORT_ESCAPE = new Uint8Array(32);
SHORT_ESCAPE[8] = 98; // \b
SHORT_ESCAPE[9] = 116; // \t
SHORT_ESCAPE[10] = 110; // \n
SHORT_ESCAPE[12] = 102; // \f
SHORT_ESCAPE[13] = 114; // \r
/** Bytes a JSON string can carry as they are (0x20..0xff except '"' and '\'); 0x80+ are UTF-8 and checked. */
const PLAIN = new Uint8Array(256);
for (let b = 0x20; b < 256; b++) PLAIN[b] = b === 0x22 || b === 0x5c ? 0 : 1;

/** Capacity past which a reused output buffer is given up after the request that grew it. */
const SHRINK_ABOVE_BYTES = 32 << 20;
/**
 * Output from which take() hands the buffer over instead of copying the bytes out: the copy would
 * hold a large request's output twice. Below it the copy is cheap and the warm buffer is kept.
 */
export const HAND_OVER_BYTES = 8 << 20;

/** ASCII text as bytes, for the fixed parts of a format. */
export function ascii(s: string): Uint8Array {
  return textEncoder.encode(s);
}

/** A fixed ASCII piece of a format (JSON punctuation and keys), kept as little-endian words for ByteOut.piece. */
export interface Piece {
  readonly length: number;
  readonly words: Int32Array;
}

/** ASCII text as a Piece. */
export function piece(s: string): Piece {
  const bytes = new Uint8Array((s.length + 3) & ~3);
  bytes.set(ascii(s));
  const view = new DataView(bytes.buffer);
  return { length: s.length, words: Int32Array.from({ length: bytes.length / 4 }, (_, k) => view.getInt32(4 * k, true)) };
}

/**
 * Writes s into out from p, one byte per UTF-16 unit, and returns where it ended; or -1 at its
 * first unit that is not ASCII (the bytes up to it written, and to be written over). For short
 * strings, mostly ASCII, this beats a call into C++ (Buffer#write, TextEncoder).
 */
export function asciiInto(out: Uint8Array, p: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return -1;
    out[p++] = c;
  }
  return p;
}

/** 10^p for the places after the point a short decimal may have (ByteOut.shortDecimal). */
const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000];

/**
 * Every store repeats a resource per scope or row, so a small request of one huge resource over
 * many items would grow a decode worker's output without bound (294 KB became 262 MB, ×892). A
 * request's store bytes may reach the writer's queue budget (DecodeLimits.maxStoreBytes: more
 * could never be queued beside anything else), or OUTPUT_FACTOR times its own size if more.
 */
export const OUTPUT_FACTOR = 64;
const DEFAULT_MAX_STORE_BYTES = 256 << 20;

/** The most store bytes a request of requestBytes may take. */
export function storeBytesBound(requestBytes: number, maxStoreBytes = DEFAULT_MAX_STORE_BYTES): number {
  return Math.max(maxStoreBytes, OUTPUT_FACTOR * requestBytes);
}

/** A request whose store bytes would pass its bound (refused whole: 413 / RESOURCE_EXHAUSTED). */
export class OutputTooLargeError extends Error {
  override readonly name = 'OutputTooLargeError';
}

/** A growing byte buffer with writers for the pieces store formats are made of. */
export class ByteOut {
  buf: Uint8Array;
  pos = 0;
  /** Bytes this output may grow to for the request being written (start's limitBytes). */
  private limit = Infinity;
  /** Whether the last jsonStringUtf8 met invalid UTF-8. */
  invalidUtf8 = false;
  /** Whether the last jsonStringUtf8's bytes were all ASCII (so each byte is its UTF-16 code unit). */
  ascii = true;

  /** The capacity shrink() returns to. */
  private readonly initialBytes: number;
  /** buf as a DataView, for writing four bytes at once. */
  private view: DataView;
  /** buf as a Buffer, for writing strings. */
  private text: Buffer;
  /** The last source jsonStringUtf8 read four bytes at a time, and a DataView of it. */
  private src: Uint8Array | undefined;
  private srcView: DataView | undefined;

  constructor(initialBytes = 1 << 16) {
    this.initialBytes = initialBytes;
    this.buf = new Uint8Array(initialBytes);
    this.view = new DataView(this.buf.buffer);
    this.text = Buffer.from(this.buf.buffer);
  }

  /** Drops a buffer one huge request grew past SHRINK_ABOVE_BYTES, so that size is not pinned for good (call once its bytes are taken). */
  shrink(): void {
    if (this.buf.length > SHRINK_ABOVE_BYTES) this.setBuffer(new Uint8Array(this.initialBytes));
    // Nor does a view keep the last request's bytes alive.
    this.src = this.srcView = undefined;
  }

  private setBuffer(buf: Uint8Array): void {
    this.buf = buf;
    this.view = new DataView(buf.buffer);
    this.text = Buffer.from(buf.buffer);
  }

  /** A DataView of src, made once per source (a request's bytes are read by many calls). */
  private sourceView(src: Uint8Array): DataView {
    if (src !== this.src) {
      this.src = src;
      this.srcView = new DataView(src.buffer, src.byteOffset, src.byteLength);
    }
    return this.srcView!;
  }

  /**
   * Starts a request's output with room for the bytes it is expected to take. A large output gets
   * a new buffer of exactly that size: not one grown by doubling (the old and the new held at
   * once), and the tail it leaves unused is never written, so its pages are never resident.
   */
  start(expectedBytes: number, limitBytes = Infinity): void {
    const n = Math.ceil(expectedBytes);
    this.pos = 0;
    this.limit = limitBytes;
    if (n >= HAND_OVER_BYTES && n > this.buf.length) this.setBuffer(new Uint8Array(n));
    else this.ensure(n);
  }

  /** Makes room for n more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    if (need > this.limit) throw new OutputTooLargeError(`the request would take more than ${this.limit} bytes in the store (a resource repeated for each of many items?)`);
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.setBuffer(next);
  }

  /**
   * Bytes [0, pos) in an ArrayBuffer of their own: a copy, or from HAND_OVER_BYTES the buffer
   * itself, its unused tail given along (giveBuffer), and this ByteOut starts a new one.
   */
  take(): Uint8Array {
    if (this.pos >= HAND_OVER_BYTES) {
      const bytes = giveBuffer(new Uint8Array(this.buf.buffer, 0, this.pos));
      this.setBuffer(new Uint8Array(this.initialBytes));
      this.pos = 0;
      return bytes;
    }
    // Not Uint8Array.slice: that zero-fills the new memory before copying into it.
    const copy = Buffer.allocUnsafeSlow(this.pos);
    copy.set(this.buf.subarray(0, this.pos));
    return new Uint8Array(copy.buffer, 0, copy.length);
  }

  byte(b: number): void {
    if (this.pos >= this.buf.length) this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Appends bytes as they are. */
  bytes(src: Uint8Array, start = 0, end = src.length): void {
    const n = end - start;
    this.ensure(n);
    const out = this.buf;
    let p = this.pos;
    if (n <= 32) for (let i = start; i < end; i++) out[p++] = src[i]!;
    else {
      out.set(src.subarray(start, end), p);
      p += n;
    }
    this.pos = p;
  }

  /** Appends src[start, end) as they are, four bytes at a time; returns whether they were all ASCII (below 0x80). */
  asciiBytes(src: Uint8Array, start: number, end: number): boolean {
    this.ensure(end - start);
    let p = this.pos;
    let i = start;
    let high = 0;
    if (end - start >= 4) {
      const sv = this.sourceView(src);
      const ov = this.view;
      for (const last = end - 4; i <= last; i += 4, p += 4) {
        const x = sv.getInt32(i, true);
        high |= x;
        ov.setInt32(p, x, true);
      }
    }
    const out = this.buf;
    for (; i < end; i++) {
      const b = src[i]!;
      high |= b;
      out[p++] = b;
    }
    this.pos = p;
    return (high & 0x80808080) === 0;
  }

  /**
   * Appends a piece a word at a time. Its last word may write up to three bytes past the piece's
   * end: they lie past pos, where nothing written is kept.
   */
  piece(t: Piece): void {
    this.ensure(t.length + 3);
    const ov = this.view;
    const words = t.words;
    let p = this.pos;
    for (let k = 0; k < words.length; k++, p += 4) ov.setInt32(p, words[k]!, true);
    this.pos += t.length;
  }

  /** Appends a copy of bytes [start, end) already written to this buffer. */
  repeat(start: number, end: number): void {
    const n = end - start;
    this.ensure(n);
    this.buf.copyWithin(this.pos, start, end);
    this.pos += n;
  }

  /**
   * The UTF-8 bytes src[start, end) as a JSON string literal, exactly as JSON.stringify of the
   * text they decode to (Node's decoder, U+FFFD for invalid sequences) would encode in UTF-8.
   */
  jsonStringUtf8(src: Uint8Array, start: number, end: number): void {
    const begin = this.pos;
    this.ensure(end - start + 2);
    let out = this.buf;
    let p = this.pos;
    out[p++] = 0x22;
    let high = 0;
    let i = start;
    if (end - start >= 4) {
      // Four bytes at a time while none of them needs an escape or is non-ASCII (most text), the
      // rest byte by byte. A word is flagged if a byte is below 0x20, is '"' or '\', or has its
      // high bit (x itself ORed in). With every byte below 0x80, subtracting 0x20 (or 0x01 from
      // the byte XORed with '"' or '\') from each byte borrows, setting that byte's high bit,
      // exactly at the lowest byte that is below 0x20 (or equal to it), and nowhere when none is.
      const sv = this.sourceView(src);
      const ov = this.view;
      const last = end - 4;
      while (i <= last) {
        const x = sv.getInt32(i, true);
        if ((((x - 0x20202020) | ((x ^ 0x22222222) - 0x01010101) | ((x ^ 0x5c5c5c5c) - 0x01010101) | x) & 0x80808080) !== 0) break;
        ov.setInt32(p, x, true);
        i += 4;
        p += 4;
      }
    }
    for (; i < end; i++) {
      const b = src[i]!;
      if (PLAIN[b] === 1) {
        high |= b;
        out[p++] = b;
        continue;
      }
      // An escape grows the text: make room for it and the rest, each escape at most 6 bytes.
      this.pos = p;
      this.ensure(end - i + 8);
      out = this.buf;
      out[p++] = 0x5c;
      if (b === 0x22 || b === 0x5c) out[p++] = b;
      else if (SHORT_ESCAPE[b] !== 0) out[p++] = SHORT_ESCAPE[b]!;
      else {
        out[p++] = 0x75;
        out[p++] = 0x30;
        out[p++] = 0x30;
        out[p++] = HEX[b >>> 4]!;
        out[p++] = HEX[b & 15]!;
      }
    }
    out[p++] = 0x22;
    this.pos = p;
    this.ascii = high < 0x80;
    this.invalidUtf8 = high >= 0x80 && !isUtf8(src.subarray(start, end));
    if (this.invalidUtf8) {
      // Invalid UTF-8 is rare: render it the way the row path does, through a decoded string.
      this.pos = begin;
      this.jsonString(Buffer.from(src.buffer, src.byteOffset + start, end - start).toString('utf8'));
    }
  }

  /** A JS string as a JSON string literal (JSON.stringify's text, UTF-8 encoded). */
  jsonString(s: string): void {
    const n = s.length;
    if (n <= 64) {
      // Short plain ASCII (attribute keys, names) is written straight; anything else goes the long way.
      this.ensure(n + 2);
      const out = this.buf;
      let p = this.pos;
      out[p++] = 0x22;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x20 || c >= 0x80 || c === 0x22 || c === 0x5c) break;
        out[p++] = c;
      }
      if (i === n) {
        out[p++] = 0x22;
        this.pos = p;
        return;
      }
    }
    this.utf8(JSON.stringify(s));
  }

  /** A JS string as UTF-8 (no quoting; a lone surrogate as U+FFFD, as TextEncoder writes it). */
  utf8(s: string): void {
    const n = s.length;
    this.ensure(n * 3);
    if (n <= ASCII_LOOP_CHARS) {
      // Short ASCII (keys, names, most values) char by char: a native call costs more than the loop.
      const end = asciiInto(this.buf, this.pos, s);
      if (end >= 0) {
        this.pos = end;
        return;
      }
    }
    // Buffer#write: no view and no result object per call, as TextEncoder.encodeInto makes.
    this.pos += this.text.write(s, this.pos);
  }

  /** ASCII text (digits, base64) written char by char. */
  asciiText(s: string): void {
    const n = s.length;
    this.ensure(n);
    const out = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) out[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** A non-negative integer below 2^53 in decimal. */
  uint(n: number): void {
    if (n < 10) {
      this.byte(48 + n);
      return;
    }
    let len = 1;
    for (let t = n; t >= 10; t = Math.floor(t / 10)) len++;
    this.ensure(len);
    const out = this.buf;
    const start = this.pos;
    let p = start + len;
    this.pos = p;
    let t = n;
    // Integer division by truncation is only exact below 2^31.
    while (t >= 0x80000000) {
      const q = Math.floor(t / 10);
      out[--p] = 48 + (t - q * 10);
      t = q;
    }
    while (p > start) {
      const q = (t / 10) | 0;
      out[--p] = 48 + (t - q * 10);
      t = q;
    }
  }

  /** An int32 (negative included) in decimal. */
  int(n: number): void {
    if (n < 0) {
      this.byte(45);
      this.uint(-n);
    } else this.uint(n);
  }

  /** n (below 10^count, count at most 9) as exactly `count` digits, leading zeros included. */
  private fixedDigits(n: number, count: number): void {
    this.ensure(count);
    const out = this.buf;
    let p = this.pos + count;
    this.pos = p;
    for (let k = 0; k < count; k++) {
      const q = (n / 10) | 0;
      out[--p] = 48 + (n - q * 10);
      n = q;
    }
  }

  /**
   * Appends the text String(d) gives when d is a short decimal (0, or an integer k over 10^p for
   * some p up to 6, |k| below 10^15: at most 15 significant digits, which no other decimal of as
   * few digits rounds to, so it is the shortest that round-trips, and written without an exponent)
   * and returns true; returns false, with nothing written, for any other number. Measurements,
   * money and ratios are mostly such numbers; String(d) finds the same text far more slowly.
   */
  shortDecimal(d: number): boolean {
    // Not within six places (most computed doubles): no need to try each. A short decimal too large
    // for this test to keep is left to String as well.
    if (Math.round(d * 1e6) / 1e6 !== d) return false;
    for (let p = 0; p < POW10.length; p++) {
      const scale = POW10[p]!;
      const k = Math.round(d * scale);
      if (k / scale !== d) continue;
      if (k >= 1e15 || k <= -1e15) return false;
      const q = k < 0 ? -k : k;
      if (k < 0) this.byte(45);
      if (p === 0) this.uint(q);
      else {
        const whole = Math.floor(q / scale);
        this.uint(whole);
        this.byte(46);
        this.fixedDigits(q - whole * scale, p);
      }
      return true;
    }
    return false;
  }

  /** The unsigned 64-bit integer hi·2^32 + lo in decimal, exact, without BigInt. */
  uint64(lo: number, hi: number): void {
    if (hi <= 0x1fffff) {
      this.uint(hi * 4294967296 + lo);
      return;
    }
    // Three base-10^7 digits from 24-bit pieces (the split protobuf's JS runtime uses).
    const low = lo & 0xffffff;
    const mid = ((lo >>> 24) | (hi << 8)) & 0xffffff;
    const high = (hi >>> 16) & 0xffff;
    let a = low + mid * 6777216 + high * 6710656;
    let b = mid + high * 8147497;
    let c = high * 2;
    if (a >= 10000000) {
      b += Math.floor(a / 10000000);
      a %= 10000000;
    }
    if (b >= 10000000) {
      c += Math.floor(b / 10000000);
      b %= 10000000;
    }
    this.uint(c);
    this.fixedDigits(b, 7);
    this.fixedDigits(a, 7);
  }

  /** The signed 64-bit integer with two's-complement halves hi, lo in decimal. */
  int64(lo: number, hi: number): void {
    if (hi < 0x80000000) {
      this.uint64(lo, hi);
      return;
    }
    const nlo = (~lo + 1) >>> 0;
    const nhi = (~hi + (nlo === 0 ? 1 : 0)) >>> 0;
    this.byte(45);
    this.uint64(nlo, nhi);
  }

  /** n (below 2^32; an int32 as its two's complement) as four little-endian bytes. */
  uint32le(n: number): void {
    this.ensure(4);
    this.uint32leAt(this.pos, n);
    this.pos += 4;
  }

  /** Each of words as four little-endian bytes. */
  uint32les(words: Uint32Array): void {
    const n = words.length;
    this.ensure(4 * n);
    const view = this.view;
    let p = this.pos;
    for (let i = 0; i < n; i++, p += 4) view.setUint32(p, words[i]!, true);
    this.pos = p;
  }

  /** v as eight little-endian bytes (a fixed64; a negative bigint as its two's complement, as a fixed64 field holds it). */
  uint64le(v: bigint): void {
    this.ensure(8);
    this.view.setBigUint64(this.pos, v, true);
    this.pos += 8;
  }

  /** Sets the four bytes at `at` (below pos: written before, such as a count known only at the end) to n, little-endian. */
  uint32leAt(at: number, n: number): void {
    const out = this.buf;
    out[at] = n & 0xff;
    out[at + 1] = (n >>> 8) & 0xff;
    out[at + 2] = (n >>> 16) & 0xff;
    out[at + 3] = (n >>> 24) & 0xff;
  }

  /** src[start, start+n) as hex, lowercase unless given HEX_UPPER. */
  hex(src: Uint8Array, start: number, n: number, digits: Uint8Array = HEX): void {
    this.ensure(n * 2);
    const out = this.buf;
    let p = this.pos;
    for (let i = start; i < start + n; i++) {
      const b = src[i]!;
      out[p++] = digits[b >>> 4]!;
      out[p++] = digits[b & 15]!;
    }
    this.pos = p;
  }
}
