// The read pool's connections taken in turn. pg-pool bounds a wait for a connection of a full pool
// by connectionTimeoutMillis, the one it also gives a new connection to be made (5 s): a quick
// read behind two slow ones (7-day dependency reads) failed after 5 s although its own budget
// (storage.postgres.statementTimeoutMs) was longer, and a read whose client had gone went on
// waiting, to take a connection nobody would use. Reads here wait their turn up to that budget or
// until their client is gone, so pg-pool is never asked for more connections than it has: its
// timeout is left to the making of a connection (a database that does not answer).
// A read with a time budget (PostgresBackend.budgeted) passes a signal that aborts, with a
// QueryTimeout as its reason, when the budget from its arrival runs out: its wait, or the making
// of its connection, then ends at once with the error below.
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { QueryTimeout } from '../backend.ts';
import { isTooManyConnections, isUnreachable } from './errors.ts';

/** A connection taken for a read, and its release (with an error: the connection is dropped, as pg-pool's). */
export interface ReadConnection {
  client: PoolClient;
  release(err?: Error): void;
}

export class ReadConnections {
  private readonly pool: Pool;
  private readonly max: number;
  private readonly waitMs: number;
  /** Connections taken, or being taken, by reads (at most max). */
  private taken = 0;
  /** Reads waiting for a turn: given it, or failed with a connection attempt's error. */
  private readonly waiting: { take(): void; fail(err: unknown): void }[] = [];

  /** max: the pool's size; waitMs: a read's budget (storage.postgres.statementTimeoutMs; 0: none). */
  constructor(pool: Pool, max: number, waitMs: number) {
    this.pool = pool;
    this.max = max;
    this.waitMs = waitMs;
  }

  /** Reads waiting for a connection. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * A connection of the pool once one is free, waiting for it and making it at most the read's
   * budget from this call (however often it waits its turn), and no longer than signal (the read's
   * client gone) allows: the read then rejects with signal's reason and has taken nothing; a
   * connection that comes after that goes back at once.
   */
  async connect(signal?: AbortSignal): Promise<ReadConnection> {
    // One deadline from the read's arrival, for all of its waits: a read refused a connection
    // (53300) waits its turn again, and a fresh budget per wait let a scan or a stats read (no
    // budget signal of their own) wait more than storage.postgres.statementTimeoutMs.
    const deadline = this.waitMs > 0 ? new AbortController() : undefined;
    const timer = deadline && setTimeout(() => deadline.abort(this.waitTimeout()), this.waitMs);
    const until = deadline === undefined ? signal : signal === undefined ? deadline.signal : AbortSignal.any([signal, deadline.signal]);
    try {
      await this.waitTurn(until, false);
      return await this.connected(until);
    } finally {
      clearTimeout(timer);
    }
  }

  /** connect once the read has its turn. */
  private async connected(signal: AbortSignal | undefined): Promise<ReadConnection> {
    const making = this.pool.connect();
    let client: PoolClient;
    try {
      client = signal === undefined ? await making : await untilAborted(making, signal);
    } catch (err) {
      if (signal?.aborted === true && err === signal.reason) {
        // Given up while the connection is being made (its budget ran out, its client left): the
        // turn is kept until the pool has made it or failed, then the connection goes back.
        making.then((c) => c.release(), (e: unknown) => this.connectFailed(e)).finally(() => this.leave());
        throw this.waitError(err);
      }
      if (this.othersConnected(err)) {
        // Refused a connection slot while other reads hold (or are making) connections: this read
        // waits for one of theirs, as the reads waiting behind it do. Failed, half of a dashboard's
        // reads were answered 503 although one connection served them all in milliseconds. Its
        // turn is given up, not passed on (a waiter would only be refused in turn).
        this.taken--;
        await this.waitTurn(signal, true);
        return this.connected(signal);
      }
      this.connectFailed(err);
      this.leave();
      throw err;
    }
    let released = false;
    const release = (err?: Error): void => {
      if (released) return;
      released = true;
      client.release(err);
      this.leave();
    };
    if (signal?.aborted === true) {
      release();
      throw this.waitError(signal.reason);
    }
    return { client, release };
  }

  /** One statement on a connection taken in turn (as Pool.query: a connection whose statement failed is dropped). */
  async query<R extends QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>> {
    const { client, release } = await this.connect();
    try {
      const result = await client.query<R>(text, values);
      release();
      return result;
    } catch (err) {
      release(err as Error);
      throw err;
    }
  }

  /** turn, its failure a read's wait error (waitError); a signal aborted already fails it at once. */
  private async waitTurn(signal: AbortSignal | undefined, queue: boolean): Promise<void> {
    try {
      signal?.throwIfAborted();
      await this.turn(signal, queue);
    } catch (err) {
      throw this.waitError(err);
    }
  }

  /** The read's turn: at once while fewer than max are taken (unless queue), else when a read leaves. */
  private turn(signal: AbortSignal | undefined, queue: boolean): Promise<void> {
    if (!queue && this.taken < this.max) {
      this.taken++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        signal?.removeEventListener('abort', abort);
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
      };
      const waiter = {
        // The connection passes from the read that leaves to this one (taken stays as it is).
        take: (): void => {
          done();
          resolve();
        },
        fail: (err: unknown): void => {
          done();
          reject(err);
        },
      };
      const abort = (): void => waiter.fail(signal!.reason);
      this.waiting.push(waiter);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /**
   * A connection the database did not answer (or refused, with no other read connection to wait
   * for): the reads waiting behind it fail with
   * its error now, not one after another as each of their own attempts fails in turn (pg-pool's
   * connect timeout, 5 s each), up to their budgets.
   */
  private connectFailed(err: unknown): void {
    if (isUnreachable(err) && !this.othersConnected(err)) for (const w of [...this.waiting]) w.fail(err);
  }

  /**
   * A connection refused for want of a slot (53300: the role's or the server's connection limit)
   * while reads other than the one refused hold or are making connections: the server is up, and
   * the reads waiting can have theirs when they leave.
   */
  private othersConnected(err: unknown): boolean {
    return isTooManyConnections(err) && this.taken > 1;
  }

  /** A read's budget run out before it had a connection: what it was waiting for. */
  private waitTimeout(): Error {
    return new QueryTimeout(
      `the read waited longer than storage.postgres.statementTimeoutMs (${this.waitMs} ms) for one of the store's ${this.max} read connections (other reads held them, or the database was slow to open one); retry later, narrow the slow reads (service, time range) or raise storage.postgres.poolSize (reads have max(2, poolSize / 4) connections)`,
    );
  }

  /** err, or the wait's own QueryTimeout for a read whose budget (a QueryTimeout abort) ran out before it had a connection. */
  private waitError(err: unknown): unknown {
    return err instanceof QueryTimeout ? this.waitTimeout() : err;
  }

  private leave(): void {
    const next = this.waiting.shift();
    if (next) next.take();
    else this.taken--;
  }
}

/** p, or signal's reason once it aborts first. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}
