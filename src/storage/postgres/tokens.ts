// Attribute search tokens: one 53-bit hash per attribute of "key renders as value" (the rendering
// of anyValueToString, the port's search semantics), for the span's own attributes. Spans keep them in an int8[] column under a GIN index, so an attribute search is an
// index lookup of `attr_tokens @> ARRAY[token]` whatever the value's type, and the exact typed
// attributes stay in plain json columns that PostgreSQL need not parse into jsonb (which doubled
// the server's CPU per span). A false match needs a 53-bit collision; it is not rechecked.
//
// The hash runs over UTF-16 code units. It is fed in pieces (tokenStart, tokenString or
// tokenAscii, tokenSeparator, ..., tokenEnd) so that the COPY transcoder can hash ASCII text
// where it lies in the request bytes, whose bytes are then its code units.
import { anyValueToString, type KeyValue } from '../../model/rows.ts';

// The hash state between tokenStart and tokenEnd (hashing is synchronous).
let h1 = 0;
let h2 = 0;

/** Starts a token. */
export function tokenStart(): void {
  h1 = 0xdeadbeef;
  h2 = 0x41c6ce57;
}

/** Feeds a string's UTF-16 code units. */
export function tokenString(s: string): void {
  // Locals in the loop: the module's state is written back once, not per code unit.
  let a = h1;
  let b = h2;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    a = Math.imul(a ^ ch, 2654435761);
    b = Math.imul(b ^ ch, 1597334677);
  }
  h1 = a;
  h2 = b;
}

/** Feeds ASCII bytes src[start, end) (each byte is its code unit). */
export function tokenAscii(src: Uint8Array, start: number, end: number): void {
  let a = h1;
  let b = h2;
  for (let i = start; i < end; i++) {
    const ch = src[i]!;
    a = Math.imul(a ^ ch, 2654435761);
    b = Math.imul(b ^ ch, 1597334677);
  }
  h1 = a;
  h2 = b;
}

/** Feeds the key/value separator: a code no UTF-16 unit can equal. */
export function tokenSeparator(): void {
  h1 = Math.imul(h1 ^ 0x10000, 2654435761);
  h2 = Math.imul(h2 ^ 0x10000, 1597334677);
}

/** The token of what was fed (cyrb53-style final mix, 53 bits). */
export function tokenEnd(): number {
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The token of key and value (a value's anyValueToString rendering). */
export function attributeToken(key: string, value: string): number {
  tokenStart();
  tokenString(key);
  tokenSeparator();
  tokenString(value);
  return tokenEnd();
}

/** Tokens of an attribute list, appended to out. */
export function pushTokens(attrs: KeyValue[], out: number[]): void {
  for (const kv of attrs) out.push(attributeToken(kv.key, anyValueToString(kv.value)));
}
