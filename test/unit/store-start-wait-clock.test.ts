// storage.startWaitMs is how long start-up waits for a store it cannot reach yet (a database
// starting beside the collector). It was measured on Date.now(): a wall-clock step (NTP stepping
// a clock at boot, as chrony does, while the database is still starting) ended the wait at once
// when forward, so the collector exited 1 and restarted in a loop; when back, it waited for as
// long as the step, the receivers closed all along.
import { pino } from 'pino';
import { afterEach, expect, it, vi } from 'vitest';
import { isNetworkFailure, whenReachable } from '../../src/storage/reach.ts';
import type { StoreLifecycle } from '../../src/storage/backend.ts';

const logger = pino({ level: 'silent' });

afterEach(() => {
  vi.restoreAllMocks();
});

/** A store that refuses connections (ECONNREFUSED) until `up` is set: no port, which another process on the machine could hold. */
const store = { name: 'tcp', unreachable: (err: unknown) => isNetworkFailure(err) } as unknown as StoreLifecycle;
let up = false;
const reach = async (): Promise<string> => {
  if (up) return 'reached';
  throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
};

/** The wall clock, stepped by `step()` ms from the first attempt on. */
function steppingClock(): { step: (ms: number) => void } {
  const realNow = Date.now.bind(Date);
  let by = 0;
  vi.spyOn(Date, 'now').mockImplementation(() => realNow() + by);
  return { step: (ms) => (by = ms) };
}

it('waits storage.startWaitMs for the store though the wall clock steps an hour forward meanwhile', async () => {
  const clock = steppingClock();
  let attempts = 0;
  const started = whenReachable(async () => {
    if (++attempts === 1) clock.step(3_600_000);
    // The store answers from the third attempt on (~0.75 s in).
    up = attempts >= 3;
    return reach();
  }, store, { waitMs: 10_000, endpoint: 'tcp', logger });
  await expect(started).resolves.toBe('reached');
  expect(attempts).toBe(3);
});

it('gives up after storage.startWaitMs though the wall clock steps an hour back meanwhile', async () => {
  const clock = steppingClock();
  let attempts = 0;
  up = false;
  const t0 = performance.now();
  const started = whenReachable(async () => {
    if (++attempts === 1) clock.step(-3_600_000);
    return reach();
  }, store, { waitMs: 500, endpoint: 'tcp', logger });
  const outcome = await Promise.race([started.then(() => 'reached', (err: Error) => err.message), new Promise((r) => setTimeout(() => r('still waiting'), 4000))]);
  expect(outcome).toMatch(/not reachable within storage.startWaitMs = 500 ms/);
  expect(performance.now() - t0).toBeLessThan(3000);
});
