// export, import and copy: what each does with a store, a file and a progress display. The CLI
// (cli.ts) parses their flags; these functions take typed options so tests call them directly.
import { fchmodSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { LogRow, SpanRow } from '../model/rows.ts';
import { SIGNALS, type Signal } from '../model/signal.ts';
import { DEFAULT_TENANT } from '../model/tenant.ts';
import { renderLogs, renderTraces } from '../query/render-otlp.ts';
import type { ScanPage, ScanQuery, StoreReader } from '../storage/backend.ts';
import { FileCorruptError, openOtlpFileWriter, readOtlpFile } from './otlp-file.ts';
import { Progress, type TransferCounts } from './progress.ts';
import type { TransferSink } from './sink.ts';

/** Which rows a transfer takes. */
export interface TransferFilters {
  signals: readonly Signal[];
  /** Whose rows: a transfer moves one tenant's data (--tenant, the default tenant unless given). */
  tenant: string;
  service?: string;
  startNano?: bigint;
  endNano?: bigint;
}

/** Rows read from a store per page, and so per line of an export file (the memory bound of a scan). */
export const PAGE_ROWS = 1000;

/** Problems printed one by one before only their count is kept. */
const MAX_PRINTED_PROBLEMS = 20;

/** A page of at most `limit` rows, and fewer once they hold maxBytes stored bytes when given. */
function scanQuery(f: TransferFilters, after: string | undefined, limit: number, maxBytes: number | undefined): ScanQuery {
  return {
    limit,
    ...(maxBytes === undefined || !Number.isFinite(maxBytes) ? {} : { maxBytes }),
    ...(f.service === undefined ? {} : { service: f.service }),
    ...(f.startNano === undefined ? {} : { startNano: f.startNano }),
    ...(f.endNano === undefined ? {} : { endNano: f.endNano }),
    ...(after === undefined ? {} : { after }),
  };
}

function scanOf(reader: StoreReader, signal: Signal, tenant: string): (q: ScanQuery) => Promise<ScanPage<SpanRow | LogRow>> {
  return signal === 'traces' ? (q) => reader.scanSpans(tenant, q) : (q) => reader.scanLogs(tenant, q);
}

/** The fraction of a multi-signal scan done, when the store tells its position (signals are scanned one after the other). */
function overall(index: number, of: number, page: ScanPage<unknown>): number | undefined {
  return page.position === undefined ? undefined : (index + (page.done ? 1 : page.position)) / of;
}

/** One page as one OTLP/JSON request line. */
function renderLine(signal: Signal, rows: readonly (SpanRow | LogRow)[]): string {
  return JSON.stringify(signal === 'traces' ? renderTraces(rows as SpanRow[]) : renderLogs(rows as LogRow[])) + '\n';
}

/**
 * One page as OTLP/JSON request lines of at most maxBytes each (the import's
 * receiver.maxMessageBytes): a page of large rows is split in halves until each part fits, so the
 * file restores with the configuration that stored the data. A single row larger than that stays one line.
 */
function renderLines(signal: Signal, rows: readonly (SpanRow | LogRow)[], maxBytes: number): string[] {
  let line: string | undefined = renderLine(signal, rows);
  if (rows.length <= 1 || Buffer.byteLength(line) <= maxBytes) return [line];
  // The halves are rendered without the whole line still held: with the page's rows, both would
  // be more than a small heap takes.
  line = undefined;
  const half = Math.ceil(rows.length / 2);
  return [...renderLines(signal, rows.slice(0, half), maxBytes), ...renderLines(signal, rows.slice(half), maxBytes)];
}

export interface ExportOptions extends TransferFilters {
  /** File path ('-': stdout); .gz / .zst compress. */
  out: string;
  quiet: boolean;
  pageRows?: number;
  /** Stored bytes a page holds at most (its rows, then its lines, are on the heap at once); none when absent. */
  pageBytes?: number;
  /** Largest line written when a page can be split (receiver.maxMessageBytes: what import accepts). */
  maxLineBytes?: number;
  stream?: NodeJS.WriteStream;
}

/** Writes what the store holds to a file, one request per page of rows; returns the counts. */
export async function exportStore(reader: StoreReader, o: ExportOptions): Promise<TransferCounts & { summary: string }> {
  const target = exportTarget(o.out);
  const partial = target.writing !== target.final;
  /** A failed export leaves no partial file beside the previous one. */
  const discard = (): void => {
    if (partial) rmSync(target.writing, { force: true });
  };
  // Interrupted (Ctrl-C, a supervisor's SIGTERM), an export removes its partial file as a failed one does.
  const interrupted = (signal: NodeJS.Signals): void => {
    discard();
    process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143);
  };
  const stopSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  // Listened for before the partial file is made: a signal with no listener ends the process at
  // once (the default action), and one between the file's creation and the listeners left it.
  if (partial) for (const s of stopSignals) process.on(s, interrupted);
  try {
    const file = openOtlpFileWriter(target.writing, o.out, partial ? createPartial(o.out, target) : undefined);
    return await writeExport(reader, o, file, target, discard);
  } finally {
    for (const s of stopSignals) process.off(s, interrupted);
  }
}

async function writeExport(reader: StoreReader, o: ExportOptions, file: ReturnType<typeof openOtlpFileWriter>, target: { writing: string; final: string }, discard: () => void): Promise<TransferCounts & { summary: string }> {
  const progress = new Progress({ verb: 'export', quiet: o.quiet, ...(o.stream ? { stream: o.stream } : {}) });
  const counts: TransferCounts = { spans: 0, logs: 0, bytes: 0 };
  try {
    for (const [i, signal] of o.signals.entries()) {
      const scan = scanOf(reader, signal, o.tenant);
      let after: string | undefined;
      for (;;) {
        const page = await scan(scanQuery(o, after, o.pageRows ?? PAGE_ROWS, o.pageBytes));
        if (page.rows.length > 0) for (const line of renderLines(signal, page.rows, o.maxLineBytes ?? Infinity)) await file.write(line);
        if (signal === 'traces') counts.spans += page.rows.length;
        else counts.logs += page.rows.length;
        counts.bytes = file.bytes;
        progress.update(counts, overall(i, o.signals.length, page));
        if (page.done) break;
        after = page.next;
      }
    }
  } catch (err) {
    await file.close().catch(() => undefined);
    discard();
    throw err;
  }
  await file.close().catch((err: unknown) => {
    discard();
    throw err;
  });
  if (target.writing !== target.final) renameSync(target.writing, target.final);
  counts.bytes = file.bytes;
  progress.update(counts);
  return { ...counts, summary: progress.finish() };
}

/**
 * Where an export writes, and the file it becomes. A regular file (or a new one) is written beside
 * itself and renamed over at the end, so an export that fails midway leaves the previous backup
 * whole; stdout, a device or a pipe is written as it is.
 */
function exportTarget(out: string): { writing: string; final: string; mode?: number } {
  if (out === '-') return { writing: out, final: out };
  let final = out;
  let mode: number | undefined;
  try {
    const st = statSync(out);
    if (!st.isFile()) return { writing: out, final: out };
    final = realpathSync(out);
    mode = st.mode & 0o7777;
  } catch (err) {
    // Not there, or a path through a file: creating the temporary file says which.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
  }
  return { writing: join(dirname(final), `.${basename(final)}.partial-${process.pid}`), final, ...(mode === undefined ? {} : { mode }) };
}

/**
 * Creates and opens export's temporary file before any row is read (its one open: a stream's
 * own, still under way on a Ctrl-C, made the file again after it was removed). Its name is the command's own: a
 * failure names the --out given ("ENOENT: no such file or directory, open '/backups/.b.jsonl.partial-4711'"
 * named neither it nor what was wrong), the directory not there, or else the system's reason. The
 * new file keeps the permissions of the one it replaces (a backup kept private, 0600, stays private).
 */
function createPartial(out: string, target: { writing: string; final: string; mode?: number }): number {
  let fd: number;
  try {
    fd = openSync(target.writing, 'w', target.mode === undefined ? 0o666 : 0o600);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new Error(`--out ${JSON.stringify(out)}: directory ${JSON.stringify(dirname(target.final))} does not exist`, { cause: err });
    throw new Error(`--out ${JSON.stringify(out)}: cannot create it: ${e.message.replace(/, \w+ '.*'$/s, '')}`, { cause: err });
  }
  if (target.mode !== undefined) fchmodSync(fd, target.mode);
  return fd;
}

/** Collects the problems of a transfer: printed one by one up to a bound, all counted. */
class Problems {
  count = 0;
  private readonly out: NodeJS.WriteStream;
  private readonly quiet: boolean;
  private printed = 0;
  private toldFurther = false;

  constructor(out: NodeJS.WriteStream, quiet: boolean) {
    this.out = out;
    this.quiet = quiet;
  }

  /**
   * `always`: printed past the bound too, for what is said once per file or run (a file that
   * breaks off, rows the store lost). After the lines of a shared exporter's metrics, a truncated
   * .gz was only counted: the import read as one of skipped lines, not of a file cut short.
   */
  add(text: string, always = false): void {
    this.count++;
    if (this.printed < MAX_PRINTED_PROBLEMS || always) {
      this.printed++;
      // Problems are printed even with --quiet: they say what was not imported.
      this.out.write(`${this.out.isTTY ? '\r\x1b[K' : ''}${text}\n`);
    } else if (!this.toldFurther && !this.quiet) {
      this.toldFurther = true;
      this.out.write('further problems are counted, not printed\n');
    }
  }
}

/** Ends the display; with --quiet the summary is still printed when there were problems (it holds their count). */
function finish(progress: Progress, problems: Problems, quiet: boolean, out: NodeJS.WriteStream, extra: string): string {
  const summary = progress.finish(extra);
  if (quiet && problems.count > 0) out.write(summary + '\n');
  return summary;
}

export interface ImportOptions {
  files: readonly string[];
  onError: 'skip' | 'stop';
  quiet: boolean;
  /** Largest message (line or frame) accepted, in bytes. */
  maxMessageBytes: number;
  stream?: NodeJS.WriteStream;
}

export interface TransferReport extends TransferCounts {
  /** Lines, items or files that were not imported, each reported. */
  problems: number;
  /** True when --on-error stop ended the run early. */
  stopped: boolean;
  /** Rows accepted but lost by the writer (store failures): reported, never silent. */
  dropped: number;
  summary: string;
}

/** Imports files through the sink (the collector's decode and write path); returns counts and problems. */
export async function importFiles(sink: TransferSink, o: ImportOptions): Promise<TransferReport> {
  const out = o.stream ?? process.stderr;
  const problems = new Problems(out, o.quiet);
  let totalBytes = 0;
  for (const f of o.files) {
    try {
      totalBytes += f === '-' ? 0 : statSync(f).size;
    } catch {
      // reported when the file is read
    }
  }
  const progress = new Progress({ verb: 'import', quiet: o.quiet, stream: out });
  // The ETA follows the bytes read from the files (compressed or not) against their sizes.
  let readBytes = 0;
  const fraction = () => (totalBytes > 0 ? Math.min(1, readBytes / totalBytes) : undefined);
  const counts: TransferCounts = { spans: 0, logs: 0, bytes: 0 };
  let stopped = false;
  files: for (const file of o.files) {
    try {
      for await (const m of readOtlpFile(file, o.maxMessageBytes, (n) => (readBytes += n))) {
        if (stopped) break files;
        if ('problem' in m) {
          problems.add(`${file}:${m.index}: skipped: ${m.problem}`);
          if (o.onError === 'stop') stopped = true;
          continue;
        }
        counts.bytes += m.bytes.length;
        // With --on-error stop a line's outcome is awaited before the next is sent: a line the
        // store refuses (bad JSON, invalid items) is found only once decoded, and the lines after
        // it must not be imported meanwhile.
        let heard: (() => void) | undefined;
        const outcome = o.onError === 'stop' ? new Promise<void>((r) => (heard = r)) : undefined;
        await sink.send(m.signal, m.format, m.bytes, (r) => {
          heard?.();
          if (r.kind === 'refused') {
            problems.add(`${file}:${m.index}: not imported: ${r.message}`);
            if (o.onError === 'stop') stopped = true;
            return;
          }
          if (m.signal === 'traces') counts.spans += r.accepted;
          else counts.logs += r.accepted;
          if (r.rejected > 0) {
            // The partial success's message counts them itself ("2 spans rejected: invalid trace id (2)").
            problems.add(`${file}:${m.index}: ${r.errorMessage || `${r.rejected} ${m.signal === 'traces' ? 'spans' : 'log records'} rejected`}`);
            if (o.onError === 'stop') stopped = true;
          }
          progress.update(counts, fraction());
        });
        await outcome;
        progress.update(counts, fraction());
      }
    } catch (err) {
      if (!(err instanceof FileCorruptError)) throw err;
      problems.add(`${file}: ${err.message}`, true);
      if (o.onError === 'stop') stopped = true;
    }
    if (stopped) break;
  }
  await sink.drain();
  progress.update(counts);
  const lost = await sink.dropped();
  const dropped = lost.traces + lost.logs;
  if (dropped > 0) problems.add(`${dropped} accepted rows could not be stored (${lost.traces} spans, ${lost.logs} log records): see the log above`, true);
  const extra = `${problems.count > 0 ? `, ${problems.count} problems` : ''}${stopped ? ', stopped at the first (--on-error stop)' : ''}`;
  return { ...counts, problems: problems.count, stopped, dropped, summary: finish(progress, problems, o.quiet, out, extra) };
}

/** Where copy keeps its place: the last cursor written per signal, and what it was copying. */
interface Checkpoint {
  version: 1;
  /** Which source store (a hash of its settings: cursors mean nothing in another store). */
  filters: { source: string; target?: string; tenant?: string; signals: Signal[]; service?: string; start?: string; end?: string };
  cursors: Partial<Record<Signal, string>>;
  /**
   * The line limit its pages were split by (maxLineBytes, when finite). A resumed copy splits no
   * wider: its limit follows the heap (a rerun with more memory after running out), and a page sent
   * again in other parts has other batch ids, so the target stored its log records twice.
   */
  lineBytes?: number;
  /** The page bound its pages were read with (pageBytes, when finite): a page read again with another splits differently, as lineBytes. */
  pageBytes?: number;
}

function checkpointFilters(f: TransferFilters & { source: string; target?: string }): Checkpoint['filters'] {
  return {
    source: f.source,
    // The rows before the cursors are in this target: another one has none of them.
    ...(f.target === undefined ? {} : { target: f.target }),
    // Cursors are of one tenant's rows; the default tenant's checkpoints read as before tenants.
    ...(f.tenant === DEFAULT_TENANT ? {} : { tenant: f.tenant }),
    signals: [...f.signals],
    ...(f.service === undefined ? {} : { service: f.service }),
    ...(f.startNano === undefined ? {} : { start: f.startNano.toString() }),
    ...(f.endNano === undefined ? {} : { end: f.endNano.toString() }),
  };
}

/** Reads a checkpoint; a file of another copy (other filters) is refused rather than silently reused. */
function readCheckpoint(path: string, f: CopyOptions): Pick<Checkpoint, 'cursors' | 'lineBytes' | 'pageBytes'> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { cursors: {} };
    throw err;
  }
  const cp = JSON.parse(text) as Checkpoint;
  const own = checkpointFilters(f);
  // A checkpoint written before the target counted names none: it is taken as this target's.
  if (cp.filters?.target === undefined) delete own.target;
  else if (own.target !== undefined && cp.filters.target !== own.target) {
    throw new Error(`checkpoint ${path} belongs to a copy into another target store; remove it or use --checkpoint with another file (a checkpoint per target)`);
  }
  if (JSON.stringify(cp.filters) !== JSON.stringify(own)) {
    throw new Error(`checkpoint ${path} belongs to a copy from another source or with other filters (${JSON.stringify(cp.filters)}); remove it or use --checkpoint with another file`);
  }
  return { cursors: cp.cursors, ...(typeof cp.lineBytes === 'number' ? { lineBytes: cp.lineBytes } : {}), ...(typeof cp.pageBytes === 'number' ? { pageBytes: cp.pageBytes } : {}) };
}

/** Writes the checkpoint atomically (write, then rename): an interruption leaves the old or the new one. */
function writeCheckpoint(path: string, f: CopyOptions, cursors: Checkpoint['cursors'], lineBytes: number, pageBytes: number): void {
  const cp: Checkpoint = { version: 1, filters: checkpointFilters(f), cursors, ...(Number.isFinite(lineBytes) ? { lineBytes } : {}), ...(Number.isFinite(pageBytes) ? { pageBytes } : {}) };
  try {
    writeFileSync(path + '.tmp', JSON.stringify(cp) + '\n');
    renameSync(path + '.tmp', path);
  } catch (err) {
    // A failed write (a full disk) names no file, and left the empty .tmp beside the checkpoint.
    rmSync(path + '.tmp', { force: true });
    throw new Error(`cannot write the checkpoint ${path} (--checkpoint): ${(err as Error).message}`, { cause: err });
  }
}

export interface CopyOptions extends TransferFilters {
  checkpoint: string;
  /** Identifies the source store in the checkpoint (not secret: a hash of its settings). */
  source: string;
  /** Identifies the target store in the checkpoint, as source does. */
  target?: string;
  quiet: boolean;
  pageRows?: number;
  /** Stored bytes a page holds at most, as export's. */
  pageBytes?: number;
  /** Largest request sent when a page can be split (the target's receiver.maxMessageBytes), as export's lines. */
  maxLineBytes?: number;
  /** Pages sent between checkpoints (each checkpoint waits for everything before it to be stored). */
  pagesPerCheckpoint?: number;
  stream?: NodeJS.WriteStream;
  /** Stops after this many pages (tests interrupt a copy with it). */
  maxPages?: number;
}

/**
 * Copies rows from one store into another through the sink, page by page, keeping its place in
 * the checkpoint file. Run again after an interruption it resumes after the last checkpoint; the
 * pages re-sent since then carry the same batch ids, so nothing is stored twice.
 */
export async function copyStore(reader: StoreReader, sink: TransferSink, o: CopyOptions): Promise<TransferReport> {
  const out = o.stream ?? process.stderr;
  const problems = new Problems(out, o.quiet);
  const { cursors, lineBytes: resumedLineBytes, pageBytes: resumedPageBytes } = readCheckpoint(o.checkpoint, o);
  // Pages read and split as the run that wrote the checkpoint did (same parts, same batch ids), unless this process takes less.
  const maxLineBytes = Math.min(o.maxLineBytes ?? Infinity, resumedLineBytes ?? Infinity);
  const pageBytes = Math.min(o.pageBytes ?? Infinity, resumedPageBytes ?? Infinity);
  const progress = new Progress({ verb: 'copy', quiet: o.quiet, stream: out });
  const counts: TransferCounts = { spans: 0, logs: 0, bytes: 0 };
  let pages = 0;
  let stopped = false;
  /** A page the target refused (not retried by the sink): the checkpoint must not pass it. */
  let refused = false;
  const every = o.pagesPerCheckpoint ?? 20;
  const signals = SIGNALS.filter((s) => o.signals.includes(s));
  outer: for (const [i, signal] of signals.entries()) {
    const scan = scanOf(reader, signal, o.tenant);
    let after = cursors[signal];
    for (;;) {
      if (o.maxPages !== undefined && pages >= o.maxPages) {
        stopped = true;
        break outer;
      }
      const page = await scan(scanQuery(o, after, o.pageRows ?? PAGE_ROWS, pageBytes));
      const fraction = overall(i, signals.length, page);
      if (fraction !== undefined) progress.update(counts, fraction);
      // A page of large rows goes in parts within the target's limit: one request of it all may be
      // more than the target's decode workers take, refused at every run.
      const from = after;
      for (const text of page.rows.length > 0 ? renderLines(signal, page.rows, maxLineBytes) : []) {
        const line = Buffer.from(text);
        counts.bytes += line.length;
        await sink.send(signal, 'json', line, (r) => {
          if (r.kind === 'refused') {
            refused = true;
            problems.add(`copy: a page of ${signal} after cursor ${from ?? '(start)'} was not written: ${r.message}`);
          } else {
            if (signal === 'traces') counts.spans += r.accepted;
            else counts.logs += r.accepted;
            if (r.rejected > 0) problems.add(`copy: ${r.rejected} ${signal === 'traces' ? 'spans' : 'log records'} rejected by the target: ${r.errorMessage}`);
          }
          progress.update(counts);
        });
      }
      if (page.rows.length > 0) pages++;
      after = page.next;
      if (page.done || pages % every === 0) {
        // The checkpoint moves only past rows that are stored: after a write failure or a page the
        // target refused it stays, so the next run sends those rows again.
        await sink.drain();
        const lost = await sink.dropped();
        if (lost.traces + lost.logs > 0 || refused) {
          stopped = true;
          break outer;
        }
        if (after !== undefined) cursors[signal] = after;
        writeCheckpoint(o.checkpoint, o, cursors, maxLineBytes, pageBytes);
      }
      if (page.done) break;
    }
  }
  await sink.drain();
  const lost = await sink.dropped();
  const dropped = lost.traces + lost.logs;
  if (dropped > 0) problems.add(`${dropped} rows could not be stored in the target (${lost.traces} spans, ${lost.logs} log records): run copy again to retry them`, true);
  progress.update(counts);
  const extra = `${problems.count > 0 ? `, ${problems.count} problems` : ''}${stopped ? ', stopped early' : ''}`;
  return { ...counts, problems: problems.count, stopped, dropped, summary: finish(progress, problems, o.quiet, out, extra) };
}
