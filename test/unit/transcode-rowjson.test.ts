// The transcoding encoder of the memory and SQLite backends against the row path it replaces
// (decode to rows, then the row-line encoder): on every fixture, on random requests encoded by
// protobufjs, and on random wire messages that repeat, reorder and corrupt fields, the new path
// must write the same bytes, keep and reject the same items with the same message, and refuse
// the same requests with the same error.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixtureBytes, jsonFixtures, protobufFixtures } from '../helpers/fixtures.ts';
import { decodeLogsJson, decodeLogsProto, decodeTracesJson, decodeTracesProto, WireWriter } from '../../src/pipeline/decode/index.ts';
import { arbWireRequest } from '../helpers/otlp-wire-arb.ts';
import type { Signal as RequestSignal } from '../../src/model/signal.ts';
import type { RequestFormat } from '../../src/pipeline/transcode/encoder.ts';
import { createEncoder } from '../../src/pipeline/transcode/rowjson/index.ts';
import { createEncoder as createRowEncoder } from '../../src/storage/rowjson.ts';
import { arbJsonStyle, arbLogs, arbTraces, encodeLogs, encodeTraces, JSON_BAD_REQUESTS, JSON_EDGE_SPANS, jsonEdgeRequest, jsonLogs, jsonTraces, LIMITS, toJsonText } from '../helpers/otlp-build.ts';

const rowEncoder = createRowEncoder();
const transcoder = createEncoder({}, LIMITS);

type Outcome = { accepted: number; rejected: number; errorMessage: string; text: string } | { error: string };

function rowPath(signal: RequestSignal, format: RequestFormat, body: Uint8Array, limits = LIMITS): Outcome {
  try {
    if (signal === 'traces') {
      const r = format === 'json' ? decodeTracesJson(body, limits) : decodeTracesProto(body, limits);
      const chunks = rowEncoder.encodeSpans(r.rows);
      return { accepted: r.rows.length, rejected: r.rejected, errorMessage: r.errorMessage, text: Buffer.concat(chunks.map((c) => c.data)).toString('latin1') };
    }
    const r = format === 'json' ? decodeLogsJson(body, limits) : decodeLogsProto(body, limits);
    const chunks = rowEncoder.encodeLogs(r.rows);
    return { accepted: r.rows.length, rejected: r.rejected, errorMessage: r.errorMessage, text: Buffer.concat(chunks.map((c) => c.data)).toString('latin1') };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

function newPath(signal: RequestSignal, format: RequestFormat, body: Uint8Array, enc = transcoder): Outcome {
  try {
    const r = enc.encode(signal, format, body);
    expect(r.chunks.reduce((n, c) => n + c.rows, 0)).toBe(r.accepted);
    // Compared as bytes: text decoding would hide a difference in invalid sequences.
    return { accepted: r.accepted, rejected: r.rejected, errorMessage: r.errorMessage, text: Buffer.concat(r.chunks.map((c) => c.data)).toString('latin1') };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

function expectSame(signal: RequestSignal, format: RequestFormat, body: Uint8Array): void {
  expect(newPath(signal, format, body)).toStrictEqual(rowPath(signal, format, body));
}


describe('row-line transcoder: same bytes as the row path', () => {
  for (const name of protobufFixtures()) {
    it(`fixture ${name}, read as traces and as logs`, () => {
      const body = fixtureBytes(name);
      expectSame('traces', 'protobuf', body);
      expectSame('logs', 'protobuf', body);
    });
  }

  for (const name of jsonFixtures()) {
    it(`fixture ${name}`, () => {
      const body = fixtureBytes(name);
      expectSame('traces', 'json', body);
    });
  }

  it('a fixture request yields lines that the row path would (non-trivial output)', () => {
    const body = fixtureBytes('bad-ids.bin');
    const out = newPath('traces', 'protobuf', body);
    expect(out).toMatchObject({ accepted: 1, rejected: 6 });
    expect('text' in out && out.text.split('\n').length).toBe(2);
  });

  it('random trace requests (protobufjs encodings)', () => {
    fc.assert(
      fc.property(arbTraces, (m) => expectSame('traces', 'protobuf', encodeTraces(m))),
      { numRuns: 300 },
    );
  });

  it('random log requests (protobufjs encodings)', () => {
    fc.assert(
      fc.property(arbLogs, (m) => expectSame('logs', 'protobuf', encodeLogs(m))),
      { numRuns: 300 },
    );
  });

  const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

  it('random OTLP/JSON trace requests in every sender style', () => {
    fc.assert(
      fc.property(arbTraces, arbJsonStyle, (m, st) => expectSame('traces', 'json', utf8(toJsonText(jsonTraces(m, st))))),
      { numRuns: 300 },
    );
  });

  it('random OTLP/JSON log requests in every sender style', () => {
    fc.assert(
      fc.property(arbLogs, arbJsonStyle, (m, st) => expectSame('logs', 'json', utf8(toJsonText(jsonLogs(m, st))))),
      { numRuns: 300 },
    );
  });

  it('OTLP/JSON edge cases: duplicate keys, bad ids, deep values, wrong types, big numbers, lone surrogates', () => {
    for (const s of JSON_EDGE_SPANS) expectSame('traces', 'json', jsonEdgeRequest(s));
    for (const bad of JSON_BAD_REQUESTS) {
      expectSame('traces', 'json', utf8(bad));
      expectSame('logs', 'json', utf8(bad));
    }
  });

  it('random wire messages: repeated, reordered, duplicated, malformed and unknown fields', () => {
    fc.assert(
      fc.property(arbWireRequest('traces'), fc.integer({ min: 1, max: 4 }), (bytes, depth) => {
        const limits = { maxNestingDepth: depth };
        const enc = createEncoder({}, limits);
        expect(newPath('traces', 'protobuf', bytes, enc)).toStrictEqual(rowPath('traces', 'protobuf', bytes, limits));
      }),
      { numRuns: 1500 },
    );
  });

  it('random wire log messages: repeated, reordered, duplicated, malformed and unknown fields', () => {
    fc.assert(
      fc.property(arbWireRequest('logs'), fc.integer({ min: 1, max: 4 }), (bytes, depth) => {
        const limits = { maxNestingDepth: depth };
        const enc = createEncoder({}, limits);
        expect(newPath('logs', 'protobuf', bytes, enc)).toStrictEqual(rowPath('logs', 'protobuf', bytes, limits));
      }),
      { numRuns: 1500 },
    );
  });

  it('long attribute lists with repeated keys (the linear-time path) keep the last value at the first place', () => {
    const w = new WireWriter().fork().fork().fork();
    w.bytesField(1, new Uint8Array(16).fill(1)).bytesField(2, new Uint8Array(8).fill(2));
    for (let i = 0; i < 150; i++) w.fork().stringField(1, `k${i % 70}`).fork().varintField(3, i).join(2).join(9);
    const body = w.join(2).join(2).join(1).finish();
    expectSame('traces', 'protobuf', body);
    const out = newPath('traces', 'protobuf', body);
    expect('text' in out && out.text.match(/"key":"k0","value":\{"intValue":"140"\}/)).toBeTruthy();
  });

  it('the same worker state across requests: a long key cache and trace id cache do not leak between requests', () => {
    const a = encodeTraces(fc.sample(arbTraces, { numRuns: 1, seed: 1 })[0]!);
    const b = encodeTraces(fc.sample(arbTraces, { numRuns: 1, seed: 2 })[0]!);
    for (const body of [a, b, a, b]) expectSame('traces', 'protobuf', body);
  });
});
