// The malformed fixtures in test/fixtures/bad-*.bin (written by make-bad-fixtures.ts): what each
// must decode to. Transport damage refuses the request with a DecodeError that says what is wrong;
// item problems keep the good items and count the bad ones.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DecodeError, decodeLogsProto, decodeTracesProto } from '../../src/pipeline/decode/index.ts';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));
const LIMITS = { maxNestingDepth: 100 };

describe('bad-*.bin fixtures that refuse the whole request', () => {
  const refused: [string, RegExp][] = [
    ['bad-truncated.bin', /beyond the end|truncated/],
    ['bad-wrong-wire-type.bin', /Span field 1 has wire type 0/],
    ['bad-group.bin', /field 20 uses wire type 3 \(group\)/],
    ['bad-end-group.bin', /field 1 uses wire type 4 \(group\)/],
    ['bad-length-beyond-end.bin', /length prefix 1048576 at offset 1 runs beyond the end/],
    ['bad-length-huge.bin', /length prefix 1099511627776 at offset 1 is beyond the end/],
    ['bad-varint-11-bytes.bin', /varint longer than 10 bytes/],
    ['bad-field-zero.bin', /invalid field number 0/],
    ['bad-wire-type-7.bin', /invalid wire type 7 for field 3/],
    ['bad-overrun.bin', /Span: a field runs past the end of the enclosing message/],
  ];
  for (const [name, message] of refused) {
    it(name, () => {
      const bytes = fixture(name);
      expect(() => decodeTracesProto(bytes, LIMITS)).toThrow(DecodeError);
      expect(() => decodeTracesProto(bytes, LIMITS)).toThrow(message);
    });
  }
});

describe('bad-*.bin fixtures that keep the good items', () => {
  it('bad-nesting-1000.bin: the deep span is rejected, the other kept', () => {
    const r = decodeTracesProto(fixture('bad-nesting-1000.bin'), LIMITS);
    expect(r.rows.map((s) => s.name)).toEqual(['kept']);
    expect(r.errorMessage).toBe('1 span rejected: value nested deeper than 100 levels (1)');
  });

  it('bad-ids.bin: zero, empty and short ids are rejected with their reasons', () => {
    const r = decodeTracesProto(fixture('bad-ids.bin'), LIMITS);
    expect(r.rows.map((s) => [s.name, s.parentSpanId])).toEqual([['kept', '0102030405060708']]);
    expect(r.rejected).toBe(6);
    expect(r.errorMessage).toBe('6 spans rejected: invalid trace id (3), invalid span id (2), invalid parent span id (1)');
  });

  it('bad-utf8.bin: invalid sequences become U+FFFD, U+0000 is kept', () => {
    const [row] = decodeTracesProto(fixture('bad-utf8.bin'), LIMITS).rows;
    expect(row.name).toBe('a\uFFFDb\uFFFD(\u0000\uFFFD\uFFFD\uFFFD');
    expect(row.attributes).toStrictEqual([{ key: 'k\u0000', value: { stringValue: '\uFFFD\uFFFD' } }]);
  });

  it('bad-keys.bin: __proto__, constructor and SQL-looking text are plain data; a duplicate key keeps its last value', () => {
    const [row] = decodeTracesProto(fixture('bad-keys.bin'), LIMITS).rows;
    expect(row.name).toBe("'); DROP TABLE spans; --");
    expect(row.attributes).toStrictEqual([
      { key: '__proto__', value: { stringValue: '{"polluted":true}' } },
      { key: 'constructor', value: { stringValue: 'x' } },
      { key: 'dup', value: { intValue: '2' } },
      { key: "k' OR '1'='1", value: { stringValue: 'Robert"); DROP TABLE logs;--' } },
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('bad-timestamps.bin: zero and reversed times are kept exactly with durations clamped; times beyond 2262 reject the span', () => {
    const r = decodeTracesProto(fixture('bad-timestamps.bin'), LIMITS);
    expect(r.rows.map((s) => [s.name, s.startTimeUnixNano, s.endTimeUnixNano, s.durationNano])).toEqual([
      ['zero', 0n, 0n, 0n],
      ['end before start', 2_000n, 1_000n, 0n],
    ]);
    expect(r.errorMessage).toBe('1 span rejected: timestamp beyond 2262-04-11 (int64 nanoseconds) (1)');
  });

  it('bad-logs-ids.bin: every record is kept; wrong-length or zero ids are stored as not linked', () => {
    const r = decodeLogsProto(fixture('bad-logs-ids.bin'), LIMITS);
    expect(r.rows.map((l) => [l.eventName, l.traceId, l.spanId])).toEqual([
      ['short trace id', '', 'eee19b7ec3c1b174'],
      ['long span id', '5b8efff798038103d269b633813fc60c', ''],
      ['zero ids', '', ''],
      ['linked', '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b174'],
    ]);
    expect(r.rejected).toBe(0);
    expect(r.errorMessage).toBe('');
  });

  it('bad-logs-nesting.bin: the record with a 1000-deep body is rejected, the other kept', () => {
    const r = decodeLogsProto(fixture('bad-logs-nesting.bin'), LIMITS);
    expect(r.rows.map((l) => l.eventName)).toEqual(['kept']);
    expect(r.rejected).toBe(1);
  });
});
