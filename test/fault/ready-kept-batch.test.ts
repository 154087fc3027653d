// /readyz while every storage write fails but the store's health check passes (a full disk under
// PostgreSQL, a read-only table): the README says the collector is not ready "while storage
// writes have failed for 2 s without a success". With delivery.ack = durable a batch given up
// after writer.retryMaxElapsedMs is not dropped: the write-ahead log keeps it and writes it again
// 5 s later. Handing it over must not count as the end of the failure: /readyz answered 200 (and
// tracehouse_ready said 1) from each hand-over until the rewrite had failed for 2 s again, so a
// pod whose store took nothing flapped back into its Service once per retryMaxElapsedMs.
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { gated, memoryBackend } from '../helpers/backends.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';

it('stays not ready while the batches the write-ahead log keeps are still not stored, and is ready again once they are', async () => {
  const gate = gated(await memoryBackend());
  gate.failNext(1_000_000, { kind: 'retryable', error: new Error('no space left on device') });
  const c = await startCollector({ 'writer.retryInitialMs': '50', 'writer.retryMaxMs': '200', 'writer.retryMaxElapsedMs': '2500' }, { backend: gate.backend });
  try {
    const now = String(BigInt(Date.now()) * 1_000_000n);
    const spans = [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'op', startTimeUnixNano: now, endTimeUnixNano: now }];
    const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }] }) });
    expect(res.status).toBe(200);
    await eventually(async () => ((await fetch(`${c.opsUrl}/readyz`)).status === 503 ? true : undefined), 5000, 'not ready');
    // Past the hand-over to the log (2.5 s) and the rewrite 5 s after it, no write has succeeded.
    const answers: number[] = [];
    const gauge: number[] = [];
    const until = Date.now() + 8000;
    while (Date.now() < until) {
      answers.push((await fetch(`${c.opsUrl}/readyz`)).status);
      gauge.push(await metricValue(c.opsUrl, 'tracehouse_ready'));
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total')).toBe(0);
    expect(answers.filter((s) => s !== 503)).toEqual([]);
    expect(gauge.filter((v) => v !== 0)).toEqual([]);
    // The store takes writes again: the kept batch is stored and the collector is ready.
    gate.failNext(0, { kind: 'success' });
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total')) === 1 ? true : undefined), 15_000, 'the kept span stored');
    await eventually(async () => ((await fetch(`${c.opsUrl}/readyz`)).status === 200 ? true : undefined), 5000, 'ready again');
  } finally {
    await c.stop();
  }
}, 60_000);
