// What one read API answer may hold, as a user of the API or of Grafana's Jaeger data source sees
// it: a search without `limit` answers at most query.maxLimit items ("limit defaults to 20, at most
// query.maxLimit"), and a Jaeger /api/traces answer holds at most query.maxSpansPerSearch spans over
// all its traces, saying what it left out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { makeLog, makeSpan, writeLogs, writeSpans } from '../helpers/rows.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';

const MS = 1_000_000n;
const BASE = 1_700_000_000_000_000_000n;
/** The big traces' resource: nothing the sender dropped, so their only trace warnings are the cut notices. */
const BIG_RESOURCE = { attributes: [{ key: 'service.name', value: { stringValue: 'big' } }], droppedAttributesCount: 0, schemaUrl: '' };

describe('read API answers within the query limits', () => {
  let store: StorageBackend;
  let server: QueryServer;
  let url: string;
  /** Trace ids of the big traces, newest first (as searches rank them). */
  const big: string[] = [];
  beforeAll(async () => {
    store = await memoryBackend();
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 5, maxSpansPerTrace: 100, maxSpansPerSearch: 250 }, store, pino({ level: 'silent' }));
    await server.start();
    url = `http://127.0.0.1:${server.boundPort}`;
    for (let i = 0; i < 10; i++) {
      await writeSpans(store, [makeSpan({ serviceName: 'svc', startTimeUnixNano: BASE + BigInt(i) * MS, endTimeUnixNano: BASE + BigInt(i + 1) * MS })]);
      await writeLogs(store, [makeLog({ serviceName: 'svc', timeUnixNano: BASE + BigInt(i) * MS })]);
    }
    // Four traces of 100 spans each, the newest last.
    for (let t = 0; t < 4; t++) {
      const first = makeSpan({ serviceName: 'big', resource: BIG_RESOURCE, startTimeUnixNano: BASE + BigInt(t) * 1000n * MS });
      const spans = Array.from({ length: 100 }, (_, i) => ({ ...makeSpan({ serviceName: 'big', resource: BIG_RESOURCE, startTimeUnixNano: first.startTimeUnixNano + BigInt(i) * MS }), traceId: first.traceId }));
      await writeSpans(store, spans);
      big.unshift(first.traceId);
    }
  });
  afterAll(async () => {
    await server.shutdown();
    await store.shutdown();
  });

  const jaeger = async (path: string) => (await (await fetch(`${url}${path}`)).json()) as { data: { traceID: string; spans: { warnings: string[] | null }[]; warnings: string[] | null }[]; errors: unknown[] | null };

  it('answers at most query.maxLimit traces and log records when no limit is given', async () => {
    const traces = (await (await fetch(`${url}/v1/traces?service=svc`)).json()) as any;
    expect(traces.traces).toHaveLength(5);
    const logs = (await (await fetch(`${url}/v1/logs?service=svc`)).json()) as any;
    expect(logs.resourceLogs.flatMap((r: any) => r.scopeLogs.flatMap((s: any) => s.logRecords))).toHaveLength(5);
    expect((await jaeger('/api/traces?service=svc&start=0')).data).toHaveLength(5);
  });

  it('holds at most query.maxSpansPerSearch spans in a Jaeger search answer, and says which traces it left out', async () => {
    const { data } = await jaeger('/api/traces?service=big&start=0&limit=4');
    // 100 + 100 + the earliest 50 of the third; the fourth left out.
    expect(data.map((t) => t.traceID)).toEqual(big.slice(0, 3));
    expect(data.map((t) => t.spans.length)).toEqual([100, 100, 50]);
    expect(data[0]!.warnings).toBeNull();
    expect(data[2]!.warnings).toEqual([
      'trace truncated: showing the 50 earliest of its 100 spans (query.maxSpansPerSearch)',
      'search answer cut at query.maxSpansPerSearch (250 spans): 1 more trace left out; narrow the search or lower its limit',
    ]);
  });

  it("says a trace was cut on its first span too, as the Jaeger UI and Grafana show only spans' warnings", async () => {
    // Neither the Jaeger UI (transformTraceData) nor Grafana's Jaeger data source reads a trace's
    // own warnings: a cut trace whose notice is only there shows as if it were whole.
    const { data } = await jaeger('/api/traces?service=big&start=0&limit=4');
    const notices = (w: string[] | null) => (w ?? []).filter((x) => x.startsWith('trace truncated') || x.startsWith('search answer cut'));
    expect(data[0]!.spans.flatMap((s) => notices(s.warnings))).toEqual([]);
    expect(notices(data[2]!.spans[0]!.warnings)).toEqual(data[2]!.warnings);
    expect(data[2]!.spans.slice(1).flatMap((s) => notices(s.warnings))).toEqual([]);
    const server2 = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 5, maxSpansPerTrace: 30, maxSpansPerSearch: 250 }, store, pino({ level: 'silent' }));
    await server2.start();
    try {
      const one = (await (await fetch(`http://127.0.0.1:${server2.boundPort}/api/traces/${big[0]}`)).json()) as { data: { spans: { warnings: string[] | null }[]; warnings: string[] | null }[] };
      expect(one.data[0]!.spans).toHaveLength(30);
      expect(one.data[0]!.warnings).toEqual(['trace truncated: showing the 30 earliest of its 100 spans (query.maxSpansPerTrace)']);
      expect(notices(one.data[0]!.spans[0]!.warnings)).toEqual(one.data[0]!.warnings);
    } finally {
      await server2.shutdown();
    }
  });

  it('holds at most the byte bound of stored span bytes in a Jaeger search answer and in a trace read, and says so', async () => {
    // The bound (a sixteenth of the old generation) at one and a half of these traces' bytes.
    const bytes = (await store.readTrace(DEFAULT_TENANT, big[0]!, 1000, Number.MAX_SAFE_INTEGER)).bytes!;
    const server2 = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 5, maxSpansPerTrace: 100, maxSpansPerSearch: 250, oldSpaceBytes: Math.floor(bytes * 1.5) * 16 }, store, pino({ level: 'silent' }));
    await server2.start();
    try {
      const base = `http://127.0.0.1:${server2.boundPort}`;
      const { data } = (await (await fetch(`${base}/api/traces?service=big&start=0&limit=4`)).json()) as Awaited<ReturnType<typeof jaeger>>;
      // The first whole, the earliest half of the second; the other two left out.
      expect(data.map((t) => t.traceID)).toEqual(big.slice(0, 2));
      expect(data[0]!.spans).toHaveLength(100);
      expect(data[1]!.spans.length).toBeGreaterThanOrEqual(49);
      expect(data[1]!.spans.length).toBeLessThanOrEqual(51);
      expect(data[1]!.warnings).toEqual([
        expect.stringMatching(/^trace truncated: showing the \d+ earliest of its 100 spans \(the most the read API answers of one search: \d+ stored bytes\)$/),
        expect.stringMatching(/^search answer cut at the read API's byte bound \(\d+ stored bytes\): 2 more traces left out; narrow the search or lower its limit$/),
      ]);
      // A trace read holds the bound too: a whole trace is within it.
      const read = (await (await fetch(`${base}/v1/traces/${big[0]}`)).json()) as { warnings?: string[] };
      expect(read.warnings).toBeUndefined();
    } finally {
      await server2.shutdown();
    }
  });

  it('holds the same bound for a list of trace ids, passing over unknown ones', async () => {
    const unknown = 'f'.repeat(32);
    const { data, errors } = await jaeger(`/api/traces?traceID=${unknown}&traceID=${big[3]}&traceID=${big[2]}&traceID=${big[1]}&traceID=${big[0]}`);
    expect(data.map((t) => t.spans.length)).toEqual([100, 100, 50]);
    expect(data.map((t) => t.traceID)).toEqual([big[3], big[2], big[1]]);
    // Each id not answered is named, as Jaeger names those it did not find.
    expect(errors).toEqual([
      { code: 404, msg: 'trace not found', traceID: unknown },
      { code: 413, msg: expect.stringMatching(/^trace left out: the answer reached its bound/), traceID: big[0] },
    ]);
    // A single trace read is cut by query.maxSpansPerTrace only.
    expect((await jaeger(`/api/traces/${big[0]}`)).data[0]!.spans).toHaveLength(100);
  });
});
