// Decode worker (piscina): OTLP bytes in, backend-encoded row chunks out. Runs off the main
// thread; what it returns is transferred, never structured-cloned span by span.
import { getHeapStatistics } from 'node:v8';
import { threadId } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { releaseBuffer, soleUser } from '../common/release.ts';
import type { EncodedChunk } from '../storage/backend.ts';
import { jsonDecodeBytes, oldSpaceBytes } from './decode/common.ts';
import { DecodeError } from './decode/index.ts';
import type { DecodeBatch, DecodeTask, DecodeOutput, TaskOutput, WorkerHeap, WorkerSetup } from './pool.ts';
import { OutputTooLargeError } from './transcode/byte-out.ts';
import { loadRequestEncoder } from './transcode/registry.ts';

const { encoder: spec, limits } = workerData as WorkerSetup;
// Transcodes wire bytes to store bytes where the store's format has a transcoder (what arrived,
// for memory and SQLite; RowBinary for ClickHouse); other stores decode to rows and encode those.
const encoder = await loadRequestEncoder(spec, limits);

const MiB = 2 ** 20;

/** This worker's old generation, which a request's decoding must fit in. */
const OLD_SPACE_BYTES = oldSpaceBytes();

/** A chunk whose bytes share an ArrayBuffer with anything else is copied, so transferring it moves nothing else. */
function ownBuffer(c: EncodedChunk): EncodedChunk {
  if (soleUser(c.data)) return c;
  return { ...c, data: new Uint8Array(c.data) };
}

/** This worker's V8 heap size, reported with each result so the main thread can export it. */
function heapOfThisThread(): WorkerHeap {
  return { threadId, bytes: getHeapStatistics().total_heap_size };
}

function run(task: DecodeTask, heap: () => WorkerHeap): DecodeOutput {
  const t0 = performance.now();
  const body = new Uint8Array(task.body, task.bodyOffset, task.bodyLength);
  // An OTLP/JSON body whose decoding would not fit in this heap is refused as too large (not
  // retried): decoded, it runs the worker out of memory (answered as retryable, so sent again and
  // again), and V8 can abort the whole process when it cannot stop the worker in time.
  // Counted by its objects and arrays too: 9 MiB of empty values ran a 128 MiB heap out.
  const need = task.format === 'json' ? jsonDecodeBytes(body, OLD_SPACE_BYTES) : 0;
  if (need > OLD_SPACE_BYTES) {
    const message = `decoding this ${(task.bodyLength / MiB).toFixed(1)} MiB OTLP/JSON request takes about ${Math.ceil(need / MiB)} MiB, more than a decode worker's heap (${Math.floor(OLD_SPACE_BYTES / MiB)} MiB); send smaller requests or OTLP/protobuf, or give the collector more memory`;
    return { kind: 'too_large', message, seconds: (performance.now() - t0) / 1000, heap: heap() };
  }
  try {
    const { accepted, rejected, errorMessage, chunks: encoded } = encoder.encode(task.signal, task.format, body);
    const chunks = encoded.map(ownBuffer);
    return { kind: 'ok', accepted, rejected, errorMessage, chunks, seconds: (performance.now() - t0) / 1000, heap: heap() };
  } catch (err: unknown) {
    if (err instanceof DecodeError) return { kind: 'invalid', message: err.message, seconds: (performance.now() - t0) / 1000, heap: heap() };
    if (err instanceof OutputTooLargeError) return { kind: 'too_large', message: err.message, seconds: (performance.now() - t0) / 1000, heap: heap() };
    throw err;
  }
}

/** The piscina task entry: each request of the batch decoded on its own, their outputs in order. */
export default function decodeTask(batch: DecodeBatch) {
  // One heap reading for the batch, taken after its first request.
  let h: WorkerHeap | undefined;
  const heap = () => (h ??= heapOfThisThread());
  const outs = batch.tasks.map((task): TaskOutput => {
    let out: DecodeOutput;
    try {
      out = run(task, heap);
    } catch (err) {
      // A bug met by one request fails that request, not the others of its batch.
      return { kind: 'failed', message: err instanceof Error ? err.message : String(err) };
    }
    // The request's bytes die here (the chunks are copies): free them now, not at a collection.
    if (out.kind !== 'ok' || !out.chunks.some((c) => c.data.buffer === task.body)) releaseBuffer(task.body);
    return out;
  });
  const buffers = outs.flatMap((out) => (out.kind === 'ok' ? out.chunks.map((c) => c.data.buffer) : []));
  if (buffers.length === 0) return outs;
  return move({ [transferableSymbol]: buffers, [valueSymbol]: outs } as never);
}
