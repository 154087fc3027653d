// Values nested as deep as receiver.maxNestingDepth allows (up to 1000 levels) read back from the
// SQLite store. Its reads run on read threads and come back to the main thread as structured
// clones, and V8 rebuilds a clone recursively on the main thread's smaller stack: past about 450
// levels of a kvlist the reply failed to arrive ('messageerror', no listener), the read waited out
// query.timeoutMs and answered 503 "the query ran longer than query.timeoutMs", on every read of
// that trace or those logs, for data the collector had accepted without a word.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';

const DEPTH = 1000;

/** An AnyValue of kvlists (or arrays) `depth` levels deep around a string. */
function deep(depth: number, kvlist: boolean): Record<string, unknown> {
  let v: Record<string, unknown> = { stringValue: 'leaf' };
  for (let i = 0; i < depth; i++) v = kvlist ? { kvlistValue: { values: [{ key: 'k', value: v }] } } : { arrayValue: { values: [v] } };
  return v;
}

/** The string at the bottom of a value built by deep(), and how many levels lie above it. */
function bottom(v: any): { levels: number; leaf: unknown } {
  let levels = 0;
  while (v && !('stringValue' in v)) {
    v = v.kvlistValue ? v.kvlistValue.values[0].value : v.arrayValue.values[0];
    levels++;
  }
  return { levels, leaf: v?.stringValue };
}

describe('values nested up to receiver.maxNestingDepth, read back from SQLite', () => {
  let c: TestCollector;
  const service = 'deep-' + randomBytes(4).toString('hex');
  const traceId = randomBytes(16).toString('hex');

  beforeAll(async () => {
    // A short read budget: the failure this guards against waits it out.
    c = await startCollector({ 'storage.backend': 'sqlite', 'receiver.maxNestingDepth': String(DEPTH), 'query.timeoutMs': '3000' });
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: service } }] };
    const spans = {
      resourceSpans: [
        {
          resource,
          scopeSpans: [
            {
              spans: [
                {
                  traceId,
                  spanId: randomBytes(8).toString('hex'),
                  name: 'deep',
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000000000001',
                  attributes: [{ key: 'kv', value: deep(DEPTH, true) }, { key: 'arr', value: deep(DEPTH, false) }],
                },
              ],
            },
          ],
        },
      ],
    };
    const logs = { resourceLogs: [{ resource, scopeLogs: [{ logRecords: [{ timeUnixNano: '1700000000000000000', traceId, body: deep(DEPTH, true) }] }] }] };
    for (const [path, body] of [['/v1/traces', spans], ['/v1/logs', logs]] as const) {
      const res = await fetch(c.httpUrl + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({});
    }
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('a trace read returns the span with its values whole', async () => {
    const got = await eventually(async () => {
      const r = await getJson(c.queryUrl, `/v1/traces/${traceId}`);
      return r.status === 404 ? undefined : r;
    }, 10_000, 'the trace');
    expect(got.status).toBe(200);
    const span = got.body.resourceSpans[0].scopeSpans[0].spans[0];
    const attr = (key: string) => span.attributes.find((a: any) => a.key === key).value;
    expect(bottom(attr('kv'))).toEqual({ levels: DEPTH, leaf: 'leaf' });
    expect(bottom(attr('arr'))).toEqual({ levels: DEPTH, leaf: 'leaf' });
  });

  it('a log search returns the record with its body whole', async () => {
    const got = await eventually(async () => {
      const r = await getJson(c.queryUrl, `/v1/logs?service=${service}&start=2023-01-01T00:00:00Z`);
      return r.status === 200 && r.body.resourceLogs.length === 0 ? undefined : r;
    }, 10_000, 'the log record');
    expect(got.status).toBe(200);
    expect(bottom(got.body.resourceLogs[0].scopeLogs[0].logRecords[0].body)).toEqual({ levels: DEPTH, leaf: 'leaf' });
  });
});
