// Scenario: the SQLite store's write as its file grows. The store's indexes take inserts all over
// their pages (a trace id is random; the bench traffic's spans start up to a minute apart, so
// the time indexes' newest pages are as scattered), so the pages one commit touches grow with the
// file until each insert has a page of its own. When they outgrow the write connection's page
// cache, every commit spills dirty pages to the WAL early, dirties them again, and reads them back
// from the file: bytes written and read per span, and CPU with them, grow with the file.
//
// The same spans (the bench traffic, times moved to the moment of writing as exporters send
// them, a fresh trace id space per round) are written through the store's write path
// (SqliteStore.writeSpans, batches of 10,000 as the writer sends them) into two files: one with
// the write connection's configured cache (storage.sqlite.cacheMiB) and the baseline with
// SQLite's own default (2 MiB, what the store used before the option), one after the other in
// this run. Each window of spans reports CPU-µs per span of the writes, and KiB written and read
// per span (/proc/self/io: write() and read() bytes, WAL, checkpoints and page reads).
// Not part of `npm run bench` (a few minutes).
//
//   node bench/sqlite-growth.ts [--spans=1500000] [--window=250000] [--cacheMiB=N]
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/index.ts';
import { loadRequestEncoder } from '../src/pipeline/transcode/registry.ts';
import { SqliteStore, openDatabase } from '../src/storage/sqlite/store.ts';
import { buildTraffic, defaultSpec, stampTimes } from './traffic.ts';
import { cliFlag } from './harness.ts';

const SPANS = Number(cliFlag('spans') ?? 1_500_000);
const WINDOW = Number(cliFlag('window') ?? 250_000);
const CONFIGURED = Number(cliFlag('cacheMiB') ?? loadConfig()['storage.sqlite.cacheMiB']);
/** SQLite's default cache_size: -2000, 2000 KiB. */
const SQLITE_DEFAULT_MIB = 2000 / 1024;
const BATCH_ROWS = 10_000;
/** Requests per round of traffic (~470 spans each); each round is built with a new seed, so new trace ids. */
const ROUND_REQUESTS = 43;

interface Window {
  spansInFile: number;
  cpuUsPerSpan: number;
  writtenKiBPerSpan: number;
  readKiBPerSpan: number;
  fileMiB: number;
}

function ioBytes(): { read: number; written: number } {
  const text = readFileSync('/proc/self/io', 'utf8');
  const field = (k: string): number => Number(new RegExp(`${k}: (\\d+)`).exec(text)![1]);
  return { read: field('rchar'), written: field('wchar') };
}

const encoder = await loadRequestEncoder({ name: 'otlp', options: {} }, { maxNestingDepth: 100 });

/** Writes SPANS spans into a new file with the given cache; one figure per WINDOW spans. */
function grow(cacheMiB: number): Window[] {
  const dir = mkdtempSync(join(tmpdir(), 'tracehouse-bench-sqlite-growth-'));
  const path = join(dir, 'growth.db');
  const db = openDatabase(path, { cacheMiB });
  const store = new SqliteStore(db);
  const out: Window[] = [];
  let clockNs = BigInt(Date.now()) * 1_000_000n;
  let written = 0;
  let inWindow = 0;
  let cpuUs = 0;
  let io0 = ioBytes();
  try {
    for (let seed = 100; written < SPANS; seed++) {
      // Encoding is the decode workers' part: built and encoded outside the measured writes.
      const chunks = buildTraffic(defaultSpec('traces', ROUND_REQUESTS, seed)).flatMap((r) => {
        clockNs += 5_000_000n;
        stampTimes(Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength), r, clockNs);
        return encoder.encode('traces', 'protobuf', r.bytes).chunks;
      });
      for (let i = 0; i < chunks.length; ) {
        const batch: Uint8Array[] = [];
        let rows = 0;
        for (; i < chunks.length && rows < BATCH_ROWS; i++) {
          batch.push(chunks[i]!.data);
          rows += chunks[i]!.rows;
        }
        const c0 = process.cpuUsage();
        if (store.writeSpans(batch).kind !== 'success') throw new Error('sqlite store write failed');
        const c = process.cpuUsage(c0);
        cpuUs += c.user + c.system;
        written += rows;
        inWindow += rows;
      }
      if (inWindow >= WINDOW) {
        const io = ioBytes();
        out.push({
          spansInFile: written,
          cpuUsPerSpan: cpuUs / inWindow,
          writtenKiBPerSpan: (io.written - io0.written) / 1024 / inWindow,
          readKiBPerSpan: (io.read - io0.read) / 1024 / inWindow,
          fileMiB: statSync(path).size / 1048576,
        });
        inWindow = 0;
        cpuUs = 0;
        io0 = ioBytes();
      }
    }
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

const baseline = grow(SQLITE_DEFAULT_MIB);
const configured = grow(CONFIGURED);
const f = (n: number): string => n.toFixed(2).padStart(6);
console.log(`SQLite store write as the file grows: ${SPANS} bench spans (times current), batches of ${BATCH_ROWS}; per window of ${WINDOW} spans`);
console.log(`spans in file | file MiB | CPU-µs/span ${CONFIGURED} MiB / 2 MiB (baseline) | KiB written/span | KiB read/span`);
for (let i = 0; i < Math.min(baseline.length, configured.length); i++) {
  const a = configured[i]!;
  const b = baseline[i]!;
  console.log(`${String(a.spansInFile).padStart(13)} | ${String(Math.round(a.fileMiB)).padStart(8)} | ${f(a.cpuUsPerSpan)} / ${f(b.cpuUsPerSpan)} | ${f(a.writtenKiBPerSpan)} / ${f(b.writtenKiBPerSpan)} | ${f(a.readKiBPerSpan)} / ${f(b.readKiBPerSpan)}`);
}
