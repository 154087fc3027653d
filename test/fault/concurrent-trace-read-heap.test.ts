// Many readers opening large traces at once, under a small heap. Each trace read is held to the
// read API's byte bound (a sixteenth of the heap in stored span bytes, test/fault/trace-read-heap),
// but nothing bounded how many ran at once: on ClickHouse, whose reads had no limit of their own
// (SQLite has 2 read threads, PostgreSQL a read pool of 2), 8 readers of a trace of large spans
// (a dashboard's panels, a team on one incident) ran the collector out of heap
// ("FATAL ERROR: ... JavaScript heap out of memory"), and ingest died with it. Such reads now run a
// few at a time (query.maxConcurrentReads), the others waiting their turn, and every reader gets
// its answer.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const BIG = 'y'.repeat(100_000);
const READERS = 8;

describe('many readers of a large trace at once', () => {
  it('each gets its cut answer, and the collector stays up (clickhouse)', async () => {
    const c = await spawnCollector(
      { 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': `chdb://${tempDir('tracehouse-chdb-')}?database=th`, 'delivery.ack': 'queued', 'limits.memorySoftBytes': '0', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0' },
      20_000,
      ['--max-old-space-size=96'],
    );
    try {
      const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
      const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'big-spans' } }] };
      const traceId = randomBytes(16);
      const now = BigInt(Date.now()) * 1_000_000n;
      // One trace of 160 spans of 100 KB: 16 MB, past the 6 MB byte bound of a 96 MiB heap.
      for (let i = 0; i < 4; i++) {
        const spans = Array.from({ length: 40 }, (_, k) => ({ traceId, spanId: randomBytes(8), name: 'op', kind: 2, startTimeUnixNano: String(now + BigInt(i * 40 + k)), endTimeUnixNano: String(now + BigInt(i * 40 + k + 5)), attributes: [{ key: 'big', value: { stringValue: `${i}/${k}/${BIG}` } }] }));
        const res = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans }] }] }) });
        await res.arrayBuffer();
        expect(res.status).toBe(200);
      }
      const deadline = Date.now() + 15_000;
      const stored = async () => ((await fetch(`${queryUrl}/v1/traces?service=big-spans&limit=1`, { signal: AbortSignal.timeout(5000) }).then((r) => r.json(), () => ({}))) as { traces?: { spanCount: number }[] }).traces?.[0]?.spanCount ?? 0;
      while ((await stored()) < 160 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await stored()).toBe(160);

      // The web UI's read and Jaeger's, half each, all at once.
      const hexId = traceId.toString('hex');
      const answers = await Promise.all(Array.from({ length: READERS }, (_, i) =>
        fetch(`${queryUrl}${i % 2 === 0 ? '/v1/traces/' : '/api/traces/'}${hexId}`, { signal: AbortSignal.timeout(20_000) })
          .then(async (r) => ({ status: r.status, truncated: /trace truncated: showing the \d+ earliest of its 160 spans/.test(await r.text()) }), (err: Error) => ({ status: 0, truncated: false, error: err.message }))));
      expect(c.output()).not.toMatch(/FATAL ERROR|heap out of memory/);
      expect(c.child.exitCode).toBeNull();
      expect(answers).toEqual(Array.from({ length: READERS }, () => ({ status: 200, truncated: true })));
    } finally {
      // Stopped as asked, even when the test failed (killed, a chdb collector leaves its insert directory in /tmp).
      c.child.kill('SIGTERM');
      await Promise.race([c.exited, new Promise((r) => setTimeout(r, 5000))]);
    }
  }, 60_000);
});
