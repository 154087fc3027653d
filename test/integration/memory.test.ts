// The memory store's own behaviour beside the contract: eviction by age (storage.memory.maxAgeMs).
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { createMemoryBackend } from '../../src/storage/memory/index.ts';
import { memoryOptions } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { makeLog, makeTrace, writeLogs, writeSpans } from '../helpers/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';

describe('memory store retention by age', () => {
  it('evicts rows once they are older than maxAgeMs, counting them, and keeps younger ones', async () => {
    const metrics = createMetrics();
    const b = createMemoryBackend(memoryOptions(loadConfig({ flags: { 'storage.backend': 'memory', 'storage.memory.maxAgeMs': '300' } })), { logger: pino({ level: 'silent' }), metrics });
    await b.start();
    try {
      const old = makeTrace(3);
      await writeSpans(b, old);
      await writeLogs(b, [makeLog({ serviceName: 'old' })]);
      await new Promise((r) => setTimeout(r, 400));
      const young = makeTrace(2);
      await writeSpans(b, young); // a write evicts what has aged out
      expect(await b.getTrace(DEFAULT_TENANT, old[0]!.traceId)).toEqual([]);
      expect(await b.searchLogs(DEFAULT_TENANT, { service: 'old', limit: 10 })).toEqual([]);
      expect(await b.getTrace(DEFAULT_TENANT, young[0]!.traceId)).toHaveLength(2);
      const evicted = (await metrics.evictedRows.get()).values;
      expect(evicted.find((v) => v.labels['signal'] === 'traces')?.value).toBe(3);
      expect(evicted.find((v) => v.labels['signal'] === 'logs')?.value).toBe(1);
    } finally {
      await b.shutdown();
    }
  });

  it('rejects a negative age at start-up naming the key', () => {
    expect(() => loadConfig({ flags: { 'storage.memory.maxAgeMs': '-1' } })).toThrow(/storage\.memory\.maxAgeMs = "-1"/);
  });
});
