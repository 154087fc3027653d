// One large OTLP/HTTP request into each store, through the write-ahead log: its store bytes pass
// HAND_OVER_BYTES, so the decode worker hands them over in the buffer it wrote them to, with
// room left at its end, and every reader after it (the log, the store's writer) must take only
// the bytes that are the rows. Every span must be stored once and read back whole.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAND_OVER_BYTES } from '../../src/pipeline/transcode/byte-out.ts';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { storeFlags } from '../helpers/stores.ts';

/** Each store with the options that point it at a store of its own (ClickHouse with one shard: one chunk, the one handed over). */
const BACKENDS = storeFlags('large', 1);

const TRACES = 2_000;
const SPANS_PER_TRACE = 20;

/** TRACES traces of SPANS_PER_TRACE spans, each span with attributes enough for ~300 bytes of protobuf. */
function largeRequest(): { body: Uint8Array; traceIds: string[] } {
  const traceIds = Array.from({ length: TRACES }, () => randomBytes(16));
  const spans = traceIds.flatMap((traceId, t) =>
    Array.from({ length: SPANS_PER_TRACE }, (_, i) => ({
      traceId,
      spanId: randomBytes(8),
      name: `large op ${i}`,
      startTimeUnixNano: String(1_700_000_000_000_000_000n + BigInt(t * 1000 + i)),
      endTimeUnixNano: String(1_700_000_000_100_000_000n + BigInt(t * 1000 + i)),
      attributes: Array.from({ length: 6 }, (_, k) => ({ key: `attribute.${k}`, value: { stringValue: `value ${k} of span ${i} in trace ${t}` } })),
    })),
  );
  const body = encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'large' } }] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] });
  return { body, traceIds: traceIds.map((id) => id.toString('hex')) };
}

const request = largeRequest();

describe.each(Object.entries(BACKENDS))('%s: one request whose store bytes pass the hand-over size', (backend, options) => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': backend, ...(await options()) });
  });
  afterAll(async () => c?.stop());

  it('stores every span once, and each reads back whole', async () => {
    // Its store bytes are at least its body (memory, SQLite) or more (COPY, RowBinary).
    expect(request.body.byteLength).toBeGreaterThan(HAND_OVER_BYTES);
    const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: request.body });
    expect(res.status).toBe(200);
    const total = TRACES * SPANS_PER_TRACE;
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total', { signal: 'traces' })) === total ? true : undefined), 60_000, 'every span written');
    // The first, a middle and the last trace, span by span.
    for (const t of [0, TRACES >> 1, TRACES - 1]) {
      const r = await getJson(c.queryUrl, `/api/traces/${request.traceIds[t]}`);
      expect(r.status).toBe(200);
      const spans = r.body.data[0].spans as { operationName: string; tags: { key: string; value: unknown }[] }[];
      expect(spans.map((s) => s.operationName).sort()).toStrictEqual(Array.from({ length: SPANS_PER_TRACE }, (_, i) => `large op ${i}`).sort());
      for (const s of spans) {
        const i = Number(s.operationName.split(' ').pop());
        expect(s.tags).toContainEqual({ key: 'attribute.5', type: 'string', value: `value 5 of span ${i} in trace ${t}` });
      }
    }
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
  }, 120_000);
});
