// The embedded default: one SQLite file (node:sqlite, WAL). Each row keeps its full normalized
// form as JSON (`doc`) beside the columns that queries filter on, so reads return exactly what
// was received without a column per OTLP field.
import { Worker } from 'node:worker_threads';
import type { DatabaseSync } from 'node:sqlite';
import type { LogRow, SpanRow } from '../../model/rows.ts';
import type { BackendDeps, LogQuery, ScanPage, ScanQuery, StorageBackend, TraceQuery, TraceSummary, WriteBatch, WriteResult } from '../backend.ts';
import { attributesMatch, byNewestTrace, summarizeTrace, type SpanFacts } from '../query-helpers.ts';
import { logFromJson, spanFromJson } from '../rowjson.ts';
import { clampNs, openDatabase } from './store.ts';
import type { WriteReply, WriteRequest } from './write-thread.ts';

interface Filter {
  where: string[];
  params: (string | bigint | number)[];
}

function filter(): Filter {
  return { where: [], params: [] };
}

function add(f: Filter, sql: string, value: string | bigint | number | undefined): void {
  if (value === undefined) return;
  f.where.push(sql);
  f.params.push(value);
}

function whereSql(f: Filter): string {
  return f.where.length ? `WHERE ${f.where.join(' AND ')}` : '';
}

/** Where the SQLite store keeps its file and how long it keeps data. */
export interface SqliteOptions {
  path: string;
  /** Delete rows older than this many days (0: keep). */
  retentionDays: number;
}

class SqliteBackend implements StorageBackend {
  readonly name = 'sqlite';
  readonly encoder = { name: 'rowjson', options: {} } as const;
  private db: DatabaseSync | undefined;
  private thread: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, (reply: WriteReply) => void>();
  private retentionTimer: NodeJS.Timeout | undefined;
  private readonly path: string;
  private readonly retentionDays: number;
  private readonly deps: BackendDeps;

  constructor(options: SqliteOptions, deps: BackendDeps) {
    this.path = options.path;
    this.retentionDays = options.retentionDays;
    this.deps = deps;
  }

  async start(): Promise<void> {
    if (this.db) return;
    // The schema exists before either connection uses it; this connection then only reads.
    this.db = openDatabase(this.path);
    if (this.retentionDays > 0) {
      this.applyRetention();
      this.retentionTimer = setInterval(() => this.applyRetention(), 3_600_000).unref();
    }
  }

  /** The write thread, started on first use and again after it dies. */
  private writeThread(): Worker {
    if (this.thread) return this.thread;
    const thread = new Worker(new URL('./write-thread.ts', import.meta.url), { workerData: { path: this.path } });
    const fail = (err: Error) => {
      if (this.thread !== thread) return;
      this.thread = undefined;
      this.deps.logger.error({ err: err.message }, 'sqlite write thread stopped; writes will be retried on a new one');
      for (const [id, resolve] of this.pending) resolve({ id, result: { kind: 'retryable', message: err.message } });
      this.pending.clear();
    };
    thread.on('message', (reply: WriteReply) => {
      const resolve = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      resolve?.(reply);
    });
    thread.on('error', fail);
    thread.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.thread = thread;
    return thread;
  }

  private request(req: WriteRequest): Promise<WriteReply> {
    return new Promise((resolve) => {
      this.pending.set(req.id, resolve);
      // Chunks are copied, not transferred: the writer keeps them to retry a failed batch.
      this.writeThread().postMessage(req);
    });
  }

  private applyRetention(): void {
    this.request({ id: this.nextId++, op: 'retention', retentionDays: this.retentionDays }).then((reply) => {
      if ('deleted' in reply && reply.deleted.spans + reply.deleted.logs > 0) {
        this.deps.logger.info({ ...reply.deleted, retentionDays: this.retentionDays }, 'sqlite retention deleted old rows');
      }
    }, () => {});
  }

  private open(): DatabaseSync {
    if (!this.db) throw new Error('sqlite backend is not started');
    return this.db;
  }

  /** Writes in flight by batch id: a retry of a write that timed out waits for that write instead of inserting again. */
  private readonly inFlight = new Map<string, Promise<WriteResult>>();

  write(batch: WriteBatch): Promise<WriteResult> {
    this.open();
    const op = batch.signal;
    const key = `${op}/${batch.batchId}`;
    let p = this.inFlight.get(key);
    if (!p) {
      p = this.request({ id: this.nextId++, op, chunks: batch.chunks, batchId: batch.batchId }).then((reply): WriteResult => {
        if (!('result' in reply)) return { kind: 'permanent', error: new Error('unexpected reply from the sqlite write thread') };
        const { kind, message } = reply.result;
        return kind === 'success' ? { kind } : { kind, error: new Error(message ?? 'sqlite write failed') };
      });
      this.inFlight.set(key, p);
      void p.finally(() => this.inFlight.delete(key));
    }
    return p;
  }

  async getTrace(traceId: string): Promise<SpanRow[]> {
    const rows = this.open().prepare('SELECT doc FROM spans WHERE trace_id = ?').all(traceId) as { doc: string }[];
    return rows.map((r) => spanFromJson(r.doc));
  }

  async searchTraces(q: TraceQuery): Promise<TraceSummary[]> {
    const db = this.open();
    const f = filter();
    add(f, 'service_name = ?', q.service);
    add(f, 'name = ?', q.name);
    add(f, 'start_ns >= ?', q.startNano);
    add(f, 'start_ns <= ?', q.endNano === undefined ? undefined : clampNs(q.endNano));
    add(f, 'duration_ns >= ?', q.minDurationNano);
    add(f, 'duration_ns <= ?', q.maxDurationNano === undefined ? undefined : clampNs(q.maxDurationNano));
    const wantAttrs = (q.attributes?.length ?? 0) > 0;
    // Newest matching spans first; attribute conditions are checked on the doc in JavaScript.
    const stmt = db.prepare(`SELECT trace_id, ${wantAttrs ? 'doc' : "'' AS doc"} FROM spans ${whereSql(f)} ORDER BY start_ns DESC`);
    const traceIds = new Set<string>();
    for (const row of stmt.iterate(...f.params) as Iterable<{ trace_id: string; doc: string }>) {
      if (traceIds.has(row.trace_id)) continue;
      if (wantAttrs && !attributesMatch(spanFromJson(row.doc).attributes, q)) continue;
      traceIds.add(row.trace_id);
      if (traceIds.size >= q.limit) break;
    }
    // Summaries come from the columns alone: no document is parsed.
    const spansOf = db.prepare(
      'SELECT trace_id AS traceId, span_id AS spanId, parent_span_id AS parentSpanId, service_name AS serviceName, name, start_ns AS startTimeUnixNano, end_ns AS endTimeUnixNano, duration_ns AS durationNano, status_code AS statusCode FROM spans WHERE trace_id = ?',
    );
    spansOf.setReadBigInts(true);
    const out: TraceSummary[] = [];
    for (const id of traceIds) {
      const spans = (spansOf.all(id) as unknown as (SpanFacts & { statusCode: bigint })[]).map((s) => ({ ...s, statusCode: Number(s.statusCode) }));
      out.push(summarizeTrace(spans));
    }
    return out.sort(byNewestTrace);
  }

  async searchLogs(q: LogQuery): Promise<LogRow[]> {
    const f = filter();
    add(f, 'trace_id = ?', q.traceId);
    add(f, 'service_name = ?', q.service);
    add(f, 'time_ns >= ?', q.startNano);
    add(f, 'time_ns <= ?', q.endNano === undefined ? undefined : clampNs(q.endNano));
    add(f, 'severity_number >= ?', q.minSeverity);
    const rows = this.open()
      .prepare(`SELECT doc FROM logs ${whereSql(f)} ORDER BY time_ns DESC, id DESC LIMIT ?`)
      .all(...f.params, q.limit) as { doc: string }[];
    return rows.map((r) => logFromJson(r.doc));
  }

  // Scans walk rowid order: new rows get larger rowids, so a concurrent writer only adds rows
  // ahead of the cursor. Each page is one statement on this read connection (WAL: it never
  // blocks the write thread, and holds no snapshot between pages).
  private scan<T>(table: 'spans' | 'logs', timeCol: string, q: ScanQuery, parse: (doc: string) => T): ScanPage<T> {
    if (q.after !== undefined && !/^\d+$/.test(q.after)) throw new Error(`not a sqlite scan cursor: ${JSON.stringify(q.after)}`);
    const f = filter();
    add(f, 'rowid > ?', q.after === undefined ? undefined : BigInt(q.after));
    add(f, 'service_name = ?', q.service);
    add(f, `${timeCol} >= ?`, q.startNano);
    add(f, `${timeCol} <= ?`, q.endNano === undefined ? undefined : clampNs(q.endNano));
    // NOT INDEXED: walking rowids and filtering costs one pass over the table for the whole scan;
    // a service or time index would make every page sort all matching rows again.
    const stmt = this.open().prepare(`SELECT rowid AS r, doc FROM ${table} NOT INDEXED ${whereSql(f)} ORDER BY rowid LIMIT ?`);
    stmt.setReadBigInts(true);
    const rows = stmt.all(...f.params, q.limit) as unknown as { r: bigint; doc: string }[];
    const last = rows[rows.length - 1];
    const page: ScanPage<T> = { rows: rows.map((r) => parse(r.doc)), next: last ? last.r.toString() : q.after, done: rows.length < q.limit };
    // Position by rowid against the largest one (one index lookup).
    const max = (this.open().prepare(`SELECT max(rowid) AS m FROM ${table}`).get() as { m: number | null }).m;
    if (last && max) page.position = Math.min(1, Number(last.r) / max);
    return page;
  }

  async scanSpans(q: ScanQuery): Promise<ScanPage<SpanRow>> {
    return this.scan('spans', 'start_ns', q, spanFromJson);
  }

  async scanLogs(q: ScanQuery): Promise<ScanPage<LogRow>> {
    return this.scan('logs', 'time_ns', q, logFromJson);
  }

  async health() {
    try {
      this.open().prepare('SELECT 1').get();
      return { ok: true };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  }

  async shutdown(): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.retentionTimer = undefined;
    const thread = this.thread;
    this.thread = undefined;
    await thread?.terminate();
    this.db?.close();
    this.db = undefined;
  }
}

/** Creates the SQLite backend (the embedded default). */
export function createSqliteBackend(options: SqliteOptions, deps: BackendDeps): StorageBackend {
  return new SqliteBackend(options, deps);
}
