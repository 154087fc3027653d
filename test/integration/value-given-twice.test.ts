// Protobuf merges a non-repeated message field given twice: a KeyValue's `value` or a
// LogRecord's `body` followed by an empty AnyValue (a proxy or a hand-rolled encoder that appends
// a field, or writes a default one after the real one) is still the first value, as protobufjs
// and the Collector's pdata read it. Every store must keep that value, not store an empty one.
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

describe.each(Object.keys(STORES))('%s: a value field given twice, the second empty', (store) => {
  it('keeps the first value of an attribute, of service.name and of a log body, as protobufjs decodes them', async () => {
    const flags = await STORES[store]!();
    const config = loadConfig({ flags: { 'storage.backend': store, 'storage.sqlite.path': join(tempDir(), 'th.db'), 'workers.threads': '1', 'writer.flushIntervalMs': '20', ...flags } });
    const sink = new TransferSink(config, await createBackend(config, { logger: silent, metrics: createMetrics() }), createMetrics(), silent);
    sinks.push(sink);
    await sink.start();
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

    const outcomes: unknown[] = [];
    await sink.send('traces', 'protobuf', traces, (o) => outcomes.push(o));
    await sink.send('logs', 'protobuf', logs, (o) => outcomes.push(o));
    await sink.drain();
    expect(outcomes).toMatchObject([{ kind: 'ok', accepted: 1 }, { kind: 'ok', accepted: 1 }]);

    const [span] = await sink.backend.getTrace('default', traceId.toString('hex'));
    expect(span).toMatchObject({ serviceName: service, attributes: [{ key: 'http.route', value: { stringValue: '/pay' } }] });
    expect(span!.resource.attributes).toEqual([{ key: 'service.name', value: { stringValue: service } }]);
    expect([...(await sink.backend.searchLogs('default', { service, limit: 10 }))]).toMatchObject([{ serviceName: service, body: { stringValue: 'paid' }, attributes: [{ key: 'order', value: { stringValue: 'o-1' } }] }]);
  });
});
