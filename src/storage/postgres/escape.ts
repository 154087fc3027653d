// PostgreSQL text columns cannot hold U+0000, yet OTLP strings may contain it. Rather than replace
// it (lossy) we escape it reversibly with U+FFFF, a Unicode noncharacter that PostgreSQL stores
// fine and that real telemetry does not use: U+0000 is stored as U+FFFF '0' and a genuine U+FFFF
// as U+FFFF '1'. Reads undo it, so rows come back exactly as written; psql shows U+FFFF0 where a
// NUL was, and a search for a string with U+0000 escapes it the same way before comparing.
//
// json columns need none of this: JSON.stringify writes U+0000 as the escape "\u0000", which the
// json type (unlike jsonb) accepts and keeps verbatim; ad-hoc SQL that extracts such a value
// as text (->>) gets PostgreSQL's "unsupported Unicode escape sequence" error, our reads parse
// the JSON in the client and never do. Lone UTF-16 surrogates (only OTLP/JSON escapes can make one)
// are U+FFFD by then: the JSON decoder makes them so, as protobuf strings are UTF-8.

const NEEDS_ESCAPE = /[\0\uffff]/;
const ESCAPE = /[\0\uffff]/g;
const UNESCAPE = /\uffff([01])/g;

/** Escapes one plain string for a text column. */
export function escapeText(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(ESCAPE, (c) => (c === '\0' ? '\uffff0' : '\uffff1')) : s;
}

/** Undoes escapeText. */
export function unescapeText(s: string): string {
  return s.includes('\uffff') ? s.replace(UNESCAPE, (_m, d: string) => (d === '0' ? '\0' : '\uffff')) : s;
}
