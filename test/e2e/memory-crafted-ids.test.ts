// Ids crafted to share a hash slot: the memory store finds a trace by its id's four words in an
// open-addressed table (src/storage/memory/trace-table.ts) and, past 32 spans, a trace's span ids
// in another (src/storage/id-set.ts). Both placed an id by a fixed, public mix of its words, so a
// client could send ids that all land on one slot (a word chosen from the others: no search
// needed), and every add then probes the whole run: a few requests of such ids held the main
// thread for seconds (ingest, reads and health with it), growing with the square of the ids sent.
// Each case sends the same requests with random ids and with crafted ones, through OTLP/HTTP with
// delivery.ack = stored (answered once stored), and the crafted ones must cost about as much.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startCollector, type TestCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';

const int32 = (b: Buffer, i: number) => b.readInt32LE(4 * i);
const withWords = (words: number[]): Buffer => {
  const b = Buffer.alloc(4 * words.length);
  words.forEach((w, i) => b.writeInt32LE(w | 0, 4 * i));
  return b;
};

/** A trace id whose words mix to one constant under the trace table's former mix (w0 chosen from w1..w3). */
function craftedTraceId(): Buffer {
  const r = randomBytes(16);
  const [w1, w2, w3] = [int32(r, 1), int32(r, 2), int32(r, 3)];
  return withWords([0x1234567 ^ Math.imul(w1, 0x85ebca6b) ^ Math.imul(w2, 0xc2b2ae35) ^ Math.imul(w3, 0x27d4eb2f), w1, w2, w3]);
}

/** A span id whose words mix to one constant under the id set's former mix (word 0 chosen from word 1). */
function craftedSpanId(): Buffer {
  const w1 = randomBytes(4).readInt32LE(0);
  return withWords([0x1234567 ^ Math.imul(w1, 0x85ebca6b), w1]);
}

/** An OTLP/protobuf traces request of n spans. */
function request(n: number, traceId: () => Buffer, spanId: () => Buffer): Uint8Array {
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: traceId(),
    spanId: spanId(),
    name: 'op',
    startTimeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i)),
    endTimeUnixNano: String(1_700_000_000_000_001_000n + BigInt(i)),
  }));
  return encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'crafted' } }] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] });
}

describe('memory store: ids crafted to share a hash slot', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'delivery.ack': 'stored', 'writer.flushIntervalMs': '1' });
  });
  afterAll(async () => c?.stop());

  /** Milliseconds to post the requests one after another, each answered once stored. */
  const post = async (bodies: Uint8Array[]): Promise<number> => {
    const t = performance.now();
    for (const body of bodies) {
      const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    return performance.now() - t;
  };

  it('stores 60,000 traces whose ids share a slot about as fast as random ones', async () => {
    const random = await post(Array.from({ length: 3 }, () => request(20_000, () => randomBytes(16), () => randomBytes(8))));
    const crafted = await post(Array.from({ length: 3 }, () => request(20_000, craftedTraceId, () => randomBytes(8))));
    expect(crafted, `random ids ${random.toFixed(0)} ms, crafted ${crafted.toFixed(0)} ms`).toBeLessThan(4 * random + 1000);
  }, 120_000);

  it('stores a trace of 45,000 spans whose span ids share a slot about as fast as one of random ids', async () => {
    const one = (id: Buffer) => () => id;
    const random = await post(Array.from({ length: 3 }, () => request(15_000, one(randomBytes(16)), () => randomBytes(8))));
    const traceId = randomBytes(16);
    const crafted = await post(Array.from({ length: 3 }, () => request(15_000, one(traceId), craftedSpanId)));
    expect(crafted, `random ids ${random.toFixed(0)} ms, crafted ${crafted.toFixed(0)} ms`).toBeLessThan(4 * random + 1000);
    // Every span is kept once, and the trace reads back.
    const r = await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`);
    expect(r.status).toBe(200);
  }, 120_000);
});
