// A file this version wrote, opened since by the first release (2026-11-23: before tenants, runs and
// the operations table): the spans it wrote there are rows of spans without runs and without an
// operation. Opened by this version again, they are given runs (ensureSpanRuns) and their services
// and operations are listed, and kept while they are stored.
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { getOperations, getServices, searchTraces } from '../../src/storage/sqlite/reads.ts';
import { createEncoder as createJsonEncoder } from '../../src/storage/rowjson.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const NOW = BigInt(Date.now()) * 1_000_000n;

describe('sqlite file opened by the first release in between', () => {
  it('lists the services and operations of the spans the first release wrote', () => {
    const path = join(tempDir(), 'rollback.db');
    let db = openDatabase(path);
    const kept = makeSpan({ serviceName: 'new', name: 'c', startTimeUnixNano: NOW, endTimeUnixNano: NOW + 10n });
    expect(new SqliteStore(db).writeSpans(createProtoEncoder({}).encodeSpans([kept]).map((c) => c.data), DEFAULT_TENANT).kind).toBe('success');
    // The first release's writes: rows of spans of JSON documents (as an older write-ahead log's
    // lines are stored), with neither runs nor operations (it knew neither), and its indexes.
    const older = makeSpan({ serviceName: 'rolled back', name: 'd', kind: 3, startTimeUnixNano: NOW + 1n, endTimeUnixNano: NOW + 11n });
    const newer = makeSpan({ serviceName: 'new', name: 'c', kind: kept.kind, startTimeUnixNano: NOW + 2n, endTimeUnixNano: NOW + 12n });
    expect(new SqliteStore(db).writeSpans(createJsonEncoder().encodeSpans([older, newer]).map((c) => c.data), DEFAULT_TENANT).kind).toBe('success');
    db.close();
    db = new DatabaseSync(path);
    db.exec(`DELETE FROM span_runs WHERE span_count IS NULL;
             DELETE FROM operations WHERE service_name = 'rolled back';
             UPDATE operations SET last_start_ns = ${NOW};
             CREATE UNIQUE INDEX spans_trace_span ON spans (trace_id, span_id);
             CREATE INDEX spans_service_start ON spans (service_name, start_ns);
             CREATE INDEX spans_start ON spans (start_ns);`);
    db.close();
    db = openDatabase(path);
    expect(searchTraces(db, DEFAULT_TENANT, { service: 'rolled back', limit: 5 }).map((t) => t.traceId)).toEqual([older.traceId]);
    expect(getServices(db, DEFAULT_TENANT)).toEqual(['new', 'rolled back']);
    expect(getOperations(db, DEFAULT_TENANT, { service: 'rolled back' })).toEqual([{ name: 'd', kind: 3 }]);
    // The operation's newest start is the newest of its spans (retention keeps it while they are).
    expect(db.prepare(`SELECT last_start_ns = ${NOW + 2n} AS newest FROM operations WHERE service_name = 'new'`).get()).toEqual({ newest: 1 });
    db.close();
  });
});
