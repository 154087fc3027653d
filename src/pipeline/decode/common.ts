// What the protobuf and JSON decoders share: limits, results, per-item rejection bookkeeping and
// the normalizations both apply (duplicate attribute keys, service name).
import { getHeapStatistics } from 'node:v8';
import { resourceLimits } from 'node:worker_threads';
import type { KeyValue } from '../../model/rows.ts';

export interface DecodeLimits {
  /**
   * How many arrayValue/kvlistValue levels an AnyValue may nest. An item (span, log record) with
   * a value nested deeper is rejected; the rest of the request is kept.
   */
  maxNestingDepth: number;
  /**
   * A request's store bytes may reach this (the writer's queue budget, writer.maxQueueBytes), or
   * OUTPUT_FACTOR times the request's own bytes if more; past both it is refused as too large
   * (transcode/byte-out.ts). Absent: 256 MiB, the budget's default.
   */
  maxStoreBytes?: number;
}

/**
 * Bytes an OTLP/JSON request takes per byte of its body while it decodes: its text, JSON.parse's
 * tree and the rows made from it take 7-10 times the body at the peak (`node bench/json-memory.ts`),
 * against 1.1-1.2 times a protobuf body that is less than half as large for the same items (into
 * memory or SQLite). Ingest charges it against the queue budget until the rows are queued: charged
 * only its body, each decode worker could hold half a gigabyte for one 64 MiB JSON body, outside
 * the budget that is to bound memory. So large JSON bodies wait their turn (503 and Retry-After
 * while the queue holds others; one alone is still admitted, as reserve() does), and small ones,
 * as browsers send, pass as before. A decode worker refuses a body whose charge is more than its
 * heap's old generation (worker.ts): it would run the worker out of memory.
 */
export const JSON_DECODE_CHARGE = 8;

/**
 * Heap bytes an OTLP/JSON request's decoding takes at its peak per object or array its text opens:
 * JSON.parse makes a JS object of each `{}` and `[]` whatever its size, and the walk keeps a value
 * object of each AnyValue. Measured in a worker under a 128 MiB old generation, bodies of nothing
 * but empty objects or nested arrays (2-3 bytes each) took ~45-65 bytes of heap apiece, and a
 * kvlist of `{"key":"k","value":{}}` entries ~115 per object; this leaves room over the largest.
 * SDK-made JSON opens one object per 20 bytes or more, so for it the body's JSON_DECODE_CHARGE is
 * the larger.
 */
export const JSON_CONTAINER_CHARGE = 160;

/** The objects and arrays a JSON text opens: its '{' and '[' outside strings. */
export function jsonContainers(b: Uint8Array): number {
  let n = 0;
  const len = b.length;
  for (let i = 0; i < len; i++) {
    const c = b[i]!;
    if (c === 0x22) {
      // A string: on to its closing quote, past escaped characters.
      for (i++; i < len; i++) {
        const d = b[i]!;
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) n++;
  }
  return n;
}

/**
 * Heap an OTLP/JSON request's decoding takes at its peak, as far as it tells whether that passes
 * `limit`: JSON_DECODE_CHARGE per byte, or JSON_CONTAINER_CHARGE per object and array when that
 * is more (a body of `{},{},…` takes ~20 times its size). A body is scanned for them only when
 * they could pass the limit (at most one opens per byte), so small requests cost nothing more.
 */
export function jsonDecodeBytes(body: Uint8Array, limit: number): number {
  const flat = body.byteLength * JSON_DECODE_CHARGE;
  if (flat > limit || body.byteLength * JSON_CONTAINER_CHARGE <= limit) return flat;
  return Math.max(flat, jsonContainers(body) * JSON_CONTAINER_CHARGE);
}

/**
 * This thread's old generation, which a request's decoding (and the memory limiter's line, the read
 * API's log bound, a transfer's pages) must fit in: --max-old-space-size when given; else its V8
 * heap limit (sized by V8 from the container's memory, or by --max-heap-size) less the young
 * generation: --max-semi-space-size's when given (three semi-spaces, each rounded up to a power of
 * two), which wins over a worker's resourceLimits, else those (V8's default). A split this cannot
 * tell (--max-heap-size, or a young generation larger than the rest) gives the whole limit, as
 * before: a line too high, never one requests are refused at long before the heap is full. A decode worker's, measured in one
 * (worker.ts, pool.ts); the main thread's is the same (V8's flags are the process's).
 */
export function oldSpaceBytes(): number {
  const limit = getHeapStatistics().heap_size_limit;
  const flags = v8SizeFlags();
  if (flags.oldMb !== undefined) return Math.min(limit, flags.oldMb * 2 ** 20);
  // V8 splits --max-heap-size by rules of its own (16 MiB semi-spaces under 300 MiB, where the
  // default young generation here is 192): less that default, 300 MiB came out at 108, a line
  // the heap is over long before it is full.
  if (flags.heapMb !== undefined) return limit;
  const youngMb = flags.semiMb !== undefined ? 3 * 2 ** Math.ceil(Math.log2(flags.semiMb)) : (resourceLimits.maxYoungGenerationSizeMb ?? 0);
  const old = limit - youngMb * 2 ** 20;
  return old > 0 ? old : limit;
}

/**
 * V8's heap size flags as this process was given them, in MiB: NODE_OPTIONS first, then the
 * command line, the last of each winning (as Node applies them). A worker's execArgv are its parent's.
 */
function v8SizeFlags(): { oldMb?: number; semiMb?: number; heapMb?: number } {
  const args = [...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/), ...process.execArgv];
  const out: { oldMb?: number; semiMb?: number; heapMb?: number } = {};
  for (let i = 0; i < args.length; i++) {
    const m = /^--max[-_](old[-_]space|semi[-_]space|heap)[-_]size(?:=(.*))?$/.exec(args[i]!);
    if (!m) continue;
    const mb = Number(m[2] ?? args[i + 1]);
    if (!(mb > 0)) continue;
    if (m[1]!.startsWith('old')) out.oldMb = mb;
    else if (m[1]!.startsWith('semi')) out.semiMb = mb;
    else out.heapMb = mb;
  }
  return out;
}

export interface DecodeResult<T> {
  rows: T[];
  /** Items dropped by validation (OTLP partial success `rejected_spans` / `rejected_log_records`). */
  rejected: number;
  /** Counts per reason, e.g. "2 spans rejected: invalid trace id (1), invalid span id (1)"; '' when none. */
  errorMessage: string;
}

export const REASON_TRACE_ID = 0;
export const REASON_SPAN_ID = 1;
export const REASON_PARENT_SPAN_ID = 2;
export const REASON_LINK_ID = 3;
export const REASON_TOO_DEEP = 4;
export const REASON_TIME = 5;
const REASON_COUNT = 6;

/**
 * The latest time any backend can store: int64 nanoseconds (2262-04-11), the range of
 * PostgreSQL bigint and ClickHouse DateTime64(9). OTLP's fixed64 goes further; such items are
 * rejected rather than clamped, so nothing stored differs from what was sent.
 */
export const MAX_TIME_NS = (1n << 63n) - 1n;

/** True when a span's own and its events' times are storable. */
export function spanTimesStorable(start: bigint, end: bigint, events: readonly { timeUnixNano: bigint }[]): boolean {
  if (start > MAX_TIME_NS || end > MAX_TIME_NS) return false;
  for (let i = 0; i < events.length; i++) if (events[i].timeUnixNano > MAX_TIME_NS) return false;
  return true;
}

/** Per-request tally of rejected items by reason. */
export class Rejections {
  readonly counts = new Array<number>(REASON_COUNT).fill(0);
  total = 0;
  readonly maxNestingDepth: number;

  constructor(maxNestingDepth: number) {
    this.maxNestingDepth = maxNestingDepth;
  }

  add(reason: number, n = 1): void {
    this.counts[reason] += n;
    this.total += n;
  }

  /** The partial-success message: `${n} ${noun} rejected: reason (count), ...`, or '' when nothing was. */
  message(singular: string, plural: string): string {
    if (this.total === 0) return '';
    const labels = [
      'invalid trace id',
      'invalid span id',
      'invalid parent span id',
      'invalid link id',
      `value nested deeper than ${this.maxNestingDepth} levels`,
      'timestamp beyond 2262-04-11 (int64 nanoseconds)',
    ];
    const parts: string[] = [];
    for (let i = 0; i < REASON_COUNT; i++) if (this.counts[i] > 0) parts.push(`${labels[i]} (${this.counts[i]})`);
    return `${this.total} ${this.total === 1 ? singular : plural} rejected: ${parts.join(', ')}`;
  }
}

/**
 * Makes keys unique, keeping the last value of a duplicated key at the position of its first
 * occurrence. Returns the same array when there is nothing to drop (the common case).
 */
export function dedupeAttributes(attrs: KeyValue[]): KeyValue[] {
  const n = attrs.length;
  if (n < 2) return attrs;
  if (n <= 16) {
    // Pairwise compare beats building a Set for the short lists almost every item has.
    for (let i = 1; i < n; i++) {
      const k = attrs[i].key;
      const len = k.length;
      for (let j = 0; j < i; j++) {
        // Comparing lengths first keeps most pairs out of the string-compare builtin.
        const other = attrs[j].key;
        if (other.length === len && other === k) return rebuildUnique(attrs);
      }
    }
    return attrs;
  }
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const k = attrs[i].key;
    if (seen.has(k)) return rebuildUnique(attrs);
    seen.add(k);
  }
  return attrs;
}

function rebuildUnique(attrs: KeyValue[]): KeyValue[] {
  const index = new Map<string, number>();
  const out: KeyValue[] = [];
  for (const kv of attrs) {
    const at = index.get(kv.key);
    if (at === undefined) {
      index.set(kv.key, out.length);
      out.push(kv);
    } else {
      out[at] = kv;
    }
  }
  return out;
}

export const UNKNOWN_SERVICE = 'unknown_service';

/** The resource's `service.name` string value, or 'unknown_service'. */
export function serviceNameOf(resourceAttrs: KeyValue[]): string {
  for (let i = 0; i < resourceAttrs.length; i++) {
    const kv = resourceAttrs[i];
    if (kv.key === 'service.name') {
      const v = kv.value;
      return 'stringValue' in v ? v.stringValue : UNKNOWN_SERVICE;
    }
  }
  return UNKNOWN_SERVICE;
}

/** OTLP/JSON's rendering of a double: non-finite values as the strings proto3 JSON uses. */
export function jsonDouble(d: number): number | 'NaN' | 'Infinity' | '-Infinity' {
  if (d - d === 0) return d;
  if (d !== d) return 'NaN';
  return d > 0 ? 'Infinity' : '-Infinity';
}
