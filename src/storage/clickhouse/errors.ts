// What a failed ClickHouse write tells the writer to do. Data the server cannot parse will not
// parse on a retry either, nor will a row a CONSTRAINT of the table refuses pass it (permanent);
// everything else — connection errors, timeouts, overload, a table missing until someone
// migrates — may pass later (retryable). The writer retries with backoff; the adapter never
// retries itself (but writes a batch refused for its rows again in parts: refused-parts.ts).
import type { WriteResult } from '../backend.ts';

/** ClickHouse error codes that mean the rows themselves are bad. */
const DATA_ERRORS = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  32, // ATTEMPT_TO_READ_AFTER_EOF
  33, // CANNOT_READ_ALL_DATA
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  128, // TOO_LARGE_ARRAY_SIZE
  131, // TOO_LARGE_STRING_SIZE
  190, // SIZES_OF_ARRAYS_DONT_MATCH
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  469, // VIOLATED_CONSTRAINT (a CONSTRAINT of the user's on the table refuses a row)
]);

/** Overload: retry, but not at once. */
const OVERLOAD = new Set([
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  241, // MEMORY_LIMIT_EXCEEDED
  252, // TOO_MANY_PARTS
  439, // CANNOT_SCHEDULE_TASK
]);

const OVERLOAD_DELAY_MS = 1000;

/**
 * The user may not write (WriteResult denied): retried by a collector, whose write-ahead log keeps
 * the rows until a grant is mended; refused at once by import and copy.
 */
const DENIED = new Set([
  164, // READONLY (a readonly profile)
  291, // DATABASE_ACCESS_DENIED
  497, // ACCESS_DENIED (no INSERT grant)
]);

/** The numeric ClickHouse error code of an error from @clickhouse/client or chdb, if any. */
export function clickhouseCode(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'number') return code;
  if (typeof code === 'string' && /^\d+$/.test(code)) return Number(code);
  return undefined;
}

/**
 * Whether a failed insert was refused for good for some of its rows before anything of it was
 * written: written again in parts (halves, down to the rows refused), the others are stored. Not
 * so for an error of a materialized view of the user's ("while pushing to view"): the table has
 * taken the rows by then, and a write of a part under a token of its own would store them twice.
 */
export function refusedForItsRows(err: unknown): boolean {
  const code = clickhouseCode(err);
  return code !== undefined && DATA_ERRORS.has(code) && !(err instanceof Error && err.message.includes('while pushing to view'));
}

/** Maps a failed insert to the writer's next step. */
export function classifyWriteError(err: unknown): WriteResult {
  const error = err instanceof Error ? err : new Error(String(err));
  const code = clickhouseCode(err);
  if (code !== undefined && DATA_ERRORS.has(code)) return { kind: 'permanent', error };
  if (code !== undefined && DENIED.has(code)) return { kind: 'retryable', error, denied: true };
  if (code !== undefined && OVERLOAD.has(code)) return { kind: 'retryable', error, retryAfterMs: OVERLOAD_DELAY_MS };
  return { kind: 'retryable', error };
}
