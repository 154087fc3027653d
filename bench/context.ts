// What every scenario is given by bench/run.ts (or by a test): durations, load shape, where
// files go, and a progress log.
import { join } from 'node:path';
import { REPO_DIR } from './harness.ts';
import { DEFAULT_CACHE_DIR } from './ingest.ts';

export interface BenchContext {
  quick: boolean;
  /** Load window of one max-rate or fixed-rate run, ms. */
  durationMs: number;
  /** Load window of the overload run, ms. */
  overloadDurationMs: number;
  /** Max-rate runs alternate receiver and baseline this many times; the median of each is reported (issue #10 asks for the median of 3: a best-of hides how much runs on a shared host vary). */
  repetitions: number;
  /** Requests in flight in closed-loop runs. */
  concurrency: number;
  /** gRPC connections the load generator spreads its requests over. */
  connections: number;
  /** Built requests, shared by every process. */
  cacheDir: string;
  /** Raw results, profiles, temporary databases. */
  outDir: string;
  log(msg: string): void;
}

/** The settings of a full run, or of `--quick`. */
export function defaultContext(quick: boolean, log: (msg: string) => void = () => {}): BenchContext {
  return {
    quick,
    durationMs: quick ? 2_500 : 12_000,
    overloadDurationMs: quick ? 8_000 : 60_000,
    repetitions: quick ? 1 : 3,
    concurrency: 8,
    connections: 2,
    cacheDir: DEFAULT_CACHE_DIR,
    outDir: join(REPO_DIR, 'bench', 'out'),
    log,
  };
}
