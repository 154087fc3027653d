// Scenario: the storage backends behind the collector. The same maximum-rate OTLP/gRPC load as
// ingest-max, against a collector writing to SQLite (a file), PostgreSQL (when a server is at
// hand) and ClickHouse (chdb's embedded engine, when the package loads). Baselines from the same
// run: the null receiver and the collector on the memory backend.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chartMemoryLimitBytes, memoryGroup, type MemoryGroup } from './cgroup.ts';
import type { BenchContext } from './context.ts';
import { medianRun } from './ingest-max.ts';
import { runIngest, type IngestFigures } from './ingest.ts';
import { defaultSpec } from './traffic.ts';

export interface BackendRun {
  backend: string;
  /** Absent when the backend could not be run; note says why. */
  figures?: IngestFigures;
  note?: string;
  /** The memory cgroup limit the collector ran under, if any. */
  memoryLimitBytes?: number;
  /**
   * Every repetition, in the order run, when the backend ran more than once (the judged SQLite
   * run: ctx.repetitions runs, each on a new file); figures is then the run with the median CPU.
   */
  repetitions?: IngestFigures[];
}

/** How a backend run differs from the plain one: current timestamps, or inside a memory cgroup. */
interface RunHow {
  currentTimes?: boolean;
  group?: MemoryGroup;
}

export interface BackendsFigures {
  runs: BackendRun[];
}

export interface BackendTargets {
  /** postgres:// URL of an empty database, or why there is none. */
  postgres: { url: string } | { skip: string };
  clickhouse: { enabled: true } | { skip: string };
}

/** The label of the memory store's run with delivery.ack = durable (its default is queued). */
export const MEMORY_DURABLE = 'memory, ack = durable';
/**
 * The label of the SQLite run whose requests carry current times (the traffic's times moved to
 * the moment of each send). The SQLite run proper replays the traffic's times, which sends its two
 * time indexes inserts all over their range; a deployment's exporters send spans that just ended.
 */
export const SQLITE_CURRENT_TIMES = 'sqlite, current timestamps';
/**
 * The label of the SQLite run inside a memory cgroup of the chart's limit (bench/cgroup.ts): the
 * kernel reclaims the store file's page cache at the limit, as in a deployment, instead of taking
 * this machine's idle memory for each new page of the file.
 */
export const SQLITE_CHART_LIMIT = 'sqlite, chart memory limit';

/** Max-rate gRPC traces into each available backend. */
export async function run(ctx: BenchContext, targets: BackendTargets): Promise<BackendsFigures> {
  const runs: BackendRun[] = [];
  const common = {
    transport: 'grpc' as const,
    signal: 'traces' as const,
    traffic: defaultSpec('traces'),
    cacheDir: ctx.cacheDir,
    durationMs: ctx.durationMs,
    mode: { kind: 'max', concurrency: ctx.concurrency } as const,
    connections: ctx.connections,
  };
  const measure = async (backend: string, options: Record<string, string>, label: string, how: RunHow): Promise<IngestFigures> => {
    const target = { kind: 'collector', nodeArgs: how.group?.nodeArgs ?? [], options: { 'storage.backend': backend, ...options } } as const;
    const figures = await runIngest({ ...common, currentTimes: how.currentTimes === true, name: `collector (${label}), grpc, traces`, target });
    // The tables name a run by its figures' backend: the label, which says how this run differs.
    return { ...figures, backend: label };
  };
  const failed = (label: string, err: unknown): BackendRun => ({ backend: label, note: `failed: ${(err as Error).message.split('\n').slice(0, 6).join(' ').slice(0, 600)}` });
  const attempt = async (backend: string, options: Record<string, string>, label = backend, how: RunHow = {}): Promise<void> => {
    ctx.log(`backend ${label}: collector at max rate`);
    try {
      runs.push({ backend: label, figures: await measure(backend, options, label, how), ...(how.group ? { memoryLimitBytes: how.group.limitBytes } : {}) });
    } catch (err) {
      runs.push(failed(label, err));
    }
  };
  // The SQLite target's run: the targets are medians of 3. Each repetition writes a new
  // file (the store's CPU per span grows with its file), removed after it to spare the disk.
  const repeatedSqlite = async (dir: string): Promise<void> => {
    const reps: IngestFigures[] = [];
    try {
      for (let rep = 1; rep <= ctx.repetitions; rep++) {
        ctx.log(`backend sqlite: collector at max rate (${rep}/${ctx.repetitions})`);
        const sub = join(dir, `sqlite-${rep}`);
        mkdirSync(sub);
        reps.push(await measure('sqlite', { 'storage.sqlite.path': join(sub, 'bench.db') }, 'sqlite', {}));
        rmSync(sub, { recursive: true, force: true });
      }
    } catch (err) {
      runs.push(failed('sqlite', err));
      return;
    }
    runs.push({ backend: 'sqlite', figures: medianRun(reps, (r) => r.cpuSecondsPerMillionItems), ...(reps.length > 1 ? { repetitions: reps } : {}) });
  };

  const dir = mkdtempSync(join(ctx.outDir, 'db-'));
  try {
    // The memory store acknowledges once queued by default; what the write-ahead log adds to it.
    await attempt('memory', { 'delivery.ack': 'durable' }, MEMORY_DURABLE);
    await repeatedSqlite(dir);
    await attempt('sqlite', { 'storage.sqlite.path': join(dir, 'current.db') }, SQLITE_CURRENT_TIMES, { currentTimes: true });
    const group = memoryGroup(`tracehouse-bench-${process.pid}`, chartMemoryLimitBytes());
    if ('skip' in group) runs.push({ backend: SQLITE_CHART_LIMIT, note: group.skip });
    else {
      try {
        await attempt('sqlite', { 'storage.sqlite.path': join(dir, 'limited.db') }, SQLITE_CHART_LIMIT, { group });
      } finally {
        try {
          group.remove();
        } catch (err) {
          ctx.log(`the memory cgroup of ${SQLITE_CHART_LIMIT} was left: ${(err as Error).message}`);
        }
      }
    }
    if ('url' in targets.postgres) await attempt('postgres', { 'storage.postgres.url': targets.postgres.url });
    else runs.push({ backend: 'postgres', note: targets.postgres.skip });
    if ('enabled' in targets.clickhouse) await attempt('clickhouse', { 'storage.clickhouse.urls': `chdb://${join(dir, 'chdb')}` });
    else runs.push({ backend: 'clickhouse', note: targets.clickhouse.skip });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { runs };
}
