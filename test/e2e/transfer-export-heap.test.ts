// export of a store of large rows with the heap of the collector that stored them. A page was
// 1,000 rows whatever their size: 800 log records of 100 KB (80 MB, stored by a collector with a
// 96 MiB heap) were one page, read and decoded at once, and export with the same heap died
// ("FATAL ERROR: ... JavaScript heap out of memory", exit 134) with no backup written. A page
// also stops at a byte bound that follows the heap, so the backup is written whole.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli, sqliteCount } from '../helpers/cli.ts';
import { encodeLogs, encodeTraces } from '../helpers/otlp-proto.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const HEAP = '--max-old-space-size=96';
const BIG = 'x'.repeat(100_000);

describe('export of a store of large rows', () => {
  it('writes the whole backup with the heap of the collector that stored them', async () => {
    const dir = tempDir();
    const db = `${dir}/th.db`;
    const c = await spawnCollector({ 'storage.backend': 'sqlite', 'storage.sqlite.path': db, 'delivery.walDir': `${dir}/wal`, 'limits.memorySoftBytes': '0' }, 20_000, [HEAP]);
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'big-rows' } }] };
    const now = BigInt(Date.now()) * 1_000_000n;
    const post = async (path: string, body: Uint8Array) => {
      const res = await fetch(c.httpUrl + path, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
    };
    // 800 log records and 400 spans of 100 KB, in requests of 4 MB.
    for (let i = 0; i < 20; i++) {
      const logRecords = Array.from({ length: 40 }, (_, k) => ({ timeUnixNano: String(now + BigInt(i * 40 + k)), body: { stringValue: `${i}/${k}/${BIG}` } }));
      await post('/v1/logs', encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords }] }] }));
    }
    for (let i = 0; i < 10; i++) {
      const traceId = Buffer.alloc(16, i + 1);
      const spans = Array.from({ length: 40 }, (_, k) => ({ traceId, spanId: Buffer.from([1, 2, 3, 4, 5, 6, i + 1, k + 1]), name: 'big', startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n), attributes: [{ key: 'blob', value: { stringValue: BIG } }] }));
      await post('/v1/traces', encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans }] }] }));
    }
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);
    expect(sqliteCount(db, 'logs')).toBe(800);

    const out = `${dir}/backup.jsonl`;
    const r = runCli(['export', `--storage.sqlite.path=${db}`, '--out', out, '--quiet'], { env: { NODE_OPTIONS: HEAP } });
    expect(r.stderr).not.toMatch(/FATAL ERROR|heap out of memory/);
    expect({ status: r.status, stderr: r.stderr.slice(-500) }).toMatchObject({ status: 0 });
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    const logs = lines.flatMap((l) => (l.resourceLogs ?? []).flatMap((rl: any) => rl.scopeLogs.flatMap((s: any) => s.logRecords)));
    const spans = lines.flatMap((l) => (l.resourceSpans ?? []).flatMap((rs: any) => rs.scopeSpans.flatMap((s: any) => s.spans)));
    expect(logs).toHaveLength(800);
    expect(new Set(logs.map((l: any) => l.body.stringValue.slice(0, 8))).size).toBe(800);
    expect(spans).toHaveLength(400);
    expect(new Set(spans.map((s: any) => s.spanId)).size).toBe(400);
  }, 60_000);
});
