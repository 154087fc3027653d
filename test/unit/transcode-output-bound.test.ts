// A request's store bytes are bounded: every store repeats a resource per scope or row, so one huge
// resource over many small items would otherwise grow a decode worker's output without bound. The
// bound is the writer's queue budget (here 1 MiB) or 64 times the request, whichever is more.
import { describe, expect, it } from 'vitest';
import { WireWriter } from '../../src/pipeline/decode/index.ts';
import { OUTPUT_FACTOR, OutputTooLargeError } from '../../src/pipeline/transcode/byte-out.ts';
import { createEncoder as copyEncoder } from '../../src/pipeline/transcode/copy/index.ts';
import type { RequestEncoder } from '../../src/pipeline/transcode/encoder.ts';
import { createEncoder as otlpEncoder } from '../../src/pipeline/transcode/otlp/index.ts';
import { createEncoder as rowBinaryEncoder } from '../../src/pipeline/transcode/rowbinary/index.ts';

const LIMITS = { maxNestingDepth: 100, maxStoreBytes: 1 << 20 };

/** An ExportTraceServiceRequest: one resource with an attribute of resourceBytes, then scopes × spans minimal spans. */
function request(resourceBytes: number, scopes: number, spans: number): Uint8Array {
  const w = new WireWriter().fork();
  w.fork().fork().stringField(1, 'big').fork().stringField(1, 'x'.repeat(resourceBytes)).join(2).join(1).join(1);
  for (let s = 0; s < scopes; s++) {
    w.fork();
    for (let i = 0; i < spans; i++) w.fork().bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(i % 250 + 1)).join(2);
    w.join(2);
  }
  return w.join(1).finish();
}

const ENCODERS: [string, RequestEncoder, number, number][] = [
  // One scope per span for the memory and SQLite chunk (it keeps a resource per scope), one scope of many spans for the others (a resource per row).
  ['memory / SQLite chunk', otlpEncoder({}, LIMITS), 2000, 1],
  ['PostgreSQL COPY', copyEncoder({ format: 'binary' }, LIMITS), 1, 2000],
  ['ClickHouse RowBinary', rowBinaryEncoder({ partitions: 1 }, LIMITS), 1, 2000],
];

describe('store bytes bounded by the request', () => {
  it.each(ENCODERS)('%s: refuses a request of one 64 KiB resource over 2,000 items as too large', (_name, encoder, scopes, spans) => {
    const body = request(65_536, scopes, spans);
    expect(body.byteLength * OUTPUT_FACTOR).toBeLessThan(LIMITS.maxStoreBytes * 16);
    expect(() => encoder.encode('traces', 'protobuf', body)).toThrow(OutputTooLargeError);
    // The same encoder takes the next request as usual.
    expect(encoder.encode('traces', 'protobuf', request(100, scopes, spans)).accepted).toBe(scopes * spans);
  });

  it.each(ENCODERS)('%s: takes a resource of 256 bytes over 2,000 items, inside the bound', (_name, encoder, scopes, spans) => {
    expect(encoder.encode('traces', 'protobuf', request(256, scopes, spans)).accepted).toBe(2000);
  });

  it('lets a request take up to 64 times its size when that is more than the budget', () => {
    // A 1 KiB resource over 40,000 spans of ids alone: ~37 times its size in COPY tuples.
    const body = request(1024, 1, 40_000);
    expect(copyEncoder({ format: 'binary' }, { maxNestingDepth: 100, maxStoreBytes: 1024 }).encode('traces', 'protobuf', body).accepted).toBe(40_000);
  });
});
