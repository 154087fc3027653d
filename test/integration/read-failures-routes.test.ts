// A store read that fails, on each byte-bounded route: a read stopped at its time budget
// (QueryTimeout) is answered 503 with its message and not logged; any other failure is answered
// 503 without its text, which goes to the log; a reader that left before the read ended is
// neither answered nor logged. Each answer once, and the read turn comes back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { makeSpan, writeSpans } from '../helpers/rows.ts';

describe('a failing store read on each read route', () => {
  let store: StorageBackend;
  let server: QueryServer;
  let traceId: string;
  let fail: 'timeout' | 'broken' | 'slow' = 'timeout';
  const log = capturedLogger();
  const failure = async (signal?: AbortSignal): Promise<never> => {
    if (fail === 'slow') {
      await new Promise((r) => setTimeout(r, 300));
      // As a store whose read is stopped when its reader is gone.
      throw Object.assign(new Error(signal?.aborted === true ? 'aborted' : 'late'), { name: signal?.aborted === true ? 'ReadAborted' : 'Error' });
    }
    if (fail === 'timeout') throw Object.assign(new Error('the query ran longer than query.timeoutMs (5 ms)'), { name: 'QueryTimeout' });
    throw new Error('SQLITE_IOERR: /secret/path');
  };
  const routes = () => [`/v1/traces/${traceId}`, '/v1/logs', '/v1/traces', `/api/traces/${traceId}`, '/api/traces?service=svc', `/api/v3/traces/${traceId}`, '/api/v3/traces?query.service_name=svc&query.start_time_min=2020-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z'];
  beforeAll(async () => {
    store = await memoryBackend();
    const span = makeSpan({ serviceName: 'svc' });
    traceId = span.traceId;
    await writeSpans(store, [span]);
    store.readTrace = (_t, _id, _m, _b, signal) => failure(signal);
    store.searchTraces = (_t, _q, signal) => failure(signal);
    store.searchLogs = (_t, _q, signal) => failure(signal);
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 20, maxSpansPerTrace: 100, maxSpansPerSearch: 1000, maxConcurrentReads: 1 }, store, log.logger);
    await server.start();
  });
  afterAll(async () => {
    await server?.shutdown();
    await store?.shutdown();
  });
  const get = (path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${server.boundPort}${path}`, { signal: AbortSignal.timeout(3000), ...init });

  it('answers a QueryTimeout 503 with its message on every route, and logs nothing', async () => {
    fail = 'timeout';
    for (const path of routes()) {
      const res = await get(path);
      expect(res.status, path).toBe(503);
      expect(res.headers.get('retry-after'), path).toBe('1');
      expect(await res.text(), path).toContain('query.timeoutMs (5 ms)');
    }
    expect(log.lines().filter((l) => (l.level as number) >= 50)).toEqual([]);
  });

  it('answers any other failure 503 without its text on every route, and frees the turn', async () => {
    fail = 'broken';
    for (const path of routes()) {
      for (const method of ['GET', 'HEAD']) {
        const res = await get(path, { method });
        expect(res.status, `${method} ${path}`).toBe(503);
        expect(res.headers.get('retry-after'), `${method} ${path}`).toBe('1');
        expect(await res.text(), path).not.toContain('secret');
      }
    }
    // The text is the operator's: in the log (once a minute).
    expect(log.lines().filter((l) => String(l.msg).includes('read API request failed')).map((l) => l.err)).toEqual(['SQLITE_IOERR: /secret/path']);
  });

  it('neither answers nor logs a read whose reader left', async () => {
    fail = 'slow';
    const before = log.lines().length;
    for (const path of routes()) {
      const left = get(path, { signal: AbortSignal.timeout(100) });
      await expect(left).rejects.toThrow();
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(log.lines().slice(before).filter((l) => String(l.msg).includes('read API request failed'))).toEqual([]);
    // And the turns came back: a read is answered at once.
    fail = 'timeout';
    expect((await get(`/v1/traces/${traceId}`)).status).toBe(503);
  });
});
