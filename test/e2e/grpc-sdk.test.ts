// The real OpenTelemetry JS SDK sends traces and logs over OTLP/gRPC; every span and record is
// read back through the read API and compared field by field, on every store (memory, SQLite,
// PostgreSQL, ClickHouse).
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';
import { storeFlags } from '../helpers/stores.ts';
import { expectedLog, expectedResourceScope, expectedSpan, sendSdkLogs, sendSdkTrace, sortAttributes } from '../helpers/sdk.ts';

/** Each backend with the options that point it at a store of its own; ClickHouse with two shards: a trace must come back whole from whichever shard has it. */
const BACKENDS = storeFlags('sdk', 2);

for (const [backend, options] of Object.entries(BACKENDS)) {
  describe(`OTLP/gRPC from the OpenTelemetry JS SDK into ${backend}`, () => {
    let c: TestCollector;
    beforeAll(async () => {
      c = await startCollector({ 'storage.backend': backend, ...(await options()) });
    });
    afterAll(async () => c?.stop());

    for (const compression of ['none', 'gzip'] as const) {
      it(`round-trips every span field (compression ${compression})`, async () => {
        const exporter = new OTLPTraceExporter({ url: `http://${c.grpcAddress}`, ...(compression === 'gzip' ? { compression: 'gzip' as never } : {}) });
        const { spans } = await sendSdkTrace(exporter);
        const traceId = spans[0]!.spanContext().traceId;
        const doc = await eventually(async () => {
          const r = await getJson(c.queryUrl, `/v1/traces/${traceId}`);
          const n = r.body?.resourceSpans?.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)).length;
          return r.status === 200 && n === spans.length ? r.body : undefined;
        }, 10_000, 'trace readable');

        expect(doc.resourceSpans).toHaveLength(1);
        const rs = sortAttributes(doc.resourceSpans[0]);
        const { resource, scope } = expectedResourceScope(spans[0]!);
        expect(rs.resource.attributes).toEqual(resource);
        expect(rs.scopeSpans).toHaveLength(1);
        expect(rs.scopeSpans[0].scope).toMatchObject(scope);
        const got = new Map<string, any>(rs.scopeSpans[0].spans.map((s: any) => [s.spanId, s]));
        for (const span of spans) {
          const stored = got.get(span.spanContext().spanId);
          expect(stored).toBeDefined();
          const { flags, links, ...rest } = stored;
          const { links: wantLinks, ...want } = expectedSpan(span);
          expect(rest).toEqual(want);
          // The exporter adds its "has is_remote" bits above the W3C trace flags.
          expect(flags & 0xff).toBe(span.spanContext().traceFlags);
          expect(links.map(({ flags: f, ...l }: any) => ({ ...l, w3cFlags: f & 0xff }))).toEqual(
            wantLinks.map((l: any, i: number) => ({ ...l, w3cFlags: span.links[i]!.context.traceFlags })),
          );
        }
        // The SDK sent an int beyond 2^31 and below 2^53 and a negative: exact as decimal strings.
        const root = [...got.values()].find((s) => s.name === 'GET /orders');
        expect(root.attributes.find((a: any) => a.key === 'big').value).toEqual({ intValue: String(2 ** 52 + 1) });
        expect(root.startTimeUnixNano).toBe('1700000000123456789');
      });
    }

    it('round-trips every log record field', async () => {
      const exporter = new OTLPLogExporter({ url: `http://${c.grpcAddress}` });
      const { service, logs } = await sendSdkLogs(exporter);
      const doc = await eventually(async () => {
        const r = await getJson(c.queryUrl, `/v1/logs?service=${service}`);
        const n = r.body?.resourceLogs?.flatMap((rl: any) => rl.scopeLogs.flatMap((sl: any) => sl.logRecords)).length;
        return n === logs.length ? r.body : undefined;
      }, 10_000, 'logs readable');
      const rl = sortAttributes(doc.resourceLogs[0]);
      const { resource, scope } = expectedResourceScope(logs[0]!);
      expect(rl.resource.attributes).toEqual(resource);
      expect(rl.scopeLogs[0].scope).toMatchObject(scope);
      const records = rl.scopeLogs[0].logRecords;
      // Newest first.
      expect(records.map((r: any) => r.timeUnixNano)).toEqual(['1700000000000000003', '1700000000000000002', '1700000000000000001']);
      for (const log of logs) {
        const stored = records.find((r: any) => r.timeUnixNano === expectedLog(log).timeUnixNano);
        const { flags, ...rest } = stored;
        expect(rest).toEqual(sortAttributes(expectedLog(log)));
        expect(flags & 0xff).toBe(log.spanContext?.traceFlags ?? 0);
      }
      // SQLite finds records by trace id through its trace index, a file of its own that commits
      // just after the records' (store.ts, TRACE_INDEX): waited for, as the records were.
      const linked = await eventually(async () => {
        const r = await getJson(c.queryUrl, `/v1/logs?traceId=${'c'.repeat(31)}3`);
        return r.body?.resourceLogs?.length > 0 ? r.body : undefined;
      }, 10_000, 'logs readable by trace id');
      expect(linked.resourceLogs[0].scopeLogs[0].logRecords).toHaveLength(1);
    });
  });
}
