// With delivery.ack = stored and a store slower than the client's timeout, the real SDK's gRPC
// exporters give up (DEADLINE_EXCEEDED) while their rows wait for the store. What README says
// of it: such an export is not withdrawn, its rows are stored once the store takes them and
// counted as accepted, no refusal is counted, and tracehouse_receiver_unanswered_requests_total
// says its client never heard back; sent again, its spans read once (the OTLP read and Jaeger's)
// and its log records twice (they carry no id). The same over OTLP/HTTP, whose exporter closes
// its connection at its timeout.
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { expect, it } from 'vitest';
import { eventually, getJson, metricValue, startCollector } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

const send = <T>(exporter: { export(items: T[], cb: (r: ExportResult) => void): void }, items: T[]): Promise<ExportResult> => new Promise((resolve) => exporter.export([...items], resolve));

it('stores once the spans of an export whose gRPC deadline passed while SQLite was locked, and counts no refusal; its log records sent again are stored twice', async () => {
  const path = join(tempDir(), 'tracehouse.db');
  const c = await startCollector({ 'storage.backend': 'sqlite', 'storage.sqlite.path': path, 'delivery.ack': 'stored' });
  const service = 'deadline-' + randomUUID();
  const resource = resourceFromAttributes({ 'service.name': service });
  const spanMemory = new InMemorySpanExporter();
  const tracer = new TracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor({ exporter: spanMemory })] }).getTracer('t');
  for (let i = 0; i < 3; i++) tracer.startSpan(`op-${i}`).end();
  const spans = spanMemory.getFinishedSpans();
  const logMemory = new InMemoryLogRecordExporter();
  const logger = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: logMemory })] }).getLogger('l');
  for (let i = 0; i < 2; i++) logger.emit({ body: `line ${i}` });
  const logs = logMemory.getFinishedLogRecords();
  const traceExporter = new OTLPTraceExporter({ url: `http://${c.grpcAddress}`, timeoutMillis: 300 });
  const logExporter = new OTLPLogExporter({ url: `http://${c.grpcAddress}`, timeoutMillis: 300 });
  // The resends wait as long as the SDK's default allows: right after the lock goes, the store
  // first writes what waited behind it, which on a loaded machine can take more than 300 ms.
  const traceResender = new OTLPTraceExporter({ url: `http://${c.grpcAddress}`, timeoutMillis: 10_000 });
  const logResender = new OTLPLogExporter({ url: `http://${c.grpcAddress}`, timeoutMillis: 10_000 });
  try {
    // Another connection holds SQLite's write lock: the collector's writes wait past the deadline.
    const locker = new DatabaseSync(path);
    locker.exec('BEGIN IMMEDIATE');
    try {
      for (const r of [await send(traceExporter, spans), await send(logExporter, logs)]) {
        expect(r.code).toBe(ExportResultCode.FAILED);
        expect(r.error?.message).toMatch(/DEADLINE_EXCEEDED/);
      }
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    // Sent again, as a client retrying DEADLINE_EXCEEDED does: acknowledged now.
    expect((await send(traceResender, spans)).code).toBe(ExportResultCode.SUCCESS);
    expect((await send(logResender, logs)).code).toBe(ExportResultCode.SUCCESS);

    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes')) === 0 ? true : undefined), 5000, 'the queue empty');
    for (const s of spans) {
      const traceId = s.spanContext().traceId;
      const otlp = await getJson(c.queryUrl, `/v1/traces/${traceId}`);
      expect(otlp.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)).map((x: any) => x.spanId)).toEqual([s.spanContext().spanId]);
      const jaeger = await getJson(c.queryUrl, `/api/traces/${traceId}`);
      expect(jaeger.body.data[0].spans.map((x: any) => x.spanID)).toEqual([s.spanContext().spanId]);
    }
    const read = await getJson(c.queryUrl, `/v1/logs?service=${service}`);
    expect(read.body.resourceLogs.flatMap((rl: any) => rl.scopeLogs.flatMap((sl: any) => sl.logRecords))).toHaveLength(2 * logs.length);
    // Every export counted as accepted, the two the clients gave up on too; no refusal.
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_requests_total', { transport: 'grpc' })).toBe(4);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total')).toBe(0);
    // The two whose clients gave up are counted as unanswered, the resends not.
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_unanswered_requests_total', { transport: 'grpc' })).toBe(2);
  } finally {
    for (const e of [traceExporter, logExporter, traceResender, logResender]) await e.shutdown();
    await c.stop();
  }
}, 30_000);

it('counts as unanswered an OTLP/HTTP export whose exporter closed its connection at its timeout while SQLite was locked, and stores its spans once when sent again', async () => {
  const path = join(tempDir(), 'tracehouse.db');
  const c = await startCollector({ 'storage.backend': 'sqlite', 'storage.sqlite.path': path, 'delivery.ack': 'stored' });
  const spanMemory = new InMemorySpanExporter();
  const tracer = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'unanswered-http' }), spanProcessors: [new SimpleSpanProcessor({ exporter: spanMemory })] }).getTracer('t');
  for (let i = 0; i < 3; i++) tracer.startSpan(`op-${i}`).end();
  const spans = spanMemory.getFinishedSpans();
  const exporter = new ProtoTraceExporter({ url: `${c.httpUrl}/v1/traces`, timeoutMillis: 300 });
  try {
    const locker = new DatabaseSync(path);
    locker.exec('BEGIN IMMEDIATE');
    try {
      expect((await send(exporter, spans)).code).toBe(ExportResultCode.FAILED);
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    // Each request sent while the store was locked (the exporter may retry within its timeout) is answered after its client left.
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes')) === 0 ? true : undefined), 5000, 'the queue empty');
    const gaveUp = await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_requests_total', { transport: 'http' });
    expect(gaveUp).toBeGreaterThanOrEqual(1);
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_receiver_unanswered_requests_total', { transport: 'http' })) === gaveUp ? true : undefined), 5000, 'every locked-out request counted unanswered');
    expect((await send(exporter, spans)).code).toBe(ExportResultCode.SUCCESS);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_requests_total', { transport: 'http' })).toBe(gaveUp + 1);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_unanswered_requests_total', { transport: 'http' })).toBe(gaveUp);
    for (const s of spans) {
      const otlp = await getJson(c.queryUrl, `/v1/traces/${s.spanContext().traceId}`);
      expect(otlp.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)).map((x: any) => x.spanId)).toEqual([s.spanContext().spanId]);
    }
  } finally {
    await exporter.shutdown();
    await c.stop();
  }
}, 20_000);
