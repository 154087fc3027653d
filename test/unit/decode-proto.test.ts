// The protobuf decoders against protobufjs encodings of our .proto files: every field of every
// message, random requests, validation of ids, nesting, strings, and the wire edge cases.
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { DecodeError, decodeLogsProto, decodeTracesProto, WireWriter } from '../../src/pipeline/decode/index.ts';
import {
  arbLogs,
  arbTraces,
  encodeLogs,
  encodeLogsWire,
  encodeTraces,
  encodeTracesWire,
  expectedLogRows,
  expectedSpanRows,
  LIMITS,
  loadProtoRoot,
  logsOf,
  nestedArray,
  pbSpan,
  sampleLog,
  sampleResource,
  sampleScope,
  sampleSpan,
  TraceRequest,
  tracesOf,
  type MKeyValue,
  type MValue,
} from '../helpers/otlp-build.ts';

const hexBytes = (h: string) => Buffer.from(h, 'hex');
const str = (v: string): MValue => ({ kind: 'string', v });

describe('decodeTracesProto', () => {
  it('decodes every field of a span, its resource and scope', () => {
    const bytes = encodeTraces(tracesOf([sampleSpan()]));
    const { rows, rejected, errorMessage } = decodeTracesProto(bytes, LIMITS);
    expect(rejected).toBe(0);
    expect(errorMessage).toBe('');
    expect(rows).toStrictEqual([
      {
        traceId: '5b8efff798038103d269b633813fc60c',
        spanId: 'eee19b7ec3c1b174',
        parentSpanId: 'eee19b7ec3c1b173',
        traceState: 'congo=t61rcWkgMzE',
        flags: 0x301,
        name: 'GET /api/orders/{id}',
        kind: 2,
        startTimeUnixNano: 1_700_000_000_000_000_001n,
        endTimeUnixNano: 1_700_000_000_250_000_003n,
        durationNano: 250_000_002n,
        statusCode: 2,
        statusMessage: 'upstream timed out',
        serviceName: 'checkout',
        resource: {
          attributes: [
            { key: 'service.name', value: { stringValue: 'checkout' } },
            { key: 'host.name', value: { stringValue: 'node-1' } },
          ],
          droppedAttributesCount: 6,
          schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
        },
        scope: {
          name: '@opentelemetry/instrumentation-http',
          version: '0.57.0',
          attributes: [{ key: 'scope.attr', value: { boolValue: true } }],
          droppedAttributesCount: 7,
          schemaUrl: 'https://opentelemetry.io/schemas/1.25.0',
        },
        attributes: [
          { key: 'http.method', value: { stringValue: 'GET' } },
          { key: 'http.status_code', value: { intValue: '200' } },
        ],
        droppedAttributesCount: 1,
        events: [
          {
            timeUnixNano: 1_700_000_000_100_000_000n,
            name: 'exception',
            attributes: [{ key: 'exception.type', value: { stringValue: 'Error' } }],
            droppedAttributesCount: 2,
          },
        ],
        droppedEventsCount: 3,
        links: [
          {
            traceId: '0af7651916cd43dd8448eb211c80319c',
            spanId: 'b7ad6b7169203331',
            traceState: 'rojo=00f067aa0ba902b7',
            flags: 0x101,
            attributes: [{ key: 'link.kind', value: { stringValue: 'follows' } }],
            droppedAttributesCount: 4,
          },
        ],
        droppedLinksCount: 5,
      },
    ]);
  });

  it('gives absent fields their defaults', () => {
    const bytes = TraceRequest.encode(
      TraceRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: hexBytes('01'.repeat(16)), spanId: hexBytes('02'.repeat(8)) }] }] }] }),
    ).finish();
    const { rows } = decodeTracesProto(bytes, LIMITS);
    expect(rows).toStrictEqual([
      {
        traceId: '01'.repeat(16),
        spanId: '02'.repeat(8),
        parentSpanId: '',
        traceState: '',
        flags: 0,
        name: '',
        kind: 0,
        startTimeUnixNano: 0n,
        endTimeUnixNano: 0n,
        durationNano: 0n,
        statusCode: 0,
        statusMessage: '',
        serviceName: 'unknown_service',
        resource: { attributes: [], droppedAttributesCount: 0, schemaUrl: '' },
        scope: { name: '', version: '', attributes: [], droppedAttributesCount: 0, schemaUrl: '' },
        attributes: [],
        droppedAttributesCount: 0,
        events: [],
        droppedEventsCount: 0,
        links: [],
        droppedLinksCount: 0,
      },
    ]);
  });

  it('matches protobufjs on random requests (every AnyValue kind, int64 beyond 2^53, nesting, bytes)', () => {
    fc.assert(
      fc.property(arbTraces, (m) => {
        const { rows, rejected } = decodeTracesProto(encodeTraces(m), LIMITS);
        expect(rejected).toBe(0);
        expect(rows).toStrictEqual(expectedSpanRows(m));
        // The same through our own writer, which orders fields differently (flags last).
        expect(decodeTracesProto(encodeTracesWire(m), LIMITS).rows).toStrictEqual(rows);
      }),
      { numRuns: 300 },
    );
  });

  it('renders int64 attribute values exactly, negative ones included', () => {
    const ints = [0n, 1n, -1n, 1023n, 1024n, 9007199254740991n, 9007199254740993n, -9007199254740993n, 2n ** 63n - 1n, -(2n ** 63n), -4294967296n, 4294967296n];
    const attributes: MKeyValue[] = ints.map((v, i) => ({ key: `i${i}`, value: { kind: 'int', v } }));
    const { rows } = decodeTracesProto(encodeTraces(tracesOf([sampleSpan({ attributes })])), LIMITS);
    expect(rows[0].attributes.map((a) => a.value)).toStrictEqual(ints.map((v) => ({ intValue: v.toString() })));
  });

  it('renders doubles, non-finite ones as the strings OTLP/JSON uses, and bytes as base64', () => {
    const attributes: MKeyValue[] = [
      { key: 'nan', value: { kind: 'double', v: NaN } },
      { key: 'inf', value: { kind: 'double', v: Infinity } },
      { key: 'ninf', value: { kind: 'double', v: -Infinity } },
      { key: 'pi', value: { kind: 'double', v: 3.141592653589793 } },
      { key: 'bytes', value: { kind: 'bytes', v: new Uint8Array([0, 1, 2, 250, 255]) } },
      { key: 'nobytes', value: { kind: 'bytes', v: new Uint8Array(0) } },
    ];
    const { rows } = decodeTracesProto(encodeTraces(tracesOf([sampleSpan({ attributes })])), LIMITS);
    expect(rows[0].attributes.map((a) => a.value)).toStrictEqual([
      { doubleValue: 'NaN' },
      { doubleValue: 'Infinity' },
      { doubleValue: '-Infinity' },
      { doubleValue: 3.141592653589793 },
      { bytesValue: 'AAEC+v8=' },
      { bytesValue: '' },
    ]);
  });

  it('keeps the rest of the request when spans have invalid ids, and says why', () => {
    const good = sampleSpan();
    const spans = [
      good,
      sampleSpan({ traceId: new Uint8Array(16) }), // all zero
      sampleSpan({ traceId: new Uint8Array(0) }), // empty
      sampleSpan({ traceId: hexBytes('01'.repeat(15)) }), // 15 bytes
      sampleSpan({ spanId: new Uint8Array(8) }),
      sampleSpan({ spanId: hexBytes('01'.repeat(7)) }),
      sampleSpan({ parentSpanId: hexBytes('01'.repeat(7)) }),
      // An all-zero parent is the invalid-id sentinel some exporters write for a root: a root.
      sampleSpan({ spanId: hexBytes('0000000000000002'), parentSpanId: new Uint8Array(8) }),
      sampleSpan({ spanId: hexBytes('0000000000000001') }),
    ];
    const { rows, rejected, errorMessage } = decodeTracesProto(encodeTraces(tracesOf(spans)), LIMITS);
    expect(rows.map((r) => r.spanId)).toEqual(['eee19b7ec3c1b174', '0000000000000002', '0000000000000001']);
    expect(rows[1].parentSpanId).toBe('');
    expect(rejected).toBe(6);
    expect(errorMessage).toBe('6 spans rejected: invalid trace id (3), invalid span id (2), invalid parent span id (1)');
  });

  it('rejects a span whose link has an id of the wrong length; all-zero link ids become empty', () => {
    const link = sampleSpan().links[0];
    const spans = [
      sampleSpan({ links: [{ ...link, traceId: hexBytes('01'.repeat(8)) }] }),
      sampleSpan({ links: [{ ...link, traceId: new Uint8Array(16), spanId: new Uint8Array(0) }] }),
    ];
    const { rows, errorMessage } = decodeTracesProto(encodeTraces(tracesOf(spans)), LIMITS);
    expect(errorMessage).toBe('1 span rejected: invalid link id (1)');
    expect(rows).toHaveLength(1);
    expect(rows[0].links[0]).toMatchObject({ traceId: '', spanId: '' });
  });

  it('clamps the duration at 0 when the end precedes the start', () => {
    const { rows } = decodeTracesProto(encodeTraces(tracesOf([sampleSpan({ start: 2_000n, end: 1_000n })])), LIMITS);
    expect(rows[0].durationNano).toBe(0n);
  });

  it('takes the service name from a string service.name only', () => {
    const cases: [MKeyValue[], string][] = [
      [[{ key: 'service.name', value: str('cart') }], 'cart'],
      [[{ key: 'service.name', value: { kind: 'int', v: 7n } }], 'unknown_service'],
      [[{ key: 'other', value: str('x') }], 'unknown_service'],
      [[], 'unknown_service'],
    ];
    for (const [attributes, expected] of cases) {
      const { rows } = decodeTracesProto(encodeTraces(tracesOf([sampleSpan()], sampleResource({ attributes }))), LIMITS);
      expect(rows[0].serviceName).toBe(expected);
    }
  });

  it('keeps the last value of a duplicated attribute key, once, in spans, events, kvlists and resources', () => {
    const dup: MKeyValue[] = [
      { key: 'a', value: str('first') },
      { key: 'b', value: str('b') },
      { key: 'a', value: str('last') },
    ];
    const span = sampleSpan({
      attributes: [...dup, { key: 'kv', value: { kind: 'kvlist', v: dup } }],
      events: [{ time: 1n, name: 'e', attributes: dup, dropped: 0 }],
    });
    const resource = sampleResource({ attributes: [{ key: 'service.name', value: str('old') }, { key: 'service.name', value: str('new') }] });
    const { rows } = decodeTracesProto(encodeTraces(tracesOf([span], resource)), LIMITS);
    const unique = [
      { key: 'a', value: { stringValue: 'last' } },
      { key: 'b', value: { stringValue: 'b' } },
    ];
    expect(rows[0].attributes).toStrictEqual([...unique, { key: 'kv', value: { kvlistValue: { values: unique } } }]);
    expect(rows[0].events[0].attributes).toStrictEqual(unique);
    expect(rows[0].resource.attributes).toStrictEqual([{ key: 'service.name', value: { stringValue: 'new' } }]);
    expect(rows[0].serviceName).toBe('new');
  });

  it('dedupes tens of thousands of attributes in linear time', () => {
    const many: MKeyValue[] = Array.from({ length: 40_000 }, (_, i) => ({ key: i % 2 ? 'same' : `k${i}`, value: { kind: 'int', v: BigInt(i) } }));
    const bytes = encodeTraces(tracesOf([sampleSpan({ attributes: many })]));
    const t0 = performance.now();
    const { rows } = decodeTracesProto(bytes, LIMITS);
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(rows[0].attributes).toHaveLength(20_001);
    expect(rows[0].attributes[1]).toStrictEqual({ key: 'same', value: { intValue: '39999' } });
  });

  it('keeps keys such as __proto__ and constructor as plain data', () => {
    const attributes: MKeyValue[] = [
      { key: '__proto__', value: { kind: 'kvlist', v: [{ key: 'polluted', value: { kind: 'bool', v: true } }] } },
      { key: 'constructor', value: str('x') },
      { key: 'prototype', value: str("'); DROP TABLE spans; --") },
    ];
    const { rows } = decodeTracesProto(encodeTraces(tracesOf([sampleSpan({ attributes })])), LIMITS);
    expect(rows[0].attributes.map((a) => a.key)).toEqual(['__proto__', 'constructor', 'prototype']);
    expect(rows[0].attributes[0].value).toStrictEqual({ kvlistValue: { values: [{ key: 'polluted', value: { boolValue: true } }] } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(rows[0].attributes[0])).toBe(Object.prototype);
  });

  it('decodes strings of every length correctly through its string cache, colliding ones included', () => {
    // Same length, same first and last four bytes, different middles: the cache must compare them all.
    const names = Array.from({ length: 3000 }, (_, i) => `abcd${String(i).padStart(6, '0')}wxyz`);
    const shortNames = Array.from({ length: 300 }, (_, i) => String.fromCharCode(97 + (i % 26)).repeat(1 + (i % 8)) + (i % 3 ? '' : 'é'));
    const all = [...names, ...shortNames, ...names.slice(0, 50)];
    const spans = all.map((name, i) => sampleSpan({ name, spanId: Buffer.from((i + 1).toString(16).padStart(16, '0'), 'hex') }));
    const bytes = encodeTraces(tracesOf(spans));
    for (let round = 0; round < 2; round++) expect(decodeTracesProto(bytes, LIMITS).rows.map((r) => r.name)).toEqual(all);
  });

  it('decodes invalid UTF-8 with replacement characters and keeps U+0000', () => {
    const w = new WireWriter().fork().fork().fork();
    w.bytesField(1, hexBytes('5b8efff798038103d269b633813fc60c')).bytesField(2, hexBytes('eee19b7ec3c1b174'));
    w.bytesField(5, Buffer.from([0x61, 0xff, 0x62, 0xc3, 0x28, 0x63, 0xe2, 0x82, 0x64, 0x00, 0x65, 0xed, 0xa0, 0x80])); // name
    w.fork().bytesField(1, Buffer.from([0x6b, 0xc0, 0xaf])).fork().bytesField(1, Buffer.from([0xf0, 0x9f, 0x98])).join(2).join(9); // attribute
    const bytes = w.join(2).join(2).join(1).finish();
    const { rows } = decodeTracesProto(bytes, LIMITS);
    expect(rows[0].name).toBe('a\uFFFDb\uFFFD(c\uFFFDd\u0000e\uFFFD\uFFFD\uFFFD');
    expect(rows[0].attributes).toStrictEqual([{ key: 'k\uFFFD\uFFFD', value: { stringValue: '\uFFFD' } }]);
  });

  describe('nesting', () => {
    const span = (levels: number, i: number) =>
      sampleSpan({ spanId: hexBytes(`00000000000000${i.toString(16).padStart(2, '0')}`), attributes: [{ key: 'deep', value: nestedArray(levels) }] });

    it('accepts values nested exactly maxNestingDepth levels and rejects one more, as an item', () => {
      const { rows, rejected, errorMessage } = decodeTracesProto(encodeTracesWire(tracesOf([span(100, 1), span(101, 2), span(0, 3)])), LIMITS);
      expect(rows.map((r) => r.spanId)).toEqual(['0000000000000001', '0000000000000003']);
      expect(rejected).toBe(1);
      expect(errorMessage).toBe('1 span rejected: value nested deeper than 100 levels (1)');
    });

    it('rejects a span whose event or link attributes nest too deep', () => {
      const deep: MKeyValue[] = [{ key: 'deep', value: nestedArray(5) }];
      const spans = [sampleSpan({ events: [{ time: 1n, name: 'e', attributes: deep, dropped: 0 }] }), sampleSpan({ links: [{ ...sampleSpan().links[0], attributes: deep }] })];
      const { rows, rejected } = decodeTracesProto(encodeTraces(tracesOf(spans)), { maxNestingDepth: 4 });
      expect(rows).toHaveLength(0);
      expect(rejected).toBe(2);
    });

    it('handles 1000 levels (and kvlists) without recursing that deep', () => {
      let v: MValue = str('bottom');
      for (let i = 0; i < 1000; i++) v = i % 2 ? { kind: 'array', v: [v] } : { kind: 'kvlist', v: [{ key: 'k', value: v }] };
      const spans = [sampleSpan({ attributes: [{ key: 'deep', value: v }] }), sampleSpan({ spanId: hexBytes('0000000000000009') })];
      const { rows, rejected } = decodeTracesProto(encodeTracesWire(tracesOf(spans)), LIMITS);
      expect(rows.map((r) => r.spanId)).toEqual(['0000000000000009']);
      expect(rejected).toBe(1);
    });

    it('rejects every span of a resource or scope whose attributes nest too deep, and only those', () => {
      const deepAttrs: MKeyValue[] = [{ key: 'deep', value: nestedArray(3) }];
      const m = {
        resources: [
          { resource: sampleResource({ attributes: deepAttrs }), scopes: [{ scope: sampleScope(), spans: [sampleSpan(), sampleSpan()] }] },
          {
            resource: sampleResource(),
            scopes: [
              { scope: sampleScope({ attributes: deepAttrs }), spans: [sampleSpan()] },
              { scope: sampleScope(), spans: [sampleSpan({ name: 'kept' })] },
            ],
          },
        ],
      };
      const { rows, rejected, errorMessage } = decodeTracesProto(encodeTraces(m), { maxNestingDepth: 2 });
      expect(rows.map((r) => r.name)).toEqual(['kept']);
      expect(rejected).toBe(3);
      expect(errorMessage).toBe('3 spans rejected: value nested deeper than 2 levels (3)');
    });
  });

  it('does not depend on field order: resource and schema urls after the spans', () => {
    // ResourceSpans { schema_url, scope_spans { spans, scope, schema_url }, resource } — reverse of the usual order.
    const m = tracesOf([sampleSpan()]);
    const spanType = TraceRequest.lookupType('opentelemetry.proto.trace.v1.Span');
    const resourceType = TraceRequest.lookupType('opentelemetry.proto.resource.v1.Resource');
    const scopeType = TraceRequest.lookupType('opentelemetry.proto.common.v1.InstrumentationScope');
    const enc = (t: protobuf.Type, o: Record<string, unknown>) => t.encode(t.fromObject(o)).finish();
    const res = m.resources[0].resource;
    const sc = m.resources[0].scopes[0].scope;
    const w = new WireWriter().fork();
    w.stringField(3, res.schemaUrl);
    w.fork().bytesField(2, enc(spanType, pbSpan(sampleSpan())));
    w.bytesField(1, enc(scopeType, { name: sc.name, version: sc.version, attributes: [{ key: 'scope.attr', value: { boolValue: true } }], droppedAttributesCount: sc.dropped }));
    w.stringField(3, sc.schemaUrl).join(2);
    w.bytesField(1, enc(resourceType, { attributes: res.attributes.map((a) => ({ key: a.key, value: { stringValue: (a.value as { v: string }).v } })), droppedAttributesCount: res.dropped }));
    const bytes = w.join(1).finish();
    expect(decodeTracesProto(bytes, LIMITS).rows).toStrictEqual(expectedSpanRows(m));
  });

  it('skips unknown fields of every wire type in every message', () => {
    // A protobufjs root whose messages carry extra fields our decoder has never heard of.
    const root = loadProtoRoot();
    const extras: [string, string][] = [
      ['opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest', 'ExportTraceServiceRequest'],
      ['opentelemetry.proto.trace.v1.ResourceSpans', 'ResourceSpans'],
      ['opentelemetry.proto.trace.v1.ScopeSpans', 'ScopeSpans'],
      ['opentelemetry.proto.trace.v1.Span', 'Span'],
      ['opentelemetry.proto.trace.v1.Span.Event', 'Event'],
      ['opentelemetry.proto.trace.v1.Span.Link', 'Link'],
      ['opentelemetry.proto.trace.v1.Status', 'Status'],
      ['opentelemetry.proto.resource.v1.Resource', 'Resource'],
      ['opentelemetry.proto.common.v1.InstrumentationScope', 'InstrumentationScope'],
      ['opentelemetry.proto.common.v1.KeyValue', 'KeyValue'],
      ['opentelemetry.proto.common.v1.AnyValue', 'AnyValue'],
      ['opentelemetry.proto.common.v1.ArrayValue', 'ArrayValue'],
      ['opentelemetry.proto.common.v1.KeyValueList', 'KeyValueList'],
    ];
    const extraValues = { xVarint: 300, xFixed64: '12345678901234', xString: 'unknown', xFixed32: 7, xNested: { values: [] } };
    for (const [name] of extras) {
      const t = root.lookupType(name);
      t.add(new protobuf.Field('xVarint', 90, 'int64'));
      t.add(new protobuf.Field('xFixed64', 91, 'fixed64'));
      t.add(new protobuf.Field('xString', 92, 'string'));
      t.add(new protobuf.Field('xFixed32', 2000, 'fixed32'));
      t.add(new protobuf.Field('xNested', 93, 'opentelemetry.proto.common.v1.ArrayValue'));
    }
    root.resolveAll();
    const withExtras = (o: Record<string, unknown>): Record<string, unknown> => {
      const out: Record<string, unknown> = { ...extraValues };
      for (const [k, v] of Object.entries(o)) {
        if (Array.isArray(v)) out[k] = v.map((x) => (typeof x === 'object' && x !== null && !(x instanceof Uint8Array) ? withExtras(x) : x));
        else if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !('low' in v)) out[k] = withExtras(v as Record<string, unknown>);
        else out[k] = v;
      }
      return out;
    };
    const attrs: MKeyValue[] = [
      { key: 'arr', value: { kind: 'array', v: [str('x'), { kind: 'kvlist', v: [{ key: 'y', value: str('z') }] }] } },
    ];
    const m = tracesOf([sampleSpan({ attributes: attrs })]);
    const plain = TraceRequest.toObject(TraceRequest.decode(encodeTraces(m))) as Record<string, unknown>;
    const Req = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
    const decorated = withExtras(plain);
    const bytes = Req.encode(Req.fromObject(decorated)).finish();
    expect(bytes.length).toBeGreaterThan(encodeTraces(m).length + 200);
    expect(decodeTracesProto(bytes, LIMITS).rows).toStrictEqual(expectedSpanRows(m));
  });

  it('treats an empty request as a success with nothing in it', () => {
    expect(decodeTracesProto(new Uint8Array(0), LIMITS)).toStrictEqual({ rows: [], rejected: 0, errorMessage: '' });
  });

  it('refuses a known field with the wrong wire type', () => {
    // Span.trace_id (bytes) sent as a varint.
    const bytes = new WireWriter().fork().fork().fork().varintField(1, 5).join(2).join(2).join(1).finish();
    expect(() => decodeTracesProto(bytes, LIMITS)).toThrow(DecodeError);
    expect(() => decodeTracesProto(bytes, LIMITS)).toThrow(/Span field 1 has wire type 0/);
  });

  it('refuses a field that runs past the end of its enclosing message', () => {
    // A Span whose length says 3 but whose name field claims 5 bytes (which the outer message has).
    const bytes = new WireWriter().fork().fork().raw([0x12, 0x03, 0x2a, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65]).join(2).join(1).finish();
    expect(() => decodeTracesProto(bytes, LIMITS)).toThrow(DecodeError);
  });

  it('throws DecodeError, never anything else, for every truncation of a valid request', () => {
    const bytes = encodeTraces(tracesOf([sampleSpan(), sampleSpan({ attributes: [{ key: 'n', value: nestedArray(3) }] })]));
    let refused = 0;
    for (let n = 1; n < bytes.length; n++) {
      try {
        decodeTracesProto(bytes.subarray(0, n), LIMITS);
      } catch (err) {
        expect(err).toBeInstanceOf(DecodeError);
        refused++;
      }
    }
    // Every cut inside the single top-level message is detected.
    expect(refused).toBe(bytes.length - 1);
  });

  it('throws only DecodeError on random bytes and random mutations of valid requests', () => {
    const valid = encodeTraces(tracesOf([sampleSpan(), sampleSpan({ attributes: [{ key: 'n', value: nestedArray(2) }] })]));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => {
            const b = Uint8Array.from(valid);
            for (const [i, v] of edits) b[i] = v;
            return b;
          }),
        ),
        (bytes) => {
          try {
            const r = decodeTracesProto(bytes, LIMITS);
            for (const row of r.rows) {
              expect(row.traceId).toMatch(/^[0-9a-f]{32}$/);
              expect(row.spanId).toMatch(/^[0-9a-f]{16}$/);
            }
          } catch (err) {
            expect(err).toBeInstanceOf(DecodeError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('decodeLogsProto', () => {
  it('decodes every field of a log record, event_name included', () => {
    const { rows, rejected } = decodeLogsProto(encodeLogs(logsOf([sampleLog()])), LIMITS);
    expect(rejected).toBe(0);
    expect(rows).toStrictEqual([
      {
        timeUnixNano: 1_700_000_000_000_000_001n,
        observedTimeUnixNano: 1_700_000_000_000_000_002n,
        traceId: '5b8efff798038103d269b633813fc60c',
        spanId: 'eee19b7ec3c1b174',
        flags: 1,
        severityNumber: 17,
        severityText: 'ERROR',
        body: { stringValue: 'payment failed' },
        eventName: 'payment.failed',
        serviceName: 'checkout',
        resource: {
          attributes: [
            { key: 'service.name', value: { stringValue: 'checkout' } },
            { key: 'host.name', value: { stringValue: 'node-1' } },
          ],
          droppedAttributesCount: 6,
          schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
        },
        scope: {
          name: '@opentelemetry/instrumentation-http',
          version: '0.57.0',
          attributes: [{ key: 'scope.attr', value: { boolValue: true } }],
          droppedAttributesCount: 7,
          schemaUrl: 'https://opentelemetry.io/schemas/1.25.0',
        },
        attributes: [{ key: 'user.id', value: { intValue: '42' } }],
        droppedAttributesCount: 1,
      },
    ]);
  });

  it('stores an absent body as {}', () => {
    const { rows } = decodeLogsProto(encodeLogs(logsOf([sampleLog({ body: undefined })])), LIMITS);
    expect(rows[0].body).toStrictEqual({});
  });

  it('matches protobufjs on random requests', () => {
    fc.assert(
      fc.property(arbLogs, (m) => {
        const { rows, rejected } = decodeLogsProto(encodeLogs(m), LIMITS);
        expect(rejected).toBe(0);
        expect(rows).toStrictEqual(expectedLogRows(m));
        expect(decodeLogsProto(encodeLogsWire(m), LIMITS).rows).toStrictEqual(rows);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps records with empty, all-zero or wrong-length ids, stored as not linked', () => {
    const logs = [
      sampleLog({ traceId: new Uint8Array(0), spanId: new Uint8Array(0), eventName: 'unlinked' }),
      sampleLog({ traceId: new Uint8Array(16), spanId: new Uint8Array(8), eventName: 'zero' }),
      sampleLog({ traceId: hexBytes('01'.repeat(8)) }),
      sampleLog({ spanId: hexBytes('01'.repeat(16)) }),
    ];
    const { rows, rejected, errorMessage } = decodeLogsProto(encodeLogs(logsOf(logs)), LIMITS);
    expect(rows.map((r) => [r.eventName, r.traceId, r.spanId])).toEqual([
      ['unlinked', '', ''],
      ['zero', '', ''],
      ['payment.failed', '', 'eee19b7ec3c1b174'],
      ['payment.failed', '5b8efff798038103d269b633813fc60c', ''],
    ]);
    expect(rejected).toBe(0);
    expect(errorMessage).toBe('');
  });

  it('rejects a record whose body nests too deep and keeps the others', () => {
    const logs = [sampleLog({ body: nestedArray(1000) }), sampleLog({ eventName: 'kept' })];
    const { rows, errorMessage } = decodeLogsProto(encodeLogsWire(logsOf(logs)), LIMITS);
    expect(rows.map((r) => r.eventName)).toEqual(['kept']);
    expect(errorMessage).toBe('1 log record rejected: value nested deeper than 100 levels (1)');
  });
});
