// A read answer written as JSON in slices: a large answer (a Jaeger search of 50,000 spans, a
// trace of 20,000) is translated and serialised a piece at a time, the event loop given back
// every few milliseconds and the pieces written with backpressure, so that the OTLP receivers on
// the same thread are not held for the whole answer (one JSON.stringify of a 13 MB search held the
// loop for a second and more). The text is JSON.stringify's, byte for byte.
import type { ServerResponse } from 'node:http';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** An array whose items are made as the writer reaches them; an item PAUSE is no item, only a place to give the loop back. */
export class JsonArray {
  readonly items: Iterable<unknown>;
  constructor(items: Iterable<unknown>) {
    this.items = items;
  }
}

/** An object whose members are written in the order given, each value made as the writer reaches it. */
export class JsonObject {
  readonly members: Iterable<readonly [string, unknown]>;
  constructor(members: Iterable<readonly [string, unknown]>) {
    this.members = members;
  }
}

/** A value made when the writer reaches it (after what comes before it was made). */
export class Deferred {
  readonly make: () => unknown;
  constructor(make: () => unknown) {
    this.make = make;
  }
}

/**
 * The body of a HEAD answer that was not made: sendJsonSliced sends the status and headers only,
 * with no Content-Length, which only making the answer would tell (RFC 9110 9.3.2 allows it).
 */
export const NO_BODY: unique symbol = Symbol('no body');

/** Yielded among a JsonArray's items by work that takes long before its next item (grouping rows). */
export const PAUSE: unique symbol = Symbol('pause');

const omitted = (v: unknown): boolean => v === undefined || typeof v === 'function' || typeof v === 'symbol';

const sliced = (v: unknown): boolean => v instanceof JsonArray || v instanceof JsonObject || v instanceof Deferred;

/** A plain object ({...}) that holds a sliced value, itself or in a plain object it holds: written member by member. */
function holdsSliced(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(v).some((m) => sliced(m) || holdsSliced(m));
}

function resolve(v: unknown): unknown {
  while (v instanceof Deferred) v = v.make();
  return v;
}

/** The JSON text of v in pieces, as JSON.stringify(v, null, gap) writes it whole. */
export function* jsonPieces(v: unknown, gap = '', indent = ''): Generator<string> {
  v = resolve(v);
  if (holdsSliced(v)) v = new JsonObject(Object.entries(v));
  const array = v instanceof JsonArray;
  if (!array && !(v instanceof JsonObject)) {
    const s = JSON.stringify(v, null, gap);
    // JSON text has no raw newline inside a string: each newline is one of the layout's.
    yield gap === '' ? s : s.replace(/\n/g, `\n${indent}`);
    return;
  }
  const inner = indent + gap;
  const open = gap === '' ? '' : `\n${inner}`;
  const sep = `,${open}`;
  let first = true;
  yield array ? '[' : '{';
  if (array) {
    for (const raw of (v as JsonArray).items) {
      if (raw === PAUSE) {
        yield '';
        continue;
      }
      const item = resolve(raw);
      yield first ? open : sep;
      first = false;
      if (omitted(item)) yield 'null';
      else yield* jsonPieces(item, gap, inner);
    }
  } else {
    for (const [key, raw] of (v as JsonObject).members) {
      const value = resolve(raw);
      if (omitted(value)) continue;
      yield `${first ? open : sep}${JSON.stringify(key)}${gap === '' ? ':' : ': '}`;
      first = false;
      yield* jsonPieces(value, gap, inner);
    }
  }
  yield `${first || gap === '' ? '' : `\n${indent}`}${array ? ']' : '}'}`;
}

/** Longest the writer holds the event loop before giving it back. */
const SLICE_MS = 10;
/** Text gathered before a write. */
const WRITE_CHARS = 64 * 1024;

/**
 * Longest the writer waits for a client to take more of an answer (QueryOptions.writeStallMs by
 * default): a client that reads nothing (a laptop closed mid-download, a pipe nobody reads) would
 * otherwise hold its read turn (query.maxConcurrentReads) and the answer's rows until the kernel
 * gave up on the connection, a quarter of an hour on Linux, and four such held every trace read.
 */
export const WRITE_STALL_MS = 30_000;

/** A client that took nothing of its answer for stallMs: its connection is closed. */
export class WriteStalled extends Error {
  override name = 'WriteStalled';
}

/** Answers cut after their headers were sent, and why: set before the response is destroyed. */
const cutAnswers = new WeakMap<ServerResponse, 'failed' | 'stalled'>();

/**
 * Why sendJsonSliced cut res after its headers: `failed` (making the answer failed; the client got
 * a broken answer under a 2xx status), `stalled` (the client took nothing for stallMs), or
 * undefined when it did not (ReadMetrics).
 */
export function answerCut(res: ServerResponse): 'failed' | 'stalled' | undefined {
  return cutAnswers.get(res);
}

/**
 * Resolves when the response can take more (drain) or has closed; destroys it and rejects when
 * neither comes within stallMs of its having the connection (an answer pipelined behind another
 * on the same connection waits for that one, however long the client takes to read it).
 */
function writable(res: ServerResponse, stallMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const off = (): void => {
      clearTimeout(timer);
      res.off('socket', arm);
      res.off('drain', done);
      res.off('close', done);
    };
    const done = (): void => {
      off();
      resolve();
    };
    function arm(): void {
      timer = setTimeout(() => {
        off();
        cutAnswers.set(res, 'stalled');
        res.destroy();
        reject(new WriteStalled(`the client took nothing of its answer for ${stallMs} ms; its connection was closed`));
      }, stallMs);
    }
    if (res.socket) arm();
    else res.once('socket', arm);
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Answers body (plain JSON values, with JsonArray, JsonObject and Deferred where it is large) as
 * JSON.stringify(body, null, gap) would, in slices of SLICE_MS. An answer made within the first
 * slice and write is sent whole with its Content-Length, as sendJson sends it; a larger one is
 * sent chunked. A client that leaves stops the work; a failure after the headers were sent
 * destroys the response (a second status cannot be sent) and is thrown for the caller to log, as
 * is a client that takes nothing for stallMs (WriteStalled).
 */
export async function sendJsonSliced(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, gap = '', stallMs = WRITE_STALL_MS): Promise<void> {
  if (body === NO_BODY) {
    res.writeHead(status, { ...headers, 'content-type': 'application/json' });
    res.end();
    return;
  }
  let text: string[] = [];
  let chars = 0;
  let sliceStart = performance.now();
  let started = false;
  try {
    for (const piece of jsonPieces(body, gap)) {
      text.push(piece);
      chars += piece.length;
      const late = performance.now() - sliceStart >= SLICE_MS;
      if (!late && chars < WRITE_CHARS) continue;
      if (res.destroyed) return;
      if (!started) {
        res.writeHead(status, { ...headers, 'content-type': 'application/json' });
        started = true;
      }
      const more = res.write(text.join(''));
      text = [];
      chars = 0;
      if (!more) await writable(res, stallMs);
      else if (late) await nextTurn();
      // The client left: nothing more to make.
      if (res.destroyed) return;
      if (!more || late) sliceStart = performance.now();
    }
  } catch (err) {
    if (!started) throw err;
    if (!cutAnswers.has(res)) cutAnswers.set(res, 'failed');
    res.destroy();
    throw err;
  }
  const rest = text.join('');
  if (started) res.end(rest);
  else {
    res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(rest) });
    res.end(rest);
  }
}
