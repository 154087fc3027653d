// Disk full, on a real tiny filesystem (tmpfs; the suite runs as root in CI, where mounting
// works; elsewhere these tests are skipped and say why). The write-ahead log's disk filling up
// and the SQLite file's disk filling up: exports are refused as retryable, nothing acknowledged
// is lost, and once space returns everything acknowledged is stored, once.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { gated } from '../helpers/backends.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { eventually, getJson, metricValue, startCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { startLoad, storedInSqlite, type Acked } from '../helpers/process.ts';
import { makeLog, makeSpan, makeTrace, writeSpans } from '../helpers/rows.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { getTrace, tableStats } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { tempDir } from '../helpers/tmp.ts';
import { copyStore, exportStore } from '../../src/transfer/commands.ts';
import { TransferSink } from '../../src/transfer/sink.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createBackend } from '../../src/storage/index.ts';
import { Writable } from 'node:stream';
import { WriteAheadLog } from '../../src/pipeline/wal/index.ts';
import { fill, mountProbe, tinyFs, unmountTinyFs } from '../helpers/tinyfs.ts';

const SPANS_PER_REQUEST = 20;
const DAY = 86_400_000_000_000n;
const { canMount, why } = mountProbe();

afterEach(unmountTinyFs);

/** A collector on SQLite (db) whose write-ahead log is on the tiny filesystem walFs. */
function walOnTinyFs(walFs: string, db: string): Record<string, string> {
  return {
    'storage.backend': 'sqlite',
    'storage.sqlite.path': db,
    'delivery.walDir': join(walFs, 'wal'),
    // The filesystem (2 MiB) fills long before the log's own bound would refuse.
    'delivery.walMaxBytes': String(64 << 20),
    'delivery.walSegmentBytes': String(64 << 10),
    'receiver.maxMessageBytes': String(1 << 20),
  };
}

function expectAllStoredOnce(acked: Acked, db: string, service: string): void {
  const { spansByTrace, logCopies } = storedInSqlite(db, service);
  expect(acked.traces.filter((t) => spansByTrace.get(t) !== SPANS_PER_REQUEST)).toEqual([]);
  expect(acked.logs.filter((b) => logCopies.get(b) !== 1)).toEqual([]);
  expect([...logCopies.values()].every((n) => n === 1)).toBe(true);
}

describe.skipIf(!canMount)(`disk full (tmpfs${canMount ? '' : `: cannot mount here: ${why}`})`, () => {
  it('write-ahead log disk full: refuses as retryable, loses nothing, accepts again once stored segments free space', async () => {
    const walFs = tinyFs('2m') as string;
    const dir = tempDir('fault-disk-');
    const db = join(dir, 'th.db');
    const config = loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': db } });
    const sqlite = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await sqlite.start();
    const gate = gated(sqlite);
    const c = await startCollector(walOnTinyFs(walFs, db), { backend: gate.backend });
    // The store stalls, so nothing leaves the log and its disk fills.
    gate.close();
    const service = 'wal-disk-full';
    const l = startLoad(c.httpUrl, { concurrency: 4, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: 5, service });
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'wal_unavailable' })) > 0 ? true : undefined), 20_000, 'refusals once the disk is full');
    const ackedWhileFull = l.acked.traces.length;
    expect(ackedWhileFull).toBeGreaterThan(0);
    // Space returns as the store takes the rows and whole segments are deleted.
    gate.open();
    // The backlog is stored first and a segment is deleted only once all of it is stored: on a
    // busy CI machine that took more than 20 s once.
    await eventually(async () => (l.acked.traces.length >= ackedWhileFull + 50 ? true : undefined), 45_000, 'accepting again');
    const acked = await l.stop();
    expect(acked.refused).toBeGreaterThan(0);
    expect(acked.unanswered).toBe(0);
    expect(await c.stop()).toBe(0);
    expectAllStoredOnce(acked, db, service);
  }, 100_000);

  it('write-ahead log disk filled by another file: accepts again once that file is gone, with no segment deleted', async () => {
    const walFs = tinyFs('2m') as string;
    const db = join(tempDir('fault-disk-'), 'th.db');
    const c = await startCollector(walOnTinyFs(walFs, db));
    const service = 'wal-disk-other-file';
    const l = startLoad(c.httpUrl, { concurrency: 2, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: 5, service });
    await eventually(async () => (l.acked.traces.length >= 10 ? true : undefined), 20_000, 'accepting');
    // Another file on the log's volume takes its room (a database beside it, say); the store keeps
    // up, so the log soon holds nothing unstored, and no segment of it is left to delete.
    const ballast = fill(walFs);
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'wal_unavailable' })) > 0 ? true : undefined), 20_000, 'refusals once the disk is full');
    rmSync(ballast);
    const before = l.acked.traces.length;
    await eventually(async () => (l.acked.traces.length >= before + 20 ? true : undefined), 20_000, 'accepting again once the other file is gone');
    const acked = await l.stop();
    expect(acked.unanswered).toBe(0);
    expect(await c.stop()).toBe(0);
    expectAllStoredOnce(acked, db, service);
  }, 60_000);

  it('SQLite disk full: writes retried, exports refused once the queue is full, everything acknowledged stored once space returns', async () => {
    // Room for the rows sent after space returns; the ballast takes all of it before.
    const dbFs = tinyFs('32m') as string;
    mkdirSync(join(dbFs, 'data'));
    const db = join(dbFs, 'data', 'th.db');
    const flags = {
      'storage.backend': 'sqlite',
      'storage.sqlite.path': db,
      'delivery.walDir': join(tempDir('fault-disk-'), 'wal'),
      'writer.maxQueueBytes': String(2 << 20),
      'writer.retryMaxMs': '100',
      // More WAL between checkpoints than the disk holds: SQLite would never reach a checkpoint,
      // and its WAL would keep the disk full, had the store not gone back to short ones.
      'storage.sqlite.checkpointMiB': '64',
    };
    const c = await startCollector(flags);
    const ballast = fill(dbFs);
    const service = 'sqlite-disk-full';
    const l = startLoad(c.httpUrl, { concurrency: 4, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: 5, service });
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'queue_full' })) > 0 ? true : undefined), 20_000, 'refusals once the queue is full');
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_failed_batches_total', { kind: 'retryable' })).toBeGreaterThan(0);
    await eventually(async () => ((await getJson(c.opsUrl, '/readyz')).status === 503 ? true : undefined), 10_000, 'not ready');
    const before = l.acked.traces.length;
    rmSync(ballast);
    await eventually(async () => (l.acked.traces.length >= before + 50 ? true : undefined), 20_000, 'accepting again');
    const acked = await l.stop();
    // Under full load the queue may be full at any moment; once it drains, the collector is ready.
    await eventually(async () => ((await getJson(c.opsUrl, '/readyz')).status === 200 ? true : undefined), 20_000, 'ready again');
    expect(acked.refused).toBeGreaterThan(0);
    expect(acked.unanswered).toBe(0);
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
    expect(await c.stop()).toBe(0);
    // With ack=durable, what the store had not taken when the collector stopped (a busy machine
    // makes that likely here) stays in the write-ahead log and is stored by the next start.
    await (await startCollector(flags)).stop();
    expectAllStoredOnce(acked, db, service);
  }, 90_000);

  it('SQLite retention on a full disk: the failed pass is logged as such and the write thread goes on', async () => {
    // Deleting rows writes pages into SQLite's WAL, so on a full disk a retention pass fails;
    // before, it threw on the write thread, which died and was started again.
    const dbFs = tinyFs('32m') as string;
    const path = join(dbFs, 'th.db');
    const sqlite = (retentionDays: number, logger = pino({ level: 'silent' })) =>
      createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': path, 'storage.sqlite.retentionDays': String(retentionDays) } })), { logger, metrics: createMetrics() });
    const now = BigInt(Date.now()) * 1_000_000n;
    const old = Array.from({ length: 3000 }, (_, i) => makeSpan({ name: `old ${i}`, startTimeUnixNano: now - 10n * DAY + BigInt(i), endTimeUnixNano: now - 10n * DAY + BigInt(i) + 1n }));
    const first = sqlite(0);
    await first.start();
    await writeSpans(first, old);
    await first.shutdown();
    const ballast = fill(dbFs);
    // Room for the connections' shared memory, not for the deletions.
    truncateSync(ballast, Math.max(0, statSync(ballast).size - (256 << 10)));
    const { logger, lines } = capturedLogger();
    const backend = sqlite(7, logger);
    await backend.start();
    try {
      const failed = await eventually(async () => lines().find((l) => l.msg.startsWith('sqlite retention failed')), 20_000, 'the retention pass to fail');
      expect(failed).toMatchObject({ level: 50, retentionDays: 7, err: expect.stringMatching(/full/i) });
      rmSync(ballast);
      const fresh = makeSpan({ startTimeUnixNano: now, endTimeUnixNano: now + 1n });
      await writeSpans(backend, [fresh]);
      expect(lines().filter((l) => /write thread stopped/.test(l.msg))).toEqual([]);
      expect((await backend.getTrace('default', old[0]!.traceId)).map((s) => s.name)).toEqual(['old 0']);
      expect((await backend.getTrace('default', fresh.traceId)).map((s) => s.spanId)).toEqual([fresh.spanId]);
    } finally {
      await backend.shutdown();
    }
  }, 60_000);

  it('SQLite retention frees a nearly full disk: a pass deletes in slices, so the WAL needs room for a slice, not for all it deletes', async () => {
    // An operator whose disk fills lowers the retention: the first pass then deletes most of the
    // file. In one transaction, every page it changed went to the WAL first (about the size of
    // what it deleted), so on a disk with less room than that the pass failed every minute and
    // never freed anything. checkpointMiB's help promises the WAL at most twice it on disk.
    const dbFs = tinyFs('96m') as string;
    const path = join(dbFs, 'th.db');
    const db = openDatabase(path, { checkpointMiB: 1 });
    const store = new SqliteStore(db);
    const enc = createEncoder({});
    const now = BigInt(Date.now()) * 1_000_000n;
    const services = ['web', 'api', 'db'].map((s) => makeSpan({ serviceName: `${s}-retention-slices` }));
    for (let b = 0; b < 60; b++) {
      const at = (i: number) => now - 10n * DAY + BigInt(b * 1000 + i) * 1_000_000_000n;
      const spans = Array.from({ length: 20 }, (_, i) => makeTrace(25, { resource: services[i % 3]!.resource, scope: services[i % 3]!.scope, serviceName: services[i % 3]!.serviceName, startTimeUnixNano: at(i) })).flat();
      expect(store.writeSpans(enc.encodeSpans(spans).map((c) => c.data)).kind).toBe('success');
      const logs = Array.from({ length: 200 }, (_, i) => makeLog({ serviceName: 'web-retention-slices', timeUnixNano: at(i) }));
      expect(store.writeLogs(enc.encodeLogs(logs).map((c) => c.data), `old-${b}`).kind).toBe('success');
    }
    const fresh = makeTrace(5, { startTimeUnixNano: now - DAY });
    expect(store.writeSpans(enc.encodeSpans(fresh).map((c) => c.data)).kind).toBe('success');
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    const stored = statSync(path).size;
    expect(stored).toBeGreaterThan(24 << 20);
    const ballast = fill(dbFs);
    // Room for a few MiB of WAL: a fraction of what the pass deletes.
    truncateSync(ballast, Math.max(0, statSync(ballast).size - (8 << 20)));
    expect(store.applyRetention(7)).toEqual({ spans: 30_000, logs: 12_000 });
    expect(tableStats(db)).toMatchObject({ spans: 5, logs: 0 });
    expect(getTrace(db, 'default', fresh[0]!.traceId)).toHaveLength(5);
    expect(statSync(`${path}-wal`).size).toBeLessThanOrEqual(2 << 20);
    db.close();
  }, 120_000);

  it('write-ahead log disk full past its reserve: a batch it could not record is written again once there is room', async () => {
    // The batch's own record cannot be written (the volume took even the reserve's room), so the
    // writer gives it up; the log writes it again from its entries' chunks. Before, a batch with
    // no record was forgotten until a restart, and its entry kept every later segment: the log
    // filled while the store took every write.
    const walFs = tinyFs('4m') as string;
    const { logger, lines } = capturedLogger();
    const c = await startCollector({
      'delivery.walDir': join(walFs, 'wal'),
      'delivery.walMaxBytes': String(1 << 20),
      'delivery.walSegmentBytes': String(64 << 10),
      'receiver.maxMessageBytes': String(256 << 10),
      // The accepted rows wait in the writer while the disk fills up.
      'writer.flushIntervalMs': '1500',
      'writer.retryInitialMs': '20',
      'writer.retryMaxMs': '40',
      'writer.retryMaxElapsedMs': '500',
    }, { logger });
    try {
      const kept = randomBytes(16);
      expect(await postTraces(c.httpUrl, traces('unrecorded', kept, 3))).toBe(200);
      // tmpfs allocates whole pages: the segment file ends on a page boundary, so the batch's
      // record needs a page of its own.
      const walBytes = () => metricValue(c.opsUrl, 'tracehouse_wal_bytes');
      for (let i = 0; i < 10 && (await walBytes()) % 4096 !== 0; i++) {
        const before = await walBytes();
        expect(await postTraces(c.httpUrl, traces('unrecorded', kept, 1, 200))).toBe(200);
        const per = (await walBytes()) - before;
        const left = 4096 - ((await walBytes()) % 4096);
        if (left === 4096) break;
        // An entry with a name padded by p takes about per - 200 + p bytes.
        const pad = left - (per - 200);
        if (pad >= 0) expect(await postTraces(c.httpUrl, traces('unrecorded', kept, 1, pad))).toBe(200);
      }
      expect((await walBytes()) % 4096).toBe(0);
      // The volume fills: the next entry fails and the log gives its reserve to batch records,
      // and the volume takes that room too.
      const ballast = fill(walFs);
      expect(await postTraces(c.httpUrl, traces('unrecorded', randomBytes(16), 1500))).toBe(503);
      fill(walFs);
      await eventually(async () => (lines().some((l) => /gave up writing a batch/.test(l.msg)) ? true : undefined), 10_000, 'the batch given up on');
      rmSync(ballast);
      const stored = async () => (await getJson(c.queryUrl, `/v1/traces/${kept.toString('hex')}`)).body?.resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.length >= 3;
      const deadline = Date.now() + 15_000;
      while (!(await stored()) && Date.now() < deadline) await postTraces(c.httpUrl, traces('unrecorded', randomBytes(16), 1500));
      expect(await stored()).toBe(true);
    } finally {
      await c.stop();
    }
  }, 60_000);

  it('SQLite disk full with delivery.ack = queued: rows given up on are counted, and logged once with their total, not once a batch', async () => {
    // queued keeps no log: after writer.retryMaxElapsedMs a batch is dropped. Before, each dropped
    // batch logged an error of its own: 39 lines in 5 s from four clients here, a flood under load.
    const dbFs = tinyFs('32m') as string;
    mkdirSync(join(dbFs, 'data'));
    const db = join(dbFs, 'data', 'th.db');
    const { logger, lines } = capturedLogger();
    const c = await startCollector({ 'storage.backend': 'sqlite', 'storage.sqlite.path': db, 'delivery.ack': 'queued', 'writer.retryMaxElapsedMs': '300', 'writer.retryMaxMs': '50' }, { logger });
    const ballast = fill(dbFs);
    const service = 'queued-disk-full';
    const l = startLoad(c.httpUrl, { concurrency: 4, spansPerRequest: SPANS_PER_REQUEST, logsPerRequest: 5, service });
    const dropped = () => metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total', { reason: 'retries_exhausted' });
    await eventually(async () => ((await dropped()) >= 20 * SPANS_PER_REQUEST ? true : undefined), 20_000, 'batches dropped');
    rmSync(ballast);
    const before = l.acked.traces.length;
    await eventually(async () => (l.acked.traces.length >= before + 20 ? true : undefined), 20_000, 'accepting again');
    await l.stop();
    await eventually(async () => (lines().some((x) => x.msg === 'storage writes recovered') ? true : undefined), 20_000, 'writes recovered');
    const total = await dropped();
    expect(await c.stop()).toBe(0);
    const drops = lines().filter((x) => /^dropped .*accepted rows/.test(x.msg));
    // The first drop, then one line per signal with the rest when writes recover.
    expect(drops.length).toBeLessThanOrEqual(4);
    expect(drops.reduce((n, x) => n + Number(x['rows']), 0)).toBe(total);
  }, 60_000);

  it('write-ahead log disk full: ready again once the disk has room, without an export to find out', async () => {
    const walFs = tinyFs('2m') as string;
    const c = await startCollector(walOnTinyFs(walFs, join(tempDir('fault-disk-'), 'th.db')));
    try {
      for (let i = 0; i < 5; i++) expect(await postTraces(c.httpUrl, traces('sticky', randomBytes(16), 20))).toBe(200);
      const ballast = fill(walFs);
      // Refused once the log finds its disk full (the first failing round gives up its reserve).
      let status = 0;
      for (let i = 0; i < 50 && status !== 503; i++) status = await postTraces(c.httpUrl, traces('sticky', randomBytes(16), 20));
      expect(status).toBe(503);
      // What the store took is marked and its segments go; one more refusal: the log is settled.
      // Waited for, not a fixed 1 s: a refusal while segments were still going was cleared by the
      // log shrinking after it, and a loaded machine found the collector ready here.
      await eventually(
        async () => ((await postTraces(c.httpUrl, traces('sticky', randomBytes(16), 20))) === 503 && (await getJson(c.opsUrl, '/readyz')).body.reason === 'write-ahead log cannot write' ? true : undefined),
        10_000,
        'the settled log refusing, and not ready for it',
      );
      // Room again, and no export comes: readiness finds out by itself (a pod not ready gets none).
      rmSync(ballast);
      await eventually(async () => ((await getJson(c.opsUrl, '/readyz')).status === 200 ? true : undefined), 10_000, 'ready again');
    } finally {
      await c.stop();
    }
  }, 60_000);
});

describe.skipIf(!canMount)(`write-ahead log disk full and the wall clock stepping back (tmpfs${canMount ? '' : `: cannot mount here: ${why}`})`, () => {
  it('takes entries again within a second or so of the disk having room, not once the wall clock is back where it was', async () => {
    // Before: a full disk's reserve was tried again at most once a second as Date.now() told it.
    // The wall clock stepped back an hour (NTP, a VM resumed) after the disk filled, and the log
    // refused every request (503, not ready) for that hour though the disk had room again.
    const walFs = tinyFs('1m') as string;
    const wal = new WriteAheadLog({ dir: join(walFs, 'wal'), maxBytes: 64 << 20, segmentBytes: 1 << 20, logger: pino({ level: 'silent' }) });
    await wal.open();
    const realNow = Date.now.bind(Date);
    let step = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + step);
    try {
      const chunk = (n: number) => [{ partition: 0, rows: 1, data: randomBytes(n) }];
      await wal.append('traces', chunk(1000));
      const ballast = fill(walFs);
      await expect(wal.append('traces', chunk(64 << 10))).rejects.toThrow();
      expect(wal.takesEntries()).toBe(false);
      step = -3_600_000;
      rmSync(ballast);
      await eventually(async () => (wal.takesEntries() ? true : undefined), 5000, 'entries taken again');
      await wal.append('traces', chunk(1000));
    } finally {
      clock.mockRestore();
      await wal.shutdown();
    }
  }, 20_000);
});

describe.skipIf(!canMount)(`SQLite store created on a full disk (tmpfs${canMount ? '' : `: cannot mount here: ${why}`})`, () => {
  it('start-up fails naming storage.sqlite.path and the file, not SQLite\'s words alone', async () => {
    // Before: "start-up failed: database or disk is full", and a copy's "tracehouse copy:
    // database or disk is full", naming no file: the operator could not tell which volume.
    const fs = tinyFs('1m') as string;
    const path = join(fs, 'th.db');
    fill(fs);
    const backend = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': path } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    const err = await backend.start().then(() => undefined, (e: Error) => e);
    await backend.shutdown();
    expect(err?.message).toBe(`storage.sqlite.path = ${JSON.stringify(path)}: cannot open the SQLite store: database or disk is full`);
  });
});

describe.skipIf(!canMount)(`write-ahead log opened on a full disk (tmpfs${canMount ? '' : `: cannot mount here: ${why}`})`, () => {
  it('says the disk is full, not that another process uses the directory', async () => {
    // Before: "write-ahead log directory … is in use by another process (database or disk is
    // full): one collector per directory; set delivery.walDir", sending the operator to look for
    // a second collector that was not there.
    const fs = tinyFs('256k') as string;
    const dir = join(fs, 'wal');
    mkdirSync(dir);
    fill(fs);
    const log = new WriteAheadLog({ dir, maxBytes: 64 << 20, segmentBytes: 8 << 20, exclusive: true });
    const err = await log.start().then(() => undefined, (e: Error) => e);
    await log.shutdown();
    expect(err?.message).toBe(`write-ahead log directory ${dir}: cannot create its lock file: database or disk is full`);
  });
});

describe.skipIf(!canMount)(`export onto a full disk (tmpfs${canMount ? '' : `: cannot mount here: ${why}`})`, () => {
  it.each(['backup.jsonl', 'backup.jsonl.gz', 'backup.jsonl.zst'])('fails naming the file and leaves no partial file (%s)', async (name) => {
    const fs = tinyFs('256k') as string;
    const b = await createBackend(loadConfig({ flags: { 'storage.backend': 'memory' } }), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await b.start();
    try {
      // Random names: neither gzip nor zstd makes them small enough to fit.
      await writeSpans(b, Array.from({ length: 400 }, () => makeSpan({ name: randomBytes(600).toString('hex') })));
      const out = join(fs, name);
      const quiet = new Writable({ write: (_c, _e, cb) => cb() }) as unknown as NodeJS.WriteStream;
      const err = await exportStore(b, { out, tenant: DEFAULT_TENANT, signals: ['traces'], quiet: true, stream: quiet }).then(() => undefined, (e: Error) => e);
      expect(err?.message).toBe(`cannot write ${out}: ENOSPC: no space left on device, write`);
      expect(readdirSync(fs)).toEqual([]);
    } finally {
      await b.shutdown();
    }
  });
});

describe.skipIf(!canMount)(`copy with its checkpoint on a full disk (tmpfs${canMount ? '' : `: cannot mount here: ${why}`})`, () => {
  it('fails naming the checkpoint file and leaves no .tmp beside it', async () => {
    // Before: "tracehouse copy: ENOSPC: no space left on device, write", and an empty
    // CHECKPOINT.tmp left on the full volume.
    const fs = tinyFs('256k') as string;
    const checkpoint = join(fs, 'copy.checkpoint.json');
    const silent = pino({ level: 'silent' });
    const source = await createBackend(loadConfig({ flags: { 'storage.backend': 'memory' } }), { logger: silent, metrics: createMetrics() });
    await source.start();
    const config = loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': join(tempDir('fault-disk-'), 'th.db'), 'workers.threads': '1', 'writer.flushIntervalMs': '20' } });
    const metrics = createMetrics();
    const sink = new TransferSink(config, await createBackend(config, { logger: silent, metrics }), metrics, silent);
    await sink.start();
    try {
      await writeSpans(source, makeTrace(3));
      fill(fs);
      const quiet = new Writable({ write: (_c, _e, cb) => cb() }) as unknown as NodeJS.WriteStream;
      const err = await copyStore(source, sink, { tenant: DEFAULT_TENANT, signals: ['traces'], checkpoint, source: 'memory:test', quiet: true, stream: quiet }).then(() => undefined, (e: Error) => e);
      expect(err?.message).toBe(`cannot write the checkpoint ${checkpoint} (--checkpoint): ENOSPC: no space left on device, write`);
      expect(readdirSync(fs)).toEqual(['ballast']);
    } finally {
      await sink.shutdown();
      await source.shutdown();
    }
  });
});

function traces(service: string, traceId: Buffer, n: number, pad = 0): Uint8Array {
  const spans = Array.from({ length: n }, (_, i) => ({ traceId, spanId: randomBytes(8), name: `s${i}${'p'.repeat(pad)}`, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' }));
  return encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] });
}

async function postTraces(url: string, body: Uint8Array): Promise<number> {
  return (await fetch(`${url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body })).status;
}
