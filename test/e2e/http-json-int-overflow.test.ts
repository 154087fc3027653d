// The OpenTelemetry JS SDK's http/json exporters write every integer-valued JS number as
// `intValue`, also those outside int64 (2 ** 64 as 18446744073709552000, 1e21 as 1e+21); its
// protobuf serializer sends the same numbers as `doubleValue`. One such attribute refused the
// whole request with 400 (not retried: the batch was lost), where the same spans and log records
// over http/protobuf were stored. Both forms must store the same value.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';

const ATTRS = { 'file.size': 2 ** 64, 'huge': 1e21, 'max': Number.MAX_VALUE, 'min.int64': -(2 ** 63), 'list': [1, 2 ** 70] };

async function sendBoth(c: TestCollector, protocol: 'json' | 'proto'): Promise<string> {
  const service = `int-overflow-${protocol}`;
  const resource = resourceFromAttributes({ 'service.name': service });
  const traceUrl = { url: `${c.httpUrl}/v1/traces` };
  const logUrl = { url: `${c.httpUrl}/v1/logs` };
  const tracer = new TracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor({ exporter: protocol === 'json' ? new JsonTraceExporter(traceUrl) : new ProtoTraceExporter(traceUrl) })] });
  const span = tracer.getTracer('t').startSpan('upload', { attributes: ATTRS });
  span.addEvent('chunk', { offset: 2 ** 64 });
  span.end();
  const logs = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: protocol === 'json' ? new JsonLogExporter(logUrl) : new ProtoLogExporter(logUrl) })] });
  logs.getLogger('l').emit({ body: { bytes: 2 ** 64 }, attributes: ATTRS });
  await tracer.forceFlush();
  await logs.forceFlush();
  await tracer.shutdown();
  await logs.shutdown();
  return service;
}

describe('OTLP/JSON integers outside int64, as the JS SDK writes them', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(async () => c?.stop());

  it('are stored as the same SDK sends them over protobuf, not refused with the whole batch', async () => {
    const read = async (service: string) => {
      const spans = await eventually(async () => {
        const r = await getJson(c.queryUrl, `/v1/traces?service=${service}`);
        const id = r.body?.traces?.[0]?.traceId;
        if (!id) return undefined;
        return (await getJson(c.queryUrl, `/v1/traces/${id}`)).body.resourceSpans[0].scopeSpans[0].spans;
      }, 5_000, `spans of ${service}`);
      const records = await eventually(async () => {
        const r = await getJson(c.queryUrl, `/v1/logs?service=${service}`);
        return r.body?.resourceLogs?.[0]?.scopeLogs[0].logRecords;
      }, 5_000, `log records of ${service}`);
      return { attributes: spans[0].attributes, event: spans[0].events[0].attributes, log: records[0].attributes, body: records[0].body };
    };
    const proto = await read(await sendBoth(c, 'proto'));
    expect(proto.attributes).toContainEqual({ key: 'file.size', value: { doubleValue: 2 ** 64 } });
    expect(proto.attributes).toContainEqual({ key: 'min.int64', value: { intValue: '-9223372036854775808' } });
    const json = await read(await sendBoth(c, 'json'));
    expect(json).toStrictEqual(proto);
  });
});
