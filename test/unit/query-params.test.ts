// Read API parameters at the edges of what the stores can hold: int64 nanoseconds end in 2262
// and begin (for OTLP, which is unsigned) in 1970. Beyond them the answer is a 400 naming the
// parameter; before this, SQLite answered 503 "BigInt value is too large to bind".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadParameter, parseLogQuery, parseTraceQuery } from '../../src/query/server.ts';
import { getJson, startCollector, type TestCollector } from '../helpers/collector.ts';

const INT64_MAX = (1n << 63n) - 1n;
const trace = (qs: string) => parseTraceQuery(new URLSearchParams(qs), 1000);
const logs = (qs: string) => parseLogQuery(new URLSearchParams(qs), 1000);

function badParameter(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BadParameter);
    return (err as Error).message;
  }
  throw new Error('expected BadParameter');
}

describe('parseTraceQuery', () => {
  it('accepts the whole int64 nanosecond range, as numbers and as dates', () => {
    expect(trace(`start=0&end=${INT64_MAX}`)).toMatchObject({ startNano: 0n, endNano: INT64_MAX });
    expect(trace('start=1970-01-01T00:00:00Z&end=2262-04-11T23:47:16Z')).toMatchObject({ startNano: 0n, endNano: 9_223_372_036_000_000_000n });
  });

  it('refuses times that int64 nanoseconds cannot hold, naming the parameter', () => {
    expect(badParameter(() => trace(`start=${INT64_MAX + 1n}`))).toMatch(/^start: after 2262/);
    expect(badParameter(() => trace('end=99999999999999999999'))).toMatch(/^end: after 2262/);
    expect(badParameter(() => trace('end=2262-04-12T00:00:00Z'))).toMatch(/^end: after 2262/);
    expect(badParameter(() => trace('start=9999-12-31'))).toMatch(/^start: after 2262/);
    expect(badParameter(() => trace('start=%2B275760-09-13T00:00:00Z'))).toMatch(/^start: after 2262/);
    expect(badParameter(() => trace('start=1600-01-01'))).toMatch(/^start: before 1970/);
    expect(badParameter(() => trace('end=1969-12-31T23:59:59Z'))).toMatch(/^end: before 1970/);
    expect(badParameter(() => trace('start=-1'))).toMatch(/^start: expected unix nanoseconds/);
  });

  it('reads RFC 3339 times exactly: every fraction digit, the offset, and only dates that exist', () => {
    expect(trace('end=2023-11-14T22:13:20.000500Z').endNano).toBe(1_700_000_000_000_500_000n);
    expect(trace('end=2023-11-14T22:13:20.123456789Z').endNano).toBe(1_700_000_000_123_456_789n);
    expect(trace('start=2023-11-15T00:13:20%2B02:00').startNano).toBe(1_700_000_000_000_000_000n);
    expect(trace('start=2023-11-14t17:13:20-05:00').startNano).toBe(1_700_000_000_000_000_000n);
    expect(trace('start=2023-11-14').startNano).toBe(1_699_920_000_000_000_000n);
    // Without an offset the time would be read in the server's time zone: refused, not guessed.
    for (const bad of ['2023-02-30T00:00:00Z', '2023-02-29', '2023-11-14T24:00:00Z', '2023-11-14T22:13:20', '2023-11-14T22:13:20+25:00', '2023-11-14T22:13Z', 'yesterday']) {
      expect(badParameter(() => trace(`start=${encodeURIComponent(bad)}`)), bad).toMatch(/^start: expected unix nanoseconds or an RFC 3339 time/);
    }
  });

  it('accepts durations up to int64 nanoseconds and refuses longer ones, naming the parameter', () => {
    expect(trace('minDurationMs=9200000000000').minDurationNano).toBe(9_200_000_000_000_000_000n);
    expect(trace('maxDurationMs=9223372036854').maxDurationNano).toBe(9_223_372_036_854_000_000n);
    expect(badParameter(() => trace('minDurationMs=9300000000000'))).toMatch(/^minDurationMs: over 9223372036854 ms/);
    expect(badParameter(() => trace('maxDurationMs=999999999999999.5'))).toMatch(/^maxDurationMs: over/);
    expect(badParameter(() => trace('minDurationMs=9.2e12'))).toMatch(/^minDurationMs: expected a non-negative number/);
    expect(badParameter(() => trace('minDurationMs=1e400'))).toMatch(/^minDurationMs: expected/);
  });

  it('keeps the other checks', () => {
    expect(trace('service=a&limit=5&attr=k=v')).toMatchObject({ service: 'a', limit: 5, attributes: [{ key: 'k', value: 'v' }] });
    expect(badParameter(() => trace('limit=1001'))).toMatch(/^limit:/);
    expect(badParameter(() => trace('start=1700000000000000002&end=1700000000000000001'))).toBe('start: after end');
    expect(badParameter(() => trace('nope=1'))).toMatch(/^nope: unknown parameter/);
  });

  it('reads the status a span must have as its OTLP code, and refuses other words', () => {
    expect(trace('status=error').statusCode).toBe(2);
    expect(trace('status=ok').statusCode).toBe(1);
    expect(trace('status=unset').statusCode).toBe(0);
    for (const bad of ['ERROR', 'constructor', '2']) expect(badParameter(() => trace(`status=${bad}`))).toMatch(/^status: expected error, ok or unset/);
  });
});

describe('parseLogQuery', () => {
  it('refuses out-of-range times naming the parameter and accepts the edges', () => {
    expect(logs(`start=0&end=${INT64_MAX}`)).toMatchObject({ startNano: 0n, endNano: INT64_MAX });
    expect(badParameter(() => logs('start=1677-09-21'))).toMatch(/^start: before 1970/);
    expect(badParameter(() => logs('end=3000-01-01'))).toMatch(/^end: after 2262/);
    expect(badParameter(() => logs('traceId=xyz'))).toMatch(/^traceId:/);
  });
});

describe('read API over SQLite at the int64 edges', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'sqlite' });
  });
  afterAll(async () => c?.stop());

  it.each([
    ['/v1/traces?start=1600-01-01', 'start'],
    ['/v1/traces?end=9999-01-01T00:00:00Z', 'end'],
    ['/v1/traces?start=99999999999999999999', 'start'],
    ['/v1/traces?minDurationMs=9300000000000', 'minDurationMs'],
    ['/v1/traces?maxDurationMs=999999999999999', 'maxDurationMs'],
    ['/v1/logs?start=1677-01-01', 'start'],
    ['/v1/logs?end=2300-01-01', 'end'],
  ])('%s is a 400 naming %s', async (path, param) => {
    const r = await getJson(c.queryUrl, path);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(new RegExp(`^${param}: `));
    expect(r.body.error).not.toMatch(/BigInt|bind/);
  });

  it.each([
    ['/v1/traces?start=1767225600', 'start', '1767225600'],
    ['/v1/traces?service=s&end=1767225600000', 'end', '1767225600000'],
    ['/v1/logs?start=1767225600000000', 'start', '1767225600000000'],
    ['/v1/logs?traceId=5b8efff798038103d269b633813fc60c&end=1', 'end', '1'],
  ])('%s (seconds, milliseconds or microseconds read as nanoseconds: before 2000) is a 400 naming %s, the value and the forms accepted', async (path, param, value) => {
    // `date +%s` gives seconds: read as nanoseconds they meant January 1970, and a search
    // answered nothing (end) or everything (start) without a word.
    const r = await getJson(c.queryUrl, path);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(new RegExp(`^${param}: as nanoseconds since the epoch this is 1970-01-\\d\\dT.*before 2000.*RFC 3339 time like 2026-01-31T12:00:00Z or nanoseconds since the epoch, got '${value}'$`));
  });

  it('answers the largest accepted values with 200', async () => {
    for (const path of [`/v1/traces?start=0&end=${INT64_MAX}`, '/v1/traces?minDurationMs=9200000000000', `/v1/logs?start=0&end=${INT64_MAX}`]) {
      const r = await getJson(c.queryUrl, path);
      expect(r.status, path).toBe(200);
    }
  });
});
