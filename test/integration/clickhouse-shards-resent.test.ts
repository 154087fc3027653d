// A shard added to storage.clickhouse.urls rolls out pod by pod: for a while pods of the old and
// the new shard lists take requests side by side. A client (an SDK, an OpenTelemetry Collector)
// resending an export whose answer it lost reaches another pod, and under the other shard list the
// copy of its spans lands on another shard than the first. Each shard's read keeps one copy of a
// span id, but the merge of the shards kept both: the trace view showed every such span twice and
// counted it twice, a search listed it with twice its spans, and export gave it twice. Each span
// id now counts once.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { shardOf } from '../../src/storage/clickhouse/encoder.ts';
import { chdbBackend, removeChdbDir, uniqueDatabase } from '../helpers/clickhouse.ts';
import { hex, makeTrace, writeSpans } from '../helpers/rows.ts';

const backends: StorageBackend[] = [];
afterAll(async () => {
  for (const b of backends) await b.shutdown();
  removeChdbDir();
});

async function pod(databases: string[]): Promise<StorageBackend> {
  const b = await chdbBackend(databases);
  backends.push(b);
  return b;
}

describe('clickhouse: a trace resent to a pod of another shard list', () => {
  it('reads each span once, and counts it once', async () => {
    const [first, added] = [uniqueDatabase('resent0'), uniqueDatabase('resent1')];
    const older = await pod([first]);
    const newer = await pod([first, added]);
    // A trace id the two-shard list routes to the added shard.
    let traceId = hex(16);
    while (shardOf(traceId, 2) !== 1) traceId = hex(16);
    const spans = makeTrace(4, { traceId, serviceName: 'svc-' + randomUUID() });
    await writeSpans(older, spans);
    await writeSpans(newer, spans);
    const ids = spans.map((s) => s.spanId).sort();

    // The older pod reads its one shard, the newer one both.
    for (const reader of [older, newer]) expect((await reader.getTrace(TENANT, traceId)).map((s) => s.spanId).sort()).toEqual(ids);
    const whole = await newer.readTrace(TENANT, traceId, 100);
    expect([whole.spans.map((s) => s.spanId).sort(), whole.total, whole.cut ?? false]).toEqual([ids, 4, false]);
    // Cut by the span count: the earliest two, of four.
    const cut = await newer.readTrace(TENANT, traceId, 2);
    const earliest = [...spans].sort((a, b) => (a.startTimeUnixNano === b.startTimeUnixNano ? (a.spanId < b.spanId ? -1 : 1) : a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1)).slice(0, 2);
    expect([cut.spans.map((s) => s.spanId), cut.total]).toEqual([earliest.map((s) => s.spanId), 4]);
  });

  it('lists it in a search with each span counted once', async () => {
    const [first, added] = [uniqueDatabase('listed0'), uniqueDatabase('listed1')];
    const older = await pod([first]);
    const newer = await pod([first, added]);
    let traceId = hex(16);
    while (shardOf(traceId, 2) !== 1) traceId = hex(16);
    const service = 'svc-' + randomUUID();
    const spans = makeTrace(4, { traceId, serviceName: service });
    // The first three sent to the older pod, all four (three again) to the newer one.
    await writeSpans(older, spans.slice(0, 3));
    await writeSpans(newer, spans);
    const [summary] = await newer.searchTraces(TENANT, { service, limit: 10 });
    expect(summary).toMatchObject({ traceId, spanCount: 4 });
  });

  it('scans it (export, copy) with each span once, whatever the page size', async () => {
    const [first, added] = [uniqueDatabase('scan0'), uniqueDatabase('scan1')];
    const older = await pod([first]);
    const newer = await pod([first, added]);
    let traceId = hex(16);
    while (shardOf(traceId, 2) !== 1) traceId = hex(16);
    const spans = makeTrace(5, { traceId });
    await writeSpans(older, spans);
    await writeSpans(newer, spans);
    const ids = spans.map((s) => s.spanId).sort();
    for (const limit of [1, 2, 3, 100]) {
      const got: string[] = [];
      let after: string | undefined;
      for (let page = 0; page < 50; page++) {
        const p = await newer.scanSpans(TENANT, { limit, ...(after === undefined ? {} : { after }) });
        got.push(...p.rows.map((s) => s.spanId));
        after = p.next;
        if (p.done) break;
      }
      expect([limit, got.sort()]).toEqual([limit, ids]);
    }
  });
});
