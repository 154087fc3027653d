// One tenant's traces in the memory store, found by the 16 bytes of their id as a span record
// holds them, without a string per trace.
import { staysPut, traceHome } from '../id-set.ts';
import { isTraceIdHex } from '../query-helpers.ts';
import type { TraceEntry } from './spans.ts';

/**
 * Traces by id: open addressing with linear probing, the id's four int32 words in an Int32Array
 * and the trace at the same place, at most half full; a delete shifts the probe run back (no
 * tombstones), and each trace knows its place (TraceEntry.slot), so eviction finds it without a
 * lookup. A Map keyed by each trace's id as hex cost the store's write a string, its hash and a
 * Map probe per trace, and eviction a second probe (docs/performance.md, phase AO).
 */
export class TraceTable {
  private words: Int32Array;
  private traces: (TraceEntry | undefined)[];
  private count = 0;
  private readonly minPlaces: number;
  /** The last id lookup() did not find, and the free place it stopped at. */
  private missAt = -1;
  private miss0 = 0;
  private miss1 = 0;
  private miss2 = 0;
  private miss3 = 0;

  /**
   * places: a power of two, the places it starts with and never goes below (it doubles them when
   * half full and halves them when an eighth full). Small: the store keeps a table for each tenant
   * with spans stored, and 1,024 places (24 KiB) each held ten times a many-tenant store's maxBytes.
   */
  constructor(places = 16) {
    this.minPlaces = places;
    this.words = new Int32Array(4 * places);
    this.traces = new Array<TraceEntry | undefined>(places).fill(undefined);
  }

  get size(): number {
    return this.count;
  }

  /** The trace whose id is the 16 bytes at buf[at, at + 16). */
  find(buf: Buffer, at: number): TraceEntry | undefined {
    return this.lookup(buf.readInt32LE(at), buf.readInt32LE(at + 4), buf.readInt32LE(at + 8), buf.readInt32LE(at + 12));
  }

  /** The trace whose id is this lowercase hex (a read's). */
  get(hex: string): TraceEntry | undefined {
    if (!isTraceIdHex(hex)) return undefined;
    const b = Buffer.from(hex, 'hex');
    return this.find(b, 0);
  }

  /** Adds trace t under the id the last find() or get() did not find; nothing may be added or deleted in between. */
  addMissed(t: TraceEntry): void {
    if (2 * (this.count + 1) > this.traces.length) {
      this.resize(this.traces.length * 2);
      this.put(this.miss0, this.miss1, this.miss2, this.miss3, t);
      return;
    }
    this.place(this.missAt, this.miss0, this.miss1, this.miss2, this.miss3, t);
  }

  /** Removes trace t (which is here). */
  delete(t: TraceEntry): void {
    const words = this.words;
    const traces = this.traces;
    const mask = traces.length - 1;
    let i = t.slot;
    this.count--;
    // Move back each later trace of the run whose home is not between the freed place and it.
    for (let j = (i + 1) & mask; traces[j] !== undefined; j = (j + 1) & mask) {
      if (staysPut(i, j, traceHome(words[4 * j]!, words[4 * j + 1]!, words[4 * j + 2]!, words[4 * j + 3]!) & mask)) continue;
      words.copyWithin(4 * i, 4 * j, 4 * j + 4);
      const moved = traces[j]!;
      traces[i] = moved;
      moved.slot = i;
      i = j;
    }
    traces[i] = undefined;
    if (8 * this.count < traces.length && traces.length > this.minPlaces) this.resize(traces.length / 2);
  }

  /** Every trace, in no particular order. */
  *values(): IterableIterator<TraceEntry> {
    for (const t of this.traces) if (t !== undefined) yield t;
  }

  /** The trace with this id; when there is none, the id and the free place that ends its probe run are kept for addMissed(). */
  private lookup(w0: number, w1: number, w2: number, w3: number): TraceEntry | undefined {
    const words = this.words;
    const traces = this.traces;
    const mask = traces.length - 1;
    for (let i = traceHome(w0, w1, w2, w3) & mask; ; i = (i + 1) & mask) {
      const t = traces[i];
      if (t === undefined) {
        this.missAt = i;
        this.miss0 = w0;
        this.miss1 = w1;
        this.miss2 = w2;
        this.miss3 = w3;
        return undefined;
      }
      const k = 4 * i;
      if (words[k] === w0 && words[k + 1] === w1 && words[k + 2] === w2 && words[k + 3] === w3) return t;
    }
  }

  private put(w0: number, w1: number, w2: number, w3: number, t: TraceEntry): void {
    const traces = this.traces;
    const mask = traces.length - 1;
    let i = traceHome(w0, w1, w2, w3) & mask;
    while (traces[i] !== undefined) i = (i + 1) & mask;
    this.place(i, w0, w1, w2, w3, t);
  }

  private place(i: number, w0: number, w1: number, w2: number, w3: number, t: TraceEntry): void {
    const words = this.words;
    const traces = this.traces;
    const k = 4 * i;
    words[k] = w0;
    words[k + 1] = w1;
    words[k + 2] = w2;
    words[k + 3] = w3;
    traces[i] = t;
    t.slot = i;
    this.count++;
  }

  private resize(places: number): void {
    const words = this.words;
    const traces = this.traces;
    this.words = new Int32Array(4 * places);
    this.traces = new Array<TraceEntry | undefined>(places).fill(undefined);
    this.count = 0;
    for (let i = 0; i < traces.length; i++) {
      const t = traces[i];
      if (t !== undefined) this.put(words[4 * i]!, words[4 * i + 1]!, words[4 * i + 2]!, words[4 * i + 3]!, t);
    }
  }
}
