// The write-ahead log behind the real writer and the real SQLite backend, through WalRecorder:
// what `delivery.ack = durable` will do once ingest appends before acknowledging. Counts are
// exact: every acknowledged row stored, none twice, across an outage and across crashes.
import { randomUUID } from 'node:crypto';
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { DurableLog } from '../../src/pipeline/durable.ts';
import { WalRecorder } from '../../src/pipeline/wal-backend.ts';
import { WriteAheadLog, type WalReplay } from '../../src/pipeline/wal/index.ts';
import { Writer, type WriterOptions } from '../../src/pipeline/writer.ts';
import type { Signal } from '../../src/model/signal.ts';
import type { EncodedChunk, StorageBackend, StoreWriter, WriteBatch, WriteResult } from '../../src/storage/backend.ts';
import { createEncoder } from '../../src/storage/rowjson.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { gated } from '../helpers/backends.ts';
import { eventually } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { makeLog, makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

const opts: WriterOptions = {
  maxBatchRows: 40,
  flushIntervalMs: 5,
  maxInFlightBatches: 2,
  maxQueueBytes: 64 << 20,
  retryInitialMs: 1,
  retryMaxMs: 5,
  retryMaxElapsedMs: 0,
  writeTimeoutMs: 5_000,
};
const encoder = createEncoder();
const silent = pino({ level: 'silent' });
const cleanup: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function sqlite(path: string): Promise<StorageBackend> {
  const b = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': path } })), { logger: silent, metrics: createMetrics() });
  await b.start();
  cleanup.push(() => b.shutdown());
  return b;
}

async function openWal(dir: string): Promise<{ wal: WriteAheadLog; replay: WalReplay }> {
  const wal = new WriteAheadLog({ dir, maxBytes: 64 << 20, segmentBytes: 32 * 1024 });
  const replay = await wal.start();
  cleanup.push(() => wal.shutdown());
  return { wal, replay };
}

/** What durable ingest does with a decoded request: append, then hand the chunks to the writer. */
async function accept(wal: WriteAheadLog, recorder: WalRecorder, writer: Writer, signal: Signal, chunks: EncodedChunk[]): Promise<void> {
  const bytes = chunks.reduce((n, c) => n + c.data.byteLength, 0);
  const reservation = writer.reserve(bytes);
  expect(reservation).toBeDefined();
  const seq = await wal.append(signal, chunks);
  recorder.track(seq, chunks);
  void reservation!.commit(signal, chunks, TENANT);
}

/** What start-up does with a replay (read back whole here): recorded batches as they are, other chunks through the writer. */
async function replayInto(replay: WalReplay, recorder: WalRecorder, backend: StoreWriter, writer: Writer): Promise<void> {
  recorder.adopt({ batches: replay.batches, chunks: [] });
  for (const b of replay.batches) recorder.retrack(b.batch.chunks, b.refs);
  for (const c of replay.chunks) recorder.retrack([c.data], [c.ref]);
  for (const { batch } of replay.batches) {
    const r = await backend.write(batch);
    expect(r.kind).toBe('success');
  }
  for (const signal of ['traces', 'logs'] as const) {
    const chunks = replay.chunks.filter((c) => c.signal === signal);
    const bytes = chunks.reduce((n, c) => n + c.data.byteLength, 0);
    void writer.reserve(bytes)!.commit(signal, chunks, TENANT);
  }
  await writer.drain();
}

async function counts(b: StorageBackend, service: string): Promise<{ spans: number; logs: number }> {
  const traces = await b.searchTraces(TENANT, { service, limit: 10_000 });
  const logs = await b.searchLogs(TENANT, { service, limit: 10_000 });
  return { spans: traces.reduce((n, t) => n + t.spanCount, 0), logs: logs.length };
}

function requests(service: string, n: number): { spans: EncodedChunk[][]; logs: EncodedChunk[][] } {
  return {
    spans: Array.from({ length: n }, () => encoder.encodeSpans(Array.from({ length: 10 }, () => makeSpan({ serviceName: service })))),
    logs: Array.from({ length: n }, () => encoder.encodeLogs(Array.from({ length: 5 }, () => makeLog({ serviceName: service })))),
  };
}

describe('write-ahead log behind the writer', () => {
  it('stores every acknowledged row and empties the log', async () => {
    const dir = tempDir('walw-');
    const store = await sqlite(join(dir, 'db.sqlite'));
    const { wal } = await openWal(join(dir, 'wal'));
    const recorder = new WalRecorder(wal);
    const writer = new Writer(recorder.wrap(store), opts, createMetrics(), silent);
    const service = 'ok-' + randomUUID();
    const r = requests(service, 8);
    await Promise.all([...r.spans.map((c) => accept(wal, recorder, writer, 'traces', c)), ...r.logs.map((c) => accept(wal, recorder, writer, 'logs', c))]);
    await writer.drain();
    await wal.flush();
    expect(await counts(store, service)).toEqual({ spans: 80, logs: 40 });
    expect(wal.pendingEntries).toBe(0);
  });

  it('writes batches of chunks it was not told about straight through, recording nothing', async () => {
    const dir = tempDir('walw-');
    const store = await sqlite(join(dir, 'db.sqlite'));
    const { wal } = await openWal(join(dir, 'wal'));
    const writer = new Writer(new WalRecorder(wal).wrap(store), opts, createMetrics(), silent);
    const service = 'queued-' + randomUUID();
    const chunks = requests(service, 1).spans[0]!;
    const bytes = chunks.reduce((n, c) => n + c.data.byteLength, 0);
    void writer.reserve(bytes)!.commit('traces', chunks, TENANT);
    await writer.drain();
    await wal.flush();
    expect(await counts(store, service)).toEqual({ spans: 10, logs: 0 });
    expect(wal.stats.fsyncs).toBe(0);
  });

  it('keeps what the writer could not store at shutdown (database down) and stores it once after a restart', async () => {
    const dir = tempDir('walw-');
    const store = await sqlite(join(dir, 'db.sqlite'));
    const gate = gated(store);
    const first = await openWal(join(dir, 'wal'));
    const recorder = new WalRecorder(first.wal);
    const metrics = createMetrics();
    const writer = new Writer(recorder.wrap(gate.backend), opts, metrics, silent);
    const service = 'outage-' + randomUUID();
    const r = requests(service, 6);
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('database is down') });
    for (const c of r.spans) await accept(first.wal, recorder, writer, 'traces', c);
    for (const c of r.logs) await accept(first.wal, recorder, writer, 'logs', c);
    await new Promise((res) => setTimeout(res, 50));
    // The writer gives up at shutdown and counts the rows as dropped; the log still holds them.
    await writer.shutdown(100);
    const dropped = (await metrics.registry.getSingleMetricAsString('tracehouse_writer_dropped_rows_total')).split('\n').filter((l) => !l.startsWith('#')).reduce((s, l) => s + Number(l.split(' ').pop()), 0);
    expect(dropped).toBe(90);
    expect(first.wal.pendingEntries).toBe(12);
    await first.wal.shutdown();
    expect(await counts(store, service)).toEqual({ spans: 0, logs: 0 });

    // Restart on the same files, database back.
    const second = await openWal(join(dir, 'wal'));
    expect(second.replay.batches.length + second.replay.chunks.length).toBeGreaterThan(0);
    const recorder2 = new WalRecorder(second.wal);
    const backend2 = recorder2.wrap(store);
    await replayInto(second.replay, recorder2, backend2, new Writer(backend2, opts, createMetrics(), silent));
    await second.wal.flush();
    expect(await counts(store, service)).toEqual({ spans: 60, logs: 30 });
    expect(second.wal.pendingEntries).toBe(0);
  });

  it('lets go of a batch the writer gave up on only when told to (abandon)', async () => {
    const dir = tempDir('walw-');
    const store = await sqlite(join(dir, 'db.sqlite'));
    const gate = gated(store);
    const { wal } = await openWal(join(dir, 'wal'));
    const recorder = new WalRecorder(wal);
    const batches: string[] = [];
    const seen: StoreWriter = { name: gate.backend.name, write: (b: WriteBatch) => (b.signal === 'traces' && batches.push(b.batchId), gate.backend.write(b)) };
    const writer = new Writer(recorder.wrap(seen), { ...opts, retryMaxElapsedMs: 30 }, createMetrics(), silent);
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('down') });
    await accept(wal, recorder, writer, 'traces', requests('gone-' + randomUUID(), 1).spans[0]!);
    await writer.drain();
    await wal.flush();
    // Given up by the writer, still in the log:
    expect(wal.pendingEntries).toBe(1);
    await recorder.abandon(batches[0]!);
    await wal.flush();
    expect(wal.pendingEntries).toBe(0);
  });

  it('stores nothing twice when the process dies after a batch committed and before it was marked stored', async () => {
    const dir = tempDir('walw-');
    const walDir = join(dir, 'wal');
    const crashDir = join(dir, 'wal-at-crash');
    const store = await sqlite(join(dir, 'db.sqlite'));
    // The crash: right after the store committed the first log batch, the log's files are copied
    // as they are, and from then on the dead process writes nothing more anywhere.
    let crashed = false;
    const crashing: StorageBackend = Object.create(store, {
      write: {
        value: async (b: WriteBatch): Promise<WriteResult> => {
          if (b.signal === 'traces') return store.write(b);
          if (crashed) return { kind: 'retryable', error: new Error('process is dead') };
          const res = await store.write(b);
          if (res.kind === 'success') {
            cpSync(walDir, crashDir, { recursive: true });
            crashed = true;
          }
          return res;
        },
      },
    });
    const gate = gated(crashing);
    const { wal } = await openWal(walDir);
    const recorder = new WalRecorder(wal);
    // Batches of two requests, written one at a time, none before every request is acknowledged.
    const writer = new Writer(recorder.wrap(gate.backend), { ...opts, maxBatchRows: 10, flushIntervalMs: 60_000, maxInFlightBatches: 1 }, createMetrics(), silent);
    const service = 'crash-' + randomUUID();
    gate.close();
    for (const c of requests(service, 4).logs) await accept(wal, recorder, writer, 'logs', c);
    gate.open();
    // The SQLite write thread starts on the first write: wait for the crash, however long that takes.
    await eventually(async () => (crashed ? true : undefined), 20_000, 'the first log batch to commit');
    await writer.shutdown(100);
    expect(await counts(store, service)).toEqual({ spans: 0, logs: 10 });

    // Restart from the log as it was at the crash: the committed batch comes back under its id
    // and stores nothing; the other two requests are stored once.
    const after = await openWal(crashDir);
    expect(after.replay.batches).toHaveLength(1);
    const recorder2 = new WalRecorder(after.wal);
    const backend2 = recorder2.wrap(store);
    await replayInto(after.replay, recorder2, backend2, new Writer(backend2, opts, createMetrics(), silent));
    expect(await counts(store, service)).toEqual({ spans: 0, logs: 20 });
  });

  it('replays what a crash left while a steady load keeps the writer busy, without waiting for the load to stop', async () => {
    const dir = tempDir('walw-');
    const store = await sqlite(join(dir, 'db.sqlite'));
    const walDir = join(dir, 'wal');
    const before = 'replayed-' + randomUUID();
    const during = 'steady-' + randomUUID();
    // Acknowledged before the stop and never stored: the log keeps them for the next start.
    {
      const { wal } = await openWal(walDir);
      const r = requests(before, 6);
      for (const c of r.spans) await wal.append('traces', c);
      for (const c of r.logs) await wal.append('logs', c);
      await wal.shutdown();
    }
    const log = new DurableLog({ dir: walDir, maxBytes: 64 << 20, segmentBytes: 32 * 1024 }, createMetrics(), silent);
    await log.start();
    // The store as a slow disk makes it (15 ms a write): the load below keeps the writer from
    // ever being idle while it runs.
    const slow: StoreWriter = { name: store.name, write: async (b) => (await new Promise((r) => setTimeout(r, 15)), store.write(b)) };
    const writer = new Writer(log.wrap(slow), opts, createMetrics(), silent);
    let running = true;
    let busy = true;
    // Four clients, each sending its next request as soon as the last is acknowledged.
    const load = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (running) {
          const chunks = requests(during, 1).spans[0]!;
          const reservation = writer.reserve(chunks.reduce((n, c) => n + c.data.byteLength, 0));
          if (reservation && (await log.append('traces', chunks, TENANT)) === undefined) void reservation.commit('traces', chunks, TENANT);
          else reservation?.release();
          busy &&= writer.queueBytes > 0;
          await new Promise((r) => setTimeout(r, 1));
        }
      }),
    );
    try {
      await new Promise((r) => setTimeout(r, 50));
      log.feed(writer, opts.maxQueueBytes);
      // Spans and log records are fed one after the other: the second waited for the writer to be idle.
      await eventually(async () => ((await counts(store, before)).logs === 30 ? true : undefined), 5_000, 'the replayed log records stored while the load runs');
      expect(await counts(store, before)).toEqual({ spans: 60, logs: 30 });
      expect(busy).toBe(true);
    } finally {
      running = false;
      await load;
    }
    log.stopFeeding();
    await writer.shutdown();
    await log.shutdown();
    expect((await counts(store, during)).spans).toBeGreaterThan(0);
  });
});

describe('write-ahead log behind the writer: a batch stored by an attempt that had timed out', () => {
  it('lets go of the log after a restart when a later attempt recorded the stored batch again before a crash', async () => {
    const dir = tempDir('walw-');
    const store = await sqlite(join(dir, 'db.sqlite'));
    const walDir = join(dir, 'wal');
    const crashDir = join(dir, 'wal-at-crash');
    const service = 'late-' + randomUUID();
    const { wal } = await openWal(walDir);
    const recorder = new WalRecorder(wal);
    // The first attempt lands after it timed out (100 ms); the attempts meanwhile find the store
    // unreachable; the one after it landed records the batch again, and the process dies during it.
    let landed = false;
    let crashed = false;
    const slow: StoreWriter = {
      name: store.name,
      write: async (b) => {
        if (!landed && !crashed) {
          if (calls++ > 0) return { kind: 'retryable', error: new Error('store unreachable') };
          await new Promise((r) => setTimeout(r, 150));
          const res = await store.write(b);
          landed = true;
          return res;
        }
        if (!crashed) {
          await wal.flush();
          cpSync(walDir, crashDir, { recursive: true });
          crashed = true;
        }
        return store.write(b);
      },
    };
    let calls = 0;
    const writer = new Writer(recorder.wrap(slow), { ...opts, writeTimeoutMs: 100, retryMaxElapsedMs: 60_000, maxInFlightBatches: 1 }, createMetrics(), silent);
    await accept(wal, recorder, writer, 'logs', requests(service, 1).logs[0]!);
    await eventually(async () => (crashed ? true : undefined), 5_000, 'the third attempt');
    await writer.shutdown(1_000);
    expect(await counts(store, service)).toEqual({ spans: 0, logs: 5 });

    // The restart from the log as the crash left it, then a steady trickle of new requests that
    // rotates its segments: once everything is stored, the segments of before the crash go.
    const atCrash = readdirSync(crashDir).filter((n) => n.endsWith('.wal'));
    const { logger, lines } = capturedLogger();
    const log = new DurableLog({ dir: crashDir, maxBytes: 64 << 20, segmentBytes: 32 * 1024 }, createMetrics(), logger);
    await log.start();
    cleanup.push(() => log.shutdown());
    const writer2 = new Writer(log.wrap(store), opts, createMetrics(), silent);
    log.feed(writer2, opts.maxQueueBytes);
    for (const c of requests('after-' + service, 40).spans) {
      const reservation = writer2.reserve(c.reduce((n, x) => n + x.data.byteLength, 0))!;
      expect(await log.append('traces', c, TENANT)).toBeUndefined();
      void reservation.commit('traces', c, TENANT);
    }
    await writer2.drain();
    await eventually(async () => (readdirSync(crashDir).filter((n) => atCrash.includes(n)).length === 0 ? true : undefined), 5_000, 'the segments of before the crash deleted');
    expect(lines().filter((l) => /could not be read back/.test(String(l.msg)))).toEqual([]);
    expect(await counts(store, service)).toEqual({ spans: 0, logs: 5 });
  }, 20_000);
});

describe('write-ahead log behind the writer: a batch given up on after an attempt that had timed out stored it', () => {
  it('lets go of the log while running when the batch recorded again is given up on', async () => {
    const dir = tempDir('walw-');
    const store = await sqlite(join(dir, 'db.sqlite'));
    const walDir = join(dir, 'wal');
    const service = 'late-kept-' + randomUUID();
    const { logger, lines } = capturedLogger();
    const log = new DurableLog({ dir: walDir, maxBytes: 64 << 20, segmentBytes: 32 * 1024 }, createMetrics(), logger);
    await log.start();
    cleanup.push(() => log.shutdown());
    // The first attempt of the first batch lands after it timed out (100 ms); every other attempt
    // of it finds the store unreachable until the writer gives up (retryMaxElapsedMs) and the log
    // keeps it. Everything else is written at once.
    let first: string | undefined;
    let landed = false;
    const flaky: StoreWriter = {
      name: store.name,
      write: async (b) => {
        first ??= b.batchId;
        if (b.batchId !== first) return store.write(b);
        if (landed) return { kind: 'retryable', error: new Error('store unreachable') };
        landed = true;
        await new Promise((r) => setTimeout(r, 150));
        return store.write(b);
      },
    };
    const writer = new Writer(log.wrap(flaky), { ...opts, writeTimeoutMs: 100, retryMaxElapsedMs: 600, keptByLog: true, maxInFlightBatches: 1 }, createMetrics(), logger);
    log.feed(writer, opts.maxQueueBytes);
    const send = async (s: string, n: number): Promise<void> => {
      for (const c of requests(s, n).spans) {
        const reservation = writer.reserve(c.reduce((m, x) => m + x.data.byteLength, 0))!;
        expect(await log.append('traces', c, TENANT)).toBeUndefined();
        void reservation.commit('traces', c, TENANT);
      }
    };
    await send(service, 1);
    await eventually(async () => (lines().some((l) => /gave up writing a batch/.test(String(l.msg))) ? true : undefined), 5_000, 'the batch given up on');
    // The rewrite (5 s later) finds its rows stored; then a trickle of new requests rotates the
    // segments, all stored: the log lets go of everything before.
    await new Promise((r) => setTimeout(r, 5_500));
    const before = readdirSync(walDir).filter((n) => n.endsWith('.wal'));
    await send('after-' + service, 40);
    await writer.drain();
    await eventually(async () => (readdirSync(walDir).filter((n) => before.includes(n)).length === 0 ? true : undefined), 5_000, 'the segments of before deleted');
    expect((await counts(store, service)).spans).toBe(10);
  }, 30_000);
});

describe('write-ahead log behind the writer: a stop while the start-up replay reads its rows back', () => {
  it('hands nothing to the writer after the stop, so the stop does not wait for a store that is down', async () => {
    const dir = tempDir('walw-');
    const store = await sqlite(join(dir, 'db.sqlite'));
    const walDir = join(dir, 'wal');
    const service = 'stop-feed-' + randomUUID();
    // The dead process: requests appended, nothing stored.
    const dead = new WriteAheadLog({ dir: walDir, maxBytes: 64 << 20, segmentBytes: 32 * 1024 });
    await dead.start();
    for (const c of requests(service, 4).spans) await dead.append('traces', c);
    await dead.shutdown();

    // The restart finds the store down (every write retryable), and is stopped at once: the
    // replay's first read-back is under way when the writer drains.
    const gate = gated(store);
    gate.failNext(1_000_000, { kind: 'retryable', error: new Error('database is down') });
    const log = new DurableLog({ dir: walDir, maxBytes: 64 << 20, segmentBytes: 32 * 1024 }, createMetrics(), silent);
    await log.start();
    const writer = new Writer(log.wrap(gate.backend), { ...opts, retryMaxElapsedMs: 30_000, keptByLog: true }, createMetrics(), silent);
    log.feed(writer, opts.maxQueueBytes);
    log.stopFeeding();
    await writer.shutdown(100);
    const t0 = Date.now();
    const stopped = await Promise.race([log.shutdown().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 3_000))]);
    expect({ stopped, withinMs: Date.now() - t0 < 3_000 }).toEqual({ stopped: true, withinMs: true });
    // Said at the stop (tracehouse stopped's keptInLogRows), and what was not written stays for the next start.
    expect(log.unfedRows + writer.keptRows).toBe(40);
    const next = await openWal(walDir);
    expect(next.replay.chunks.reduce((n, c) => n + c.rows, 0) + next.replay.batches.reduce((n, b) => n + b.batch.rows, 0)).toBe(40);
  }, 40_000);
});
