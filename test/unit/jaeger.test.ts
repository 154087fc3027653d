// The Jaeger renderer and the Jaeger API's parameter parsing, without a server.
import { describe, expect, it } from 'vitest';
import { JaegerParamError, parseGoDuration, parseTraceId, parseTraceRequest } from '../../src/query/jaeger-api.ts';
import { toJaegerOperations, toJaegerTrace } from '../../src/query/jaeger.ts';
import { makeSpan } from '../helpers/rows.ts';

const T0 = 1_700_000_000_123_456_789n;

describe('toJaegerTrace', () => {
  it('maps an OTLP span to a Jaeger span field for field', () => {
    const root = makeSpan({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      name: 'GET /orders',
      kind: 2,
      flags: 0x301,
      traceState: 'vendor=1',
      startTimeUnixNano: T0,
      endTimeUnixNano: T0 + 250_000_999n,
      statusCode: 2,
      statusMessage: 'boom',
      attributes: [
        { key: 'http.method', value: { stringValue: 'GET' } },
        { key: 'http.status_code', value: { intValue: '500' } },
        { key: 'ratio', value: { doubleValue: 0.25 } },
        { key: 'ok', value: { boolValue: false } },
        { key: 'raw', value: { bytesValue: 'AAEC' } },
        { key: 'list', value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '2' }] } } },
      ],
      droppedAttributesCount: 0,
      events: [{ timeUnixNano: T0 + 5_000n, name: 'retry', attributes: [{ key: 'attempt', value: { intValue: '2' } }], droppedAttributesCount: 0 }],
      droppedEventsCount: 0,
      links: [{ traceId: 'aa'.repeat(16), spanId: 'bb'.repeat(8), traceState: '', flags: 0, attributes: [], droppedAttributesCount: 0 }],
      droppedLinksCount: 0,
      scope: { name: 'lib', version: '1.2', attributes: [], droppedAttributesCount: 0, schemaUrl: '' },
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'shop' } }, { key: 'host.name', value: { stringValue: 'h1' } }], droppedAttributesCount: 0, schemaUrl: '' },
      serviceName: 'shop',
    });
    const trace = toJaegerTrace([root]);
    expect(trace).toEqual({
      traceID: '0af7651916cd43dd8448eb211c80319c',
      processes: { p1: { serviceName: 'shop', tags: [{ key: 'host.name', type: 'string', value: 'h1' }] } },
      warnings: null,
      spans: [
        {
          traceID: '0af7651916cd43dd8448eb211c80319c',
          spanID: 'b7ad6b7169203331',
          flags: 1,
          operationName: 'GET /orders',
          references: [{ refType: 'FOLLOWS_FROM', traceID: 'aa'.repeat(16), spanID: 'bb'.repeat(8) }],
          startTime: 1_700_000_000_123_456,
          duration: 250_000,
          tags: [
            { key: 'http.method', type: 'string', value: 'GET' },
            { key: 'http.status_code', type: 'int64', value: 500 },
            { key: 'ratio', type: 'float64', value: 0.25 },
            { key: 'ok', type: 'bool', value: false },
            { key: 'raw', type: 'binary', value: 'AAEC' },
            { key: 'list', type: 'string', value: '["a",2]' },
            { key: 'span.kind', type: 'string', value: 'server' },
            { key: 'otel.status_code', type: 'string', value: 'ERROR' },
            { key: 'error', type: 'bool', value: true },
            { key: 'otel.status_description', type: 'string', value: 'boom' },
            { key: 'otel.scope.name', type: 'string', value: 'lib' },
            { key: 'otel.scope.version', type: 'string', value: '1.2' },
            { key: 'w3c.tracestate', type: 'string', value: 'vendor=1' },
          ],
          logs: [{ timestamp: 1_700_000_000_123_461, fields: [{ key: 'event', type: 'string', value: 'retry' }, { key: 'attempt', type: 'int64', value: 2 }] }],
          processID: 'p1',
          warnings: null,
        },
      ],
    });
  });

  it('orders spans by start, links children with CHILD_OF and shares processes by service and resource', () => {
    const root = makeSpan({ serviceName: 'web', startTimeUnixNano: T0 + 10n });
    const child = makeSpan({ traceId: root.traceId, parentSpanId: root.spanId, serviceName: 'api', startTimeUnixNano: T0 + 20n, links: [] });
    const sibling = makeSpan({ traceId: root.traceId, parentSpanId: root.spanId, serviceName: 'web', resource: root.resource, startTimeUnixNano: T0 + 30n });
    const t = toJaegerTrace([sibling, child, root]);
    expect(t.spans.map((s) => s.spanID)).toEqual([root.spanId, child.spanId, sibling.spanId]);
    expect(t.spans[1]!.references).toEqual([{ refType: 'CHILD_OF', traceID: root.traceId, spanID: root.spanId }]);
    expect(t.spans.map((s) => s.processID)).toEqual(['p1', 'p2', 'p1']);
    expect(Object.values(t.processes).map((p) => p.serviceName)).toEqual(['web', 'api']);
  });

  it('names in warnings what Jaeger cannot carry instead of dropping it silently', () => {
    const s = makeSpan({ kind: 9, attributes: [{ key: 'big', value: { intValue: '9223372036854775807' } }, { key: 'nan', value: { doubleValue: 'NaN' } }] });
    const span = toJaegerTrace([s]).spans[0]!;
    expect(span.tags).toContainEqual({ key: 'big', type: 'string', value: '9223372036854775807' });
    expect(span.tags).toContainEqual({ key: 'nan', type: 'string', value: 'NaN' });
    const w = span.warnings!.join('\n');
    expect(w).toMatch(/big: int64 9223372036854775807 is beyond 2\^53/);
    expect(w).toMatch(/span kind 9/);
    expect(w).toMatch(/dropped 2 attributes/);
    expect(w).toMatch(/dropped 4 events/);
    expect(w).toMatch(/dropped 6 links/);
    expect(w).toMatch(/link to .*attributes and trace state/);
    expect(w).toMatch(/scope attributes \(1\)/);
  });

  it("names what a process cannot carry on the process's first span too, where the Jaeger UI and Grafana show it", () => {
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'web' } }, { key: 'host.id', value: { intValue: '9223372036854775807' } }], droppedAttributesCount: 0, schemaUrl: '' };
    const root = makeSpan({ serviceName: 'web', resource, startTimeUnixNano: T0 + 10n, links: [] });
    const child = makeSpan({ traceId: root.traceId, parentSpanId: root.spanId, serviceName: 'web', resource, startTimeUnixNano: T0 + 20n, links: [] });
    const t = toJaegerTrace([child, root]);
    expect(t.warnings).toEqual(['process p1: attribute host.id: int64 9223372036854775807 is beyond 2^53, sent as a string']);
    expect(t.spans[0]!.warnings).toContain(t.warnings![0]);
    expect(t.spans[1]!.warnings ?? []).not.toContain(t.warnings![0]);
  });

  it('names the dropped counts of a link and of the scope', () => {
    // A link with nothing else Jaeger cannot carry (no attributes, no trace state): its dropped count alone.
    const link = { traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), traceState: '', flags: 0, attributes: [], droppedAttributesCount: 3 };
    const s = makeSpan({ links: [link], droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0, events: [] });
    s.scope = { ...s.scope, attributes: [], droppedAttributesCount: 2 };
    const t = toJaegerTrace([s]);
    const w = t.spans[0]!.warnings!.join('\n');
    expect(w).toMatch(/link to (ab){16}\/(cd){8}: the sender dropped 3 attributes/);
    expect(w).toMatch(/instrumentation scope: the sender dropped 2 attributes/);
  });

  it("names the resource's dropped attribute count as the process's, on its first span too", () => {
    // A resource with nothing else Jaeger cannot carry: its dropped count alone.
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'web' } }, { key: 'host.name', value: { stringValue: 'a' } }], droppedAttributesCount: 4, schemaUrl: '' };
    const root = makeSpan({ serviceName: 'web', resource, startTimeUnixNano: T0 + 10n, links: [], droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0, events: [] });
    const child = makeSpan({ traceId: root.traceId, parentSpanId: root.spanId, serviceName: 'web', resource, startTimeUnixNano: T0 + 20n, links: [] });
    const t = toJaegerTrace([child, root]);
    expect(t.warnings).toEqual(['process p1: the sender dropped 4 attributes']);
    expect(t.spans[0]!.warnings).toContain('process p1: the sender dropped 4 attributes');
    expect(t.spans[1]!.warnings ?? []).not.toContain('process p1: the sender dropped 4 attributes');
  });

  it("names a resource's dropped count when an earlier span's resource of the same attributes dropped none", () => {
    // Two instances of a service whose SDK's resource limit kept the same attributes: one dropped
    // none, the other 3. The second's spans must not join the first's process and lose the count.
    const attributes = [{ key: 'service.name', value: { stringValue: 'web' } }, { key: 'host.name', value: { stringValue: 'a' } }];
    const whole = { attributes, droppedAttributesCount: 0, schemaUrl: '' };
    const cut = { attributes, droppedAttributesCount: 3, schemaUrl: '' };
    const root = makeSpan({ serviceName: 'web', resource: whole, startTimeUnixNano: T0 + 10n, links: [], droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0, events: [] });
    const child = makeSpan({ traceId: root.traceId, parentSpanId: root.spanId, serviceName: 'web', resource: cut, startTimeUnixNano: T0 + 20n, links: [], droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0, events: [] });
    const t = toJaegerTrace([root, child]);
    expect(t.spans[1]!.processID).not.toBe(t.spans[0]!.processID);
    expect(t.warnings).toEqual([`process ${t.spans[1]!.processID}: the sender dropped 3 attributes`]);
    expect(t.spans[1]!.warnings).toContain(`process ${t.spans[1]!.processID}: the sender dropped 3 attributes`);
  });

  it('words span kinds as Jaeger does', () => {
    expect(toJaegerOperations([0, 1, 2, 3, 4, 5].map((kind) => ({ name: 'op', kind }))).map((o) => o.spanKind)).toEqual(['unspecified', 'internal', 'server', 'client', 'producer', 'consumer']);
  });
});

describe('Jaeger API parameters', () => {
  const NOW = 1_700_000_000_000_000_000n;
  const parse = (qs: string) => parseTraceRequest(new URLSearchParams(qs), 1000, NOW);

  it('reads Go durations as Jaeger does', () => {
    expect(parseGoDuration('d', '1.5s')).toBe(1_500_000_000n);
    expect(parseGoDuration('d', '1h30m')).toBe(5_400_000_000_000n);
    expect(parseGoDuration('d', '250us')).toBe(250_000n);
    expect(parseGoDuration('d', '0')).toBe(0n);
    for (const bad of ['', '5', '1x', 's', '1.5', '-1s', '1s ']) expect(() => parseGoDuration('minDuration', bad), bad).toThrow(JaegerParamError);
  });

  it('reads a search as the Jaeger UI sends it', () => {
    const r = parse('service=shop&operation=GET%20%2F&tags=%7B%22http.status_code%22%3A500%7D&tag=a%3Ab%3Ac&start=1699999990000000&end=1700000000000000&minDuration=1ms&maxDuration=2s&limit=5&lookback=2d');
    expect(r).toEqual({
      search: {
        service: 'shop',
        name: 'GET /',
        startNano: 1_699_999_990_000_000_000n,
        // Through the end's microsecond and the longest duration's: Jaeger's times are whole microseconds.
        endNano: 1_700_000_000_000_000_999n,
        minDurationNano: 1_000_000n,
        maxDurationNano: 2_000_000_999n,
        limit: 5,
        attributes: [
          { key: 'http.status_code', value: '500' },
          { key: 'a', value: 'b:c' },
        ],
      },
    });
  });

  it("reads the Jaeger UI's lookbacks in days and weeks when no start is given", () => {
    expect(parse('service=s&lookback=2d')).toMatchObject({ search: { startNano: NOW - 2n * 86_400_000_000_000n, endNano: NOW } });
    expect(parse('service=s&lookback=1w')).toMatchObject({ search: { startNano: NOW - 7n * 86_400_000_000_000n } });
  });

  it("reads the tags it shows for a span's status (otel.status_code) as a condition on the status, error=true beside the query", () => {
    // error=true is a span of status ERROR or with the attribute error=true (searchJaeger asks for both).
    expect(parse('service=s&tags=%7B%22error%22%3A%22true%22%2C%22http.route%22%3A%22%2Fa%22%7D')).toMatchObject({ search: { attributes: [{ key: 'http.route', value: '/a' }] }, errorTag: true });
    expect(parse('service=s&tags=%7B%22error%22%3A%22true%22%7D')).not.toHaveProperty('search.statusCode');
    expect(parse('service=s&tag=otel.status_code%3AOK')).toMatchObject({ search: { statusCode: 1 } });
    expect(parse('service=s&tag=error%3Atrue')).toEqual(parse('service=s&tags=%7B%22error%22%3A%22true%22%7D'));
    // Two statuses at once: no span has both.
    expect(parse('service=s&tag=otel.status_code%3AERROR&tag=otel.status_code%3AOK')).toMatchObject({ search: { statusCode: -1 } });
  });

  it('reads a limit above query.maxLimit as query.maxLimit, with a warning', () => {
    expect(parse('service=s&limit=1500')).toMatchObject({ search: { limit: 1000 }, warning: expect.stringMatching(/limit 1500 is above query\.maxLimit \(1000\)/) });
    expect(parse('service=s&limit=1000')).not.toHaveProperty('warning');
  });

  it('reads maxDuration 0 as no bound, as Jaeger does', () => {
    const r = parse('service=s&minDuration=1s&maxDuration=0');
    expect(r).toMatchObject({ search: { minDurationNano: 1_000_000_000n } });
    expect('search' in r && r.search.maxDurationNano).toBeUndefined();
  });

  it('ignores parameters it does not know, as Jaeger does', () => {
    expect(parse('service=s&spanKind=server&searchDepth=20')).toEqual(parse('service=s'));
  });

  it('defaults to the last hour (or the lookback) up to now, 20 traces', () => {
    expect(parse('service=s')).toEqual({ search: { service: 's', startNano: NOW - 3_600_000_000_000n, endNano: NOW, limit: 20 } });
    expect(parse('service=s&lookback=2h&limit=0')).toEqual({ search: { service: 's', startNano: NOW - 7_200_000_000_000n, endNano: NOW, limit: 20 } });
  });

  it('reads trace ids, left-padded to 32 digits', () => {
    expect(parse('traceID=ABC&traceID=0af7651916cd43dd8448eb211c80319c')).toEqual({ traceIds: ['0'.repeat(29) + 'abc', '0af7651916cd43dd8448eb211c80319c'] });
    expect(parseTraceId('traceID', '1')).toBe('0'.repeat(31) + '1');
  });

  it('answers bad parameters naming them', () => {
    const cases: [string, RegExp][] = [
      ['', /'service'.*required/],
      ['service=s&limit=-1', /'limit'/],
      ['service=s&limit=ten', /'limit'/],
      ['service=s&start=abc', /'start'/],
      ['service=s&start=99999999999999999999', /'start'/],
      ['service=s&end=1&start=2', /'start': after end/],
      ['service=s&minDuration=2s&maxDuration=1s', /'minDuration'/],
      ['service=s&tags=%5B1%5D', /'tags'/],
      ['service=s&tags=nope', /'tags'/],
      ['service=s&tag=nocolon', /'tag'/],
      // An empty key, which OTLP never sends: refused, as `tag=:x` is.
      ['service=s&tags=%7B%22%22%3A%22x%22%7D', /'tags': expected a non-empty key/],
      ['service=s&tag=%3Ax', /'tag'/],
      ['service=s&service=t', /'service': given more than once/],
      ['traceID=xyz', /'traceID'/],
      ['traceID=' + 'a'.repeat(33), /'traceID'/],
      ['service=s&lookback=forever', /'lookback'/],
    ];
    for (const [qs, msg] of cases) expect(() => parse(qs), qs).toThrow(msg);
  });
});
