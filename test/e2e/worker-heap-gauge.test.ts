// tracehouse_worker_heap_bytes over a long run: a decode worker that dies (out of memory, a bug)
// is replaced by piscina with a thread of its own, and the gauge must sum the live workers' heaps,
// not every worker the process ever had.
import { randomBytes } from 'node:crypto';
import type { Piscina } from 'piscina';
import { describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';

function traces(): Uint8Array {
  const span = { traceId: randomBytes(16), spanId: randomBytes(8), name: 'heap', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' };
  return encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
}

describe('tracehouse_worker_heap_bytes', () => {
  it('counts the live decode workers only, after workers died and were replaced', async () => {
    const c = await startCollector({ 'workers.threads': '1' });
    const client = new RawOtlpClient(c.grpcAddress);
    // The collector's piscina pool: a worker's death is what an out-of-memory decode or a crash does.
    const pool = (): Piscina => (c.collector as unknown as { pool: { pool: Piscina } }).pool.pool;
    try {
      const exportOnce = async (): Promise<void> => {
        expect((await client.traces(traces())).error).toBeNull();
      };
      await exportOnce();
      const oneWorker = await metricValue(c.opsUrl, 'tracehouse_worker_heap_bytes');
      expect(oneWorker).toBeGreaterThan(0);
      for (let k = 0; k < 4; k++) {
        const [worker] = pool().threads;
        await worker!.terminate();
        // piscina starts a new worker; a request decoded there reports its heap.
        await eventually(async () => (pool().threads.length === 1 && pool().threads[0] !== worker ? true : undefined), 5000, 'a new worker');
        await exportOnce();
      }
      const after = await metricValue(c.opsUrl, 'tracehouse_worker_heap_bytes');
      // One worker's heap, as before (a fresh worker's is about the first one's): not five.
      expect(after).toBeLessThan(oneWorker * 2);
    } finally {
      client.close();
      await c.stop();
    }
  }, 20_000);
});
