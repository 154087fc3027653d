// An array consumed from the front, as the memory store's rows are (oldest evicted first): shift()
// moves a head index instead of moving the array, and the dead prefix is dropped once it
// dominates, so memory stays proportional to what is live.

export class Queue<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined as never;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** The item at position i from the oldest (0), undefined past the newest. */
  at(i: number): T | undefined {
    return i < 0 ? undefined : this.items[this.head + i];
  }

  /** The oldest item. */
  first(): T | undefined {
    return this.at(0);
  }

  /** The newest item. */
  last(): T | undefined {
    return this.at(this.length - 1);
  }

  /** Position of the first item for which `before` is false, where `before` holds for a prefix of the queue (binary search); length when it holds for all. */
  search(before: (item: T) => boolean): number {
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.items[mid]!)) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.head;
  }

  /** The items from position i to the newest. */
  *from(i: number): Generator<T> {
    for (let k = this.head + Math.max(0, i); k < this.items.length; k++) yield this.items[k]!;
  }
}
