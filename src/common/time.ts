// Times given by people (read API parameters, transfer CLI flags): unix nanoseconds or RFC 3339,
// read the same way everywhere so a window means one thing to both.

const INT64_MAX = (1n << 63n) - 1n;

/** A full date, or a date and a time with its offset (RFC 3339; a space for the T too). */
const RFC3339 = /^([+-]?\d{4,6})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|([+-])(\d{2}):(\d{2})))?$/;

/**
 * Nanoseconds since 1970 of an RFC 3339 time (a date alone is its midnight UTC), every digit of
 * the fraction kept; undefined for another form or a date or time that does not exist (02-30,
 * 25:00). Date.parse would read a time without an offset in the server's zone, keep only
 * milliseconds, and roll 02-30 over into March.
 */
function rfc3339Ns(v: string): bigint | undefined {
  const m = RFC3339.exec(v);
  if (!m) return undefined;
  const [y, mo, d, h = 0, mi = 0, sec = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((x) => (x === undefined ? undefined : Number(x))) as number[];
  const at = new Date(0);
  at.setUTCFullYear(y!, mo! - 1, d!);
  at.setUTCHours(h, mi, sec, 0);
  const ms = at.getTime();
  if (Number.isNaN(ms) || at.getUTCFullYear() !== y || at.getUTCMonth() !== mo! - 1 || at.getUTCDate() !== d || at.getUTCHours() !== h || at.getUTCMinutes() !== mi || at.getUTCSeconds() !== sec) return undefined;
  if (m[9] !== undefined && (Number(m[10]) > 23 || Number(m[11]) > 59)) return undefined;
  const offsetMs = m[9] === undefined ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11])) * 60_000;
  return BigInt(ms - offsetMs) * 1_000_000n + BigInt((m[7] ?? '').padEnd(9, '0'));
}

/** 2000-01-01T00:00:00Z in nanoseconds: a number of nanoseconds before it is seconds or milliseconds given by mistake. */
const Y2000_NS = 946_684_800_000_000_000n;

/**
 * Nanoseconds from decimal unix nanoseconds or an RFC 3339 time, or why not (the caller names
 * the parameter and the value). Every store keeps times as int64 nanoseconds since 1970 (OTLP's
 * are unsigned): outside that the databases refuse to bind the value, so the time is wrong, not
 * the store unavailable. A number that as nanoseconds falls before 2000 (but 0, the epoch in any
 * unit) is refused too: it is Unix seconds, milliseconds or microseconds (`date +%s`), and read
 * as nanoseconds it meant January 1970: a window of everything or nothing, without a word. Its
 * unit is not guessed.
 */
export function timeNs(v: string): { ns: bigint } | { error: string } {
  const number = /^\d{1,20}$/.test(v);
  const ns = number ? BigInt(v) : rfc3339Ns(v);
  if (ns === undefined) return { error: 'expected unix nanoseconds or an RFC 3339 time like 2026-01-31T12:00:00Z' };
  if (ns < 0n) return { error: 'before 1970-01-01T00:00:00Z, the earliest time OTLP can carry' };
  if (ns > INT64_MAX) return { error: 'after 2262-04-11T23:47:16Z, the latest time int64 nanoseconds can hold' };
  if (number && ns > 0n && ns < Y2000_NS) {
    const at = new Date(Number(ns / 1_000_000n)).toISOString();
    return { error: `as nanoseconds since the epoch this is ${at}, before 2000 (seconds or milliseconds are not read as such): give an RFC 3339 time like 2026-01-31T12:00:00Z or nanoseconds since the epoch` };
  }
  return { ns };
}
