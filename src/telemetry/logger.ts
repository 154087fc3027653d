// Structured JSON logs. Per-item problems are counted in metrics; logs say a thing once.
import { pino, type Logger } from 'pino';
import { writeSync } from 'node:fs';

export type { Logger };

/** The process logger (JSON lines on stdout; on stderr with fd 2, for commands whose stdout is data). */
export function createLogger(level: string, fd: 1 | 2 = 1): Logger {
  const logger = fd === 1 ? pino({ level, base: { service: 'tracehouse' } }) : pino({ level, base: { service: 'tracehouse' } }, pino.destination(2));
  letGoWhenUnwritable(logger);
  return logger;
}

/**
 * A log destination that fails (EIO from the terminal a collector was started in, once it hung
 * up) stops being written to, as pino does for EPIPE. Otherwise its error is thrown from the
 * next log call (the SIGHUP handler's), and at exit pino's flush retries the write for ever: the
 * collector neither drains nor exits.
 */
function letGoWhenUnwritable(logger: Logger): void {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as { on?: (e: string, f: (err?: Error) => void) => void } & Record<string, unknown>;
  if (typeof stream?.on !== 'function') return;
  const noop = (): void => {};
  let failed = false;
  stream.on('error', (err?: Error) => {
    // Writes already under way may fail after the first: one line, one let-go.
    if (failed) return;
    failed = true;
    // Said once where it may still be read (stderr, when stdout went to a file on a full disk).
    try {
      writeSync(2, `tracehouse: the log destination failed (${err?.message ?? 'error'}); no more log lines are written\n`);
    } catch {
      // stderr is gone too (the same hung-up terminal).
    }
    stream['write'] = () => true;
    stream['flushSync'] = noop;
    stream['flush'] = noop;
    stream['end'] = noop;
    stream['destroy'] = noop;
  });
}

/**
 * Failures in a row until a success (a resource that fails at every retry: the open-files
 * limit): the first is logged, the rest counted, and the count logged once it works again.
 */
export class Outage {
  private failures = 0;

  /** Counts a failure; true for the first of an outage (log it). */
  failed(): boolean {
    return this.failures++ === 0;
  }

  /** A success: ends the outage, returning how many failures it had (0: none; log nothing). */
  ended(): number {
    const n = this.failures;
    this.failures = 0;
    return n;
  }
}

/** How often a recurring event's line is written at most (its metric counts each one). */
const RECURRING_LOG_MS = 60_000;

/** The recurring logs holding a line for the end of their minute (RecurringLog.log), for flushRecurringLogs. */
const waitingLines = new Set<RecurringLog>();

/**
 * Writes now the lines recurring logs keep for the end of their minute: a stop (Collector.shutdown)
 * before it would leave those events out of the log for good.
 */
export function flushRecurringLogs(): void {
  for (const log of [...waitingLines]) log.flush();
}

/**
 * A recurring event (a refused request, a failed read or write) logged at most once a minute, with
 * how many happened since its last line: one line per event flooded the log.
 */
export class RecurringLog {
  private since = 0;
  /** performance.now() of the last line: the wall clock steps (NTP, a VM resumed), and a step back held every line for as long as the step. */
  private loggedAtMs = -Infinity;
  /** The line of the last event not logged, written when the minute ends (log()). */
  private unlogged: ((events: number) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** Counts one event without asking for a line. */
  count(): void {
    this.since++;
  }

  /** The events since the last line, when a line is due now (then counted from 0 again); else undefined. */
  take(): number | undefined {
    const now = performance.now();
    if (now - this.loggedAtMs <= RECURRING_LOG_MS) return undefined;
    this.loggedAtMs = now;
    const n = this.since;
    this.since = 0;
    return n;
  }

  /**
   * Counts one event and writes its line with the events it stands for (this one included) when
   * a line is due; else that line is written, for the last event, when the minute ends. Without
   * that, a burst within a minute said 1 and the rest waited for an event that may never come.
   */
  log(line: (events: number) => void): void {
    this.count();
    const events = this.take();
    if (events !== undefined) return line(events);
    this.unlogged = line;
    waitingLines.add(this);
    this.timer ??= setTimeout(() => this.flush(), this.loggedAtMs + RECURRING_LOG_MS + 1 - performance.now()).unref();
  }

  /** Writes the line kept for the end of the minute, with the events since the last line: when the minute ends, or now (flushRecurringLogs). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    waitingLines.delete(this);
    const last = this.unlogged;
    this.unlogged = undefined;
    const n = this.since;
    if (last === undefined || n === 0) return;
    this.since = 0;
    this.loggedAtMs = performance.now();
    last(n);
  }
}

/**
 * A RecurringLog for each key (a reason, a transport and an answer): each line counts the events
 * of the key it names, so one key's events never go out under another's name.
 */
export class RecurringLogs<K> {
  private readonly logs = new Map<K, RecurringLog>();

  /** RecurringLog.log of the key's own log. */
  log(key: K, line: (events: number) => void): void {
    let log = this.logs.get(key);
    if (!log) this.logs.set(key, (log = new RecurringLog()));
    log.log(line);
  }
}
