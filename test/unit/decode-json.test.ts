// The OTLP/JSON decoders: the same rows as protobuf for the same request, whatever spelling the
// sender chose (camelCase or snake_case keys, int64 as strings or numbers, enum numbers or
// names, upper- or lowercase hex), and the JSON-specific bad inputs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError, decodeLogsJson, decodeLogsProto, decodeTracesJson, decodeTracesProto } from '../../src/pipeline/decode/index.ts';
import { JSON_CONTAINER_CHARGE, JSON_DECODE_CHARGE, jsonContainers, jsonDecodeBytes } from '../../src/pipeline/decode/common.ts';
import {
  arbJsonStyle,
  arbLogs,
  arbTraces,
  encodeLogs,
  encodeTraces,
  encodeTracesWire,
  expectedLogRows,
  expectedSpanRows,
  jsonLogs,
  jsonTraces,
  LIMITS,
  logsOf,
  nestedArray,
  sampleLog,
  sampleSpan,
  toJsonText,
  tracesOf,
  type JsonStyle,
} from '../helpers/otlp-build.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const traces = (json: unknown) => decodeTracesJson(utf8(typeof json === 'string' ? json : JSON.stringify(json)), LIMITS);
const logs = (json: unknown) => decodeLogsJson(utf8(typeof json === 'string' ? json : JSON.stringify(json)), LIMITS);
const CAMEL: JsonStyle = { snake: false, numbers: false, enumNames: false, upperHex: false };

/** A request with one span given in OTLP/JSON form. */
const withSpan = (span: Record<string, unknown>) => ({
  resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] }, scopeSpans: [{ scope: { name: 's' }, spans: [span] }] }],
});
const SPAN = { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'op' };
const withLog = (log: Record<string, unknown>) => ({ resourceLogs: [{ scopeLogs: [{ logRecords: [log] }] }] });

describe('decodeTracesJson', () => {
  it('decodes the same rows as the protobuf decoder for the same request', () => {
    const m = tracesOf([sampleSpan()]);
    const fromJson = decodeTracesJson(utf8(toJsonText(jsonTraces(m, CAMEL))), LIMITS);
    expect(fromJson.rejected).toBe(0);
    expect(fromJson.rows).toStrictEqual(decodeTracesProto(encodeTraces(m), LIMITS).rows);
  });

  it('decodes random requests in every sender style to the expected rows', () => {
    fc.assert(
      fc.property(arbTraces, arbJsonStyle, (m, style) => {
        const { rows, rejected } = decodeTracesJson(utf8(toJsonText(jsonTraces(m, style))), LIMITS);
        expect(rejected).toBe(0);
        expect(rows).toStrictEqual(expectedSpanRows(m));
      }),
      { numRuns: 300 },
    );
  });

  it('accepts snake_case keys', () => {
    const json = {
      resource_spans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { string_value: 'snake' } }], dropped_attributes_count: 2 },
          schema_url: 'r',
          scope_spans: [
            {
              scope: { name: 'lib', dropped_attributes_count: 1 },
              schema_url: 's',
              spans: [
                {
                  trace_id: SPAN.traceId,
                  span_id: SPAN.spanId,
                  parent_span_id: 'eee19b7ec3c1b173',
                  trace_state: 'a=b',
                  start_time_unix_nano: '1700000000000000001',
                  end_time_unix_nano: '1700000000000000011',
                  attributes: [
                    { key: 'i', value: { int_value: '9007199254740993' } },
                    { key: 'd', value: { double_value: 1.5 } },
                    { key: 'b', value: { bool_value: true } },
                    { key: 'y', value: { bytes_value: 'AAE=' } },
                    { key: 'a', value: { array_value: { values: [{ string_value: 'x' }] } } },
                    { key: 'k', value: { kvlist_value: { values: [{ key: 'z', value: { int_value: 1 } }] } } },
                  ],
                  dropped_attributes_count: 3,
                  dropped_events_count: 4,
                  dropped_links_count: 5,
                  events: [{ time_unix_nano: '5', name: 'e', dropped_attributes_count: 6 }],
                  links: [{ trace_id: '0af7651916cd43dd8448eb211c80319c', span_id: 'b7ad6b7169203331', trace_state: 't', dropped_attributes_count: 7 }],
                  status: { code: 2, message: 'bad' },
                },
              ],
            },
          ],
        },
      ],
    };
    const { rows } = traces(json);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      traceId: SPAN.traceId,
      parentSpanId: 'eee19b7ec3c1b173',
      traceState: 'a=b',
      startTimeUnixNano: 1700000000000000001n,
      durationNano: 10n,
      serviceName: 'snake',
      resource: { droppedAttributesCount: 2, schemaUrl: 'r' },
      scope: { name: 'lib', droppedAttributesCount: 1, schemaUrl: 's' },
      droppedAttributesCount: 3,
      droppedEventsCount: 4,
      droppedLinksCount: 5,
      events: [{ timeUnixNano: 5n, name: 'e', attributes: [], droppedAttributesCount: 6 }],
      links: [{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceState: 't', droppedAttributesCount: 7 }],
      statusCode: 2,
      statusMessage: 'bad',
    });
    expect(rows[0].attributes).toStrictEqual([
      { key: 'i', value: { intValue: '9007199254740993' } },
      { key: 'd', value: { doubleValue: 1.5 } },
      { key: 'b', value: { boolValue: true } },
      { key: 'y', value: { bytesValue: 'AAE=' } },
      { key: 'a', value: { arrayValue: { values: [{ stringValue: 'x' }] } } },
      { key: 'k', value: { kvlistValue: { values: [{ key: 'z', value: { intValue: '1' } }] } } },
    ]);
  });

  it('keeps int64 exact beyond 2^53, as strings and as bare numbers', () => {
    const text = `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"${SPAN.traceId}","spanId":"${SPAN.spanId}",
      "startTimeUnixNano":1700000000000000001,"endTimeUnixNano":"9223372036854775807",
      "attributes":[
        {"key":"n","value":{"intValue":9007199254740993}},
        {"key":"neg","value":{"intValue":-9223372036854775808}},
        {"key":"s","value":{"intValue":"9223372036854775807"}},
        {"key":"lead","value":{"intValue":"-007"}},
        {"key":"small","value":{"intValue":42}},
        {"key":"d","value":{"doubleValue":12345678901234567890}}]}]}]}]}`;
    const { rows } = traces(text);
    expect(rows[0].startTimeUnixNano).toBe(1700000000000000001n);
    expect(rows[0].endTimeUnixNano).toBe(9223372036854775807n);
    expect(rows[0].attributes.map((a) => a.value)).toStrictEqual([
      { intValue: '9007199254740993' },
      { intValue: '-9223372036854775808' },
      { intValue: '9223372036854775807' },
      { intValue: '-7' },
      { intValue: '42' },
      { doubleValue: 12345678901234567890 },
    ]);
  });

  it('keeps int64 and fixed64 exact beyond 2^53 when written with a zero fraction or an exponent, and refuses a fraction', () => {
    for (const v of ['1234567890123456789.0', '1.234567890123456789e18', '12345678901234567890e-1']) {
      const text = `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"${SPAN.traceId}","spanId":"${SPAN.spanId}","startTimeUnixNano":${v},"attributes":[{"key":"i","value":{"intValue":${v}}}]}]}]}]}`;
      const { rows } = traces(text);
      expect(rows[0].startTimeUnixNano, v).toBe(1234567890123456789n);
      expect(rows[0].attributes[0].value, v).toStrictEqual({ intValue: '1234567890123456789' });
    }
    // Not an integer: refused, never rounded.
    expect(() => traces(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"${SPAN.traceId}","spanId":"${SPAN.spanId}","startTimeUnixNano":1234567890123456789.5}]}]}]}`)).toThrow(DecodeError);
  });

  it('refuses int64 values out of range or not integers', () => {
    expect(() => traces(withSpan({ ...SPAN, attributes: [{ key: 'x', value: { intValue: '9223372036854775808' } }] }))).toThrow(/intValue: expected a 64-bit integer/);
    expect(() => traces(withSpan({ ...SPAN, attributes: [{ key: 'x', value: { intValue: 1.5 } }] }))).toThrow(DecodeError);
    expect(() => traces(withSpan({ ...SPAN, startTimeUnixNano: '-1' }))).toThrow(/resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.startTimeUnixNano/);
    expect(() => traces(withSpan({ ...SPAN, endTimeUnixNano: '18446744073709551616' }))).toThrow(DecodeError);
  });

  it('accepts enums as integers and as names', () => {
    const byNumber = traces(withSpan({ ...SPAN, kind: 3, status: { code: 1 } })).rows[0];
    const byName = traces(withSpan({ ...SPAN, kind: 'SPAN_KIND_CLIENT', status: { code: 'STATUS_CODE_OK' } })).rows[0];
    expect([byNumber.kind, byNumber.statusCode]).toEqual([3, 1]);
    expect([byName.kind, byName.statusCode]).toEqual([3, 1]);
    expect(() => traces(withSpan({ ...SPAN, kind: 'SERVER' }))).toThrow(/kind: expected an enum number or name, got "SERVER"/);
  });

  it('ignores unknown fields and treats null as absent', () => {
    const { rows } = traces({
      futureField: { anything: [1, 2] },
      resourceSpans: [{ extra: true, scopeSpans: [{ spans: [{ ...SPAN, somethingNew: 'x', status: null, parentSpanId: null, attributes: null }] }] }],
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ parentSpanId: '', statusCode: 0, attributes: [] });
  });

  it('lowercases hex ids given in upper case', () => {
    const { rows } = traces(withSpan({ traceId: SPAN.traceId.toUpperCase(), spanId: 'EEE19B7EC3C1B174', parentSpanId: 'ABCDEF0123456789' }));
    expect([rows[0].traceId, rows[0].spanId, rows[0].parentSpanId]).toEqual([SPAN.traceId, 'eee19b7ec3c1b174', 'abcdef0123456789']);
  });

  it('rejects spans with base64, short, zero or non-hex ids and keeps the rest', () => {
    const base64TraceId = Buffer.from(SPAN.traceId, 'hex').toString('base64');
    const json = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                { ...SPAN, traceId: base64TraceId },
                { ...SPAN, traceId: '0'.repeat(32) },
                { ...SPAN, traceId: 'zz'.repeat(16) },
                { ...SPAN, spanId: Buffer.from(SPAN.spanId, 'hex').toString('base64') },
                { ...SPAN, spanId: 12345 },
                { ...SPAN, parentSpanId: 'eee19b7e' },
                { ...SPAN, parentSpanId: '0000000000000000', name: 'zero parent: a root' },
                { ...SPAN, links: [{ traceId: 'abc', spanId: SPAN.spanId }] },
                { ...SPAN, name: 'kept' },
              ],
            },
          ],
        },
      ],
    };
    const { rows, rejected, errorMessage } = traces(json);
    expect(rows.map((r) => [r.name, r.parentSpanId])).toEqual([['zero parent: a root', ''], ['kept', '']]);
    expect(rejected).toBe(7);
    expect(errorMessage).toBe('7 spans rejected: invalid trace id (3), invalid span id (2), invalid parent span id (1), invalid link id (1)');
  });

  it('stores bytesValue as canonical base64 and refuses what is not base64', () => {
    const { rows } = traces(withSpan({ ...SPAN, attributes: [{ key: 'std', value: { bytesValue: '+/8=' } }, { key: 'url', value: { bytesValue: '-_8' } }] }));
    expect(rows[0].attributes.map((a) => a.value)).toStrictEqual([{ bytesValue: '+/8=' }, { bytesValue: '+/8=' }]);
    expect(() => traces(withSpan({ ...SPAN, attributes: [{ key: 'x', value: { bytesValue: 'not base64!' } }] }))).toThrow(/bytesValue/);
    // Text of base64's alphabet that is not whole quantums: Buffer.from would drop what dangles
    // ('QUJDR' stored as 'QUJD', 'A' and 'Q=' as no bytes) and the sender get 200.
    const stored = (b64: string) => traces(withSpan({ ...SPAN, attributes: [{ key: 'b', value: { bytesValue: b64 } }] })).rows[0].attributes[0].value;
    expect(stored('QUJDRA')).toStrictEqual({ bytesValue: 'QUJDRA==' });
    expect(stored('')).toStrictEqual({ bytesValue: '' });
    for (const bad of ['QUJDR', 'A', 'Q=', 'QUJD=', 'QUJDRA=', 'QUJDRA===', 'QU=D']) {
      expect(() => stored(bad), bad).toThrow(/bytesValue/);
    }
  });

  it('accepts the non-finite doubles as strings', () => {
    const values = ['NaN', 'Infinity', '-Infinity'].map((d) => ({ key: d, value: { doubleValue: d } }));
    const { rows } = traces(withSpan({ ...SPAN, attributes: values }));
    expect(rows[0].attributes.map((a) => a.value)).toStrictEqual([{ doubleValue: 'NaN' }, { doubleValue: 'Infinity' }, { doubleValue: '-Infinity' }]);
  });

  it('rejects a span whose attribute nests 1000 levels deep, as an item', () => {
    const m = tracesOf([sampleSpan({ attributes: [{ key: 'deep', value: nestedArray(1000) }] }), sampleSpan({ name: 'kept' })]);
    const { rows, rejected, errorMessage } = decodeTracesJson(utf8(toJsonText(jsonTraces(m, CAMEL))), LIMITS);
    expect(rows.map((r) => r.name)).toEqual(['kept']);
    expect(rejected).toBe(1);
    expect(errorMessage).toBe('1 span rejected: value nested deeper than 100 levels (1)');
  });

  // Written as text: the helpers' JSON.stringify is itself recursive and cannot build these.
  const deepValue = (levels: number) => '{"arrayValue":{"values":['.repeat(levels) + '{"stringValue":"bottom"}' + ']}}'.repeat(levels);
  const jsonSpan = (name: string, id: string, attrs: string) =>
    `{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"${id}","name":"${name}","startTimeUnixNano":1700000000000000001,"endTimeUnixNano":1700000000000000002,"attributes":[${attrs}]}`;

  it('answers a document nested deeper than the stack allows, with int64 numbers beyond 2^53, as protobuf does', () => {
    // Numbers beyond 2^53 make the decoder parse again with exact integers; that parse used a
    // JSON.parse reviver, which V8 runs recursively: 400 "Maximum call stack size exceeded".
    for (const levels of [101, 1000, 5000, 200_000]) {
      const text = `{"resourceSpans":[{"scopeSpans":[{"spans":[${jsonSpan('deep', '0000000000000001', `{"key":"deep","value":${deepValue(levels)}}`)},${jsonSpan('kept', '0000000000000002', '')}]}]}]}`;
      const json = decodeTracesJson(utf8(text), LIMITS);
      expect(json.rows.map((r) => [r.name, r.startTimeUnixNano])).toEqual([['kept', 1700000000000000001n]]);
      expect(json.errorMessage).toBe('1 span rejected: value nested deeper than 100 levels (1)');
      if (levels <= 1000) {
        const m = tracesOf([sampleSpan({ attributes: [{ key: 'deep', value: nestedArray(levels) }] }), sampleSpan({ name: 'kept' })]);
        const proto = decodeTracesProto(encodeTracesWire(m), LIMITS);
        expect({ rejected: json.rejected, errorMessage: json.errorMessage }).toStrictEqual({ rejected: proto.rejected, errorMessage: proto.errorMessage });
      }
    }
  });

  it('answers a resource and a log body nested deeper than the stack allows, with numeric timestamps, as protobuf does', () => {
    const deepResource = `{"resourceSpans":[{"resource":{"attributes":[{"key":"deep","value":${deepValue(100_000)}}]},"scopeSpans":[{"spans":[${jsonSpan('a', '0000000000000001', '')}]}]}]}`;
    expect(decodeTracesJson(utf8(deepResource), LIMITS)).toMatchObject({ rows: [], rejected: 1, errorMessage: '1 span rejected: value nested deeper than 100 levels (1)' });
    const record = (body: string) => `{"timeUnixNano":1700000000000000001,"body":${body}}`;
    const logs = `{"resourceLogs":[{"scopeLogs":[{"logRecords":[${record(deepValue(100_000))},${record('{"stringValue":"kept"}')}]}]}]}`;
    const r = decodeLogsJson(utf8(logs), LIMITS);
    expect(r.rows.map((x) => [x.body, x.timeUnixNano])).toEqual([[{ stringValue: 'kept' }, 1700000000000000001n]]);
    expect(r.errorMessage).toBe('1 log record rejected: value nested deeper than 100 levels (1)');
  });

  it('keeps __proto__ and constructor as data, as attribute keys and as JSON object keys', () => {
    const text = `{"__proto__":{"polluted":true},"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"${SPAN.traceId}","spanId":"${SPAN.spanId}",
      "attributes":[{"key":"__proto__","value":{"stringValue":"a"}},{"key":"constructor","value":{"kvlistValue":{"values":[{"key":"__proto__","value":{"boolValue":true}}]}}}],
      "__proto__":{"name":"injected"}}]}]}]}`;
    const { rows } = traces(text);
    expect(rows[0].name).toBe('');
    expect(rows[0].attributes).toStrictEqual([
      { key: '__proto__', value: { stringValue: 'a' } },
      { key: 'constructor', value: { kvlistValue: { values: [{ key: '__proto__', value: { boolValue: true } }] } } },
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('keeps the last value of a duplicated attribute key, once', () => {
    const { rows } = traces(withSpan({ ...SPAN, attributes: [{ key: 'a', value: { intValue: 1 } }, { key: 'b', value: {} }, { key: 'a', value: { intValue: 2 } }] }));
    expect(rows[0].attributes).toStrictEqual([
      { key: 'a', value: { intValue: '2' } },
      { key: 'b', value: {} },
    ]);
  });

  it('treats an empty body and {} as an empty request', () => {
    expect(decodeTracesJson(new Uint8Array(0), LIMITS)).toStrictEqual({ rows: [], rejected: 0, errorMessage: '' });
    expect(traces({})).toStrictEqual({ rows: [], rejected: 0, errorMessage: '' });
  });

  it('refuses undecodable JSON and the wrong top-level shape', () => {
    for (const text of ['{"resourceSpans": [', 'nope', '{"a":1}}', '\u00ff']) expect(() => traces(text)).toThrow(/invalid JSON/);
    for (const text of ['null', '[]', '42', '"x"']) expect(() => traces(text)).toThrow(/^OTLP\/JSON body: expected an ExportTraceServiceRequest object, got /);
    expect(() => traces({ resourceSpans: {} })).toThrow(/resourceSpans: expected an array, got an object/);
    expect(() => traces({ resourceSpans: [{ scopeSpans: [{ spans: 'x' }] }] })).toThrow(/resourceSpans\[0\]\.scopeSpans\[0\]\.spans: expected an array, got "x"/);
    expect(() => traces(withSpan({ ...SPAN, name: 5 }))).toThrow(/spans\[0\]\.name: expected a string, got 5/);
    expect(() => traces(withSpan({ ...SPAN, attributes: [{ key: 'x', value: 'plain' }] }))).toThrow(/value: expected an AnyValue object/);
    expect(() => traces(withSpan({ ...SPAN, droppedAttributesCount: -1 }))).toThrow(/droppedAttributesCount: expected an unsigned 32-bit integer/);
  });

  it('decodes invalid UTF-8 with replacement characters', () => {
    const text = Buffer.concat([utf8(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"${SPAN.traceId}","spanId":"${SPAN.spanId}","name":"a`), Buffer.from([0xff, 0xc3]), utf8('b"}]}]}]}')]);
    expect(decodeTracesJson(text, LIMITS).rows[0].name).toBe('a\uFFFD\uFFFDb');
  });
});

describe('decodeLogsJson', () => {
  it('decodes the same rows as the protobuf decoder for the same request', () => {
    const m = logsOf([sampleLog(), sampleLog({ body: undefined, traceId: new Uint8Array(0), spanId: new Uint8Array(0) })]);
    const fromJson = decodeLogsJson(utf8(toJsonText(jsonLogs(m, CAMEL))), LIMITS);
    expect(fromJson.rows).toStrictEqual(decodeLogsProto(encodeLogs(m), LIMITS).rows);
  });

  it('decodes random requests in every sender style to the expected rows', () => {
    fc.assert(
      fc.property(arbLogs, arbJsonStyle, (m, style) => {
        const { rows, rejected } = decodeLogsJson(utf8(toJsonText(jsonLogs(m, style))), LIMITS);
        expect(rejected).toBe(0);
        expect(rows).toStrictEqual(expectedLogRows(m));
      }),
      { numRuns: 300 },
    );
  });

  it('accepts severity names and snake_case, event_name included', () => {
    const { rows } = logs({
      resource_logs: [{ scope_logs: [{ log_records: [{ severity_number: 'SEVERITY_NUMBER_WARN2', severity_text: 'W', event_name: 'e', observed_time_unix_nano: '7' }] }] }],
    });
    expect(rows[0]).toMatchObject({ severityNumber: 14, severityText: 'W', eventName: 'e', observedTimeUnixNano: 7n, body: {}, traceId: '', spanId: '' });
  });

  it('treats empty, zero and malformed ids as not linked, keeping every record', () => {
    const { rows, rejected, errorMessage } = logs({
      resourceLogs: [
        {
          scopeLogs: [
            {
              logRecords: [
                { traceId: '', spanId: '', eventName: 'a' },
                { traceId: '0'.repeat(32), spanId: '0'.repeat(16), eventName: 'b' },
                { traceId: Buffer.alloc(16, 1).toString('base64'), eventName: 'c' },
                { spanId: 'xyz', eventName: 'd' },
              ],
            },
          ],
        },
      ],
    });
    expect(rows.map((r) => [r.eventName, r.traceId, r.spanId])).toEqual([
      ['a', '', ''],
      ['b', '', ''],
      ['c', '', ''],
      ['d', '', ''],
    ]);
    expect(rejected).toBe(0);
    expect(errorMessage).toBe('');
  });

  it('rejects a record whose body nests too deep', () => {
    const { rows, rejected } = decodeLogsJson(utf8(toJsonText(jsonLogs(logsOf([sampleLog({ body: nestedArray(101) }), sampleLog()]), CAMEL))), LIMITS);
    expect(rows).toHaveLength(1);
    expect(rejected).toBe(1);
  });

  it('refuses the wrong top-level shape', () => {
    expect(() => logs([])).toThrow(/expected an ExportLogsServiceRequest object/);
    expect(() => logs(withLog({ body: { stringValue: 5 } }))).toThrow(/resourceLogs\[0\]\.scopeLogs\[0\]\.logRecords\[0\]\.stringValue: expected a string/);
  });
});

describe('jsonContainers (what a JSON body costs a decode worker)', () => {
  it('counts the objects and arrays JSON.parse makes, not braces inside strings', () => {
    const text = '{"a":"{[\\"[{","b":[{},{"c":"]}\\\\"},[]],"d":"\\\\"}';
    const parsed = JSON.parse(text) as unknown;
    const made = (v: unknown): number => (typeof v === 'object' && v !== null ? 1 + Object.values(v).reduce<number>((n, x) => n + made(x), 0) : 0);
    expect(jsonContainers(Buffer.from(text))).toBe(made(parsed));
    expect(made(parsed)).toBe(5);
  });

  it('leaves SDK-shaped bodies to their per-byte charge and scans only what could pass the heap', () => {
    const attr = '{"key":"http.request.method","value":{"stringValue":"GET"}}';
    const body = Buffer.from(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[${Array(1000).fill(attr).join(',')}]}]}]}]}`);
    expect(jsonDecodeBytes(body, 1e12)).toBe(body.length * JSON_DECODE_CHARGE);
    expect(jsonDecodeBytes(body, body.length * 10)).toBe(body.length * JSON_DECODE_CHARGE);
    const empties = Buffer.from(`[${Array(1000).fill('{}').join(',')}]`);
    expect(jsonDecodeBytes(empties, empties.length * 10)).toBe(1001 * JSON_CONTAINER_CHARGE);
  });
});
