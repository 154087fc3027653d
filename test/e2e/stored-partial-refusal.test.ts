// delivery.ack = stored, a request whose spans go to two ClickHouse shards (routed by trace id),
// and a CONSTRAINT on both refusing one span: the shard without it stores its part, the other
// refuses its part for good (one request's rows there, nothing to halve). The client was answered
// 500 "refused for good" for the whole request, every span counted refused (rejected_by_store),
// while the first shard's spans were stored and counted written: told not to resend what it did
// not need to, and counted twice. It is now answered as OTLP's partial success: the spans the
// store refused named in rejected_spans, the others acknowledged.
import { afterAll, describe, expect, it } from 'vitest';
import { chdbClient, chdbUrls, removeChdbDir, select, uniqueDatabase } from '../helpers/clickhouse.ts';
import { metricValue, startCollector } from '../helpers/collector.ts';
import { hex } from '../helpers/rows.ts';

afterAll(() => removeChdbDir());

/** An OTLP/JSON trace export of one span per name, each of a trace of its own. */
function exportOf(names: string[]): unknown {
  const now = BigInt(Date.now()) * 1_000_000n;
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'partial' } }] },
        scopeSpans: [{ spans: names.map((name) => ({ traceId: hex(16), spanId: hex(8), name, kind: 1, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n) })) }],
      },
    ],
  };
}

describe('delivery.ack = stored: a request part of whose spans the store refuses for good', () => {
  it('is answered as a partial success naming the spans refused; the others are stored and counted once', { timeout: 60_000 }, async () => {
    const dbs = [uniqueDatabase('partial_a'), uniqueDatabase('partial_b')];
    const c = await startCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': chdbUrls(dbs), 'delivery.ack': 'stored' });
    const client = await chdbClient();
    try {
      for (const db of dbs) await client.command({ query: `ALTER TABLE ${db}.otel_traces ADD CONSTRAINT no_poison CHECK SpanName != 'poison'` });
      // Sixteen traces: both shards get some (by trace id); one span is refused.
      const names = Array.from({ length: 16 }, (_, i) => (i === 5 ? 'poison' : `fine ${i}`));
      const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(exportOf(names)) });
      const body = (await res.json()) as { partialSuccess?: { rejectedSpans?: string; errorMessage?: string } };
      const stored = Number((await Promise.all(dbs.map((db) => select(client, `SELECT count() FROM ${db}.otel_traces WHERE ServiceName = 'partial'`)))).reduce((n, r) => n + Number(r[0]![0]), 0));
      const refused = 16 - stored;
      // The poison's shard refused its whole part (one request's rows there); the other stored its.
      expect(stored).toBeGreaterThan(0);
      expect(refused).toBeGreaterThan(0);
      expect(res.status).toBe(200);
      expect(body.partialSuccess?.rejectedSpans).toBe(String(refused));
      expect(body.partialSuccess?.errorMessage).toMatch(/refused for good by the store/);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_spans_total', { reason: 'rejected_by_store' })).toBe(refused);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_spans_total')).toBe(stored);
      expect(await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total', { signal: 'traces' })).toBe(stored);
      expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total', { reason: 'permanent_error' })).toBe(refused);
    } finally {
      await client.close();
      await c.stop();
    }
  });
});
