// A client that pipelines large reads on one connection and leaves (or is cut off for taking
// nothing, query.writeStallMs): the answer queued behind the first has no connection of its own,
// and its read turn (query.maxConcurrentReads) must still come back.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { slowTraceReads, writeBigAndSmall, type SlowReads } from '../helpers/slow-reads.ts';

describe('a client that pipelines large reads and leaves', () => {
  let store: StorageBackend;
  let server: QueryServer;
  let big: string;
  let small: string;
  let slow: SlowReads;
  const sockets: Socket[] = [];
  const log = capturedLogger();
  beforeAll(async () => {
    store = await memoryBackend();
    // Several MB of Jaeger JSON each: more than the socket buffers hold.
    ({ big, small } = await writeBigAndSmall(store, 2500));
    slow = slowTraceReads(store, 300, (id) => id === small);
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 20, maxSpansPerTrace: 20_000, maxSpansPerSearch: 50_000, maxConcurrentReads: 2, writeStallMs: 500 }, store, log.logger);
    await server.start();
  }, 60_000);
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await server?.shutdown();
    await store?.shutdown();
  });

  it('gives back the turns of both answers once the connection is closed', async () => {
    // Two large reads in one packet, both running (two turns); the client reads nothing.
    const s = connect(server.boundPort, '127.0.0.1');
    sockets.push(s);
    s.pause();
    s.on('error', () => {});
    const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
    const get = `GET /api/traces/${big} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    s.write(get + get);
    // The first answer is cut off after writeStallMs, which closes the connection.
    await new Promise((r) => setTimeout(r, 1500));
    s.resume();
    await closed;
    await new Promise((r) => setTimeout(r, 200));
    // Both turns are free again: two readers are answered side by side.
    const read = async () => {
      const res = await fetch(`http://127.0.0.1:${server.boundPort}/api/traces/${small}`, { signal: AbortSignal.timeout(5000) });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    };
    await Promise.all([read(), read()]);
    expect(slow.most).toBe(2);
  }, 20_000);
});
