// HTTP/1.1 pipelining as a flood: one write of thousands of requests on each connection. Node
// parses every request a received chunk holds and hands each to the handler at once; its own
// back-pressure only counts answers already written, so an asynchronous handler (/metrics, every
// read API query) started them all together, and a few dozen connections ran the process out of heap.
import { connect, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { metricValue } from '../helpers/collector.ts';
import { spawnCollector } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

/** Opens a connection and writes `count` pipelined GETs of `path` (or these request bytes) in one go, never reading the answers. */
function flood(base: string, path: string | Buffer, count: number): Socket {
  const url = new URL(base);
  const s = connect(Number(url.port), url.hostname);
  s.on('error', () => {});
  s.pause();
  const one = typeof path === 'string' ? Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`) : path;
  s.write(Buffer.concat(Array<Buffer>(count).fill(one)));
  return s;
}

/** Writes `count` pipelined GETs of `path` on one connection and resolves to the status lines answered. */
function pipelined(base: string, path: string, count: number): Promise<string[]> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const s = connect(Number(url.port), url.hostname);
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const lines = got.match(/^HTTP\/1\.1 \d+/gm) ?? [];
      if (lines.length === count) s.end();
    });
    s.on('error', () => {});
    s.on('close', () => resolve(got.match(/^HTTP\/1\.1 \d+/gm) ?? []));
    s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`.repeat(count));
  });
}

describe('HTTP/1.1 pipelined request floods', () => {
  it('do not run the collector out of memory: 40 connections of 20,000 pipelined /metrics scrapes, a 192 MiB heap', async () => {
    // 192 MiB: without the limit the collector still dies (3 of 3); 128 MiB was at the edge with
    // it on a loaded machine (a CI run beside other work), as in the case below.
    const c = await spawnCollector({ 'storage.sqlite.path': join(tempDir('pipelined-flood-'), 'th.db') }, 20_000, ['--max-old-space-size=192']);
    const attackers = Array.from({ length: 40 }, () => flood(c.opsUrl, '/metrics', 20_000));
    try {
      await new Promise((r) => setTimeout(r, 3000));
      expect([c.child.exitCode, c.child.signalCode]).toEqual([null, null]);
      expect((await fetch(`${c.opsUrl}/healthz`)).status).toBe(200);
    } finally {
      for (const a of attackers) a.destroy();
    }
    // A client that pipelines a few requests is still answered, in full.
    expect(await pipelined(c.opsUrl, '/metrics', 4)).toEqual(Array(4).fill('HTTP/1.1 200'));
    c.child.kill('SIGTERM');
    await c.exited;
  }, 30_000);

  it('do not run it out of memory through Expect: 100-continue either: 200 connections of 4,000 pipelined gzip exports each asking to continue', async () => {
    // The OTLP/HTTP receiver answers such requests from its own 'checkContinue' handler, which
    // went around the count: each export's inflation ran at once, and the collector died (SIGABRT).
    // A 256 MiB heap: it still dies without the count (4 of 4 runs), and with it 128 MiB was at the
    // edge on a loaded machine (the rest of a 64 KiB chunk's requests is parsed after the connection
    // is closed, and held until it closes): 10 of 21 runs died under a CI run beside them, and at
    // 192 MiB one fresh-clone CI run of nine (2026-12-07 14:05, SIGABRT) did.
    const c = await spawnCollector({ 'storage.sqlite.path': join(tempDir('pipelined-flood-'), 'th.db') }, 20_000, ['--max-old-space-size=256']);
    const gz = gzipSync('{}');
    const one = Buffer.concat([Buffer.from(`POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nExpect: 100-continue\r\nContent-Length: ${gz.byteLength}\r\n\r\n`), gz]);
    const attackers = Array.from({ length: 200 }, () => flood(c.httpUrl, one, 4_000));
    try {
      await new Promise((r) => setTimeout(r, 3000));
      expect([c.child.exitCode, c.child.signalCode]).toEqual([null, null]);
      expect((await fetch(`${c.opsUrl}/healthz`)).status).toBe(200);
      // The exports left unanswered on the closed connections are counted as refused, one a connection.
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'http', reason: 'pipelined' })).toBeGreaterThan(0);
    } finally {
      for (const a of attackers) a.destroy();
    }
    c.child.kill('SIGTERM');
    await c.exited;
  }, 30_000);
});
