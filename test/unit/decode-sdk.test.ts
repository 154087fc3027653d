// What the real OpenTelemetry JS SDK sends: spans and log records made with the SDK, serialized
// by its own OTLP serializers (protobuf and JSON, independent of our .proto files), decode to the
// same rows either way and carry what the SDK recorded.
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { JsonLogsSerializer, JsonTraceSerializer, ProtobufLogsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { decodeLogsJson, decodeLogsProto, decodeTracesJson, decodeTracesProto } from '../../src/pipeline/decode/index.ts';
import type { KeyValue } from '../../src/model/rows.ts';
import { expectedLog, expectedResourceScope, expectedSpan, sendSdkLogs, sendSdkTrace, sortAttributes } from '../helpers/sdk.ts';

const LIMITS = { maxNestingDepth: 100 };

/** An exporter that only keeps what it is given. */
function capture<T>() {
  const items: T[] = [];
  return {
    items,
    export(batch: T[], done: (r: ExportResult) => void) {
      items.push(...batch);
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: async () => {},
    forceFlush: async () => {},
  };
}

// Row attributes as plain OTLP/JSON, the shape the SDK helper describes.
const kvs = (a: KeyValue[]) => a.map((kv) => ({ key: kv.key, value: kv.value }));

describe('payloads from the OpenTelemetry JS SDK serializers', () => {
  it('spans: protobuf and JSON decode to the same rows, with what the SDK recorded', async () => {
    const exporter = capture<ReadableSpan>();
    const { service } = await sendSdkTrace(exporter as never);
    const spans = exporter.items;
    const pb = decodeTracesProto(ProtobufTraceSerializer.serializeRequest(spans)!, LIMITS);
    const json = decodeTracesJson(JsonTraceSerializer.serializeRequest(spans)!, LIMITS);
    expect(pb.rejected).toBe(0);
    expect(json.rows).toStrictEqual(pb.rows);
    expect(pb.rows).toHaveLength(spans.length);
    for (const s of spans) {
      const row = pb.rows.find((r) => r.spanId === s.spanContext().spanId)!;
      const asJson = sortAttributes({
        traceId: row.traceId,
        spanId: row.spanId,
        traceState: row.traceState,
        parentSpanId: row.parentSpanId,
        name: row.name,
        kind: row.kind,
        startTimeUnixNano: row.startTimeUnixNano.toString(),
        endTimeUnixNano: row.endTimeUnixNano.toString(),
        attributes: kvs(row.attributes),
        droppedAttributesCount: row.droppedAttributesCount,
        events: row.events.map((e) => ({ timeUnixNano: e.timeUnixNano.toString(), name: e.name, attributes: kvs(e.attributes), droppedAttributesCount: e.droppedAttributesCount })),
        droppedEventsCount: row.droppedEventsCount,
        links: row.links.map((l) => ({ traceId: l.traceId, spanId: l.spanId, traceState: l.traceState, attributes: kvs(l.attributes), droppedAttributesCount: l.droppedAttributesCount })),
        droppedLinksCount: row.droppedLinksCount,
        status: { code: row.statusCode, message: row.statusMessage },
      });
      expect(asJson).toStrictEqual(sortAttributes(expectedSpan(s)));
      const rs = expectedResourceScope(s);
      expect(sortAttributes(kvs(row.resource.attributes))).toStrictEqual(rs.resource);
      expect({ name: row.scope.name, version: row.scope.version }).toStrictEqual(rs.scope);
      expect(row.serviceName).toBe(service);
      expect(row.durationNano).toBe(row.endTimeUnixNano - row.startTimeUnixNano);
      // Span flags: W3C trace flags in the low byte plus the "has is-remote" bit (0x100) the SDK sets.
      expect(row.flags & 0x1ff).toBe(s.spanContext().traceFlags | 0x100);
    }
  });

  it('log records: protobuf and JSON decode to the same rows, event_name and bytes bodies included', async () => {
    const exporter = capture<ReadableLogRecord>();
    const { service } = await sendSdkLogs(exporter as never);
    const logs = exporter.items;
    const pb = decodeLogsProto(ProtobufLogsSerializer.serializeRequest(logs)!, LIMITS);
    const json = decodeLogsJson(JsonLogsSerializer.serializeRequest(logs)!, LIMITS);
    expect(json.rows).toStrictEqual(pb.rows);
    expect(pb.rows).toHaveLength(logs.length);
    for (const [i, l] of logs.entries()) {
      const row = pb.rows[i];
      const asJson = sortAttributes({
        timeUnixNano: row.timeUnixNano.toString(),
        observedTimeUnixNano: row.observedTimeUnixNano.toString(),
        severityNumber: row.severityNumber,
        severityText: row.severityText,
        body: row.body,
        attributes: kvs(row.attributes),
        droppedAttributesCount: row.droppedAttributesCount,
        traceId: row.traceId,
        spanId: row.spanId,
        eventName: row.eventName,
      });
      expect(asJson).toStrictEqual(sortAttributes(expectedLog(l)));
      expect(row.serviceName).toBe(service);
    }
    expect(pb.rows.map((r) => r.eventName)).toContain('payment.failed');
  });
});
