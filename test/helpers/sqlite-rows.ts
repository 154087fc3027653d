// Spans written as the SQLite store wrote them before runs of records (up to 47dea07): a row of
// spans per span, its protobuf bytes as doc, its group in item_groups, its operation, and a run of
// rows per trace and service that follow one another (no attribute filter: the store fills it when it opens the
// file). For the tests of files an older version wrote.
import type { DatabaseSync } from 'node:sqlite';
import type { SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { groupParts, readSpanChunk, spanBytes, spanEnd, spanId, spanKind, spanParentId, spanStart, spanStatus, spanName, spanTraceId } from '../../src/storage/otlp-chunks.ts';

const proto = createProtoEncoder({});

/** Writes spans as rows of spans, with their runs unless `runs` is false (a version before runs). */
export function writeSpanRows(db: DatabaseSync, spans: SpanRow[], options: { tenant?: string; runs?: boolean } = {}): void {
  const tenant = options.tenant ?? DEFAULT_TENANT;
  const insert = db.prepare(`INSERT INTO spans (tenant, trace_id, span_id, parent_span_id, service_name, name, start_ns, end_ns, duration_ns, status_code, doc, group_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertGroup = db.prepare('INSERT INTO item_groups (gid, max_ns, resource, scope) VALUES (?, ?, ?, ?)');
  const setGroupMax = db.prepare('UPDATE item_groups SET max_ns = max(max_ns, ?) WHERE gid = ?');
  const operation = db.prepare(`INSERT INTO operations (tenant, service_name, name, kind, last_start_ns) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT DO UPDATE SET last_start_ns = max(last_start_ns, excluded.last_start_ns)`);
  let gid = Number((db.prepare('SELECT coalesce(max(gid), 0) AS m FROM item_groups').get() as { m: number }).m);
  const rows: { trace: string; service: string; start: bigint; rowid: number }[] = [];
  db.exec('BEGIN');
  for (const { data } of proto.encodeSpans(spans)) {
    let group: unknown;
    readSpanChunk(data, (g, buf, r) => {
      if (g !== group) {
        group = g;
        const { resource, scope } = groupParts(buf, g);
        insertGroup.run(++gid, 0n, resource, scope);
      }
      const [start, end] = [spanStart(buf, r), spanEnd(buf, r)];
      const trace = spanTraceId(buf, r);
      const result = insert.run(tenant, trace, spanId(buf, r), spanParentId(buf, r), g.service, spanName(buf, r), start, end, end - start, spanStatus(buf, r), spanBytes(buf, r), gid);
      rows.push({ trace, service: g.service, start, rowid: Number(result.lastInsertRowid) });
      operation.run(tenant, g.service, spanName(buf, r), spanKind(buf, r), start);
      // A group's max_ns is its items' newest start (retention drops it with the last of them).
      setGroupMax.run(start, gid);
    });
  }
  if (options.runs !== false) {
    const insertRun = db.prepare('INSERT INTO span_runs (tenant, trace_id, service_name, min_start_ns, max_start_ns, first_rowid, last_rowid) VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (let i = 0; i < rows.length; ) {
      let j = i;
      while (j + 1 < rows.length && rows[j + 1]!.trace === rows[i]!.trace && rows[j + 1]!.service === rows[i]!.service) j++;
      const starts = rows.slice(i, j + 1).map((r) => r.start);
      const [min, max] = [starts.reduce((a, b) => (a < b ? a : b)), starts.reduce((a, b) => (a > b ? a : b))];
      insertRun.run(tenant, rows[i]!.trace, rows[i]!.service, min, max, rows[i]!.rowid, rows[j]!.rowid);
      i = j + 1;
    }
  }
  db.exec('COMMIT');
}

/** The names of a table's indexes in the store's file, sorted: what a migration left. */
export function indexNames(db: DatabaseSync, table: string): string[] {
  return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? ORDER BY name").all(table) as { name: string }[]).map((r) => r.name);
}
