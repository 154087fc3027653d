// Small SQL helpers shared by the adapter's modules.
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { unescapeText } from './escape.ts';

/** Quotes an identifier (schema names come from configuration). */
export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** A stable 64-bit advisory lock key for one purpose in one schema. */
export function advisoryKey(purpose: string, schema: string): string {
  return createHash('sha256').update(`tracehouse:${purpose}:${schema}`).digest().readBigInt64BE(0).toString();
}

/** int8 parameter text for a time: uint64 beyond 2^63 wraps like the encoder writes it. */
export function int8Param(v: bigint): string {
  return BigInt.asIntN(64, v).toString();
}

/** Undoes the encoder's wrap of uint64 values past 2^63. */
export function u64(v: bigint): bigint {
  return v < 0n ? BigInt.asUintN(64, v) : v;
}

const OID_INT8 = 20;
const OID_TEXT = 25;
const OID_JSON = 114;
const OID_JSONB = 3802;

/** Result parsers of the adapter's pool: exact int8, U+0000 unescaping of text, JSON parsed as stored. */
export const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format === undefined || format === 'text') {
      if (oid === OID_INT8) return (v: string) => BigInt(v);
      if (oid === OID_TEXT) return unescapeText;
      if (oid === OID_JSONB || oid === OID_JSON) return (v: string) => JSON.parse(v) as unknown;
    }
    return pg.types.getTypeParser(oid, format ?? 'text');
  }) as typeof pg.types.getTypeParser,
};

/**
 * A connection could not be had (refused, timed out, or the server refused the login: a password
 * rotated before the configuration, a role set NOLOGIN, the database being recreated, too many
 * connections). Nothing was sent, so whatever was to be written is not at fault: retryable
 * (errors.ts), whatever SQLSTATE the server gave.
 */
export class ConnectError extends Error {
  override readonly name = 'ConnectError';
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/**
 * Runs fn inside BEGIN … COMMIT on a connection of its own. `prepare` runs first, outside the
 * transaction (per-connection setup). On any failure the transaction is rolled back and the
 * connection discarded rather than returned to the pool: its state is unknown. A failure to get a
 * connection throws a ConnectError.
 */
export async function withTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>, prepare?: (c: PoolClient) => Promise<void>): Promise<T> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw new ConnectError(err);
  }
  let ok = false;
  try {
    await prepare?.(client);
    await client.query('BEGIN');
    const r = await fn(client);
    await client.query('COMMIT');
    ok = true;
    return r;
  } finally {
    if (!ok) await client.query('ROLLBACK').catch(() => undefined);
    client.release(!ok);
  }
}

/** pg keeps a connection's query_timeout here (not in its types). */
interface ClientTimeouts {
  connectionParameters?: { query_timeout?: number | undefined };
}

/**
 * withTransaction for statements with no time bound (migrations, partition DDL, retention):
 * statement_timeout 0 in the database, and the pool's client-side query_timeout
 * (statementTimeoutMs + 10 s, for a server that stopped answering) lifted for fn's statements, or
 * the client would give up on them all the same and roll them back.
 */
export function withUnboundedTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (client) => {
    const params = (client as unknown as ClientTimeouts).connectionParameters;
    const saved = params?.query_timeout;
    if (params) params.query_timeout = undefined;
    try {
      await client.query('SET LOCAL statement_timeout = 0');
      return await fn(client);
    } finally {
      if (params) params.query_timeout = saved;
    }
  });
}
