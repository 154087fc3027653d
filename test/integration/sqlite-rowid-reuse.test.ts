// Scans (export, copy) page through the SQLite store in rowid order and resume from the last
// page's rowid: a copy rerun after it finished "finds every row written since" (README, Copy
// resumes). SQLite hands a new row the largest rowid plus one; when retention deletes the rows with
// the largest rowids (the rows written last were old: an imported backup, a client's late
// buffer), new rows must still come after every rowid a scan has passed, not take the deleted
// ones again below the cursor.
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { LogRow, SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder as createProtoEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { READS } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { makeLog, makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const proto = createProtoEncoder({});
const DAY = 86_400_000_000_000n;
const NOW = BigInt(Date.now()) * 1_000_000n;

const spanAt = (start: bigint) => makeSpan({ serviceName: 's', startTimeUnixNano: start, endTimeUnixNano: start + 10n });
const logAt = (time: bigint) => makeLog({ serviceName: 's', timeUnixNano: time, observedTimeUnixNano: time });

describe('sqlite scans across retention', () => {
  it('finds, from a finished scan\'s cursor, every span and log record written after retention deleted the last written rows', () => {
    const db = openDatabase(join(tempDir(), 'reuse.db'));
    const store = new SqliteStore(db);
    const writeSpans = (spans: SpanRow[]) => expect(store.writeSpans(proto.encodeSpans(spans).map((c) => c.data)).kind).toBe('success');
    const writeLogs = (logs: LogRow[]) => expect(store.writeLogs(proto.encodeLogs(logs).map((c) => c.data), randomUUID()).kind).toBe('success');
    /** Scans a signal to its end from `after`: the ids found and the last cursor. */
    const scanAll = (op: 'scanSpans' | 'scanLogs', after?: string): { ids: string[]; next: string | undefined } => {
      const ids: string[] = [];
      for (;;) {
        const q = { limit: 2, ...(after === undefined ? {} : { after }) };
        const page = op === 'scanSpans' ? READS.scanSpans(db, [DEFAULT_TENANT, q]) : READS.scanLogs(db, [DEFAULT_TENANT, q]);
        if (op === 'scanSpans') ids.push(...(page.rows as SpanRow[]).map((s) => s.spanId));
        else ids.push(...(page.rows as LogRow[]).map((l) => String(l.timeUnixNano)));
        after = page.next;
        if (page.done) return { ids, next: after };
      }
    };
    // Current rows, then old ones written last (an imported backup, say).
    for (let i = 0; i < 3; i++) writeSpans([spanAt(NOW + BigInt(i))]);
    writeSpans([spanAt(NOW - 10n * DAY)]);
    const logs = [0, 1, 2].map((i) => logAt(NOW + BigInt(i)));
    for (const l of logs) writeLogs([l]);
    writeLogs([logAt(NOW - 10n * DAY)]);
    // A copy runs to the end and keeps its cursors.
    const spans = scanAll('scanSpans');
    const records = scanAll('scanLogs');
    expect(spans.ids).toHaveLength(4);
    expect(records.ids).toHaveLength(4);
    // Retention deletes the old rows, then new ones arrive: a rerun from the cursors finds them.
    expect(store.applyRetention(7)).toEqual({ spans: 1, logs: 1 });
    const later = [spanAt(NOW + 10n), spanAt(NOW + 11n)];
    for (const s of later) writeSpans([s]);
    const laterLogs = [logAt(NOW + 10n), logAt(NOW + 11n)];
    for (const l of laterLogs) writeLogs([l]);
    expect({ spans: scanAll('scanSpans', spans.next).ids, logs: scanAll('scanLogs', records.next).ids }).toEqual({ spans: later.map((s) => s.spanId), logs: laterLogs.map((l) => String(l.timeUnixNano)) });
    db.close();
  });
});
