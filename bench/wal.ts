// Scenario: the write-ahead log under concurrent appenders (8 by default) of 64 KiB entries (what `durable`
// acknowledgement costs per request), against two baselines in the same run on the same disk:
// - write-only: the same bytes appended with no fsync at all (what `queued` risks: the ceiling);
// - fsync-each: every append does its own write + fdatasync (durability without group commit).
// The WAL should land near write-only in appends/s while doing far fewer fsyncs than appends.
//
//   node bench/wal.ts [--seconds=N] [--entry-bytes=N] [--appenders=N] [--dir=/path/on/the/disk/to/measure]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WriteAheadLog } from '../src/pipeline/wal/index.ts';
import { latencySummary, type LatencySummary } from './stats.ts';

const DEFAULT_APPENDERS = 8;
const DEFAULT_ENTRY_BYTES = 64 * 1024;

interface Figures {
  appends: number;
  appendsPerS: number;
  fsyncsPerS: number;
  mibPerS: number;
  latency: LatencySummary;
}

/** Runs `append` from `appenders` loops for `ms`, timing each call. */
async function drive(ms: number, entryBytes: number, appenders: number, append: () => Promise<void>, fsyncs: () => number): Promise<Figures> {
  const lat: number[] = [];
  const f0 = fsyncs();
  const t0 = performance.now();
  const end = t0 + ms;
  await Promise.all(
    Array.from({ length: appenders }, async () => {
      while (performance.now() < end) {
        const a = performance.now();
        await append();
        lat.push(performance.now() - a);
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  return {
    appends: lat.length,
    appendsPerS: Math.round(lat.length / s),
    fsyncsPerS: Math.round((fsyncs() - f0) / s),
    mibPerS: Math.round(((lat.length * entryBytes) / s / 1048576) * 10) / 10,
    latency: latencySummary(Float64Array.from(lat)),
  };
}

/** Runs the scenario and returns its figures. */
export async function run(opts: { seconds?: number; dir?: string; entryBytes?: number; appenders?: number } = {}) {
  const appenders = opts.appenders ?? DEFAULT_APPENDERS;
  const ms = (opts.seconds ?? 3) * 1000;
  const entryBytes = opts.entryBytes ?? DEFAULT_ENTRY_BYTES;
  const dir = mkdtempSync(join(opts.dir ?? tmpdir(), 'tracehouse-bench-wal-'));
  const data = new Uint8Array(randomBytes(entryBytes));
  try {
    const wal = new WriteAheadLog({ dir: join(dir, 'wal'), maxBytes: 64 * 1024 ** 3, segmentBytes: 64 * 1024 ** 2 });
    await wal.start();
    const walFigures = await drive(ms, entryBytes, appenders, async () => void (await wal.append('traces', [{ partition: 0, rows: 100, data }])), () => wal.stats.fsyncs);
    await wal.shutdown();

    const plain = await open(join(dir, 'write-only'), 'a');
    const writeOnly = await drive(ms, entryBytes, appenders, async () => void (await plain.write(data)), () => 0);
    await plain.close();

    const synced = await open(join(dir, 'fsync-each'), 'a');
    let syncs = 0;
    const fsyncEach = await drive(
      ms,
      entryBytes,
      appenders,
      async () => {
        await synced.write(data);
        await synced.datasync();
        syncs++;
      },
      () => syncs,
    );
    await synced.close();

    return {
      scenario: 'wal-append',
      appenders,
      entryBytes,
      seconds: ms / 1000,
      wal: walFigures,
      writeOnly,
      fsyncEach,
      walVsWriteOnly: Math.round((walFigures.appendsPerS / writeOnly.appendsPerS) * 100) / 100,
      walVsFsyncEach: Math.round((walFigures.appendsPerS / fsyncEach.appendsPerS) * 100) / 100,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const seconds = arg('seconds');
  const dir = arg('dir');
  const entryBytes = arg('entry-bytes');
  const appenders = arg('appenders');
  console.log(JSON.stringify(await run({ ...(seconds ? { seconds: Number(seconds) } : {}), ...(dir ? { dir } : {}), ...(entryBytes ? { entryBytes: Number(entryBytes) } : {}), ...(appenders ? { appenders: Number(appenders) } : {}) }), null, 2));
}
