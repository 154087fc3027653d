// HEAD of a trace (a link checker, a proxy's health probe, `curl -I`): it was answered by building
// the whole answer (every span read, translated and serialised) only for Node to throw the body
// away. RFC 9110 9.3.2 lets a HEAD omit Content-Length when only making the content would tell it:
// the status needs only to know whether the trace has a span, so one span is read and no body made.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { writeBigAndSmall } from '../helpers/slow-reads.ts';

function head(port: number, path: string): Promise<{ status: number; headers: Record<string, unknown>; ms: number }> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'HEAD', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, ms: performance.now() - t }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HEAD of a trace', () => {
  let store: StorageBackend;
  let server: QueryServer;
  let big: string;
  /** The span bound (max) of each trace read the store was asked for. */
  const reads: number[] = [];
  beforeAll(async () => {
    store = await memoryBackend();
    ({ big } = await writeBigAndSmall(store, 5000));
    const readTrace = store.readTrace.bind(store);
    store.readTrace = (...args) => {
      reads.push(args[2]);
      return readTrace(...args);
    };
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 20, maxSpansPerTrace: 20_000, maxSpansPerSearch: 50_000 }, store, capturedLogger().logger);
    await server.start();
  }, 60_000);
  afterAll(async () => {
    await server?.shutdown();
    await store?.shutdown();
  });

  for (const path of ['/v1/traces/', '/api/traces/', '/api/v3/traces/']) {
    it(`${path}{id}: answers the status at once, reading one span and making no body`, async () => {
      const t = performance.now();
      const get = await fetch(`http://127.0.0.1:${server.boundPort}${path}${big}`);
      expect(get.status).toBe(200);
      await get.arrayBuffer();
      const getMs = performance.now() - t;
      reads.length = 0;
      const h = await head(server.boundPort, `${path}${big}`);
      expect(h.status).toBe(200);
      expect(h.headers['content-type']).toBe('application/json');
      // No length it would have to make the answer to know, and no lie of 0.
      expect(h.headers['content-length']).toBeUndefined();
      expect(reads).toEqual([1]);
      console.log(`${path}: GET ${getMs.toFixed(0)} ms, HEAD ${h.ms.toFixed(0)} ms`);
      expect(h.ms).toBeLessThan(Math.max(50, getMs / 4));
      // A trace nobody stored is still 404.
      expect((await head(server.boundPort, `${path}${'ab'.repeat(16)}`)).status).toBe(404);
    }, 20_000);
  }
});
