// The stores that keep what arrived (memory and SQLite) read chunks of this version, which carry
// their record count, and chunks an earlier version wrote without it (a write-ahead log written
// before an upgrade replays them): both are stored whole and read back the same.
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { LogRow, SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import type { StorageBackend, WriteResult } from '../../src/storage/backend.ts';
import { memoryOptions, sqliteOptions } from '../../src/storage/index.ts';
import { createMemoryBackend } from '../../src/storage/memory/index.ts';
import { CHUNK_HEAD_BYTES, CHUNK_MAGIC, CHUNK_MAGIC_UNCOUNTED, ChunkFormatError, chunkRecordCount, readLogChunk, readSpanChunk } from '../../src/storage/otlp-chunks.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import type { Signal } from '../../src/model/signal.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { makeLog, makeTrace } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const encoder = createEncoder({});

/** Chunk c as an earlier version wrote it: its records straight after the first byte, no count. */
function uncounted(c: Uint8Array): Uint8Array {
  expect(c[0]).toBe(CHUNK_MAGIC);
  const out = new Uint8Array(c.length - CHUNK_HEAD_BYTES + 1);
  out[0] = CHUNK_MAGIC_UNCOUNTED;
  out.set(c.subarray(CHUNK_HEAD_BYTES), 1);
  return out;
}

/** Writes chunks as one batch of the default tenant; the store's answer. */
function tryWrite(b: StorageBackend, signal: Signal, chunks: Uint8Array[], batchId: string): Promise<WriteResult> {
  const bytes = chunks.reduce((n, c) => n + c.byteLength, 0);
  return b.write({ signal, partition: 0, tenant: DEFAULT_TENANT, rows: 0, bytes, chunks, batchId });
}

async function write(b: StorageBackend, signal: Signal, chunks: Uint8Array[], batchId: string): Promise<void> {
  expect(await tryWrite(b, signal, chunks, batchId)).toEqual({ kind: 'success' });
}

const stores: [string, () => Promise<StorageBackend>][] = [
  ['memory', async () => createMemoryBackend(memoryOptions(loadConfig({ flags: { 'storage.backend': 'memory' } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() })],
  [
    'sqlite',
    async () => createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': join(tempDir(), 'chunks.db') } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() }),
  ],
];

describe.each(stores)('%s store: chunks with and without their record count', (_name, open) => {
  it('stores log records and spans of both, each read back whole, with its service', async () => {
    const b = await open();
    await b.start();
    try {
      const logs = (tag: string): LogRow[] => [0, 1, 2, 3].map((i) => makeLog({ serviceName: `${tag}-svc-${i % 2}`, body: { stringValue: `${tag}-${i}` } }));
      const [oldLogs, newLogs] = [logs('old'), logs('new')];
      await write(b, 'logs', encoder.encodeLogs(oldLogs).map((c) => uncounted(c.data)), 'old');
      await write(b, 'logs', encoder.encodeLogs(newLogs).map((c) => c.data), 'new');
      for (const rows of [oldLogs, newLogs])
        for (const service of [rows[0]!.serviceName, rows[1]!.serviceName]) {
          const found = await b.searchLogs(DEFAULT_TENANT, { service, limit: 10 });
          const bodies = found.map((l) => (l.body as { stringValue: string }).stringValue).sort();
          expect(bodies).toEqual(rows.filter((r) => r.serviceName === service).map((r) => (r.body as { stringValue: string }).stringValue));
        }

      const [oldTrace, newTrace]: SpanRow[][] = [makeTrace(5), makeTrace(4)];
      await write(b, 'traces', encoder.encodeSpans(oldTrace).map((c) => uncounted(c.data)), 'old-spans');
      await write(b, 'traces', encoder.encodeSpans(newTrace).map((c) => c.data), 'new-spans');
      for (const trace of [oldTrace, newTrace]) {
        const stored = await b.getTrace(DEFAULT_TENANT, trace[0]!.traceId);
        expect(stored.map((s) => [s.spanId, s.name, s.serviceName]).sort()).toEqual(trace.map((s) => [s.spanId, s.name, s.serviceName]).sort());
      }
    } finally {
      await b.shutdown();
    }
  });
});

describe.each(stores)('%s store: a traces chunk whose record count is wrong, or which is cut short', (_name, open) => {
  it('is refused as another format, whether it says more records than it holds or fewer, or its last span is cut', async () => {
    const b = await open();
    await b.start();
    try {
      const [c] = encoder.encodeSpans(makeTrace(3));
      expect(chunkRecordCount(c!.data)).toBe(3);
      for (const said of [4, 2]) {
        const wrong = c!.data.slice();
        wrong[1] = said;
        const r = await tryWrite(b, 'traces', [wrong], `wrong-${said}`);
        expect(r.kind).toBe('permanent');
        expect(r.kind === 'permanent' && r.error.message).toMatch(new RegExp(`says it holds ${said} records holds 3`));
      }
      // Cut inside its last span: refused before that span is kept (the count alone would pass).
      const other = makeTrace(3);
      const [whole] = encoder.encodeSpans(other);
      const cut = whole!.data.slice(0, whole!.data.length - 5);
      const r = await tryWrite(b, 'traces', [cut], 'cut');
      expect(r.kind === 'permanent' && r.error.message).toMatch(/runs 5 bytes past the chunk's end/);
      const stored = await b.getTrace(DEFAULT_TENANT, other[0]!.traceId);
      expect(stored.map((x) => x.spanId)).not.toContain(other[2]!.spanId);
    } finally {
      await b.shutdown();
    }
  });
});

describe('memory store: a logs chunk whose record count is wrong', () => {
  // A counted logs chunk is kept by its count, unread (memory/logs.ts), so a wrong count shows
  // only when a read first reaches it. SQLite walks it on write and refuses it (as traces above).
  const bodiesOf = (rows: LogRow[]): string[] => rows.map((l) => (l.body as { stringValue: string }).stringValue).sort();

  it.each([
    [4, 3, 1],
    [2, 2, 1],
  ])('says %i of 3: reads return %i of its records and the good batches whole, count %i lost, log it once', async (said, kept, lost) => {
    const log = capturedLogger();
    const metrics = createMetrics();
    const b = createMemoryBackend(memoryOptions(loadConfig({ flags: { 'storage.backend': 'memory' } })), { logger: log.logger, metrics });
    await b.start();
    try {
      const batch = (tag: string): LogRow[] => [0, 1, 2].map((i) => makeLog({ serviceName: 'svc', body: { stringValue: `${tag}-${i}` } }));
      const [before, bad, after] = [batch('before'), batch('bad'), batch('after')];
      const [c] = encoder.encodeLogs(bad);
      const wrong = c!.data.slice();
      wrong[1] = said;
      await write(b, 'logs', encoder.encodeLogs(before).map((x) => x.data), 'before');
      await write(b, 'logs', [wrong], 'bad');
      await write(b, 'logs', encoder.encodeLogs(after).map((x) => x.data), 'after');

      const good = [...bodiesOf(before), ...bodiesOf(after)].sort();
      for (let read = 0; read < 2; read++) {
        const found = bodiesOf(await b.searchLogs(DEFAULT_TENANT, { service: 'svc', limit: 100 }));
        expect(found.filter((x) => !x.startsWith('bad'))).toEqual(good);
        expect(found.filter((x) => x.startsWith('bad'))).toEqual(bodiesOf(bad).slice(0, kept));
      }
      const scanned = await b.scanLogs(DEFAULT_TENANT, { limit: 100 });
      expect(scanned.rows).toHaveLength(6 + kept);
      expect(scanned.done).toBe(true);
      expect((await b.stats!()).signals.find((s) => s.signal === 'logs')).toMatchObject({ rows: 6 + said });

      const dropped = (await metrics.droppedRows.get()).values.filter((v) => v.labels.reason === 'unreadable' && v.labels.signal === 'logs');
      expect(dropped.reduce((n, v) => n + v.value, 0)).toBe(lost);
      const lines = log.lines().filter((l) => /malformed/.test(l.msg));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ batchId: 'bad', records: said, lost, err: expect.stringMatching(new RegExp(`says it holds ${said} records holds 3`)) });
    } finally {
      await b.shutdown();
    }
  });

  it('is refused as another format by SQLite, which walks it on write', async () => {
    const b = await stores[1]![1]();
    await b.start();
    try {
      const [c] = encoder.encodeLogs([0, 1, 2].map((i) => makeLog({ body: { stringValue: `r${i}` } })));
      const wrong = c!.data.slice();
      wrong[1] = 4;
      const r = await tryWrite(b, 'logs', [wrong], 'wrong');
      expect(r.kind === 'permanent' && r.error.message).toMatch(/says it holds 4 records holds 3/);
    } finally {
      await b.shutdown();
    }
  });
});

describe('chunk record count', () => {
  it('is what the encoder wrote, and a chunk whose records disagree with it is refused as another format', () => {
    const rows = [0, 1, 2].map((i) => makeLog({ body: { stringValue: `r${i}` } }));
    const [c] = encoder.encodeLogs(rows);
    expect(chunkRecordCount(c!.data)).toBe(3);
    expect(chunkRecordCount(uncounted(c!.data))).toBe(-1);
    const wrong = c!.data.slice();
    wrong[1] = 4;
    expect(() => readLogChunk(wrong, () => {})).toThrow(/says it holds 4 records holds 3/);
    // Cut inside its last record: the count still matches, the record's length does not.
    expect(() => readLogChunk(c!.data.subarray(0, c!.data.length - 5), () => {})).toThrow(/the record at byte \d+ runs 5 bytes past the chunk's end/);
    // Cut anywhere inside its group record (the first record, after the head): a format error, never another kind.
    let groupEnd = -1;
    readLogChunk(c!.data, (_g, _b, record) => void (groupEnd < 0 && (groupEnd = record)));
    expect(groupEnd).toBeGreaterThan(CHUNK_HEAD_BYTES + 9);
    for (let end = CHUNK_HEAD_BYTES + 1; end < groupEnd; end++) expect(() => readLogChunk(c!.data.subarray(0, end), () => {}), `cut at ${end}`).toThrow(ChunkFormatError);
  });
});

describe('a damaged chunk', () => {
  // What a torn or corrupted chunk can look like: cut anywhere, a byte overwritten, or a u32
  // (a length, a count) overwritten anywhere. The reader walks it or refuses it as another
  // format, never with another error, and never loops; the memory store answers success or
  // permanent, never throws to the writer.
  const spans = encoder.encodeSpans([...makeTrace(3), ...makeTrace(2, { serviceName: 'other' })]).map((c) => c.data);
  const logs = encoder.encodeLogs([0, 1, 2, 3].map((i) => makeLog({ serviceName: `svc-${i % 2}`, body: { stringValue: `r${i}` } }))).map((c) => c.data);
  const chunks: [Signal, Uint8Array][] = [...spans.map((c): [Signal, Uint8Array] => ['traces', c]), ...spans.map((c): [Signal, Uint8Array] => ['traces', uncounted(c)]), ...logs.map((c): [Signal, Uint8Array] => ['logs', c]), ...logs.map((c): [Signal, Uint8Array] => ['logs', uncounted(c)])];
  const damage = fc.tuple(
    fc.nat(chunks.length - 1),
    fc.oneof(
      fc.record({ kind: fc.constant('cut' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({ kind: fc.constant('byte' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('u32' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), value: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.nat(), fc.constant(0xffffffff)) }),
    ),
  );
  const damaged = (c: Uint8Array, d: { kind: 'cut' | 'byte' | 'u32'; at: number; value?: number }): Uint8Array => {
    const at = Math.min(c.length - 1, Math.floor(d.at * c.length));
    if (d.kind === 'cut') return c.slice(0, at);
    const out = Buffer.from(c);
    if (d.kind === 'byte') out[at] = d.value!;
    else if (at + 4 <= out.length) out.writeUInt32LE(d.value! >>> 0, at);
    return new Uint8Array(out);
  };

  it('is walked or refused as another format, by the reader and by the memory store', async () => {
    const b = createMemoryBackend(memoryOptions(loadConfig({ flags: { 'storage.backend': 'memory' } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await b.start();
    let n = 0;
    try {
      await fc.assert(
        fc.asyncProperty(damage, async ([i, d]) => {
          const [signal, c] = chunks[i]!;
          const bad = damaged(c, d);
          try {
            (signal === 'traces' ? readSpanChunk : readLogChunk)(bad, () => {});
          } catch (err) {
            expect(err).toBeInstanceOf(ChunkFormatError);
          }
          const r = await tryWrite(b, signal, [bad], `damaged-${n++}`);
          expect(['success', 'permanent']).toContain(r.kind);
        }),
        { numRuns: 500, seed: 20261204 },
      );
    } finally {
      await b.shutdown();
    }
  });
});
