// The transcoding encoder of the memory and SQLite backends against the row path it replaces
// (decode to rows, then the row-line encoder): on every fixture, on random requests encoded by
// protobufjs, and on random wire messages that repeat, reorder and corrupt fields, the new path
// must write the same bytes, keep and reject the same items with the same message, and refuse
// the same requests with the same error.
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeLogsJson, decodeLogsProto, decodeTracesJson, decodeTracesProto, WireWriter } from '../../src/pipeline/decode/index.ts';
import type { Signal as RequestSignal } from '../../src/model/signal.ts';
import type { RequestFormat } from '../../src/pipeline/transcode/encoder.ts';
import { createEncoder } from '../../src/pipeline/transcode/rowjson/index.ts';
import { createEncoder as createRowEncoder } from '../../src/storage/rowjson.ts';
import { arbJsonStyle, arbLogs, arbTraces, encodeLogs, encodeTraces, jsonLogs, jsonTraces, LIMITS, toJsonText } from '../helpers/otlp-build.ts';

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

const FIXTURES = new URL('../fixtures/', import.meta.url);

describe('row-line transcoder: same bytes as the row path', () => {
  for (const name of readdirSync(FIXTURES).filter((n) => n.endsWith('.bin'))) {
    it(`fixture ${name}, read as traces and as logs`, () => {
      const body = new Uint8Array(readFileSync(new URL(name, FIXTURES)));
      expectSame('traces', 'protobuf', body);
      expectSame('logs', 'protobuf', body);
    });
  }

  for (const name of readdirSync(new URL('http/', FIXTURES)).filter((n) => n.endsWith('.json'))) {
    it(`fixture http/${name}`, () => {
      const body = new Uint8Array(readFileSync(new URL(`http/${name}`, FIXTURES)));
      expectSame('traces', 'json', body);
    });
  }

  it('a fixture request yields lines that the row path would (non-trivial output)', () => {
    const body = new Uint8Array(readFileSync(new URL('bad-ids.bin', FIXTURES)));
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
    const id = '"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708"';
    const deep = '{"arrayValue":{"values":['.repeat(150) + '{}' + ']}}'.repeat(150);
    const spans = [
      `{${id},"name":"a\ud800b","attributes":[{"key":"k","value":{"intValue":1}},{"key":"k","value":{"doubleValue":"NaN"}},{"key":"x"}]}`,
      `{${id},"startTimeUnixNano":18446744073709551615,"endTimeUnixNano":9223372036854775807}`,
      `{${id},"startTimeUnixNano":1700000000000000001,"endTimeUnixNano":"1700000000000000000","attributes":[{"key":"d","value":${deep}}]}`,
      `{${id},"parentSpanId":"0000000000000000"}`,
      `{${id},"links":[{"traceId":"01","spanId":"0102030405060708"}],"events":[{"timeUnixNano":"5","attributes":[{"key":"b","value":{"bytesValue":"-_8"}}]}]}`,
      `{${id},"kind":"SPAN_KIND_SERVER","status":{"code":"STATUS_CODE_ERROR","message":"\u0001"},"attributes":[{"key":"n","value":{"doubleValue":${'9'.repeat(400)}}}]}`,
    ];
    for (const s of spans) expectSame('traces', 'json', utf8(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"é"}}]},"scopeSpans":[{"spans":[${s}]}]}]}`));
    for (const bad of ['{"resourceSpans":[{"scopeSpans":[{"spans":[{"flags":-1}]}]}]}', '{"resourceSpans":{}}', '[', '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":"x"}}]}]}]}']) {
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

// ---------------------------------------------------------------------------------------------
// Random wire messages, written field by field: each message is a random sequence of its fields
// (any order, any repetition), with ids of every length, strings with invalid UTF-8 and control
// characters, keys from a small pool (so they repeat), times beyond int64, unknown fields, and,
// rarely, a corrupt byte sequence.

type Piece = (w: WireWriter) => void;

const idBytes = (n: number) =>
  fc.oneof(
    { arbitrary: fc.uint8Array({ minLength: n, maxLength: n }), weight: 6 },
    { arbitrary: fc.constant(new Uint8Array(n)), weight: 1 },
    { arbitrary: fc.uint8Array({ maxLength: 20 }), weight: 1 },
  );
const strBytes = fc.oneof(
  fc.string({ maxLength: 10 }).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))),
  fc.constantFrom('service.name', 'k', 'a"b\\c\n\t\u0001', '€✓', 'x'.repeat(40)).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))),
  fc.uint8Array({ maxLength: 12 }),
);
const keyBytes = fc.oneof(
  { arbitrary: fc.constantFrom('service.name', 'a', 'b', 'c', '__proto__', '', 'k\u0000').map((s) => new Uint8Array(Buffer.from(s, 'utf8'))), weight: 5 },
  { arbitrary: fc.constantFrom(new Uint8Array([0xff]), new Uint8Array([0xfe])), weight: 1 },
);
const u64 = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: (1n << 63n) - 2n, max: (1n << 63n) + 2n }), fc.constantFrom(0n, 1n, 1700000000000000000n));
const varint = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.nat({ max: 300 }).map(BigInt), fc.constantFrom(-1n, -5n, 1n << 31n));

function fields(menu: fc.Arbitrary<Piece>[], maxLength: number, minLength = 0): fc.Arbitrary<Piece> {
  return fc.array(fc.oneof(...menu), { minLength, maxLength }).map((ps) => (w: WireWriter) => ps.forEach((p) => p(w)));
}
const msg = (field: number, body: fc.Arbitrary<Piece>): fc.Arbitrary<Piece> => body.map((b) => (w: WireWriter) => (b(w.fork()), w.join(field)));
const str = (field: number) => strBytes.map((v) => (w: WireWriter) => void w.bytesField(field, v));
const id = (field: number, n: number) => idBytes(n).map((v) => (w: WireWriter) => void w.bytesField(field, v));
const num = (field: number) => varint.map((v) => (w: WireWriter) => void w.varintField(field, v));
const fx64 = (field: number) => u64.map((v) => (w: WireWriter) => void w.fixed64Field(field, v));
const fx32 = (field: number) => fc.nat({ max: 0xffffffff }).map((v) => (w: WireWriter) => void w.fixed32Field(field, v));
const unknown = fc.oneof(
  fc.nat({ max: 1000 }).map((v) => (w: WireWriter) => void w.varintField(20, v)),
  strBytes.map((v) => (w: WireWriter) => void w.bytesField(21, v)),
  fc.constant((w: WireWriter) => void w.fixed32Field(22, 7)),
);
const corrupt = fc.constantFrom<Piece>(
  (w) => void w.raw([0x0a, 0x05, 0x01]),
  (w) => void w.raw([0x00]),
  (w) => void w.raw([0x0b]),
  (w) => void w.varintField(1, 5),
);

const anyValue: fc.Memo<Piece> = fc.memo((n) => {
  const scalars = [
    str(1),
    fc.boolean().map((b) => (w: WireWriter) => void w.varintField(2, b)),
    fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map((v) => (w: WireWriter) => void w.varintField(3, v)),
    fc.oneof(fc.double(), fc.constantFrom(NaN, -0, Infinity)).map((d) => (w: WireWriter) => void w.doubleField(4, d)),
    fc.uint8Array({ maxLength: 8 }).map((v) => (w: WireWriter) => void w.bytesField(7, v)),
  ];
  if (n <= 1) return fields(scalars, 2);
  return fields([...scalars, msg(5, fields([msg(1, anyValue(n - 1))], 3)), msg(6, fields([msg(1, keyValue(n - 1))], 3))], 2);
});
const keyValue = (n: number): fc.Arbitrary<Piece> =>
  fc.oneof(
    { arbitrary: fc.tuple(keyBytes, anyValue(n)).map(([k, v]) => (w: WireWriter) => (w.bytesField(1, k), v(w.fork()), w.join(2))), weight: 6 },
    { arbitrary: fields([keyBytes.map((k) => (w: WireWriter) => void w.bytesField(1, k)), msg(2, anyValue(n)), unknown], 4), weight: 1 },
  );
const attr = (field: number) => msg(field, keyValue(4));

const resource = fields([attr(1), num(2), str(3), unknown], 5);
const scope = fields([str(1), str(2), attr(3), num(4), unknown], 5);
const event = fields([fx64(1), str(2), attr(3), num(4), unknown], 5);
const link = fields([id(1, 16), id(2, 8), str(3), attr(4), num(5), fx32(6), unknown], 6);
const status = fields([str(2), num(3), unknown], 3);
const spanItem = fc.oneof(
  { arbitrary: fields([id(1, 16), id(2, 8), str(3), id(4, 8), str(5), num(6), fx64(7), fx64(8), attr(9), num(10), msg(11, event), num(12), msg(13, link), num(14), msg(15, status), fx32(16), unknown], 14), weight: 20 },
  { arbitrary: fields([id(1, 16), id(2, 8), attr(9), corrupt], 4), weight: 1 },
);
const logItem = fc.oneof(
  { arbitrary: fields([fx64(1), num(2), str(3), msg(5, anyValue(4)), attr(6), num(7), fx32(8), id(9, 16), id(10, 8), fx64(11), str(12), unknown], 12), weight: 20 },
  { arbitrary: fields([fx64(1), attr(6), corrupt], 4), weight: 1 },
);

function arbWireRequest(signal: RequestSignal): fc.Arbitrary<Uint8Array> {
  const item = signal === 'traces' ? spanItem : logItem;
  // A well-formed item gets its ids most of the time so that most items are kept.
  const goodIds: Piece = (w) => void (signal === 'traces' ? w.bytesField(1, new Uint8Array(16).fill(7)).bytesField(2, new Uint8Array(8).fill(9)) : w);
  const itemMsg = fc.tuple(fc.boolean(), item).map(([ids, body]) => (w: WireWriter) => {
    w.fork();
    if (ids) goodIds(w);
    body(w);
    w.join(2);
  });
  const scopeItems = fields([msg(1, scope), itemMsg, itemMsg, itemMsg, str(3), unknown], 8, 2);
  const resourceItems = fields([msg(1, resource), msg(2, scopeItems), msg(2, scopeItems), str(3), unknown], 5, 2);
  return fields([msg(1, resourceItems), msg(1, resourceItems), unknown], 3, 1).map((p) => {
    const w = new WireWriter();
    p(w);
    return w.finish();
  });
}
