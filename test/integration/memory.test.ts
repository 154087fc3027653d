// The memory store's own behaviour beside the contract: eviction by age (storage.memory.maxAgeMs),
// by count and by bytes, resends into large traces, and a chunk of a format it does not keep.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { createMemoryBackend } from '../../src/storage/memory/index.ts';
import { memoryOptions } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { makeLog, makeSpan, makeTrace, writeLogs, writeSpans, writeSpansAs } from '../helpers/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { loadRequestEncoder } from '../../src/pipeline/transcode/registry.ts';
import { TraceRequest } from '../helpers/otlp-build.ts';

/** A started memory store with this storage.memory.maxBytes and the other bounds as configured by default. */
async function storeOfBytes(maxBytes: number): Promise<StorageBackend> {
  const b = createMemoryBackend(memoryOptions(loadConfig({ flags: { 'storage.backend': 'memory', 'storage.memory.maxBytes': String(maxBytes) } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await b.start();
  return b;
}

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

  it('ages rows on the monotonic clock: a wall clock set a day forward evicts nothing', async () => {
    const b = createMemoryBackend(memoryOptions(loadConfig({ flags: { 'storage.backend': 'memory', 'storage.memory.maxAgeMs': '60000' } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await b.start();
    const spans = makeTrace(3);
    await writeSpans(b, spans);
    const wall = vi.spyOn(Date, 'now').mockReturnValue(Date.now() + 86_400_000);
    try {
      await writeSpans(b, makeTrace(1)); // a write evicts what has aged out
      expect(await b.getTrace(DEFAULT_TENANT, spans[0]!.traceId)).toHaveLength(3);
    } finally {
      wall.mockRestore();
      await b.shutdown();
    }
  });

  it('stores anew what a client sends again after its first copy aged out, though no timer has evicted that copy yet', async () => {
    // The timer runs every minute at most: for up to a minute a row past maxAgeMs is still there.
    // A resend then (a client's retry queue, a collector replaying after an outage) must not be
    // taken for a copy of it and dropped, only for the old copy to be evicted by the same write.
    let clock = performance.now();
    const now = vi.spyOn(performance, 'now').mockImplementation(() => clock);
    const b = createMemoryBackend(memoryOptions(loadConfig({ flags: { 'storage.backend': 'memory', 'storage.memory.maxAgeMs': '120000' } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await b.start();
    try {
      const spans = makeTrace(3);
      const log = makeLog();
      await writeSpans(b, spans);
      await writeLogs(b, [log], 'log-batch');
      clock += 121_000; // aged out; the next timer run is a minute away
      await writeSpans(b, spans);
      await writeLogs(b, [log], 'log-batch'); // the same batch again (a write-ahead log's replay)
      expect(await b.getTrace(DEFAULT_TENANT, spans[0]!.traceId)).toHaveLength(3);
      expect(await b.searchLogs(DEFAULT_TENANT, { service: log.serviceName, limit: 10 })).toHaveLength(1);
      clock += 60_000; // the resent copies are a minute old: kept
      await writeSpans(b, makeTrace(1));
      expect(await b.getTrace(DEFAULT_TENANT, spans[0]!.traceId)).toHaveLength(3);
    } finally {
      now.mockRestore();
      await b.shutdown();
    }
  });

  it('rejects a negative age at start-up naming the key', () => {
    expect(() => loadConfig({ flags: { 'storage.memory.maxAgeMs': '-1' } })).toThrow(/storage\.memory\.maxAgeMs = "-1"/);
  });
});

describe('memory store indexes', () => {
  const open = async (flags: Record<string, string> = {}) => {
    const metrics = createMetrics();
    const b = createMemoryBackend(memoryOptions(loadConfig({ flags: { 'storage.backend': 'memory', ...flags } })), { logger: pino({ level: 'silent' }), metrics });
    await b.start();
    return { b, metrics };
  };

  it('keeps one copy of each span when a 100-span trace is sent again, whole and in parts', async () => {
    const { b } = await open();
    try {
      const trace = makeTrace(100);
      await writeSpans(b, trace);
      await writeSpans(b, trace.slice(40, 90));
      await writeSpans(b, [...trace.slice(0, 5), makeSpan({ traceId: trace[0]!.traceId, name: 'late' })]);
      const stored = await b.getTrace(DEFAULT_TENANT, trace[0]!.traceId);
      expect(stored).toHaveLength(101);
      expect(new Set(stored.map((s) => s.spanId)).size).toBe(101);
    } finally {
      await b.shutdown();
    }
  });

  it('counts each operation of a group apart: same name under other kinds, look-alike names, interleaved traces; listings follow eviction', async () => {
    const { b } = await open({ 'storage.memory.maxSpans': '7' });
    try {
      const base = makeSpan({ serviceName: 'ops-svc' });
      const [t1, t2] = [makeSpan().traceId, makeSpan().traceId];
      // One resource and scope for all: one group, where operations are recognized by their name's bytes.
      const span = (traceId: string, name: string, kind: number) => makeSpan({ ...base, traceId, spanId: makeSpan().spanId, name, kind });
      const first = [span(t1, 'abcde', 2), span(t2, 'axcde', 2), span(t1, 'abcde', 3), span(t2, 'abcde', 2), span(t1, 'abcde', 66), span(t1, 'axcde', 2), span(t2, 'GET /', 1)];
      await writeSpans(b, first);
      const ops = async () => (await b.getOperations(DEFAULT_TENANT, { service: 'ops-svc' })).map((o) => `${o.name}/${o.kind}`).sort();
      expect(await ops()).toEqual(['GET //1', 'abcde/2', 'abcde/3', 'abcde/66', 'axcde/2']);
      expect((await b.getTrace(DEFAULT_TENANT, t1)).map((s) => s.name).sort()).toEqual(['abcde', 'abcde', 'abcde', 'axcde']);
      expect((await b.getTrace(DEFAULT_TENANT, t2)).map((s) => s.name).sort()).toEqual(['GET /', 'abcde', 'axcde']);
      // Four more evict the first four: abcde/3 (its only span) goes; abcde/2 stays by a new span, the others by the first write's last three.
      await writeSpans(b, [span(t1, 'new', 2), span(t1, 'new', 2), span(t2, 'abcde', 2), span(t2, 'new', 2)]);
      expect(await ops()).toEqual(['GET //1', 'abcde/2', 'abcde/66', 'axcde/2', 'new/2']);
      // Four more again: everything from the first write is gone, so are its operations.
      await writeSpans(b, [span(t1, 'last', 2), span(t1, 'last', 2), span(t2, 'last', 2), span(t2, 'last', 2)]);
      expect(await ops()).toEqual(['abcde/2', 'last/2', 'new/2']);
    } finally {
      await b.shutdown();
    }
  });

  it('lists an operation again when a span of it comes after all of its spans were evicted, and each tenant only its own', async () => {
    // Operations met lately are recognized across writes by their name's bytes: one whose spans
    // were all evicted, or another tenant's of the same service and name, must not be counted into.
    const { b } = await open({ 'storage.memory.maxSpans': '3' });
    try {
      const base = makeSpan({ serviceName: 'cached-svc' });
      const span = (name: string) => makeSpan({ ...base, traceId: makeSpan().traceId, spanId: makeSpan().spanId, name, kind: 2 });
      const ops = async (tenant: string) => (await b.getOperations(tenant, { service: 'cached-svc' })).map((o) => o.name).sort();
      // maxSpans counts every tenant's spans: each write below evicts the oldest past three.
      await writeSpans(b, [span('x')]);
      await writeSpans(b, [span('y'), span('y'), span('y')]);
      expect(await ops(DEFAULT_TENANT)).toEqual(['y']);
      await writeSpans(b, [span('x')]);
      expect(await ops(DEFAULT_TENANT)).toEqual(['x', 'y']);
      await writeSpansAs(b, 'other', [span('z')]);
      expect(await ops('other')).toEqual(['z']);
      await writeSpans(b, [span('z')]);
      expect(await ops(DEFAULT_TENANT)).toEqual(['x', 'z']);
      expect(await ops('other')).toEqual(['z']);
      await writeSpansAs(b, 'other', [span('x')]);
      expect(await ops('other')).toEqual(['x', 'z']);
      expect(await ops(DEFAULT_TENANT)).toEqual(['z']);
    } finally {
      await b.shutdown();
    }
  });

  it('keeps the operation of each of 300 services with the same name apart, across two writes', async () => {
    // 300 services' spans of one name: some of them share a slot of the store's operation lookup.
    const { b } = await open();
    try {
      const services = Array.from({ length: 300 }, (_, i) => `svc-${i}`);
      const spans = () => services.map((serviceName) => makeSpan({ serviceName, name: 'GET /', kind: 2 }));
      await writeSpans(b, spans());
      await writeSpans(b, spans());
      expect(await b.getServices(DEFAULT_TENANT)).toEqual([...services].sort());
      for (const service of services) expect(await b.getOperations(DEFAULT_TENANT, { service })).toEqual([{ name: 'GET /', kind: 2 }]);
    } finally {
      await b.shutdown();
    }
  });

  it('keeps 4,950 operations of one service apart whose names differ in one byte, through writes that evict the first', async () => {
    // More names than the store's operation lookup has slots, so some share one. Names come in
    // groups of 90 that differ in their last byte only (at lengths 4 to 7: the last byte lies in a
    // whole word or in the bytes after the last word) or in their first byte only, so that names
    // sharing a slot and differing in that byte alone are sure to be met. A span counted into
    // another name's operation leaves its own name unlisted, or listed after its last span is evicted.
    const chars = Array.from({ length: 90 }, (_, i) => String.fromCharCode(0x21 + i));
    const names: string[] = [];
    for (let g = 0; g < 50; g++) for (const c of chars) names.push(`g${g.toString(36).padStart(2, '0')}${'-'.repeat(g % 4)}${c}`);
    for (let g = 0; g < 5; g++) for (const c of chars) names.push(`${c}f${g}${'-'.repeat(g)}`);
    expect(new Set(names).size).toBe(4950);
    const { b } = await open({ 'storage.memory.maxSpans': String(names.length) });
    try {
      const base = makeSpan({ serviceName: 'many-ops' });
      const write = () => writeSpans(b, names.map((name) => makeSpan({ ...base, traceId: makeSpan().traceId, spanId: makeSpan().spanId, name, kind: 2 })));
      const listed = async () => (await b.getOperations(DEFAULT_TENANT, { service: 'many-ops' })).map((o) => o.name).sort();
      await write();
      expect(await listed()).toEqual([...names].sort());
      // The second write evicts the first's spans one by one as its own are stored: every name keeps exactly its new span.
      await write();
      expect(await listed()).toEqual([...names].sort());
      // One more span evicts the oldest, the first name's: that name alone leaves the listing.
      await writeSpans(b, [makeSpan({ ...base, traceId: makeSpan().traceId, spanId: makeSpan().spanId, name: 'one-more', kind: 2 })]);
      expect(await listed()).toEqual([...names.slice(1), 'one-more'].sort());
    } finally {
      await b.shutdown();
    }
  });

  it('keeps the operations of two services apart when their groups alternate in one write, with the same names', async () => {
    const { b } = await open({ 'storage.memory.maxSpans': '4' });
    try {
      const [a, c] = [makeSpan({ serviceName: 'svc-a' }), makeSpan({ serviceName: 'svc-c' })];
      const a2 = { ...a, scope: { ...a.scope, name: 'second-scope' } };
      const span = (base: typeof a, name: string) => makeSpan({ ...base, spanId: makeSpan().spanId, name, kind: 2 });
      await writeSpans(b, [span(a, 'op'), span(c, 'op'), span(a2, 'op'), span(c, 'only-c')]);
      const ops = async (service: string) => (await b.getOperations(DEFAULT_TENANT, { service })).map((o) => o.name).sort();
      expect(await ops('svc-a')).toEqual(['op']);
      expect(await ops('svc-c')).toEqual(['only-c', 'op']);
      // svc-c's first span goes: its 'op' is gone, svc-a's stays.
      await writeSpans(b, [span(a, 'op'), span(a, 'op')]);
      expect(await ops('svc-c')).toEqual(['only-c']);
      expect(await ops('svc-a')).toEqual(['op']);
    } finally {
      await b.shutdown();
    }
  });

  it('evicts the oldest spans past maxSpans, and its service and operation listings follow', async () => {
    const { b, metrics } = await open({ 'storage.memory.maxSpans': '4' });
    try {
      const old = makeTrace(3, { serviceName: 'old-svc', name: 'old-op' });
      await writeSpans(b, old.map((s) => ({ ...s, resource: { ...s.resource, attributes: [{ key: 'service.name', value: { stringValue: 'old-svc' } }] } })));
      const young = makeTrace(4);
      await writeSpans(b, young);
      expect(await b.getTrace(DEFAULT_TENANT, old[0]!.traceId)).toEqual([]);
      expect(await b.getTrace(DEFAULT_TENANT, young[0]!.traceId)).toHaveLength(4);
      expect(await b.getServices(DEFAULT_TENANT)).toEqual([young[0]!.serviceName]);
      expect((await b.getOperations(DEFAULT_TENANT, { service: young[0]!.serviceName })).map((o) => o.name).sort()).toEqual([...new Set(young.map((s) => s.name))].sort());
      expect(await b.getOperations(DEFAULT_TENANT, { service: 'old-svc' })).toEqual([]);
      expect((await metrics.evictedRows.get()).values.find((v) => v.labels['signal'] === 'traces')?.value).toBe(3);
    } finally {
      await b.shutdown();
    }
  });

  it('keeps within maxSpans when a write stores spans before a malformed one and fails', async () => {
    const { b, metrics } = await open({ 'storage.memory.maxSpans': '4' });
    try {
      await writeSpans(b, makeTrace(3));
      // Cut inside its last span: the two before it are stored, and the write fails.
      const [whole] = createEncoder({}).encodeSpans(makeTrace(3));
      const cut = whole!.data.slice(0, whole!.data.length - 5);
      const r = await b.write({ signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows: 3, bytes: cut.byteLength, chunks: [cut], batchId: 'cut' });
      expect(r.kind).toBe('permanent');
      expect((await b.stats!()).signals.find((s) => s.signal === 'traces')?.rows).toBe(4);
      expect((await metrics.evictedRows.get()).values.find((v) => v.labels['signal'] === 'traces')?.value).toBe(1);
    } finally {
      await b.shutdown();
    }
  });

  it('refuses bytes of another format as a permanent failure (a write-ahead log of another version), storing nothing', async () => {
    const { b } = await open();
    try {
      const line = new TextEncoder().encode('["0102","03"]\t{}\n');
      const r = await b.write({ signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows: 1, bytes: line.byteLength, chunks: [line], batchId: 'x' });
      expect(r.kind).toBe('permanent');
      expect(await b.searchTraces(DEFAULT_TENANT, { limit: 10 })).toEqual([]);
    } finally {
      await b.shutdown();
    }
  });
});

describe('memory store operations of many kinds', () => {
  /** An OTLP/protobuf request of n one-span traces numbered from `from`, span i named name(i) with kind kind(i). */
  function request(from: number, n: number, name: (i: number) => string, kind: (i: number) => number): Uint8Array {
    const spans = Array.from({ length: n }, (_, k) => {
      const i = from + k;
      const traceId = Buffer.alloc(16);
      traceId.writeUInt32LE(i + 1, 0);
      traceId.writeUInt32LE((0x9e3779b1 ^ i) >>> 0, 8);
      const spanId = Buffer.alloc(8);
      spanId.writeUInt32LE(i + 1, 0);
      return { traceId, spanId, name: name(i), kind: kind(i), startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000001000000' };
    });
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'kinds' } }] };
    return TraceRequest.encode(TraceRequest.fromObject({ resourceSpans: [{ resource, scopeSpans: [{ scope: { name: 's' }, spans }] }] })).finish();
  }

  it('stores and evicts 50,000 kinds of one span name about as fast as 50,000 names of one kind', async () => {
    // A span's kind is any int32 a client sends. Kinds of one name were kept in a list searched
    // for each new one and spliced out on eviction: one request of 50,000 spans of one name, each
    // of a kind of its own, held the main thread 15 s (against 0.4 s for 50,000 names).
    const N = 50_000;
    const run = async (name: (i: number) => string, kind: (i: number) => number) => {
      const b = createMemoryBackend({ maxSpans: N, maxLogs: 10, maxBytes: 1 << 30, maxAgeMs: 0 }, { logger: pino({ level: 'silent' }), metrics: createMetrics() });
      const encoder = await loadRequestEncoder(b.encoder, { maxNestingDepth: 100 });
      const crafted = encoder.encode('traces', 'protobuf', request(0, N, name, kind));
      const fresh = encoder.encode('traces', 'protobuf', request(N, N, (i) => `fresh-${i}`, () => 2));
      const t = performance.now();
      for (const [batchId, out] of [['crafted', crafted], ['fresh', fresh]] as const) {
        expect((await b.write({ signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows: out.accepted, bytes: 0, chunks: out.chunks.map((c) => c.data), batchId })).kind).toBe('success');
        if (batchId === 'crafted') expect(await b.getOperations(DEFAULT_TENANT, { service: 'kinds', kind: 7 })).toEqual(name(0) === 'one' ? [{ name: 'one', kind: 7 }] : []);
      }
      const ms = performance.now() - t;
      // The second write evicted every span of the first, and with them its operations.
      expect(await b.getOperations(DEFAULT_TENANT, { service: 'kinds', kind: 7 })).toEqual([]);
      expect(await b.getOperations(DEFAULT_TENANT, { service: 'kinds' })).toHaveLength(N);
      await b.shutdown();
      return ms;
    };
    const names = await run((i) => `name-${i}`, () => 2);
    const kinds = await run(() => 'one', (i) => i);
    expect(kinds, `kinds ${kinds.toFixed(0)} ms, names ${names.toFixed(0)} ms`).toBeLessThan(Math.max(5_000, 10 * names));
  }, 120_000);
});

describe('memory store memory', () => {
  it('gives an evicted chunk its memory back at once, not at a garbage collection, and keeps reading what it holds', async () => {
    const maxBytes = 4 << 20;
    const b = await storeOfBytes(maxBytes);
    try {
      const big = 'x'.repeat(2000);
      const before = process.memoryUsage().arrayBuffers;
      const traces: string[] = [];
      // 40 MiB written through a 4 MiB store: below V8's 64 MiB trigger, so without the release
      // the dead chunks would all still be counted here.
      for (let i = 0; i < 40; i++) {
        const spans = makeTrace(400, { attributes: [{ key: 'blob', value: { stringValue: big } }] });
        traces.push(spans[0]!.traceId);
        await writeSpans(b, spans);
      }
      const grown = process.memoryUsage().arrayBuffers - before;
      expect(grown).toBeLessThan(2 * maxBytes);
      expect(await b.getTrace(DEFAULT_TENANT, traces[0]!)).toEqual([]);
      const last = await b.getTrace(DEFAULT_TENANT, traces[39]!);
      expect(last).toHaveLength(400);
      expect(last.every((s) => s.attributes.some((a) => a.key === 'blob' && 'stringValue' in a.value && a.value.stringValue === big))).toBe(true);
    } finally {
      await b.shutdown();
    }
  });
});

// A real gc() for measuring what stays behind, not what is merely garbage not yet collected.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heldBytes = (): number => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

describe('memory store memory, span names', () => {
  it('keeps within maxBytes when every span has its own long name: evicted operations leave nothing behind', async () => {
    const maxBytes = 4 << 20;
    const b = await storeOfBytes(maxBytes);
    try {
      const service = 'svc-long-names';
      const before = heldBytes();
      // 1,200 operations named by 64 KiB each (SQL statements or URLs as span names): 75 MiB of
      // names through a 4 MiB store. What stays is the store's bytes, the chunk its oldest rows
      // keep alive, and the names of the operations kept, as strings for the listings (~4 MiB):
      // ~10.5 MiB measured, against ~140 MiB while evicted operations kept their names cached.
      const name = (i: number, j: number): string => `${i}-${j}-`.padEnd(64 << 10, 'q');
      for (let i = 0; i < 120; i++) await writeSpans(b, Array.from({ length: 10 }, (_, j) => makeSpan({ serviceName: service, name: name(i, j) })));
      const grown = heldBytes() - before;
      expect(grown, `held ${(grown / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(4 * maxBytes);
      // The newest operations are listed, the oldest are not.
      const ops = (await b.getOperations(DEFAULT_TENANT, { service })).map((o) => o.name);
      expect(ops.length).toBeGreaterThan(0);
      expect(ops.length).toBeLessThan(120 * 10);
      expect(ops).toContain(name(119, 9));
      expect(ops).not.toContain(name(0, 0));
    } finally {
      await b.shutdown();
    }
  });
});

describe('memory store memory, resends', () => {
  it('counts a chunk whole against maxBytes when only a few of its spans are new, the rest resent', async () => {
    const maxBytes = 4 << 20;
    const b = await storeOfBytes(maxBytes);
    try {
      const big = 'x'.repeat(2000);
      const resent = makeTrace(400, { attributes: [{ key: 'blob', value: { stringValue: big } }] });
      await writeSpans(b, resent);
      const before = process.memoryUsage().arrayBuffers;
      const fresh: string[] = [];
      // Each batch: 400 spans already stored (a client's retry) and one new span, in one ~0.8 MiB
      // chunk that the new span keeps alive. 40 of them are 32 MiB, below V8's 64 MiB trigger.
      for (let i = 0; i < 40; i++) {
        const span = makeSpan({ attributes: [{ key: 'blob', value: { stringValue: big } }] });
        fresh.push(span.traceId);
        await writeSpans(b, [...resent, span]);
      }
      const grown = process.memoryUsage().arrayBuffers - before;
      expect(grown).toBeLessThan(2 * maxBytes);
      expect(await b.getTrace(DEFAULT_TENANT, fresh[0]!)).toEqual([]);
      expect(await b.getTrace(DEFAULT_TENANT, fresh[39]!)).toHaveLength(1);
    } finally {
      await b.shutdown();
    }
  });
});

describe('memory store log records', () => {
  it('evicts the oldest records past maxLogs one at a time across writes; searches, scans, counts and batch ids follow', async () => {
    const metrics = createMetrics();
    const b = createMemoryBackend(memoryOptions(loadConfig({ flags: { 'storage.backend': 'memory', 'storage.memory.maxLogs': '5' } })), { logger: pino({ level: 'silent' }), metrics });
    await b.start();
    const body = (l: { body: unknown }) => (l.body as { stringValue: string }).stringValue;
    const log = (service: string, text: string) => makeLog({ serviceName: service, body: { stringValue: text } });
    const service = async (s: string) => (await b.searchLogs(DEFAULT_TENANT, { service: s, limit: 10 })).map(body).sort();
    const evicted = async () => (await metrics.evictedRows.get()).values.find((v) => v.labels['signal'] === 'logs')?.value ?? 0;
    const scanned = async () => {
      const out: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await b.scanLogs(DEFAULT_TENANT, { limit: 2, ...(after === undefined ? {} : { after }) });
        out.push(...page.rows.map(body));
        after = page.next;
        if (page.done) return out;
      }
    };
    try {
      // One write, three groups (two services alternating): each record keeps its own service.
      const a = [log('svc-a', 'a0'), log('svc-b', 'a1'), log('svc-a', 'a2')];
      await writeLogs(b, a, 'batch-a');
      expect(await service('svc-a')).toEqual(['a0', 'a2']);
      expect(await service('svc-b')).toEqual(['a1']);
      // Four more: the two oldest go, the third of the first write stays.
      await writeLogs(b, [0, 1, 2, 3].map((i) => log('svc-c', `b${i}`)), 'batch-b');
      expect(await evicted()).toBe(2);
      expect(await service('svc-a')).toEqual(['a2']);
      expect(await service('svc-b')).toEqual([]);
      expect(await scanned()).toEqual(['a2', 'b0', 'b1', 'b2', 'b3']);
      expect((await b.stats!()).signals.find((s) => s.signal === 'logs')?.rows).toBe(5);
      // The first write again: a record of it is still kept, so the batch is known and nothing is added.
      await writeLogs(b, a, 'batch-a');
      expect(await scanned()).toEqual(['a2', 'b0', 'b1', 'b2', 'b3']);
      // Five more push out the rest of both writes; the first batch is then forgotten and taken again.
      await writeLogs(b, [0, 1, 2, 3, 4].map((i) => log('svc-d', `c${i}`)), 'batch-c');
      expect(await evicted()).toBe(7);
      expect(await scanned()).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
      await writeLogs(b, a, 'batch-a');
      expect(await scanned()).toEqual(['c3', 'c4', 'a0', 'a1', 'a2']);
      expect(await service('svc-a')).toEqual(['a0', 'a2']);
    } finally {
      await b.shutdown();
    }
  });

  it('evicts log records past maxLogs before it evicts spans for bytes: spans that fit once they are gone stay', async () => {
    const deps = () => ({ logger: pino({ level: 'silent' }), metrics: createMetrics() });
    const unbounded = { maxSpans: 1e6, maxLogs: 1e6, maxBytes: 1e12, maxAgeMs: 0 };
    const stored = async (s: StorageBackend, signal: string) => (await s.stats!()).signals.find((x) => x.signal === signal)!;
    const spans = makeTrace(60);
    const logs = Array.from({ length: 40 }, (_, i) => makeLog({ serviceName: 'svc', body: { stringValue: `r${i}` } }));
    // What the spans and the log records are charged, from a store without a bound.
    const probe = createMemoryBackend(unbounded, deps());
    await writeSpans(probe, spans);
    await writeLogs(probe, logs, 'logs');
    const spanBytes = (await stored(probe, 'traces')).bytes!;
    const logBytes = (await stored(probe, 'logs')).bytes!;
    await probe.shutdown();
    // Room for every span and 10 log records' worth, not for all 40 (their bytes stay below the spans').
    expect(logBytes).toBeLessThan(spanBytes);
    const maxBytes = spanBytes + Math.ceil(logBytes / 4);
    const metrics = createMetrics();
    const b = createMemoryBackend({ ...unbounded, maxLogs: 10, maxBytes }, { logger: pino({ level: 'silent' }), metrics });
    await b.start();
    try {
      await writeSpans(b, spans);
      await writeLogs(b, logs, 'logs');
      expect((await stored(b, 'traces')).rows).toBe(60);
      expect(await b.getTrace(DEFAULT_TENANT, spans[0]!.traceId)).toHaveLength(60);
      expect((await stored(b, 'logs')).rows).toBe(10);
      const evicted = (await metrics.evictedRows.get()).values;
      expect(evicted.find((v) => v.labels['signal'] === 'traces')?.value ?? 0).toBe(0);
      expect(evicted.find((v) => v.labels['signal'] === 'logs')?.value).toBe(30);
    } finally {
      await b.shutdown();
    }
  });

  it('evicts the oldest records past maxBytes and no more than the bound asks, part of a chunk or several at once', async () => {
    const deps = () => ({ logger: pino({ level: 'silent' }), metrics: createMetrics() });
    const unbounded = { maxSpans: 1e6, maxLogs: 1e6, maxBytes: 1e12, maxAgeMs: 0 };
    const body = (l: { body: unknown }) => (l.body as { stringValue: string }).stringValue;
    const logBytes = async (s: StorageBackend): Promise<number> => (await s.stats!()).signals.find((x) => x.signal === 'logs')!.bytes ?? 0;
    // Writes of 4, 1, 9, 2, 4, 12 and 3 records, each its own chunk.
    const batches = [4, 1, 9, 2, 4, 12, 3].map((n, i) => Array.from({ length: n }, (_, j) => makeLog({ serviceName: 'svc', body: { stringValue: `r${i}-${j}` } })));
    // What each record of each write is charged, from a store without a bound.
    const probe = createMemoryBackend(unbounded, deps());
    const charges: number[] = [];
    let before = 0;
    for (const [i, batch] of batches.entries()) {
      await writeLogs(probe, batch, `w${i}`);
      const bytes = await logBytes(probe);
      charges.push((bytes - before) / batch.length);
      before = bytes;
    }
    await probe.shutdown();
    const maxBytes = Math.floor(charges[0]! * 10.5);
    const metrics = createMetrics();
    const b = createMemoryBackend({ ...unbounded, maxBytes }, { logger: pino({ level: 'silent' }), metrics });
    await b.start();
    try {
      const kept: { text: string; charge: number }[] = [];
      let evicted = 0;
      for (const [i, batch] of batches.entries()) {
        await writeLogs(b, batch, `w${i}`);
        kept.push(...batch.map((l) => ({ text: body(l), charge: charges[i]! })));
        while (kept.reduce((n, k) => n + k.charge, 0) > maxBytes) {
          kept.shift();
          evicted++;
        }
        const page = await b.scanLogs(DEFAULT_TENANT, { limit: 100 });
        expect(page.rows.map(body), `after write ${i}`).toEqual(kept.map((k) => k.text));
        expect(await logBytes(b)).toBe(kept.reduce((n, k) => n + k.charge, 0));
        expect((await metrics.evictedRows.get()).values.find((v) => v.labels['signal'] === 'logs')?.value ?? 0).toBe(evicted);
      }
      expect(evicted).toBeGreaterThan(20);
    } finally {
      await b.shutdown();
    }
  });
});

describe('memory store dependencies', () => {
  it('keeps service names with U+0000 whole in the dependency links, and two such pairs apart', async () => {
    const b = await storeOfBytes(64 << 20);
    try {
      // ("a\0b" calls "c") and ("a" calls "b\0c"): each link once, under its own names.
      const start = BigInt(Date.now()) * 1_000_000n;
      for (const [parent, child] of [['a\u0000b', 'c'], ['a', 'b\u0000c']] as const) {
        const root = makeSpan({ serviceName: parent, startTimeUnixNano: start });
        await writeSpans(b, [root, makeSpan({ traceId: root.traceId, parentSpanId: root.spanId, serviceName: child, startTimeUnixNano: start + 1n })]);
      }
      expect(await b.getDependencies(DEFAULT_TENANT, { startNano: start - 1n, endNano: start + 10n })).toEqual([
        { parent: 'a', child: 'b\u0000c', callCount: 1 },
        { parent: 'a\u0000b', child: 'c', callCount: 1 },
      ]);
    } finally {
      await b.shutdown();
    }
  });
});
