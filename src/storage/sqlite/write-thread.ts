// The SQLite write thread: owns the only write connection, so inserts (synchronous in
// node:sqlite) never block the main event loop that serves receivers and reads.
import { parentPort, workerData } from 'node:worker_threads';
import { releaseBuffer } from '../../common/release.ts';
import type { Signal } from '../../model/signal.ts';
import type { WriteResult } from '../backend.ts';
import { SqliteStore, type WalHeld, openDatabase } from './store.ts';

export type WriteRequest =
  | { id: number; op: Signal; chunks: Uint8Array[]; batchId: string; tenant: string }
  | { id: number; op: 'retention'; retentionDays: number }
  /** The main thread found the store's -wal file gone (health): move what only it holds into the store's file now. */
  | { id: number; op: 'rescueWal' };

export type WriteAnswer =
  | { id: number; result: { kind: WriteResult['kind']; message?: string; denied?: boolean } }
  | { id: number; deleted: { spans: number; logs: number } };

export type WriteReply =
  | WriteAnswer
  /** Not an answer: a checkpoint waited out the busy timeout for a read held on a -wal file, or it was reset again (SqliteStore's onWalHeld). */
  | { walHeld: WalHeld };

const { path, attributeIndex, cacheMiB, checkpointMiB } = workerData as { path: string; attributeIndex: boolean; cacheMiB: number; checkpointMiB: number };
const db = openDatabase(path, { attributeIndex, cacheMiB, checkpointMiB });
const store = new SqliteStore(db, { indexAttributes: attributeIndex, path, onWalHeld: (held) => parentPort!.postMessage({ walHeld: held } satisfies WriteReply) });

parentPort!.on('message', (req: WriteRequest) => {
  if (req.op === 'rescueWal') {
    parentPort!.postMessage({ id: req.id, result: { kind: store.rescueWal() ? 'success' : 'retryable' } } satisfies WriteAnswer);
    return;
  }
  if (req.op === 'retention') {
    // A pass that fails (the file locked by another process past the busy timeout, the disk full)
    // is answered, not thrown: the thread and the writes queued behind the pass go on.
    let reply: WriteAnswer;
    try {
      reply = { id: req.id, deleted: store.applyRetention(req.retentionDays) };
    } catch (err) {
      reply = { id: req.id, result: { kind: 'retryable', message: (err as Error).message } };
    }
    parentPort!.postMessage(reply);
    return;
  }
  const r = req.op === 'traces' ? store.writeSpans(req.chunks, req.tenant) : store.writeLogs(req.chunks, req.batchId, req.tenant);
  // The chunks are this thread's copies (a retry posts them again): free them now.
  for (const c of req.chunks) releaseBuffer(c.buffer);
  parentPort!.postMessage({ id: req.id, result: r.kind === 'success' ? { kind: r.kind } : { kind: r.kind, message: r.error.message, ...(r.kind === 'retryable' && r.denied ? { denied: true } : {}) } } satisfies WriteAnswer);
});
parentPort!.on('close', () => db.close());
