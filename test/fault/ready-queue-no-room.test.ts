// /readyz and the write queue: the README says the collector goes not ready "while the write queue
// is full". A request is refused (503 queue_full) once its rows do not fit in what is left of
// writer.maxQueueBytes, so behind a slow store the queue stops short of its capacity by up to one
// request's charge and stays there: every export was refused while /readyz answered 200 and gRPC
// health said SERVING, because "full" meant only the queue at or past its capacity, which it
// rarely reaches. A Service kept sending this pod exports it refused, instead of to its peers.
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { gated, memoryBackend } from '../helpers/backends.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';

it('is not ready while the queue has no room for the requests that arrive, and ready again once it drains', async () => {
  const gate = gated(await memoryBackend());
  // A store that takes nothing for now, without failing (no write times out, so readiness is not
  // lost to failing writes).
  gate.close();
  const capacity = 256 * 1024;
  const c = await startCollector({ 'writer.maxQueueBytes': String(capacity), 'writer.writeTimeoutMs': '60000', 'delivery.ack': 'queued' }, { backend: gate.backend });
  try {
    const now = String(BigInt(Date.now()) * 1_000_000n);
    // ~100 KiB requests: two fit, the third does not (its charge is 1.25 times its body).
    const body = () => encodeTraces({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans: Array.from({ length: 50 }, () => ({ traceId: randomBytes(16), spanId: randomBytes(8), name: 'op', startTimeUnixNano: now, endTimeUnixNano: now, attributes: [{ key: 'k', value: { stringValue: 'v'.repeat(2000) } }] })) }] }] });
    const post = async () => {
      const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: body() });
      await res.arrayBuffer();
      return res.status;
    };
    expect(await post()).toBe(200);
    expect(await post()).toBe(200);
    for (let i = 0; i < 3; i++) expect(await post()).toBe(503);
    expect(await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes')).toBeLessThan(capacity);
    const ready = await fetch(`${c.opsUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'not ready', reason: 'write queue full' });
    expect(await metricValue(c.opsUrl, 'tracehouse_ready')).toBe(0);
    // The store takes the rows: room again, ready again.
    gate.open();
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes')) === 0 ? true : undefined), 10_000, 'queue drained');
    await eventually(async () => ((await fetch(`${c.opsUrl}/readyz`)).status === 200 ? true : undefined), 5000, 'ready again');
    expect(await post()).toBe(200);
  } finally {
    gate.open();
    await c.stop();
  }
}, 60_000);
