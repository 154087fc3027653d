// An array consumed from the front, as the memory store's rows are (oldest evicted first), kept as
// a list of fixed-size segments. One array of a million rows would be copied whole each time it
// grows and each time its dead prefix is dropped, into memory the kernel has to hand out afresh:
// measured under max-rate OTLP/gRPC logs, a third of the main thread's page faults came from
// those copies. Segments are allocated small, filled in order and dropped once consumed, so a
// push or shift never copies more than one segment's slots.

/** Items per segment: small enough to stay out of V8's large-object space (8 bytes a slot at most). */
const SEGMENT = 4096;

export class Queue<T> {
  /** Every segment holds SEGMENT items except the last, which holds 1 to SEGMENT. */
  private segments: (T | undefined)[][] = [];
  /** Position of the oldest item in the first segment. */
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    let last = this.segments[this.segments.length - 1];
    if (last === undefined || last.length === SEGMENT) this.segments.push((last = []));
    last.push(item);
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const first = this.segments[0]!;
    const item = first[this.head]!;
    first[this.head++] = undefined;
    this.count--;
    if (this.head === SEGMENT || this.count === 0) {
      this.segments.shift();
      this.head = 0;
    }
    return item;
  }

  /** The item at position i from the oldest (0), undefined past the newest. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    const p = this.head + i;
    return this.segments[(p / SEGMENT) | 0]![p % SEGMENT];
  }

  /** The oldest item. */
  first(): T | undefined {
    return this.at(0);
  }

  /** The newest item. */
  last(): T | undefined {
    return this.at(this.count - 1);
  }

  /** Position of the first item for which `before` is false, where `before` holds for a prefix of the queue (binary search); length when it holds for all. */
  search(before: (item: T) => boolean): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.at(mid)!)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The items from position i to the newest. */
  *from(i: number): Generator<T> {
    for (let k = Math.max(0, i); k < this.count; k++) yield this.at(k)!;
  }
}
