// Whether a store could not be reached at all (nothing listening yet, no route, no name yet): a
// database started beside the collector (docker compose, a pod and its database starting
// together) answers a little later. Start-up waits for such a store (storage.startWaitMs); a
// refused login, a missing database or a schema at the wrong version stop it at once.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../telemetry/logger.ts';
import type { StoreLifecycle } from './backend.ts';

/** Node's codes of a connection that could not be made or was cut before an answer. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** True when err, or an error it was caused by (one of several addresses tried, say), is a network failure to reach a server. */
export function isNetworkFailure(err: unknown, depth = 0): boolean {
  if (err === null || typeof err !== 'object' || depth > 4) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  if (err instanceof AggregateError && err.errors.some((e) => isNetworkFailure(e, depth + 1))) return true;
  return isNetworkFailure((err as { cause?: unknown }).cause, depth + 1);
}

/** Backoff of the attempts to reach a store at start (whenReachable). */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 5000;

export interface ReachOptions {
  /** storage.startWaitMs. */
  waitMs: number;
  /** Where the store is looked for, as the configuration says it (`storage.postgres.url = "…"`, password hidden); absent for in-process stores. */
  endpoint: string | undefined;
  logger: Logger;
  /** True once a stop began: the wait ends. */
  stopped?: () => boolean;
}

/**
 * Runs run (a store's start, or `tracehouse migrate`'s migrations) until the store answers: one
 * that cannot be reached yet is tried again with backoff for storage.startWaitMs, said once in
 * the log. When the wait ends, the error names where the store was looked for and the wait: a
 * bare "connect ECONNREFUSED 10.0.0.7:5432" named neither the key to correct nor the option
 * that would have waited.
 */
export async function whenReachable<T>(run: () => Promise<T>, store: StoreLifecycle, o: ReachOptions): Promise<T> {
  // A monotonic clock: the wall clock steps (NTP at boot, while a database beside the collector is
  // still starting), and a step forward ended the wait at once, a step back made it as long.
  const until = performance.now() + o.waitMs;
  let waited = false;
  for (let delayMs = RETRY_FIRST_MS; ; delayMs = Math.min(delayMs * 2, RETRY_MAX_MS)) {
    if (o.stopped?.()) throw new Error('stopped while starting');
    try {
      const result = await run();
      if (waited) o.logger.info({ backend: store.name }, 'storage reached');
      return result;
    } catch (err) {
      if (o.stopped?.() || !store.unreachable?.(err)) throw err;
      const left = Math.ceil(until - performance.now());
      if (left <= 0) {
        const wait = waited ? `within storage.startWaitMs = ${o.waitMs} ms` : `(storage.startWaitMs = ${o.waitMs}: no wait)`;
        throw new Error(`${o.endpoint ?? `the ${store.name} store`}: not reachable ${wait}: ${(err as Error).message}`, { cause: err });
      }
      if (!waited) o.logger.warn({ backend: store.name, err: (err as Error).message, waitMs: o.waitMs }, 'storage not reachable yet; start-up waits for it (storage.startWaitMs)');
      waited = true;
      await sleep(Math.min(delayMs, left));
    }
  }
}
