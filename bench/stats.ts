// Small statistics helpers shared by the scenarios.

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** The fastest, lower-quartile and median of per-round costs, to three significant digits (the in-process pair benchmarks' summary). */
export function roundSummary(perRound: readonly number[]): { fastest: number; lowerQuartile: number; median: number } {
  const sorted = [...perRound].sort((a, b) => a - b);
  const at = (p: number) => Number(percentile(sorted, p).toPrecision(3));
  return { fastest: at(0), lowerQuartile: at(25), median: at(50) };
}

/** Count, mean, p50, p90, p99 and max of latencies in milliseconds. */
export function latencySummary(values: Float64Array): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    meanMs: sorted.length ? sum / sorted.length : NaN,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
  };
}

/** The median of a few numbers. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The arithmetic mean. */
export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Three significant figures, as the comparison scripts print their figures. */
export function sig3(x: number): number {
  return Number(x.toPrecision(3));
}

/**
 * The sides of pair (or run) number `pair` in the order they run: as given for even pairs,
 * reversed for odd ones, so that a host speeding up or slowing down favours no side every time.
 */
export function inAlternatingOrder<T>(pair: number, sides: readonly T[]): readonly T[] {
  return pair % 2 === 0 ? sides : [...sides].reverse();
}
