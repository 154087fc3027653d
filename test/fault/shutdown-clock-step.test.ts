// A stop while the wall clock steps back (NTP, a VM resumed) and the store is down: the README
// promises the stop within shutdown.timeoutMs, and with delivery.ack = queued the rows it gave up
// on counted and logged (exit 3). Before, the stop's deadline was Date.now() plus the timeout: a
// step back of an hour as the stop began gave the drain that hour, so Kubernetes killed the pod
// at its grace period and the dropped rows were never counted or logged.
import { randomBytes } from 'node:crypto';
import { expect, it, vi } from 'vitest';
import { gated, memoryBackend } from '../helpers/backends.ts';
import { startCollector } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';

it('stops within shutdown.timeoutMs while the wall clock steps back an hour, counting what it gave up on', async () => {
  const gate = gated(await memoryBackend());
  const { logger, lines } = capturedLogger();
  const c = await startCollector({ 'delivery.ack': 'queued', 'shutdown.timeoutMs': '2000', 'writer.retryMaxElapsedMs': '0' }, { backend: gate.backend, logger });
  gate.failNext(1_000_000, { kind: 'retryable', error: new Error('connection refused') });
  const spans = Array.from({ length: 4 }, (_, k) => ({ traceId: randomBytes(16), spanId: randomBytes(8), name: `op-${k}`, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }));
  const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans }] }] }) });
  expect(res.status).toBe(200);
  const realNow = Date.now.bind(Date);
  let step = 0;
  const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + step);
  try {
    const stopped = c.stop();
    // Stepped back just after the stop began.
    step = -3_600_000;
    const t0 = performance.now();
    const dropped = await Promise.race([stopped, new Promise<string>((r) => setTimeout(() => r('still stopping'), 8000))]);
    expect(dropped).toBe(4);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(lines().filter((l) => /^shutdown gave up on 4 accepted rows/.test(l.msg))).toHaveLength(1);
  } finally {
    clock.mockRestore();
    gate.failNext(0, { kind: 'success' });
    await c.stop();
  }
}, 20_000);
