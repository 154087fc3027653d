// A small protobuf wire-format reader and writer. The reader is what the OTLP decoders run on
// in the workers: it never allocates per field except for the values it returns, and every read
// is bounds-checked so malformed input ends in a DecodeError, never in garbage or a hang.

/** Thrown for input that cannot be decoded at all (the whole request is refused). */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

const TWO_32 = 4294967296;
/** Decimal text of small integers (status codes, ports, counts), made once instead of per value. */
const SMALL_INTS: readonly string[] = Array.from({ length: 1024 }, (_, i) => String(i));

/**
 * Buffer's native slicers: what `toString(encoding, start, end)` ends in, without its argument
 * normalization and encoding lookup (measurable per string on the hot path). Not in @types/node.
 */
export interface SlicingBuffer extends Buffer {
  utf8Slice(start: number, end: number): string;
  hexSlice(start: number, end: number): string;
  base64Slice(start: number, end: number): string;
}

/** Reads protobuf wire data from a Uint8Array; `pos` is the next byte to read. */
export class WireReader {
  readonly buf: Uint8Array;
  /** The same bytes as a Buffer (no copy), for Node's native string, hex and base64 slicing. */
  readonly nb: SlicingBuffer;
  readonly view: DataView;
  readonly len: number;
  pos = 0;
  /** Low and high 32 bits (unsigned) of the last varint64() read. */
  lo = 0;
  hi = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.nb = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength) as SlicingBuffer;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.len = buf.byteLength;
  }

  /** A varint truncated to its low 32 bits, unsigned (tags, uint32, enums as read by protobuf). */
  uint32(): number {
    const buf = this.buf;
    const p = this.pos;
    if (p < this.len) {
      const b = buf[p];
      if (b < 0x80) {
        this.pos = p + 1;
        return b;
      }
    }
    this.varint64();
    return this.lo;
  }

  /** A varint truncated to its low 32 bits, signed (int32 and enum fields). */
  int32(): number {
    return this.uint32() | 0;
  }

  /** Reads a varint of up to 10 bytes into `lo`/`hi`. */
  varint64(): void {
    const buf = this.buf;
    let p = this.pos;
    const len = this.len;
    let lo = 0;
    let hi = 0;
    let b: number;
    // Bytes 0..3 carry bits 0..27.
    for (let shift = 0; shift < 28; shift += 7) {
      if (p >= len) throw truncated('varint');
      b = buf[p++];
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = p;
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    // Byte 4 carries bits 28..34.
    if (p >= len) throw truncated('varint');
    b = buf[p++];
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      // Bytes 5..9 carry bits 35..63.
      for (let shift = 3; ; shift += 7) {
        if (p >= len) throw truncated('varint');
        b = buf[p++];
        if (shift === 31) {
          if (b >= 0x80) throw new DecodeError(`varint longer than 10 bytes at offset ${p - 10}`);
          if (b > 1) throw new DecodeError(`varint overflows 64 bits at offset ${p - 10}`);
          hi |= b << 31;
          break;
        }
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    this.pos = p;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** A varint as an unsigned 64-bit bigint. */
  uint64(): bigint {
    this.varint64();
    if (this.hi === 0) return BigInt(this.lo);
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** A varint as a signed 64-bit integer rendered exactly in decimal (OTLP/JSON's int64 form). */
  int64String(): string {
    this.varint64();
    const lo = this.lo;
    const hi = this.hi;
    if (hi === 0) return lo < SMALL_INTS.length ? SMALL_INTS[lo] : String(lo);
    if (hi < 0x200000) return String(hi * TWO_32 + lo);
    if (hi >= 0x80000000) {
      // Two's complement negation; magnitudes below 2^53 stay in number arithmetic.
      const nlo = (~lo + 1) >>> 0;
      const nhi = (~hi + (nlo === 0 ? 1 : 0)) >>> 0;
      if (nhi < 0x200000) return '-' + String(nhi * TWO_32 + nlo);
    }
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
  }

  bool(): boolean {
    this.varint64();
    return (this.lo | this.hi) !== 0;
  }

  fixed32(): number {
    const p = this.pos;
    if (p + 4 > this.len) throw truncated('fixed32');
    this.pos = p + 4;
    return this.view.getUint32(p, true);
  }

  fixed64(): bigint {
    const p = this.pos;
    if (p + 8 > this.len) throw truncated('fixed64');
    this.pos = p + 8;
    return this.view.getBigUint64(p, true);
  }

  double(): number {
    const p = this.pos;
    if (p + 8 > this.len) throw truncated('double');
    this.pos = p + 8;
    return this.view.getFloat64(p, true);
  }

  /** Reads a length prefix and returns where the value ends; `pos` is left at its first byte. */
  lenEnd(): number {
    const buf = this.buf;
    const p = this.pos;
    let n: number;
    if (p < this.len && buf[p] < 0x80) {
      n = buf[p];
      this.pos = p + 1;
    } else {
      this.varint64();
      if (this.hi !== 0) throw new DecodeError(`length prefix ${this.uint64Text()} at offset ${p} is beyond the end of the message`);
      n = this.lo;
    }
    const end = this.pos + n;
    if (end > this.len) {
      throw new DecodeError(`length prefix ${n} at offset ${p} runs beyond the end of the message (${this.len - this.pos} bytes left)`);
    }
    return end;
  }

  /** A length-delimited field as a copy-free view. */
  bytes(): Uint8Array {
    const end = this.lenEnd();
    const start = this.pos;
    this.pos = end;
    return this.buf.subarray(start, end);
  }

  /** A length-delimited field as UTF-8 text; invalid sequences become U+FFFD. */
  string(): string {
    const end = this.lenEnd();
    const start = this.pos;
    this.pos = end;
    return end === start ? '' : this.nb.utf8Slice(start, end);
  }

  /** Reads a tag, rejecting field number 0 and the wire types protobuf does not define (6, 7). */
  tag(): number {
    const t = this.uint32();
    if (t < 8 || (t & 7) > 5) throw badTag(t, this.pos);
    return t;
  }

  /** Skips the value of a field with the given tag (an unknown field). Groups are refused. */
  skip(tag: number): void {
    switch (tag & 7) {
      case WIRE_VARINT:
        this.varint64();
        return;
      case WIRE_FIXED64:
        if (this.pos + 8 > this.len) throw truncated('fixed64');
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.pos = this.lenEnd();
        return;
      case WIRE_FIXED32:
        if (this.pos + 4 > this.len) throw truncated('fixed32');
        this.pos += 4;
        return;
      case WIRE_START_GROUP:
      case WIRE_END_GROUP:
        throw groupError(tag);
      default:
        throw badTag(tag, this.pos);
    }
  }

  private uint64Text(): string {
    return ((BigInt(this.hi) << 32n) | BigInt(this.lo)).toString();
  }
}

function groupError(tag: number): DecodeError {
  return new DecodeError(`field ${tag >>> 3} uses wire type ${tag & 7} (group), which OTLP does not use`);
}

function truncated(what: string): DecodeError {
  return new DecodeError(`message truncated: ${what} runs past the end of the input`);
}

function badTag(tag: number, pos: number): DecodeError {
  if (tag >>> 3 === 0) return new DecodeError(`invalid field number 0 before offset ${pos}`);
  return new DecodeError(`invalid wire type ${tag & 7} for field ${tag >>> 3} before offset ${pos}`);
}

/**
 * Checks that a message's fields ended exactly at its length prefix; a field that straddles the
 * boundary means the input is corrupt.
 */
export function checkEnd(r: WireReader, end: number, what: string): void {
  if (r.pos !== end) throw new DecodeError(`${what}: a field runs past the end of the enclosing message`);
}

/** The error for a known field that arrives with a wire type its declared type never uses. */
export function wrongWireType(message: string, tag: number): DecodeError {
  if ((tag & 7) === WIRE_START_GROUP || (tag & 7) === WIRE_END_GROUP) return groupError(tag);
  return new DecodeError(`${message} field ${tag >>> 3} has wire type ${tag & 7}, which does not match its declared type`);
}

/** Skips an unknown field; throws wrongWireType for a known one (its bit set in `known`) with another wire type. */
export function unknownField(r: WireReader, tag: number, known: number, message: string): void {
  const field = tag >>> 3;
  if (field < 32 && ((known >>> field) & 1) !== 0) throw wrongWireType(message, tag);
  r.skip(tag);
}

const textEncoder = new TextEncoder();

/**
 * Builds protobuf wire data: small response messages, and test payloads (it writes whatever it is
 * told, malformed included). Nested messages: `fork()`, write the fields, then `join(field)`.
 */
export class WireWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  private readonly forks: number[] = [];

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Appends bytes as they are (for hand-made malformed input). */
  raw(bytes: ArrayLike<number>): this {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  /** A varint of any non-negative value below 2^64, or a negative int64 (ten bytes, two's complement). */
  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
    return this;
  }

  tag(field: number, wireType: number): this {
    return this.varint(field * 8 + wireType);
  }

  /** A varint field (uint32, int32, int64, uint64, bool, enum). */
  varintField(field: number, value: number | bigint | boolean): this {
    return this.tag(field, WIRE_VARINT).varint(typeof value === 'boolean' ? (value ? 1 : 0) : value);
  }

  fixed32Field(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    this.ensure(4);
    this.view.setUint32(this.pos, value >>> 0, true);
    this.pos += 4;
    return this;
  }

  fixed64Field(field: number, value: bigint): this {
    this.tag(field, WIRE_FIXED64);
    this.ensure(8);
    this.view.setBigUint64(this.pos, BigInt.asUintN(64, value), true);
    this.pos += 8;
    return this;
  }

  doubleField(field: number, value: number): this {
    this.tag(field, WIRE_FIXED64);
    this.ensure(8);
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
    return this;
  }

  bytesField(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN).varint(value.length);
    return this.raw(value);
  }

  stringField(field: number, value: string): this {
    return this.bytesField(field, textEncoder.encode(value));
  }

  /** Starts a nested message. */
  fork(): this {
    this.forks.push(this.pos);
    return this;
  }

  /** Ends the nested message started by the matching fork() and writes it as `field`. */
  join(field: number): this {
    const start = this.forks.pop();
    if (start === undefined) throw new Error('WireWriter.join() without fork()');
    const body = this.buf.slice(start, this.pos);
    this.pos = start;
    return this.bytesField(field, body);
  }

  finish(): Uint8Array {
    if (this.forks.length > 0) throw new Error('WireWriter.finish() with an unjoined fork()');
    return this.buf.slice(0, this.pos);
  }
}
