// Read threads for the SQLite backend, each with its own connection. A query that outlives its
// time budget, or whose reader is gone (its signal aborted), cannot be interrupted inside
// node:sqlite's synchronous call, so its thread is terminated and replaced. Queries wait in one
// queue and each goes to the first thread free, so a quick read never waits behind a slow one
// while another thread is idle. A thread is sent one query at a time, so a query whose reader
// leaves while it waits is dropped from the queue without ever running. A read's budget runs from
// its arrival (waiting for a thread included), so every reader is answered within it; a query is
// sent only to a thread that has opened the database, and a thread that has not after its start
// limit is replaced. So that no read pays a thread's start (~150 ms: the Worker's, opening the
// database, attaching the trace index) out of its budget, the threads are started with the store
// (start), and a thread stopped after it had opened is replaced at once, not at the next read.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../telemetry/logger.ts';
import { QueryTimeout } from '../backend.ts';
import { unpackDeep } from './deep-reply.ts';
import type { ReadOp, Unreadable } from './reads.ts';
import type { ReadReply, ReadRequest } from './read-thread.ts';
import { BUSY_TIMEOUT_MS } from './store.ts';

/** The read threads' name, which is also their OS threads' (at most 15 characters). */
const READ_THREAD_NAME = 'sqlite-read';

/**
 * How long a read thread may take to open the database before it is taken as stuck (an open on a
 * filesystem that stopped answering) and replaced, at least: query.timeoutMs when longer. Opening
 * (openReadOnly) waits for SQLite's locks at most the connection's busy_timeout each time, and
 * may wait twice: for the file's schema, then at the ATTACH of the trace index for its own. A
 * third busy_timeout covers the thread's own start on a loaded host, so a thread that waited out
 * the locks is not replaced just as it opens, and one past this is stuck elsewhere. It is no
 * shorter so that a small query.timeoutMs on a loaded host does not stop every thread before it
 * is up.
 */
export const READ_THREAD_START_MS = 3 * BUSY_TIMEOUT_MS;

/** A read stopped because its reader is gone (StoreReader's signal): no store failure, nobody to answer. */
export class ReadAborted extends Error {
  override readonly name = 'ReadAborted';
}

interface Pending {
  req: ReadRequest;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** Fails p with err, its budget's timer stopped. */
function fail(p: Pending, err: Error): void {
  clearTimeout(p.timer);
  p.reject(err);
}

interface Slot {
  worker: Worker | undefined;
  /** The thread has opened the database (its "ready"): only then is it sent a query. */
  ready: boolean;
  /** Replaces the thread if it is not ready by its start limit (READ_THREAD_START_MS). */
  startTimer: NodeJS.Timeout | undefined;
  /** The query sent to the thread and not answered: the others wait in the pool's queue until a thread is free. */
  sent: Pending | undefined;
  /** The query the thread said it started and has not answered: a thread runs one at a time. */
  running: Pending | undefined;
}

/** A fixed set of read threads; each query goes to the first one free, in arrival order. */
export class ReadPool {
  private readonly slots: Slot[];
  /** Queries no thread has been sent yet, in arrival order. */
  private readonly queue = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;
  private readonly path: string;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly onUnreadable: (items: Unreadable[]) => void;
  private readonly threadUrl: () => URL;
  /** How long a new thread may take to open the database (READ_THREAD_START_MS, or query.timeoutMs when longer). */
  private readonly startLimitMs: number;

  /**
   * onUnreadable is told of the stored items a read found malformed and left out of its answer.
   * testThreadUrl, for tests only, names the script each new read thread runs (read-thread.ts);
   * testStartLimitMs, for tests only, is the threads' start limit in place of READ_THREAD_START_MS's.
   */
  constructor(opts: { path: string; threads: number; timeoutMs: number; logger: Logger; onUnreadable: (items: Unreadable[]) => void; testThreadUrl?: () => URL; testStartLimitMs?: number }) {
    this.threadUrl = opts.testThreadUrl ?? (() => new URL('./read-thread.ts', import.meta.url));
    this.path = opts.path;
    this.timeoutMs = opts.timeoutMs;
    this.startLimitMs = opts.testStartLimitMs ?? Math.max(opts.timeoutMs, READ_THREAD_START_MS);
    this.logger = opts.logger;
    this.onUnreadable = opts.onUnreadable;
    this.slots = Array.from({ length: Math.max(1, opts.threads) }, () => ({ worker: undefined, ready: false, startTimer: undefined, sent: undefined, running: undefined }));
  }

  /**
   * Starts every thread now, without waiting for them to open the database: the first reads find
   * them ready. A thread that cannot be made now is tried again by the next read, which is told
   * if it still cannot.
   */
  start(): void {
    for (const slot of this.slots) this.startAhead(slot);
  }

  /** Starts the slot's thread ahead of any read (start, and a thread stopped after it had opened). */
  private startAhead(slot: Slot): void {
    if (this.closed || slot.worker) return;
    try {
      this.workerOf(slot);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not start a sqlite read thread; the next read tries again');
    }
  }

  /** Runs one read on a read thread; when signal aborts, the read stops (ReadAborted). */
  run<T>(op: ReadOp, arg?: unknown, signal?: AbortSignal): Promise<T> {
    if (this.closed) return Promise.reject(new Error('sqlite backend is not running'));
    if (signal?.aborted === true) return Promise.reject(new ReadAborted('the read was abandoned by its reader'));
    return new Promise<T>((resolve, reject) => {
      const req: ReadRequest = arg === undefined ? { id: this.nextId++, op } : { id: this.nextId++, op, arg };
      const p: Pending = { req, resolve: resolve as (v: unknown) => void, reject, timer: undefined };
      if (signal) {
        // Listened to until the read is settled.
        const abort = (): void => this.abort(p);
        signal.addEventListener('abort', abort, { once: true });
        p.resolve = (v) => {
          signal.removeEventListener('abort', abort);
          resolve(v as T);
        };
        p.reject = (e) => {
          signal.removeEventListener('abort', abort);
          reject(e);
        };
      }
      // The budget covers the whole read: waiting for a thread (which may be starting) and running.
      if (this.timeoutMs > 0) p.timer = setTimeout(() => this.timeOut(p), this.timeoutMs);
      this.queue.set(req.id, p);
      this.sendNext();
    });
  }

  /** Sends the oldest waiting queries to the ready threads that have none (each started when there is none). */
  private sendNext(): void {
    for (const slot of this.slots) {
      while (!slot.sent) {
        if (this.queue.size === 0) return;
        let worker: Worker;
        try {
          worker = this.workerOf(slot);
        } catch (err) {
          // No thread could be made (the process's thread limit, memory): a thread of another slot,
          // up or starting, takes the read waiting longest in its turn; with none, that read is told
          // so, not left waiting for a thread. The slot stays free and the next read tries again.
          if (this.slots.some((s) => s.worker !== undefined)) break;
          fail(this.oldestWaiting()!, new Error(`could not start a sqlite read thread: ${(err as Error).message}`));
          continue;
        }
        if (!slot.ready) break;
        const next = this.oldestWaiting()!;
        slot.sent = next;
        worker.postMessage(next.req);
      }
    }
  }

  private workerOf(slot: Slot): Worker {
    if (slot.worker) return slot.worker;
    const worker = new Worker(this.threadUrl(), { name: READ_THREAD_NAME, workerData: { path: this.path } });
    worker.on('message', (reply: ReadReply) => {
      if ('unreadable' in reply && reply.unreadable) this.onUnreadable(reply.unreadable);
      if (slot.worker !== worker) return;
      if ('ready' in reply) {
        slot.ready = true;
        clearTimeout(slot.startTimer);
        slot.startTimer = undefined;
        this.sendNext();
        return;
      }
      const p = slot.sent;
      if (!p || p.req.id !== reply.id) return;
      if ('started' in reply) {
        slot.running = p;
        return;
      }
      slot.running = undefined;
      slot.sent = undefined;
      clearTimeout(p.timer);
      if (reply.ok) p.resolve(reply.deep ? unpackDeep(reply.value) : reply.value);
      else p.reject(new Error(reply.message));
      this.sendNext();
    });
    // An answer this thread could not rebuild (nested deeper than its stack allows, deep-reply.ts):
    // the query that was running is asked again with its deep parts sent as text.
    worker.on('messageerror', (err: Error) => {
      const p = slot.running;
      if (slot.worker !== worker || !p || slot.sent !== p) return;
      slot.running = undefined;
      if (p.req.deep) {
        slot.sent = undefined;
        fail(p, new Error(`the read's answer could not be passed from its thread: ${err.message}`));
        this.sendNext();
        return;
      }
      p.req = { ...p.req, deep: true };
      worker.postMessage(p.req);
    });
    const died = (err: Error) => {
      if (slot.worker !== worker) return;
      // A thread that stopped before it opened the database (it cannot: a file made unreadable)
      // fails the read waiting longest, which it was started for: started again for it at once,
      // it would fail again, for as long as the read waits (without end at query.timeoutMs = 0).
      const opening = !slot.ready;
      const p = slot.sent ?? (opening ? this.oldestWaiting() : undefined);
      this.vacate(slot);
      // One that had opened it (a crash in a read) is replaced now; one that could not open is
      // started again only by a read, so that it is not started again and again for nobody.
      if (!opening) this.startAhead(slot);
      // One that stopped before it opened the database (it could not) names the file and its key.
      if (opening) err = new Error(`a sqlite read thread stopped before it opened the database (storage.sqlite.path = ${JSON.stringify(this.path)}): ${err.message}`);
      if (!this.closed) this.logger.error({ err: err.message }, 'sqlite read thread stopped; reads go to a new one');
      if (p) fail(p, err);
      // The queries still waiting go to the threads free, this one started again.
      if (!this.closed) this.sendNext();
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`sqlite read thread exited with code ${code}`)));
    slot.worker = worker;
    slot.ready = false;
    slot.startTimer = setTimeout(() => this.stuck(slot, worker), this.startLimitMs);
    return worker;
  }

  /** The slot's thread has not opened the database by its start limit: it is stopped and the slot's next query goes to a new one. */
  private stuck(slot: Slot, worker: Worker): void {
    if (slot.worker !== worker || slot.ready) return;
    this.logger.error({ path: this.path, limitMs: this.startLimitMs }, 'sqlite read thread did not open the database in time; reads go to a new one');
    this.vacate(slot);
    void worker.terminate();
    // The read it was started for is answered (it would wait on without end at query.timeoutMs = 0).
    const p = this.oldestWaiting();
    if (p) fail(p, new Error(`a sqlite read thread did not open the database (storage.sqlite.path = ${JSON.stringify(this.path)}) within ${this.startLimitMs} ms; its file system may have stopped answering`));
    this.sendNext();
  }

  /** The read waiting longest for a thread, taken out of the queue; undefined when none waits. */
  private oldestWaiting(): Pending | undefined {
    const next = this.queue.values().next();
    if (next.done === true) return undefined;
    this.queue.delete(next.value.req.id);
    return next.value;
  }

  /** The slot left without a thread (its thread stopped or stopping) and without a query. */
  private vacate(slot: Slot): void {
    clearTimeout(slot.startTimer);
    slot.startTimer = undefined;
    slot.worker = undefined;
    slot.ready = false;
    slot.running = undefined;
    slot.sent = undefined;
  }

  /** p's budget (query.timeoutMs from its arrival) is spent: it fails, and the thread running it, if any, is stopped. */
  private timeOut(p: Pending): void {
    this.end(
      p,
      new QueryTimeout(`the query ran longer than query.timeoutMs (${this.timeoutMs} ms) and was stopped; narrow the search (service, time range) or raise query.timeoutMs`),
      new QueryTimeout(
        `the query waited query.timeoutMs (${this.timeoutMs} ms) for a read thread (storage.sqlite.readThreads = ${this.slots.length}, busy or still opening the database) and was not run; try again, or raise query.timeoutMs or storage.sqlite.readThreads`,
      ),
    );
  }

  /**
   * The reader of p is gone: a query waiting for its thread leaves the queue, and the thread
   * running it is stopped (as at its time budget), so the next reader does not wait on a read
   * nobody will see.
   */
  private abort(p: Pending): void {
    const err = new ReadAborted('the read was abandoned by its reader');
    this.end(p, err, err);
  }

  /** Ends p before its answer: sent to a thread, with `running` (and that thread stopped); still waiting for one, with `waiting`; settled already, not at all. */
  private end(p: Pending, running: Error, waiting: Error): void {
    const slot = this.slots.find((s) => s.sent === p);
    if (slot) return this.stop(slot, p, running);
    if (this.queue.delete(p.req.id)) fail(p, waiting);
  }

  /** Fails p, the query sent to the slot's thread, and stops that thread; its replacement is started at once. */
  private stop(slot: Slot, p: Pending, err: Error): void {
    if (slot.sent !== p) return;
    fail(p, err);
    const old = slot.worker;
    this.vacate(slot);
    if (old) void old.terminate();
    // The thread had opened the database (it was sent a query): its replacement opens it now.
    this.startAhead(slot);
    this.sendNext();
  }

  /** Stops every read thread; queries still pending fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.values()) fail(p, new Error('sqlite backend shut down'));
    this.queue.clear();
    await Promise.all(
      this.slots.map(async (slot) => {
        const w = slot.worker;
        const p = slot.sent;
        this.vacate(slot);
        if (p) fail(p, new Error('sqlite backend shut down'));
        await w?.terminate();
      }),
    );
  }
}
