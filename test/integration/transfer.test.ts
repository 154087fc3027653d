// Backup, restore and migration against the real stores: export from each of the four into a
// file (plain, .gz, .zst), import it into another through the real decode workers and writer,
// and compare field for field; data from the real OpenTelemetry SDK (through a running
// collector, so the export also reads a store that a collector is writing to) and from the row
// builders (every AnyValue kind, int64 beyond 2^53, bytes, links, events, dropped counts).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.ts';
import type { LogRow, SpanRow } from '../../src/model/rows.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createBackend } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { copyStore, exportStore, importFiles } from '../../src/transfer/commands.ts';
import { TransferSink } from '../../src/transfer/sink.ts';
import { chdbConfig, removeChdbDir, uniqueDatabase } from '../helpers/clickhouse.ts';
import { eventually, startCollector } from '../helpers/collector.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { canonical, makeLog, makeTrace, writeLogs, writeSpans } from '../helpers/rows.ts';
import { sendSdkLogs, sendSdkTrace } from '../helpers/sdk.ts';
import { tempDir } from '../helpers/tmp.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';

const silent = pino({ level: 'silent' });
type Kind = 'memory' | 'sqlite' | 'postgres' | 'clickhouse';

/** A configuration for a fresh, empty store of this kind. */
async function storeConfig(kind: Kind): Promise<Config> {
  const common = { 'workers.threads': '1', 'writer.flushIntervalMs': '20' };
  if (kind === 'memory') return loadConfig({ flags: { ...common, 'storage.backend': 'memory' } });
  if (kind === 'sqlite') return loadConfig({ flags: { ...common, 'storage.backend': 'sqlite', 'storage.sqlite.path': join(tempDir(), 'th.db') } });
  if (kind === 'postgres') return loadConfig({ flags: { ...common, 'storage.backend': 'postgres', 'storage.postgres.url': await createTestDatabase('transfer') } });
  return chdbConfig([uniqueDatabase('transfer')], common);
}

async function backendOf(config: Config): Promise<StorageBackend> {
  return createBackend(config, { logger: silent, metrics: createMetrics() });
}

/** A write pipeline (decode workers + writer) into a fresh store of this kind. */
async function sinkInto(config: Config): Promise<TransferSink> {
  const metrics = createMetrics();
  const sink = new TransferSink(config, await backendOf(config), metrics, silent);
  await sink.start();
  return sink;
}

const quiet = { quiet: true } as const;

function byId<T extends { spanId: string }>(a: T, b: T): number {
  return a.spanId < b.spanId ? -1 : 1;
}

/** A log record as text independent of attribute and object key order (stores build the objects in different orders). */
function logKey(l: LogRow): string {
  const sortKeys = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sortKeys) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)])) : v;
  return JSON.stringify(sortKeys(canonical(l)));
}

/** What a store holds for these traces and services, in a form to compare. */
async function holdings(b: StorageBackend, traceIds: string[], services: string[]): Promise<{ spans: SpanRow[]; logs: string[] }> {
  const spans: SpanRow[] = [];
  for (const id of traceIds) spans.push(...(await b.getTrace(DEFAULT_TENANT, id)));
  const logs: string[] = [];
  for (const service of services) logs.push(...(await b.searchLogs(DEFAULT_TENANT, { service, limit: 1000 })).map(logKey));
  return { spans: canonical(spans.sort(byId)), logs: logs.sort() };
}

afterAll(removeChdbDir);

// Each store is exported (while a collector writes to it) and imported into the next one.
const RING: [Kind, Kind, string][] = [
  ['memory', 'sqlite', 'export.jsonl'],
  ['sqlite', 'postgres', 'export.jsonl.gz'],
  ['postgres', 'clickhouse', 'export.jsonl.zst'],
  ['clickhouse', 'memory', 'export.jsonl'],
];

describe.each(RING)('export from %s, import into %s', (from, to, fileName) => {
  it(`round-trips the SDK's and the row builders' traces and logs field for field (${fileName})`, async () => {
    const source = await backendOf(await storeConfig(from));
    const collector = await startCollector({}, { backend: source });
    const target = await sinkInto(await storeConfig(to));
    try {
      const sdkTrace = await sendSdkTrace(new OTLPTraceExporter({ url: `${collector.httpUrl}/v1/traces` }));
      const sdkLogs = await sendSdkLogs(new OTLPLogExporter({ url: `${collector.httpUrl}/v1/logs` }));
      const traceIds = [...new Set(sdkTrace.spans.map((s) => s.spanContext().traceId))];
      await eventually(async () => ((await source.getTrace(DEFAULT_TENANT, traceIds[0]!)).length === sdkTrace.spans.length ? true : undefined), 10_000, 'SDK spans stored');
      await eventually(async () => ((await source.searchLogs(DEFAULT_TENANT, { service: sdkLogs.service, limit: 10 })).length === sdkLogs.logs.length ? true : undefined), 10_000, 'SDK logs stored');
      // Row builders: every value kind, two traces of several spans, logs with and without trace context.
      const service = 'rows-' + randomUUID();
      const traces = [makeTrace(4, { serviceName: service }), makeTrace(3, { serviceName: service })];
      await writeSpans(source, traces.flat());
      const logs = [makeLog({ serviceName: service }), makeLog({ serviceName: service, traceId: '', spanId: '', body: { bytesValue: 'AAEC/w==' } })];
      await writeLogs(source, logs);
      const ids = [...traceIds, ...traces.map((t) => t[0]!.traceId)];
      const services = [sdkLogs.service, service];
      const before = await holdings(source, ids, services);
      expect(before.spans).toHaveLength(sdkTrace.spans.length + 7);
      expect(before.logs).toHaveLength(sdkLogs.logs.length + 2);
      // The row builders' rows are held exactly as written (the contract suite checks each store; this pins the source).
      expect(before.spans.filter((s) => s.serviceName === service)).toEqual(canonical(traces.flat().sort(byId)));

      const file = join(tempDir(), fileName);
      const exported = await exportStore(source, { out: file, tenant: DEFAULT_TENANT, signals: ['traces', 'logs'], pageRows: 3, ...quiet });
      expect(exported.spans).toBeGreaterThanOrEqual(sdkTrace.spans.length + 7);
      expect(exported.bytes).toBeGreaterThan(0);

      const report = await importFiles(target, { files: [file], onError: 'stop', maxMessageBytes: 64 << 20, ...quiet });
      expect(report.problems).toBe(0);
      expect(report.spans).toBe(exported.spans);
      expect(report.logs).toBe(exported.logs);
      expect(await holdings(target.backend, ids, services)).toEqual(before);

      // Importing the same file again stores nothing twice.
      const again = await importFiles(target, { files: [file], onError: 'stop', maxMessageBytes: 64 << 20, ...quiet });
      expect(again.problems).toBe(0);
      expect(await holdings(target.backend, ids, services)).toEqual(before);
    } finally {
      await collector.stop();
      await target.shutdown();
    }
  }, 60_000);
});

describe('copy between stores', () => {
  it('copies SQLite into PostgreSQL, interrupted and resumed, with nothing lost or stored twice', async () => {
    const source = await backendOf(await storeConfig('sqlite'));
    await source.start();
    const target = await sinkInto(await storeConfig('postgres'));
    const checkpoint = join(tempDir(), 'copy.checkpoint.json');
    try {
      const service = 'copy-' + randomUUID();
      const traces = Array.from({ length: 10 }, () => makeTrace(3, { serviceName: service }));
      await writeSpans(source, traces.flat());
      // Log records have no natural key: resending them is where duplicates would show.
      const logs = Array.from({ length: 30 }, (_, i) => makeLog({ serviceName: service, body: { stringValue: `log ${i}` } }));
      await writeLogs(source, logs);
      const ids = traces.map((t) => t[0]!.traceId);
      const before = await holdings(source, ids, [service]);

      // 8 pages of spans, 8 of logs; a checkpoint every 3 pages; stopped after 13 (inside the
      // logs, one page past the last checkpoint, which the second run sends again).
      const o = { tenant: DEFAULT_TENANT, signals: ['traces', 'logs'] as const, service, checkpoint, source: 'sqlite:test', pageRows: 4, pagesPerCheckpoint: 3, ...quiet };
      const first = await copyStore(source, target, { ...o, maxPages: 13 });
      expect(first.stopped).toBe(true);
      expect(first.spans + first.logs).toBe(13 * 4 - 2);
      const partial = await holdings(target.backend, ids, [service]);
      expect(partial.spans).toHaveLength(30);
      expect(partial.logs.length).toBeLessThan(30);

      const second = await copyStore(source, target, o);
      expect(second).toMatchObject({ stopped: false, problems: 0, spans: 0 });
      // Resumed from the checkpoint after page 12 (the 4th page of logs): page 13 is sent again, nothing before it.
      expect(second.logs).toBe(30 - 16);
      expect(await holdings(target.backend, ids, [service])).toEqual(before);

      // Rerun when finished: only rows written since are copied.
      const later = makeLog({ serviceName: service, body: { stringValue: 'later' } });
      await writeLogs(source, [later]);
      const third = await copyStore(source, target, o);
      expect(third).toMatchObject({ spans: 0, logs: 1, problems: 0 });
      expect(await target.backend.searchLogs(DEFAULT_TENANT, { service, limit: 100 })).toHaveLength(31);

      // A checkpoint of another copy is refused, not reused.
      await expect(copyStore(source, target, { ...o, service: 'other' })).rejects.toThrow(/other filters/);
      await expect(copyStore(source, target, { ...o, source: 'postgres:elsewhere' })).rejects.toThrow(/another source/);
    } finally {
      await source.shutdown();
      await target.shutdown();
    }
  }, 60_000);

  it('resumed with a larger line limit (more heap after an out-of-memory), sends the pages since the checkpoint as the first run did: no log record stored twice', async () => {
    const source = await backendOf(await storeConfig('sqlite'));
    await source.start();
    const target = await sinkInto(await storeConfig('memory'));
    try {
      const service = 'copy-resplit-' + randomUUID();
      // Records of about 1 KiB: a page of 4 is one line of about 4.5 KB, two lines under a 3,000-byte limit.
      await writeLogs(source, Array.from({ length: 12 }, (_, i) => makeLog({ serviceName: service, body: { stringValue: `n${i} ` + 'x'.repeat(1000) } })));
      const o = { tenant: DEFAULT_TENANT, signals: ['logs'] as const, service, checkpoint: join(tempDir(), 'cp.json'), source: 'sqlite:test', pageRows: 4, pagesPerCheckpoint: 2, ...quiet };
      // The first run's process had a small heap: its pages went in halves; stopped one page past its checkpoint.
      const first = await copyStore(source, target, { ...o, maxLineBytes: 3000, maxPages: 3 });
      expect(first).toMatchObject({ stopped: true, logs: 12 });
      // Run again with more heap (the line limit follows it): the third page is sent again.
      const second = await copyStore(source, target, { ...o, maxLineBytes: 64 * 1024 * 1024 });
      expect(second).toMatchObject({ stopped: false, problems: 0 });
      expect(await target.backend.searchLogs(DEFAULT_TENANT, { service, limit: 100 })).toHaveLength(12);
    } finally {
      await source.shutdown();
      await target.shutdown();
    }
  });

  it('keeps its checkpoint before a page the target refused, so the next run copies it', async () => {
    const source = await backendOf(await storeConfig('sqlite'));
    await source.start();
    const target = await sinkInto(await storeConfig('memory'));
    try {
      const service = 'copy-refused-' + randomUUID();
      await writeLogs(source, Array.from({ length: 6 }, (_, i) => makeLog({ serviceName: service, body: { stringValue: `n${i}` } })));
      // The target's decode worker dies on the first page (out of memory, say): refused as retryable.
      const pool = (target as unknown as { pool: { decode: (...a: unknown[]) => Promise<unknown> } }).pool;
      const decode = pool.decode.bind(pool);
      let failures = 1;
      pool.decode = (...a: unknown[]) => (failures-- > 0 ? Promise.reject(new Error('worker exited')) : decode(...a));
      const o = { tenant: DEFAULT_TENANT, signals: ['logs'] as const, service, checkpoint: join(tempDir(), 'cp.json'), source: 'sqlite:test', pageRows: 2, ...quiet };
      const first = await copyStore(source, target, o);
      expect(first).toMatchObject({ problems: 1, stopped: true });
      // Run again, as the summary says: every record reaches the target.
      const second = await copyStore(source, target, o);
      expect(second).toMatchObject({ problems: 0, stopped: false });
      expect(await target.backend.searchLogs(DEFAULT_TENANT, { service, limit: 100 })).toHaveLength(6);
    } finally {
      await source.shutdown();
      await target.shutdown();
    }
  });
});

describe('export beside a running collector', () => {
  it('reads a SQLite file on its own connection while the collector keeps writing to it, disturbing no write', async () => {
    const config = await storeConfig('sqlite');
    const writerSide = await backendOf(config);
    await writerSide.start();
    const reader = await backendOf(config); // what `tracehouse export` opens: its own connection to the file
    await reader.start();
    try {
      const service = 'busy-' + randomUUID();
      const first = Array.from({ length: 20 }, () => makeTrace(5, { serviceName: service }));
      await writeSpans(writerSide, first.flat());
      let writing = true;
      let written = 0;
      const writes = (async () => {
        while (writing) {
          await writeSpans(writerSide, makeTrace(5, { serviceName: service })); // throws unless the write succeeded
          written += 5;
        }
      })();
      const file = join(tempDir(), 'busy.jsonl');
      const r = await exportStore(reader, { out: file, tenant: DEFAULT_TENANT, signals: ['traces'], service, pageRows: 7, ...quiet });
      writing = false;
      await writes;
      expect(written).toBeGreaterThan(0);
      expect(r.spans).toBeGreaterThanOrEqual(100);
      expect(r.spans).toBeLessThanOrEqual(100 + written);
      // Every exported span once, whatever was written meanwhile.
      const ids = readFileSync(file, 'utf8').trim().split('\n').flatMap((l) => JSON.parse(l).resourceSpans[0].scopeSpans[0].spans.map((s: { spanId: string }) => s.spanId));
      expect(new Set(ids).size).toBe(r.spans);
      for (const s of first.flat()) expect(ids).toContain(s.spanId);
    } finally {
      await reader.shutdown();
      await writerSide.shutdown();
    }
  }, 60_000);
});
