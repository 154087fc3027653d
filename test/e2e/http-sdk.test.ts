// The real OpenTelemetry JS exporters (http/protobuf and http/json, with and without gzip) against
// a running collector: traces and logs come back through the read API field for field.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT_CONTEXT, SeverityNumber, SpanKind, SpanStatusCode, TraceFlags, createTraceState, trace, type Attributes, type HrTime } from '@opentelemetry/api';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { hex } from '../helpers/rows.ts';
import { anyValue } from '../helpers/sdk.ts';

type Protocol = 'http/protobuf' | 'http/json';
type Compression = 'none' | 'gzip';

interface Exporter<T> {
  export(items: T[], cb: (r: { code: number; error?: Error }) => void): void;
  shutdown(): Promise<void>;
}

function traceExporter(protocol: Protocol, url: string, compression: Compression): Exporter<ReadableSpan> {
  const opts = { url: `${url}/v1/traces`, compression: compression as never, timeoutMillis: 10_000 };
  return (protocol === 'http/protobuf' ? new ProtoTraceExporter(opts) : new JsonTraceExporter(opts)) as unknown as Exporter<ReadableSpan>;
}

function logExporter(protocol: Protocol, url: string, compression: Compression): Exporter<ReadableLogRecord> {
  const opts = { url: `${url}/v1/logs`, compression: compression as never, timeoutMillis: 10_000 };
  return (protocol === 'http/protobuf' ? new ProtoLogExporter(opts) : new JsonLogExporter(opts)) as unknown as Exporter<ReadableLogRecord>;
}

function exportAll<T>(exporter: Exporter<T>, items: T[]): Promise<void> {
  return new Promise((resolve, reject) =>
    exporter.export(items, (r) => (r.code === 0 ? resolve() : reject(r.error ?? new Error(`export failed with code ${r.code}`)))),
  );
}

const nanos = (t: HrTime): string => (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();

const attrs = (a: Attributes | undefined) => Object.entries(a ?? {}).map(([key, value]) => ({ key, value: anyValue(value) }));

/** W3C trace flags plus the OTLP "has is_remote" bits, as the SDK sends them. */
const spanFlags = (traceFlags: number, isRemote: boolean | undefined): number => (traceFlags & 0xff) | 0x100 | (isRemote ? 0x200 : 0);

function expectedSpan(s: ReadableSpan) {
  const ctx = s.spanContext();
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    traceState: ctx.traceState?.serialize() ?? '',
    parentSpanId: s.parentSpanContext?.spanId ?? '',
    flags: spanFlags(ctx.traceFlags, s.parentSpanContext?.isRemote),
    name: s.name,
    kind: s.kind + 1,
    startTimeUnixNano: nanos(s.startTime),
    endTimeUnixNano: nanos(s.endTime),
    attributes: attrs(s.attributes),
    droppedAttributesCount: s.droppedAttributesCount,
    events: s.events.map((e) => ({ timeUnixNano: nanos(e.time), name: e.name, attributes: attrs(e.attributes), droppedAttributesCount: e.droppedAttributesCount ?? 0 })),
    droppedEventsCount: s.droppedEventsCount,
    links: s.links.map((l) => ({
      traceId: l.context.traceId,
      spanId: l.context.spanId,
      traceState: l.context.traceState?.serialize() ?? '',
      flags: spanFlags(l.context.traceFlags, l.context.isRemote),
      attributes: attrs(l.attributes),
      droppedAttributesCount: l.droppedAttributesCount ?? 0,
    })),
    droppedLinksCount: s.droppedLinksCount,
    status: { code: s.status.code, message: s.status.message ?? '' },
  };
}

function expectedLog(l: ReadableLogRecord) {
  return {
    timeUnixNano: nanos(l.hrTime),
    observedTimeUnixNano: nanos(l.hrTimeObserved),
    severityNumber: l.severityNumber ?? 0,
    severityText: l.severityText ?? '',
    body: anyValue(l.body),
    attributes: attrs(l.attributes as Attributes),
    droppedAttributesCount: l.droppedAttributesCount,
    flags: l.spanContext?.traceFlags ?? 0,
    traceId: l.spanContext?.traceId ?? '',
    spanId: l.spanContext?.spanId ?? '',
    eventName: l.eventName ?? '',
  };
}

/** Every attribute type the SDK can produce. */
const RICH_ATTRIBUTES: Attributes = {
  'str': 'héllo wörld ✓',
  'empty.str': '',
  'bool.true': true,
  'bool.false': false,
  'int': 42,
  'int.negative': -7,
  'int.max_safe': Number.MAX_SAFE_INTEGER,
  'double': 3.14159,
  'double.negative': -0.5,
  'arr.str': ['a', 'b', ''],
  'arr.bool': [true, false],
  'arr.int': [1, 2, -3],
  'arr.double': [1.5, 2.25],
  'arr.empty': [],
};

const BASE_SEC = 1_750_000_000;

/** A trace of two spans (root with events, child with links and an error status) and its log records. */
function makeTelemetry(service: string, label: string): { spans: ReadableSpan[]; logs: ReadableLogRecord[]; traceId: string } {
  const resource = resourceFromAttributes({ 'service.name': service, 'deployment.environment': 'test', 'host.cpu.count': 8, 'process.pid.float': 12.5, 'tags': ['x', 'y'] });
  const spanSink = new InMemorySpanExporter();
  const tp = new TracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor({ exporter: spanSink })] });
  const tracer = tp.getTracer('tracehouse-e2e', '1.2.3');
  const traceId = hex(16);
  const remoteParent = { traceId, spanId: hex(8), traceFlags: TraceFlags.SAMPLED, isRemote: true, traceState: createTraceState('vendor=abc,other=1') };
  const parentCtx = trace.setSpanContext(ROOT_CONTEXT, remoteParent);
  const root = tracer.startSpan(`root ${label}`, { kind: SpanKind.SERVER, attributes: RICH_ATTRIBUTES, startTime: [BASE_SEC, 123_456_789] }, parentCtx);
  root.addEvent('event.one', { 'ev.str': 'x', 'ev.int': 9, 'ev.arr': [0.5] }, [BASE_SEC, 200_000_001]);
  root.addEvent('event.empty', {}, [BASE_SEC, 300_000_002]);
  root.setStatus({ code: SpanStatusCode.OK });
  const childCtx = trace.setSpan(ROOT_CONTEXT, root);
  const link = { context: { traceId: hex(16), spanId: hex(8), traceFlags: TraceFlags.NONE, traceState: createTraceState('k=v') }, attributes: { 'link.kind': 'follows', 'link.n': 2 } };
  const child = tracer.startSpan(`child ${label}`, { kind: SpanKind.CLIENT, attributes: { 'http.method': 'GET' }, links: [link, { context: { traceId: hex(16), spanId: hex(8), traceFlags: TraceFlags.SAMPLED } }], startTime: [BASE_SEC, 150_000_000] }, childCtx);
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'downstream failed' });
  child.end([BASE_SEC + 1, 999_999_999]);
  root.end([BASE_SEC + 2, 1]);

  const logSink = new InMemoryLogRecordExporter();
  const lp = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: logSink })] });
  const logger = lp.getLogger('tracehouse-e2e-logs', '4.5.6');
  logger.emit({
    timestamp: [BASE_SEC, 400_000_003],
    observedTimestamp: [BASE_SEC, 400_000_004],
    severityNumber: SeverityNumber.WARN,
    severityText: 'WARN',
    body: `log line ${label}`,
    attributes: RICH_ATTRIBUTES,
    eventName: 'e2e.event',
    context: childCtx,
  });
  logger.emit({
    timestamp: [BASE_SEC, 500_000_005],
    observedTimestamp: [BASE_SEC, 500_000_006],
    severityNumber: SeverityNumber.ERROR,
    body: { message: 'structured', count: 3, ratio: 0.25, ok: false, nested: { list: ['a', 1] }, raw: new Uint8Array([0, 1, 2, 255]) },
    context: childCtx,
  });
  return { spans: spanSink.getFinishedSpans(), logs: logSink.getFinishedLogRecords(), traceId };
}

async function roundTrip(c: TestCollector, protocol: Protocol, compression: Compression): Promise<void> {
  const service = `svc-${protocol.replace('/', '-')}-${compression}-${hex(3)}`;
  const { spans, logs, traceId } = makeTelemetry(service, `${protocol} ${compression}`);
  expect(spans).toHaveLength(2);
  expect(logs).toHaveLength(2);

  const te = traceExporter(protocol, c.httpUrl, compression);
  const le = logExporter(protocol, c.httpUrl, compression);
  await exportAll(te, spans);
  await exportAll(le, logs);
  await te.shutdown();
  await le.shutdown();

  const got = await eventually(async () => {
    const r = await getJson(c.queryUrl, `/v1/traces/${traceId}`);
    const n = r.body?.resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.length ?? 0;
    return r.status === 200 && n === 2 ? r.body : undefined;
  }, 10_000, `trace ${traceId}`);
  expect(got.resourceSpans).toHaveLength(1);
  const rs = got.resourceSpans[0];
  expect(rs.resource.attributes).toEqual(attrs(spans[0]!.resource.attributes as Attributes));
  expect(rs.scopeSpans).toHaveLength(1);
  expect(rs.scopeSpans[0].scope).toMatchObject({ name: 'tracehouse-e2e', version: '1.2.3' });
  // The read API orders spans by start time: the root (earlier) first.
  const byId = new Map<string, unknown>(rs.scopeSpans[0].spans.map((s: { spanId: string }) => [s.spanId, s]));
  for (const s of spans) expect(byId.get(s.spanContext().spanId)).toEqual(expectedSpan(s));

  const logsBody = await eventually(async () => {
    const r = await getJson(c.queryUrl, `/v1/logs?traceId=${traceId}`);
    const n = r.body?.resourceLogs?.flatMap((x: { scopeLogs: { logRecords: unknown[] }[] }) => x.scopeLogs.flatMap((s) => s.logRecords)).length ?? 0;
    return r.status === 200 && n === 2 ? r.body : undefined;
  }, 10_000, `logs of ${traceId}`);
  expect(logsBody.resourceLogs).toHaveLength(1);
  const rl = logsBody.resourceLogs[0];
  expect(rl.resource.attributes).toEqual(attrs(logs[0]!.resource.attributes as Attributes));
  expect(rl.scopeLogs).toHaveLength(1);
  expect(rl.scopeLogs[0].scope).toMatchObject({ name: 'tracehouse-e2e-logs', version: '4.5.6' });
  const records = rl.scopeLogs[0].logRecords as { timeUnixNano: string }[];
  const byTime = new Map(records.map((r) => [r.timeUnixNano, r]));
  for (const l of logs) expect(byTime.get(nanos(l.hrTime))).toEqual(expectedLog(l));

  // The same records by service.
  const bySvc = await getJson(c.queryUrl, `/v1/logs?service=${service}`);
  expect(bySvc.status).toBe(200);
  expect(bySvc.body.resourceLogs[0].scopeLogs[0].logRecords).toHaveLength(2);
}

const MATRIX: [Protocol, Compression][] = [
  ['http/protobuf', 'none'],
  ['http/protobuf', 'gzip'],
  ['http/json', 'none'],
  ['http/json', 'gzip'],
];

describe('OTLP/HTTP with the OpenTelemetry JS exporters (memory backend)', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(async () => {
    await c?.stop();
  });

  for (const [protocol, compression] of MATRIX) {
    it(`round-trips traces and logs over ${protocol}, compression ${compression}`, async () => {
      await roundTrip(c, protocol, compression);
    });
  }

  it('counts accepted spans and log records under transport="http"', async () => {
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_spans_total', { transport: 'http' })).toBe(2 * MATRIX.length);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_log_records_total', { transport: 'http' })).toBe(2 * MATRIX.length);
  });
});

describe('OTLP/HTTP with the OpenTelemetry JS exporters (sqlite backend)', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'sqlite' });
  });
  afterAll(async () => {
    await c?.stop();
  });

  for (const [protocol, compression] of MATRIX) {
    it(`round-trips traces and logs over ${protocol}, compression ${compression}`, async () => {
      await roundTrip(c, protocol, compression);
    });
  }
});
