// The tracehouse command line run as a user runs it (node src/cli.ts, no config file from the
// environment), and what it left in a SQLite file.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { DatabaseSync } from 'node:sqlite';
import { tableStats } from '../../src/storage/sqlite/reads.ts';

export const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

/** Runs `tracehouse ARGS` to its end, in cwd, with input on its stdin and env added to the environment. */
export function runCli(args: string[], o: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 256 << 20,
    ...(o.cwd === undefined ? {} : { cwd: o.cwd }),
    ...(o.input === undefined ? {} : { input: o.input }),
    env: { ...process.env, TRACEHOUSE_CONFIG: '', ...o.env },
  });
}

/** Spans or log records a SQLite file holds, as the store's metrics count them. */
export function sqliteCount(db: string, table: 'spans' | 'logs'): number {
  const d = new DatabaseSync(db);
  try {
    return tableStats(d)[table];
  } finally {
    d.close();
  }
}
