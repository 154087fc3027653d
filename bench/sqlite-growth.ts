// Scenario: the SQLite store's write as its file grows. The store's indexes take inserts all over
// their pages (a trace id is random; the bench traffic's spans start up to a minute apart, so
// the time indexes' newest pages are as scattered), so the pages one commit touches grow with the
// file until each insert has a page of its own. When they outgrow the write connection's page
// cache, every commit spills dirty pages to the WAL early, dirties them again, and reads them back
// from the file; and every checkpoint copies each page it finds in the WAL into the file once,
// however many commits wrote it since the last: bytes written and read per span, and CPU with
// them, grow with the file.
//
// The same spans (the bench traffic, times moved to the moment of writing as exporters send
// them, a fresh trace id space per round) are written through the store's write path
// (SqliteStore.writeSpans, batches of 10,000 as the writer sends them) into one file per variant,
// each batch into every file in turn (the order alternating), so that each window compares the
// variants in the same seconds of a shared host:
//   - configured: the write connection as the collector opens it (storage.sqlite.cacheMiB,
//     storage.sqlite.checkpointMiB);
//   - the baseline: SQLite's default page cache (2 MiB, what the store used before the option),
//     or with --base-tree=<checkout> that checkout's store (its openDatabase and SqliteStore,
//     loaded beside this one's, as bench/transcoder-pair.ts does) configured the same, to measure
//     a change to the store's schema or write against the code before it (the chunks are this
//     checkout's: the chunk format must be one both read);
//   - with --checkpointMiB=N, the configured connection checkpointing every N MiB instead.
// Each window of spans reports, per variant, the write's CPU-µs per span (the thread's), its wall
// µs per span (the write thread is the SQLite collector's limit), the longest batch write (a
// checkpoint runs inside the commit that crosses the interval), and KiB written and read per span
// (/proc/self/io around its own writes: WAL, checkpoints and page reads). With --signal=logs the
// same for log records (SqliteStore.writeLogs, a batch id each): --spans and --window count
// records, and the figures are per record. Not part of `npm run bench` (a few minutes).
//
//   node bench/sqlite-growth.ts [--spans=1500000] [--window=250000] [--signal=traces|logs] [--cacheMiB=N] [--checkpointMiB=N] [--base-tree=<checkout>]
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DatabaseSync } from 'node:sqlite';
import { loadConfig } from '../src/config/index.ts';
import { loadRequestEncoder } from '../src/pipeline/transcode/registry.ts';
import { SqliteStore, openDatabase } from '../src/storage/sqlite/store.ts';
import { buildTraffic, defaultSpec, stampTimes } from './traffic.ts';
import { cliFlag } from './harness.ts';

const SPANS = Number(cliFlag('spans') ?? 1_500_000);
const SIGNAL = cliFlag('signal') ?? 'traces';
if (SIGNAL !== 'traces' && SIGNAL !== 'logs') throw new Error(`--signal must be traces or logs, not ${SIGNAL}`);
const ITEM = SIGNAL === 'traces' ? 'span' : 'record';
const WINDOW = Number(cliFlag('window') ?? 250_000);
const defaults = loadConfig();
const CACHE_MIB = Number(cliFlag('cacheMiB') ?? defaults['storage.sqlite.cacheMiB']);
const CHECKPOINT_MIB = defaults['storage.sqlite.checkpointMiB'];
const OTHER_CHECKPOINT_MIB = cliFlag('checkpointMiB') === undefined ? undefined : Number(cliFlag('checkpointMiB'));
const BASE_TREE = cliFlag('base-tree');
/** SQLite's default cache_size: -2000, 2000 KiB. */
const SQLITE_DEFAULT_MIB = 2000 / 1024;
const BATCH_ROWS = 10_000;
/** Requests per round of traffic (~470 spans each); each round is built with a new seed, so new trace ids. */
const ROUND_REQUESTS = 43;

interface Variant {
  name: string;
  path: string;
  db: DatabaseSync;
  store: SqliteStore;
  /** The current window's sums. */
  cpuUs: number;
  wallMs: number;
  maxMs: number;
  written: number;
  read: number;
}

interface Figures {
  cpuUsPerSpan: number;
  wallUsPerSpan: number;
  longestWriteMs: number;
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
const dir = mkdtempSync(join(tmpdir(), 'tracehouse-bench-sqlite-growth-'));

type StoreModule = { openDatabase: typeof openDatabase; SqliteStore: typeof SqliteStore };
const thisStore: StoreModule = { openDatabase, SqliteStore };
const baseStore = BASE_TREE === undefined ? undefined : ((await import(pathToFileURL(join(BASE_TREE, 'src/storage/sqlite/store.ts')).href)) as StoreModule);

function variant(name: string, options: { cacheMiB: number; checkpointMiB: number }, code = thisStore): Variant {
  const path = join(dir, `${name.replace(/\W+/g, '-')}.db`);
  const db = code.openDatabase(path, options);
  return { name, path, db, store: new code.SqliteStore(db), cpuUs: 0, wallMs: 0, maxMs: 0, written: 0, read: 0 };
}

const variants = [
  variant(`configured (cache ${CACHE_MIB} MiB, checkpoint ${CHECKPOINT_MIB} MiB)`, { cacheMiB: CACHE_MIB, checkpointMiB: CHECKPOINT_MIB }),
  baseStore === undefined
    ? variant(`SQLite's default cache (2 MiB, checkpoint ${CHECKPOINT_MIB} MiB): baseline`, { cacheMiB: SQLITE_DEFAULT_MIB, checkpointMiB: CHECKPOINT_MIB })
    : variant(`${BASE_TREE}'s store, configured the same: baseline`, { cacheMiB: CACHE_MIB, checkpointMiB: CHECKPOINT_MIB }, baseStore),
  ...(OTHER_CHECKPOINT_MIB === undefined ? [] : [variant(`checkpoint ${OTHER_CHECKPOINT_MIB} MiB (cache ${CACHE_MIB} MiB)`, { cacheMiB: CACHE_MIB, checkpointMiB: OTHER_CHECKPOINT_MIB })]),
];
const windows: { spansInFile: number; figures: Figures[] }[] = [];

try {
  let clockNs = BigInt(Date.now()) * 1_000_000n;
  let written = 0;
  let inWindow = 0;
  let batches = 0;
  for (let seed = 100; written < SPANS; seed++) {
    // Encoding is the decode workers' part: built and encoded outside the measured writes.
    const chunks = buildTraffic(defaultSpec(SIGNAL, ROUND_REQUESTS, seed)).flatMap((r) => {
      clockNs += 5_000_000n;
      stampTimes(Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength), r, clockNs);
      return encoder.encode(SIGNAL, 'protobuf', r.bytes).chunks;
    });
    for (let i = 0; i < chunks.length; ) {
      const batch: Uint8Array[] = [];
      let rows = 0;
      for (; i < chunks.length && rows < BATCH_ROWS; i++) {
        batch.push(chunks[i]!.data);
        rows += chunks[i]!.rows;
      }
      for (const v of batches++ % 2 === 0 ? variants : [...variants].reverse()) {
        const io0 = ioBytes();
        const c0 = process.threadCpuUsage();
        const t0 = performance.now();
        const result = SIGNAL === 'traces' ? v.store.writeSpans(batch) : v.store.writeLogs(batch, `growth-${batches}`);
        if (result.kind !== 'success') throw new Error(`sqlite store write failed (${v.name})`);
        const ms = performance.now() - t0;
        const c = process.threadCpuUsage(c0);
        const io = ioBytes();
        v.cpuUs += c.user + c.system;
        v.wallMs += ms;
        v.maxMs = Math.max(v.maxMs, ms);
        v.written += io.written - io0.written;
        v.read += io.read - io0.read;
      }
      written += rows;
      inWindow += rows;
    }
    if (inWindow >= WINDOW) {
      windows.push({
        spansInFile: written,
        figures: variants.map((v) => ({
          cpuUsPerSpan: v.cpuUs / inWindow,
          wallUsPerSpan: (v.wallMs * 1000) / inWindow,
          longestWriteMs: v.maxMs,
          writtenKiBPerSpan: v.written / 1024 / inWindow,
          readKiBPerSpan: v.read / 1024 / inWindow,
          fileMiB: statSync(v.path).size / 1048576,
        })),
      });
      for (const v of variants) Object.assign(v, { cpuUs: 0, wallMs: 0, maxMs: 0, written: 0, read: 0 });
      inWindow = 0;
    }
  }
} finally {
  for (const v of variants) v.db.close();
  rmSync(dir, { recursive: true, force: true });
}

const f = (n: number): string => n.toFixed(2);
console.log(`SQLite store write as the file grows: ${SPANS} bench ${ITEM}s (times current), batches of ${BATCH_ROWS}, each into every file in turn; per window of ${WINDOW} ${ITEM}s`);
variants.forEach((v, i) => console.log(`  ${String.fromCharCode(65 + i)}: ${v.name}`));
console.log(`${ITEM}s in file | file MiB | ${variants.map((_, i) => String.fromCharCode(65 + i)).join(' / ')}: CPU-µs per ${ITEM} | wall µs per ${ITEM} | longest write ms | KiB written per ${ITEM} | KiB read per ${ITEM}`);
for (const w of windows) {
  const col = (pick: (x: Figures) => number, fmt = f) => w.figures.map((x) => fmt(pick(x))).join(' / ');
  console.log(
    `${String(w.spansInFile).padStart(13)} | ${col((x) => x.fileMiB, (n) => String(Math.round(n)))} | ${col((x) => x.cpuUsPerSpan)} | ${col((x) => x.wallUsPerSpan)} | ${col((x) => x.longestWriteMs, (n) => String(Math.round(n)))} | ${col((x) => x.writtenKiBPerSpan)} | ${col((x) => x.readKiBPerSpan)}`,
  );
}
