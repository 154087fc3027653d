// What an acknowledgement promises (delivery.ack) and readiness that tells the truth about
// failing writes, against a real collector whose memory store can be stalled or failed.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { StorageBackend, WriteBatch, WriteResult } from '../../src/storage/backend.ts';
import { gated, memoryBackend } from '../helpers/backends.ts';
import { eventually, getJson, metricValue, startCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';

function traces(traceId: Buffer, n: number): Uint8Array {
  const spans = Array.from({ length: n }, (_, i) => ({ traceId, spanId: randomBytes(8), name: `s${i}`, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' }));
  return encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'delivery' } }] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] });
}

describe('delivery.ack=stored', () => {
  it('acknowledges only once the rows are stored, and refuses what the store refused for good as not retryable', async () => {
    const gate = gated(await memoryBackend());
    const c = await startCollector({ 'delivery.ack': 'stored' }, { backend: gate.backend });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      gate.close();
      const traceId = randomBytes(16);
      let answered = false;
      const pending = client.traces(traces(traceId, 3)).then((r) => {
        answered = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(answered).toBe(false);
      gate.open();
      expect((await pending).error).toBeNull();
      // Acknowledged means readable now, without waiting.
      const got = await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`);
      expect(got.body.resourceSpans[0].scopeSpans[0].spans).toHaveLength(3);

      // Rows the store refuses for good: not retryable (resending would fail the same way), so
      // the client lets them go, and they are counted as dropped.
      gate.failNext(1, { kind: 'permanent', error: new Error('rejected by the store') });
      const refused = await client.traces(traces(randomBytes(16), 2));
      expect(refused.error?.code).toBe(grpc.status.INTERNAL);
      expect(refused.error?.details).toMatch(/refused the rows for good/);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'rejected_by_store' })).toBe(1);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_spans_total', { reason: 'rejected_by_store' })).toBe(2);
      expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total', { reason: 'permanent_error' })).toBe(2);
    } finally {
      client.close();
      gate.open();
      await c.stop();
    }
  });

  it('does not tell a request batched with rows the store refused for good that its own rows can never be stored', async () => {
    const inner = await memoryBackend();
    let release!: () => void;
    let blocked: Promise<void> | undefined = new Promise((r) => (release = r));
    let attempts = 0;
    // The first write waits (a write in flight, so the next requests share a batch: group commit),
    // and a batch holding request A's 2 rows (alone: 2 rows; with B's 3: 5) is refused for good.
    const backend: StorageBackend = Object.create(inner, {
      write: {
        value: async (b: WriteBatch): Promise<WriteResult> => {
          attempts++;
          if (blocked) await blocked;
          if (b.rows === 2 || b.rows === 5) return { kind: 'permanent', error: new Error('invalid value in a row') };
          return inner.write(b);
        },
      },
    });
    // flushIntervalMs long: with a write in flight, rows that arrive wait this long and then go as
    // a batch of their own beside it (maxInFlightBatches 4). At the default 20 ms, B decoded 20 ms
    // after A (a loaded machine) made A's rows a batch alone, refused for good as A's own.
    const c = await startCollector({ 'delivery.ack': 'stored', 'writer.flushIntervalMs': '60000' }, { backend });
    const client = new RawOtlpClient(c.grpcAddress);
    // Rows queued in the pipelines and not yet handed to the store (Pipeline.pendingRows).
    const pendingRows = (): number => {
      let n = 0;
      for (const p of (c.collector.writer as unknown as { pipelines: Map<string, { pendingRows: number }> }).pipelines.values()) n += p.pendingRows;
      return n;
    };
    try {
      const traceId = randomBytes(16);
      const named = (names: string[]) => encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: names.map((name) => ({ traceId, spanId: randomBytes(8), name, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' })) }] }] });
      const x = client.traces(named(['x']));
      while (attempts === 0) await new Promise((r) => setTimeout(r, 10));
      const a = client.traces(named(['a-bad', 'a-bad']));
      const b = client.traces(named(['b0', 'b1', 'b2']));
      // Both requests' rows wait behind the blocked write (a fixed 500 ms was not always enough).
      await eventually(async () => (pendingRows() === 5 ? true : undefined), 10_000, "A's and B's rows queued behind the blocked write");
      blocked = undefined;
      release();
      expect((await x).error).toBeNull();
      // Which request's rows the store refused is not known: both are asked to send again.
      expect((await a).error?.code).toBe(grpc.status.UNAVAILABLE);
      expect((await b).error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
      // Sent again on their own: A's rows are refused for good (and counted), B's stored.
      expect((await client.traces(named(['a-bad', 'a-bad']))).error?.code).toBe(grpc.status.INTERNAL);
      expect((await client.traces(named(['b0', 'b1', 'b2']))).error).toBeNull();
      expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total', { reason: 'permanent_error' })).toBe(2);
    } finally {
      client.close();
      blocked = undefined;
      release();
      await c.stop();
    }
  });

  it('counts rows it gave up on after retries as refused (503), not as dropped, and exits 0', async () => {
    const gate = gated(await memoryBackend());
    const c = await startCollector({ 'delivery.ack': 'stored', 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40', 'writer.retryMaxElapsedMs': '200' }, { backend: gate.backend });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      gate.failNext(1_000_000, { kind: 'retryable', error: new Error('store down') });
      expect((await client.traces(traces(randomBytes(16), 5))).error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'not_stored' })).toBe(1);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_spans_total', { reason: 'not_stored' })).toBe(5);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_spans_total')).toBe(0);
      expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
    } finally {
      client.close();
      gate.failNext(0, { kind: 'success' });
    }
    expect(await c.stop()).toBe(0);
  });
});

describe('delivery.ack=queued', () => {
  it('counts rows queued at the stop and given up while the receivers finish their requests as dropped at shutdown (exit 3)', async () => {
    const gate = gated(await memoryBackend());
    const c = await startCollector({ 'delivery.ack': 'queued', 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40', 'writer.retryMaxElapsedMs': '300', 'shutdown.timeoutMs': '6000' }, { backend: gate.backend });
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('store down') });
    const client = new RawOtlpClient(c.grpcAddress);
    expect((await client.traces(traces(randomBytes(16), 5))).error).toBeNull();
    client.close();
    // A request still being sent at the stop: the receivers wait for it (up to their grace) before
    // the writer drains, and the 5 rows queued at the stop run out of retries meanwhile.
    const port = Number(new URL(c.httpUrl).port);
    const slow = connect(port, '127.0.0.1');
    slow.on('error', () => {});
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    await new Promise<void>((resolve) => slow.write('POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n0123456789', () => resolve()));
    try {
      // README, exit codes: 0 only when everything still queued at the stop was stored.
      expect(await c.stop()).toBe(5);
    } finally {
      slow.destroy();
    }
  });
});

describe('delivery.ack=durable', () => {
  it('writes a batch given up on in an outage again once the store is back, without a restart, and its log drains', async () => {
    const gate = gated(await memoryBackend());
    const flags = {
      'delivery.ack': 'durable',
      'delivery.walMaxBytes': String(1 << 20),
      'delivery.walSegmentBytes': String(64 << 10),
      'receiver.maxMessageBytes': String(256 << 10),
      'writer.retryInitialMs': '20',
      'writer.retryMaxMs': '40',
      'writer.retryMaxElapsedMs': '200',
    };
    const c = await startCollector(flags, { backend: gate.backend });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      // An outage longer than retryMaxElapsedMs: the writer gives the batch up for now; the log keeps it.
      gate.failNext(1_000_000, { kind: 'retryable', error: new Error('store down') });
      const kept = randomBytes(16);
      expect((await client.traces(traces(kept, 3))).error).toBeNull();
      await new Promise((r) => setTimeout(r, 800));
      gate.failNext(0, { kind: 'success' });
      await eventually(async () => ((await getJson(c.queryUrl, `/v1/traces/${kept.toString('hex')}`)).body?.resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.length === 3 ? true : undefined), 20_000, 'the kept batch to be stored');
      // Stored, its segment goes: five times the log's size passes through it, none refused.
      for (let i = 0; i < 60; i++) expect((await client.traces(traces(randomBytes(16), 1500))).error, `request ${i}`).toBeNull();
    } finally {
      client.close();
      gate.failNext(0, { kind: 'success' });
    }
    expect(await c.stop()).toBe(0);
  }, 60_000);
});

describe('readiness', () => {
  it('goes not ready while a full write-ahead log refuses exports, and ready again once it drains', async () => {
    const gate = gated(await memoryBackend());
    const c = await startCollector({ 'delivery.ack': 'durable', 'delivery.walMaxBytes': String(1 << 20), 'delivery.walSegmentBytes': String(64 << 10), 'receiver.maxMessageBytes': String(256 << 10) }, { backend: gate.backend });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      // The store stalls (no write fails, so nothing else says so): the log fills up.
      gate.close();
      let refusal: grpc.ServiceError | null = null;
      for (let i = 0; i < 100 && !refusal; i++) refusal = (await client.traces(traces(randomBytes(16), 1500))).error;
      expect(refusal?.details).toMatch(/write-ahead log is full/);
      const notReady = await getJson(c.opsUrl, '/readyz');
      expect(notReady.status).toBe(503);
      expect(notReady.body.reason).toBe('write-ahead log full');
      gate.open();
      await eventually(async () => ((await getJson(c.opsUrl, '/readyz')).status === 200 ? true : undefined), 10_000, 'ready again');
    } finally {
      client.close();
      gate.open();
      await c.stop();
    }
  });

  it('goes not ready while storage writes keep failing, and ready again when they recover', async () => {
    const gate = gated(await memoryBackend());
    const c = await startCollector({ 'writer.retryInitialMs': '50', 'writer.retryMaxMs': '100' }, { backend: gate.backend });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      expect((await getJson(c.opsUrl, '/readyz')).status).toBe(200);
      gate.failNext(1_000_000, { kind: 'retryable', error: new Error('disk full') });
      expect((await client.traces(traces(randomBytes(16), 2))).error).toBeNull();
      const notReady = await eventually(async () => {
        const r = await getJson(c.opsUrl, '/readyz');
        return r.status === 503 ? r.body : undefined;
      }, 5000, 'not ready');
      expect(notReady.reason).toMatch(/storage writes failing/);
      expect(await metricValue(c.opsUrl, 'tracehouse_ready')).toBe(0);
      expect(await metricValue(c.opsUrl, 'tracehouse_queue_oldest_age_seconds')).toBeGreaterThan(1);
      gate.failNext(0, { kind: 'success' });
      await eventually(async () => ((await getJson(c.opsUrl, '/readyz')).status === 200 ? true : undefined), 5000, 'ready again');
      expect(await metricValue(c.opsUrl, 'tracehouse_ready')).toBe(1);
      expect(await metricValue(c.opsUrl, 'tracehouse_queue_oldest_age_seconds')).toBe(0);
      expect(await c.stop()).toBe(0);
    } finally {
      client.close();
      await c.stop();
    }
  });

  it('keeps tracehouse_ready current with OTLP/gRPC off and nobody asking /readyz', async () => {
    const gate = gated(await memoryBackend());
    const c = await startCollector({ 'receiver.grpc.enabled': 'false', 'writer.retryInitialMs': '50', 'writer.retryMaxMs': '100' }, { backend: gate.backend });
    try {
      expect(await metricValue(c.opsUrl, 'tracehouse_ready')).toBe(1);
      gate.failNext(1_000_000, { kind: 'retryable', error: new Error('disk full') });
      expect((await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: traces(randomBytes(16), 2) })).status).toBe(200);
      await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_ready')) === 0 ? true : undefined), 8000, 'the gauge saying not ready');
    } finally {
      // The store takes writes again, so the stop drains at once: left failing, the stop waited
      // out shutdown.timeoutMs (30 s) of retries, half the test's timeout on a loaded machine.
      gate.failNext(0, { kind: 'success' });
      gate.open();
      await c.stop();
    }
  });
});
