// A trace read whose spans share a large resource, under a small heap. Each span read becomes a row
// with its own copy of its resource (and scope): 800 spans sent in requests of 40 whose resource
// carries a 100 KB attribute are 2 MB stored, but 80 MB once read. The byte bound of a trace read
// (trace-read-heap.test.ts) counted the span records alone on the memory store and SQLite
// (PostgreSQL and ClickHouse count each span's resource column), so nothing was cut and the trace
// page (/v1/traces/{id}) killed the collector ("FATAL ERROR: ... JavaScript heap out of memory").
// A log search's bound (log-search-heap.test.ts) counted the same way: records of a large resource,
// as the web UI asks for them (limit=1000), did the same.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeLogs, encodeTraces } from '../helpers/otlp-proto.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const BIG = 'r'.repeat(100_000);

describe('reads of spans and log records sharing a large resource', () => {
  const storeFlags: Record<string, () => Record<string, string>> = {
    memory: () => ({}),
    sqlite: () => ({ 'storage.sqlite.path': `${tempDir()}/th.db` }),
  };
  for (const backend of Object.keys(storeFlags)) {
    it(`answers the earliest spans with a warning, and the collector stays up (${backend})`, async () => {
      const c = await spawnCollector(
        { 'storage.backend': backend, 'delivery.ack': 'queued', 'limits.memorySoftBytes': '0', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0', ...storeFlags[backend]!() },
        20_000,
        ['--max-old-space-size=96'],
      );
      const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
      const traceId = randomBytes(16);
      const now = BigInt(Date.now()) * 1_000_000n;
      for (let i = 0; i < 20; i++) {
        const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'big-resource' } }, { key: 'big', value: { stringValue: `${i}/${BIG}` } }] };
        const spans = Array.from({ length: 40 }, (_, k) => ({ traceId, spanId: randomBytes(8), name: `op ${i}/${k}`, kind: 2, startTimeUnixNano: String(now + BigInt(i * 40 + k)), endTimeUnixNano: String(now + BigInt(i * 40 + k + 5)) }));
        const res = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans }] }] }) });
        await res.arrayBuffer();
        expect(res.status).toBe(200);
      }
      const deadline = Date.now() + 15_000;
      const stored = async () => ((await fetch(`${queryUrl}/v1/traces?service=big-resource&limit=1`, { signal: AbortSignal.timeout(5000) }).then((r) => r.json(), () => ({}))) as { traces?: { spanCount: number }[] }).traces?.[0]?.spanCount ?? 0;
      while ((await stored()) < 800 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(await stored()).toBe(800);

      const res = await fetch(`${queryUrl}/v1/traces/${traceId.toString('hex')}`, { signal: AbortSignal.timeout(15_000) })
        .then(async (r): Promise<{ status: number; body: any }> => ({ status: r.status, body: await r.json() }))
        .catch((err: Error) => ({ status: 0, body: { error: err.message } }));
      expect(c.output()).not.toMatch(/FATAL ERROR|heap out of memory/);
      expect(c.child.exitCode).toBeNull();
      expect(res.status).toBe(200);
      const names: string[] = res.body.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans.map((sp: any) => sp.name)));
      expect(names.length).toBeGreaterThan(0);
      expect(names.length).toBeLessThan(800);
      expect(names[0]).toBe('op 0/0');
      expect(res.body.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/truncated: showing the \d+ earliest of its 800 spans.*stored bytes/)]));
    }, 60_000);

    it(`answers the newest log records of a large resource with a warning, and the collector stays up (${backend})`, async () => {
      const c = await spawnCollector(
        { 'storage.backend': backend, 'delivery.ack': 'queued', 'limits.memorySoftBytes': '0', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0', ...storeFlags[backend]!() },
        20_000,
        ['--max-old-space-size=96'],
      );
      const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
      const now = BigInt(Date.now()) * 1_000_000n;
      for (let i = 0; i < 20; i++) {
        const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'big-resource-logs' } }, { key: 'big', value: { stringValue: `${i}/${BIG}` } }] };
        const logRecords = Array.from({ length: 40 }, (_, k) => ({ timeUnixNano: String(now + BigInt(i * 40 + k)), body: { stringValue: `r ${i}/${k}` } }));
        const res = await fetch(c.httpUrl + '/v1/logs', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords }] }] }) });
        await res.arrayBuffer();
        expect(res.status).toBe(200);
      }
      // Until the newest record is stored (acknowledged once queued).
      const deadline = Date.now() + 15_000;
      const newest = async () => ((await fetch(`${queryUrl}/v1/logs?service=big-resource-logs&limit=1`, { signal: AbortSignal.timeout(5000) }).then((r) => r.json(), () => ({}))) as any).resourceLogs?.[0]?.scopeLogs?.[0]?.logRecords?.[0]?.body?.stringValue;
      while ((await newest()) !== 'r 19/39' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(await newest()).toBe('r 19/39');

      const res = await fetch(`${queryUrl}/v1/logs?service=big-resource-logs&limit=1000`, { signal: AbortSignal.timeout(15_000) })
        .then(async (r): Promise<{ status: number; body: any }> => ({ status: r.status, body: await r.json() }))
        .catch((err: Error) => ({ status: 0, body: { error: err.message } }));
      expect(c.output()).not.toMatch(/FATAL ERROR|heap out of memory/);
      expect(c.child.exitCode).toBeNull();
      expect(res.status).toBe(200);
      const bodies: string[] = res.body.resourceLogs.flatMap((r: any) => r.scopeLogs.flatMap((s: any) => s.logRecords.map((l: any) => l.body.stringValue)));
      expect(bodies[0]).toBe('r 19/39');
      expect(bodies.length).toBeLessThan(800);
      expect(res.body.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/log search cut/)]));
    }, 60_000);
  }
});
