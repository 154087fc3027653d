// The row boundaries a batch refused as too large (HTTP 413) is split at: every row the
// ClickHouse encoder writes, spans with events, links and every kind of attribute value included.
import { describe, expect, it } from 'vitest';
import { asChunks, rowsOf } from '../../src/storage/clickhouse/split.ts';
import { loadRowEncoder } from '../../src/storage/encoders.ts';
import { makeLog, makeTrace } from '../helpers/rows.ts';

describe('clickhouse split rows', () => {
  it("finds each row of the encoder's chunks and joins neighbours back into the chunks", async () => {
    const encoder = await loadRowEncoder({ name: 'clickhouse', options: { partitions: 1 } });
    const spans = encoder.encodeSpans([...makeTrace(5), ...makeTrace(3)]);
    const logs = encoder.encodeLogs(Array.from({ length: 7 }, () => makeLog()));
    for (const [signal, chunks] of [['traces', spans], ['logs', logs]] as const) {
      const data = chunks.map((c) => c.data);
      const rows = rowsOf(signal, data);
      expect(rows).toHaveLength(chunks.reduce((n, c) => n + c.rows, 0));
      expect(Buffer.concat(rows)).toEqual(Buffer.concat(data));
      expect(asChunks(rows).map((c) => Buffer.from(c))).toEqual(data.map((c) => Buffer.from(c)));
    }
  });

  it('refuses a chunk that ends inside a row', async () => {
    const encoder = await loadRowEncoder({ name: 'clickhouse', options: { partitions: 1 } });
    const [chunk] = encoder.encodeLogs([makeLog()]);
    expect(() => rowsOf('logs', [chunk!.data.subarray(0, chunk!.data.length - 1)])).toThrow(/ends inside/);
  });
});
