// createZstdFrames (src/common/zstd.ts): every frame read, in order, also by a slow reader; no more
// held than about its highWaterMark for a reader that does not read (an import whose store is
// slow); and nothing more inflated once destroyed (the receiver stops a body at its limit): before,
// the destroyed decompressor's write callback started a decompressor of its own on the rest.
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createZstdFrames } from '../../src/common/zstd.ts';

/** One zstd frame of `blocks` RLE blocks of 128 KiB of zeros: 4 bytes each. */
function rleFrame(blocks: number): Buffer {
  const head = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50]); // no content size, window 1 MiB
  const body = Buffer.alloc(blocks * 4);
  for (let i = 0; i < blocks; i++) body.writeUIntLE(((128 << 10) << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0), i * 4, 3);
  return Buffer.concat([head, body]);
}

describe('createZstdFrames after destroy', () => {
  it('builds a valid frame', () => {
    expect(zstdDecompressSync(rleFrame(8)).byteLength).toBe(8 * 128 << 10);
  });

  it('stops inflating when destroyed at its first output (as the receiver does past the limit)', async () => {
    // A first frame of one output chunk, then 2 GiB of zeros in 64 KiB.
    const body = Buffer.concat([zstdCompressSync(Buffer.alloc(16 << 10)), rleFrame(16 * 1024)]);
    const t = createZstdFrames();
    t.on('error', () => {});
    let outputs = 0;
    const destroyed = new Promise<void>((resolve) => t.on('data', () => { outputs++; t.destroy(); resolve(); }));
    t.write(body);
    await destroyed;
    const cpu0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 1000));
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    expect(outputs).toBe(1);
    // Nothing left to do: an idle second, not a decompressor inflating the remaining 2 GiB.
    expect(cpuMs).toBeLessThan(150);
  });
});

describe('createZstdFrames backpressure', () => {
  it('holds no more than about its highWaterMark for a reader that does not read (as node:zlib does)', async () => {
    // 256 MiB of zeros in 8 KiB of zstd, one write, nobody reading yet (an import whose store is slow).
    const t = createZstdFrames();
    t.on('error', () => {});
    t.write(rleFrame(2048));
    await new Promise((r) => setTimeout(r, 1500));
    const held = t.readableLength;
    t.destroy();
    expect(held).toBeLessThan(4 << 20);
  });
});

describe('createZstdFrames with a slow reader', () => {
  it('reads every frame in order', async () => {
    const { randomBytes } = await import('node:crypto');
    const parts = [0, 1, 2, 3].map(() => Buffer.concat([randomBytes(300 << 10), Buffer.alloc(300 << 10, 7)]));
    const t = createZstdFrames();
    t.end(Buffer.concat(parts.map((p) => zstdCompressSync(p))));
    const out: Buffer[] = [];
    for await (const c of t) {
      out.push(c as Buffer);
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(Buffer.concat(out).equals(Buffer.concat(parts))).toBe(true);
  });
});
