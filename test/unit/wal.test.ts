// The write-ahead log on real files in a temporary directory: durability is only what a new
// instance reads back from disk, so every check reopens the directory.
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { WalBrokenError, WalFullError, WriteAheadLog, type WalChunkRef, type WalCorruption, type WalOptions } from '../../src/pipeline/wal/index.ts';
import type { EncodedChunk, WriteBatch } from '../../src/storage/backend.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { tempDir } from '../helpers/tmp.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

const open: WriteAheadLog[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((w) => w.shutdown()));
});

function wal(dir: string, o: Partial<WalOptions> = {}): WriteAheadLog {
  const w = new WriteAheadLog({ dir, maxBytes: 64 << 20, segmentBytes: 8 << 20, ...o });
  open.push(w);
  return w;
}

function chunk(bytes: number, partition = 0, rows = 3): EncodedChunk {
  return { partition, rows, data: new Uint8Array(randomBytes(bytes)) };
}

function segments(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
}

function batchOf(chunks: EncodedChunk[], signal: 'traces' | 'logs' = 'traces'): WriteBatch {
  return {
    signal,
    partition: chunks[0]?.partition ?? 0,
    tenant: TENANT,
    rows: chunks.reduce((n, c) => n + c.rows, 0),
    bytes: chunks.reduce((n, c) => n + c.data.byteLength, 0),
    chunks: chunks.map((c) => c.data),
    batchId: randomUUID(),
  };
}

const bytesOf = (u: Uint8Array): string => Buffer.from(u).toString('hex');

// A real gc() for measuring what is held, not what is merely garbage not yet collected.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('write-ahead log', () => {
  it('reads back every appended entry, in order, with its signal, partition and rows', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir);
    expect(await w.start()).toEqual({ batches: [], chunks: [] });
    const a = [chunk(100, 0, 1), chunk(70_000, 2, 5)];
    const b = [chunk(10, 1, 2)];
    const seqA = await w.append('traces', a);
    const seqB = await w.append('logs', b);
    expect(seqB).toBeGreaterThan(seqA);
    await w.shutdown();

    const replay = await wal(dir).start();
    expect(replay.batches).toEqual([]);
    expect(replay.chunks.map((c) => ({ signal: c.signal, partition: c.partition, rows: c.rows, data: bytesOf(c.data), ref: c.ref }))).toEqual([
      { signal: 'traces', partition: 0, rows: 1, data: bytesOf(a[0]!.data), ref: { entry: seqA, index: 0 } },
      { signal: 'traces', partition: 2, rows: 5, data: bytesOf(a[1]!.data), ref: { entry: seqA, index: 1 } },
      { signal: 'logs', partition: 1, rows: 2, data: bytesOf(b[0]!.data), ref: { entry: seqB, index: 0 } },
    ]);
  });

  it("keeps each entry's and batch's tenant across a restart, the default tenant's written as before", async () => {
    const dir = tempDir('wal-');
    const w = wal(dir);
    await w.start();
    const mine = [chunk(50)];
    const theirs = [chunk(60)];
    const seqMine = await w.append('traces', mine);
    const seqTheirs = await w.append('logs', theirs, 'acme');
    const batch = { ...batchOf(theirs, 'logs'), tenant: 'acme' };
    await w.recordBatch(batch, [{ entry: seqTheirs, index: 0 }]);
    await w.shutdown();

    const replay = await wal(dir).start();
    expect(replay.chunks.map((c) => [c.ref.entry, c.tenant])).toEqual([[seqMine, TENANT]]);
    expect(replay.batches.map((b) => [b.batch.batchId, b.batch.tenant, b.batch.signal])).toEqual([[batch.batchId, 'acme', 'logs']]);
  });

  it('group-commits: 64 concurrent appends share a few fsyncs, sequential ones pay one each', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir);
    await w.start();
    const seqs = await Promise.all(Array.from({ length: 64 }, () => w.append('traces', [chunk(4096)])));
    expect(new Set(seqs).size).toBe(64);
    const concurrent = w.stats.fsyncs;
    expect(concurrent).toBeGreaterThanOrEqual(1);
    expect(concurrent).toBeLessThanOrEqual(4);
    for (let i = 0; i < 5; i++) await w.append('traces', [chunk(10)]);
    expect(w.stats.fsyncs - concurrent).toBe(5);
    await w.shutdown();
    expect((await wal(dir).start()).chunks).toHaveLength(69);
  });

  it('refuses an entry beyond maxBytes with WalFullError, keeps what it acknowledged, and takes entries again once batches are stored', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir, { maxBytes: 40_000, segmentBytes: 10_000 });
    await w.start();
    const acked: number[] = [];
    let refused: unknown;
    for (let i = 0; i < 20; i++) {
      try {
        acked.push(await w.append('logs', [chunk(5_000)]));
      } catch (err) {
        refused = err;
        break;
      }
    }
    expect(refused).toBeInstanceOf(WalFullError);
    expect((refused as WalFullError).code).toBe('WAL_FULL');
    expect(acked.length).toBeGreaterThanOrEqual(6);
    expect(w.bytes).toBeLessThanOrEqual(40_000);
    await expect(w.append('logs', [chunk(5_000)])).rejects.toBeInstanceOf(WalFullError);

    // Everything acknowledged is still there after a crash.
    const again = wal(dir, { maxBytes: 40_000, segmentBytes: 10_000 });
    const replay = await again.start();
    expect(replay.chunks.map((c) => c.ref.entry)).toEqual(acked);
    // Store them: the segments go and there is room again.
    const seq = await again.recordBatch(batchOf(replay.chunks, 'logs'), replay.chunks.map((c) => c.ref));
    again.markStored(seq);
    await again.flush();
    await again.append('logs', [chunk(5_000)]);
    expect(again.bytes).toBeLessThan(20_000);
  });

  it('frees room once everything is stored even when a segment would be larger than the whole log', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir, { maxBytes: 40_000, segmentBytes: 10 << 20 });
    await w.start();
    for (let round = 0; round < 3; round++) {
      const refs: WalChunkRef[] = [];
      const cs: EncodedChunk[] = [];
      for (;;) {
        const c = chunk(3_000);
        try {
          refs.push({ entry: await w.append('traces', [c]), index: 0 });
          cs.push(c);
        } catch (err) {
          expect(err).toBeInstanceOf(WalFullError);
          break;
        }
      }
      expect(refs.length).toBeGreaterThanOrEqual(8);
      w.markStored(await w.recordBatch(batchOf(cs), refs));
      await w.flush();
      expect(w.bytes).toBeLessThan(20_000);
    }
  });

  it('takes entries again once a segment that could not be started can be: a full log of stored rows is not kept for good', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir, { maxBytes: 40_000, segmentBytes: 10_000 });
    await w.start();
    // The next segments cannot be created for a while (a directory where each file would go,
    // as EMFILE or EIO would fail them): the log keeps writing to its first one.
    const blocked = Array.from({ length: 50 }, (_, i) => join(dir, `${String(i + 2).padStart(20, '0')}.wal`));
    for (const b of blocked) mkdirSync(b);
    const refs: WalChunkRef[] = [];
    const cs: EncodedChunk[] = [];
    for (;;) {
      const c = chunk(5_000);
      try {
        refs.push({ entry: await w.append('logs', [c]), index: 0 });
        cs.push(c);
      } catch (err) {
        expect(err).toBeInstanceOf(WalFullError);
        break;
      }
    }
    expect(refs.length).toBeGreaterThanOrEqual(6);
    // Everything is stored while segments still cannot be created; then they can again.
    w.markStored(await w.recordBatch(batchOf(cs, 'logs'), refs));
    await w.flush();
    for (const b of blocked) rmSync(b, { recursive: true });
    const deadline = Date.now() + 5_000;
    let taken = false;
    while (!taken && Date.now() < deadline) {
      taken = await w.append('logs', [chunk(5_000)]).then(() => true, (err: unknown) => (expect(err).toBeInstanceOf(WalFullError), false));
      if (!taken) await new Promise((r) => setTimeout(r, 100));
    }
    expect(taken).toBe(true);
    await w.flush();
    expect(w.bytes).toBeLessThan(20_000);
  });

  it('refuses appends when the disk fails a write, keeps what it acknowledged, and does not crash', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir, { segmentBytes: 1_000 });
    await w.start();
    // The segment after the first one is /dev/full: every write to it fails with ENOSPC, and it
    // cannot even be truncated back, so the log must stop trusting its file.
    symlinkSync('/dev/full', join(dir, '00000000000000000002.wal'));
    const kept = chunk(2_000);
    await w.append('traces', [kept]);
    await expect(w.append('traces', [chunk(100)])).rejects.toMatchObject({ code: 'ENOSPC' });
    await expect(w.append('traces', [chunk(100)])).rejects.toBeInstanceOf(WalBrokenError);
    await w.shutdown();
    rmSync(join(dir, '00000000000000000002.wal'));
    expect((await wal(dir).start()).chunks.map((c) => bytesOf(c.data))).toEqual([bytesOf(kept.data)]);
  });

  it('cuts a torn tail (a crash mid-append), counts and logs it once, and keeps the records before it', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir);
    await w.start();
    const kept = [chunk(1000), chunk(2000)];
    for (const c of kept) await w.append('traces', [c]);
    await w.append('traces', [chunk(3000)]);
    // No shutdown: the process "dies", and the last append reached the disk only in part.
    const [seg] = segments(dir);
    const path = join(dir, seg!);
    const full = statSync(path).size;
    truncateSync(path, full - 1500);

    const found: WalCorruption[] = [];
    const log = capturedLogger();
    const r = wal(dir, { onCorruption: (c) => found.push(c), logger: log.logger });
    const replay = await r.start();
    expect(replay.chunks.map((c) => bytesOf(c.data))).toEqual(kept.map((c) => bytesOf(c.data)));
    expect(found).toEqual([{ kind: 'torn_tail', segment: seg, offset: expect.any(Number) as number, bytes: full - 1500 - found[0]!.offset }]);
    expect(r.stats.tornBytes).toBe(found[0]!.bytes);
    expect(statSync(path).size).toBe(found[0]!.offset);
    expect(log.lines().filter((l) => l.msg.includes('torn tail'))).toHaveLength(1);

    // The log goes on: new appends after the cut are read back, and a third start finds nothing wrong.
    const extra = chunk(500);
    await r.append('traces', [extra]);
    await r.shutdown();
    const third = wal(dir, { onCorruption: (c) => found.push(c) });
    expect((await third.start()).chunks.map((c) => bytesOf(c.data))).toEqual([...kept, extra].map((c) => bytesOf(c.data)));
    expect(found).toHaveLength(1);
  });

  it('treats a flipped byte in the last record as a torn tail', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir);
    await w.start();
    const first = chunk(800);
    await w.append('logs', [first]);
    await w.append('logs', [chunk(800)]);
    const path = join(dir, segments(dir)[0]!);
    const buf = readFileSync(path);
    buf[buf.length - 10]! ^= 0xff;
    writeFileSync(path, buf);

    const found: WalCorruption[] = [];
    const replay = await wal(dir, { onCorruption: (c) => found.push(c) }).start();
    expect(replay.chunks.map((c) => bytesOf(c.data))).toEqual([bytesOf(first.data)]);
    expect(found.map((c) => c.kind)).toEqual(['torn_tail']);
  });

  it('skips a corrupt record in the middle, keeps the acknowledged records after it, and counts it', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir);
    await w.start();
    const cs = [chunk(1000), chunk(1000), chunk(1000)];
    for (const c of cs) await w.append('traces', [c]);
    const path = join(dir, segments(dir)[0]!);
    const buf = readFileSync(path);
    const size = buf.length;
    // Each record is the same size here: flip a byte inside the second one's payload.
    buf[Math.floor(size / 2)]! ^= 0x01;
    writeFileSync(path, buf);

    const found: WalCorruption[] = [];
    const log = capturedLogger();
    const r = wal(dir, { onCorruption: (c) => found.push(c), logger: log.logger });
    const replay = await r.start();
    expect(replay.chunks.map((c) => bytesOf(c.data))).toEqual([bytesOf(cs[0]!.data), bytesOf(cs[2]!.data)]);
    expect(found).toEqual([{ kind: 'corrupt', segment: segments(dir)[0], offset: size / 3, bytes: size / 3 }]);
    expect(r.stats.corruptRegions).toBe(1);
    // Nothing was cut: the records after it are acknowledged data.
    expect(statSync(path).size).toBe(size);
    expect(log.lines().filter((l) => l.msg.includes('checksum'))).toHaveLength(1);
  });

  it('replays after a crash: recorded batches whole under their ids, other chunks to be batched anew', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir);
    await w.start();
    const e1 = [chunk(100, 0), chunk(200, 1)];
    const e2 = [chunk(300, 0)];
    const e3 = [chunk(400, 0)];
    const s1 = await w.append('logs', e1);
    const s2 = await w.append('logs', e2);
    const s3 = await w.append('logs', e3);
    // The writer batched partition 0 of e2 then e1 (arrival order across pipelines is theirs to pick).
    const refs: WalChunkRef[] = [{ entry: s2, index: 0 }, { entry: s1, index: 0 }];
    const batch = batchOf([e2[0]!, e1[0]!], 'logs');
    const bseq = await w.recordBatch(batch, refs);
    // Crash: no shutdown, no markStored.

    const replay = await wal(dir).start();
    expect(replay.batches).toHaveLength(1);
    const rb = replay.batches[0]!;
    expect(rb.seq).toBe(bseq);
    expect(rb.refs).toEqual(refs);
    expect({ ...rb.batch, chunks: rb.batch.chunks.map(bytesOf) }).toEqual({ ...batch, chunks: batch.chunks.map(bytesOf) });
    expect(replay.chunks.map((c) => ({ ref: c.ref, data: bytesOf(c.data) }))).toEqual([
      { ref: { entry: s1, index: 1 }, data: bytesOf(e1[1]!.data) },
      { ref: { entry: s3, index: 0 }, data: bytesOf(e3[0]!.data) },
    ]);
  });

  it('replays a batch that lost a chunk to corruption under a new id, so no store takes the rest for rows it has', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir);
    await w.start();
    const a = chunk(2000);
    const b = chunk(2000);
    const sa = await w.append('logs', [a]);
    const sb = await w.append('logs', [b]);
    const batch = batchOf([a, b], 'logs');
    await w.recordBatch(batch, [{ entry: sa, index: 0 }, { entry: sb, index: 0 }]);
    const path = join(dir, segments(dir)[0]!);
    const buf = readFileSync(path);
    buf[1000]! ^= 0xff; // inside the first entry
    writeFileSync(path, buf);

    const replay = await wal(dir).start();
    expect(replay.batches).toHaveLength(1);
    expect(replay.batches[0]!.batch.chunks.map(bytesOf)).toEqual([bytesOf(b.data)]);
    expect(replay.batches[0]!.batch.rows).toBe(b.rows);
    expect(replay.batches[0]!.batch.batchId).not.toBe(batch.batchId);
  });

  it('replays nothing of a batch recorded again after it was stored, and lets go of its segment', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir);
    await w.start();
    const e = [chunk(100)];
    const s = await w.append('traces', e);
    const b = batchOf(e);
    // Stored by one attempt, then recorded again under the same id by a later one (written by
    // versions before the recorder remembered ended batches), and the process dies.
    w.markStored(await w.recordBatch(b, [{ entry: s, index: 0 }]));
    await w.flush();
    await w.recordBatch(b, [{ entry: s, index: 0 }]);

    const before = segments(dir);
    const plan = await wal(dir).open();
    expect(plan).toEqual({ batches: [], chunks: [] });
    expect(segments(dir).filter((n) => before.includes(n))).toEqual([]);
  });

  it('keeps batch ids stable across repeated crashes until the batch is marked stored', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir);
    await w.start();
    const e = [chunk(100), chunk(100)];
    const s = await w.append('traces', e);
    const first = batchOf([e[0]!]);
    await w.recordBatch(first, [{ entry: s, index: 0 }]);

    // Restart 1: the recorded batch comes back; the other chunk gets a batch of its own now.
    const r1 = wal(dir);
    const p1 = await r1.start();
    expect(p1.batches.map((b) => b.batch.batchId)).toEqual([first.batchId]);
    expect(p1.chunks.map((c) => c.ref)).toEqual([{ entry: s, index: 1 }]);
    const second = batchOf([e[1]!]);
    await r1.recordBatch(second, [p1.chunks[0]!.ref]);

    // Restart 2 (crash again before either write finished): both come back with their ids.
    const r2 = wal(dir);
    const p2 = await r2.start();
    expect(p2.batches.map((b) => b.batch.batchId)).toEqual([first.batchId, second.batchId]);
    expect(p2.batches.map((b) => b.batch.chunks.map(bytesOf))).toEqual([[bytesOf(e[0]!.data)], [bytesOf(e[1]!.data)]]);
    expect(p2.chunks).toEqual([]);
    r2.markStored(p2.batches[0]!.seq);
    await r2.shutdown();

    // Restart 3: only the batch not stored is left.
    const p3 = await wal(dir).start();
    expect(p3.batches.map((b) => b.batch.batchId)).toEqual([second.batchId]);
  });

  it('deletes segments only once everything in them (and before them) is stored', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir, { segmentBytes: 3_000 });
    await w.start();
    const seqs: number[] = [];
    const cs: EncodedChunk[] = [];
    for (let i = 0; i < 12; i++) {
      const c = chunk(1_000);
      cs.push(c);
      seqs.push(await w.append('traces', [c]));
    }
    expect(segments(dir).length).toBeGreaterThanOrEqual(4);
    // Store all but the first entry: nothing can go, the oldest segment still holds it.
    const rest = await w.recordBatch(batchOf(cs.slice(1)), seqs.slice(1).map((entry) => ({ entry, index: 0 })));
    w.markStored(rest);
    await w.append('traces', [chunk(10)]);
    await w.flush();
    const before = segments(dir).length;
    expect(before).toBeGreaterThanOrEqual(4);
    const firstBatch = await w.recordBatch(batchOf([cs[0]!]), [{ entry: seqs[0]!, index: 0 }]);
    w.markStored(firstBatch);
    await w.append('traces', [chunk(10)]);
    await w.flush();
    expect(segments(dir).length).toBeLessThan(before);
    await w.shutdown();
    // What is left replays only the two small entries written last.
    const replay = await wal(dir, { segmentBytes: 3_000 }).start();
    expect(replay.batches).toEqual([]);
    expect(replay.chunks.map((c) => c.data.byteLength)).toEqual([10, 10]);
  });

  it('deletes a segment only once the STORED mark of the batch that emptied it is on disk', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir, { segmentBytes: 1_000 });
    await w.start();
    // Segment 1: entry e1, then it rotates. Segment 2: entry e2, whose second chunk stays unbatched.
    const c1 = chunk(2_000);
    const c2 = chunk(10);
    const e1 = await w.append('logs', [c1]);
    const e2 = await w.append('logs', [c2, chunk(10)]);
    const batch = batchOf([c1, c2], 'logs');
    const seq = await w.recordBatch(batch, [{ entry: e1, index: 0 }, { entry: e2, index: 0 }]);
    expect(segments(dir)).toHaveLength(2);
    // The store answers while a group-commit round (another append) is being written; the crash
    // comes just before the next round, the one carrying the STORED mark, reaches the disk.
    const log = w as unknown as { writeRound: (round: unknown[]) => Promise<void> };
    const writeRound = log.writeRound.bind(w);
    let rounds = 0;
    let crashed = '';
    log.writeRound = (round) => {
      rounds++;
      if (rounds === 1) {
        const written = writeRound(round);
        w.markStored(seq);
        return written;
      }
      if (rounds === 2) {
        crashed = tempDir('wal-');
        cpSync(dir, crashed, { recursive: true });
      }
      return writeRound(round);
    };
    await w.append('logs', [chunk(10)]);
    await w.flush();
    expect(crashed).not.toBe('');
    // The batch may be replayed only whole under its own id (the store keeps one copy): part of it
    // under a new id would store c2 a second time.
    const replay = await wal(crashed, { segmentBytes: 1_000 }).start();
    expect(replay.batches.map((b) => [b.batch.batchId, b.batch.chunks.map(bytesOf)])).toEqual([[batch.batchId, [bytesOf(c1.data), bytesOf(c2.data)]]]);
    // Once the mark is on disk the segment goes.
    expect(segments(dir)).toHaveLength(1);
  });

  it('opens a log held back by one old entry holding a segment at a time and what it replays, not the whole log', async () => {
    const dir = tempDir('wal-');
    const MiB = 1 << 20;
    const o = { maxBytes: 256 * MiB, segmentBytes: 4 * MiB };
    const w = wal(dir, o);
    await w.start();
    // The oldest entry is never stored, so no segment after it can be deleted: 96 MiB stay on disk.
    const old = chunk(1000);
    await w.append('traces', [old]);
    for (let i = 0; i < 24; i++) {
      const c = chunk(4 * MiB);
      const seq = await w.append('traces', [c]);
      w.markStored(await w.recordBatch(batchOf([c]), [{ entry: seq, index: 0 }]));
    }
    await w.shutdown();
    expect(segments(dir).length).toBeGreaterThanOrEqual(24);
    // What the first log lets go of after its shutdown is gone before the baseline.
    await new Promise((r) => setTimeout(r, 50));
    gc();
    const base = process.memoryUsage().arrayBuffers;
    // Sampled at every turn of the event loop (each read's completion is one), after a gc().
    let peak = -Infinity;
    let samples = 0;
    let sampling = true;
    const sample = (): void => {
      if (!sampling) return;
      gc();
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
      samples++;
      setImmediate(sample);
    };
    setImmediate(sample);
    let replay;
    try {
      replay = await wal(dir, o).start();
    } finally {
      sampling = false;
    }
    expect(replay.batches).toEqual([]);
    expect(replay.chunks.map((c) => bytesOf(c.data))).toEqual([bytesOf(old.data)]);
    expect(samples).toBeGreaterThan(10);
    // A segment file being read, nowhere near the 96 MiB.
    expect(peak, `peak ${(peak / MiB).toFixed(1)} MiB of ArrayBuffers while opening`).toBeLessThan(3 * o.segmentBytes);
  });

  it("writes a new segment into a stored segment's file, and never reads that file's earlier records again", async () => {
    const dir = tempDir('wal-');
    const opts = { segmentBytes: 4_000 };
    const w = wal(dir, opts);
    await w.start();
    // Segment 1: six entries of 1,000 bytes, then all stored, so its file becomes a spare.
    const old = Array.from({ length: 6 }, () => chunk(1_000));
    const oldSeqs: number[] = [];
    for (const c of old) oldSeqs.push(await w.append('traces', [c]));
    const [first] = segments(dir);
    const firstPath = join(dir, first!);
    const oldBytes = statSync(firstPath).size;
    const ino = statSync(firstPath).ino;
    w.markStored(await w.recordBatch(batchOf(old), oldSeqs.map((entry) => ({ entry, index: 0 }))));
    const ten = chunk(10);
    await w.append('traces', [ten]);
    await w.flush();
    expect(segments(dir)).not.toContain(first);
    expect(readdirSync(dir).filter((n) => n.startsWith('spare-'))).toHaveLength(1);
    // Fill the active segment until it rotates into the spare's file, then write one small entry there.
    const kept: EncodedChunk[] = [];
    while (segments(dir).every((n) => statSync(join(dir, n)).ino !== ino)) {
      const c = chunk(900);
      kept.push(c);
      await w.append('traces', [c]);
    }
    const last = chunk(20);
    await w.append('traces', [last]);
    const reused = join(dir, segments(dir).at(-1)!);
    expect(statSync(reused).ino).toBe(ino);
    // The old records are still in the file, past the new ones, with valid checksums of their own.
    expect(statSync(reused).size).toBe(oldBytes);

    // A crash (no shutdown): the replay holds what was not stored, and nothing of segment 1.
    const copy = tempDir('wal-');
    cpSync(dir, copy, { recursive: true });
    const found: WalCorruption[] = [];
    const r = wal(dir, { ...opts, onCorruption: (c) => found.push(c) });
    const replay = await r.start();
    expect(replay.chunks.map((c) => bytesOf(c.data))).toEqual([ten, ...kept, last].map((c) => bytesOf(c.data)));
    expect(replay.batches).toEqual([]);
    expect(found).toEqual([]);
    expect(r.stats.tornBytes).toBe(0);
    await r.shutdown();

    // The same crash with the last append torn: cut as far as that record runs, not to the file's end.
    const copied = join(copy, basename(reused));
    const buf = readFileSync(copied);
    const lastAt = buf.lastIndexOf(Buffer.from(last.data));
    buf[lastAt + 5]! ^= 0xff;
    writeFileSync(copied, buf);
    const torn: WalCorruption[] = [];
    const again = await wal(copy, { ...opts, onCorruption: (c) => torn.push(c) }).start();
    expect(again.chunks.map((c) => bytesOf(c.data))).not.toContain(bytesOf(last.data));
    expect(again.chunks.map((c) => bytesOf(c.data))).toContain(bytesOf(kept.at(-1)!.data));
    expect(torn).toHaveLength(1);
    expect(torn[0]).toMatchObject({ kind: 'torn_tail', segment: basename(reused) });
    expect(torn[0]!.offset + torn[0]!.bytes).toBe(lastAt + last.data.byteLength);
  });

  it.each([
    ['rotated past', true],
    ['still the last segment', false],
  ])("reports no damage after a clean stop when a reused file's new records end inside an old one (%s)", async (_, rotate) => {
    const dir = tempDir('wal-');
    const opts = { maxBytes: 1 << 20, segmentBytes: 4_000 };
    const w = wal(dir, opts);
    await w.start();
    // An ENTRY record of one chunk is 44 bytes besides its data. Segment 1: four records of 1,012
    // bytes (4,048: it rotates), all stored, so its file becomes a spare.
    const record = (bytes: number) => chunk(bytes - 44);
    const old = Array.from({ length: 4 }, () => record(1_012));
    const seqs: number[] = [];
    for (const c of old) seqs.push(await w.append('traces', [c]));
    w.markStored(await w.recordBatch(batchOf(old), seqs.map((entry) => ({ entry, index: 0 }))));
    await w.flush();
    expect(readdirSync(dir).filter((n) => n.startsWith('spare-'))).toHaveLength(1);
    // Segment 2 fills and rotates into the spare's file, old records and all.
    while (segments(dir).length < 2) await w.append('traces', [record(1_000)]);
    expect(statSync(join(dir, segments(dir)[1]!)).size).toBe(4_048);
    // New records ending inside the file's last old record (3,036-4,048): four of 1,000 bytes end
    // at 4,000 and rotate; three of 1,100 end at 3,300 and leave it the last segment.
    for (let i = 0; i < (rotate ? 4 : 3); i++) await w.append('traces', [record(rotate ? 1_000 : 1_100)]);
    expect(segments(dir)).toHaveLength(rotate ? 3 : 2);
    await w.shutdown();

    const found: WalCorruption[] = [];
    const log = capturedLogger();
    const replay = await wal(dir, { ...opts, onCorruption: (c) => found.push(c), logger: log.logger }).start();
    expect(replay.chunks.length).toBe(rotate ? 4 + 4 : 4 + 3);
    expect(found).toEqual([]);
    expect(log.lines().filter((l) => /checksum|torn/.test(String(l.msg)))).toEqual([]);
  });

  it('reads the segments of versions before reuse (records whose checksum does not cover the segment), and deletes them once stored', async () => {
    const dir = tempDir('wal-');
    // An ENTRY record as those versions framed it: magic, length, type 1, three zero bytes, then
    // a CRC of header bytes 4..12 and the payload; the payload's head is seq, signal, tenant
    // length, chunk count and each chunk's partition, rows and length.
    const legacyEntry = (seq: number, data: Uint8Array): Buffer => {
      const head = Buffer.alloc(28);
      head.writeBigUInt64LE(BigInt(seq), 0);
      head.writeUInt8(1, 8);
      head.writeUInt32LE(1, 12);
      head.writeUInt32LE(0, 16);
      head.writeUInt32LE(2, 20);
      head.writeUInt32LE(data.byteLength, 24);
      const h = Buffer.alloc(16);
      h.writeUInt32LE(0x4c574854, 0);
      h.writeUInt32LE(head.length + data.byteLength, 4);
      h.writeUInt8(1, 8);
      h.writeUInt32LE(crc32(data, crc32(head, crc32(h.subarray(4, 12)))), 12);
      return Buffer.concat([h, head, data]);
    };
    const a = chunk(300);
    const b = chunk(400);
    const legacy = join(dir, '00000000000000000001.wal');
    writeFileSync(legacy, Buffer.concat([legacyEntry(1, a.data), legacyEntry(2, b.data)]));
    const found: WalCorruption[] = [];
    const w = wal(dir, { segmentBytes: 1_000, onCorruption: (c) => found.push(c) });
    const replay = await w.start();
    expect(replay.chunks.map((c) => ({ key: bytesOf(c.data), signal: c.signal, rows: c.rows }))).toEqual([a, b].map((c) => ({ key: bytesOf(c.data), signal: 'logs', rows: 2 })));
    expect(found).toEqual([]);
    // Stored, the older version's file is deleted, not kept for reuse.
    w.markStored(await w.recordBatch(batchOf([a, b], 'logs'), replay.chunks.map((c) => c.ref)));
    await w.append('logs', [chunk(2_000)]);
    await w.append('logs', [chunk(10)]);
    await w.flush();
    expect(segments(dir)).not.toContain('00000000000000000001.wal');
    expect(readdirSync(dir).filter((n) => n.startsWith('spare-'))).toEqual([]);
  });

  it('keeps at most two spare files, across restarts, and spares and segments together within maxBytes', async () => {
    const dir = tempDir('wal-');
    const spares = (d: string): string[] => readdirSync(d).filter((n) => n.startsWith('spare-'));
    const opts = { segmentBytes: 2_000, maxBytes: 1 << 20 };
    for (let run = 0; run < 3; run++) {
      const w = wal(dir, opts);
      const replay = await w.start();
      expect(replay).toEqual({ batches: [], chunks: [] });
      // Eight entries over four or more segments, all stored at once: more files than it keeps.
      const cs = Array.from({ length: 8 }, () => chunk(1_000));
      const seqs: number[] = [];
      for (const c of cs) seqs.push(await w.append('traces', [c]));
      w.markStored(await w.recordBatch(batchOf(cs), seqs.map((entry) => ({ entry, index: 0 }))));
      const tiny = chunk(10);
      w.markStored(await w.recordBatch(batchOf([tiny]), [{ entry: await w.append('traces', [tiny]), index: 0 }]));
      await w.flush();
      await w.shutdown();
      expect(spares(dir).length).toBeGreaterThan(0);
      expect(spares(dir).length).toBeLessThanOrEqual(2);
    }

    // Spares give way to the log's records: a large entry beside two spares deletes one.
    const small = tempDir('wal-');
    const max = 200_000;
    const w = wal(small, { maxBytes: max });
    await w.start();
    const cs = Array.from({ length: 3 }, () => chunk(60_000));
    const seqs: number[] = [];
    for (const c of cs) seqs.push(await w.append('traces', [c]));
    w.markStored(await w.recordBatch(batchOf(cs), seqs.map((entry) => ({ entry, index: 0 }))));
    await w.append('traces', [chunk(10)]);
    await w.flush();
    expect(spares(small)).toHaveLength(2);
    await w.append('traces', [chunk(90_000)]);
    await w.flush();
    const onDisk = readdirSync(small).filter((n) => n !== 'reserve').reduce((n, f) => n + statSync(join(small, f)).size, 0);
    expect(onDisk).toBeLessThanOrEqual(max);
    expect(spares(small).length).toBeLessThan(2);
  });

  it('numbers entries above everything on disk after a restart', async () => {
    const dir = tempDir('wal-');
    const w = wal(dir);
    await w.start();
    const a = await w.append('traces', [chunk(10)]);
    await w.shutdown();
    const r = wal(dir);
    await r.start();
    const b = await r.append('traces', [chunk(10)]);
    expect(b).toBeGreaterThan(a);
    await r.shutdown();
    expect((await wal(dir).start()).chunks.map((c) => c.ref.entry)).toEqual([a, b]);
  });

  it('has an idempotent lifecycle: shutdown before start, twice, and appends after it are refused', async () => {
    const dir = tempDir('wal-');
    const never = wal(dir);
    await never.shutdown();
    await never.shutdown();
    await expect(never.append('traces', [chunk(1)])).rejects.toThrow(/not started/);
    const w = wal(dir);
    const [p1, p2] = await Promise.all([w.open(), w.open()]);
    expect(p1).toBe(p2);
    expect(await w.start()).toEqual({ batches: [], chunks: [] });
    const pending = w.append('traces', [chunk(100)]);
    await w.shutdown();
    await w.shutdown();
    // An append accepted before shutdown is written by it.
    await expect(pending).resolves.toBeGreaterThan(0);
    await expect(w.append('traces', [chunk(1)])).rejects.toThrow(/shut down/);
    expect((await wal(dir).start()).chunks).toHaveLength(1);
  });
});

describe('write-ahead log: its directory or active segment file removed while it runs', () => {
  // A clean-up script's `rm -r data/wal`, or the directory moved away. The log kept writing into
  // the segment file it had open, which no path named any more: every append was acknowledged as
  // durable (fsynced), /readyz said ready, and the rotation that failed to create its next file
  // was the only line logged; after a crash or a kill the start found nothing of them.
  it.each([
    ['the directory deleted (rm -r)', (dir: string) => rmSync(dir, { recursive: true })],
    ['the directory moved away (mv)', (dir: string) => renameSync(dir, `${dir}.old`)],
    ['the active segment file deleted', (dir: string) => rmSync(join(dir, segments(dir).at(-1)!))],
  ])('%s: entries acknowledged after it are in a file the next start reads, and the loss of the earlier ones is logged once', async (_, remove) => {
    const dir = join(tempDir('wal-'), 'wal');
    const { logger, lines } = capturedLogger();
    const w = wal(dir, { logger, exclusive: true });
    await w.start();
    await w.append('traces', [chunk(100)]);
    remove(dir);
    const after = [chunk(200), chunk(300)];
    await w.append('traces', [after[0]!]);
    await w.append('logs', [after[1]!]);
    // Still one collector per directory: the directory made again is locked again.
    await expect(wal(dir, { exclusive: true }).start()).rejects.toThrow(/in use by another process/);
    // A crash: a new instance reads what is on disk.
    const replay = await wal(dir).start();
    expect(replay.chunks.map((c) => bytesOf(c.data))).toEqual(after.map((c) => bytesOf(c.data)));
    expect(lines().filter((l) => /is no longer at its path/.test(l.msg))).toHaveLength(1);
    // The directory's lock is taken again when it went, and no failure to take it is logged.
    expect(lines().filter((l) => /lock/.test(l.msg))).toEqual([]);
    await w.shutdown();
  });
});

describe('write-ahead log: its active segment file deleted, older segments left', () => {
  it('counts as at risk only the requests that were in the deleted file, and a start still reads those in the older ones', async () => {
    // Before: the error line's unstoredEntries counted every request not yet stored, also those in
    // older segments still on disk, and said they were in no file a start reads.
    const dir = join(tempDir('wal-'), 'wal');
    const { logger, lines } = capturedLogger();
    const w = wal(dir, { logger, segmentBytes: 1024 });
    await w.start();
    const older = chunk(2000);
    await w.append('traces', [older]);
    expect(segments(dir)).toHaveLength(2);
    await w.append('traces', [chunk(100)]);
    rmSync(join(dir, segments(dir).at(-1)!));
    const after = chunk(300);
    await w.append('traces', [after]);
    expect(lines().filter((l) => /is no longer at its path/.test(l.msg)).map((l) => l.unstoredEntries)).toEqual([1]);
    const replay = await wal(dir).start();
    expect(replay.chunks.map((c) => bytesOf(c.data))).toEqual([older, after].map((c) => bytesOf(c.data)));
    await w.shutdown();
  });
});

// Random runs of appends, batches, stored marks, crashes and clean restarts. A crash is a
// synchronous copy of the directory taken between two operations (so STORED marks not yet
// written are lost, as in a real crash); the run continues on the copy.
describe('write-ahead log: random runs with crashes', () => {
  type Op =
    | { t: 'append'; sizes: number[] }
    | { t: 'batch'; take: number; reverse: boolean }
    | { t: 'stored'; pick: number }
    | { t: 'crash' }
    | { t: 'restart' };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ t: fc.constant('append' as const), sizes: fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('batch' as const), take: fc.integer({ min: 1, max: 5 }), reverse: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('stored' as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.constant({ t: 'crash' as const }) },
    { weight: 1, arbitrary: fc.constant({ t: 'restart' as const }) },
  );

  it('replays every acknowledged chunk not stored exactly once, recorded batches whole under their ids', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        let dir = tempDir('walprop-');
        const opts = { maxBytes: 1 << 20, segmentBytes: 2_000 };
        let w = wal(dir, opts);
        await w.start();
        // The model: chunk keys (their bytes in hex) not in a batch, and batches not marked stored.
        let unbatched: { key: string; ref: WalChunkRef }[] = [];
        let live = new Map<string, { seq: number; keys: string[]; refs: WalChunkRef[] }>();
        let markedSinceSnapshot = new Map<string, string[]>();
        const check = (replay: Awaited<ReturnType<WriteAheadLog['start']>>, clean: boolean) => {
          const ids = replay.batches.map((b) => b.batch.batchId);
          expect(new Set(ids).size).toBe(ids.length);
          for (const b of replay.batches) {
            const keys = b.batch.chunks.map(bytesOf);
            const known = live.get(b.batch.batchId)?.keys ?? (clean ? undefined : markedSinceSnapshot.get(b.batch.batchId));
            // Only a batch not stored, or one whose STORED mark the crash lost, and always whole.
            expect(known).toEqual(keys);
          }
          for (const id of live.keys()) expect(ids).toContain(id);
          expect(replay.chunks.map((c) => bytesOf(c.data))).toEqual(unbatched.map((u) => u.key));
          const all = [...replay.batches.flatMap((b) => b.batch.chunks.map(bytesOf)), ...replay.chunks.map((c) => bytesOf(c.data))];
          expect(new Set(all).size).toBe(all.length);
          live = new Map(replay.batches.map((b) => [b.batch.batchId, { seq: b.seq, keys: b.batch.chunks.map(bytesOf), refs: b.refs }]));
          unbatched = replay.chunks.map((c) => ({ key: bytesOf(c.data), ref: c.ref }));
          markedSinceSnapshot = new Map();
        };
        for (const o of ops) {
          if (o.t === 'append') {
            const cs = o.sizes.map((n) => chunk(n));
            const seq = await w.append('logs', cs);
            cs.forEach((c, index) => unbatched.push({ key: bytesOf(c.data), ref: { entry: seq, index } }));
          } else if (o.t === 'batch') {
            if (unbatched.length === 0) continue;
            const picked = unbatched.slice(0, o.take);
            if (o.reverse) picked.reverse();
            unbatched = unbatched.filter((u) => !picked.includes(u));
            const b: WriteBatch = { signal: 'logs', partition: 0, tenant: TENANT, rows: picked.length, bytes: 0, chunks: [], batchId: randomUUID() };
            const seq = await w.recordBatch(b, picked.map((p) => p.ref));
            live.set(b.batchId, { seq, keys: picked.map((p) => p.key), refs: picked.map((p) => p.ref) });
          } else if (o.t === 'stored') {
            const ids = [...live.keys()];
            if (ids.length === 0) continue;
            const id = ids[o.pick % ids.length]!;
            w.markStored(live.get(id)!.seq);
            markedSinceSnapshot.set(id, live.get(id)!.keys);
            live.delete(id);
          } else if (o.t === 'crash') {
            const snap = tempDir('walprop-');
            cpSync(dir, snap, { recursive: true });
            // The old instance goes on writing to the old directory; the run continues on the copy.
            dir = snap;
            w = wal(dir, opts);
            check(await w.start(), false);
          } else {
            await w.shutdown();
            w = wal(dir, opts);
            check(await w.start(), true);
          }
        }
        // Store everything left: the log empties down to its active segment.
        const rest = unbatched.map((u) => u.ref);
        if (rest.length > 0) w.markStored(await w.recordBatch({ signal: 'logs', partition: 0, tenant: TENANT, rows: 0, bytes: 0, chunks: [], batchId: randomUUID() }, rest));
        for (const b of live.values()) w.markStored(b.seq);
        await w.shutdown();
        const end = wal(dir, opts);
        expect(await end.start()).toEqual({ batches: [], chunks: [] });
        expect(segments(dir)).toHaveLength(1);
      }),
      { numRuns: 40 },
    );
  });
});
