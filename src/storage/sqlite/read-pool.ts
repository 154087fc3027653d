// Read threads for the SQLite backend, each with its own connection. A query that outlives its
// time budget cannot be interrupted inside node:sqlite's synchronous call, so its thread is
// terminated and replaced; the other queries that were queued on it are sent to the new thread.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../telemetry/logger.ts';
import { unpackDeep } from './deep-reply.ts';
import type { ReadOp, Unreadable } from './reads.ts';
import type { ReadReply, ReadRequest } from './read-thread.ts';

/** The read threads' name, which is also their OS threads' (at most 15 characters). */
const READ_THREAD_NAME = 'sqlite-read';

/** A read stopped after the time budget (query.timeoutMs); the read API answers it 503. */
export class QueryTimeout extends Error {
  override readonly name = 'QueryTimeout';
}

interface Pending {
  req: ReadRequest;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

interface Slot {
  worker: Worker | undefined;
  pending: Map<number, Pending>;
  /** The query the thread said it started and has not answered: a thread runs one at a time. */
  running: Pending | undefined;
}

/** A fixed set of read threads; each query goes to the one with the fewest queued. */
export class ReadPool {
  private readonly slots: Slot[];
  private nextId = 0;
  private closed = false;
  private readonly path: string;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly onUnreadable: (items: Unreadable[]) => void;

  /** onUnreadable is told of the stored items a read found malformed and left out of its answer. */
  constructor(opts: { path: string; threads: number; timeoutMs: number; logger: Logger; onUnreadable: (items: Unreadable[]) => void }) {
    this.path = opts.path;
    this.timeoutMs = opts.timeoutMs;
    this.logger = opts.logger;
    this.onUnreadable = opts.onUnreadable;
    this.slots = Array.from({ length: Math.max(1, opts.threads) }, () => ({ worker: undefined, pending: new Map(), running: undefined }));
  }

  /** Runs one read on a read thread. */
  run<T>(op: ReadOp, arg?: unknown): Promise<T> {
    if (this.closed) return Promise.reject(new Error('sqlite backend is not running'));
    const slot = this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    return new Promise<T>((resolve, reject) => {
      const req: ReadRequest = arg === undefined ? { id: this.nextId++, op } : { id: this.nextId++, op, arg };
      const p: Pending = { req, resolve: resolve as (v: unknown) => void, reject, timer: undefined };
      slot.pending.set(req.id, p);
      this.workerOf(slot).postMessage(req);
    });
  }

  private workerOf(slot: Slot): Worker {
    if (slot.worker) return slot.worker;
    const worker = new Worker(new URL('./read-thread.ts', import.meta.url), { name: READ_THREAD_NAME, workerData: { path: this.path } });
    worker.on('message', (reply: ReadReply) => {
      if ('unreadable' in reply && reply.unreadable) this.onUnreadable(reply.unreadable);
      const p = slot.pending.get(reply.id);
      if (!p) return;
      if ('started' in reply) {
        slot.running = p;
        if (this.timeoutMs > 0) p.timer = setTimeout(() => this.timeOut(slot, p), this.timeoutMs);
        return;
      }
      slot.pending.delete(reply.id);
      slot.running = undefined;
      clearTimeout(p.timer);
      if (reply.ok) p.resolve(reply.deep ? unpackDeep(reply.value) : reply.value);
      else p.reject(new Error(reply.message));
    });
    // An answer this thread could not rebuild (nested deeper than its stack allows, deep-reply.ts):
    // the query that was running is asked again with its deep parts sent as text.
    worker.on('messageerror', (err: Error) => {
      const p = slot.running;
      if (slot.worker !== worker || !p || !slot.pending.has(p.req.id)) return;
      slot.running = undefined;
      clearTimeout(p.timer);
      p.timer = undefined;
      if (p.req.deep) {
        slot.pending.delete(p.req.id);
        p.reject(new Error(`the read's answer could not be passed from its thread: ${err.message}`));
        return;
      }
      p.req = { ...p.req, deep: true };
      worker.postMessage(p.req);
    });
    const died = (err: Error) => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      slot.running = undefined;
      if (!this.closed) this.logger.error({ err: err.message }, 'sqlite read thread stopped; reads go to a new one');
      for (const p of slot.pending.values()) {
        clearTimeout(p.timer);
        p.reject(err);
      }
      slot.pending.clear();
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`sqlite read thread exited with code ${code}`)));
    slot.worker = worker;
    return worker;
  }

  private timeOut(slot: Slot, p: Pending): void {
    if (!slot.pending.delete(p.req.id)) return;
    p.reject(new QueryTimeout(`the query ran longer than query.timeoutMs (${this.timeoutMs} ms) and was stopped; narrow the search (service, time range) or raise query.timeoutMs`));
    // Stop the thread running it; queries queued behind it start again on a new thread.
    const old = slot.worker;
    slot.worker = undefined;
    slot.running = undefined;
    if (old) void old.terminate();
    if (slot.pending.size === 0) return;
    const worker = this.workerOf(slot);
    for (const q of slot.pending.values()) {
      // Not started yet on the old thread; their budget starts again when the new one runs them.
      clearTimeout(q.timer);
      q.timer = undefined;
      worker.postMessage(q.req);
    }
  }

  /** Stops every read thread; queries still pending fail. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        const w = slot.worker;
        slot.worker = undefined;
        for (const p of slot.pending.values()) {
          clearTimeout(p.timer);
          p.reject(new Error('sqlite backend shut down'));
        }
        slot.pending.clear();
        await w?.terminate();
      }),
    );
  }
}
