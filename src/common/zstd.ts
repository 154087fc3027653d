// zstd data of one or more frames (RFC 8878, section 3.1: "Zstandard compressed data is made of
// one or more frames"; the Collector's decoder reads them all). Node's decompressor ends at the end
// of its frame and drops whatever followed it in the same write: an OTLP/HTTP body or an import
// file of two frames was read as its first, with no error. Here the rest of such a write starts a
// decompressor of its own.
import { Transform, type TransformCallback } from 'node:stream';
import { createZstdDecompress, type ZstdDecompress } from 'node:zlib';

/** Frames an HTTP body may hold (each costs a decompressor): more is input built to burn CPU. */
const MAX_FRAMES = 1024;

class ZstdFrames extends Transform {
  private frames = 1;
  private readonly maxFrames: number;
  private d = this.frame();

  constructor(maxFrames: number) {
    super();
    this.maxFrames = maxFrames;
  }

  private frame(): ZstdDecompress {
    const d = createZstdDecompress();
    // A reader that does not keep up pauses the decompressor (node:zlib stops inflating then).
    d.on('data', (c: Buffer) => {
      if (!this.push(c)) d.pause();
    });
    d.on('error', (err: Error) => this.destroy(err));
    return d;
  }

  override _transform(chunk: Buffer, enc: BufferEncoding, cb: TransformCallback): void {
    const d = this.d;
    const before = d.bytesWritten;
    d.write(chunk, (err) => {
      if (err) return cb(err);
      // Destroyed meanwhile (the receiver stopped it at its limit): the rest is not inflated.
      if (this.destroyed) return cb();
      const used = d.bytesWritten - before;
      if (used >= chunk.byteLength) return cb();
      // The frame ended inside this chunk: what follows it is the next frame (or not zstd: its error).
      if (++this.frames > this.maxFrames) return cb(new Error(`more than ${this.maxFrames} zstd frames`));
      const next = (): void => {
        this.d = this.frame();
        this._transform(chunk.subarray(used), enc, cb);
      };
      // Its last output may still wait for the reader: the next frame's goes after it.
      if (d.readableLength === 0) next();
      else d.once('end', next);
    });
  }

  override _read(size: number): void {
    this.d.resume();
    super._read(size);
  }

  override _flush(cb: TransformCallback): void {
    this.d.once('end', () => cb());
    this.d.end();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.d.destroy();
    cb(err);
  }
}

/**
 * A streaming zstd decompressor that reads every frame of its input, up to maxFrames (an import
 * file, whose frames an operator made, passes Infinity: `pzstd` writes a frame per chunk of input,
 * and backups appended to one file with `>>` are a frame each).
 */
export function createZstdFrames(maxFrames = MAX_FRAMES): Transform {
  return new ZstdFrames(maxFrames);
}
