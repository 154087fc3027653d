// An open-addressed set of two-word ids, shared by the memory and SQLite stores' checks for
// spans stored before.
import { randomBytes } from 'node:crypto';

/**
 * A set of ids of two int32 words each (a span id; or a word and 0): open addressing with linear
 * probing in an Int32Array at most half full, a delete shifting the probe run back (no
 * tombstones). The id of two zero words, which marks a free place, is a flag. No object per id:
 * the stores keep a trace's span ids in one (the memory store's traces past IDS_SET_FROM spans,
 * SQLite's RecentTraces for traces past its ring's length), where a Set of strings cost the
 * memory store's write ~3x per span for traces of 100 spans (docs/performance.md, phase AN).
 */
export class IdSet {
  /** Two int32s per place. */
  private slots: Int32Array;
  private size = 0;
  private zero = false;

  /** places: a power of two, the places it starts with (it doubles them when half full). */
  constructor(places: number) {
    this.slots = new Int32Array(2 * places);
  }

  /** Int32s it takes. */
  get ints(): number {
    return this.slots.length;
  }

  has(id0: number, id1: number): boolean {
    if ((id0 | id1) === 0) return this.zero;
    return this.find(id0, id1) >= 0;
  }

  add(id0: number, id1: number): void {
    if ((id0 | id1) === 0) {
      this.zero = true;
      return;
    }
    if (4 * (this.size + 1) > this.slots.length) {
      const old = this.slots;
      this.slots = new Int32Array(old.length * 2);
      this.size = 0;
      for (let i = 0; i < old.length; i += 2) if ((old[i]! | old[i + 1]!) !== 0) this.put(old[i]!, old[i + 1]!);
    }
    if (this.find(id0, id1) < 0) this.put(id0, id1);
  }

  delete(id0: number, id1: number): void {
    if ((id0 | id1) === 0) {
      this.zero = false;
      return;
    }
    let i = this.find(id0, id1);
    if (i < 0) return;
    this.size--;
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    // Move back each later entry of the run whose home is not between the freed place and it.
    for (let j = (i + 1) & mask; (slots[2 * j]! | slots[2 * j + 1]!) !== 0; j = (j + 1) & mask) {
      if (staysPut(i, j, idHome(slots[2 * j]!, slots[2 * j + 1]!) & mask)) continue;
      slots[2 * i] = slots[2 * j]!;
      slots[2 * i + 1] = slots[2 * j + 1]!;
      i = j;
    }
    slots[2 * i] = 0;
    slots[2 * i + 1] = 0;
  }

  /** The place holding the id, or -1. */
  private find(id0: number, id1: number): number {
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    for (let i = idHome(id0, id1) & mask; ; i = (i + 1) & mask) {
      const a = slots[2 * i]!;
      const b = slots[2 * i + 1]!;
      if (a === id0 && b === id1) return i;
      if ((a | b) === 0) return -1;
    }
  }

  private put(id0: number, id1: number): void {
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    let i = idHome(id0, id1) & mask;
    while ((slots[2 * i]! | slots[2 * i + 1]!) !== 0) i = (i + 1) & mask;
    slots[2 * i] = id0;
    slots[2 * i + 1] = id1;
    this.size++;
  }
}

/**
 * Whether, once place `freed` of a linear-probing table is emptied, the entry at place `at` of the
 * same probe run stays put: its home lies after the freed place and at or before its own (the run
 * may wrap around the table's end). Otherwise it moves back into the freed place.
 */
export function staysPut(freed: number, at: number, home: number): boolean {
  return freed <= at ? freed < home && home <= at : freed < home || home <= at;
}

/**
 * The key of this process's id mixes (idHome, traceHome). Ids are the
 * client's: under a fixed mix of their words, one word chosen from the others puts every id in
 * one place, and each add then probes the whole run (a few requests of such ids held the main
 * thread for seconds, growing with the square of the ids). Keyed, and each word mixed into what
 * the key made of the words before it, the places are not known outside the process.
 */
export const ID_MIX_KEY = randomBytes(4).readInt32LE(0);

/** An id's place before masking: its words mixed under ID_MIX_KEY. */
export function idHome(id0: number, id1: number): number {
  let h = Math.imul(ID_MIX_KEY ^ id0, 0xcc9e2d51);
  h = Math.imul(h ^ (h >>> 15) ^ id1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * A trace id's place before masking (the memory store's trace table, SQLite's recent traces): its
 * four words mixed under ID_MIX_KEY, each into what the words before it made (SDKs' ids are
 * random, but a client's may be crafted: under a fixed mix, one word chosen from the others put
 * every trace in one place).
 */
export function traceHome(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(ID_MIX_KEY ^ w0, 0xcc9e2d51);
  h = Math.imul(h ^ (h >>> 15) ^ w1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ w2, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ w3, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 15), 0x9e3779b1);
  return h ^ (h >>> 16);
}
