// Files of OTLP requests as the OpenTelemetry Collector's `file` exporter writes them and its
// `otlpjsonfile` receiver reads them:
// - JSON lines: one ExportTraceServiceRequest / ExportLogsServiceRequest per line (format json).
// - Length-delimited: each message preceded by its size as a 4-byte big-endian unsigned integer
//   (format proto; and format json with the legacy per-message compression, where each framed
//   message is a zstd frame of its own).
// - Either of them inside one gzip or zstd stream (our `.gz` / `.zst` output, the exporter's
//   native compression).
// Reading tells the layouts apart by their first bytes, not by the file name.
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { createGunzip, createGzip, createZstdCompress, zstdDecompressSync } from 'node:zlib';
import { createZstdFrames } from '../common/zstd.ts';
import type { Signal } from '../model/signal.ts';
import type { OtlpFormat } from '../pipeline/pool.ts';

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const UTF8_BOM = [0xef, 0xbb, 0xbf];

/**
 * How much longer than receiver.maxMessageBytes a JSON line may be. A request the receiver took as
 * protobuf within the limit takes more bytes as OTLP/JSON (ids in hex, bytes in base64, quotes and
 * control characters escaped, every value wrapped in its kind), and export writes a row it cannot
 * split as one line: its backup must restore with the settings that stored it.
 */
export const JSON_LINE_FACTOR = 4;

function startsWith(b: Uint8Array, magic: readonly number[]): boolean {
  return b.length >= magic.length && magic.every((m, i) => b[i] === m);
}

/**
 * zstd data: a frame, or a skippable frame (RFC 8878, 3.1.2: magic 0x184D2A50 to 0x184D2A5F,
 * little-endian), which `pzstd` writes before each of its frames.
 */
function isZstd(b: Uint8Array): boolean {
  return startsWith(b, ZSTD_MAGIC) || (b.length >= 4 && (b[0]! & 0xf0) === 0x50 && b[1] === 0x2a && b[2] === 0x4d && b[3] === 0x18);
}

/** One message read from a file; `index` counts from 1 (the line number of a JSON-lines file). */
export type FileMessage =
  | { index: number; format: OtlpFormat; signal: Signal; bytes: Buffer }
  /** A message that cannot be imported, with why (a garbage line, metrics, an oversized frame). */
  | { index: number; problem: string };

/** Thrown when the file itself breaks off (a truncated .gz, a frame cut short): what was read before it stands. */
export class FileCorruptError extends Error {
  override readonly name = 'FileCorruptError';
}

/**
 * Pulls bytes from a stream on demand. Chunks are kept as they came and joined only when taken
 * or looked at whole, so a long line read chunk by chunk costs its bytes once, not once per chunk.
 */
class ByteSource {
  private readonly it: AsyncIterator<Buffer>;
  private chunks: Buffer[] = [];
  /** Bytes buffered (in chunks). */
  length = 0;
  ended = false;
  /** Bytes consumed so far, for error messages. */
  offset = 0;

  constructor(stream: AsyncIterable<Buffer>) {
    this.it = stream[Symbol.asyncIterator]();
  }

  /** The buffered bytes as one buffer (joined once, here). */
  get buffered(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0] ?? EMPTY;
  }

  /** Reads until at least n bytes are buffered or the stream ends; false at the end. */
  async fill(n: number): Promise<boolean> {
    while (this.length < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else if (r.value.length > 0) {
        this.chunks.push(r.value);
        this.length += r.value.length;
      }
    }
    return this.length >= n;
  }

  /** Reads one more chunk; false at the end. */
  async more(): Promise<boolean> {
    const before = this.length;
    await this.fill(before + 1);
    return this.length > before;
  }

  /** The first position of byte b at or after `from` in the buffered bytes, or -1; joins nothing. */
  indexOf(b: number, from: number): number {
    let base = 0;
    for (const c of this.chunks) {
      if (from < base + c.length) {
        const i = c.indexOf(b, Math.max(0, from - base));
        if (i >= 0) return base + i;
      }
      base += c.length;
    }
    return -1;
  }

  /** Ends the iteration early: a stream's iterator destroys the stream (and a decompressor with it). */
  async close(): Promise<void> {
    await this.it.return?.();
  }

  /** The next n buffered bytes (n at most length), consumed. */
  take(n: number): Buffer {
    if (n === 0) return EMPTY;
    // Joined only when the bytes span chunks.
    const head = this.chunks[0]!.length >= n ? this.chunks[0]! : this.buffered;
    if (head.length === n) this.chunks.shift();
    else this.chunks[0] = head.subarray(n);
    this.length -= n;
    this.offset += n;
    return head.subarray(0, n);
  }
}

const EMPTY = Buffer.alloc(0);

/** The stream as the first bytes say: gunzipped, zstd-decompressed, or as it is. */
async function decompressed(raw: Readable): Promise<AsyncIterable<Buffer>> {
  const src = new ByteSource(raw);
  await src.fill(4);
  const head = src.buffered;
  let inner: Writable & Readable;
  if (startsWith(head, GZIP_MAGIC)) inner = createGunzip();
  else if (isZstd(head)) inner = createZstdFrames(Infinity);
  else return prefixed(src);
  // Feed by hand so the source's own errors (a missing file) and the decompressor's (truncated
  // data) both come out of the iteration.
  void (async () => {
    try {
      for await (const chunk of prefixed(src)) if (!inner.write(chunk)) await new Promise<void>((r) => inner.once('drain', () => r()));
      inner.end();
    } catch (err) {
      // Already read to its end (gunzip ends at zero bytes padding its data, which gzip reads past
      // too): the file is closed under this loop on purpose, and no reader listens for an error.
      if (inner.readableEnded) inner.destroy();
      else inner.destroy(err as Error);
    }
  })();
  return chunksThenError(inner);
}

/**
 * A stream's chunks, then its error. Node's own async iterator gives nothing a stream holds once it
 * has failed: a truncated .gz or .zst lost the last lines its decompressor had already made (up
 * to its 16 KiB buffer and more), which gunzip reads, and the error named an earlier message.
 * Ending the iteration early destroys the stream, as the iterator does.
 */
async function* chunksThenError(s: Readable): AsyncGenerator<Buffer> {
  let error: Error | undefined;
  let ended = false;
  let wake = (): void => undefined;
  s.on('readable', () => wake());
  s.on('end', () => {
    ended = true;
    wake();
  });
  s.on('error', (err) => {
    error = err;
    wake();
  });
  // Destroyed without an error before its end (the iterator's ERR_STREAM_PREMATURE_CLOSE): not a whole file.
  s.on('close', () => {
    if (!s.readableEnded) error ??= new Error('the decompressed stream closed before its end');
    wake();
  });
  try {
    for (;;) {
      // A failed stream still gives what it holds (read() serves its buffer after destroy()).
      const chunk = s.read() as Buffer | null;
      if (chunk !== null) yield chunk;
      else if (error) throw error;
      else if (ended) return;
      else await new Promise<void>((r) => (wake = r));
    }
  } finally {
    s.destroy();
  }
}

async function* prefixed(src: ByteSource): AsyncGenerator<Buffer> {
  if (src.length > 0) yield src.take(src.length);
  while (await src.more()) yield src.take(src.length);
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

const JSON_KEYS: [string, Signal | 'metrics'][] = [
  ['"resourceSpans"', 'traces'],
  ['"resource_spans"', 'traces'],
  ['"resourceLogs"', 'logs'],
  ['"resource_logs"', 'logs'],
  ['"resourceMetrics"', 'metrics'],
  ['"resource_metrics"', 'metrics'],
];

/**
 * The signal of an OTLP/JSON request from its top-level key, without parsing it (that happens on
 * the decode workers): the first of the keys that is not inside a string (an escaped quote
 * before it means it is).
 */
export function jsonSignal(line: Buffer): Signal | 'metrics' | undefined {
  let best: { at: number; signal: Signal | 'metrics' } | undefined;
  for (const [key, signal] of JSON_KEYS) {
    let at = line.indexOf(key);
    while (at > 0 && line[at - 1] === 0x5c) at = line.indexOf(key, at + 1);
    if (at >= 0 && (!best || at < best.at)) best = { at, signal };
  }
  return best?.signal;
}

/** Reads a varint at i; [value, next index] or undefined when cut short. */
function varint(b: Uint8Array, i: number, end: number): [number, number] | undefined {
  let v = 0;
  let mul = 1;
  for (let n = 0; n < 10 && i < end; n++) {
    const x = b[i++]!;
    v += (x & 0x7f) * mul;
    if (x < 0x80) return [v, i];
    mul *= 128;
  }
  return undefined;
}

/** Fields of a protobuf message in b[start, end): [field number, wire type, value start, value end]. */
function* fields(b: Uint8Array, start: number, end: number): Generator<[number, number, number, number]> {
  let i = start;
  while (i < end) {
    const t = varint(b, i, end);
    if (!t) return;
    const [tag, at] = t;
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const v = varint(b, at, end);
      if (!v) return;
      yield [field, wire, at, v[1]];
      i = v[1];
    } else if (wire === 1) {
      yield [field, wire, at, at + 8];
      i = at + 8;
    } else if (wire === 5) {
      yield [field, wire, at, at + 4];
      i = at + 4;
    } else if (wire === 2) {
      const l = varint(b, at, end);
      if (!l || l[1] + l[0] > end) return;
      yield [field, wire, l[1], l[1] + l[0]];
      i = l[1] + l[0];
    } else return;
  }
}

function firstLen(b: Uint8Array, start: number, end: number, field: number): [number, number] | undefined {
  for (const [f, w, s, e] of fields(b, start, end)) if (f === field && w === 2) return [s, e];
  return undefined;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Whether b[start, end) is UTF-8 text without control characters (a name, not an id or a message). */
function isText(b: Uint8Array, start: number, end: number): boolean {
  let s: string;
  try {
    s = UTF8.decode(b.subarray(start, end));
  } catch {
    return false;
  }
  return !/[\u0000-\u001f\u007f]/.test(s);
}

/**
 * The signal of an OTLP protobuf request. Traces, logs and metrics requests all hold their data
 * in field 1, so this looks at the first item (a Collector's file exporter shared between
 * pipelines writes all three signals to one file).
 * - A LogRecord has time_unix_nano (1) as fixed64, if at all; a Span and a Metric have field 1
 *   as bytes (trace_id; name): without it, logs.
 * - A Metric (opentelemetry-proto metrics.proto) is name 1, description 2, unit 3, gauge 5,
 *   sum 7, histogram 9, exponential_histogram 10, summary 11, metadata 12: all length-delimited.
 *   Length-delimited 7, 10 or 12 is a Metric's (a Span has start_time 7 as fixed64 and
 *   dropped_attributes_count 10 and dropped_events_count 12 as varints): metrics.
 * - Any other wire type (a Span's kind, times, counts, flags), or parent_span_id 4, links 13 or
 *   status 15 (numbers a Metric does not use) is a Span's: traces.
 * - Otherwise every field has a number both share (1, 2, 3, 5, 9, 11), as in a span of ids,
 *   name and attributes only (proto3 leaves out zero fields). It is a span when its trace_id (1)
 *   is 16 bytes and its span_id (2) 8, unless both read as text, as a Metric's name and
 *   description do, while field 5 does not (a Span's name is text; a Metric's gauge there is a
 *   message, which starts with a control byte). A metric read as a span was stored as one, its
 *   name the trace id; a span read as a metric is skipped.
 * Undefined when the request holds no item.
 */
export function protobufSignal(b: Uint8Array): Signal | 'metrics' | undefined {
  for (const [f, w, rs, re] of fields(b, 0, b.length)) {
    if (f !== 1 || w !== 2) continue;
    // The first item of any scope: a scope before it may hold none.
    let item: [number, number] | undefined;
    for (const [sf, sw, ss, se] of fields(b, rs, re)) {
      if (sf === 2 && sw === 2) item = firstLen(b, ss, se, 2);
      if (item) break;
    }
    if (!item) continue;
    const len = new Map<number, [number, number]>();
    let metricOnly = false;
    let spanOnly = false;
    for (const [fi, wi, vs, ve] of fields(b, item[0], item[1])) {
      if (wi !== 2) spanOnly = true;
      else {
        if (!len.has(fi)) len.set(fi, [vs, ve]);
        if (fi === 7 || fi === 10 || fi === 12) metricOnly = true;
        if (fi === 4 || fi === 13 || fi === 15) spanOnly = true;
      }
    }
    const f1 = len.get(1);
    if (!f1) return 'logs';
    if (metricOnly) return 'metrics';
    if (spanOnly) return 'traces';
    const f2 = len.get(2);
    const f5 = len.get(5);
    if (!f2 || f1[1] - f1[0] !== 16 || f2[1] - f2[0] !== 8) return 'metrics';
    const named = isText(b, ...f1) && isText(b, ...f2) && !(f5 && isText(b, ...f5));
    return named ? 'metrics' : 'traces';
  }
  return undefined;
}

/** Classifies one message's bytes (a JSON line, or a frame's payload: JSON or protobuf). */
function message(index: number, bytes: Buffer, maxBytes: number, line: boolean): FileMessage {
  let body = bytes;
  if (startsWith(body, ZSTD_MAGIC)) {
    try {
      body = zstdDecompressSync(body, { maxOutputLength: maxBytes });
    } catch (err) {
      return { index, problem: `zstd-compressed message does not decompress within ${maxBytes} bytes: ${(err as Error).message}` };
    }
  }
  let i = 0;
  while (i < body.length && isSpace(body[i]!)) i++;
  // A frame that starts with whitespace may be protobuf: its first byte is 0x0a (field 1, a
  // newline as text) and the next its length, "{" for 123 bytes. It is JSON only if not a request.
  if (body[i] === 0x7b && (line || i === 0 || protobufSignal(body) === undefined)) {
    const signal = jsonSignal(body);
    if (signal === 'metrics') return { index, problem: 'metrics are not stored (only traces and logs)' };
    if (!signal) return { index, problem: 'not an OTLP/JSON traces or logs request (no resourceSpans or resourceLogs)' };
    return { index, format: 'json', signal, bytes: body };
  }
  if (line) return { index, problem: 'not an OTLP/JSON traces or logs request (a line must hold one JSON object)' };
  const signal = protobufSignal(body);
  if (signal === 'metrics') return { index, problem: 'metrics are not stored (only traces and logs)' };
  if (!signal) return { index, problem: 'not an OTLP protobuf traces or logs request with items' };
  return { index, format: 'protobuf', signal, bytes: body };
}

/**
 * The messages of a file ('-' for stdin) in order. Problems with one message are yielded for the
 * caller to report; a file that breaks off throws FileCorruptError after the messages before it.
 * No frame larger than maxBytes, and no line larger than JSON_LINE_FACTOR × maxBytes, is held in
 * memory: a longer one is skipped as a problem.
 * onRead hears of every chunk read from the file (before decompression), for progress.
 */
export async function* readOtlpFile(path: string, maxBytes: number, onRead?: (bytes: number) => void): AsyncGenerator<FileMessage> {
  const raw = path === '-' ? (process.stdin as Readable) : createReadStream(path);
  if (onRead) raw.on('data', (chunk: Buffer) => onRead(chunk.length));
  let index = 0;
  let src: ByteSource | undefined;
  try {
    src = new ByteSource(await decompressed(raw));
    // A UTF-8 byte order mark (a file saved by a Windows editor or PowerShell) is not part of the first line.
    await src.fill(UTF8_BOM.length);
    if (startsWith(src.buffered, UTF8_BOM)) src.take(UTF8_BOM.length);
    await src.fill(1);
    let i = 0;
    while (i < src.buffered.length && isSpace(src.buffered[i]!)) {
      i++;
      if (i === src.buffered.length && (await src.more())) continue;
    }
    // A 4-byte big-endian size starting with a printable byte would announce a message over
    // 512 MiB: a file whose first byte is text is JSON lines (garbage lines are reported one by one).
    const framed = src.buffered.length > i && src.buffered[i]! < 0x20;
    if (framed) {
      while (await src.fill(1)) {
        index++;
        if (!(await src.fill(4))) throw new FileCorruptError(`message ${index}: the file ends inside a 4-byte length prefix`);
        const size = src.buffered.readUInt32BE(0);
        src.take(4);
        if (size > maxBytes) {
          // Skipped as an overlong line is, without holding it: the messages after it are read on.
          for (let left = size; left > 0; ) {
            if (src.length === 0 && !(await src.more())) throw new FileCorruptError(`message ${index}: the file ends ${left} bytes short of the message (not a length-delimited OTLP file?)`);
            left -= src.take(Math.min(left, src.length)).length;
          }
          yield { index, problem: `message of ${size} bytes, more than the ${maxBytes} allowed (receiver.maxMessageBytes)` };
          continue;
        }
        if (!(await src.fill(size))) throw new FileCorruptError(`message ${index}: the file ends ${size - src.length} bytes short of the message`);
        yield message(index, Buffer.from(src.take(size)), maxBytes, false);
      }
      return;
    }
    const maxLine = maxBytes * JSON_LINE_FACTOR;
    const overlong = `line longer than ${maxLine} bytes (${JSON_LINE_FACTOR} × receiver.maxMessageBytes)`;
    for (;;) {
      // Each chunk is searched once: from where the last search ended.
      let nl = src.indexOf(0x0a, 0);
      for (let searched = src.length; nl < 0 && src.length <= maxLine && (await src.more()); searched = src.length) nl = src.indexOf(0x0a, searched);
      if (nl < 0 && src.length > maxLine) {
        index++;
        // Skip the rest of the overlong line without keeping it.
        while (nl < 0) {
          src.take(src.length);
          if (!(await src.more())) break;
          nl = src.indexOf(0x0a, 0);
        }
        if (nl >= 0) src.take(nl + 1);
        yield { index, problem: overlong };
        continue;
      }
      if (nl < 0 && src.length === 0) return;
      index++;
      if (nl > maxLine) {
        // The same limit for a line that arrived within the reads already buffered.
        src.take(nl + 1);
        yield { index, problem: overlong };
        continue;
      }
      const line = Buffer.from(src.take(nl < 0 ? src.length : nl + 1));
      let end = line.length;
      while (end > 0 && isSpace(line[end - 1]!)) end--;
      if (end === 0) continue; // blank lines separate nothing
      yield message(index, line.subarray(0, end), maxBytes, true);
    }
  } catch (err) {
    if (err instanceof FileCorruptError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR') throw new FileCorruptError(`cannot read: ${e.message}`);
    throw new FileCorruptError(`after message ${index}: ${e.code === 'Z_BUF_ERROR' || /unexpected end/i.test(e.message) ? 'compressed data ends early (truncated file)' : e.message}`);
  } finally {
    raw.destroy();
    await src?.close().catch(() => undefined);
  }
}

/** Where export writes: a file (compressed by its .gz / .zst suffix) or stdout ('-'); counts bytes written to it. */
export interface OtlpFileWriter {
  /** Writes one line; resolves when the stream can take more (back-pressure). */
  write(line: string): Promise<void>;
  /** Bytes written to the file or stdout (after compression). */
  readonly bytes: number;
  close(): Promise<void>;
}

/**
 * Opens FILE for export (or writes to `fd`, FILE open already); compression follows the suffix of
 * `named` (.gz gzip, .zst zstd), the file's own name unless given.
 */
export function openOtlpFileWriter(path: string, named = path, fd?: number): OtlpFileWriter {
  const sink: Writable = path === '-' ? process.stdout : createWriteStream(path, fd === undefined ? {} : { fd });
  const compressor: (Writable & Readable) | undefined = named.endsWith('.gz') ? createGzip() : named.endsWith('.zst') ? createZstdCompress() : undefined;
  let bytes = 0;
  let failed: Error | undefined;
  const onError = (err: Error) => (failed ??= err);
  // A failed write names no file ("ENOSPC: no space left on device, write"): the error says which
  // one, the one the user named (an open's error names the file it opened already).
  const withFile = (err: Error): Error => {
    // `export --out - | head`: the reader went away ("write EPIPE" alone said nothing of why).
    if (path === '-') return new Error((err as NodeJS.ErrnoException).code === 'EPIPE' ? 'standard output was closed before the export ended (the command reading it stopped): it has part of the export only' : `cannot write to standard output: ${err.message}`, { cause: err });
    return (err as NodeJS.ErrnoException).path !== undefined ? err : new Error(`cannot write ${named}: ${err.message}`, { cause: err });
  };
  sink.on('error', (raw: Error) => {
    const err = withFile(raw);
    onError(err);
    // The compressor waits for the file's 'drain' or its own 'end' otherwise, and never gets either.
    compressor?.destroy(err);
  });
  compressor?.on('error', onError);
  const counter = compressor ?? sink;
  if (compressor) {
    compressor.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (!sink.write(chunk)) {
        compressor.pause();
        sink.once('drain', () => compressor.resume());
      }
    });
  }
  return {
    get bytes() {
      return bytes;
    },
    async write(line) {
      if (failed) throw failed;
      if (!compressor) bytes += Buffer.byteLength(line);
      // events.once takes its 'drain' and 'error' listeners off again: one left per line would pile up over an export.
      // A failed write rejects the wait with the stream's own error: the one that names the file is thrown.
      if (!counter.write(line)) await once(counter, 'drain').catch((err: unknown) => Promise.reject(failed ?? err));
      if (failed) throw failed;
    },
    async close() {
      if (failed) {
        if (sink !== process.stdout) sink.destroy();
        throw failed;
      }
      if (compressor) {
        await new Promise<void>((resolve, reject) => {
          compressor.once('end', resolve);
          compressor.once('error', reject);
          compressor.end();
        });
      }
      if (sink !== process.stdout) {
        // end's callback hears of a failed last write (ENOSPC as the file is flushed), which
        // 'error' may report only after it has called back.
        await new Promise<void>((resolve, reject) => {
          sink.end((err?: Error | null) => (err ? reject(withFile(err)) : resolve()));
        });
      }
      if (failed) throw failed;
    },
  };
}
