// Read answers whose values nest deeper than a structured clone can be rebuilt on the main thread.
// A clone is rebuilt recursively on the receiving thread, whose stack (the main thread's, ~1 MB)
// gives out at ~1,400 levels of objects and arrays: the answer is lost ('messageerror') though the
// read thread sent it. A value nested as deep as receiver.maxNestingDepth allows (1000 AnyValue
// levels, 3-4 objects each) passes that; its read is asked again with `deep`, and the answer's deep
// parts travel as JSON text, which JSON.parse rebuilds without recursion.

/** Levels of objects and arrays a `deep` answer keeps as they are (a row's own are under 10). */
const CLONE_DEPTH = 200;
/** The one key of an object standing for a deeper part, its JSON text (never a key of a row's own objects). */
const DEEP_JSON = '\u0000json';

function plain(v: unknown): v is Record<string, unknown> | unknown[] {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return Array.isArray(v) || proto === Object.prototype || proto === null;
}

/**
 * Replaces each part of v deeper than CLONE_DEPTH levels by its JSON text (in place). Only
 * AnyValues nest that deep, and they hold no bigints; JSON.parse rebuilds them without recursion.
 */
export function packDeep(v: unknown, depth = 0): unknown {
  if (!plain(v) || DEEP_JSON in v) return v;
  if (depth >= CLONE_DEPTH) return { [DEEP_JSON]: JSON.stringify(v) };
  if (Array.isArray(v)) for (let i = 0; i < v.length; i++) v[i] = packDeep(v[i], depth + 1);
  else for (const k of Object.keys(v)) v[k] = packDeep(v[k], depth + 1);
  return v;
}

/** Undoes packDeep (in place). */
export function unpackDeep(v: unknown): unknown {
  if (!plain(v)) return v;
  if (DEEP_JSON in v) return JSON.parse((v as Record<string, string>)[DEEP_JSON]!);
  if (Array.isArray(v)) for (let i = 0; i < v.length; i++) v[i] = unpackDeep(v[i]);
  else for (const k of Object.keys(v)) v[k] = unpackDeep(v[k]);
  return v;
}
