// What a collector does at start with a write-ahead log left by a crash: recorded batches go to
// the store as they are (Writer.submit, same ids), loose entries through the writer in slices
// that fit writer.maxQueueBytes even when the log holds several times that; all of it stored
// once, the log emptied, and new exports answered meanwhile.
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WriteAheadLog } from '../../src/pipeline/wal/index.ts';
import { createEncoder } from '../../src/storage/rowjson.ts';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { storedInSqlite } from '../helpers/process.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { makeLog, makeSpan } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';

describe('start-up replay of a write-ahead log', () => {
  it('stores every entry once, recorded batches under their ids and a backlog larger than the queue in slices', async () => {
    const dir = tempDir('wal-start-');
    const walDir = join(dir, 'wal');
    const db = join(dir, 'th.db');
    const service = 'replayed';
    const encoder = createEncoder();
    // The dead process: 200 requests appended (about 4 MiB of rows), two batches recorded, nothing stored.
    const wal = new WriteAheadLog({ dir: walDir, maxBytes: 256 << 20, segmentBytes: 1 << 20 });
    await wal.start();
    const spanSeqs: { seq: number; chunk: Uint8Array; rows: number }[] = [];
    let logs = 0;
    for (let i = 0; i < 200; i++) {
      if (i % 4 === 3) {
        const chunks = encoder.encodeLogs(Array.from({ length: 20 }, (_, k) => makeLog({ serviceName: service, body: { stringValue: `log-${i}-${k}` } })));
        await wal.append('logs', chunks);
        logs += 20;
      } else {
        const chunks = encoder.encodeSpans(Array.from({ length: 20 }, () => makeSpan({ serviceName: service, attributes: [{ key: 'pad', value: { stringValue: randomBytes(400).toString('hex') } }] })));
        const seq = await wal.append('traces', chunks);
        spanSeqs.push({ seq, chunk: chunks[0]!.data, rows: chunks[0]!.rows });
      }
    }
    for (const part of [spanSeqs.slice(0, 5), spanSeqs.slice(5, 10)]) {
      const chunks = part.map((p) => p.chunk);
      const rows = part.reduce((n, p) => n + p.rows, 0);
      await wal.recordBatch({ signal: 'traces', partition: 0, tenant: DEFAULT_TENANT, rows, bytes: chunks.reduce((n, c) => n + c.byteLength, 0), chunks, batchId: `batch-${rows}-${part[0]!.seq}` }, part.map((p) => ({ entry: p.seq, index: 0 })));
    }
    await wal.shutdown();

    const c = await startCollector({ 'storage.backend': 'sqlite', 'storage.sqlite.path': db, 'writer.maxQueueBytes': String(1 << 20), 'writer.maxBatchRows': '500' });
    onTestFinished(async () => void (await c.stop()));
    // A new export while the backlog is written is answered at once: taken, or refused as retryable while the queue is full.
    const live = await fetch(c.httpUrl + '/v1/traces', {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'live' } }] }, scopeSpans: [{ spans: [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'op', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }] }] }] }),
    });
    expect([200, 503]).toContain(live.status);
    const spans = spanSeqs.length * 20;
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_wal_pending_entries')) === 0 ? true : undefined), 20_000, 'the log emptied');
    const stored = storedInSqlite(db, service);
    expect([...stored.spansByTrace.values()].reduce((a, b) => a + b, 0)).toBe(spans);
    expect(stored.logCopies.size).toBe(logs);
    expect([...stored.logCopies.values()].every((n) => n === 1)).toBe(true);
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
  });
});
