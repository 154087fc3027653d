// Readiness asks the store for its health: /readyz, the gRPC health service's poll (each second)
// and the tracehouse_ready gauge all ask. A store whose health check answers slowly (a network
// dropping packets: the check waits its whole timeout) was asked again by each of them meanwhile,
// checks piling up on the store's connections. Callers while a check is out now share it.
import { request } from 'node:http';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { createBackend } from '../../src/storage/index.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';

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

describe('readiness while a slow health check is out and the write queue fills', () => {
  let c: TestCollector;
  let open: (() => void) | undefined;
  let slow = false;
  beforeAll(async () => {
    const inner = await createBackend(loadConfig({ flags: { 'storage.backend': 'memory' } }), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    const backend = new Proxy(inner, {
      get(target, key) {
        if (key === 'health') {
          return async () => {
            if (slow) await new Promise<void>((resolve) => (open = resolve));
            return target.health();
          };
        }
        const v = Reflect.get(target, key) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as StorageBackend;
    c = await startCollector({ 'writer.maxQueueBytes': String(256 * 1024), 'receiver.http.bodyTimeoutMs': '10000' }, { backend });
  });
  afterAll(async () => {
    slow = false;
    open?.();
    await c?.stop();
  });

  it('answers "write queue full" at once, not the earlier check\'s "ready" once the store answers', async () => {
    expect((await fetch(`${c.opsUrl}/readyz`)).status).toBe(200);
    slow = true;
    // A probe whose store health check is out (held).
    const first = fetch(`${c.opsUrl}/readyz`).then((r) => r.status);
    await new Promise((r) => setTimeout(r, 100));
    // The queue fills meanwhile: a slow upload holds its first bytes, a large one finds no room.
    const url = new URL(c.httpUrl + '/v1/traces');
    const held = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'content-length': 60_000_000 } });
    held.on('error', () => {});
    held.write(Buffer.alloc(10));
    try {
      await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes')) > 0 ? true : undefined), 5000, 'first bytes held');
      const big = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array(300 * 1024) });
      expect(big.status).toBe(503);
      // A probe now: the queue has no room, whatever the store's health check says later.
      const second = fetch(`${c.opsUrl}/readyz`).then(async (r) => ({ status: r.status, body: (await r.json()) as { reason?: string } }));
      await new Promise((r) => setTimeout(r, 300));
      slow = false;
      open?.();
      expect(await second).toEqual({ status: 503, body: { status: 'not ready', reason: 'write queue full' } });
      await first;
    } finally {
      held.destroy();
    }
  }, 20_000);
});

describe('a readiness answer that waited on a slow health check while the write queue filled', () => {
  let c: TestCollector;
  let open: (() => void) | undefined;
  let slow = false;
  beforeAll(async () => {
    const inner = await createBackend(loadConfig({ flags: { 'storage.backend': 'memory' } }), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    const backend = new Proxy(inner, {
      get(target, key) {
        if (key === 'health') {
          return async () => {
            if (slow) await new Promise<void>((resolve) => (open = resolve));
            return target.health();
          };
        }
        const v = Reflect.get(target, key) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as StorageBackend;
    c = await startCollector({ 'writer.maxQueueBytes': String(256 * 1024), 'receiver.http.bodyTimeoutMs': '10000' }, { backend });
  });
  afterAll(async () => {
    slow = false;
    open?.();
    await c?.stop();
  });

  it('is "write queue full" once the store answers, not "ready", and the ready gauge stays 0', async () => {
    expect((await fetch(`${c.opsUrl}/readyz`)).status).toBe(200);
    slow = true;
    // A probe whose store health check is out (held) while the queue still has room.
    const first = fetch(`${c.opsUrl}/readyz`).then(async (r) => ({ status: r.status, body: (await r.json()) as { reason?: string } }));
    await new Promise((r) => setTimeout(r, 100));
    // The queue fills meanwhile: a slow upload holds its first bytes, a large one finds no room.
    const url = new URL(c.httpUrl + '/v1/traces');
    const held = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'content-length': 60_000_000 } });
    held.on('error', () => {});
    held.write(Buffer.alloc(10));
    try {
      await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes')) > 0 ? true : undefined), 5000, 'first bytes held');
      const big = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array(300 * 1024) });
      expect(big.status).toBe(503);
      expect((await fetch(`${c.opsUrl}/readyz`)).status).toBe(503);
      // The store answers "healthy" now; the queue still has no room.
      slow = false;
      open?.();
      expect(await first).toEqual({ status: 503, body: { status: 'not ready', reason: 'write queue full' } });
      expect(await metricValue(c.opsUrl, 'tracehouse_ready')).toBe(0);
    } finally {
      held.destroy();
    }
  }, 20_000);
});
