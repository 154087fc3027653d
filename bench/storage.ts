// The storage adapters' own benchmarks (bench/sqlite.ts, bench/transfer.ts, bench/postgres.ts, bench/clickhouse.ts, each with its
// baseline inside), run when present, each in a child process of its own (a native engine that
// crashes or keeps the process alive does not take the harness with it). A module that is
// missing or fails (chdb not installed, no PostgreSQL) is skipped with the reason.
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext } from './context.ts';
import { REPO_DIR } from './harness.ts';

export interface StorageBenchResult {
  name: string;
  file: string;
  /** The module's own figures object, as it returned it. */
  figures?: unknown;
  seconds?: number;
  note?: string;
}

interface StorageBenchModule {
  run(opts?: Record<string, unknown>): Promise<unknown>;
}

/** Runs one benchmark module's run(opts) in a child process of its own (execArgv: Node flags it needs, e.g. --expose-gc). */
export async function runOne(ctx: BenchContext, name: string, file: string, opts: Record<string, unknown>, timeoutMs: number, execArgv: string[] = []): Promise<StorageBenchResult> {
  const path = join(REPO_DIR, file);
  if (!existsSync(path)) return { name, file, note: `${file} not present` };
  ctx.log(`storage benchmark ${file}`);
  const t0 = performance.now();
  const child = fork(fileURLToPath(import.meta.url), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv, serialization: 'advanced' });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4000)));
  const answer = await new Promise<{ figures?: unknown; error?: string }>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ error: `timed out after ${timeoutMs / 1000} s` });
    }, timeoutMs);
    child.on('message', (m: { figures?: unknown; error?: string }) => {
      clearTimeout(timer);
      resolve(m);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ error: `exited (${signal ?? code}) without a result: ${stderr.trim().split('\n').slice(-3).join(' ')}` });
    });
    child.send({ path, opts });
  });
  if (child.exitCode === null) child.kill('SIGKILL');
  const seconds = (performance.now() - t0) / 1000;
  if (answer.error !== undefined) return { name, file, note: `skipped: ${answer.error.split('\n')[0]!.slice(0, 400)}`, seconds };
  return { name, file, figures: answer.figures, seconds };
}

/** Runs bench/sqlite.ts, bench/transfer.ts, bench/postgres.ts and bench/clickhouse.ts (smaller in --quick). */
export async function run(ctx: BenchContext, o: { postgresUrl?: string; skipPostgres?: string; skipClickhouse?: string }): Promise<StorageBenchResult[]> {
  const out: StorageBenchResult[] = [];
  out.push(await runOne(ctx, 'SQLite store', 'bench/sqlite.ts', ctx.quick ? { spans: 10_000 } : {}, ctx.quick ? 60_000 : 300_000));
  out.push(await runOne(ctx, 'Backup and restore, SQLite', 'bench/transfer.ts', ctx.quick ? { spans: 10_000 } : {}, ctx.quick ? 120_000 : 900_000));
  if (o.skipPostgres) out.push({ name: 'PostgreSQL adapter', file: 'bench/postgres.ts', note: o.skipPostgres });
  else {
    const opts: Record<string, unknown> = ctx.quick ? { spans: 20_000, rounds: 1 } : {};
    if (o.postgresUrl) opts['url'] = o.postgresUrl;
    out.push(await runOne(ctx, 'PostgreSQL adapter', 'bench/postgres.ts', opts, ctx.quick ? 60_000 : 600_000));
  }
  if (o.skipClickhouse) out.push({ name: 'ClickHouse adapter', file: 'bench/clickhouse.ts', note: o.skipClickhouse });
  else out.push(await runOne(ctx, 'ClickHouse adapter', 'bench/clickhouse.ts', ctx.quick ? { rows: 20_000 } : {}, ctx.quick ? 60_000 : 600_000));
  return out;
}

if (import.meta.main) {
  process.once('message', (m: { path: string; opts: Record<string, unknown> }) => {
    const done = (msg: { figures?: unknown; error?: string }) => process.send!(msg, () => process.exit(0));
    import(m.path).then(
      async (mod: Partial<StorageBenchModule>) => {
        if (typeof mod.run !== 'function') return done({ error: 'the module exports no run()' });
        done({ figures: await mod.run(m.opts) });
      },
      (err: Error) => done({ error: err.message }),
    ).catch((err: Error) => done({ error: err.message }));
  });
}
