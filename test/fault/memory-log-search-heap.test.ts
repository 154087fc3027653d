// A log search on a memory store full of small log records. The search made an entry (~100 bytes
// of V8 heap) for every matching record before it sorted them and kept `limit`: with the million
// records storage.memory.maxLogs keeps by default, a search at limit=1 (the web UI's logs page, a
// Grafana panel) ran a 96 MiB heap out of memory, "FATAL ERROR: ... JavaScript heap out of memory",
// and the process and every row it held were gone. Only the newest `limit` are held now.
import { describe, expect, it } from 'vitest';
import { getJson } from '../helpers/collector.ts';
import { encodeLogs } from '../helpers/otlp-proto.ts';
import { spawnCollector } from '../helpers/process.ts';

const HEAP_MB = 96;
const PER_REQUEST = 20_000;
const REQUESTS = 50;

describe('a log search over the memory store\'s million log records', () => {
  it('answers the newest records, and the collector stays up', async () => {
    const c = await spawnCollector({ 'storage.backend': 'memory', 'limits.memorySoftBytes': '0', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0' }, 20_000, [`--max-old-space-size=${HEAP_MB}`]);
    const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'many-logs' } }] };
    const now = BigInt(Date.now()) * 1_000_000n;
    for (let i = 0; i < REQUESTS; i++) {
      // Times not in arrival order: each request's records run backwards.
      const logRecords = Array.from({ length: PER_REQUEST }, (_, k) => ({ timeUnixNano: String(now + BigInt(i * PER_REQUEST + (PER_REQUEST - 1 - k))), body: { stringValue: `${i}/${k}` } }));
      const res = await fetch(c.httpUrl + '/v1/logs', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords }] }] }) });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
    }
    // Until the last request's records are stored (acknowledged once queued).
    const last = `${REQUESTS - 1}/0`;
    const deadline = Date.now() + 20_000;
    let res: { status: number; body: any } = { status: 0, body: undefined };
    while (Date.now() < deadline) {
      res = await getJson(queryUrl, '/v1/logs?limit=3').catch((err: Error) => ({ status: 0, body: { error: err.message } }));
      if (res.status !== 200 || res.body.resourceLogs[0]?.scopeLogs[0].logRecords[0].body.stringValue === last) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(c.output()).not.toMatch(/FATAL ERROR|heap out of memory/);
    expect(c.child.exitCode).toBeNull();
    expect(res.status).toBe(200);
    const bodies = res.body.resourceLogs.flatMap((r: any) => r.scopeLogs.flatMap((s: any) => s.logRecords.map((l: any) => l.body.stringValue)));
    expect(bodies).toEqual([`${REQUESTS - 1}/0`, `${REQUESTS - 1}/1`, `${REQUESTS - 1}/2`]);
  }, 60_000);
});
