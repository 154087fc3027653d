// query.maxLimit below the default search limit (20): a search without `limit` must not answer
// more than query.maxLimit items ("limit defaults to 20, at most query.maxLimit"), as the Jaeger
// API already does (min(20, maxLimit)).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { makeLog, makeSpan, writeLogs, writeSpans } from '../helpers/rows.ts';

const MS = 1_000_000n;

describe('read API searches with query.maxLimit under the default limit', () => {
  let store: StorageBackend;
  let server: QueryServer;
  let url: string;
  beforeAll(async () => {
    store = await memoryBackend();
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 5, maxSpansPerTrace: 100 }, store, pino({ level: 'silent' }));
    await server.start();
    url = `http://127.0.0.1:${server.boundPort}`;
    const base = 1_700_000_000_000_000_000n;
    for (let i = 0; i < 10; i++) {
      await writeSpans(store, [makeSpan({ serviceName: 'svc', startTimeUnixNano: base + BigInt(i) * MS, endTimeUnixNano: base + BigInt(i + 1) * MS })]);
      await writeLogs(store, [makeLog({ serviceName: 'svc', timeUnixNano: base + BigInt(i) * MS })]);
    }
  });
  afterAll(async () => {
    await server.shutdown();
    await store.shutdown();
  });

  it('answers at most query.maxLimit traces and log records when no limit is given', async () => {
    const traces = (await (await fetch(`${url}/v1/traces?service=svc`)).json()) as any;
    expect(traces.traces).toHaveLength(5);
    const logs = (await (await fetch(`${url}/v1/logs?service=svc`)).json()) as any;
    expect(logs.resourceLogs.flatMap((r: any) => r.scopeLogs.flatMap((s: any) => s.logRecords))).toHaveLength(5);
    const jaeger = (await (await fetch(`${url}/api/traces?service=svc&start=0`)).json()) as any;
    expect(jaeger.data).toHaveLength(5);
  });
});
