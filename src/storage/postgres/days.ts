// Which days a batch touches, read from its encoded bytes (the partition key is each tuple's first
// field), so that missing partitions can be created before the rows arrive, without a round trip
// to ask the staging table. The decode workers read each chunk's days as they encode it
// (EncodedChunk.days): there its bytes are still in the cache, where the main thread's walk over
// every field of every tuple met them cold (docs/performance.md, phase AE).
import { NS_PER_DAY, type CopyFormat } from './columns.ts';

/** Calls visit with the first field (the row's time) of every tuple in an encoded chunk. */
function eachTupleTime(chunk: Uint8Array, format: CopyFormat, visit: (ns: bigint) => void): void {
  if (format === 'binary') {
    const v = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let p = 0;
    while (p + 2 <= chunk.byteLength) {
      const fields = v.getInt16(p);
      p += 2;
      if (fields < 1) break;
      visit(v.getBigInt64(p + 4));
      for (let i = 0; i < fields; i++) {
        const len = v.getInt32(p);
        p += 4 + (len > 0 ? len : 0);
      }
    }
  } else {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let p = 0;
    while (p < buf.length) {
      const tab = buf.indexOf(9, p);
      if (tab < 0) break;
      visit(BigInt(buf.toString('latin1', p, tab)));
      const nl = buf.indexOf(10, tab);
      if (nl < 0) break;
      p = nl + 1;
    }
  }
}

/** Day numbers (days since 1970-01-01 UTC) of the first column of every tuple in the chunks. */
export function chunkDays(chunks: Uint8Array[], format: CopyFormat): Set<number> {
  const days = new Set<number>();
  let lastLo = -1n;
  let lastHi = -1n;
  const add = (ns: bigint): void => {
    // Consecutive rows mostly fall in the same day: skip the division then.
    if (ns >= lastLo && ns < lastHi) return;
    const q = ns / NS_PER_DAY;
    const day = ns < 0n && q * NS_PER_DAY !== ns ? q - 1n : q;
    lastLo = day * NS_PER_DAY;
    lastHi = lastLo + NS_PER_DAY;
    days.add(Number(day));
  };
  for (const chunk of chunks) eachTupleTime(chunk, format, add);
  return days;
}

/** The tuples (rows) in an encoded chunk, read from its bytes as chunkDays reads their days; those before the first undecodable one. */
export function chunkRows(chunk: Uint8Array, format: CopyFormat): number {
  let rows = 0;
  try {
    eachTupleTime(chunk, format, () => rows++);
  } catch {
    // A malformed time field (text): the rows before it are counted.
  }
  return rows;
}
