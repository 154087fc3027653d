// The pipeline's front door with its real parts: a piscina decode pool, the writer and the memory
// store. What a receiver would tell its client, and that the queue budget never leaks.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Ingest } from '../../src/pipeline/ingest.ts';
import { DecodePool, type PoolOptions } from '../../src/pipeline/pool.ts';
import { HAND_OVER_BYTES } from '../../src/pipeline/transcode/byte-out.ts';
import { STORE_BYTES_PER_REQUEST_BYTE } from '../../src/storage/encoders.ts';
import { Writer, type WriterOptions } from '../../src/pipeline/writer.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.ts';
import { gated, memoryBackend, type Gate } from '../helpers/backends.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { flushRecurringLogs } from '../../src/telemetry/logger.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

const writerOpts: WriterOptions = {
  maxBatchRows: 1000,
  flushIntervalMs: 5,
  maxInFlightBatches: 2,
  maxQueueBytes: 1 << 20,
  retryInitialMs: 1,
  retryMaxMs: 5,
  retryMaxElapsedMs: 0,
  writeTimeoutMs: 5000,
};

function traces(service: string, n: number, badIds = 0): Uint8Array {
  const spans = Array.from({ length: n + badIds }, (_, i) => ({
    traceId: i < n ? randomBytes(16) : Buffer.alloc(16),
    spanId: randomBytes(8),
    name: `op${i}`,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000100000000',
  }));
  return encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] });
}

/** The same spans as OTLP/JSON (hex ids, int64 as strings), attributes making each span ~1 KiB of text. */
function tracesJson(service: string, n: number): Uint8Array {
  const attributes = Array.from({ length: 16 }, (_, k) => ({ key: `attribute.${k}`, value: { stringValue: `value of attribute ${k} `.repeat(2) } }));
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    name: `op${i}`,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000100000000',
    attributes,
  }));
  const doc = { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] };
  return Buffer.from(JSON.stringify(doc));
}

interface Rig {
  ingest: Ingest;
  writer: Writer;
  pool: DecodePool;
  store: StorageBackend;
  gate: Gate;
  metrics: Metrics;
}

const rigs: Rig[] = [];
async function rig(o: { writer?: Partial<WriterOptions>; pool?: Partial<PoolOptions>; store?: Record<string, string>; logger?: pino.Logger } = {}): Promise<Rig> {
  const gate = gated(await memoryBackend(o.store));
  const metrics = createMetrics();
  const logger = o.logger ?? pino({ level: 'silent' });
  const pool = new DecodePool({ threads: 1, maxPendingTasks: 64, maxNestingDepth: 100, ...o.pool }, gate.backend.encoder);
  await pool.start();
  const writer = new Writer(gate.backend, { ...writerOpts, ...o.writer }, metrics, logger);
  const r = { ingest: new Ingest(pool, writer, metrics, logger), writer, pool, store: gate.backend, gate, metrics };
  rigs.push(r);
  return r;
}

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    r.gate.open();
    await r.writer.shutdown(2000);
    await r.pool.shutdown();
  }
});

const stored = async (store: StorageBackend, service: string) => (await store.searchTraces(TENANT, { service, limit: 1000 })).reduce((n, t) => n + t.spanCount, 0);

describe('Ingest', () => {
  it('decodes, queues and stores a request, answering with its counts (partial success for bad items)', async () => {
    const { ingest, writer, store } = await rig();
    const out = await ingest.handle({ transport: 'grpc', signal: 'traces', format: 'protobuf', tenant: TENANT, body: traces('a', 5, 2) });
    expect(out).toEqual({ kind: 'ok', accepted: 5, rejected: 2, errorMessage: expect.stringContaining('span') });
    await writer.drain();
    expect(await stored(store, 'a')).toBe(5);
    expect(writer.queueBytes).toBe(0);
  });

  it('refuses undecodable bytes as undecodable and gives the reserved room back', async () => {
    const { ingest, writer } = await rig();
    const out = await ingest.handle({ transport: 'http', signal: 'traces', format: 'protobuf', tenant: TENANT, body: Uint8Array.from([0x0a, 0xff, 0xff, 0xff]) });
    expect(out.kind).toBe('refused');
    expect(out.kind === 'refused' && out.reason).toBe('undecodable');
    expect(writer.queueBytes).toBe(0);
  });

  it('uses a reservation the caller took, and releases it when the request is refused', async () => {
    const { ingest, writer } = await rig();
    const body = traces('b', 3);
    const reservation = ingest.reserve(body.byteLength)!;
    expect(writer.queueBytes).toBe(body.byteLength);
    ingest.close();
    const out = await ingest.handle({ transport: 'http', signal: 'traces', format: 'protobuf', tenant: TENANT, body, reservation });
    expect(out.kind === 'refused' && out.reason).toBe('shutting_down');
    expect(writer.queueBytes).toBe(0);
    expect(ingest.reserve(10)).toBeUndefined();
  });

  it('refuses with queue_full while writes stall, and counts it by reason', async () => {
    const { ingest, writer, gate, metrics, store } = await rig({ writer: { maxQueueBytes: 4096 } });
    gate.close();
    const outcomes = [];
    for (let i = 0; i < 40; i++) outcomes.push(await ingest.handle({ transport: 'grpc', signal: 'traces', format: 'protobuf', tenant: TENANT, body: traces('c', 10) }));
    const ok = outcomes.filter((o) => o.kind === 'ok').length;
    expect(ok).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.kind === 'refused' && o.reason === 'queue_full').length).toBe(40 - ok);
    const text = await metrics.registry.getSingleMetricAsString('tracehouse_receiver_refused_requests_total');
    expect(text).toContain(`tracehouse_receiver_refused_requests_total{transport="grpc",reason="queue_full"} ${40 - ok}`);
    gate.open();
    await writer.drain();
    expect(await stored(store, 'c')).toBe(ok * 10);
    expect(writer.queueBytes).toBe(0);
  });
});

describe('Ingest: exports answered after their clients had gone', () => {
  it('are logged once a minute with the count of the transport and answer each line names', async () => {
    // The counter has each; the log line had the transport and answer of the last one, with the
    // count of all: two gRPC exports and then one OTLP/HTTP export read "transport: http, 2".
    const { logger, lines } = capturedLogger();
    const { ingest, metrics } = await rig({ logger });
    const taken = { kind: 'ok', accepted: 1, rejected: 0, errorMessage: '' } as const;
    ingest.unanswered('grpc', taken);
    ingest.unanswered('grpc', taken);
    ingest.unanswered('http', taken);
    ingest.unanswered('http', ingest.refuse('http', 'not_stored'));
    flushRecurringLogs();
    const logged: Record<string, number> = {};
    for (const l of lines().filter((l) => l.msg.startsWith('exports answered after'))) logged[`${String(l['transport'])} ${String(l['answer'])}`] = (logged[`${String(l['transport'])} ${String(l['answer'])}`] ?? 0) + Number(l['unanswered']);
    expect(logged).toEqual({ 'grpc taken': 2, 'http taken': 1, 'http not_stored': 1 });
    const counted = Object.fromEntries((await metrics.unansweredRequests.get()).values.filter((v) => v.value > 0).map((v) => [v.labels.transport, v.value]));
    expect(counted).toEqual({ grpc: 2, http: 2 });
  });
});

describe('Ingest: OTLP/JSON against the queue budget', () => {
  // Decoding OTLP/JSON takes 7-10 times its body (bench/json-memory.ts); the budget is to bound memory.
  it('charges a JSON request eight times its body until its rows are queued, then what they take', async () => {
    const { ingest, writer, store } = await rig();
    const body = tracesJson('j', 20);
    const pending = ingest.handle({ transport: 'http', signal: 'traces', format: 'json', tenant: TENANT, body });
    expect(writer.queueBytes).toBe(8 * body.byteLength);
    const out = await pending;
    expect(out).toEqual({ kind: 'ok', accepted: 20, rejected: 0, errorMessage: '' });
    expect(writer.queueBytes).toBeGreaterThan(0);
    expect(writer.queueBytes).toBeLessThan(body.byteLength);
    await writer.drain();
    expect(await stored(store, 'j')).toBe(20);
    expect(writer.queueBytes).toBe(0);
  });

  it('charges a protobuf request the rows expected of it in the store\'s format until they are queued, then what they take', async () => {
    const { ingest, writer } = await rig();
    const body = traces('p', 200);
    const pending = ingest.handle({ transport: 'grpc', signal: 'traces', format: 'protobuf', tenant: TENANT, body });
    expect(writer.queueBytes).toBe(Math.ceil(STORE_BYTES_PER_REQUEST_BYTE.otlp * body.byteLength));
    expect((await pending).kind).toBe('ok');
    // The memory store's chunk: the spans as they arrived, each behind an index header (these
    // spans are small, so it takes twice the body: the estimate is for spans with attributes).
    expect(writer.queueBytes).toBeGreaterThan(body.byteLength);
    expect(writer.queueBytes).not.toBe(Math.ceil(STORE_BYTES_PER_REQUEST_BYTE.otlp * body.byteLength));
    await writer.drain();
    expect(writer.queueBytes).toBe(0);
  });

  it('grows a reservation the receiver took for the body to the same charge', async () => {
    const { ingest, writer } = await rig();
    const body = tracesJson('r', 5);
    const reservation = ingest.reserve(body.byteLength)!;
    const pending = ingest.handle({ transport: 'http', signal: 'traces', format: 'json', tenant: TENANT, body, reservation });
    expect(writer.queueBytes).toBe(8 * body.byteLength);
    expect((await pending).kind).toBe('ok');
    await writer.drain();
    expect(writer.queueBytes).toBe(0);
  });

  it('refuses a JSON body whose charge does not fit beside queued rows, admits the same spans as protobuf, and the JSON once alone', async () => {
    const { ingest, writer, gate, store } = await rig();
    gate.close();
    const held = await ingest.handle({ transport: 'grpc', signal: 'traces', format: 'protobuf', tenant: TENANT, body: traces('held', 50) });
    expect(held.kind).toBe('ok');
    const queued = writer.queueBytes;
    // ~150 KiB of JSON: 1.2 MiB charged, past the 1 MiB budget with rows queued.
    const json = tracesJson('big', 150);
    expect(json.byteLength).toBeLessThan((1 << 20) - queued);
    expect(8 * json.byteLength).toBeGreaterThan((1 << 20) - queued);
    const refused = await ingest.handle({ transport: 'http', signal: 'traces', format: 'json', tenant: TENANT, body: json });
    expect(refused.kind === 'refused' && refused.reason).toBe('queue_full');
    expect(writer.queueBytes).toBe(queued);
    // The same spans as protobuf are charged the rows expected of them (a quarter over the body) and fit.
    const protobuf = await ingest.handle({ transport: 'grpc', signal: 'traces', format: 'protobuf', tenant: TENANT, body: traces('small', 150) });
    expect(protobuf.kind).toBe('ok');
    gate.open();
    await writer.drain();
    expect(writer.queueBytes).toBe(0);
    // Alone in the queue, a request is admitted whatever its charge, as reserve() does.
    const alone = await ingest.handle({ transport: 'http', signal: 'traces', format: 'json', tenant: TENANT, body: json });
    expect(alone).toEqual({ kind: 'ok', accepted: 150, rejected: 0, errorMessage: '' });
    await writer.drain();
    expect(await stored(store, 'big')).toBe(150);
    expect(writer.queueBytes).toBe(0);
  });
});

describe('DecodePool', () => {
  it('refuses with PoolBusyError past maxPendingTasks, and every admitted request still decodes', async () => {
    const { ingest, writer, store } = await rig({ pool: { threads: 1, maxPendingTasks: 1 } });
    const outs = await Promise.all(Array.from({ length: 30 }, () => ingest.handle({ transport: 'grpc', signal: 'traces', format: 'protobuf', tenant: TENANT, body: traces('d', 200) })));
    const ok = outs.filter((o) => o.kind === 'ok').length;
    const busy = outs.filter((o) => o.kind === 'refused' && o.reason === 'workers_busy').length;
    expect(ok + busy).toBe(30);
    expect(busy).toBeGreaterThan(0);
    await writer.drain();
    expect(await stored(store, 'd')).toBe(ok * 200);
    expect(writer.queueBytes).toBe(0);
  });

  it('hands requests that wait for a busy worker over in one task, each answered with its own result', async () => {
    const { pool } = await rig({ pool: { threads: 1 } });
    const before = pool.tasks;
    // Sizes 1..12, and a request that is not protobuf in the middle of them.
    const bodies = Array.from({ length: 12 }, (_, i) => (i === 5 ? new Uint8Array([0xff, 0xff, 0xff]) : traces('g', i + 1)));
    const outs = await Promise.all(bodies.map((b) => pool.decode('traces', 'protobuf', b, true)));
    outs.forEach((out, i) => {
      if (i === 5) expect(out.kind).toBe('invalid');
      else expect(out.kind === 'ok' && out.accepted).toBe(i + 1);
    });
    // Twelve requests arrived in one turn for one worker: far fewer tasks than requests.
    expect(pool.tasks - before).toBeLessThanOrEqual(2);
    // One at a time, each is a task of its own.
    const one = pool.tasks;
    for (let i = 0; i < 3; i++) expect(await pool.decode('traces', 'protobuf', traces('g', 2), true)).toMatchObject({ kind: 'ok', accepted: 2 });
    expect(pool.tasks - one).toBe(3);
  });

  it('answers requests still waiting for a worker when it shuts down', async () => {
    const pool = new DecodePool({ threads: 1, maxPendingTasks: 8, maxNestingDepth: 100 }, { name: 'otlp', options: {} });
    await pool.start();
    const settled = Promise.allSettled([pool.decode('traces', 'protobuf', traces('h', 1), true), pool.decode('traces', 'protobuf', traces('h', 1), true)]);
    await pool.shutdown();
    for (const s of await settled) expect(s.status === 'rejected' && String(s.reason)).toMatch(/shut down/);
  });

  it('transfers an owned body without copying it (also behind a gRPC frame header), and copies a slice of a larger buffer', async () => {
    const { pool } = await rig();
    const body = traces('e', 2);
    const owned = new Uint8Array(body);
    const out = await pool.decode('traces', 'protobuf', owned, true);
    expect(out.kind).toBe('ok');
    // Transferred: the caller's view is detached.
    expect(owned.byteLength).toBe(0);
    // A message as grpc-js assembles it: 5 bytes of frame header, then the message, in one buffer.
    const framed = new Uint8Array(body.byteLength + 5);
    framed.set(body, 5);
    const message = framed.subarray(5);
    const out1 = await pool.decode('traces', 'protobuf', message, true);
    expect(out1.kind === 'ok' && out1.accepted).toBe(2);
    expect(framed.byteLength).toBe(0);
    // A slice of a larger buffer (a pooled slab, say) is copied: the rest is not the caller's to give.
    const big = new Uint8Array(body.byteLength + 8192);
    big.set(body, 4096);
    const slice = big.subarray(4096, 4096 + body.byteLength);
    const out2 = await pool.decode('traces', 'protobuf', slice, true);
    expect(out2.kind === 'ok' && out2.accepted).toBe(2);
    expect(big.byteLength).toBe(body.byteLength + 8192);
    // Not owned: copied however it lies.
    const mine = new Uint8Array(body);
    await pool.decode('traces', 'protobuf', mine, false);
    expect(mine.byteLength).toBe(body.byteLength);
  });

  it("gives a large request's store bytes back in the buffer the worker wrote them to, not in a copy", async () => {
    const { pool } = await rig();
    const out = await pool.decode('traces', 'protobuf', traces('l', 100_000), true);
    if (out.kind !== 'ok') throw new Error(`decode: ${out.kind}`);
    expect(out.accepted).toBe(100_000);
    const [chunk] = out.chunks;
    expect(chunk!.data.byteLength).toBeGreaterThanOrEqual(HAND_OVER_BYTES);
    // A copy would fill an ArrayBuffer of its own; the buffer written to has room left at its end.
    expect(chunk!.data.byteOffset).toBe(0);
    expect(chunk!.data.buffer.byteLength).toBeGreaterThan(chunk!.data.byteLength);
  });

  it('and the memory store frees that buffer when it evicts the last of its spans, not at a garbage collection', async () => {
    const { pool, store } = await rig({ store: { 'storage.memory.maxBytes': String(32 << 20) } });
    const write = async (service: string, n: number, batchId: string) => {
      const out = await pool.decode('traces', 'protobuf', traces(service, n), true);
      if (out.kind !== 'ok') throw new Error(`decode: ${out.kind}`);
      const chunks = out.chunks.map((c) => c.data);
      const bytes = chunks.reduce((sum, c) => sum + c.byteLength, 0);
      expect(await store.write({ signal: 'traces', partition: 0, tenant: TENANT, rows: out.accepted, bytes, chunks, batchId })).toEqual({ kind: 'success' });
      return chunks;
    };
    const [large] = await write('large', 100_000, 'large');
    expect(large!.buffer.byteLength).toBeGreaterThan(large!.byteLength);
    expect(await stored(store, 'large')).toBeGreaterThan(0);
    // Later requests, ~40 MiB charged together, evict every span of the large one.
    for (let i = 0; i < 3; i++) await write('later', 50_000, `later-${i}`);
    expect(await stored(store, 'large')).toBe(0);
    // Its memory is freed: the buffer is detached.
    expect((large!.buffer as ArrayBuffer).detached).toBe(true);
    expect(await stored(store, 'later')).toBeGreaterThan(0);
  });
});
