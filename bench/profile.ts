// Scenario: where the collector's CPU goes. The max-rate OTLP/gRPC → memory run again, with the
// collector under `node --cpu-prof` (one profile per thread: main and each decode worker), cut to
// the measured window and summarized as the functions with the most self time. The profiler's
// own overhead makes this run's rates unfit for comparison; the baseline for its CPU figure is
// the unprofiled run of the same scenario.
import { mkdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { BenchContext } from './context.ts';
import { summarizeProfiles, type ProfileSummary } from './cpuprofile.ts';
import { REPO_DIR } from './harness.ts';
import { runIngest, type IngestFigures } from './ingest.ts';
import { defaultSpec } from './traffic.ts';

export interface ProfileFigures {
  /** Where the .cpuprofile files are (open them in Chrome DevTools or speedscope). */
  dir: string;
  run: IngestFigures;
  summary: ProfileSummary;
}

/** Profiles the collector under max-rate gRPC traces into the memory backend. */
export async function run(ctx: BenchContext, o: { topN?: number } = {}): Promise<ProfileFigures> {
  const dir = join(ctx.outDir, ctx.quick ? 'profile-quick' : 'profile');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  ctx.log('profile: collector (memory) under node --cpu-prof, max rate gRPC traces');
  const figures = await runIngest({
    name: 'collector (memory), grpc, traces, under --cpu-prof',
    transport: 'grpc',
    signal: 'traces',
    traffic: defaultSpec('traces'),
    cacheDir: ctx.cacheDir,
    durationMs: ctx.durationMs,
    mode: { kind: 'max', concurrency: ctx.concurrency },
    connections: ctx.connections,
    target: { kind: 'collector', options: { 'storage.backend': 'memory' }, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] },
  });
  // The profiles are written as the process exits, which runIngest has waited for.
  const summary = summarizeProfiles([dir], o.topN ?? 10, figures.windowUs);
  return { dir: relative(REPO_DIR, dir), run: figures, summary };
}
