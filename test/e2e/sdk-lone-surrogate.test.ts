// The JavaScript SDK cuts attribute values to attributeValueLengthLimit UTF-16 units, which can
// split an emoji and leave a lone surrogate. Its http/json exporter sends that as a "\ud83d"
// escape, its protobuf exporters as bytes that are not UTF-8; every store must read it back the
// same way, as the replacement character U+FFFD (what a protobuf string can hold), never as a
// lone surrogate escape that strict JSON readers of the read API (serde_json) refuse.
// PostgreSQL kept the escape verbatim in its json columns while the other stores replaced it.
import { ROOT_CONTEXT, SeverityNumber } from '@opentelemetry/api';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';
import { hex } from '../helpers/rows.ts';
import { exportAll } from '../helpers/sdk.ts';
import { storeFlags } from '../helpers/stores.ts';

/** '😀😀' cut to 3 UTF-16 units by the SDK: the emoji and half of the next one. */
const CUT = '😀😀'.slice(0, 3);
const READ_BACK = '😀\uFFFD';

for (const [backend, options] of Object.entries(storeFlags('surrogate', 1))) {
  describe(`a lone surrogate from the SDK's http/json exporters into ${backend}`, () => {
    let c: TestCollector;
    beforeAll(async () => {
      c = await startCollector({ 'storage.backend': backend, ...(await options()) });
    });
    afterAll(async () => c?.stop());

    it('reads back as U+FFFD in span, event and link attributes and the resource', async () => {
      const memory = new InMemorySpanExporter();
      const provider = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': `surrogate-${hex(4)}`, 'res.cut': CUT }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: memory })],
        spanLimits: { attributeValueLengthLimit: 3 },
      });
      const span = provider.getTracer('cut').startSpan('cut', { attributes: { 'emoji': '😀😀', [`key.${CUT}`]: 'k' } }, ROOT_CONTEXT);
      span.addEvent('ev', { 'ev.cut': CUT });
      span.end();
      const spans = memory.getFinishedSpans();
      expect(spans[0]!.attributes['emoji']).toBe(CUT);
      await exportAll(new JsonTraceExporter({ url: `${c.httpUrl}/v1/traces` }), [...spans]);
      const doc = await eventually(async () => {
        const r = await getJson(c.queryUrl, `/v1/traces/${spans[0]!.spanContext().traceId}`);
        return r.status === 200 ? r.body : undefined;
      }, 10_000, 'trace readable');
      const rs = doc.resourceSpans[0];
      const value = (attrs: { key: string; value: { stringValue?: string } }[], key: string) => attrs.find((a) => a.key === key)?.value.stringValue;
      expect(value(rs.resource.attributes, 'res.cut')).toBe(READ_BACK);
      const stored = rs.scopeSpans[0].spans[0];
      expect(value(stored.attributes, 'emoji')).toBe(READ_BACK);
      expect(stored.attributes.map((a: { key: string }) => a.key)).toContain(`key.${READ_BACK}`);
      expect(value(stored.events[0].attributes, 'ev.cut')).toBe(READ_BACK);
    });

    it('reads back as U+FFFD in a log body and its attributes', async () => {
      const memory = new InMemoryLogRecordExporter();
      const service = `surrogate-logs-${hex(4)}`;
      const provider = new LoggerProvider({ resource: resourceFromAttributes({ 'service.name': service }), processors: [new SimpleLogRecordProcessor({ exporter: memory })] });
      provider.getLogger('cut').emit({ severityNumber: SeverityNumber.INFO, body: { text: CUT }, attributes: { 'attr.cut': CUT } });
      const logs = memory.getFinishedLogRecords();
      await exportAll(new JsonLogExporter({ url: `${c.httpUrl}/v1/logs` }), [...logs]);
      const records = await eventually(async () => {
        const r = await getJson(c.queryUrl, `/v1/logs?service=${service}`);
        const found = r.body?.resourceLogs?.flatMap((rl: any) => rl.scopeLogs.flatMap((sl: any) => sl.logRecords)) ?? [];
        return found.length === 1 ? found : undefined;
      }, 10_000, 'log readable');
      expect(records[0].body).toEqual({ kvlistValue: { values: [{ key: 'text', value: { stringValue: READ_BACK } }] } });
      expect(records[0].attributes).toEqual([{ key: 'attr.cut', value: { stringValue: READ_BACK } }]);
    });
  });
}
