// Scenario: the SQLite store's write path (what its write thread runs), against a baseline in the
// same run: plain INSERTs of the same row text into an unindexed table of a database opened the
// same way. The ratio is what the indexes, the column extraction and idempotent INSERT OR IGNORE
// cost on top of storing the bytes at all.
//
//   node bench/sqlite.ts [--spans=N]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { decodeTracesProto } from '../src/pipeline/decode/index.ts';
import { chunkLineRefs, createEncoder, docText, type SpanHeader } from '../src/storage/rowjson.ts';
import { SqliteStore, openDatabase } from '../src/storage/sqlite/store.ts';
import { buildTraffic, defaultSpec } from './traffic.ts';

const BATCH_ROWS = 10_000;

interface Timed {
  spansPerSec: number;
  cpuUsPerSpan: number;
}

function timed(spans: number, fn: () => void): Timed {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  return { spansPerSec: Math.round((spans / ms) * 1000), cpuUsPerSpan: (cpu.user + cpu.system) / spans };
}

/** Groups encoded chunks into batches of about BATCH_ROWS rows, as the writer does. */
function batches(chunks: { rows: number; data: Uint8Array }[]): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  let cur: Uint8Array[] = [];
  let rows = 0;
  for (const c of chunks) {
    cur.push(c.data);
    rows += c.rows;
    if (rows >= BATCH_ROWS) {
      out.push(cur);
      cur = [];
      rows = 0;
    }
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function plainInsert(db: DatabaseSync, batch: Uint8Array[]): void {
  const insert = db.prepare('INSERT INTO plain (trace_id, doc) VALUES (?, ?)');
  db.exec('BEGIN');
  for (const line of chunkLineRefs<SpanHeader>(batch)) insert.run(line.header[0], docText(line));
  db.exec('COMMIT');
}

/** Runs the scenario and returns its figures. */
export async function run(opts: { spans?: number } = {}) {
  const requests = Math.max(1, Math.round((opts.spans ?? 50_000) / 470));
  const enc = createEncoder();
  const chunks = buildTraffic(defaultSpec('traces', requests, 11)).flatMap((r) => enc.encodeSpans(decodeTracesProto(r.bytes, { maxNestingDepth: 100 }).rows));
  const spans = chunks.reduce((n, c) => n + c.rows, 0);
  const work = batches(chunks);
  const dir = mkdtempSync(join(tmpdir(), 'tracehouse-bench-sqlite-'));
  try {
    const storeDb = openDatabase(join(dir, 'store.db'));
    const store = new SqliteStore(storeDb);
    const adapter = timed(spans, () => {
      for (const b of work) if (store.writeSpans(b).kind !== 'success') throw new Error('sqlite store write failed');
    });
    storeDb.close();
    const plainDb = openDatabase(join(dir, 'plain.db'));
    plainDb.exec('CREATE TABLE plain (trace_id TEXT NOT NULL, doc TEXT NOT NULL)');
    const baseline = timed(spans, () => {
      for (const b of work) plainInsert(plainDb, b);
    });
    plainDb.close();
    return { scenario: 'sqlite-write', spans, batchRows: BATCH_ROWS, store: adapter, plainInsert: baseline, ratio: adapter.spansPerSec / baseline.spansPerSec };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const arg = process.argv.find((a) => a.startsWith('--spans='));
  console.log(JSON.stringify(await run(arg ? { spans: Number(arg.slice('--spans='.length)) } : {}), null, 2));
}
