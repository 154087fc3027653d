// A reader that stops reading a large answer: the answer is written with backpressure
// (sendJsonSliced), so it waits for the client; a client that takes nothing more for
// query.writeStallMs is cut off, and its read turn (query.maxConcurrentReads) goes to the next.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryServer } from '../../src/query/server.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { writeBigAndSmall } from '../helpers/slow-reads.ts';

describe('a reader that stops reading', () => {
  let store: StorageBackend;
  let server: QueryServer;
  let pipelining: QueryServer;
  let big: string;
  let small: string;
  const sockets: Socket[] = [];
  const log = capturedLogger();
  beforeAll(async () => {
    store = await memoryBackend();
    // About 20 MB of Jaeger JSON: more than the kernel's socket buffers hold.
    ({ big, small } = await writeBigAndSmall(store, 5000));
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 20, maxSpansPerTrace: 20_000, maxSpansPerSearch: 50_000, maxConcurrentReads: 1, writeStallMs: 1000 }, store, log.logger);
    await server.start();
    pipelining = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 20, maxSpansPerTrace: 20_000, maxSpansPerSearch: 50_000, writeStallMs: 1000 }, store, log.logger);
    await pipelining.start();
  }, 60_000);
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await server?.shutdown();
    await pipelining?.shutdown();
    await store?.shutdown();
  });

  it('does not hold the read turn: the next reader is answered', async () => {
    // Asks for the large trace and reads nothing.
    const stalled = connect(server.boundPort, '127.0.0.1');
    sockets.push(stalled);
    stalled.pause();
    let got = 0;
    const closed = new Promise<void>((resolve) => stalled.on('close', () => resolve()));
    stalled.on('data', (c: Buffer) => (got += c.length));
    stalled.on('error', () => {});
    stalled.write(`GET /api/traces/${big} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 300));
    const t = performance.now();
    const res = await fetch(`http://127.0.0.1:${server.boundPort}/api/traces/${small}`, { signal: AbortSignal.timeout(8000) });
    expect(res.status).toBe(200);
    expect((await res.json()) as { data: unknown[] }).toMatchObject({ data: [{ traceID: small }] });
    expect(performance.now() - t).toBeLessThan(5000);
    // The stalled reader was cut off: what it reads now ends before the answer's end.
    stalled.resume();
    await closed;
    expect(got).toBeLessThan(20_000_000);
    // And the operator is told why an answer ended early.
    expect(log.lines().flatMap((l) => (l.err === undefined ? [] : [l.err]))).toEqual([expect.stringContaining('took nothing of its answer for 1000 ms')]);
  }, 20_000);

  it('a reader that reads slowly gets a second answer pipelined behind the first whole, however long the first takes', async () => {
    const one = (await (await fetch(`http://127.0.0.1:${pipelining.boundPort}/api/traces/${big}`)).arrayBuffer()).byteLength;
    const s = connect(pipelining.boundPort, '127.0.0.1');
    sockets.push(s);
    const get = `GET /api/traces/${big} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    s.write(get + get.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'));
    let got = 0;
    // About 3 s for the first answer: more than writeStallMs, which the second waits behind it.
    s.on('data', (c: Buffer) => {
      got += c.length;
      s.pause();
      setTimeout(() => s.resume(), 8);
    });
    await new Promise((resolve) => s.on('close', resolve));
    expect(got).toBeGreaterThan(2 * one);
  }, 15_000);
});
