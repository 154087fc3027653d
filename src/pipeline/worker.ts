// Decode worker (piscina): OTLP bytes in, backend-encoded row chunks out. Runs off the main
// thread; what it returns is transferred, never structured-cloned span by span.
import { getHeapStatistics } from 'node:v8';
import { threadId } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { releaseBuffer } from '../common/release.ts';
import type { EncodedChunk } from '../storage/backend.ts';
import { DecodeError } from './decode/index.ts';
import type { DecodeTask, DecodeOutput, WorkerSetup } from './pool.ts';
import { loadRequestEncoder } from './transcode/registry.ts';

const { encoder: spec, limits } = workerData as WorkerSetup;
// Transcodes wire bytes to store bytes where the store's format has a transcoder (what arrived,
// for memory and SQLite; RowBinary for ClickHouse); other stores decode to rows and encode those.
const encoder = await loadRequestEncoder(spec, limits);

/** A chunk whose bytes share an ArrayBuffer with anything else is copied, so transferring it moves nothing else. */
function ownBuffer(c: EncodedChunk): EncodedChunk {
  if (c.data.byteOffset === 0 && c.data.byteLength === c.data.buffer.byteLength && c.data.buffer instanceof ArrayBuffer) return c;
  return { ...c, data: new Uint8Array(c.data) };
}

/** This worker's V8 heap size, reported with each result so the main thread can export it. */
function heapOfThisThread(): { threadId: number; bytes: number } {
  return { threadId, bytes: getHeapStatistics().total_heap_size };
}

function run(task: DecodeTask): DecodeOutput {
  const t0 = performance.now();
  const body = new Uint8Array(task.body, task.bodyOffset, task.bodyLength);
  try {
    const { accepted, rejected, errorMessage, chunks: encoded } = encoder.encode(task.signal, task.format, body);
    const chunks = encoded.map(ownBuffer);
    return { kind: 'ok', accepted, rejected, errorMessage, chunks, seconds: (performance.now() - t0) / 1000, heap: heapOfThisThread() };
  } catch (err: unknown) {
    if (err instanceof DecodeError) return { kind: 'invalid', message: err.message, seconds: (performance.now() - t0) / 1000, heap: heapOfThisThread() };
    throw err;
  }
}

/** The piscina task entry. */
export default function decodeTask(task: DecodeTask) {
  const out = run(task);
  // The request's bytes die here (the chunks are copies): free them now, not at a collection.
  if (out.kind !== 'ok' || !out.chunks.some((c) => c.data.buffer === task.body)) releaseBuffer(task.body);
  if (out.kind !== 'ok' || out.chunks.length === 0) return out;
  return move({
    [transferableSymbol]: out.chunks.map((c) => c.data.buffer),
    [valueSymbol]: out,
  } as never);
}
