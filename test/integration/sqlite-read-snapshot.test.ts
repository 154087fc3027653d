// A read thread's read of a trace is several statements: the ids and starts of its spans first
// (to choose the earliest query.maxSpansPerTrace), then the chosen spans. In WAL mode each
// statement on its own sees the file as of when it started, so a batch the write thread committed
// between them (a trace still being exported, a long job's) was in the spans but not in their
// count: the answer held more than query.maxSpansPerTrace spans and no truncation warning. A read
// sees one snapshot of the file from its first statement to its last.
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { READS } from '../../src/storage/sqlite/reads.ts';
import { SqliteStore, openDatabase, openReadOnly } from '../../src/storage/sqlite/store.ts';
import { makeSpan, makeTrace } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

const enc = createEncoder({});

/** The read connection, with `between` run once, as another connection, when the read prepares its first statement matching `at`: a commit landing between two of its statements. */
function commitBetween(db: DatabaseSync, at: RegExp, between: () => void): DatabaseSync {
  let done = false;
  return new Proxy(db, {
    get(target, key) {
      const v = Reflect.get(target, key) as unknown;
      if (key === 'prepare') {
        return (sql: string) => {
          if (!done && at.test(sql)) {
            done = true;
            between();
          }
          return target.prepare(sql);
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe('sqlite reads see one snapshot', () => {
  it('answers a trace read with at most maxSpans spans and their count, while the trace grows', () => {
    const path = join(tempDir(), 'snapshot.db');
    const store = new SqliteStore(openDatabase(path));
    const trace = makeTrace(3);
    expect(store.writeSpans(enc.encodeSpans(trace).map((c) => c.data)).kind).toBe('success');
    const more = [1, 2].map((i) => makeSpan({ traceId: trace[0]!.traceId, parentSpanId: trace[0]!.spanId, serviceName: trace[0]!.serviceName, startTimeUnixNano: trace[0]!.startTimeUnixNano + BigInt(i) }));
    const read = commitBetween(openReadOnly(path), /\bdoc\b/, () => expect(store.writeSpans(enc.encodeSpans(more).map((c) => c.data)).kind).toBe('success'));
    const { spans, total } = READS.readTrace(read, [DEFAULT_TENANT, trace[0]!.traceId, 3]);
    expect(spans.length).toBeLessThanOrEqual(3);
    expect(spans.length).toBe(Math.min(total, 3));
  });
});
