// One signal's store path failing while the other's works: PostgreSQL refuses every log record
// (a trigger raising a retryable error, as a full tablespace for the logs table would) while spans
// go in. The Go Collector gives each pipeline its own queue; here the two signals share
// writer.maxQueueBytes, and the logs' retried backlog filled it: every trace export was refused
// 503 queue_full for as long as the logs failed (writer.retryMaxElapsedMs, 10 min by default).
// And /readyz said "storage writes failing" 2 s into the logs' failures, though spans were stored:
// every pod on that database left its Service, taking the traces with it.
import { SeverityNumber } from '@opentelemetry/api';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { chdbClient, chdbUrls, uniqueDatabase } from '../helpers/clickhouse.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { createTestDatabase } from '../helpers/postgres.ts';

function exportOnce<T>(exporter: { export(items: T[], cb: (r: { code: number; error?: Error }) => void): void }, items: T[]): Promise<Error | null> {
  return new Promise((resolve) => exporter.export(items, (r) => resolve(r.code === 0 ? null : (r.error ?? new Error(`code ${r.code}`)))));
}

function makeLogs(n: number): ReadableLogRecord[] {
  const mem = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({ resource: resourceFromAttributes({ 'service.name': 'noisy' }), processors: [new SimpleLogRecordProcessor({ exporter: mem })] });
  const logger = provider.getLogger('noisy');
  for (let i = 0; i < n; i++) logger.emit({ severityNumber: SeverityNumber.INFO, body: `line ${i} ${'x'.repeat(400)}` });
  return mem.getFinishedLogRecords();
}

function makeSpans(n: number): ReadableSpan[] {
  const mem = new InMemorySpanExporter();
  const provider = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'quiet' }), spanProcessors: [new SimpleSpanProcessor({ exporter: mem })] });
  const tracer = provider.getTracer('quiet');
  for (let i = 0; i < n; i++) tracer.startSpan(`op${i}`).end();
  return mem.getFinishedSpans();
}

const QUEUE = { 'writer.maxQueueBytes': '1048576', 'writer.retryInitialMs': '50', 'writer.retryMaxMs': '200' };

/** Whether the collector refused one of at most 400 sends of batch (the logs' backlog held until it did). */
async function logsUntilRefused(exporter: OTLPLogExporter, batch: ReadableLogRecord[]): Promise<boolean> {
  for (let i = 0; i < 400; i++) if ((await exportOnce(exporter, batch)) !== null) return true;
  return false;
}

/** Waits until the trace reads back from the read API within ms. */
async function untilTraceReadable(c: TestCollector, traceId: string, ms: number, what: string): Promise<void> {
  const found = await eventually(async () => {
    const r = await getJson(c.queryUrl, `/v1/traces/${traceId}`);
    return r.status === 200 ? r.status : undefined;
  }, ms, what);
  expect(found).toBe(200);
}

/** A collector on a new PostgreSQL database whose logs table a trigger refuses (a retryable error, as a full tablespace), for body. */
async function onPostgresRefusingLogs(name: string, body: (c: TestCollector) => Promise<void>): Promise<void> {
  const url = await createTestDatabase(name);
  const c = await startCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': url, ...QUEUE });
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE FUNCTION refuse_logs() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'logs tablespace full' USING ERRCODE = '53100'; END $$`);
    await admin.query(`CREATE TRIGGER refuse_logs BEFORE INSERT ON tracehouse.logs FOR EACH ROW EXECUTE FUNCTION refuse_logs()`);
    await body(c);
  } finally {
    // The store takes logs again, so the collector's stop drains its queue at once: the trigger's
    // function replaced, not the trigger dropped. DROP TRIGGER on the partitioned table deadlocked
    // now and then with the writer's retried inserts (PostgreSQL's "deadlock detected", which the
    // clean-up ignored), the trigger stayed, and the stop waited out its 30 s drain: the test timed out.
    try {
      await admin.query(`CREATE OR REPLACE FUNCTION refuse_logs() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`);
    } finally {
      await admin.end();
      await c.stop();
    }
  }
}

/** With the store refusing logs: logs are sent until refused, then traces must be accepted, stored, and the collector ready. */
async function tracesGoOn(c: TestCollector): Promise<void> {
  const logExporter = new OTLPLogExporter({ url: `${c.httpUrl}/v1/logs`, timeoutMillis: 1000 });
  const traceExporter = new OTLPTraceExporter({ url: `${c.httpUrl}/v1/traces`, timeoutMillis: 3000 });
  try {
    // Both signals flow, as a platform's SDKs send them: a first trace export is taken.
    expect(await exportOnce(traceExporter, makeSpans(1))).toBeNull();
    // Logs until the collector refuses them: their backlog is retried and held.
    expect(await logsUntilRefused(logExporter, makeLogs(50))).toBe(true);
    // Spans, into a table that takes them: accepted, stored, readable.
    const spans = makeSpans(512);
    expect(await exportOnce(traceExporter, spans)).toBeNull();
    await untilTraceReadable(c, spans[0]!.spanContext().traceId, 5000, 'trace readable');
    // Past the 2 s readiness gives failing writes: the pod keeps its place behind the Service,
    // where the traces it stores reach it (logs are refused by the queue already).
    await new Promise((r) => setTimeout(r, 2500));
    expect(await exportOnce(traceExporter, makeSpans(5))).toBeNull();
    const ready = await fetch(`${c.opsUrl}/readyz`);
    expect({ status: ready.status, body: await ready.text() }).toEqual({ status: 200, body: expect.not.stringContaining('failing') });
  } finally {
    await logExporter.shutdown();
    await traceExporter.shutdown();
  }
}

describe('one signal refused by the store while the other goes in', () => {
  it('postgres, a trigger refusing the logs table: traces accepted, stored, and ready', async () => {
    await onPostgresRefusingLogs('signal_isolation', tracesGoOn);
  }, 30_000);

  it('postgres, a collector sent logs only: a store refusing them may fill the whole queue before logs are refused', async () => {
    // With one signal there is no other to keep room for: an outage is buffered in all of
    // writer.maxQueueBytes, not in half of it.
    await onPostgresRefusingLogs('signal_isolation_one', async (c) => {
      const logExporter = new OTLPLogExporter({ url: `${c.httpUrl}/v1/logs`, timeoutMillis: 1000 });
      try {
        expect(await logsUntilRefused(logExporter, makeLogs(50))).toBe(true);
        const queued = await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes');
        expect(queued).toBeGreaterThan(0.75 * Number(QUEUE['writer.maxQueueBytes']));
      } finally {
        await logExporter.shutdown();
      }
    });
  }, 30_000);

  it('postgres, a lock held on the logs table: spans still get a connection and are stored', async () => {
    // Each log write the writer timed out (writer.writeTimeoutMs) went on waiting for the lock at
    // the server until the statement timeout (60 s by default), holding its pool connection; the
    // retries took more, until every one of storage.postgres.poolSize waited on the logs table and
    // spans, whose table was free, were not stored until the lock went.
    const url = await createTestDatabase('signal_isolation_lock');
    const c = await startCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': url, 'writer.writeTimeoutMs': '300', 'storage.postgres.statementTimeoutMs': '5000', 'writer.retryInitialMs': '50', 'writer.retryMaxMs': '100' });
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const logExporter = new OTLPLogExporter({ url: `${c.httpUrl}/v1/logs`, timeoutMillis: 2000 });
    const traceExporter = new OTLPTraceExporter({ url: `${c.httpUrl}/v1/traces`, timeoutMillis: 2000 });
    try {
      await admin.query('BEGIN');
      await admin.query('LOCK TABLE tracehouse.logs IN ACCESS EXCLUSIVE MODE');
      // Several log batches (a flush every 20 ms), each retried while the lock is held.
      for (let i = 0; i < 8; i++) {
        expect(await exportOnce(logExporter, makeLogs(1))).toBeNull();
        await new Promise((r) => setTimeout(r, 40));
      }
      await new Promise((r) => setTimeout(r, 1500));
      const spans = makeSpans(1);
      expect(await exportOnce(traceExporter, spans)).toBeNull();
      await untilTraceReadable(c, spans[0]!.spanContext().traceId, 3000, 'trace readable while the logs table is locked');
    } finally {
      await admin.query('ROLLBACK').catch(() => undefined);
      await logExporter.shutdown();
      await traceExporter.shutdown();
      await admin.end();
      await c.stop();
    }
  }, 30_000);

  it('clickhouse (chdb), the logs table renamed away: traces accepted, stored, and ready', async () => {
    const db = uniqueDatabase('iso');
    const { logger, lines } = capturedLogger();
    const c = await startCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': chdbUrls([db]), ...QUEUE }, { logger });
    const client = await chdbClient();
    try {
      await client.command({ query: `RENAME TABLE ${db}.otel_logs TO ${db}.otel_logs_away` });
      await tracesGoOn(c);
      // The operator is told the table is missing, not sent looking for a column.
      const failed = lines().find((l) => l.msg.startsWith('storage write failed') && l['signal'] === 'logs');
      expect(failed?.['err']).toContain(`ClickHouse table ${db}.otel_logs does not exist`);
    } finally {
      await client.command({ query: `RENAME TABLE ${db}.otel_logs_away TO ${db}.otel_logs` }).catch(() => undefined);
      await c.stop();
      await client.close();
    }
  }, 30_000);
});
