// Progress of export, import and copy on stderr: a redrawn bar with counts, rate and ETA on a
// terminal, a plain line every few seconds otherwise (logs, CI), nothing with --quiet; and one
// summary line at the end in every case but quiet.
import type { WriteStream } from 'node:tty';

/** What a transfer has done so far. */
export interface TransferCounts {
  spans: number;
  logs: number;
  bytes: number;
}

export interface ProgressOptions {
  /** What is being done, e.g. 'export'. */
  verb: string;
  quiet: boolean;
  stream?: NodeJS.WriteStream;
  /** How often a plain line is written when stderr is not a terminal. */
  plainIntervalMs?: number;
}

function human(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n));
}

function bytesText(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/** Shows progress while a transfer runs and its summary when it ends. */
export class Progress {
  private readonly opts: ProgressOptions;
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly t0 = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private counts: TransferCounts = { spans: 0, logs: 0, bytes: 0 };
  private fraction: number | undefined;
  private drawn = false;

  constructor(opts: ProgressOptions) {
    this.opts = opts;
    this.out = opts.stream ?? process.stderr;
    this.tty = this.out.isTTY === true;
    if (!opts.quiet) {
      this.timer = setInterval(() => this.draw(), this.tty ? 200 : (opts.plainIntervalMs ?? 5000));
      this.timer.unref();
    }
  }

  get seconds(): number {
    return (performance.now() - this.t0) / 1000;
  }

  /** Records the latest counts and, when known, the fraction of the work done (for the bar and ETA); drawn on the next tick. */
  update(counts: TransferCounts, fraction?: number): void {
    this.counts = { ...counts };
    if (fraction !== undefined) this.fraction = fraction;
  }

  private line(): string {
    const rows = this.counts.spans + this.counts.logs;
    const rate = rows / Math.max(this.seconds, 1e-3);
    const f = this.fraction;
    const eta = f !== undefined && f > 0 ? ` ETA ${duration((this.seconds * (1 - f)) / f)}` : '';
    return `${this.opts.verb}: ${human(this.counts.spans)} spans, ${human(this.counts.logs)} log records, ${bytesText(this.counts.bytes)}, ${human(rate)} rows/s${eta}`;
  }

  private draw(): void {
    if (!this.tty) {
      this.out.write(this.line() + '\n');
      return;
    }
    const f = this.fraction;
    const width = 24;
    const bar = f !== undefined ? `[${'#'.repeat(Math.min(width, Math.floor(f * width))).padEnd(width, '.')}] ${(f * 100).toFixed(0).padStart(3)}% ` : '';
    const text = bar + this.line();
    const cols = (this.out as WriteStream).columns ?? 120;
    this.out.write('\r' + text.slice(0, cols - 1).padEnd(Math.min(cols - 1, text.length + 2)));
    this.drawn = true;
  }

  /** Stops the display and writes the one-line summary (unless quiet); returns it. */
  finish(extra = ''): string {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const c = this.counts;
    const summary = `${this.opts.verb}: ${c.spans} spans, ${c.logs} log records, ${c.bytes} bytes, ${this.seconds.toFixed(1)} s${extra}`;
    if (!this.opts.quiet) this.out.write((this.drawn ? '\r\x1b[K' : '') + summary + '\n');
    return summary;
  }
}
