// The SQLite store's chunks: the decode worker writes each span's attribute-index terms after the
// records. The records must be the memory store's, byte for byte, and each span's terms exactly
// what the write thread hashes from the span's bytes when a chunk carries none (an older version's
// write-ahead log, OTLP/JSON), on every fixture, on random requests encoded by protobufjs and on
// random wire messages that repeat, reorder and corrupt fields.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DecodeLimits } from '../../src/pipeline/decode/common.ts';
import { WireReader } from '../../src/pipeline/decode/wire.ts';
import { ByteOut } from '../../src/pipeline/transcode/byte-out.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/index.ts';
import { CHUNK_MAGIC, CHUNK_MAGIC_TERMS, nextSpanTerms, readSpanChunk, SPAN_HEAD_BYTES, spanNameLength, spanNameStart, spanRecordEnd } from '../../src/storage/otlp-chunks.ts';
import { RunTerms } from '../../src/storage/sqlite/terms.ts';
import { fixtureBytes, protobufFixtures } from '../helpers/fixtures.ts';
import { arbLogs, arbTraces, encodeLogs, encodeTraces, LIMITS } from '../helpers/otlp-build.ts';
import { arbWireRequest } from '../helpers/otlp-wire-arb.ts';
import { outcome } from '../helpers/transcoder-cases.ts';

/** Each span's record bytes and terms bytes (as written, or hashed from the record as the write thread does when none are). */
function spans(chunk: Uint8Array): { record: string; terms: string }[] {
  const out: { record: string; terms: string }[] = [];
  const hashed = new RunTerms();
  readSpanChunk(chunk, (_g, buf, r, termsAt) => {
    const end = spanRecordEnd(buf, r);
    let terms: string;
    if (termsAt >= 0) terms = buf.subarray(termsAt, nextSpanTerms(buf, termsAt)).toString('hex');
    else {
      hashed.begin();
      hashed.add(new WireReader(buf), r + SPAN_HEAD_BYTES, end);
      const name = spanNameStart(buf, r);
      hashed.addName(buf, name, name + spanNameLength(buf, r));
      const o = new ByteOut(64);
      hashed.writeTo(o);
      terms = Buffer.from(o.buf.subarray(0, o.pos)).toString('hex');
    }
    out.push({ record: buf.subarray(r, end).toString('hex'), terms });
  });
  return out;
}

function expectSameSpansAndTerms(body: Uint8Array, limits: DecodeLimits = LIMITS): void {
  const plain = createEncoder({}, limits);
  const withTerms = createEncoder({ terms: true }, limits);
  const a = outcome(plain, 'traces', 'protobuf', body);
  const b = outcome(withTerms, 'traces', 'protobuf', body);
  if ('error' in a || 'error' in b) {
    expect(b).toEqual(a);
    return;
  }
  expect({ accepted: b.accepted, rejected: b.rejected, errorMessage: b.errorMessage }).toEqual({ accepted: a.accepted, rejected: a.rejected, errorMessage: a.errorMessage });
  const ca = plain.encode('traces', 'protobuf', body).chunks;
  const cb = withTerms.encode('traces', 'protobuf', body).chunks;
  expect(cb.length).toBe(ca.length);
  for (let i = 0; i < ca.length; i++) {
    expect(ca[i]!.data[0]).toBe(CHUNK_MAGIC);
    expect(cb[i]!.data[0]).toBe(CHUNK_MAGIC_TERMS);
    expect(cb[i]!.rows).toBe(ca[i]!.rows);
    // Same records; the terms written are the terms hashed from them.
    expect(spans(cb[i]!.data)).toEqual(spans(ca[i]!.data));
  }
}

describe('otlp encoder with terms (the SQLite store\'s chunks)', () => {
  it.each(protobufFixtures())('fixture %s', (name) => {
    expectSameSpansAndTerms(fixtureBytes(name));
  });

  it('random trace requests (protobufjs encodings)', () => {
    fc.assert(
      fc.property(arbTraces, (m) => expectSameSpansAndTerms(encodeTraces(m))),
      { numRuns: 300 },
    );
  });

  it('random wire messages: repeated, reordered, duplicated, malformed and unknown fields', () => {
    fc.assert(
      fc.property(arbWireRequest('traces'), fc.integer({ min: 1, max: 4 }), (bytes, depth) => expectSameSpansAndTerms(bytes, { maxNestingDepth: depth })),
      { numRuns: 400 },
    );
  });

  it('writes no terms for log records', () => {
    const withTerms = createEncoder({ terms: true }, LIMITS);
    const plain = createEncoder({}, LIMITS);
    for (const m of fc.sample(arbLogs, { numRuns: 20, seed: 3 })) {
      const body = encodeLogs(m);
      expect(outcome(withTerms, 'logs', 'protobuf', body)).toEqual(outcome(plain, 'logs', 'protobuf', body));
    }
  });
});
