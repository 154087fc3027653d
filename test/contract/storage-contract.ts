// The storage contract: the same tests for every StorageBackend adapter. Each test uses its own
// service names and trace ids, so one backend instance (one database) serves the whole suite.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogRow, SpanRow } from '../../src/model/rows.ts';
import type { ScanPage, ScanQuery, StorageBackend } from '../../src/storage/backend.ts';
import { canonical, hex, makeLog, makeSpan, makeTrace, writeLogs, writeLogsAs, writeSpans, writeSpansAs } from '../helpers/rows.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

const MS = 1_000_000n;

function byStart(a: SpanRow, b: SpanRow): number {
  return a.startTimeUnixNano < b.startTimeUnixNano ? -1 : a.startTimeUnixNano > b.startTimeUnixNano ? 1 : a.spanId < b.spanId ? -1 : 1;
}

/** Registers the contract suite for one adapter; create() returns a started backend. */
export function describeStorageContract(name: string, create: () => Promise<StorageBackend>): void {
  describe(`storage contract: ${name}`, () => {
    let backend: StorageBackend;
    beforeAll(async () => {
      backend = await create();
    });
    afterAll(async () => {
      await backend.shutdown();
      await backend.shutdown(); // idempotent
    });

    it('reports healthy once started', async () => {
      expect((await backend.health()).ok).toBe(true);
    });

    it('returns a written trace field for field, every attribute type intact', async () => {
      const spans = makeTrace(3, { statusCode: 2, statusMessage: 'boom' });
      await writeSpans(backend, spans);
      const got = await backend.getTrace(TENANT, spans[0]!.traceId);
      expect(canonical([...got].sort(byStart))).toEqual(canonical([...spans].sort(byStart)));
      for (const s of got) expect(typeof s.startTimeUnixNano).toBe('bigint');
    });

    it('reads a trace cut to its earliest spans (start, then span id) with its number of spans, each once', async () => {
      const t = 1_150_000_000_000_000_000n + BigInt(Math.floor(Math.random() * 1e9)) * 1000n;
      const traceId = hex(16);
      const at = (ms: number, spanId: string) => makeSpan({ traceId, spanId, name: `at ${ms} ${spanId.slice(0, 2)}`, startTimeUnixNano: t + BigInt(ms) * MS, endTimeUnixNano: t + BigInt(ms) * MS + 5n });
      const first = [at(5, '05'.repeat(8)), at(3, 'bb'.repeat(8)), at(9, '09'.repeat(8))];
      const second = [at(3, 'aa'.repeat(8)), at(1, '01'.repeat(8)), at(7, '07'.repeat(8)), at(2, '02'.repeat(8))];
      await writeSpans(backend, first);
      await writeSpans(backend, second);
      // A client's resend, in a new request: counted and returned once.
      await writeSpans(backend, first);
      const cut = await backend.readTrace(TENANT, traceId, 3);
      expect(cut.total).toBe(7);
      expect(cut.spans.map((x) => x.name)).toEqual(['at 1 01', 'at 2 02', 'at 3 aa']);
      expect(canonical(cut.spans)).toEqual(canonical([second[1]!, second[3]!, second[0]!]));
      const whole = await backend.readTrace(TENANT, traceId, 7);
      expect(whole.total).toBe(7);
      expect(whole.spans.map((x) => x.name).sort()).toEqual([...first, ...second].map((x) => x.name).sort());
      expect(await backend.readTrace(TENANT, hex(16), 3)).toEqual({ spans: [], total: 0 });
      expect(await backend.readTrace('another-tenant', traceId, 3)).toEqual({ spans: [], total: 0 });
    });

    // readTrace's maxBytes (the read API's bound on a trace read): of the earliest maxSpans spans,
    // those whose stored bytes it holds (the first whatever its size), `cut` when some were left out.
    it('cuts a trace read to maxBytes, earliest spans first, and says so', async () => {
      const t = 1_160_000_000_000_000_000n + BigInt(Math.floor(Math.random() * 1e9)) * 1000n;
      const traceId = hex(16);
      const at = (i: number) => makeSpan({ traceId, spanId: hex(8), name: `at ${i}`, startTimeUnixNano: t + BigInt(i) * MS, endTimeUnixNano: t + BigInt(i) * MS + 5n, attributes: [{ key: 'big', value: { stringValue: 'x'.repeat(10_000) } }] });
      await writeSpans(backend, [at(3), at(1), at(4)]);
      await writeSpans(backend, [at(0), at(2)]);
      const names = (r: { spans: SpanRow[] }) => r.spans.map((x) => x.name);
      const cut = await backend.readTrace(TENANT, traceId, 10, 25_000);
      expect([names(cut), cut.total, cut.cut]).toEqual([['at 0', 'at 1'], 5, true]);
      expect(cut.bytes).toBeGreaterThan(20_000);
      expect(cut.bytes).toBeLessThanOrEqual(25_000);
      const one = await backend.readTrace(TENANT, traceId, 10, 1);
      expect([names(one), one.total, one.cut]).toEqual([['at 0'], 5, true]);
      const whole = await backend.readTrace(TENANT, traceId, 10, 1_000_000);
      expect([names(whole).sort(), whole.total, whole.cut ?? false]).toEqual([['at 0', 'at 1', 'at 2', 'at 3', 'at 4'], 5, false]);
      // The span count first: not cut by bytes.
      const counted = await backend.readTrace(TENANT, traceId, 2, 1_000_000);
      expect([names(counted), counted.total, counted.cut ?? false]).toEqual([['at 0', 'at 1'], 5, false]);
    });

    it('reads a whole trace and finds traces and logs with caps and limits of 2^32 and beyond (query.maxSpansPerTrace, query.maxLimit set high)', async () => {
      const service = 'big-cap-' + randomUUID();
      const spans = makeTrace(3, { serviceName: service });
      const log = makeLog({ serviceName: service });
      await writeSpans(backend, spans);
      await writeLogs(backend, [log]);
      for (const n of [2 ** 32 - 1, 2 ** 32, 2 ** 40]) {
        const read = await backend.readTrace(TENANT, spans[0]!.traceId, n);
        expect([read.total, read.spans.length], `maxSpans ${n}`).toEqual([3, 3]);
        expect((await backend.searchTraces(TENANT, { service, limit: n })).map((t) => t.traceId), `limit ${n}`).toEqual([spans[0]!.traceId]);
        expect(await backend.searchLogs(TENANT, { service, limit: n }), `limit ${n}`).toHaveLength(1);
      }
    });

    it('answers an unknown trace id with no spans', async () => {
      expect(await backend.getTrace(TENANT, hex(16))).toEqual([]);
    });

    it('keeps one copy of a span written twice (a retried batch)', async () => {
      const spans = makeTrace(4);
      const batchId = randomUUID();
      await writeSpans(backend, spans, batchId);
      await writeSpans(backend, spans, batchId);
      expect(await backend.getTrace(TENANT, spans[0]!.traceId)).toHaveLength(4);
    });

    it('reads once a trace a client sent again in a new request: trace, search, scan and dependencies', async () => {
      // An exporter that timed out waiting for an answer sends the same spans again; the
      // collector gives the new request a new batch id. Every read counts each span once.
      const base = 1_100_000_000_000_000_000n + BigInt(Math.floor(Math.random() * 1e9)) * 1000n;
      const [web, api] = ['web', 'api'].map((n) => `resent-${n}-${randomUUID()}`) as [string, string];
      const root = makeSpan({ serviceName: web, name: 'GET /', startTimeUnixNano: base, endTimeUnixNano: base + 9n * MS });
      const children = [1, 2].map((i) =>
        makeSpan({ traceId: root.traceId, parentSpanId: root.spanId, serviceName: api, name: 'get', startTimeUnixNano: base + BigInt(i) * MS, endTimeUnixNano: base + BigInt(i + 1) * MS }),
      );
      const spans = [root, ...children];
      await writeSpans(backend, spans, randomUUID());
      await writeSpans(backend, spans, randomUUID());

      expect(canonical([...(await backend.getTrace(TENANT, root.traceId))].sort(byStart))).toEqual(canonical(spans));
      const [summary] = await backend.searchTraces(TENANT, { service: api, limit: 5 });
      expect(summary?.traceId).toBe(root.traceId);
      expect(summary?.spanCount).toBe(3);
      // Pages of one (copies at every page boundary), of two (a page's copies of one span fill it) and of all.
      for (const limit of [1, 2, 100]) {
        const scanned = await scanAll((q) => backend.scanSpans(TENANT, q), { service: api }, limit);
        expect(scanned.rows.map((r) => r.spanId).sort()).toEqual(children.map((s) => s.spanId).sort());
      }
      expect(await backend.getDependencies(TENANT, { startNano: base, endNano: base + 10n * MS })).toEqual([{ parent: web, child: api, callCount: 2 }]);
    });

    it('keeps extreme but representable times exact: epoch 0 and end before start', async () => {
      const epoch = makeSpan({ startTimeUnixNano: 0n, endTimeUnixNano: 1n });
      const backwards = makeSpan({ startTimeUnixNano: 2_000_000_000_000_000_000n, endTimeUnixNano: 1_999_999_999_999_999_999n, durationNano: 0n });
      await writeSpans(backend, [epoch, backwards]);
      expect(canonical(await backend.getTrace(TENANT, epoch.traceId))).toEqual(canonical([epoch]));
      expect(canonical(await backend.getTrace(TENANT, backwards.traceId))).toEqual(canonical([backwards]));
    });

    it('searches traces by service and span name, newest first, with summaries', async () => {
      const service = 'svc-' + randomUUID();
      const now = BigInt(Date.now()) * MS;
      const older = makeTrace(3, { serviceName: service, name: 'root-op', startTimeUnixNano: now - 60_000n * MS, endTimeUnixNano: now - 59_000n * MS });
      const newer = makeTrace(2, { serviceName: service, name: 'root-op', startTimeUnixNano: now - 10_000n * MS, endTimeUnixNano: now - 9_500n * MS, statusCode: 2 });
      const other = makeTrace(1, { serviceName: 'svc-' + randomUUID(), name: 'root-op' });
      await writeSpans(backend, [...older, ...newer, ...other]);

      const found = await backend.searchTraces(TENANT, { service, limit: 10 });
      expect(found.map((t) => t.traceId)).toEqual([newer[0]!.traceId, older[0]!.traceId]);
      expect(found[0]).toEqual({
        traceId: newer[0]!.traceId,
        rootServiceName: service,
        rootSpanName: 'root-op',
        startTimeUnixNano: now - 10_000n * MS,
        durationNano: 500n * MS,
        spanCount: 2,
        hasError: true,
      });
      expect(found[1]!.spanCount).toBe(3);
      expect(found[1]!.hasError).toBe(false);

      const byName = await backend.searchTraces(TENANT, { service, name: 'child-2', limit: 10 });
      expect(byName.map((t) => t.traceId)).toEqual([older[0]!.traceId]);
      expect(await backend.searchTraces(TENANT, { service, limit: 1 })).toHaveLength(1);
    });

    it('finds a service with a very long name by the name its listing gives', async () => {
      const service = `svc-${randomUUID()}-${'x'.repeat(300)}`;
      const span = makeSpan({ serviceName: service });
      await writeSpans(backend, [span]);
      await writeLogs(backend, [makeLog({ serviceName: service })]);
      const listed = (await backend.getServices(TENANT)).find((s) => service.startsWith(s) && s.length >= 256);
      expect(listed).toBeDefined();
      expect((await backend.searchTraces(TENANT, { service: listed!, limit: 10 })).map((t) => t.traceId)).toEqual([span.traceId]);
      expect(await backend.searchLogs(TENANT, { service: listed!, limit: 10 })).toHaveLength(1);
      expect((await backend.getOperations(TENANT, { service: listed! })).map((o) => o.name)).toEqual([span.name]);
    });

    it('finds a span with a very long name by the name its operations listing gives', async () => {
      // A database client's span named after its whole statement, say: the Jaeger UI and the web
      // UI search by the operation name the listing gave them.
      const service = 'svc-' + randomUUID();
      const name = `SELECT ${'c, '.repeat(150)}x FROM t`;
      const span = makeSpan({ serviceName: service, name });
      await writeSpans(backend, [span, makeSpan({ serviceName: service, name: 'short' })]);
      const listed = (await backend.getOperations(TENANT, { service })).find((o) => name.startsWith(o.name) && o.name.length >= 256);
      expect(listed).toBeDefined();
      expect((await backend.searchTraces(TENANT, { service, name: listed!.name, limit: 10 })).map((t) => t.traceId)).toEqual([span.traceId]);
      expect((await backend.searchTraces(TENANT, { service, name, limit: 10 })).map((t) => t.traceId)).toEqual([span.traceId]);
    });

    it('searches traces by time range and duration', async () => {
      const service = 'svc-' + randomUUID();
      const base = BigInt(Date.now()) * MS - 3_600_000n * MS;
      const fast = makeSpan({ serviceName: service, startTimeUnixNano: base, endTimeUnixNano: base + 2n * MS });
      const slow = makeSpan({ serviceName: service, startTimeUnixNano: base + 1000n * MS, endTimeUnixNano: base + 1250n * MS });
      await writeSpans(backend, [fast, slow]);
      const ids = async (q: Parameters<StorageBackend['searchTraces']>[1]) => (await backend.searchTraces(TENANT, q)).map((t) => t.traceId).sort();

      expect(await ids({ service, minDurationNano: 100n * MS, limit: 10 })).toEqual([slow.traceId]);
      expect(await ids({ service, maxDurationNano: 10n * MS, limit: 10 })).toEqual([fast.traceId]);
      expect(await ids({ service, startNano: base + 500n * MS, limit: 10 })).toEqual([slow.traceId]);
      expect(await ids({ service, endNano: base + 500n * MS, limit: 10 })).toEqual([fast.traceId]);
      expect(await ids({ service, startNano: base, endNano: base + 2000n * MS, limit: 10 })).toEqual([fast.traceId, slow.traceId].sort());
    });

    it('searches traces by the status of a span (Jaeger error=true): error, ok, unset', async () => {
      const service = 'svc-' + randomUUID();
      const t = BigInt(Date.now()) * MS;
      // The failing span is a child: the trace matches through any of its spans.
      const failing = makeTrace(3, { serviceName: service, startTimeUnixNano: t - 10n * MS, endTimeUnixNano: t - 9n * MS });
      failing[2] = { ...failing[2]!, statusCode: 2, statusMessage: 'boom' };
      const ok = makeTrace(2, { serviceName: service, statusCode: 1, startTimeUnixNano: t - 20n * MS, endTimeUnixNano: t - 19n * MS });
      await writeSpans(backend, [...failing, ...ok]);
      const ids = async (statusCode: number) => (await backend.searchTraces(TENANT, { service, statusCode, limit: 10 })).map((x) => x.traceId);
      expect(await ids(2)).toEqual([failing[0]!.traceId]);
      expect(await ids(1)).toEqual([ok[0]!.traceId]);
      expect(await ids(0)).toEqual([failing[0]!.traceId]);
      const found = await backend.searchTraces(TENANT, { service, statusCode: 2, limit: 10 });
      expect(found.map((x) => [x.spanCount, x.hasError])).toEqual([[3, true]]);
    });

    it('searches traces by the kind of a span (Jaeger span.kind=server): the kind of the same span as the other conditions', async () => {
      const service = 'svc-' + randomUUID();
      const t = BigInt(Date.now()) * MS;
      // A server root with a client child; a producer root alone.
      const called = makeTrace(2, { serviceName: service, kind: 2, startTimeUnixNano: t - 10n * MS, endTimeUnixNano: t - 9n * MS });
      const produced = makeTrace(1, { serviceName: service, kind: 4, startTimeUnixNano: t - 20n * MS, endTimeUnixNano: t - 19n * MS });
      await writeSpans(backend, [...called, ...produced]);
      const ids = async (q: Omit<Parameters<StorageBackend['searchTraces']>[1], 'limit'>) => (await backend.searchTraces(TENANT, { service, limit: 10, ...q })).map((x) => x.traceId);
      expect(await ids({ kind: 2 })).toEqual([called[0]!.traceId]);
      expect(await ids({ kind: 3 })).toEqual([called[0]!.traceId]);
      expect(await ids({ kind: 4 })).toEqual([produced[0]!.traceId]);
      expect(await ids({ kind: 5 })).toEqual([]);
      expect(await ids({ kind: -1 })).toEqual([]);
      // The client span is named child-1: kind and name must hold for one span.
      expect(await ids({ kind: 3, name: 'child-1' })).toEqual([called[0]!.traceId]);
      expect(await ids({ kind: 2, name: 'child-1' })).toEqual([]);
    });

    it('summarizes a trace with a span that ends before it starts as lasting to that span\'s start', async () => {
      // A span whose end precedes its start (a clock stepped back mid-span) lasts 0 (SpanRow's
      // durationNano), as the ClickHouse exporter's schema, which keeps no end time, can only say:
      // the trace lasts at least to that span's start, never ending before one of its spans begins.
      const service = 'svc-' + randomUUID();
      const t = BigInt(Date.now()) * MS - 5_000n * MS;
      const [root] = makeTrace(1, { serviceName: service, startTimeUnixNano: t, endTimeUnixNano: t + 10n * MS });
      const backwards = makeSpan({ serviceName: service, traceId: root!.traceId, parentSpanId: root!.spanId, startTimeUnixNano: t + 20n * MS, endTimeUnixNano: t + 5n * MS, durationNano: 0n });
      await writeSpans(backend, [root!, backwards]);
      const [found] = await backend.searchTraces(TENANT, { service, limit: 1 });
      expect([found?.startTimeUnixNano, found?.durationNano]).toEqual([t, 20n * MS]);
    });

    it('names a trace after its earliest span, then the smallest span id, whichever order its spans came in', async () => {
      // Spans of one start are common from clocks of millisecond resolution (browsers). The summary
      // names the trace after its root (a parentless span), else its earliest span; of several
      // that start together, the smallest span id (readTrace's order), so every store, and a copy
      // of the data into another, names the trace alike.
      const t = BigInt(Date.now()) * MS - 5_000n * MS;
      const name = async (spans: SpanRow[][]) => {
        const service = 'svc-' + randomUUID();
        const traceId = hex(16);
        for (const batch of spans) await writeSpans(backend, batch.map((s) => ({ ...s, traceId, serviceName: service, resource: { ...s.resource, attributes: [{ key: 'service.name', value: { stringValue: service } }] } })));
        const [found] = await backend.searchTraces(TENANT, { service, limit: 1 });
        return found?.rootSpanName;
      };
      const at = (spanId: string, parentSpanId: string) => makeSpan({ spanId, parentSpanId, name: `span ${spanId.slice(0, 2)}`, startTimeUnixNano: t, endTimeUnixNano: t + MS });
      const parent = hex(8); // never stored: the trace has no root
      expect(await name([[at('ff'.repeat(8), parent)], [at('88'.repeat(8), parent), at('11'.repeat(8), parent)]])).toBe('span 11');
      expect(await name([[at('ff'.repeat(8), '')], [at('88'.repeat(8), ''), at('11'.repeat(8), '')]])).toBe('span 11');
      // A root still comes first, and the earliest span of several with no root.
      expect(await name([[at('11'.repeat(8), parent), at('ff'.repeat(8), '')]])).toBe('span ff');
      expect(await name([[at('11'.repeat(8), parent), { ...at('ff'.repeat(8), parent), startTimeUnixNano: t - 1n }]])).toBe('span ff');
    });

    it('ranks traces by their newest matching span, then returns them newest trace first', async () => {
      const service = 'svc-' + randomUUID();
      const t = BigInt(Date.now()) * MS;
      // A starts earlier but its matching span is newer than B's.
      const a = makeTrace(1, { serviceName: service, name: 'a-root', startTimeUnixNano: t - 1000n * MS, endTimeUnixNano: t - 900n * MS });
      const aHit = makeSpan({ serviceName: service, traceId: a[0]!.traceId, parentSpanId: a[0]!.spanId, name: 'hit', startTimeUnixNano: t - 100n * MS, endTimeUnixNano: t - 90n * MS });
      const b = makeTrace(1, { serviceName: service, name: 'hit', startTimeUnixNano: t - 500n * MS, endTimeUnixNano: t - 400n * MS });
      await writeSpans(backend, [...a, aHit, ...b]);
      expect((await backend.searchTraces(TENANT, { service, name: 'hit', limit: 1 })).map((x) => x.traceId)).toEqual([a[0]!.traceId]);
      expect((await backend.searchTraces(TENANT, { service, name: 'hit', limit: 2 })).map((x) => x.traceId)).toEqual([b[0]!.traceId, a[0]!.traceId]);
    });

    it('returns `limit` traces even when each has many matching spans', async () => {
      const service = 'svc-' + randomUUID();
      const t = BigInt(Date.now()) * MS;
      const traces = Array.from({ length: 25 }, (_, i) => makeTrace(150, { serviceName: service, startTimeUnixNano: t - BigInt(i) * 1000n * MS, endTimeUnixNano: t - BigInt(i) * 1000n * MS + MS }));
      await writeSpans(backend, traces.flat());
      const found = await backend.searchTraces(TENANT, { service, limit: 20 });
      expect(found.map((x) => x.traceId)).toEqual(traces.slice(0, 20).map((tr) => tr[0]!.traceId));
    });

    it('searches traces by attribute value of any type', async () => {
      const service = 'svc-' + randomUUID();
      const a = makeSpan({ serviceName: service, attributes: [{ key: 'http.route', value: { stringValue: '/a' } }, { key: 'retries', value: { intValue: '3' } }] });
      const b = makeSpan({ serviceName: service, attributes: [{ key: 'http.route', value: { stringValue: '/b' } }, { key: 'cached', value: { boolValue: true } }] });
      await writeSpans(backend, [a, b]);
      const ids = async (key: string, value: string) => (await backend.searchTraces(TENANT, { service, attributes: [{ key, value }], limit: 10 })).map((t) => t.traceId);
      expect(await ids('http.route', '/a')).toEqual([a.traceId]);
      expect(await ids('retries', '3')).toEqual([a.traceId]);
      expect(await ids('cached', 'true')).toEqual([b.traceId]);
      expect(await ids('http.route', '/c')).toEqual([]);
    });

    it('returns written log records field for field and searches them', async () => {
      const service = 'svc-' + randomUUID();
      const t0 = BigInt(Date.now()) * MS - 600_000n * MS;
      const traceId = hex(16);
      const logs: LogRow[] = [
        makeLog({ serviceName: service, traceId, timeUnixNano: t0, severityNumber: 5, severityText: 'DEBUG' }),
        makeLog({ serviceName: service, traceId, timeUnixNano: t0 + 1000n * MS, severityNumber: 17, severityText: 'ERROR', body: { stringValue: 'failed' } }),
        makeLog({ serviceName: service, traceId: '', spanId: '', timeUnixNano: t0 + 2000n * MS, severityNumber: 9, body: {} }),
        makeLog({ serviceName: service, traceId: '', spanId: '', timeUnixNano: 0n, observedTimeUnixNano: t0 + 3000n * MS, severityNumber: 13, body: { bytesValue: 'AAEC' } }),
      ];
      await writeLogs(backend, logs);

      const all = await backend.searchLogs(TENANT, { service, limit: 10 });
      expect(canonical(all)).toEqual(canonical([logs[3], logs[2], logs[1], logs[0]]));
      expect(canonical(await backend.searchLogs(TENANT, { traceId, limit: 10 }))).toEqual(canonical([logs[1], logs[0]]));
      expect((await backend.searchLogs(TENANT, { service, minSeverity: 13, limit: 10 })).map((l) => l.severityNumber)).toEqual([13, 17]);
      expect((await backend.searchLogs(TENANT, { service, startNano: t0 + 500n * MS, endNano: t0 + 2500n * MS, limit: 10 })).map((l) => l.severityNumber)).toEqual([9, 17]);
      expect(await backend.searchLogs(TENANT, { service, limit: 2 })).toHaveLength(2);
    });

    // LogQuery.maxBytes (the read API's bound on a log search): the newest records whose stored
    // bytes it holds (the first whatever its size), and `cut` when some were left out.
    it('cuts a log search to maxBytes, newest records first, and says so', async () => {
      const service = 'svc-' + randomUUID();
      const t0 = BigInt(Date.now()) * MS - 600_000n * MS;
      await writeLogs(backend, [0, 1, 2, 3, 4].map((i) => makeLog({ serviceName: service, timeUnixNano: t0 + BigInt(i) * MS, body: { stringValue: `${i}:${'x'.repeat(10_000)}` } })));
      const bodies = (logs: LogRow[]) => logs.map((l) => ('stringValue' in l.body ? l.body.stringValue : '').split(':')[0]);
      const cut = await backend.searchLogs(TENANT, { service, limit: 10, maxBytes: 25_000 });
      expect(bodies(cut)).toEqual(['4', '3']);
      expect(cut.cut).toBe(true);
      const one = await backend.searchLogs(TENANT, { service, limit: 10, maxBytes: 1 });
      expect(bodies(one)).toEqual(['4']);
      expect(one.cut).toBe(true);
      const whole = await backend.searchLogs(TENANT, { service, limit: 10, maxBytes: 1_000_000 });
      expect(bodies(whole)).toEqual(['4', '3', '2', '1', '0']);
      expect(whole.cut).toBeFalsy();
      // The limit first: not cut by bytes.
      const limited = await backend.searchLogs(TENANT, { service, limit: 2, maxBytes: 1_000_000 });
      expect(bodies(limited)).toEqual(['4', '3']);
      expect(limited.cut).toBeFalsy();
    });

    it('filters log records by the severity number reads return, also one outside 0..255 (an int32 enum)', async () => {
      const service = 'svc-' + randomUUID();
      const t0 = BigInt(Date.now()) * MS - 600_000n * MS;
      await writeLogs(backend, [-3, 9, 17, 265].map((severityNumber, i) => makeLog({ serviceName: service, severityNumber, timeUnixNano: t0 + BigInt(i) * MS })));
      expect((await backend.searchLogs(TENANT, { service, limit: 10 })).map((l) => l.severityNumber)).toEqual([265, 17, 9, -3]);
      expect((await backend.searchLogs(TENANT, { service, minSeverity: 17, limit: 10 })).map((l) => l.severityNumber)).toEqual([265, 17]);
    });

    // Scans (export and copy): every matching row once, page by page, whatever is written meanwhile.
    async function scanAll<T>(scan: (q: ScanQuery) => Promise<ScanPage<T>>, q: Omit<ScanQuery, 'limit' | 'after'>, limit: number, between?: () => Promise<void>): Promise<{ rows: T[]; pages: number }> {
      const rows: T[] = [];
      let after: string | undefined;
      for (let pages = 1; ; pages++) {
        const page = await scan({ ...q, limit, ...(after === undefined ? {} : { after }) });
        rows.push(...page.rows);
        expect(page.rows.length).toBeLessThanOrEqual(limit);
        if (page.position !== undefined) expect(page.position >= 0 && page.position <= 1).toBe(true);
        if (page.done) return { rows, pages };
        after = page.next;
        await between?.();
      }
    }

    it('scans spans page by page: each once, field for field, filtered, unmoved by concurrent writes', async () => {
      const service = 'svc-' + randomUUID();
      const t = BigInt(Date.now()) * MS - 7_200_000n * MS;
      const spans = Array.from({ length: 7 }, (_, i) => makeTrace(1, { serviceName: service, startTimeUnixNano: t + BigInt(i) * MS, endTimeUnixNano: t + BigInt(i) * MS + 5n })[0]!);
      spans.push(makeSpan({ serviceName: service, traceId: spans[0]!.traceId, startTimeUnixNano: t, endTimeUnixNano: t + 9n }));
      await writeSpans(backend, spans);
      await writeSpans(backend, [makeSpan()]); // another service: filtered out
      let extra = 0;
      const { rows, pages } = await scanAll((q) => backend.scanSpans(TENANT, q), { service }, 3, async () => {
        // A concurrent writer adds spans of the scanned service, older and newer.
        await writeSpans(backend, [makeSpan({ serviceName: service, startTimeUnixNano: t - MS }), makeSpan({ serviceName: service, startTimeUnixNano: t + 3_600_000n * MS })]);
        extra += 2;
      });
      expect(pages).toBeGreaterThanOrEqual(3);
      const ids = rows.map((r) => r.spanId);
      expect(new Set(ids).size).toBe(ids.length);
      for (const s of spans) expect(canonical(rows.find((r) => r.spanId === s.spanId))).toEqual(canonical(s));
      expect(rows.length).toBeGreaterThanOrEqual(spans.length);
      expect(rows.length).toBeLessThanOrEqual(spans.length + extra);
      expect(rows.every((r) => r.serviceName === service)).toBe(true);

      const window = await scanAll((q) => backend.scanSpans(TENANT, q), { service, startNano: t + 2n * MS, endNano: t + 4n * MS }, 100);
      expect(window.rows.map((r) => r.spanId).sort()).toEqual(spans.slice(2, 5).map((s) => s.spanId).sort());
    });

    it('scans log records page by page, each once, and resumes from a cursor', async () => {
      const service = 'svc-' + randomUUID();
      const t = BigInt(Date.now()) * MS - 7_200_000n * MS;
      // Two records identical but for nothing: both are kept and both are scanned.
      const twin = makeLog({ serviceName: service, timeUnixNano: t });
      const logs = [twin, { ...twin }, ...Array.from({ length: 5 }, (_, i) => makeLog({ serviceName: service, timeUnixNano: t + BigInt(i) * MS, body: { stringValue: `n${i}` } }))];
      await writeLogs(backend, logs);
      const { rows } = await scanAll((q) => backend.scanLogs(TENANT, q), { service }, 2);
      // Scan order is the store's own: compare the bodies as a multiset (sorted by their JSON).
      const bodies = (list: LogRow[]) => list.map((l) => JSON.stringify(canonical(l.body))).sort();
      expect(bodies(rows)).toEqual(bodies(logs));
      expect(rows).toHaveLength(logs.length);
      expect(canonical(rows.find((r) => JSON.stringify(r.body) === JSON.stringify(logs[4]!.body)))).toEqual(canonical(logs[4]));

      const first = await backend.scanLogs(TENANT, { service, limit: 4 });
      const later = makeLog({ serviceName: service, timeUnixNano: t + 3_600_000n * MS });
      await writeLogs(backend, [later]);
      const rest = await scanAll((q) => backend.scanLogs(TENANT, q), { service }, 100);
      expect(rest.rows).toHaveLength(logs.length + 1);
      const resumed: LogRow[] = [];
      let after = first.next;
      for (;;) {
        const page = await backend.scanLogs(TENANT, { service, limit: 2, ...(after === undefined ? {} : { after }) });
        resumed.push(...page.rows);
        after = page.next;
        if (page.done) break;
      }
      expect(first.rows.length + resumed.length).toBe(logs.length + 1);
    });

    it('ends a scan page at maxBytes of stored rows: large rows come a few at a time, each once, the first whatever its size', async () => {
      // export and copy read with a bound of a sixteenth of the heap: 1,000 rows of 100 KB a page
      // ran a 96 MiB command out of memory.
      const service = 'svc-' + randomUUID();
      const t = BigInt(Date.now()) * MS - 7_200_000n * MS;
      const big = (i: number) => `${i}:` + 'b'.repeat(20_000);
      const spans = Array.from({ length: 6 }, (_, i) => makeSpan({ serviceName: service, startTimeUnixNano: t + BigInt(i) * MS, attributes: [{ key: 'blob', value: { stringValue: big(i) } }] }));
      const logs = Array.from({ length: 6 }, (_, i) => makeLog({ serviceName: service, timeUnixNano: t + BigInt(i) * MS, body: { stringValue: big(i) } }));
      await writeSpans(backend, spans);
      await writeLogs(backend, logs);
      for (const [scan, sent] of [[(q: ScanQuery) => backend.scanSpans(TENANT, q), 6], [(q: ScanQuery) => backend.scanLogs(TENANT, q), 6]] as const) {
        // Two rows' worth: a page holds one to three of them (stores count their bytes each their own way).
        const sizes: number[] = [];
        const rows: (SpanRow | LogRow)[] = [];
        let after: string | undefined;
        for (;;) {
          const page: ScanPage<SpanRow | LogRow> = await scan({ service, limit: 100, maxBytes: 45_000, ...(after === undefined ? {} : { after }) });
          sizes.push(page.rows.length);
          rows.push(...page.rows);
          if (page.done) break;
          after = page.next;
          expect(sizes.length).toBeLessThan(20);
        }
        expect(rows).toHaveLength(sent);
        const text = (r: SpanRow | LogRow) => ('body' in r ? (r.body as { stringValue: string }).stringValue : (r.attributes.find((a) => a.key === 'blob')!.value as { stringValue: string }).stringValue);
        expect(rows.map(text).sort()).toEqual(Array.from({ length: sent }, (_, i) => big(i)).sort());
        expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
        expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
        // A bound smaller than any row: one row a page, and the page is not the last.
        const one = await scan({ service, limit: 100, maxBytes: 1 });
        expect(one.rows).toHaveLength(1);
        expect(one.done).toBe(false);
      }
    });

    it('keeps one copy of log records written twice under one batch id (a retry, an import run again)', async () => {
      const service = 'svc-' + randomUUID();
      const logs = [makeLog({ serviceName: service }), makeLog({ serviceName: service })];
      const batchId = randomUUID();
      await writeLogs(backend, logs, batchId);
      await writeLogs(backend, logs, batchId);
      expect(await backend.searchLogs(TENANT, { service, limit: 10 })).toHaveLength(2);
    });

    it('stores strings that look like SQL, prototype keys and control characters as data', async () => {
      const s = makeSpan({
        name: "'; DROP TABLE spans; --",
        statusMessage: 'line1\nline2\ttab \\ backslash \u0001',
        attributes: [
          { key: 'constructor', value: { stringValue: 'x' } },
          { key: "k'ey\"", value: { stringValue: "v'al\"" } },
          { key: 'unicode', value: { stringValue: '日本語 🚀 \u2028' } },
        ],
      });
      await writeSpans(backend, [s]);
      expect(canonical(await backend.getTrace(TENANT, s.traceId))).toEqual(canonical([s]));
    });

    it('lists services and their operations with span kinds, sorted, filtered by kind', async () => {
      const service = 'svc-ops-' + randomUUID();
      const other = 'svc-ops-' + randomUUID();
      await writeSpans(backend, [
        makeSpan({ serviceName: service, name: 'GET /b', kind: 2 }),
        makeSpan({ serviceName: service, name: 'GET /a', kind: 2 }),
        makeSpan({ serviceName: service, name: 'GET /a', kind: 3 }),
        makeSpan({ serviceName: service, name: 'GET /a', kind: 2 }),
        makeSpan({ serviceName: service, name: 'work', kind: 1 }),
        makeSpan({ serviceName: other, name: 'elsewhere', kind: 4 }),
      ]);
      const services = await backend.getServices(TENANT);
      expect(services).toContain(service);
      expect(services).toContain(other);
      expect(services).toEqual([...services].sort());
      expect(new Set(services).size).toBe(services.length);
      expect(await backend.getOperations(TENANT, { service })).toEqual([
        { name: 'GET /a', kind: 2 },
        { name: 'GET /a', kind: 3 },
        { name: 'GET /b', kind: 2 },
        { name: 'work', kind: 1 },
      ]);
      expect(await backend.getOperations(TENANT, { service, kind: 2 })).toEqual([
        { name: 'GET /a', kind: 2 },
        { name: 'GET /b', kind: 2 },
      ]);
      expect(await backend.getOperations(TENANT, { service, kind: 5 })).toEqual([]);
      expect(await backend.getOperations(TENANT, { service: 'svc-none-' + randomUUID() })).toEqual([]);
    });

    it('counts calls between services from parent links, within the time range', async () => {
      // A window of its own (2001), far from the other tests' spans.
      const base = 1_000_000_000_000_000_000n + BigInt(Math.floor(Math.random() * 1e9)) * 1000n;
      const [web, api, db] = ['web', 'api', 'db'].map((n) => `${n}-${randomUUID()}`) as [string, string, string];
      const at = (ms: number) => ({ startTimeUnixNano: base + BigInt(ms) * MS, endTimeUnixNano: base + BigInt(ms + 5) * MS });
      const root = makeSpan({ serviceName: web, name: 'GET /', ...at(0) });
      const t = root.traceId;
      const api1 = makeSpan({ traceId: t, parentSpanId: root.spanId, serviceName: api, name: 'list', ...at(1) });
      const api2 = makeSpan({ traceId: t, parentSpanId: root.spanId, serviceName: api, name: 'get', ...at(2) });
      const inner = makeSpan({ traceId: t, parentSpanId: api1.spanId, serviceName: api, name: 'same-service', ...at(3) });
      const query = makeSpan({ traceId: t, parentSpanId: inner.spanId, serviceName: db, name: 'SELECT', ...at(4) });
      const late = makeSpan({ traceId: t, parentSpanId: api2.spanId, serviceName: db, name: 'SELECT', ...at(60_000) });
      const orphan = makeSpan({ traceId: t, parentSpanId: hex(8), serviceName: db, name: 'orphan', ...at(5) });
      await writeSpans(backend, [root, api1, api2, inner, query, late, orphan]);

      expect(await backend.getDependencies(TENANT, { startNano: base, endNano: base + 10_000n * MS })).toEqual([
        { parent: api, child: db, callCount: 1 },
        { parent: web, child: api, callCount: 2 },
      ].sort((a, b) => (a.parent < b.parent ? -1 : 1)));
      expect(await backend.getDependencies(TENANT, { startNano: base, endNano: base + 120_000n * MS })).toContainEqual({ parent: api, child: db, callCount: 2 });
      expect(await backend.getDependencies(TENANT, { startNano: base - 2n * MS, endNano: base - MS })).toEqual([]);
    });

    describe('tenants', () => {
      // Tenants of their own per run: the backend (one database) is shared with the other tests.
      const acme = `acme-${randomUUID().slice(0, 8)}`;
      const globex = `globex-${randomUUID().slice(0, 8)}`;
      const base = 1_600_000_000_000_000_000n + BigInt(Math.floor(Math.random() * 1e9)) * 1000n;
      const at = (ms: number) => ({ startTimeUnixNano: base + BigInt(ms) * MS, endTimeUnixNano: base + BigInt(ms + 5) * MS });
      const traceId = hex(16);
      const [acmeWeb, acmeDb, globexWeb] = ['acme-web', 'acme-db', 'globex-web'].map((n) => `${n}-${randomUUID()}`) as [string, string, string];
      // The same trace and span ids under both tenants: neither may hide or see the other's rows.
      const root = makeSpan({ traceId, serviceName: acmeWeb, name: 'GET /acme', ...at(0) });
      const child = makeSpan({ traceId, parentSpanId: root.spanId, serviceName: acmeDb, name: 'SELECT acme', ...at(1) });
      const theirs = makeSpan({ traceId, spanId: root.spanId, serviceName: globexWeb, name: 'GET /globex', ...at(2) });
      const acmeLog = makeLog({ traceId, serviceName: acmeWeb, timeUnixNano: base + 3n * MS });
      const globexLog = makeLog({ traceId, serviceName: globexWeb, timeUnixNano: base + 4n * MS });

      beforeAll(async () => {
        await writeSpansAs(backend, acme, [root, child]);
        await writeSpansAs(backend, globex, [theirs]);
        await writeLogsAs(backend, acme, [acmeLog]);
        await writeLogsAs(backend, globex, [globexLog]);
      });

      it("reads a trace id as each tenant's own spans, and as unknown to any other tenant", async () => {
        expect(canonical([...(await backend.getTrace(acme, traceId))].sort(byStart))).toEqual(canonical([root, child]));
        expect(canonical(await backend.getTrace(globex, traceId))).toEqual(canonical([theirs]));
        expect(await backend.getTrace(TENANT, traceId)).toEqual([]);
        expect(await backend.getTrace(`other-${randomUUID().slice(0, 8)}`, traceId)).toEqual([]);
      });

      it("never lists or finds another tenant's services, operations or traces", async () => {
        const acmeServices = await backend.getServices(acme);
        expect(acmeServices).toEqual(expect.arrayContaining([acmeWeb, acmeDb]));
        expect(acmeServices).not.toContain(globexWeb);
        expect(await backend.getServices(globex)).toEqual([globexWeb]);
        expect(await backend.getServices(TENANT)).not.toContain(acmeWeb);
        expect(await backend.getOperations(globex, { service: acmeWeb })).toEqual([]);
        expect((await backend.getOperations(acme, { service: acmeWeb })).map((o) => o.name)).toEqual(['GET /acme']);
        expect(await backend.searchTraces(globex, { service: acmeWeb, limit: 10 })).toEqual([]);
        const found = await backend.searchTraces(acme, { service: acmeWeb, limit: 10 });
        expect(found.map((t) => [t.traceId, t.spanCount, t.rootServiceName])).toEqual([[traceId, 2, acmeWeb]]);
        const window = { startNano: base, endNano: base + 10n * MS, limit: 10 };
        expect((await backend.searchTraces(globex, window)).map((t) => [t.traceId, t.spanCount, t.rootServiceName])).toEqual([[traceId, 1, globexWeb]]);
      });

      it("keeps log records and dependencies to their tenant", async () => {
        expect(canonical(await backend.searchLogs(acme, { traceId, limit: 10 }))).toEqual(canonical([acmeLog]));
        expect(canonical(await backend.searchLogs(globex, { traceId, limit: 10 }))).toEqual(canonical([globexLog]));
        expect(await backend.searchLogs(TENANT, { traceId, limit: 10 })).toEqual([]);
        const range = { startNano: base, endNano: base + 10n * MS };
        expect(await backend.getDependencies(acme, range)).toEqual([{ parent: acmeWeb, child: acmeDb, callCount: 1 }]);
        expect(await backend.getDependencies(globex, range)).toEqual([]);
      });

      it("exports and copies only its tenant's spans and log records (scans)", async () => {
        const range = { startNano: base, endNano: base + 10n * MS };
        const spanIds = async (tenant: string) => (await scanAll((q) => backend.scanSpans(tenant, q), range, 1)).rows.map((r) => r.spanId).sort();
        expect(await spanIds(acme)).toEqual([root.spanId, child.spanId].sort());
        expect(canonical((await scanAll((q) => backend.scanSpans(globex, q), range, 1)).rows)).toEqual(canonical([theirs]));
        expect(await spanIds(TENANT)).toEqual([]);
        const logsOf = async (tenant: string) => (await scanAll((q) => backend.scanLogs(tenant, q), range, 1)).rows;
        expect(canonical(await logsOf(acme))).toEqual(canonical([acmeLog]));
        expect(canonical(await logsOf(globex))).toEqual(canonical([globexLog]));
        expect(await logsOf(TENANT)).toEqual([]);
      });
    });
  
    it('measures what it holds: rows, size and the oldest stored time per signal (storage metrics)', async () => {
      expect(backend.stats).toBeTypeOf('function');
      const of = (st: Awaited<ReturnType<NonNullable<StorageBackend['stats']>>>, signal: 'traces' | 'logs') => st.signals.find((x) => x.signal === signal)!;
      const before = await backend.stats!();
      // A time older than anything else this suite writes except the epoch-0 rows.
      const old = 1_000_000_000n * 1_000_000_000n + 5n;
      const spans = makeTrace(7, { startTimeUnixNano: old, endTimeUnixNano: old + MS });
      const logs = [makeLog({ timeUnixNano: old }), makeLog(), makeLog()];
      await writeSpans(backend, spans);
      await writeLogs(backend, logs);
      const after = await backend.stats!();
      for (const [signal, n] of [['traces', 7], ['logs', 3]] as const) {
        const a = of(after, signal);
        const b = of(before, signal);
        // PostgreSQL's rows are the planner's estimate, absent until ANALYZE: exact elsewhere.
        if (backend.name !== 'postgres') expect(a.rows! - (b.rows ?? 0)).toBe(n);
        expect(a.oldestUnixNano).toBeTypeOf('bigint');
        expect(a.oldestUnixNano! <= old).toBe(true);
        // SQLite keeps both signals in one file: its size is reported per file, not per signal.
        if (backend.name === 'sqlite') expect(a.bytes).toBeUndefined();
        else expect(a.bytes).toBeGreaterThan(0);
      }
      if (backend.name === 'sqlite') {
        const files = Object.fromEntries((after.files ?? []).map((f) => [f.file, f.bytes]));
        expect(files['main']).toBeGreaterThan(0);
        // Rows just committed in WAL mode sit in the -wal file until a checkpoint.
        expect(files['wal']).toBeGreaterThan(0);
      }
    });
});
}
