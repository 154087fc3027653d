// Protobuf merges a non-repeated message field given twice: a KeyValue's `value` or a
// LogRecord's `body` followed by an empty AnyValue (a proxy or a hand-rolled encoder that appends
// a field, or writes a default one after the real one) is still the first value, as protobufjs
// and the Collector's pdata read it, and an array_value or kvlist_value given again (in one
// AnyValue or in the next) adds its values to the list before it, as protobufjs reads it. Every
// store must keep those values, not an empty value or only the last list.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { WireWriter } from '../../src/pipeline/decode/index.ts';
import { createBackend } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { TransferSink } from '../../src/transfer/sink.ts';
import { LogsRequest, TraceRequest } from '../helpers/otlp-proto.ts';
import { storeFlags } from '../helpers/stores.ts';
import { tempDir } from '../helpers/tmp.ts';

/** protobufjs's plain objects, read by path. */
type Decoded = any;

const silent = pino({ level: 'silent' });
const STORES = storeFlags('twice', 1);
const sinks: TransferSink[] = [];
afterAll(async () => {
  for (const s of sinks) await s.shutdown();
});

/** A KeyValue whose value field is given twice: `value` (a string), then an empty AnyValue. */
function kvThenEmpty(w: WireWriter, field: number, key: string, value: string): WireWriter {
  return w.fork().stringField(1, key).fork().stringField(1, value).join(2).fork().join(2).join(field);
}

function resource(w: WireWriter, service: string): WireWriter {
  return kvThenEmpty(w.fork(), 1, 'service.name', service).join(1);
}

/** A started sink into a new store of the kind. */
async function sinkInto(store: string): Promise<TransferSink> {
  const flags = await STORES[store]!();
  const config = loadConfig({ flags: { 'storage.backend': store, 'storage.sqlite.path': join(tempDir(), 'th.db'), 'workers.threads': '1', 'writer.flushIntervalMs': '20', ...flags } });
  const sink = new TransferSink(config, await createBackend(config, { logger: silent, metrics: createMetrics() }), createMetrics(), silent);
  sinks.push(sink);
  await sink.start();
  return sink;
}

/** Sends the requests and waits until they are stored; each must be accepted whole (one item). */
async function store(sink: TransferSink, traces: Buffer, logs: Buffer): Promise<void> {
  const outcomes: unknown[] = [];
  await sink.send('traces', 'protobuf', traces, (o) => outcomes.push(o));
  await sink.send('logs', 'protobuf', logs, (o) => outcomes.push(o));
  await sink.drain();
  expect(outcomes).toMatchObject([{ kind: 'ok', accepted: 1 }, { kind: 'ok', accepted: 1 }]);
}

/** An AnyValue field (`field`) holding an array of the strings. */
function array(w: WireWriter, field: number, ...values: string[]): WireWriter {
  w.fork().fork();
  for (const v of values) w.fork().stringField(1, v).join(1);
  return w.join(5).join(field);
}

/** A kvlist_value field (6) of an AnyValue: string entries. */
function kvlist(w: WireWriter, entries: [string, string][]): WireWriter {
  w.fork();
  for (const [k, v] of entries) w.fork().stringField(1, k).fork().stringField(1, v).join(2).join(1);
  return w.join(6);
}

describe.each(Object.keys(STORES))('%s: a value field given twice', (kind) => {
  it('keeps the first value of an attribute, of service.name and of a log body when the second is empty, as protobufjs decodes them', async () => {
    const sink = await sinkInto(kind);
    const service = `svc-${randomBytes(4).toString('hex')}`;
    const traceId = randomBytes(16);

    const w = new WireWriter().fork();
    resource(w, service).fork().fork();
    w.bytesField(1, traceId).bytesField(2, randomBytes(8)).stringField(5, 'op');
    w.fixed64Field(7, 1_700_000_000_000_000_000n).fixed64Field(8, 1_700_000_000_100_000_000n);
    kvThenEmpty(w, 9, 'http.route', '/pay');
    const traces = Buffer.from(w.join(2).join(2).join(1).finish());

    const l = new WireWriter().fork();
    resource(l, service).fork().fork();
    l.fixed64Field(1, 1_700_000_000_000_000_000n).varintField(2, 9);
    l.fork().stringField(1, 'paid').join(5).fork().join(5);
    kvThenEmpty(l, 6, 'order', 'o-1');
    const logs = Buffer.from(l.join(2).join(2).join(1).finish());

    // What a conforming decoder reads from these bytes.
    const pbSpan = (TraceRequest.toObject(TraceRequest.decode(traces)) as Decoded).resourceSpans[0];
    expect(pbSpan.resource.attributes[0].value).toEqual({ stringValue: service });
    expect(pbSpan.scopeSpans[0].spans[0].attributes[0].value).toEqual({ stringValue: '/pay' });
    const pbLog = (LogsRequest.toObject(LogsRequest.decode(logs)) as Decoded).resourceLogs[0].scopeLogs[0].logRecords[0];
    expect(pbLog.body).toEqual({ stringValue: 'paid' });
    expect(pbLog.attributes[0].value).toEqual({ stringValue: 'o-1' });

    await store(sink, traces, logs);

    const [span] = await sink.backend.getTrace('default', traceId.toString('hex'));
    expect(span).toMatchObject({ serviceName: service, attributes: [{ key: 'http.route', value: { stringValue: '/pay' } }] });
    expect(span!.resource.attributes).toEqual([{ key: 'service.name', value: { stringValue: service } }]);
    expect([...(await sink.backend.searchLogs('default', { service, limit: 10 }))]).toMatchObject([{ serviceName: service, body: { stringValue: 'paid' }, attributes: [{ key: 'order', value: { stringValue: 'o-1' } }] }]);
  });

  it('adds a list given again to the list before it (attributes, kvlist entries, a log body), as protobufjs decodes them', async () => {
    const sink = await sinkInto(kind);
    const service = `svc-${randomBytes(4).toString('hex')}`;
    const traceId = randomBytes(16);
    const svc = (w: WireWriter) => w.fork().fork().stringField(1, 'service.name').fork().stringField(1, service).join(2).join(1).join(1);

    const w = new WireWriter().fork();
    svc(w).fork().fork();
    w.bytesField(1, traceId).bytesField(2, randomBytes(8)).stringField(5, 'op');
    w.fixed64Field(7, 1_700_000_000_000_000_000n).fixed64Field(8, 1_700_000_000_100_000_000n);
    // tags: two value fields, each an array; map: one value with two kvlist_value fields.
    w.fork().stringField(1, 'tags');
    array(w, 2, 'a', 'b');
    array(w, 2, 'c');
    w.join(9);
    w.fork().stringField(1, 'map').fork();
    kvlist(w, [['x', '1'], ['y', '2']]);
    kvlist(w, [['y', '3'], ['z', '4']]);
    w.join(2).join(9);
    const traces = Buffer.from(w.join(2).join(2).join(1).finish());

    const l = new WireWriter().fork();
    svc(l).fork().fork();
    l.fixed64Field(1, 1_700_000_000_000_000_000n);
    l.fork();
    kvlist(l, [['event', 'paid']]);
    l.join(5).fork();
    kvlist(l, [['amount', '12']]);
    l.join(5);
    const logs = Buffer.from(l.join(2).join(2).join(1).finish());

    const str = (v: string) => ({ stringValue: v });
    const tags = { arrayValue: { values: ['a', 'b', 'c'].map(str) } };
    const map = { kvlistValue: { values: [{ key: 'x', value: str('1') }, { key: 'y', value: str('3') }, { key: 'z', value: str('4') }] } };
    const body = { kvlistValue: { values: [{ key: 'event', value: str('paid') }, { key: 'amount', value: str('12') }] } };
    // What protobufjs reads (the key y given twice it keeps twice; OTLP keys are unique, the last value counts).
    const pbSpan = (TraceRequest.toObject(TraceRequest.decode(traces)) as Decoded).resourceSpans[0].scopeSpans[0].spans[0];
    expect(pbSpan.attributes[0].value).toEqual(tags);
    expect(pbSpan.attributes[1].value.kvlistValue.values.map((kv: Decoded) => kv.key)).toEqual(['x', 'y', 'y', 'z']);
    expect((LogsRequest.toObject(LogsRequest.decode(logs)) as Decoded).resourceLogs[0].scopeLogs[0].logRecords[0].body).toEqual(body);

    await store(sink, traces, logs);
    const [span] = await sink.backend.getTrace('default', traceId.toString('hex'));
    expect(span?.attributes).toEqual([{ key: 'tags', value: tags }, { key: 'map', value: map }]);
    expect([...(await sink.backend.searchLogs('default', { service, limit: 10 }))]).toMatchObject([{ body }]);
  });

  it('keeps only the list after a scalar that came between two lists, in one value or across value fields', async () => {
    // A scalar sets the oneof anew, so the list after it does not merge into the one before it
    // (protobuf's rule; protobufjs, which does not clear a oneof's other members, would merge).
    const sink = await sinkInto(kind);
    const service = `svc-${randomBytes(4).toString('hex')}`;
    const traceId = randomBytes(16);
    const w = new WireWriter().fork();
    w.fork().fork().stringField(1, 'service.name').fork().stringField(1, service).join(2).join(1).join(1);
    w.fork().fork();
    w.bytesField(1, traceId).bytesField(2, randomBytes(8)).stringField(5, 'op');
    w.fixed64Field(7, 1_700_000_000_000_000_000n).fixed64Field(8, 1_700_000_000_100_000_000n);
    // across: value [a, b], value "x", value [c]; inner: one value holding [a], "x", [c].
    w.fork().stringField(1, 'across');
    array(w, 2, 'a', 'b');
    w.fork().stringField(1, 'x').join(2);
    array(w, 2, 'c');
    w.join(9);
    w.fork().stringField(1, 'inner').fork();
    w.fork().fork().stringField(1, 'a').join(1).join(5);
    w.stringField(1, 'x');
    w.fork().fork().stringField(1, 'c').join(1).join(5);
    w.join(2).join(9);
    const traces = Buffer.from(w.join(2).join(2).join(1).finish());
    const logs = Buffer.from(new WireWriter().fork().fork().fork().fixed64Field(1, 1_700_000_000_000_000_000n).fork().stringField(1, 'one').join(5).join(2).join(2).join(1).finish());

    await store(sink, traces, logs);
    const [span] = await sink.backend.getTrace('default', traceId.toString('hex'));
    const c = { arrayValue: { values: [{ stringValue: 'c' }] } };
    expect(span?.attributes).toEqual([{ key: 'across', value: c }, { key: 'inner', value: c }]);
  });
});
