// Attribute search tokens: one 53-bit hash per attribute of "key renders as value" (the rendering
// of anyValueToString, the port's search semantics), for the span's own attributes. Spans keep them in an int8[] column under a GIN index, so an attribute search is an
// index lookup of `attr_tokens @> ARRAY[token]` whatever the value's type, and the exact typed
// attributes stay in plain json columns that PostgreSQL need not parse into jsonb (which doubled
// the server's CPU per span). A false match needs a 53-bit collision; it is not rechecked.
import { anyValueToString, type KeyValue } from '../../model/rows.ts';

/** cyrb53-style hash of key and value, separated by a code no UTF-16 unit can equal. */
export function attributeToken(key: string, value: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ 0x10000, 2654435761);
  h2 = Math.imul(h2 ^ 0x10000, 1597334677);
  for (let i = 0; i < value.length; i++) {
    const ch = value.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Tokens of an attribute list, appended to out. */
export function pushTokens(attrs: KeyValue[], out: number[]): void {
  for (const kv of attrs) out.push(attributeToken(kv.key, anyValueToString(kv.value)));
}
