// What the read API's failures put in the collector's log. A search stopped at query.timeoutMs is
// the reader's to narrow (the 503 says so), not the collector's fault: the Jaeger API answers it
// without a log line, and the OTLP read API did the same only for the Jaeger half, logging every
// timed-out /v1/traces search at error level with its URL (8 KiB each): a dashboard's heavy search
// refreshed by a few browsers filled the log with one line a request.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { startCollector, type TestCollector } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { writeSpansOneASecond } from '../helpers/sqlite-fill.ts';
import { tempDir } from '../helpers/tmp.ts';

const SPANS = 20_000;

describe('read API failures in the log', () => {
  const path = join(tempDir(), 'reads.db');
  const { logger, lines } = capturedLogger();
  let c: TestCollector;

  beforeAll(async () => {
    const db = openDatabase(path);
    writeSpansOneASecond(new SqliteStore(db), SPANS, 'heavy');
    db.close();
    // 1 ms: an attribute search the index cannot answer parses every span's document, far longer.
    c = await startCollector({ 'storage.backend': 'sqlite', 'storage.sqlite.path': path, 'query.timeoutMs': '1', 'storage.sqlite.readThreads': '1' }, { logger });
  }, 60_000);
  afterAll(() => c?.stop());

  it('does not log a search stopped by query.timeoutMs, on either API', async () => {
    const pad = 'p'.repeat(4000);
    for (let i = 0; i < 5; i++) {
      const otlp = await fetch(`${c.queryUrl}/v1/traces?attr=double=0.5&attr=pad=${pad}`);
      expect(otlp.status).toBe(503);
      expect(await otlp.text()).toContain('query.timeoutMs');
      const jaeger = await fetch(`${c.queryUrl}/api/traces?service=heavy&tags=${encodeURIComponent(JSON.stringify({ double: '0.5', pad }))}`);
      expect(jaeger.status).toBe(503);
      expect(await jaeger.text()).toContain('query.timeoutMs');
    }
    const failed = lines().filter((l) => /read/i.test(l.msg) && /fail/i.test(l.msg));
    expect(failed.map((l) => [l.msg, String(l['err']).slice(0, 80)])).toEqual([]);
  });
});

// A store that fails every read (a database gone) logged one error line per read request on both
// APIs, where the writer says the same of writes once a minute with a count.
describe('read API store failures in the log', () => {
  it('are logged at most once a minute with a count, not once a request', async () => {
    const { logger, lines } = capturedLogger();
    const c = await startCollector({ 'storage.backend': 'sqlite' }, { logger });
    try {
      // The store failing every read, as a database gone under the collector does.
      const path = (c.collector as unknown as { config: Record<string, string> }).config['storage.sqlite.path']!;
      const db = openDatabase(path);
      db.exec('DROP TABLE logs; DROP TABLE operations; DROP TABLE span_runs; DROP TABLE run_spans; DROP TABLE spans');
      db.close();
      for (let i = 0; i < 5; i++) {
        const jaeger = await fetch(`${c.queryUrl}/api/services`);
        expect(jaeger.status).toBe(503);
        const otlp = await fetch(`${c.queryUrl}/v1/logs?service=s${i}`);
        expect(otlp.status).toBe(503);
      }
      const failed = lines().filter((l) => /read/i.test(l.msg) && /fail/i.test(l.msg));
      expect(failed).toHaveLength(1);
      // The Jaeger API's failure names its request as the OTLP read API's does.
      expect(failed[0]!['url']).toBe('/api/services');
    } finally {
      await c.stop();
    }
  });
});
