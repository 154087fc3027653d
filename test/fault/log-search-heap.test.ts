// A log search whose records, at the search's limit, are more than the reading thread's heap holds.
// The web UI asks for a trace's logs with limit=query.maxLimit (1000), and log records may be large
// (each up to what a request carries): 800 records of 100 KB took the memory store's main thread
// out of memory ("FATAL ERROR: ... JavaScript heap out of memory", exit by SIGABRT, and with it
// every row the store held), and SQLite's read thread ("storage unavailable; retry later", the same
// again at every retry). PostgreSQL and ClickHouse fetched every row up to the limit too: the
// PostgreSQL collector died the same way, the chdb one hung after its FATAL ERROR (alive, answering
// nothing, not even /healthz). The answer is cut to a byte bound instead, newest records first, and
// says so in its warnings, as a trace read cut to query.maxSpansPerTrace does.
import { describe, expect, it } from 'vitest';
import { getJson } from '../helpers/collector.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { sendBigLogs } from '../helpers/big-logs.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const HEAP_MB = 96;

describe('a log search of records larger than the heap holds', () => {
  const storeFlags: Record<string, () => Promise<Record<string, string>>> = {
    memory: async () => ({}),
    sqlite: async () => ({ 'storage.sqlite.path': `${tempDir()}/th.db` }),
    postgres: async () => ({ 'storage.postgres.url': await createTestDatabase('log_search_heap') }),
    // chdb in the collector's own process, on a directory of its own.
    clickhouse: async () => ({ 'storage.clickhouse.urls': `chdb://${tempDir('tracehouse-chdb-')}?database=th` }),
  };
  for (const backend of ['memory', 'sqlite', 'postgres', 'clickhouse'] as const) {
    it(`is cut to a byte bound with a warning, and the collector stays up (${backend})`, async () => {
      const c = await spawnCollector(
        { 'storage.backend': backend, 'delivery.ack': 'queued', 'limits.memorySoftBytes': '0', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0', ...(await storeFlags[backend]!()) },
        20_000,
        [`--max-old-space-size=${HEAP_MB}`],
      );
      const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
      // 800 records of 100 KB: 80 MB, in requests of 4 MB.
      await sendBigLogs(c, queryUrl, 20);

      // Bounded: a collector that hangs instead of dying (chdb's) fails here, not at the test's timeout.
      const res = await fetch(`${queryUrl}/v1/logs?limit=1000`, { signal: AbortSignal.timeout(15_000) })
        .then(async (r): Promise<{ status: number; body: any }> => ({ status: r.status, body: await r.json() }))
        .catch((err: Error) => ({ status: 0, body: { error: err.message } }));
      expect(c.output()).not.toMatch(/FATAL ERROR|heap out of memory/);
      expect(c.child.exitCode).toBeNull();
      expect(res.status).toBe(200);
      const records = res.body.resourceLogs.flatMap((r: { scopeLogs: { logRecords: { body: { stringValue: string } }[] }[] }) => r.scopeLogs.flatMap((s) => s.logRecords));
      expect(records.length).toBeGreaterThan(0);
      expect(records.length).toBeLessThan(800);
      // Newest first.
      expect(records[0].body.stringValue.startsWith('19/39/')).toBe(true);
      expect(res.body.warnings).toEqual([expect.stringMatching(/cut/)]);
      // A small search is answered whole, without a warning.
      const small = await getJson(queryUrl, '/v1/logs?limit=5');
      expect(small.status).toBe(200);
      expect(small.body.warnings).toBeUndefined();
      // And it still stops as asked (killed instead, a chdb collector left its insert directory in /tmp).
      c.child.kill('SIGTERM');
      expect(await c.exited).toBe(0);
    }, 60_000);
  }
});
