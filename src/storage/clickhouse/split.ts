// A batch refused as too large by what stands between the collector and ClickHouse (a reverse
// proxy's request body limit: nginx's client_max_body_size, 1 MiB by default, answers 413). The
// same batch would be refused at every retry, for ever: it is split in halves, down to single
// rows, each part an insert of its own (with a token of its own, derived from the batch's, so a
// retry of the batch after some parts were stored stores them once); a row too large alone is
// left out, and told to the writer (WriteResult dropped), which counts and logs it, as are the
// rows of a part refused for themselves (a CONSTRAINT), halved down to them the same way.
import type { Signal } from '../../model/signal.ts';
import { COLUMN_TYPES, LOG_COLUMNS, TRACE_COLUMNS } from './schema.ts';

/** An error of an HTTP answer that was not ClickHouse's success: its status is kept. */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  readonly status: number;
  /** ClickHouse's error code when the answer was ClickHouse's own error text. */
  readonly code: number | undefined;
  constructor(message: string, status: number, code?: number) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Whether a failed insert was refused for its size on the HTTP path (413 Payload Too Large, not
 * ClickHouse's own error: that one is classified by its code).
 */
export function refusedAsTooLarge(err: unknown): boolean {
  return err instanceof HttpStatusError && err.status === 413 && err.code === undefined;
}

/**
 * Whether an HTTP answer came from something on the way that says ClickHouse is not there yet (a
 * proxy's 502, 503 or 504 while the server behind it starts, or its 429): start-up waits for it.
 */
export function gatewayNotReady(err: unknown): boolean {
  return err instanceof HttpStatusError && err.code === undefined && [429, 502, 503, 504].includes(err.status);
}

type Skip = (b: Uint8Array, at: number) => number;

function varint(b: Uint8Array, at: number): [value: number, next: number] {
  let v = 0;
  let shift = 0;
  for (;;) {
    if (at >= b.length) throw new RangeError('RowBinary data ends inside a length');
    const x = b[at++]!;
    v += (x & 0x7f) * 2 ** shift;
    if ((x & 0x80) === 0) return [v, at];
    shift += 7;
  }
}

/** A reader that steps over one value of a RowBinary type (those the encoder writes). */
function skipper(type: string): Skip {
  const fixed: Record<string, number> = { UInt8: 1, UInt32: 4, Int32: 4, UInt64: 8, 'DateTime64(9)': 8 };
  if (fixed[type] !== undefined) {
    const n = fixed[type];
    return (_b, at) => at + n;
  }
  if (type === 'String' || type === 'LowCardinality(String)') {
    return (b, at) => {
      const [n, next] = varint(b, at);
      return next + n;
    };
  }
  const inner = /^(Array|Map)\((.*)\)$/.exec(type);
  if (inner?.[1] === 'Array') {
    const item = skipper(inner[2]!);
    return (b, at) => {
      let [n, p] = varint(b, at);
      while (n-- > 0) p = item(b, p);
      return p;
    };
  }
  if (inner?.[1] === 'Map') {
    const [k, v] = splitTopLevel(inner[2]!).map(skipper) as [Skip, Skip];
    return (b, at) => {
      let [n, p] = varint(b, at);
      while (n-- > 0) p = v(b, k(b, p));
      return p;
    };
  }
  throw new Error(`no RowBinary reader for type ${type}`);
}

/** "A, B" of a two-argument type, commas inside parentheses kept. */
function splitTopLevel(args: string): string[] {
  let depth = 0;
  for (let i = 0; i < args.length; i++) {
    const c = args[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) return [args.slice(0, i).trim(), args.slice(i + 1).trim()];
  }
  throw new Error(`not two type arguments: ${args}`);
}

const rowSkippers: Record<Signal, Skip[]> = {
  traces: TRACE_COLUMNS.map((c) => skipper(COLUMN_TYPES.traces[c])),
  logs: LOG_COLUMNS.map((c) => skipper(COLUMN_TYPES.logs[c])),
};

/** Each row of the chunks, as a view of its bytes (no copy), in order. */
export function rowsOf(signal: Signal, chunks: readonly Uint8Array[]): Uint8Array[] {
  const rows: Uint8Array[] = [];
  const cols = rowSkippers[signal];
  for (const c of chunks) {
    let at = 0;
    while (at < c.length) {
      let end = at;
      for (const skip of cols) end = skip(c, end);
      if (end > c.length) throw new RangeError(`RowBinary ${signal} chunk of ${c.length} bytes ends inside a row`);
      rows.push(c.subarray(at, end));
      at = end;
    }
  }
  return rows;
}

/** Rows as chunks to send: neighbours in one chunk joined back into one view of it. */
export function asChunks(rows: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const r of rows) {
    const last = out[out.length - 1];
    if (last !== undefined && last.buffer === r.buffer && last.byteOffset + last.byteLength === r.byteOffset) {
      out[out.length - 1] = new Uint8Array(r.buffer, last.byteOffset, last.byteLength + r.byteLength);
    } else out.push(r);
  }
  return out;
}

/** What a split insert left out: rows too large alone, and the last refusal. */
export interface LeftOut {
  rows: number;
  /** Their places among the rows given. */
  indexes: number[];
  bytes: number;
  error: Error;
}

/**
 * Refused parts a pass writing a refused batch again in halves (insertInParts, and
 * refused-parts.ts through #insertRefusedInHalves) may see before it leaves the rest out untried:
 * a part is an insert, so a part in the table (about 10 ms on chdb). At 64, one request in 41 of
 * 1,000 one-record ones (25) left 673 rows out untried; at 256 they are left out alone, and a
 * batch of 3,000 whose every row is refused makes some 512 inserts.
 */
export const REFUSED_PARTS_BOUND = 256;

/** Rows of a split insert the store refused for good for themselves (a CONSTRAINT), and those left untried once too many parts were. */
export interface RefusedRows {
  /** Their places among the rows given, untried ones included. */
  indexes: number[];
  untried: number;
  /** The last refusal. */
  error: Error;
}

/**
 * Inserts `rows` in parts small enough to pass: halves of a part refused as too large, each under
 * `token` + its range; a single row refused is left out (returned). A part refused for its rows
 * (`refusedForRows`: a CONSTRAINT of the user's, checked before anything of the part is written)
 * is halved the same way, down to the rows refused, which are left out: the parts before it are
 * stored already, under tokens a part of other rows never has, so neither dropping the batch nor
 * writing it again otherwise would do. After REFUSED_PARTS_BOUND such refusals the rest is left
 * out untried. Other failures are thrown.
 */
export async function insertInParts(
  rows: readonly Uint8Array[],
  token: string,
  insert: (chunks: Uint8Array[], token: string) => Promise<void>,
  refusedForRows: (err: unknown) => boolean = () => false,
): Promise<{ tooLarge?: LeftOut; refused?: RefusedRows }> {
  let left: LeftOut | undefined;
  let refused: RefusedRows | undefined;
  let refusedParts = 0;
  const part = async (lo: number, hi: number): Promise<void> => {
    if (refusedParts >= REFUSED_PARTS_BOUND) {
      refused!.indexes.push(...Array.from({ length: hi - lo }, (_, i) => lo + i));
      refused!.untried += hi - lo;
      return;
    }
    try {
      await insert(asChunks(rows.slice(lo, hi)), `${token}/${lo}-${hi}`);
    } catch (err) {
      const tooLarge = refusedAsTooLarge(err);
      if (!tooLarge && !refusedForRows(err)) throw err;
      if (!tooLarge) {
        refusedParts++;
        refused = { indexes: refused?.indexes ?? [], untried: refused?.untried ?? 0, error: err as Error };
      }
      if (hi - lo === 1) {
        if (tooLarge) left = { rows: (left?.rows ?? 0) + 1, indexes: [...(left?.indexes ?? []), lo], bytes: Math.max(left?.bytes ?? 0, rows[lo]!.byteLength), error: err as Error };
        else refused!.indexes.push(lo);
        return;
      }
      const mid = lo + Math.ceil((hi - lo) / 2);
      await part(lo, mid);
      await part(mid, hi);
    }
  };
  const mid = Math.ceil(rows.length / 2);
  await part(0, mid);
  if (mid < rows.length) await part(mid, rows.length);
  return { ...(left && { tooLarge: left }), ...(refused && { refused }) };
}
