// The embedded default: one SQLite file (node:sqlite, WAL). Each row keeps its full normalized
// form as JSON (`doc`) beside the columns that queries filter on, so reads return exactly what
// was received without a column per OTLP field.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { Config } from '../../config/index.ts';
import type { LogQuery, LogRow, SpanRow, StorageBackend, TraceQuery, TraceSummary, WriteBatch, WriteResult } from '../backend.ts';
import type { BackendDeps } from '../index.ts';
import { byNewestTrace, spanMatches, summarizeTrace } from '../query-helpers.ts';
import { ROWJSON_ENCODER_MODULE, chunkLines, logFromJson, spanFromJson } from '../rowjson.ts';

const INT64_MAX = (1n << 63n) - 1n;
const NS_PER_DAY = 86_400_000_000_000n;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS spans (
  trace_id TEXT NOT NULL,
  span_id TEXT NOT NULL,
  service_name TEXT NOT NULL,
  name TEXT NOT NULL,
  start_ns INTEGER NOT NULL,
  end_ns INTEGER NOT NULL,
  duration_ns INTEGER NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS spans_service_start ON spans (service_name, start_ns);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY,
  time_ns INTEGER NOT NULL,
  trace_id TEXT NOT NULL,
  service_name TEXT NOT NULL,
  severity_number INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id) WHERE trace_id <> '';
CREATE INDEX IF NOT EXISTS logs_service_time ON logs (service_name, time_ns);
CREATE INDEX IF NOT EXISTS logs_time ON logs (time_ns);
`;

/** SQLite INTEGER is signed 64-bit: times past 2262 are clamped in the index columns (the doc keeps them exact). */
function clampNs(ns: bigint): bigint {
  return ns > INT64_MAX ? INT64_MAX : ns;
}

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

class SqliteBackend implements StorageBackend {
  readonly name = 'sqlite';
  readonly partitions = 1;
  readonly encoder = { module: ROWJSON_ENCODER_MODULE, options: {} };
  private db: DatabaseSync | undefined;
  private insertSpan!: StatementSync;
  private insertLog!: StatementSync;
  private retentionTimer: NodeJS.Timeout | undefined;
  private readonly path: string;
  private readonly retentionDays: number;
  private readonly deps: BackendDeps;

  constructor(config: Config, deps: BackendDeps) {
    this.path = config['storage.sqlite.path'];
    this.retentionDays = config['storage.sqlite.retentionDays'];
    this.deps = deps;
  }

  async start(): Promise<void> {
    if (this.db) return;
    if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true });
    const db = new DatabaseSync(this.path);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    db.exec(SCHEMA);
    this.insertSpan = db.prepare(
      'INSERT OR IGNORE INTO spans (trace_id, span_id, service_name, name, start_ns, end_ns, duration_ns, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.insertLog = db.prepare(
      'INSERT INTO logs (time_ns, trace_id, service_name, severity_number, doc) VALUES (?, ?, ?, ?, ?)',
    );
    this.db = db;
    if (this.retentionDays > 0) {
      this.applyRetention();
      this.retentionTimer = setInterval(() => this.applyRetention(), 3_600_000).unref();
    }
  }

  private applyRetention(): void {
    const cutoff = BigInt(Date.now()) * 1_000_000n - BigInt(this.retentionDays) * NS_PER_DAY;
    const db = this.open();
    const spans = db.prepare('DELETE FROM spans WHERE start_ns < ?').run(cutoff).changes;
    const logs = db.prepare('DELETE FROM logs WHERE time_ns < ?').run(cutoff).changes;
    if (Number(spans) + Number(logs) > 0) this.deps.logger.info({ spans, logs, retentionDays: this.retentionDays }, 'sqlite retention deleted old rows');
  }

  private open(): DatabaseSync {
    if (!this.db) throw new Error('sqlite backend is not started');
    return this.db;
  }

  private transaction(fn: () => void): WriteResult {
    const db = this.open();
    try {
      db.exec('BEGIN');
      try {
        fn();
        db.exec('COMMIT');
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
      return { kind: 'success' };
    } catch (err) {
      // SQLITE_BUSY / SQLITE_FULL pass with time; anything else is about the data.
      const msg = (err as Error).message;
      return /busy|locked|full|disk/i.test(msg) ? { kind: 'retryable', error: err as Error } : { kind: 'permanent', error: err as Error };
    }
  }

  async writeSpans(batch: WriteBatch): Promise<WriteResult> {
    return this.transaction(() => {
      for (const line of chunkLines(batch.chunks)) {
        const r = spanFromJson(line);
        this.insertSpan.run(r.traceId, r.spanId, r.serviceName, r.name, clampNs(r.startTimeUnixNano), clampNs(r.endTimeUnixNano), clampNs(r.durationNano), line);
      }
    });
  }

  async writeLogs(batch: WriteBatch): Promise<WriteResult> {
    return this.transaction(() => {
      for (const line of chunkLines(batch.chunks)) {
        const r = logFromJson(line);
        const t = r.timeUnixNano !== 0n ? r.timeUnixNano : r.observedTimeUnixNano;
        this.insertLog.run(clampNs(t), r.traceId, r.serviceName, r.severityNumber, line);
      }
    });
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
      if (wantAttrs && !spanMatches(spanFromJson(row.doc), q)) continue;
      traceIds.add(row.trace_id);
      if (traceIds.size >= q.limit) break;
    }
    const spansOf = db.prepare('SELECT doc FROM spans WHERE trace_id = ?');
    const out: TraceSummary[] = [];
    for (const id of traceIds) {
      const spans = (spansOf.all(id) as { doc: string }[]).map((r) => spanFromJson(r.doc));
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
    this.db?.close();
    this.db = undefined;
  }
}

/** Creates the SQLite backend (the embedded default). */
export function createSqliteBackend(config: Config, deps: BackendDeps): StorageBackend {
  return new SqliteBackend(config, deps);
}
