// Freeing ArrayBuffer memory at the point it dies. V8 frees an ArrayBuffer's memory only in a
// garbage collection, and starts a full one for every 64 MiB of ArrayBuffers allocated ("external
// memory pressure"), however small the heap: request bodies and encoded chunks are most of what
// this process allocates, so buffers left to the collector make it collect several times a second
// under load (docs/performance.md, "Where the cost is"). A buffer detached where its last reader
// is done is freed there and never counts towards that trigger.

/** Whether a view is the whole of an ArrayBuffer: nothing else's bytes share it, so it can move or be freed alone. */
export function wholeBuffer(view: Uint8Array): boolean {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer;
}

/** Buffers given to the view at their start, their tail unused (this thread's; the mark does not move with them). */
const givenAway = new WeakSet<ArrayBufferLike>();

/** Marks a view at offset 0 as the only user of its buffer, though the buffer is longer: it may move with the view. */
export function giveBuffer(view: Uint8Array): Uint8Array {
  givenAway.add(view.buffer);
  return view;
}

/** Whether a view may move with its buffer: it is the whole buffer, or a buffer given to it (giveBuffer). */
export function soleUser(view: Uint8Array): boolean {
  return wholeBuffer(view) || (view.byteOffset === 0 && givenAway.has(view.buffer));
}

/**
 * Frees a buffer's memory now by detaching it (ArrayBuffer.prototype.transfer(0)). Call it only
 * where nothing will read the buffer, or a view of it, again: every view reads as empty after.
 * A buffer that cannot be detached (Node's shared pool, a SharedArrayBuffer) is left to the
 * collector.
 */
export function releaseBuffer(buffer: ArrayBufferLike): void {
  if (!(buffer instanceof ArrayBuffer) || buffer.detached) return;
  try {
    buffer.transfer(0);
  } catch {
    // Not detachable: the collector frees it.
  }
}
