// An OTLP/HTTP refusal answered before the body is all read (an encoding or content type the
// receiver does not take, a declared size over the limit, an overloaded collector) must reach a
// client that is still sending that body. Go's HTTP client (the OTel Go SDK's otlptracehttp, the
// Collector's otlphttp exporter, e.g. with `compression: snappy`) writes the body while it waits
// for the answer; when the server closes its socket with body bytes still arriving, the kernel
// resets the connection and Go reports the write's "broken pipe" instead of the answer (3 of 10
// tries with a 20 MB snappy body): the 415 or 413 that says why is lost, and a 503 becomes an
// error the Go SDK does not retry. A client sending on after the answer must see the server's
// FIN, never a reset.
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type TestCollector } from '../helpers/collector.ts';

const LIMIT = 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

interface Outcome {
  /** The answer's status line. */
  status: string;
  /** The socket error the client met while it went on sending (EPIPE, ECONNRESET), if any. */
  error: string | undefined;
}

/**
 * Sends a request head declaring `bodyBytes` and the body's first 64 KiB, then, once the answer's
 * head is in, 16 more pieces of 64 KiB 10 ms apart, as a client whose writer has not yet seen
 * the answer, and then its end.
 */
function sendOnAfterAnswer(url: string, headers: Record<string, string>, bodyBytes: number): Promise<Outcome> {
  const { hostname, port } = new URL(url);
  return new Promise<Outcome>((resolve) => {
    // Go's transport goes on writing after the server's FIN too (its writer does not read).
    const s = createConnection({ host: hostname, port: Number(port), allowHalfOpen: true });
    let received = '';
    let error: string | undefined;
    let sendingOn = false;
    s.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
    s.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      if (sendingOn || !received.includes('\r\n\r\n')) return;
      sendingOn = true;
      void (async () => {
        for (let i = 0; i < 16 && !s.destroyed; i++) {
          s.write(CHUNK);
          await new Promise((r) => setTimeout(r, 10));
        }
        if (!s.destroyed) s.end();
      })();
    });
    s.on('close', () => resolve({ status: received.split('\r\n')[0] ?? '', error }));
    const head = Object.entries({ host: `${hostname}:${port}`, 'content-length': String(bodyBytes), ...headers })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    s.write(`POST /v1/traces HTTP/1.1\r\n${head}\r\n`);
    s.write(CHUNK);
  });
}

describe('OTLP/HTTP: a refusal while the client is still sending its body', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'receiver.maxMessageBytes': String(LIMIT) });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('reaches the client and closes the connection with a FIN, not a reset (415 encoding, 415 type, 413 declared size)', async () => {
    const cases: [Record<string, string>, number, string][] = [
      [{ 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' }, 8 * LIMIT, '415'],
      [{ 'content-type': 'application/protobuf' }, 8 * LIMIT, '415'],
      [{ 'content-type': 'application/x-protobuf' }, 8 * LIMIT, '413'],
    ];
    for (const [headers, bytes, code] of cases) {
      const out = await sendOnAfterAnswer(c.httpUrl, headers, bytes);
      expect(out, JSON.stringify(headers)).toEqual({ status: `HTTP/1.1 ${code} ${code === '415' ? 'Unsupported Media Type' : 'Payload Too Large'}`, error: undefined });
    }
  });

  it('still serves requests afterwards', async () => {
    const r = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(r.status).toBe(200);
  });
});

describe('OTLP/HTTP: a stop while a refused client is still sending its body', () => {
  it('does not wait out the lingering close (the client has its answer; the stop takes well under its 2 s)', async () => {
    const c = await startCollector({ 'receiver.maxMessageBytes': String(LIMIT) });
    const { hostname, port } = new URL(c.httpUrl);
    const s = createConnection({ host: hostname, port: Number(port), allowHalfOpen: true });
    let received = '';
    s.on('error', () => undefined);
    const answered = new Promise<void>((resolve) =>
      s.on('data', (d: Buffer) => {
        received += d.toString('latin1');
        if (received.includes('\r\n\r\n')) resolve();
      }),
    );
    s.write(`POST /v1/traces HTTP/1.1\r\nhost: ${hostname}:${port}\r\ncontent-type: application/protobuf\r\ncontent-length: ${1024 * LIMIT}\r\n\r\n`);
    await answered;
    // A client sending on (a large body at its own pace) while the collector stops.
    const sending = setInterval(() => void (s.destroyed || s.write(CHUNK)), 10);
    try {
      const t0 = Date.now();
      await c.stop();
      expect(Date.now() - t0).toBeLessThan(1_000);
    } finally {
      clearInterval(sending);
      s.destroy();
    }
    expect(received.split('\r\n')[0]).toBe('HTTP/1.1 415 Unsupported Media Type');
  });
});
