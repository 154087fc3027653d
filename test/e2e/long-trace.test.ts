// A long job's trace, exported as it runs: the real SDK's gRPC exporter sends a trace of 6,000
// spans in 30 exports of 200, and two of them again (a client's retry), into every store. The
// trace reads back whole, each span once. Past 4,096 spans SQLite keeps the trace's span ids in a
// set of its own, and past 32 the memory store does (src/storage/id-set.ts); PostgreSQL has a
// unique index; ClickHouse keeps both copies (its dedupe is per batch id, which a client's resend
// does not share) and its trace reads return each span id once.
import { context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';
import { exportAll } from '../helpers/sdk.ts';
import { storeFlags } from '../helpers/stores.ts';

const BACKENDS = storeFlags('long', 1);
const SPANS = 6000;
const PER_EXPORT = 200;

for (const [backend, options] of Object.entries(BACKENDS)) {
  describe(`a long trace exported as it runs into ${backend}`, () => {
    let c: TestCollector;
    beforeAll(async () => {
      c = await startCollector({ 'storage.backend': backend, ...(await options()) });
    });
    afterAll(async () => c?.stop());

    it('reads back whole, each span once, with exports sent twice', async () => {
      const memoryExporter = new InMemorySpanExporter();
      const provider = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'job-' + randomUUID() }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: memoryExporter })],
      });
      const tracer = provider.getTracer('long-job');
      const root = tracer.startSpan('nightly import');
      const ctx = trace.setSpan(context.active(), root);
      for (let i = 1; i < SPANS; i++) tracer.startSpan(`step ${i % 50}`, { attributes: { step: i } }, ctx).end();
      root.end();
      await provider.forceFlush();
      const spans = memoryExporter.getFinishedSpans();
      expect(spans).toHaveLength(SPANS);

      const exporter = new OTLPTraceExporter({ url: `http://${c.grpcAddress}` });
      for (let i = 0; i < SPANS; i += PER_EXPORT) {
        await exportAll(exporter, spans.slice(i, i + PER_EXPORT));
        // A retry of an earlier export, after the trace is past 4,096 spans and before.
        if (i === 4800) await exportAll(exporter, spans.slice(1000, 1000 + PER_EXPORT));
        if (i === 5400) await exportAll(exporter, spans.slice(5000, 5000 + PER_EXPORT));
      }
      await exporter.shutdown();
      await provider.shutdown();

      const traceId = root.spanContext().traceId;
      const ids = await eventually(async () => {
        const r = await getJson(c.queryUrl, `/v1/traces/${traceId}`);
        const got: string[] = r.body?.resourceSpans?.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans.map((s: any) => s.spanId))) ?? [];
        return r.status === 200 && got.length >= SPANS ? got : undefined;
      }, 20_000, 'the whole trace readable');
      expect(ids).toHaveLength(SPANS);
      expect(new Set(ids)).toEqual(new Set(spans.map((s) => s.spanContext().spanId)));
    });
  });
}
