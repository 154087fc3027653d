// A recurring event (refused requests, failed reads, failed TLS handshakes) is logged at most once
// a minute with how many happened since the last line. A burst within one minute used to say 1 and
// leave the rest to the next event's line, which may never come: an operator read "failedReads: 1"
// for 50 failed reads. The rest is now logged when the minute ends.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RecurringLog } from '../../src/telemetry/logger.ts';

describe('RecurringLog', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('logs the first event at once, the rest of its minute when the minute ends, and nothing while quiet', () => {
    const lines: { events: number; what: string }[] = [];
    const log = new RecurringLog();
    for (let i = 0; i < 50; i++) log.log((events) => lines.push({ events, what: `read ${i}` }));
    expect(lines).toEqual([{ events: 1, what: 'read 0' }]);
    vi.advanceTimersByTime(60_001);
    // The last event's line, standing for the 49 after the first.
    expect(lines).toEqual([{ events: 1, what: 'read 0' }, { events: 49, what: 'read 49' }]);
    vi.advanceTimersByTime(5 * 60_000);
    expect(lines).toHaveLength(2);
    // A new event a minute after the last line is logged at once again.
    log.log((events) => lines.push({ events, what: 'later' }));
    expect(lines.at(-1)).toEqual({ events: 1, what: 'later' });
  });

  it('writes one line a minute at most under a steady stream', () => {
    const counts: number[] = [];
    const log = new RecurringLog();
    // One event a second for three minutes.
    for (let s = 0; s < 180; s++) {
      log.log((events) => counts.push(events));
      vi.advanceTimersByTime(1000);
    }
    vi.advanceTimersByTime(60_001);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(180);
    expect(counts.length).toBeLessThanOrEqual(4);
  });

  it('logs a new event a minute after the last line at once though the wall clock stepped back', () => {
    // Before: the minute was measured on Date.now(). A step back of an hour (NTP, a VM resumed)
    // held every line of a recurring event (refused exports, failed writes) for that hour.
    const lines: number[] = [];
    const log = new RecurringLog();
    log.log((events) => lines.push(events));
    vi.advanceTimersByTime(61_000);
    vi.setSystemTime(Date.now() - 3_600_000);
    log.log((events) => lines.push(events));
    expect(lines).toEqual([1, 1]);
    log.log((events) => lines.push(events));
    vi.advanceTimersByTime(60_001);
    expect(lines).toEqual([1, 1, 1]);
  });
});
