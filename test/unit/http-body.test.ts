// The OTLP/HTTP receiver's body buffer: a body read from a real node:http request comes out
// byte for byte, and the pieces Node hands over are freed once copied (each is a copy of its own
// of the parser's read buffer), so they stop counting towards V8's external-memory trigger for
// full collections. Pieces the body does not own (an inflater's output) and views into a larger
// buffer are left alone.
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writer, type Reservation } from '../../src/pipeline/writer.ts';
import { BodyBuffer } from '../../src/receiver/http.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { gated, memoryBackend } from '../helpers/backends.ts';

/** Room without limit: the budget is not what these cases are about. */
const room = { bytes: 0, grow: () => true } as unknown as Reservation;

/** Whether a view's memory has been freed (its ArrayBuffer detached). */
const freed = (v: Uint8Array): boolean => (v.buffer as ArrayBuffer).detached;

/** Sends body to a local server and reads it there into a BodyBuffer; the pieces Node emitted and the body taken. */
async function receive(body: Buffer, ownsChunks: boolean): Promise<{ pieces: Buffer[]; taken: Uint8Array }> {
  let got: { pieces: Buffer[]; taken: Uint8Array } | undefined;
  const server = createServer((req: IncomingMessage, res) => {
    const buffer = new BodyBuffer(room, Number(req.headers['content-length']), ownsChunks);
    const pieces: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      pieces.push(c);
      expect(buffer.push(c)).toBe(true);
    });
    req.on('end', () => {
      got = { pieces, taken: buffer.take() };
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await new Promise<void>((resolve, reject) => {
      const req = request({ port: (server.address() as AddressInfo).port, method: 'POST', headers: { 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(body);
    });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
  return got!;
}

const body = Buffer.from(Array.from({ length: 700_000 }, (_, i) => (i * 31 + (i >> 9)) & 0xff));

describe('BodyBuffer', () => {
  it('takes a body of many socket reads byte for byte and frees each piece once copied', async () => {
    const { pieces, taken } = await receive(body, true);
    expect(pieces.length).toBeGreaterThan(3);
    expect(Buffer.from(taken).equals(body)).toBe(true);
    // Every piece was the whole of a buffer of its own, and is freed now.
    for (const p of pieces) expect(freed(p)).toBe(true);
    expect(freed(taken)).toBe(false);
  });

  it('leaves pieces it does not own to the garbage collector', async () => {
    const { pieces, taken } = await receive(body, false);
    expect(Buffer.from(taken).equals(body)).toBe(true);
    for (const p of pieces) expect(freed(p)).toBe(false);
  });

  it('takes charge bytes of queue room per byte held, and refuses a piece once the queue has none', async () => {
    const gate = gated(await memoryBackend());
    const writer = new Writer(gate.backend, { maxBatchRows: 100, flushIntervalMs: 5, maxInFlightBatches: 1, maxQueueBytes: 64 * 1024, retryInitialMs: 1, retryMaxMs: 5, retryMaxElapsedMs: 0, writeTimeoutMs: 5000 }, createMetrics(), pino({ level: 'silent' }));
    try {
      const other = writer.reserve(8 * 1024)!;
      const json = new BodyBuffer(writer.reserve(0)!, undefined, false, 8);
      expect(json.push(Buffer.alloc(4096, 1))).toBe(true);
      expect(writer.queueBytes).toBe(8 * 1024 + 8 * 4096);
      // 8 × 4 KiB more would pass 64 KiB beside the other request: refused, holding what it had.
      expect(json.push(Buffer.alloc(4096, 2))).toBe(false);
      expect(json.bytes).toBe(4096);
      expect(writer.queueBytes).toBe(8 * 1024 + 8 * 4096);
      // The same pieces at a charge of one fit.
      const protobuf = new BodyBuffer(writer.reserve(0)!, undefined, false);
      expect(protobuf.push(Buffer.alloc(4096, 1))).toBe(true);
      expect(protobuf.push(Buffer.alloc(4096, 2))).toBe(true);
      other.release();
    } finally {
      gate.open();
      await writer.shutdown(1000);
    }
  });

  it('keeps small and large pieces in order, gathering the small ones, with or without a declared length', () => {
    // Sizes around the small-piece bound and the tail's size, mixed, so tails fill, close on a
    // large piece and start again.
    const sizes = [1, 1, 3, 5000, 1, 2, 4095, 4096, 7, ...Array.from({ length: 40 }, (_, i) => (i * 977) % 3000 + 1), 70_000, 1, 65_535, 2, 3];
    const pieces = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    const whole = Buffer.concat(pieces);
    for (const declared of [undefined, whole.length]) {
      const b = new BodyBuffer(room, declared, true);
      for (const p of pieces) expect(b.push(Buffer.from(p))).toBe(true);
      expect(Buffer.from(b.take()).equals(whole), `declared ${declared}`).toBe(true);
    }
  });

  it('holds about what a body of a few small pieces sent, not a whole tail buffer each', () => {
    // A client that sends a couple of one-byte chunks and stalls (up to receiver.http's body
    // timeout) is charged 2 bytes of queue room: what the body holds must stay near that, or
    // many such connections hold memory no budget sees.
    const before = process.memoryUsage().arrayBuffers;
    const bodies: BodyBuffer[] = [];
    for (let i = 0; i < 1000; i++) {
      const b = new BodyBuffer(room, undefined, true);
      expect(b.push(Buffer.alloc(1, 1))).toBe(true);
      expect(b.push(Buffer.alloc(1, 2))).toBe(true);
      bodies.push(b);
    }
    const held = process.memoryUsage().arrayBuffers - before;
    expect(held).toBeLessThan(1024 * 1024);
    for (const b of bodies) expect(Buffer.from(b.take()).equals(Buffer.from([1, 2]))).toBe(true);
  });

  it('never frees a view into a larger buffer, nor the body it returns', () => {
    const shared = Buffer.allocUnsafeSlow(64);
    shared.fill(7);
    const withLength = new BodyBuffer(room, 96, true);
    expect(withLength.push(shared.subarray(0, 32))).toBe(true);
    const whole = Buffer.alloc(64, 9);
    expect(withLength.push(whole)).toBe(true);
    const out = withLength.take();
    expect(out.length).toBe(96);
    expect(freed(shared)).toBe(false);
    expect(freed(whole)).toBe(true);
    expect(freed(out)).toBe(false);
    // Without a declared length a lone piece that is its whole buffer is the body itself.
    const lone = new BodyBuffer(room, undefined, true);
    const only = Buffer.alloc(40, 3);
    expect(lone.push(only)).toBe(true);
    expect(lone.take()).toBe(only);
    expect(freed(only)).toBe(false);
  });
});
