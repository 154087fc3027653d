// Many spans written by today's SQLite store in the test's own thread, for tests of reads that
// must take long (a search the attribute index cannot answer walks every span's document).
import { expect } from 'vitest';
import { createEncoder } from '../../src/storage/rowjson.ts';
import type { SqliteStore } from '../../src/storage/sqlite/store.ts';
import { makeSpan } from './rows.ts';

/** Writes count spans of service, one a second back from now, each its own trace, 5,000 a commit. */
export function writeSpansOneASecond(store: SqliteStore, count: number, service: string): void {
  const enc = createEncoder();
  const now = BigInt(Date.now()) * 1_000_000n;
  for (let i = 0; i < count; i += 5000) {
    const spans = Array.from({ length: Math.min(5000, count - i) }, (_, k) => makeSpan({ serviceName: service, startTimeUnixNano: now - BigInt(i + k) * 1_000_000_000n }));
    expect(store.writeSpans(enc.encodeSpans(spans).map((c) => c.data)).kind).toBe('success');
  }
}
