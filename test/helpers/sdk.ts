// Telemetry produced by the real OpenTelemetry JS SDK, sent through a real exporter, and the
// OTLP/JSON a user expects to read back for it. Shared by the gRPC and HTTP end-to-end tests.
import { SeverityNumber, SpanKind, SpanStatusCode, TraceFlags, context, trace, type Attributes } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor, type LogRecordExporter, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { randomUUID } from 'node:crypto';

type Json = any;

/** A JS attribute or body value as OTLP/JSON AnyValue, by the SDK transformer's rules. */
export function anyValue(v: unknown): Json {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (v instanceof Uint8Array) return { bytesValue: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  if (v !== null && typeof v === 'object') return { kvlistValue: { values: Object.entries(v).map(([key, value]) => ({ key, value: anyValue(value) })) } };
  return {};
}

function kvs(attrs: Attributes | Record<string, unknown> | undefined): Json[] {
  return Object.entries(attrs ?? {})
    .map(([key, value]) => ({ key, value: anyValue(value) }))
    .sort((a, b) => (a.key < b.key ? -1 : 1));
}

const ns = (t: [number, number]): string => (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();

/** Sorts attribute lists inside a read-API document so comparisons ignore order. */
export function sortAttributes(doc: Json): Json {
  return JSON.parse(JSON.stringify(doc), (_k, v) =>
    Array.isArray(v) && v.every((e) => e && typeof e === 'object' && 'key' in e && 'value' in e) ? [...v].sort((a, b) => (a.key < b.key ? -1 : 1)) : v,
  );
}

/** The span as the read API should render it (flags compared separately: the exporter adds its own bits). */
export function expectedSpan(s: ReadableSpan): Json {
  return {
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    traceState: s.spanContext().traceState?.serialize() ?? '',
    parentSpanId: s.parentSpanContext?.spanId ?? '',
    name: s.name,
    kind: s.kind + 1,
    startTimeUnixNano: ns(s.startTime),
    endTimeUnixNano: ns(s.endTime),
    attributes: kvs(s.attributes),
    droppedAttributesCount: s.droppedAttributesCount,
    events: s.events.map((e) => ({ timeUnixNano: ns(e.time), name: e.name, attributes: kvs(e.attributes), droppedAttributesCount: e.droppedAttributesCount ?? 0 })),
    droppedEventsCount: s.droppedEventsCount,
    links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId, traceState: l.context.traceState?.serialize() ?? '', attributes: kvs(l.attributes), droppedAttributesCount: l.droppedAttributesCount ?? 0 })),
    droppedLinksCount: s.droppedLinksCount,
    status: { code: s.status.code, message: s.status.message ?? '' },
  };
}

/** The resource and scope of a span or record as the read API renders them. */
export function expectedResourceScope(r: ReadableSpan | ReadableLogRecord): Json {
  return {
    resource: kvs(r.resource.attributes as Attributes),
    scope: { name: r.instrumentationScope.name, version: r.instrumentationScope.version ?? '' },
  };
}

/** The log record as the read API should render it. */
export function expectedLog(r: ReadableLogRecord): Json {
  return {
    timeUnixNano: ns(r.hrTime),
    observedTimeUnixNano: ns(r.hrTimeObserved),
    severityNumber: r.severityNumber ?? 0,
    severityText: r.severityText ?? '',
    body: anyValue(r.body),
    attributes: kvs(r.attributes as Record<string, unknown>),
    droppedAttributesCount: r.droppedAttributesCount,
    traceId: r.spanContext?.traceId ?? '',
    spanId: r.spanContext?.spanId ?? '',
    eventName: r.eventName ?? '',
  };
}

/** Exports the items in one call of the exporter; rejects unless it reports success. */
export function exportAll<T>(exporter: { export(items: T[], cb: (r: ExportResult) => void): void }, items: T[]): Promise<void> {
  return new Promise((resolve, reject) =>
    exporter.export(items, (r) => (r.code === ExportResultCode.SUCCESS ? resolve() : reject(r.error ?? new Error('export failed')))),
  );
}

/** Creates spans with the SDK (every attribute type it supports, events, links, status, nesting) and exports them through `exporter`. */
export async function sendSdkTrace(exporter: SpanExporter, service = 'sdk-' + randomUUID()): Promise<{ service: string; spans: ReadableSpan[] }> {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.version': '1.0.0', 'host.cores': 8, 'deployment.canary': false }),
    spanProcessors: [new SimpleSpanProcessor({ exporter: memory })],
  });
  const tracer = provider.getTracer('e2e-scope', '2.3.4');
  const linked = { traceId: 'a'.repeat(31) + '1', spanId: 'b'.repeat(15) + '2', traceFlags: TraceFlags.SAMPLED };
  const root = tracer.startSpan('GET /orders', {
    kind: SpanKind.SERVER,
    attributes: { 'http.method': 'GET', 'http.status_code': 200, 'ratio': 0.25, 'ok': true, 'tags': ['a', 'b'], 'ints': [1, 2, 3], 'big': 2 ** 52 + 1, 'neg': -42 },
    links: [{ context: linked, attributes: { 'link.kind': 'follows', 'weight': 1.5 } }],
    startTime: [1_700_000_000, 123_456_789],
  });
  const ctx = trace.setSpan(context.active(), root);
  const child = tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql', 'db.rows': 17 } }, ctx);
  child.addEvent('query.start', { 'attempt': 1, 'cached': false }, [1_700_000_000, 200_000_001]);
  child.addEvent('query.end');
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'deadlock detected' });
  child.end([1_700_000_000, 900_000_000]);
  const producer = tracer.startSpan('publish', { kind: SpanKind.PRODUCER }, ctx);
  producer.setStatus({ code: SpanStatusCode.OK });
  producer.end();
  root.end([1_700_000_001, 5]);
  await provider.forceFlush();
  const spans = memory.getFinishedSpans();
  await exportAll(exporter, [...spans]);
  await exporter.shutdown();
  await provider.shutdown();
  return { service, spans: [...spans] };
}

/** Emits log records with the SDK (string, map and bytes bodies, attributes, severities, trace context) and exports them. */
export async function sendSdkLogs(exporter: LogRecordExporter, service = 'sdk-' + randomUUID()): Promise<{ service: string; logs: ReadableLogRecord[] }> {
  const memory = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'env': 'test' }),
    processors: [new SimpleLogRecordProcessor({ exporter: memory })],
  });
  const logger = provider.getLogger('e2e-logger', '0.9.0');
  const spanCtx = { traceId: 'c'.repeat(31) + '3', spanId: 'd'.repeat(15) + '4', traceFlags: TraceFlags.SAMPLED };
  const withSpan = trace.setSpanContext(context.active(), spanCtx);
  logger.emit({ severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: 'order created', attributes: { 'order.id': 'o-1', 'amount': 12.5, 'count': 3, 'vip': true }, timestamp: [1_700_000_000, 1], context: withSpan });
  logger.emit({ severityNumber: SeverityNumber.ERROR, severityText: 'ERROR', body: { msg: 'payment failed', code: 402, details: { retry: false, ids: [1, 2] } }, eventName: 'payment.failed', timestamp: [1_700_000_000, 2] });
  logger.emit({ severityNumber: SeverityNumber.DEBUG, body: new Uint8Array([0, 1, 2, 250]), timestamp: [1_700_000_000, 3] });
  await provider.forceFlush();
  const logs = memory.getFinishedLogRecords();
  await exportAll(exporter, [...logs]);
  await exporter.shutdown();
  await provider.shutdown();
  return { service, logs: [...logs] };
}
