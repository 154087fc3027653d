// Retry with backoff and a per-attempt timeout, as small functions of their inputs: the writer
// composes them around a store write (Collector exporterhelper: retry and timeout wrap, the
// store knows nothing of them).
import { setTimeout as sleep } from 'node:timers/promises';
import type { DroppedRows, WriteResult } from '../storage/backend.ts';

export interface RetryPolicy {
  retryInitialMs: number;
  retryMaxMs: number;
  /** Give up after retrying this long (0: never). */
  retryMaxElapsedMs: number;
}

/** How a write ended after its retries. */
export type RetryOutcome =
  | { kind: 'stored'; attempts: number; dropped?: DroppedRows; chunksInUse?: boolean }
  | { kind: 'dropped'; reason: 'permanent_error' | 'retries_exhausted' | 'shutdown'; error: Error };

class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/** Whatever a faulty store rejected with, as an Error the writer can log. */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(`backend failed with a non-error value: ${String(e)}`);
}

/** Equal-jitter exponential backoff: a random delay between half of min(max, initial·2^attempt) and all of it. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(cap / 2 + (Math.random() * cap) / 2));
}

/**
 * One attempt, bounded by timeoutMs and by `abort`: a store that does not answer in time (or a
 * shutdown that gives up) is a retryable failure. A throw, even a synchronous one, is treated as
 * transient: the port says stores answer with a result.
 */
export async function attemptWithTimeout(write: () => Promise<WriteResult>, timeoutMs: number, abort: AbortSignal): Promise<WriteResult> {
  // Ends the timeout timer once the write answers, and stops waiting at once when `abort` fires.
  const done = new AbortController();
  const signal = AbortSignal.any([done.signal, abort]);
  try {
    const timeout = sleep(timeoutMs, undefined, { signal }).then(
      (): WriteResult => ({ kind: 'retryable', error: new TimeoutError(`write took over ${timeoutMs} ms`) }),
      (): WriteResult => ({ kind: 'retryable', error: new Error('shutting down') }),
    );
    const result = await Promise.race([write(), timeout]);
    return result.kind === 'success' || result.error instanceof Error ? result : { ...result, error: asError(result.error) };
  } catch (err) {
    return { kind: 'retryable', error: asError(err) };
  } finally {
    done.abort();
  }
}

/**
 * Runs attempts until one succeeds, one fails permanently, retrying has taken too long, or
 * `abort` fires while waiting. `onFailure` sees every failed attempt (for metrics and logs).
 */
export async function retryWithBackoff(
  attempt: () => Promise<WriteResult>,
  policy: RetryPolicy,
  abort: AbortSignal,
  onFailure: (result: Exclude<WriteResult, { kind: 'success' }>) => void,
): Promise<RetryOutcome> {
  // A monotonic clock: the wall clock steps (NTP, a VM resumed), and a step forward gave up on a
  // batch after one failed attempt, a step back retried it for as long as the step.
  const started = performance.now();
  let lastError: Error | undefined;
  for (let n = 0; ; n++) {
    // Given up (shutdown past its timeout): a write started now would land while its rows are
    // counted as dropped, and perhaps after the store is closed.
    if (abort.aborted) return { kind: 'dropped', reason: 'shutdown', error: lastError ?? new Error('shut down before the write began') };
    const result = await attempt();
    if (result.kind === 'success') return { kind: 'stored', attempts: n + 1, ...(result.dropped && { dropped: result.dropped }), ...(result.chunksInUse && { chunksInUse: true }) };
    onFailure(result);
    lastError = result.error;
    if (result.kind === 'permanent') return { kind: 'dropped', reason: 'permanent_error', error: result.error };
    if (policy.retryMaxElapsedMs > 0 && performance.now() - started >= policy.retryMaxElapsedMs) {
      return { kind: 'dropped', reason: 'retries_exhausted', error: result.error };
    }
    try {
      await sleep(result.retryAfterMs ?? backoffMs(n, policy.retryInitialMs, policy.retryMaxMs), undefined, { signal: abort });
    } catch {
      return { kind: 'dropped', reason: 'shutdown', error: result.error };
    }
  }
}
