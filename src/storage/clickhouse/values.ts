// Attribute values, exactly. The exporter's Map(String, String) columns hold every value rendered
// as a string (anyValueToString); Tracehouse keeps one type tag per map entry beside them so a
// read can rebuild the original AnyValue. Values the rendering cannot carry (arrays, kvlists,
// -0 and non-finite numbers) are stored whole, in order, in a side list.
import type { AnyValue, KeyValue } from '../../model/rows.ts';

/**
 * Tag per map entry:
 *  s string · b bool · i int64 · d finite double · D double spelled 'NaN' / 'Infinity' / '-Infinity'
 *  n non-finite double as a number · z negative zero · y bytes (base64) · e empty value
 *  j array or kvlist, stored whole in the side list.
 * A map whose values are all strings has no tags at all (the common case costs nothing).
 * This returns the tag of one value.
 */
export function tagOf(v: AnyValue): string {
  if ('stringValue' in v) return 's';
  if ('intValue' in v) return 'i';
  if ('boolValue' in v) return 'b';
  if ('doubleValue' in v) {
    const d = v.doubleValue;
    if (typeof d === 'string') return 'D';
    if (!Number.isFinite(d)) return 'n';
    return Object.is(d, -0) ? 'z' : 'd';
  }
  if ('bytesValue' in v) return 'y';
  if ('arrayValue' in v || 'kvlistValue' in v) return 'j';
  return 'e';
}

/** Rebuilds attributes from the stored map and its type information. */
export function joinAttributes(keys: readonly string[], values: readonly string[], tags: string | undefined, whole: readonly AnyValue[] | undefined): KeyValue[] {
  const out = new Array<KeyValue>(keys.length);
  let w = 0;
  for (let i = 0; i < keys.length; i++) {
    const t = tags ? tags[i] : 's';
    out[i] = { key: keys[i]!, value: valueFromTag(t ?? 's', values[i] ?? '', whole, w) };
    if (t === 'j') w++;
  }
  return out;
}

function valueFromTag(tag: string, s: string, whole: readonly AnyValue[] | undefined, w: number): AnyValue {
  switch (tag) {
    case 's':
      return { stringValue: s };
    case 'i':
      return { intValue: s };
    case 'b':
      return { boolValue: s === 'true' };
    case 'd':
      return { doubleValue: Number(s) };
    case 'D':
      return { doubleValue: s as 'NaN' | 'Infinity' | '-Infinity' };
    case 'n':
      return { doubleValue: Number(s) };
    case 'z':
      return { doubleValue: -0 };
    case 'y':
      return { bytesValue: s };
    case 'e':
      return {};
    case 'j':
      return whole?.[w] ?? { stringValue: s };
    default:
      return { stringValue: s };
  }
}

/** A single value (a log body) from its rendered text, tag and whole form. */
export function joinValue(text: string, tag: string | undefined, whole: AnyValue | undefined): AnyValue {
  return valueFromTag(tag ?? 's', text, whole === undefined ? undefined : [whole], 0);
}

// JSON cannot carry NaN, ±Infinity or -0 as numbers; inside whole values they travel as {"#n": "…"}.
const NUM = '#n';

/** JSON.stringify that keeps non-finite and negative-zero doubles inside whole values. */
export function stringifyExact(v: unknown, hasWhole: boolean): string {
  if (!hasWhole) return JSON.stringify(v);
  return JSON.stringify(v, (key, x: unknown) =>
    key === 'doubleValue' && typeof x === 'number' && (!Number.isFinite(x) || Object.is(x, -0))
      ? { [NUM]: Object.is(x, -0) ? '-0' : String(x) }
      : x,
  );
}

/** The inverse of stringifyExact. */
export function parseExact<T>(s: string): T {
  if (!s.includes(`"${NUM}"`)) return JSON.parse(s) as T;
  return JSON.parse(s, (key, x: unknown) =>
    key === 'doubleValue' && x !== null && typeof x === 'object' && NUM in x ? Number((x as Record<string, string>)[NUM]) : x,
  ) as T;
}
