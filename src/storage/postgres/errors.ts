// Maps what PostgreSQL (or the network) said into what the writer should do next.
import pg from 'pg';
import type { WriteResult } from '../backend.ts';
import { isNetworkFailure } from '../reach.ts';
import { ConnectError } from './sql.ts';

// SQLSTATE classes and codes worth retrying: the same batch can succeed later.
const RETRYABLE_CLASSES = new Set([
  '08', // connection exception
  '40', // serialization failure, deadlock
  '53', // insufficient resources (too many connections, disk full, out of memory)
  '57', // operator intervention: query canceled (statement timeout), shutdown, starting up
  '58', // system error (I/O)
  '25', // invalid transaction state: only ever follows another failure
]);
const RETRYABLE_CODES = new Set([
  '55P03', // lock_not_available (lock_timeout while partitions are created or dropped)
  '55006', // object_in_use
  '42P01', // undefined_table: schema being (re)migrated or a partition dropped under us
  '3F000', // invalid_schema_name: idem
  '42501', // insufficient_privilege: a grant missing (a restore without it, a REVOKE) is the operator's to mend, not the rows' fault
]);

/** True for errors where retrying the same batch later can succeed. */
export function isRetryable(err: unknown): boolean {
  // No connection (a login refused: class 28, 3D000, 55000 …): the rows were never sent.
  if (err instanceof ConnectError) return true;
  if (err instanceof pg.DatabaseError) {
    const code = err.code ?? '';
    return RETRYABLE_CODES.has(code) || RETRYABLE_CLASSES.has(code.slice(0, 2));
  }
  // Programming errors are not going to fix themselves.
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return false;
  // Everything else is the network or the pool: refused, reset, terminated, timed out.
  return true;
}

/**
 * True for a missing privilege (42501): retried for a batch (a grant restored lets it land), but at
 * start-up it is the role's configuration, not a moment to wait out.
 */
export function isPrivilegeError(err: unknown): boolean {
  return err instanceof pg.DatabaseError && err.code === '42501';
}

/** True when the connection itself is suspect and must not go back to the pool. */
export function isConnectionError(err: unknown): boolean {
  return !(err instanceof pg.DatabaseError) || (err.code ?? '').startsWith('08') || (err.code ?? '').startsWith('57');
}

/**
 * True when the server could not be reached or will not take a connection yet (starting up, out
 * of connections): StorageBackend.unreachable. A refused login or a missing database is not.
 */
export function isUnreachable(err: unknown): boolean {
  const e = err instanceof ConnectError ? err.cause : err;
  if (e instanceof pg.DatabaseError) {
    const code = e.code ?? '';
    return code === '57P03' || code === '53300' || code.startsWith('08');
  }
  // pg's own words for a connection cut or timed out before the server answered.
  return isNetworkFailure(e) || (e instanceof Error && /^Connection terminated|timeout exceeded when trying to connect/.test(e.message));
}

/**
 * True when the server refused a connection for want of a slot (53300: the role's CONNECTION
 * LIMIT or max_connections reached): it is up, and the connections it has already given still work.
 */
export function isTooManyConnections(err: unknown): boolean {
  const e = err instanceof ConnectError ? err.cause : err;
  return e instanceof pg.DatabaseError && e.code === '53300';
}

/** The thrown value as an Error. */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** The write result for a failure. */
export function failure(err: unknown): WriteResult {
  const error = toError(err);
  if (isPrivilegeError(err)) return { kind: 'retryable', error, denied: true };
  return isRetryable(err) ? { kind: 'retryable', error } : { kind: 'permanent', error };
}
