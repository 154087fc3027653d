// The read API answers at most query.maxConcurrentReads byte-bounded reads (a trace, a Jaeger
// search's traces, a log search) at once; the others wait their turn. What a reader sees of it.
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { QueryServer } from '../../src/query/server.ts';
import { Authenticator } from '../../src/security/auth.ts';
import { TokenStore } from '../../src/security/tokens.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { memoryBackend } from '../helpers/backends.ts';
import { makeSpan, writeSpans } from '../helpers/rows.ts';
import { slowTraceReads, type SlowReads } from '../helpers/slow-reads.ts';
import { tempDir } from '../helpers/tmp.ts';

/** Sends raw request bytes on one connection and resolves with what came back when it closes (or after `ms`). */
function raw(port: number, text: string, ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = connect(port, '127.0.0.1', () => s.write(text));
    s.on('data', (d) => (got += d.toString('latin1')));
    const done = () => resolve(got);
    s.on('close', done);
    s.on('error', done);
    setTimeout(() => {
      s.destroy();
    }, ms);
  });
}

describe('read API turns for byte-bounded reads', () => {
  let store: StorageBackend;
  let server: QueryServer;
  let port: number;
  let traceId: string;
  let slow: SlowReads;
  const registry = new Registry();
  const waiting = async () => Number(/^tracehouse_query_waiting_reads (\d+)$/m.exec(await registry.metrics())?.[1]);
  beforeAll(async () => {
    store = await memoryBackend();
    const span = makeSpan({ serviceName: 'svc' });
    traceId = span.traceId;
    await writeSpans(store, [span]);
    slow = slowTraceReads(store, 150);
    server = new QueryServer({ listen: '127.0.0.1:0', maxLimit: 20, maxSpansPerTrace: 100, maxSpansPerSearch: 1000, maxConcurrentReads: 1 }, store, pino({ level: 'silent' }), registry);
    await server.start();
    port = server.boundPort;
  });
  afterAll(async () => {
    await server.shutdown();
    await store.shutdown();
  });

  it('holds a trace read asked for with an absolute-form target to the same turns', async () => {
    slow.most = 0;
    const ask = (target: string) => raw(port, `GET ${target} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n\r\n`);
    const answers = await Promise.all([
      ask(`/v1/traces/${traceId}`),
      ask(`http://127.0.0.1:${port}/v1/traces/${traceId}`),
      ask(`/v1/./traces/${traceId}`),
    ]);
    for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 200/);
    expect(slow.most).toBe(1);
  });

  it('skips the read of a client that left while it waited, and answers the next', async () => {
    slow.reads = 0;
    slow.delayMs = 1500;
    onTestFinished(() => {
      slow.delayMs = 150;
    });
    const req = (ms?: number) => raw(port, `GET /v1/traces/${traceId} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n\r\n`, ms);
    const first = req();
    await new Promise((r) => setTimeout(r, 20));
    const gone = req(40);
    await new Promise((r) => setTimeout(r, 20));
    const last = req();
    // The one that left is out of the line at once (while the first read still runs); the last waits.
    expect(await gone).toBe('');
    await expect.poll(waiting, { timeout: 2000 }).toBe(1);
    expect(await first).toMatch(/^HTTP\/1\.1 200/);
    expect(await last).toMatch(/^HTTP\/1\.1 200/);
    expect(slow.reads).toBe(2);
    expect(await waiting()).toBe(0);
  });

  it('skips the reads of a connection that left with several pipelined', async () => {
    slow.reads = 0;
    const one = `GET /v1/traces/${traceId} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`;
    const busy = raw(port, one + 'GET /v1/traces/' + traceId + ' HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n');
    await new Promise((r) => setTimeout(r, 20));
    await raw(port, one + one + one, 40);
    expect(await busy).toMatch(/^HTTP\/1\.1 200[^]*HTTP\/1\.1 200/);
    // Long enough for three more reads of 150 ms each.
    await new Promise((r) => setTimeout(r, 600));
    expect(slow.reads).toBe(2);
  });

  it('answers a read without a token 401 at once, not after the reads ahead of it', async () => {
    const file = join(tempDir(), 'tokens.yaml');
    const token = 'reader-token-0123456789';
    writeFileSync(file, `tokens:\n  - token: "${token}"\n    tenant: default\n    scopes: [read]\n`);
    const tokens = new TokenStore(file, 60_000, pino({ level: 'silent' }));
    const guarded = new QueryServer(
      { listen: '127.0.0.1:0', maxLimit: 20, maxSpansPerTrace: 100, maxSpansPerSearch: 1000, maxConcurrentReads: 1, auth: new Authenticator('query', tokens, undefined) },
      store,
      pino({ level: 'silent' }),
    );
    await guarded.start();
    try {
      const p = guarded.boundPort;
      const ask = (auth: string) => raw(p, `GET /v1/traces/${traceId} HTTP/1.1\r\nhost: 127.0.0.1:${p}\r\n${auth}connection: close\r\n\r\n`);
      const reading = ask(`authorization: Bearer ${token}\r\n`);
      await new Promise((r) => setTimeout(r, 20));
      const refused = await ask('');
      expect(refused).toMatch(/^HTTP\/1\.1 401/);
      // The read that holds the only turn is still going when the 401 arrives.
      expect(slow.running).toBe(1);
      expect(await reading).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      await guarded.shutdown();
      tokens.shutdown();
    }
  });
});
