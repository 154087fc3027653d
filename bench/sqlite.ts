// Scenario: the SQLite store's write path (what its write thread runs) on the bench traffic as the
// decode workers encode it for the store (`otlp` chunks: each span's protobuf bytes), against a
// baseline in the same run: plain INSERTs of the same span bytes, a row each, into an unindexed
// table of a database opened the same way. The ratio is what the store's runs of records (a row
// of span records per run, its index entries, its filter, the probe that keeps a span resent
// once) cost or save against storing the bytes at all. The same spans as JSON
// lines (the format the store wrote before it kept protobuf, still accepted from an older
// write-ahead log) are written too, for the change's before and after in one run.
//
// Then the attribute index: the same store without its runs' attribute filters (their write cost
// is the difference) and, on the same data, attribute searches answered through the filters
// against the document scan every search did before any index (parse each candidate span's
// document), both in this run.
//
//   node bench/sqlite.ts [--spans=N]
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { decodeTracesProto } from '../src/pipeline/decode/index.ts';
import { loadRequestEncoder } from '../src/pipeline/transcode/registry.ts';
import type { TraceQuery } from '../src/storage/backend.ts';
import { readSpanChunk, readSpanRecords, S_LEN, SPAN_HEAD_BYTES, spanAt, spanBytes, spanFromParts, spanTraceId } from '../src/storage/otlp-chunks.ts';
import { attributesMatch } from '../src/storage/query-helpers.ts';
import { createEncoder as createLineEncoder } from '../src/storage/rowjson.ts';
import { searchTraces } from '../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../src/storage/sqlite/store.ts';
import { anyValueToString, type SpanRow } from '../src/model/rows.ts';
import { buildTraffic, defaultSpec } from './traffic.ts';
import { DEFAULT_TENANT } from '../src/model/tenant.ts';
import { cliFlag } from './harness.ts';

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
  for (const c of batch) {
    readSpanChunk(c, (_g, buf, r) => {
      const start = r + SPAN_HEAD_BYTES;
      insert.run(spanTraceId(buf, r), buf.subarray(start, start + buf.readUInt32LE(r + S_LEN)));
    });
  }
  db.exec('COMMIT');
}

/** The attribute search without the attribute index: every span's document decoded and checked, runs newest first (the baseline). */
function scanSearch(db: DatabaseSync, q: TraceQuery): string[] {
  const ids = new Set<string>();
  const runs = db.prepare(`SELECT r.trace_id AS trace, b.records AS records, g.resource AS resource, g.scope AS scope
    FROM span_runs r JOIN run_spans b ON b.run = r.rowid JOIN item_groups g ON g.gid = r.group_id ORDER BY r.max_start_ns DESC`);
  for (const run of runs.iterate() as Iterable<{ trace: string; records: Uint8Array; resource: Uint8Array; scope: Uint8Array }>) {
    if (ids.has(run.trace)) continue;
    readSpanRecords(run.records, (buf, r) => {
      if (!ids.has(run.trace) && attributesMatch(spanFromParts(run.resource, run.scope, spanBytes(buf, r)).attributes, q)) ids.add(run.trace);
    });
    if (ids.size >= q.limit) break;
  }
  return [...ids];
}

function bestMs(times: number, fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < times; i++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return Math.round(best * 100) / 100;
}

/** Runs the scenario and returns its figures. */
export async function run(opts: { spans?: number } = {}) {
  const requests = Math.max(1, Math.round((opts.spans ?? 50_000) / 470));
  const traffic = buildTraffic(defaultSpec('traces', requests, 11));
  const encoder = await loadRequestEncoder({ name: 'otlp', options: {} }, { maxNestingDepth: 100 });
  const chunks = traffic.flatMap((r) => encoder.encode('traces', 'protobuf', r.bytes).chunks);
  const spans = chunks.reduce((n, c) => n + c.rows, 0);
  const work = batches(chunks);
  const lineEncoder = createLineEncoder();
  const lineWork = batches(traffic.flatMap((r) => lineEncoder.encodeSpans(decodeTracesProto(r.bytes, { maxNestingDepth: 100 }).rows)));
  const dir = mkdtempSync(join(tmpdir(), 'tracehouse-bench-sqlite-'));
  try {
    const storeDb = openDatabase(join(dir, 'store.db'));
    const store = new SqliteStore(storeDb);
    const adapter = timed(spans, () => {
      for (const b of work) if (store.writeSpans(b).kind !== 'success') throw new Error('sqlite store write failed');
    });
    const noIndexDb = openDatabase(join(dir, 'noindex.db'));
    const noIndexStore = new SqliteStore(noIndexDb, { indexAttributes: false });
    const withoutAttributeIndex = timed(spans, () => {
      for (const b of work) if (noIndexStore.writeSpans(b).kind !== 'success') throw new Error('sqlite store write failed');
    });
    noIndexDb.close();
    const linesDb = openDatabase(join(dir, 'lines.db'));
    const linesStore = new SqliteStore(linesDb);
    const jsonLines = timed(spans, () => {
      for (const b of lineWork) if (linesStore.writeSpans(b).kind !== 'success') throw new Error('sqlite store write failed');
    });
    linesDb.close();
    // A key every span of the traffic carries, with a value none has and with one value that some have.
    let first: SpanRow | undefined;
    readSpanChunk(chunks[0]!.data, (g, buf, r) => void (first ??= spanAt(buf, g.at, r)));
    if (!first) throw new Error('no span in the traffic');
    const attr = first.attributes.find((kv) => 'stringValue' in kv.value) ?? first.attributes[0]!;
    const searches: Record<string, TraceQuery> = {
      noMatch: { attributes: [{ key: attr.key, value: 'no such value' }], limit: 20 },
      match: { attributes: [{ key: attr.key, value: anyValueToString(attr.value) }], limit: 20 },
    };
    const search: Record<string, { indexMs: number; scanMs: number; speedup: number; found: number }> = {};
    for (const [name, q] of Object.entries(searches)) {
      const found = searchTraces(storeDb, DEFAULT_TENANT, q).length;
      if (found !== scanSearch(storeDb, q).length) throw new Error(`index and scan disagree on ${name}`);
      const indexMs = bestMs(3, () => searchTraces(storeDb, DEFAULT_TENANT, q));
      const scanMs = bestMs(3, () => scanSearch(storeDb, q));
      search[name] = { indexMs, scanMs, speedup: Math.round((scanMs / Math.max(indexMs, 0.01)) * 10) / 10, found };
    }
    storeDb.close();
    const fileMiB = (f: string) => Math.round((statSync(join(dir, f)).size + (existsSync(join(dir, f + '-wal')) ? statSync(join(dir, f + '-wal')).size : 0)) / 1048576);
    const attributeIndex = {
      searchKey: attr.key,
      writeWithIndex: adapter,
      writeWithoutIndex: withoutAttributeIndex,
      writeRateRatio: Math.round((adapter.spansPerSec / withoutAttributeIndex.spansPerSec) * 100) / 100,
      fileMiBWithIndex: fileMiB('store.db'),
      fileMiBWithoutIndex: fileMiB('noindex.db'),
      fileMiBJsonLines: fileMiB('lines.db'),
      search,
    };
    const plainDb = openDatabase(join(dir, 'plain.db'));
    plainDb.exec('CREATE TABLE plain (trace_id TEXT NOT NULL, doc BLOB NOT NULL)');
    const baseline = timed(spans, () => {
      for (const b of work) plainInsert(plainDb, b);
    });
    plainDb.close();
    return {
      scenario: 'sqlite-write', spans, batchRows: BATCH_ROWS, store: adapter, plainInsert: baseline, ratio: adapter.spansPerSec / baseline.spansPerSec,
      // The same spans as JSON lines, whose attribute index SQLite's JSON functions build (the store before it kept protobuf).
      jsonLines, speedupOverJsonLines: Math.round((adapter.spansPerSec / jsonLines.spansPerSec) * 100) / 100,
      attributeIndex,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const spans = cliFlag('spans');
  console.log(JSON.stringify(await run(spans ? { spans: Number(spans) } : {}), null, 2));
}
