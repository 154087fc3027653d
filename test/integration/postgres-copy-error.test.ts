// PostgreSQL can end a COPY with an error while the collector is still sending its tuples: a
// statement timeout reached on a busy server, an operator's pg_cancel_backend, a value the
// database refuses (a character its encoding lacks). The connection stays open and the server
// skips the rest of the data. pg-copy-streams had queued the rest of a batch to send when the
// socket drained, and on that drain wrote to the connection it had let go of at the error (null):
// a TypeError thrown from a socket event, which ended the collector's process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend, WriteBatch } from '../../src/storage/backend.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend as backend, spanBatch } from '../helpers/postgres-store.ts';
import { makeSpan } from '../helpers/rows.ts';
import type { SpanRow } from '../../src/model/rows.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';

/** Spans whose tuples take far more than the socket buffers hold while the server reads them (~20 MB). */
function bigSpans(): SpanRow[] {
  const big = 'x'.repeat(20_000);
  return Array.from({ length: 1_000 }, () => makeSpan({ attributes: [{ key: 'big', value: { stringValue: big } }] }));
}

function bigBatch(): WriteBatch {
  return spanBatch(bigSpans());
}

describe('postgres: a COPY the server ends with an error while its data is still being sent', () => {
  let url: string;
  let store: StorageBackend;
  const uncaught: string[] = [];
  const note = (err: unknown): void => {
    uncaught.push(String(err));
  };

  beforeAll(async () => {
    url = await createTestDatabase('pgcopyerror');
    store = backend(url);
    await store.start();
    process.on('uncaughtException', note);
  });
  afterAll(async () => {
    process.off('uncaughtException', note);
    await store?.shutdown();
  });

  it('refuses the bad chunk without an exception out of a socket event, and stores the rest', { timeout: 60_000 }, async () => {
    uncaught.length = 0;
    const spans = bigSpans();
    const good = spanBatch(spans);
    // A first tuple the server refuses at once (one field where a span has 22), the large rest behind it.
    const bad = Uint8Array.from([0, 1, 0, 0, 0, 8, ...new Uint8Array(8)]);
    const r = await store.write({ ...good, chunks: [bad, ...good.chunks] });
    // Written again in halves down to a chunk (one request's rows): only the bad one is left out.
    expect(r.kind === 'success' ? `success but ${JSON.stringify(r.dropped?.chunks)}: ${r.dropped?.error.message}` : `${r.kind}: ${r.error.message}`).toMatch(/^success but \[0\]: .*field count/);
    expect(await store.getTrace(TENANT, spans[999]!.traceId)).toHaveLength(1);
    // The socket drains after the answer: wait for it.
    await new Promise((res) => setTimeout(res, 1_000));
    expect(uncaught).toEqual([]);
    const span = makeSpan();
    expect((await store.write(spanBatch([span]))).kind).toBe('success');
    expect(await store.getTrace(TENANT, span.traceId)).toHaveLength(1);
  });

  it('answers a statement timeout reached mid-COPY retryable, without an exception out of a socket event', { timeout: 60_000 }, async () => {
    uncaught.length = 0;
    const short = backend(url, { 'storage.postgres.statementTimeoutMs': '30' });
    await short.start();
    try {
      const r = await short.write({ ...bigBatch(), chunks: [...bigBatch().chunks, ...bigBatch().chunks] });
      expect(r.kind === 'success' ? 'success' : `${r.kind}: ${r.error.message}`).toBe('retryable: canceling statement due to statement timeout');
      await new Promise((res) => setTimeout(res, 1_000));
      expect(uncaught).toEqual([]);
    } finally {
      await short.shutdown();
    }
  });
});
