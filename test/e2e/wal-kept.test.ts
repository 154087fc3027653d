// delivery.ack = durable: batches the writer gives up on (retries exhausted) stay in the write-ahead
// log, which writes them again while running (3606c70). Each is stored once: when a timed-out
// attempt lands too, when the collector stops in the middle (the next start stores what is left,
// logged as kept), and when it is killed.
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import type { WriteBatch, WriteResult } from '../../src/storage/backend.ts';
import { gated, memoryBackend } from '../helpers/backends.ts';
import { eventually, startCollector } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { encodeLogs, encodeTraces } from '../helpers/otlp-proto.ts';
import { spawnCollector, storedInSqlite } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SERVICE = 'wal-kept';
const resource = { attributes: [{ key: 'service.name', value: { stringValue: SERVICE } }] };

async function post(url: string, path: string, body: Uint8Array): Promise<number> {
  return (await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body })).status;
}

async function sendSome(url: string, tag: string): Promise<{ traceId: string; bodies: string[] }> {
  const traceId = randomBytes(16);
  const spans = Array.from({ length: 5 }, (_, k) => ({ traceId, spanId: randomBytes(8), name: `op-${k}`, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }));
  expect(await post(url, '/v1/traces', encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans }] }] }))).toBe(200);
  const bodies = Array.from({ length: 5 }, (_, k) => `${tag}/${k}`);
  const logRecords = bodies.map((b) => ({ timeUnixNano: '1700000000000000000', body: { stringValue: b } }));
  expect(await post(url, '/v1/logs', encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords }] }] }))).toBe(200);
  return { traceId: traceId.toString('hex'), bodies };
}

async function sqlite(db: string) {
  const b = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': db } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await b.start();
  return b;
}

function flagsFor(db: string, wal: string, extra: Record<string, string> = {}): Record<string, string> {
  return { 'storage.backend': 'sqlite', 'storage.sqlite.path': db, 'delivery.walDir': wal, 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40', ...extra };
}

async function storedOnceAfterRestart(db: string, wal: string, sent: { traceId: string; bodies: string[] }[]): Promise<void> {
  const next = await startCollector(flagsFor(db, wal));
  await eventually(async () => {
    const { spansByTrace, logCopies } = storedInSqlite(db, SERVICE);
    return sent.every((s) => spansByTrace.get(s.traceId) === 5 && s.bodies.every((b) => logCopies.has(b))) ? true : undefined;
  }, 20_000, 'the kept rows stored by the next start');
  expect(await next.stop()).toBe(0);
  const { spansByTrace, logCopies } = storedInSqlite(db, SERVICE);
  for (const s of sent) {
    expect(spansByTrace.get(s.traceId)).toBe(5);
    for (const b of s.bodies) expect(logCopies.get(b), b).toBe(1);
  }
}

describe('delivery.ack=durable: batches given up on, at a stop', () => {
  it('logs rows given up on during the shutdown drain as kept in the log, and the next start stores them once', async () => {
    const dir = tempDir('wal-kept-');
    const db = join(dir, 'th.db');
    const wal = join(dir, 'wal');
    const gate = gated(await sqlite(db));
    const { logger, lines } = capturedLogger();
    // retryMaxElapsedMs shorter than shutdown.timeoutMs: the drain ends by giving the batches up.
    const c = await startCollector(flagsFor(db, wal, { 'writer.retryMaxElapsedMs': '1500', 'shutdown.timeoutMs': '20000' }), { backend: gate.backend, logger });
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('store down') });
    const sent = [await sendSome(c.httpUrl, 'a')];
    expect(await c.stop()).toBe(0);
    const stopped = lines().find((l) => l.msg === 'tracehouse stopped');
    expect(lines().filter((l) => /gave up writing a batch/.test(l.msg)).length).toBeGreaterThan(0);
    // 5 spans + 5 log records stay in the log for the next start: the README says "logged as kept".
    expect(lines().some((l) => /kept in the write-ahead log and written at the next start/.test(l.msg))).toBe(true);
    expect(stopped?.['keptInLogRows']).toBe(10);
    await storedOnceAfterRestart(db, wal, sent);
  }, 60_000);

  it('a stop in the middle of a rewrite keeps the rows for the next start, which stores them once', async () => {
    const dir = tempDir('wal-kept-');
    const db = join(dir, 'th.db');
    const wal = join(dir, 'wal');
    const gate = gated(await sqlite(db));
    const { logger, lines } = capturedLogger();
    const c = await startCollector(flagsFor(db, wal, { 'writer.retryMaxElapsedMs': '200', 'shutdown.timeoutMs': '1000' }), { backend: gate.backend, logger });
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('store down') });
    const sent = [await sendSome(c.httpUrl, 'b'), await sendSome(c.httpUrl, 'c')];
    // Given up on (kept), then written again from the log 5 s later: the store is still down.
    await eventually(async () => (lines().filter((l) => /gave up writing a batch/.test(l.msg)).length >= 2 ? true : undefined), 5000, 'batches given up on');
    const before = gate.attempts;
    await eventually(async () => (gate.attempts > before + 2 ? true : undefined), 10_000, 'the rewrite to write again');
    expect(await c.stop()).toBe(0);
    const stopped = lines().find((l) => l.msg === 'tracehouse stopped');
    expect(stopped?.['keptInLogRows']).toBe(20);
    await storedOnceAfterRestart(db, wal, sent);
  }, 60_000);

  it('a stop before the rewrite warns that the rows given up on are kept for the next start, which stores them once', async () => {
    const dir = tempDir('wal-kept-');
    const db = join(dir, 'th.db');
    const wal = join(dir, 'wal');
    const gate = gated(await sqlite(db));
    const { logger, lines } = capturedLogger();
    const c = await startCollector(flagsFor(db, wal, { 'writer.retryMaxElapsedMs': '200' }), { backend: gate.backend, logger });
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('store down') });
    const sent = [await sendSome(c.httpUrl, 'd')];
    await eventually(async () => (lines().filter((l) => /gave up writing a batch/.test(l.msg)).length >= 2 ? true : undefined), 5000, 'batches given up on');
    expect(await c.stop()).toBe(0);
    expect(lines().find((l) => l.msg === 'tracehouse stopped')?.['keptInLogRows']).toBe(10);
    expect(lines().some((l) => /10 accepted rows given up on while running could not be stored; they are kept in the write-ahead log/.test(l.msg))).toBe(true);
    await storedOnceAfterRestart(db, wal, sent);
  }, 60_000);
});

describe('delivery.ack=durable: batches given up on, written again', () => {
  it('stores a rewritten batch once on SQLite while its timed-out attempts land too', async () => {
    const db = join(tempDir('wal-kept-'), 'th.db');
    const gate = gated(await sqlite(db));
    const { logger, lines } = capturedLogger();
    const c = await startCollector({ 'storage.backend': 'sqlite', 'storage.sqlite.path': db, 'writer.writeTimeoutMs': '100', 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40', 'writer.retryMaxElapsedMs': '300' }, { backend: gate.backend, logger });
    try {
      gate.close();
      const bodies = Array.from({ length: 20 }, (_, k) => `dedupe/${k}`);
      expect(await post(c.httpUrl, '/v1/logs', encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords: bodies.map((b) => ({ timeUnixNano: '1700000000000000000', body: { stringValue: b } })) }] }] }))).toBe(200);
      const traceId = randomBytes(16);
      expect(await post(c.httpUrl, '/v1/traces', encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8), name: 'x', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000000001' }] }] }] }))).toBe(200);
      await eventually(async () => (lines().filter((l) => /gave up writing a batch/.test(l.msg)).length >= 2 ? true : undefined), 5000, 'given up');
      const before = gate.attempts;
      await eventually(async () => (gate.attempts > before ? true : undefined), 10_000, 'the rewrite');
      gate.open();
      await eventually(async () => (storedInSqlite(db, SERVICE).logCopies.size === 20 ? true : undefined), 10_000, 'stored');
      await new Promise((r) => setTimeout(r, 1000));
      const { logCopies, spansByTrace } = storedInSqlite(db, SERVICE);
      expect([...logCopies.values()].every((n) => n === 1)).toBe(true);
      expect(spansByTrace.get(traceId.toString('hex'))).toBe(1);
    } finally {
      gate.open();
      expect(await c.stop()).toBe(0);
    }
  }, 60_000);

  it('SIGKILL during a rewrite: the restart stores every acknowledged log record once', async () => {
    const db = join(tempDir('wal-kept-'), 'th.db');
    const flags = { 'storage.sqlite.path': db, 'delivery.ack': 'durable', 'writer.writeTimeoutMs': '200', 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40', 'writer.retryMaxElapsedMs': '300', 'log.level': 'info' };
    const first = await spawnCollector(flags);
    const lock = new DatabaseSync(db);
    lock.exec('BEGIN EXCLUSIVE');
    const bodies: string[] = [];
    for (let i = 0; i < 5; i++) {
      const b = Array.from({ length: 10 }, (_, k) => `kill/${i}/${k}/${randomBytes(4).toString('hex')}`);
      const status = (await fetch(first.httpUrl + '/v1/logs', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords: b.map((x) => ({ timeUnixNano: String(BigInt(Date.now()) * 1_000_000n), body: { stringValue: x } })) }] }] }) })).status;
      expect(status).toBe(200);
      bodies.push(...b);
    }
    await eventually(async () => (first.output().includes('gave up writing a batch') ? true : undefined), 10_000, 'given up');
    await new Promise((r) => setTimeout(r, 5600));
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    lock.exec('COMMIT');
    lock.close();
    const second = await spawnCollector(flags);
    await eventually(async () => (bodies.every((b) => storedInSqlite(db, SERVICE).logCopies.has(b)) ? true : undefined), 20_000, 'stored');
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    const copies = storedInSqlite(db, SERVICE).logCopies;
    expect(bodies.filter((b) => copies.get(b) !== 1)).toEqual([]);
  }, 60_000);

  it('writes a backlog of many slices one after another once the store takes them, not one slice per wait', async () => {
    const dir = tempDir('wal-kept-');
    const db = join(dir, 'th.db');
    const gate = gated(await sqlite(db));
    const { logger, lines } = capturedLogger();
    // A slice is half the queue: 64 KiB, so the sixteen requests' batches take several.
    const c = await startCollector(flagsFor(db, join(dir, 'wal'), { 'writer.retryMaxElapsedMs': '200', 'writer.maxQueueBytes': String(128 << 10) }), { backend: gate.backend, logger });
    try {
      gate.failNext(1_000_000, { kind: 'retryable', error: new Error('store down') });
      const sent: { traceId: string; bodies: string[] }[] = [];
      for (let i = 0; i < 16; i++) {
        sent.push(await sendSome(c.httpUrl, `e${i}-${'x'.repeat(4000)}`));
        // Given up on after 200 ms, its room in the queue is free again.
        await new Promise((r) => setTimeout(r, 250));
      }
      await eventually(async () => (lines().filter((l) => /gave up writing a batch/.test(l.msg)).length >= 32 ? true : undefined), 10_000, 'every batch given up on');
      gate.failNext(0, { kind: 'success' });
      const t0 = Date.now();
      await eventually(async () => {
        const { spansByTrace } = storedInSqlite(db, SERVICE);
        return sent.every((x) => spansByTrace.get(x.traceId) === 5) ? true : undefined;
      }, 30_000, 'the backlog stored');
      // One wait of 5 s before the first slice; before, each slice waited 5 s of its own.
      expect(Date.now() - t0).toBeLessThan(12_000);
    } finally {
      gate.failNext(0, { kind: 'success' });
      await c.stop();
    }
  }, 60_000);

  it('reads a slice that cannot be read back again once per wait, not in a loop', async () => {
    const wal = join(tempDir('wal-kept-'), 'wal');
    const inner = await memoryBackend();
    let down = true;
    let removed = false;
    const backend = Object.create(inner, {
      write: {
        value: async (b: WriteBatch): Promise<WriteResult> => {
          if (down) return { kind: 'retryable', error: new Error('store down') };
          const r = await inner.write(b);
          // The first slice stored; the segment holding the next one is gone (a disk error reading it back).
          if (!removed) {
            removed = true;
            for (const n of readdirSync(wal)) if (n.endsWith('.wal')) rmSync(join(wal, n));
          }
          return r;
        },
      },
    });
    const { logger, lines } = capturedLogger();
    const c = await startCollector({ 'delivery.walDir': wal, 'writer.retryInitialMs': '20', 'writer.retryMaxMs': '40', 'writer.retryMaxElapsedMs': '200', 'writer.maxQueueBytes': '1024', 'shutdown.timeoutMs': '1000' }, { backend, logger });
    try {
      await sendSome(c.httpUrl, 'spin');
      await eventually(async () => (lines().filter((l) => /gave up writing a batch/.test(l.msg)).length >= 2 ? true : undefined), 5000, 'batches given up on');
      down = false;
      // The rewrite starts 5 s after the first was given up on.
      await eventually(async () => (removed ? true : undefined), 10_000, 'the first slice stored');
      await new Promise((r) => setTimeout(r, 2000));
      // One try, then a wait of KEPT_RETRY_MS (5 s) before the next: before, 49,340 tries in 2 s.
      expect(lines().filter((l) => /could not read back batches given up on/.test(l.msg)).length).toBeLessThanOrEqual(1);
    } finally {
      await c.stop();
    }
  }, 30_000);
});
