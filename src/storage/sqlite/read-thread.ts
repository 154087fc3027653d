// A SQLite read thread: its own connection (WAL lets it read while the write thread writes),
// answering one query at a time so a slow search never blocks the main event loop.
import type { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { packDeep } from './deep-reply.ts';
import { READS, takeUnreadable, type ReadOp, type Unreadable } from './reads.ts';
import { openReadOnly } from './store.ts';

export interface ReadRequest {
  id: number;
  op: ReadOp;
  arg?: unknown;
  /** Asked again after its answer failed to arrive: the answer's deep parts travel as JSON text (packDeep). */
  deep?: true;
}

/** The thread's database is open (`ready`: the pool sends it queries from then on), or a query's answer, with the stored items it found malformed and left out (reads.ts, Unreadable); `deep` when its value went through packDeep. */
export type ReadReply = { ready: true } | { id: number; started: true } | { id: number; ok: true; value: unknown; unreadable: Unreadable[] | undefined; deep?: true } | { id: number; ok: false; message: string; unreadable: Unreadable[] | undefined };

// The main thread created the schema (and the trace index's file) before starting this thread; reads need no write access.
const db = openReadOnly((workerData as { path: string }).path);

parentPort!.on('message', (req: ReadRequest) => {
  // Tells the pool which query is running (its answer may have to be asked again, deep-reply.ts).
  parentPort!.postMessage({ id: req.id, started: true } satisfies ReadReply);
  try {
    const fn = READS[req.op] as (db: DatabaseSync, arg: unknown) => unknown;
    const value = fn(db, req.arg);
    if (req.deep) parentPort!.postMessage({ id: req.id, ok: true, value: packDeep(value), unreadable: takeUnreadable(), deep: true } satisfies ReadReply);
    else parentPort!.postMessage({ id: req.id, ok: true, value, unreadable: takeUnreadable() } satisfies ReadReply);
  } catch (err) {
    parentPort!.postMessage({ id: req.id, ok: false, message: (err as Error).message, unreadable: takeUnreadable() } satisfies ReadReply);
  }
});
parentPort!.on('close', () => db.close());
parentPort!.postMessage({ ready: true } satisfies ReadReply);
