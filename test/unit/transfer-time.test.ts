// The transfer CLI's --start/--end read times as the read API does: a window given to `export`
// selects what the same window selects in /v1/traces. Before, a time without an offset was read
// in the machine's zone, 02-30 rolled over into March, and a time past 2262 reached the store.
import { describe, expect, it } from 'vitest';
import { parseTime } from '../../src/transfer/cli.ts';
import { parseTraceQuery } from '../../src/query/server.ts';

function refusal(v: string): string {
  try {
    parseTime('start', v);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`expected ${v} to be refused`);
}

describe('transfer CLI times', () => {
  it('reads RFC 3339 exactly, as the read API does', () => {
    for (const v of ['2026-01-31T12:00:00.123456789+01:30', '2026-01-31', '1700000000123456789', '2026-01-31 12:00:00Z']) {
      expect(parseTime('start', v), v).toBe(parseTraceQuery(new URLSearchParams({ start: v }), 10).startNano);
    }
    expect(parseTime('end', '2026-01-31T12:00:00.000000001Z')).toBe(1_769_860_800_000_000_001n);
  });

  it('refuses what is not a time it can place, naming the flag and the value', () => {
    expect(refusal('2026-01-31T12:00:00')).toBe('--start "2026-01-31T12:00:00": expected unix nanoseconds or an RFC 3339 time like 2026-01-31T12:00:00Z');
    expect(refusal('2026-02-30')).toMatch(/^--start "2026-02-30": expected/);
    expect(refusal('yesterday')).toMatch(/^--start "yesterday": expected/);
    expect(refusal('99999999999999999999')).toMatch(/after 2262/);
    expect(refusal('1969-12-31T23:59:59Z')).toMatch(/before 1970/);
  });

  it('refuses Unix seconds or milliseconds, which read as nanoseconds would select everything since 1970', () => {
    for (const v of ['1767225600', '1767225600000', '946684799999999999']) {
      expect(refusal(v), v).toMatch(new RegExp(`^--start "${v}": .*before 2000.*give an RFC 3339 time .* or nanoseconds since the epoch`));
    }
    // 0 is the epoch in any unit; 2000-01-01 and later as nanoseconds are read as they are.
    expect(parseTime('start', '0')).toBe(0n);
    expect(parseTime('end', '946684800000000000')).toBe(946_684_800_000_000_000n);
    expect(parseTime('end', '1767225600000000000')).toBe(1_767_225_600_000_000_000n);
  });
});
