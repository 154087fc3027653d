// The in-process store benches' side-by-side runs (bench/sqlite-split-traces.ts,
// bench/memory-trace-lengths.ts): this checkout's store and, with --base-tree=<checkout>, that
// checkout's, each run a child process of its own, the two alternating which goes first.
import { resolve } from 'node:path';
import { cliFlag, REPO_DIR } from './harness.ts';
import { inAlternatingOrder, median } from './stats.ts';

/** The layouts --layouts names (all of them by default), each checked against `all`. */
export function layoutsFlag<L extends string>(all: readonly L[]): L[] {
  const layouts = (cliFlag('layouts')?.split(',') ?? all) as L[];
  for (const l of layouts) if (!all.includes(l)) throw new Error(`--layouts takes ${all.join(', ')}, not ${l}`);
  return layouts;
}

/** The trees to run, by name: this checkout's ('this'), and --base-tree's ('base') when given. */
export function benchTrees(): [name: string, tree: string][] {
  const trees: [string, string][] = [['this', resolve(REPO_DIR)]];
  const base = cliFlag('base-tree');
  if (base !== undefined) trees.push(['base', resolve(base)]);
  return trees;
}

/**
 * Runs `measure` `runs` times for each tree, alternating which goes first, and adds each figure to
 * `results` under "<label> <tree name>".
 */
export function alternateTrees(results: Map<string, number[]>, label: string, runs: number, trees: readonly [string, string][], measure: (tree: string, name: string, run: number) => number): void {
  for (let run = 0; run < runs; run++) {
    for (const [name, tree] of inAlternatingOrder(run, trees)) {
      const key = `${label} ${name}`;
      results.set(key, [...(results.get(key) ?? []), measure(tree, name, run)]);
    }
  }
}

/** Prints each key's median and its runs, to `digits` decimals. */
export function printMedians(results: ReadonlyMap<string, readonly number[]>, digits: number): void {
  const width = Math.max(0, ...[...results.keys()].map((k) => k.length)) + 2;
  for (const [key, runs] of results) console.log(`  ${key.padEnd(width)} ${median(runs).toFixed(digits)}   (${runs.map((r) => r.toFixed(digits)).join(', ')})`);
}
