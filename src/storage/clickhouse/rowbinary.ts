// A growable RowBinary writer. One instance is reused per encoder (per worker thread): rows are
// written into a scratch Buffer that only grows, and each finished chunk is copied out into an
// ArrayBuffer of its own so the worker can transfer it without dragging the scratch along.
import { asciiInto } from '../../pipeline/transcode/byte-out.ts';

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;

/** RowBinary encoding of the types the Tracehouse tables use. */
export class RowBinaryWriter {
  #buf: Buffer;
  #view: DataView;
  #pos = 0;

  constructor(initialBytes = 1 << 20) {
    // allocUnsafeSlow: never a slice of Node's shared pool, so growing it frees the old one.
    this.#buf = Buffer.allocUnsafeSlow(initialBytes);
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  }

  get length(): number {
    return this.#pos;
  }

  reset(): void {
    this.#pos = 0;
  }

  /** The bytes written since the last reset, copied into their own ArrayBuffer. */
  take(): Uint8Array {
    const out = new Uint8Array(this.#pos);
    out.set(this.#buf.subarray(0, this.#pos));
    this.#pos = 0;
    return out;
  }

  #ensure(extra: number): void {
    const need = this.#pos + extra;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
    this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  /** LEB128 length prefix (array/map sizes, string lengths). */
  varUInt(n: number): void {
    this.#ensure(10);
    const b = this.#buf;
    let p = this.#pos;
    while (n >= 0x80) {
      b[p++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    b[p++] = n;
    this.#pos = p;
  }

  uint8(n: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = n & 0xff;
  }

  uint32(n: number): void {
    this.#ensure(4);
    this.#view.setUint32(this.#pos, n >>> 0, true);
    this.#pos += 4;
  }

  /** UInt64 from a non-negative bigint; values outside the range are clamped. */
  uint64(v: bigint): void {
    this.#ensure(8);
    this.#view.setBigUint64(this.#pos, v < 0n ? 0n : v > UINT64_MAX ? UINT64_MAX : v, true);
    this.#pos += 8;
  }

  /** Int64 (DateTime64(9) ticks); values outside the range are clamped. */
  int64(v: bigint): void {
    this.#ensure(8);
    this.#view.setBigInt64(this.#pos, v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : v, true);
    this.#pos += 8;
  }

  /** String / LowCardinality(String): varint byte length, then UTF-8 bytes. */
  string(s: string): void {
    const n = s.length;
    if (n < 128) {
      // Short strings are mostly ASCII: copied here (asciiInto), not by a call into C++.
      this.#ensure(2 + n * 3);
      const b = this.#buf;
      const end = asciiInto(b, this.#pos + 1, s);
      if (end >= 0) {
        b[this.#pos] = n;
        this.#pos = end;
        return;
      }
      if (n < 43) {
        // At most 3 UTF-8 bytes per UTF-16 unit: < 128 bytes, so the length fits one varint byte.
        const written = b.write(s, this.#pos + 1);
        b[this.#pos] = written;
        this.#pos += 1 + written;
        return;
      }
    }
    const bytes = Buffer.byteLength(s, 'utf8');
    this.varUInt(bytes);
    this.#ensure(bytes);
    this.#buf.write(s, this.#pos, bytes);
    this.#pos += bytes;
  }

  /** Raw bytes already in RowBinary form (a cached encoded map, say). */
  raw(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** Marks a position to copy the bytes written after it (see sliceFrom). */
  mark(): number {
    return this.#pos;
  }

  /** A copy of the bytes written since `mark`. */
  sliceFrom(mark: number): Uint8Array {
    return new Uint8Array(this.#buf.subarray(mark, this.#pos));
  }
}
