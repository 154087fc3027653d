// What every protobuf transcoder shares: the known field numbers of each OTLP message (a known
// field with another wire type is an error, an unknown one is skipped, as otlp-proto.ts does),
// id validation on raw bytes, and fixed64 times read as two 32-bit halves (no BigInt).
import { MAX_TIME_NS } from '../decode/common.ts';
import { wrongWireType, type WireReader } from '../decode/wire.ts';

export const KNOWN_REQUEST = 1 << 1;
export const KNOWN_GROUP_ITEMS = (1 << 1) | (1 << 2) | (1 << 3);
export const KNOWN_RESOURCE = (1 << 1) | (1 << 2) | (1 << 3);
export const KNOWN_SCOPE = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4);
export const KNOWN_SPAN = 0x1fffe;
export const KNOWN_EVENT = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4);
export const KNOWN_LINK = 0x7e;
export const KNOWN_STATUS = (1 << 2) | (1 << 3);
export const KNOWN_LOG = 0x1fee;
export const KNOWN_KEYVALUE = (1 << 1) | (1 << 2);
export const KNOWN_ANYVALUE = 0xfe;
export const KNOWN_LIST = 1 << 1;

/** The latest storable time's high 32 bits + 1: a fixed64 time is storable when hi < this. */
export const MAX_TIME_HI = Number(MAX_TIME_NS >> 32n) + 1;

/** Skips an unknown field; throws the row decoder's error for a known field with the wrong wire type. */
export function unknownField(r: WireReader, tag: number, known: number, message: string): void {
  const field = tag >>> 3;
  if (field < 32 && ((known >>> field) & 1) !== 0) throw wrongWireType(message, tag);
  r.skip(tag);
}

export const ID_EMPTY = 0;
export const ID_OK = 1;
export const ID_BAD = 2;

/** '' (empty or all zero), ok, or bad (wrong length) for the id in buf[start, end). */
export function idState(buf: Uint8Array, start: number, end: number, size: number): number {
  if (end === start) return ID_EMPTY;
  if (end - start !== size) return ID_BAD;
  let any = 0;
  for (let i = start; i < end; i++) any |= buf[i]!;
  return any === 0 ? ID_EMPTY : ID_OK;
}

/** The halves of the last fixed64 read by fixed64(). */
export let fixedLo = 0;
export let fixedHi = 0;

/** Reads a fixed64 at r.pos into fixedLo / fixedHi. */
export function fixed64(r: WireReader): void {
  if (r.pos + 8 > r.len) r.fixed64(); // throws the reader's own truncation error
  fixedLo = r.view.getUint32(r.pos, true);
  fixedHi = r.view.getUint32(r.pos + 4, true);
  r.pos += 8;
}
