// Whether a store could not be reached at all (nothing listening yet, no route, no name yet): a
// database started beside the collector (docker compose, a pod and its database starting
// together) answers a little later. Start-up waits for such a store (storage.startWaitMs); a
// refused login, a missing database or a schema at the wrong version stop it at once.

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
