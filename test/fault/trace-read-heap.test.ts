// A trace read of large spans under a small heap. One trace of 800 spans each with a 100 KB
// attribute (80 MB) under --max-old-space-size=96: reads were bounded by span count only
// (query.maxSpansPerTrace, query.maxSpansPerSearch), so the web UI's trace page (/v1/traces/{id}),
// Jaeger's /api/traces/{id} and a Jaeger search (/api/traces?service=&limit=20) decoded and
// serialized all 800 and killed the collector ("FATAL ERROR: ... JavaScript heap out of memory"),
// on every store. The read is cut to a byte bound instead (the earliest spans up to it, as the
// span-count cut keeps), with the same truncation warning naming the bound.
import { describe, expect, it } from 'vitest';
import { sendBigTrace } from '../helpers/big-spans.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';
import { createTestDatabase } from '../helpers/postgres.ts';

const PATHS = ['/v1/traces/ID', '/api/traces/ID', '/api/traces?service=big-spans&limit=20'];

describe('a trace read of spans larger than the heap holds', () => {
  const storeFlags: Record<string, () => Promise<Record<string, string>>> = {
    memory: async () => ({}),
    sqlite: async () => ({ 'storage.sqlite.path': `${tempDir()}/th.db` }),
    postgres: async () => ({ 'storage.postgres.url': await createTestDatabase('trace_read_heap') }),
    clickhouse: async () => ({ 'storage.clickhouse.urls': `chdb://${tempDir('tracehouse-chdb-')}?database=th` }),
  };
  // Memory and SQLite on every read path; PostgreSQL and ClickHouse on one each (the store's read is the same).
  const cases: [keyof typeof storeFlags, string][] = [
    ...PATHS.flatMap((p) => [['memory', p], ['sqlite', p]] as [string, string][]),
    ['postgres', PATHS[0]!],
    ['clickhouse', PATHS[2]!],
  ];
  for (const [backend, path] of cases) {
    it(`answers the earliest spans with a warning, and the collector stays up (${backend}, ${path})`, async () => {
      const c = await spawnCollector(
        { 'storage.backend': backend, 'delivery.ack': 'queued', 'limits.memorySoftBytes': '0', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0', ...(await storeFlags[backend]!()) },
        20_000,
        ['--max-old-space-size=96'],
      );
      const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
      // One trace of 800 spans of 100 KB: 80 MB, in requests of 4 MB.
      const hexId = (await sendBigTrace(c.httpUrl, queryUrl, 20)).toString('hex');

      // Bounded: a collector that hangs instead of dying fails here, not at the test's timeout.
      const res = await fetch(queryUrl + path.replace('ID', hexId), { signal: AbortSignal.timeout(15_000) })
        .then(async (r): Promise<{ status: number; body: any }> => ({ status: r.status, body: await r.json() }))
        .catch((err: Error) => ({ status: 0, body: { error: err.message } }));
      expect(c.output()).not.toMatch(/FATAL ERROR|heap out of memory/);
      expect(c.child.exitCode).toBeNull();
      expect(res.status).toBe(200);
      const bigOf = (attrs: { key: string; value: unknown }[]) => {
        const v = attrs.find((a) => a.key === 'big')!.value;
        return (typeof v === 'string' ? v : (v as { stringValue: string }).stringValue);
      };
      let names: string[];
      let warnings: string[];
      if (path.startsWith('/v1/')) {
        names = res.body.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans.map((sp: any) => bigOf(sp.attributes))));
        warnings = res.body.warnings;
      } else {
        expect(res.body.data).toHaveLength(1);
        const t = res.body.data[0];
        names = t.spans.sort((a: any, b: any) => a.startTime - b.startTime).map((sp: any) => bigOf(sp.tags));
        warnings = t.spans.flatMap((sp: any) => sp.warnings ?? []);
      }
      expect(names.length).toBeGreaterThan(0);
      expect(names.length).toBeLessThan(800);
      // The earliest spans, as the span-count cut keeps.
      expect(names[0]!.startsWith('0/0/')).toBe(true);
      expect(warnings).toEqual(expect.arrayContaining([expect.stringMatching(/truncated: showing the \d+ earliest of its 800 spans.*stored bytes/)]));
      // And it still stops as asked (killed instead, a chdb collector left its insert directory in /tmp).
      c.child.kill('SIGTERM');
      expect(await c.exited).toBe(0);
    }, 60_000);
  }
});
