// Readiness asks the store for its health: /readyz, the gRPC health service's poll (each second)
// and the tracehouse_ready gauge all ask. A store whose health check answers slowly (a network
// dropping packets: the check waits its whole timeout) was asked again by each of them meanwhile,
// checks piling up on the store's connections. Callers while a check is out now share it.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { createBackend } from '../../src/storage/index.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { startCollector, type TestCollector } from '../helpers/collector.ts';

describe('readiness checks while the store answers its health check slowly', () => {
  let c: TestCollector;
  let open!: () => void;
  let checking = 0;
  let mostAtOnce = 0;
  let checks = 0;
  let slow = false;
  beforeAll(async () => {
    const inner = await createBackend(loadConfig({ flags: { 'storage.backend': 'memory' } }), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    // The memory store, its health check held while `slow` until open() is called.
    const backend = new Proxy(inner, {
      get(target, key) {
        if (key === 'health') {
          return async () => {
            checks++;
            mostAtOnce = Math.max(mostAtOnce, ++checking);
            try {
              if (slow) await new Promise<void>((resolve) => (open = resolve));
              return await target.health();
            } finally {
              checking--;
            }
          };
        }
        const v = Reflect.get(target, key) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as StorageBackend;
    c = await startCollector({}, { backend });
  });
  afterAll(async () => {
    open?.();
    await c?.stop();
  });

  it('asks the store once at a time, and every caller gets that answer', async () => {
    expect((await fetch(`${c.opsUrl}/readyz`)).status).toBe(200);
    slow = true;
    checks = 0;
    mostAtOnce = 0;
    // Probes every 100 ms for 2.5 s, the gRPC health poll's two or three asks among them.
    const probes: Promise<number>[] = [];
    for (let i = 0; i < 25; i++) {
      probes.push(fetch(`${c.opsUrl}/readyz`).then((r) => r.status));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(mostAtOnce).toBe(1);
    expect(checks).toBe(1);
    slow = false;
    open();
    expect(await Promise.all(probes)).toEqual(Array.from({ length: 25 }, () => 200));
  }, 20_000);
});
