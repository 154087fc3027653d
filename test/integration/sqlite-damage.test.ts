// A SQLite file keeps no checksum of its pages: bit rot, or a file edited by hand, shows only when a
// read decodes the stored bytes. Such an item must not fail every read that reaches it, nor hide
// the good spans and records beside it: reads leave out what does not decode, return the rest
// (a run's records before the fault included), and the store counts each lost item once as
// dropped (reason unreadable) and logs where it is stored once, however many reads meet it.
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { LogRow, SpanRow } from '../../src/model/rows.ts';
import type { Signal } from '../../src/model/signal.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import type { ScanPage, ScanQuery, StorageBackend } from '../../src/storage/backend.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { readSpanRecords, SPAN_HEAD_BYTES, spanRecordEnd } from '../../src/storage/otlp-chunks.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { makeLog, makeSpan, makeTrace } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const encoder = createEncoder({});

async function write(b: StorageBackend, signal: Signal, rows: SpanRow[] | LogRow[], batchId: string): Promise<void> {
  const chunks = (signal === 'traces' ? encoder.encodeSpans(rows as SpanRow[]) : encoder.encodeLogs(rows as LogRow[])).map((c) => c.data);
  const bytes = chunks.reduce((n, c) => n + c.byteLength, 0);
  expect(await b.write({ signal, partition: 0, tenant: DEFAULT_TENANT, rows: rows.length, bytes, chunks, batchId })).toEqual({ kind: 'success' });
}

/** Every row of a scan, page after page. */
async function scanAll<T>(scan: (q: ScanQuery) => Promise<ScanPage<T>>): Promise<T[]> {
  const out: T[] = [];
  let after: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const page = await scan(after === undefined ? { limit: 2 } : { limit: 2, after });
    out.push(...page.rows);
    if (page.done) return out;
    after = page.next;
  }
  throw new Error('the scan did not end');
}

const ids = (spans: readonly SpanRow[]) => spans.map((s) => s.spanId).sort();
const bodies = (logs: readonly LogRow[]) => logs.map((l) => (l.body as { stringValue: string }).stringValue).sort();

describe('sqlite store: stored items that no longer decode', () => {
  it('are left out of every read, which returns the rest; each is counted as lost and logged once', async () => {
    const path = join(tempDir(), 'damaged.db');
    const log = capturedLogger();
    const metrics = createMetrics();
    const b = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': path } })), { logger: log.logger, metrics });
    await b.start();
    try {
      // Each trace's spans share their resource and scope: one run of records each.
      const trace = (n: number, serviceName: string) => {
        const { resource, scope } = makeSpan({ serviceName });
        return makeTrace(n, { serviceName, resource, scope });
      };
      const [cut, bitten, whole, orphan] = [trace(5, 'cut'), trace(3, 'bitten'), trace(2, 'whole'), trace(2, 'orphan')];
      const logs = [0, 1, 2].map((i) => makeLog({ serviceName: 'logs', body: { stringValue: `r${i}` } }));
      await write(b, 'traces', [...cut, ...bitten, ...whole, ...orphan], 'spans');
      await write(b, 'logs', logs, 'logs');

      // Damage the file through a connection of its own, as bit rot or a hand edit would.
      const db = new DatabaseSync(path);
      const runOf = (traceId: string) => db.prepare('SELECT r.rowid AS id, r.span_count AS count, b.records AS records FROM span_runs r JOIN run_spans b ON b.run = r.rowid WHERE trace_id = ?').get(traceId) as { id: number; count: number; records: Uint8Array };
      const ends: number[] = [];
      const cutRun = runOf(cut[0]!.traceId);
      expect(cutRun.count).toBe(5);
      readSpanRecords(cutRun.records, (buf, r) => ends.push(spanRecordEnd(buf, r)));
      // The run breaks off in the header of its fourth record: its first three spans still read.
      db.prepare('UPDATE run_spans SET records = ? WHERE run = ?').run(cutRun.records.subarray(0, ends[2]! + 5), cutRun.id);
      // The second span of another run keeps its framing, but its protobuf bytes are noise.
      const bittenRun = runOf(bitten[0]!.traceId);
      const records = Buffer.from(bittenRun.records);
      let second = -1;
      let k = 0;
      readSpanRecords(records, (_buf, r) => void (k++ === 1 && (second = r)));
      records.fill(0xff, second + SPAN_HEAD_BYTES, spanRecordEnd(records, second));
      db.prepare('UPDATE run_spans SET records = ? WHERE run = ?').run(records, bittenRun.id);
      // A run's group (its resource and scope) is gone.
      const orphanRun = runOf(orphan[0]!.traceId);
      db.prepare('DELETE FROM item_groups WHERE gid = (SELECT group_id FROM span_runs WHERE rowid = ?)').run(orphanRun.id);
      // One log record's document is not a log record.
      const badLog = (db.prepare('SELECT min(rowid) AS id FROM logs').get() as { id: number }).id;
      db.prepare("UPDATE logs SET doc = x'ffff' WHERE rowid = ?").run(badLog);
      db.close();

      const readable = [...cut.slice(0, 3), bitten[0]!, bitten[2]!, ...whole];
      for (let round = 0; round < 2; round++) {
        expect(ids(await b.getTrace(DEFAULT_TENANT, cut[0]!.traceId))).toEqual(ids(cut.slice(0, 3)));
        expect(ids(await b.getTrace(DEFAULT_TENANT, bitten[0]!.traceId))).toEqual(ids([bitten[0]!, bitten[2]!]));
        expect(ids(await b.getTrace(DEFAULT_TENANT, whole[0]!.traceId))).toEqual(ids(whole));
        expect(await b.getTrace(DEFAULT_TENANT, orphan[0]!.traceId)).toEqual([]);
        // Searches rank and summarize from the records' heads: the damaged traces are found, with the spans that read.
        const found = await b.searchTraces(DEFAULT_TENANT, { limit: 10 });
        expect(found.map((t) => t.traceId).sort()).toEqual([cut, bitten, whole, orphan].map((t) => t[0]!.traceId).sort());
        expect(found.find((t) => t.traceId === cut[0]!.traceId)).toMatchObject({ spanCount: 3 });
        // An attribute search decodes the spans that may match: those of a run without its group cannot be.
        const byAttribute = await b.searchTraces(DEFAULT_TENANT, { attributes: [{ key: 'bool', value: 'true' }], limit: 10 });
        expect(byAttribute.map((t) => t.traceId).sort()).toEqual([cut, bitten, whole].map((t) => t[0]!.traceId).sort());
        expect(ids(await scanAll((q) => b.scanSpans(DEFAULT_TENANT, q)))).toEqual(ids(readable));
        expect(bodies(await b.searchLogs(DEFAULT_TENANT, { service: 'logs', limit: 10 }))).toEqual(['r1', 'r2']);
        expect(bodies(await scanAll((q) => b.scanLogs(DEFAULT_TENANT, q)))).toEqual(['r1', 'r2']);
      }

      const dropped = (await metrics.droppedRows.get()).values.filter((v) => v.labels.backend === 'sqlite' && v.labels.reason === 'unreadable');
      const lost = (signal: Signal) => dropped.filter((v) => v.labels.signal === signal).reduce((n, v) => n + v.value, 0);
      expect(lost('traces')).toBe(2 + 1 + 2);
      expect(lost('logs')).toBe(1);
      const lines = log.lines().filter((l) => /malformed/.test(l.msg));
      const byPlace = (a: unknown[], b: unknown[]) => String(a[0]).localeCompare(String(b[0]));
      expect(lines.map((l) => [l['stored'], l['lost']]).sort(byPlace)).toEqual(
        [
          [`logs ${badLog}`, 1],
          [`run ${bittenRun.id} span 1`, 1],
          [`run ${cutRun.id}`, 2],
          [`run ${orphanRun.id}`, 2],
        ].sort(byPlace),
      );
      expect(lines.find((l) => l['stored'] === `run ${cutRun.id}`)).toMatchObject({ err: expect.stringMatching(/cut short in its header/) });
    } finally {
      await b.shutdown();
    }
  });

  it('leave a trace read cut to its earliest spans with the earliest readable ones, not with none', async () => {
    const path = join(tempDir(), 'damaged.db');
    const b = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': path } })), { logger: capturedLogger().logger, metrics: createMetrics() });
    await b.start();
    try {
      const t0 = BigInt(Date.now()) * 1_000_000n;
      const early = makeSpan({ serviceName: 'early' });
      const late = makeSpan({ serviceName: 'late', traceId: early.traceId });
      // Two services: two runs of records; the early one's spans start first.
      const a = [0, 1].map((i) => makeSpan({ ...early, spanId: `a${i}`.padEnd(16, '0'), startTimeUnixNano: t0 + BigInt(i), endTimeUnixNano: t0 + 100n }));
      const c = [0, 1].map((i) => makeSpan({ ...late, spanId: `c${i}`.padEnd(16, '0'), startTimeUnixNano: t0 + 1000n + BigInt(i), endTimeUnixNano: t0 + 2000n }));
      await write(b, 'traces', [...a, ...c], 'b1');
      // The early run's group (its resource and scope) is gone, as in a damaged file.
      const db = new DatabaseSync(path);
      db.prepare("DELETE FROM item_groups WHERE gid = (SELECT group_id FROM span_runs WHERE trace_id = ? AND service_name = 'early')").run(early.traceId);
      db.close();
      expect(ids(await b.getTrace(DEFAULT_TENANT, early.traceId))).toEqual(ids(c));
      expect(ids((await b.readTrace(DEFAULT_TENANT, early.traceId, 10)).spans)).toEqual(ids(c));
      // Cut to 2: before, the two earliest ids chosen did not decode, and the read API answered 404.
      expect((await b.readTrace(DEFAULT_TENANT, early.traceId, 2)).spans.map((s) => s.spanId)).toEqual(c.map((s) => s.spanId));
    } finally {
      await b.shutdown();
    }
  });
});
