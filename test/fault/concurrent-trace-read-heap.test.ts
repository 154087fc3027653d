// Many readers opening large traces at once, under a small heap. Each trace read is held to the
// read API's byte bound (a sixteenth of the heap in stored span bytes, test/fault/trace-read-heap),
// but nothing bounded how many ran at once: on ClickHouse, whose reads had no limit of their own
// (SQLite has 2 read threads, PostgreSQL a read pool of 2), 8 readers of a trace of large spans
// (a dashboard's panels, a team on one incident) ran the collector out of heap
// ("FATAL ERROR: ... JavaScript heap out of memory"), and ingest died with it. Such reads now run a
// few at a time (query.maxConcurrentReads), the others waiting their turn, and every reader gets
// its answer.
import { describe, expect, it } from 'vitest';
import { sendBigTrace } from '../helpers/big-spans.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

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
      // One trace of 160 spans of 100 KB: 16 MB, past the 6 MB byte bound of a 96 MiB heap.
      const traceId = await sendBigTrace(c.httpUrl, queryUrl, 4);

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
