// Readiness asks the store for its health: /readyz, the gRPC health service's poll (each second)
// and the tracehouse_ready gauge all ask. A store whose health check answers slowly (a network
// dropping packets: the check waits its whole timeout) was asked again by each of them meanwhile,
// checks piling up on the store's connections. Callers while a check is out now share the
// store's answer, and each still looks at the queue, memory and log itself, before and after it.
import { request, type ClientRequest } from 'node:http';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { createBackend } from '../../src/storage/index.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';

/** A collector on the memory store whose health checks are held while `slow` until `release()`. */
class SlowHealth {
  c!: TestCollector;
  slow = false;
  /** Checks asked of the store, and the most out at once. */
  checks = 0;
  mostAtOnce = 0;
  private out = 0;
  private waiting: (() => void)[] = [];

  async start(flags: Record<string, string>): Promise<void> {
    const inner = await createBackend(loadConfig({ flags: { 'storage.backend': 'memory' } }), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    const backend = new Proxy(inner, {
      get: (target, key) => {
        if (key === 'health') {
          return async () => {
            this.checks++;
            this.mostAtOnce = Math.max(this.mostAtOnce, ++this.out);
            try {
              if (this.slow) await new Promise<void>((resolve) => this.waiting.push(resolve));
              return await target.health();
            } finally {
              this.out--;
            }
          };
        }
        const v = Reflect.get(target, key) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as StorageBackend;
    this.c = await startCollector(flags, { backend });
  }

  /** Lets the held checks answer, and the next ones at once. */
  release(): void {
    this.slow = false;
    for (const w of this.waiting.splice(0)) w();
  }

  async stop(): Promise<void> {
    this.release();
    await this.c?.stop();
  }
}

const readyz = async (c: TestCollector) => {
  const r = await fetch(`${c.opsUrl}/readyz`);
  return { status: r.status, body: (await r.json()) as { status: string; reason?: string } };
};

describe('readiness checks while the store answers its health check slowly', () => {
  const s = new SlowHealth();
  beforeAll(() => s.start({}));
  afterAll(() => s.stop());

  it('asks the store once at a time, and every caller gets that answer', async () => {
    expect((await readyz(s.c)).status).toBe(200);
    s.slow = true;
    s.checks = 0;
    s.mostAtOnce = 0;
    // Probes every 100 ms for 2.5 s, the gRPC health poll's two or three asks among them.
    const probes: Promise<number>[] = [];
    for (let i = 0; i < 25; i++) {
      probes.push(readyz(s.c).then((r) => r.status));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(s.mostAtOnce).toBe(1);
    expect(s.checks).toBe(1);
    s.release();
    expect(await Promise.all(probes)).toEqual(Array.from({ length: 25 }, () => 200));
  }, 20_000);
});

describe('readiness while a slow health check is out and the write queue fills', () => {
  const s = new SlowHealth();
  beforeAll(() => s.start({ 'writer.maxQueueBytes': String(256 * 1024), 'receiver.http.bodyTimeoutMs': '10000' }));
  afterAll(() => s.stop());

  /** Fills the write queue: a slow upload holds its first bytes, a large one then finds no room. Destroy the upload returned. */
  async function fillQueue(c: TestCollector): Promise<ClientRequest> {
    const url = new URL(c.httpUrl + '/v1/traces');
    const held = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'content-length': 60_000_000 } });
    held.on('error', () => {});
    held.write(Buffer.alloc(10));
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes')) > 0 ? true : undefined), 5000, 'first bytes held');
    const big = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array(300 * 1024) });
    expect(big.status).toBe(503);
    return held;
  }

  it('answers "write queue full" to a probe then and to the probe that waited on the store, and the ready gauge stays 0', async () => {
    expect((await readyz(s.c)).status).toBe(200);
    s.slow = true;
    // A probe whose store health check is out (held) while the queue still has room.
    const first = readyz(s.c);
    await new Promise((r) => setTimeout(r, 100));
    const held = await fillQueue(s.c);
    try {
      // A probe now is not ready at once, not the held check's answer later.
      const second = readyz(s.c);
      await new Promise((r) => setTimeout(r, 300));
      // The store answers "healthy" now; the queue still has no room.
      s.release();
      const notReady = { status: 503, body: { status: 'not ready', reason: 'write queue full' } };
      expect(await second).toEqual(notReady);
      expect(await first).toEqual(notReady);
      expect(await metricValue(s.c.opsUrl, 'tracehouse_ready')).toBe(0);
    } finally {
      held.destroy();
    }
  }, 20_000);
});
