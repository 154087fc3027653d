// `npm run bench [-- --quick]`: runs every scenario with its baseline, writes the raw figures to
// bench/out/ and the report to docs/benchmarks.md (a --quick smoke run writes its report to
// bench/out/ instead, so it never replaces the full figures).
//
//   --quick                 short runs, no external storage benchmarks (about 2 minutes)
//   --duration=SECONDS      load window of each max-rate and fixed-rate run
//   --overload-duration=S   load window of the overload run
//   --only=a,b              scenarios to run: decode,max,rate,backends,overload,profile,storage,memory
//                           (max: gRPC/HTTP traces and gRPC logs with the standard traffic, then gRPC
//                           traces in 100-span requests; memory: bench/memory-store.ts, the memory
//                           store kept full, in a child process with --expose-gc)
//   --profile               profile the collector even when the targets are met
//   --docs=PATH             where to write the report
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import * as backends from './backends.ts';
import { defaultContext, type BenchContext } from './context.ts';
import * as decode from './decode.ts';
import { cliFlag, REPO_DIR } from './harness.ts';
import * as ingestMax from './ingest-max.ts';
import * as ingestRate from './ingest-rate.ts';
import * as overload from './overload.ts';
import * as profile from './profile.ts';
import { grpcTracesMisses, isStandard, renderReport, TARGETS, type BenchResults, type MemoryStoreResult } from './report.ts';
import * as storage from './storage.ts';
import { defaultSpec, loadTraffic, trafficSummary } from './traffic.ts';

const SCENARIOS = ['decode', 'max', 'rate', 'backends', 'overload', 'profile', 'storage', 'memory'] as const;

function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg(),
    loadAverageAtEnd: [] as number[],
  };
}

async function postgresTarget(ctx: BenchContext): Promise<{ target: backends.BackendTargets['postgres']; stop: () => Promise<void> }> {
  const none = async () => {};
  const external = process.env['TRACEHOUSE_BENCH_POSTGRES_URL'];
  try {
    const { createTestDatabase, startEmbeddedPostgres } = await import('../test/helpers/postgres.ts');
    if (external) return { target: { url: await createTestDatabase('bench_collector', external) }, stop: none };
    if (ctx.quick) return { target: { skip: 'not run in --quick without TRACEHOUSE_BENCH_POSTGRES_URL (an embedded server takes too long to start)' }, stop: none };
    ctx.log('starting an embedded PostgreSQL (durable settings) for the collector');
    const server = await startEmbeddedPostgres({ fast: false });
    return { target: { url: await createTestDatabase('bench_collector', server.url) }, stop: () => server.destroy() };
  } catch (err) {
    return { target: { skip: `no PostgreSQL: ${(err as Error).message.split('\n')[0]!.slice(0, 300)}` }, stop: none };
  }
}

function clickhouseTarget(ctx: BenchContext): backends.BackendTargets['clickhouse'] {
  if (!existsSync(join(REPO_DIR, 'src/storage/clickhouse/index.ts'))) return { skip: 'src/storage/clickhouse/index.ts not present' };
  try {
    createRequire(import.meta.url).resolve('chdb');
  } catch {
    return { skip: 'the optional chdb package is not installed' };
  }
  if (ctx.quick) return { skip: 'not run in --quick' };
  return { enabled: true };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const started = new Date();
  const t0 = performance.now();
  const log = (msg: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
  const ctx = defaultContext(quick, log);
  const duration = cliFlag('duration');
  if (duration) ctx.durationMs = Number(duration) * 1000;
  const overloadDuration = cliFlag('overload-duration');
  if (overloadDuration) ctx.overloadDurationMs = Number(overloadDuration) * 1000;
  const only = new Set(cliFlag('only')?.split(',') ?? SCENARIOS);
  for (const s of only) if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s} (${SCENARIOS.join(', ')})`);
  mkdirSync(ctx.outDir, { recursive: true });

  const npm = process.env['npm_lifecycle_event'] === 'bench';
  const extra = process.argv.slice(2).join(' ');
  const results: BenchResults = {
    version: 1,
    startedAt: started.toISOString(),
    finishedAt: '',
    wallS: 0,
    command: npm ? `npm run bench${extra ? ` -- ${extra}` : ''}` : `node bench/run.ts${extra ? ` ${extra}` : ''}`,
    quick,
    machine: machine(),
    settings: { durationMs: ctx.durationMs, overloadDurationMs: ctx.overloadDurationMs, repetitions: ctx.repetitions, concurrency: ctx.concurrency, connections: ctx.connections },
    traffic: {
      spec: { traces: defaultSpec('traces'), logs: defaultSpec('logs') },
      traces: trafficSummary(loadTraffic(defaultSpec('traces'), ctx.cacheDir)),
      logs: trafficSummary(loadTraffic(defaultSpec('logs'), ctx.cacheDir)),
    },
    targets: TARGETS,
    maxRate: [],
    fixedRate: [],
    storage: [],
    skipped: [],
    errors: [],
  };

  const attempt = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      log(`${name} failed: ${(err as Error).message}`);
      results.errors.push({ scenario: name, message: (err as Error).stack?.slice(0, 2000) ?? String(err) });
      return undefined;
    }
  };

  if (only.has('decode')) {
    log('decode: ours vs protobufjs reflection, one thread');
    results.decode = await attempt('decode', () => decode.run({ quick, cacheDir: ctx.cacheDir }));
  }
  if (only.has('max')) {
    // The standard traffic on each transport and signal, then gRPC traces in small requests (100 spans each).
    const runs = [['grpc', 'traces', 'standard'], ['http', 'traces', 'standard'], ['grpc', 'logs', 'standard'], ['grpc', 'traces', 'small']] as const;
    for (const [transport, signal, requests] of runs) {
      const r = await attempt(`max ${transport} ${signal}${requests === 'small' ? ' small requests' : ''}`, () => ingestMax.run(ctx, { transport, signal, requests }));
      if (r) results.maxRate.push(r);
    }
  }
  const grpcTraces = results.maxRate.find((m) => m.transport === 'grpc' && m.signal === 'traces' && isStandard(m));
  if (only.has('rate')) {
    if (grpcTraces) {
      const shares = quick ? [0.5] : [0.25, 0.5];
      const r = await attempt('fixed rate', () => ingestRate.run(ctx, { transport: 'grpc', signal: 'traces', maxRate: grpcTraces.collector.acceptedItemsPerS, shares }));
      if (r) results.fixedRate = r;
    } else results.skipped.push('fixed rates: they are fractions of the gRPC max rate, which was not measured');
  }
  if (only.has('backends')) {
    const pg = await postgresTarget(ctx);
    try {
      results.backends = await attempt('backends', () => backends.run(ctx, { postgres: pg.target, clickhouse: clickhouseTarget(ctx) }));
    } finally {
      await pg.stop().catch(() => undefined);
    }
  }
  if (only.has('overload')) {
    const sqlite = results.backends?.runs.find((r) => r.backend === 'sqlite')?.figures;
    const max = sqlite ? { maxRate: sqlite.acceptedItemsPerS, maxRateSource: 'collector (sqlite) accepted spans/s at max rate, this run', baselinePeakRssBytes: sqlite.peakRssBytes } : grpcTraces ? { maxRate: grpcTraces.collector.acceptedItemsPerS, maxRateSource: 'collector (memory) accepted spans/s at max rate, this run', baselinePeakRssBytes: null } : undefined;
    if (max) results.overload = await attempt('overload', () => overload.run(ctx, max));
    else results.skipped.push('overload: no max rate measured to double');
  }
  const misses = grpcTraces ? grpcTracesMisses(grpcTraces) : { cpu: false, ratio: false };
  if (only.has('profile') && (misses.cpu || misses.ratio || process.argv.includes('--profile'))) {
    results.profile = await attempt('profile', () => profile.run(ctx));
  } else if (only.has('profile')) results.skipped.push('profile: both targets met (use --profile to profile anyway)');
  if (only.has('storage')) {
    if (quick) results.skipped.push('storage adapter benchmarks (bench/postgres.ts, bench/clickhouse.ts): not run in --quick');
    else results.storage = await storage.run(ctx, {});
  }
  if (only.has('memory')) {
    // Its own process: the figure is that process's RSS against its RSS at rest, and it needs gc().
    const opts = quick ? { maxMiB: 128, spans: 300_000 } : { maxMiB: 256, spans: 600_000 };
    const r = await storage.runOne(ctx, 'Memory store kept full', 'bench/memory-store.ts', opts, quick ? 180_000 : 600_000, ['--expose-gc']);
    results.memoryStore = r as MemoryStoreResult;
    if (r.figures === undefined) results.errors.push({ scenario: 'memory', message: r.note ?? 'bench/memory-store.ts returned no figures' });
  }

  results.machine.loadAverageAtEnd = os.loadavg();
  results.finishedAt = new Date().toISOString();
  results.wallS = (performance.now() - t0) / 1000;
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const json = JSON.stringify(results, null, 2);
  const rawPath = join(ctx.outDir, `bench-${quick ? 'quick-' : ''}${stamp}.json`);
  writeFileSync(rawPath, json);
  writeFileSync(join(ctx.outDir, quick ? 'latest-quick.json' : 'latest.json'), json);
  const docs = cliFlag('docs') ?? (quick ? join(ctx.outDir, 'benchmarks-quick.md') : join(REPO_DIR, 'docs', 'benchmarks.md'));
  mkdirSync(join(docs, '..'), { recursive: true });
  writeFileSync(docs, renderReport(results, relative(REPO_DIR, rawPath)));
  log(`wrote ${relative(REPO_DIR, rawPath)} and ${relative(REPO_DIR, docs)} in ${results.wallS.toFixed(0)} s`);
}

main().then(
  // Child processes are gone by now; exit without waiting for anything a benchmark module left open.
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
