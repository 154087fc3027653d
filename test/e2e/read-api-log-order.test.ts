// /v1/logs answers "log records, newest first" (README, Read API): as OTLP/JSON, grouped by
// resource and scope, yet a client reading the records in document order gets them newest first.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeLogs } from '../helpers/otlp-proto.ts';

describe('read API log search order', () => {
  let c: TestCollector;
  let client: RawOtlpClient;
  const tag = randomBytes(4).toString('hex');
  const T = 1_700_000_000_000_000_000n;
  const resource = (service: string, records: [bigint, string][]) => ({
    resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
    scopeLogs: [{ scope: { name: 'app' }, logRecords: records.map(([t, body]) => ({ timeUnixNano: t.toString(), severityNumber: 17, body: { stringValue: body } })) }],
  });
  beforeAll(async () => {
    c = await startCollector();
    client = new RawOtlpClient(c.grpcAddress);
    // Two services' records interleaved in time, as any search over more than one service meets them.
    const res = await client.logs(encodeLogs({ resourceLogs: [resource(`a-${tag}`, [[T + 1n, 'a first'], [T + 3n, 'a third']]), resource(`b-${tag}`, [[T + 2n, 'b second']])] }));
    expect(res.error).toBeNull();
  });
  afterAll(async () => {
    client?.close();
    await c?.stop();
  });

  it('lists records of several resources newest first in document order', async () => {
    const body = await eventually(async () => {
      const r = await getJson(c.queryUrl, `/v1/logs?start=${T}&end=${T + 10n}&minSeverity=17`);
      return r.body?.resourceLogs?.flatMap((rl: any) => rl.scopeLogs.flatMap((sl: any) => sl.logRecords)).length === 3 ? r.body : undefined;
    });
    const records = body.resourceLogs.flatMap((rl: any) =>
      rl.scopeLogs.flatMap((sl: any) => sl.logRecords.map((l: any) => [rl.resource.attributes.find((a: any) => a.key === 'service.name').value.stringValue, l.body.stringValue])),
    );
    expect(records).toEqual([
      [`a-${tag}`, 'a third'],
      [`b-${tag}`, 'b second'],
      [`a-${tag}`, 'a first'],
    ]);
    // The newest record's resource leads and each record keeps its own resource and scope.
    for (const rl of body.resourceLogs) expect(rl.scopeLogs[0].scope.name).toBe('app');
  });
});
