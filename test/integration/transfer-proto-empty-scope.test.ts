// A length-delimited protobuf file (the Collector's file exporter, format: proto) is told traces
// from logs by its first item. A request whose first scope holds no items (a scope a processor
// emptied, an SDK's scope with nothing to send this time) and whose items are in a later scope is
// a valid request, taken by the receivers: import must take it too, not skip it as "no items".
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createBackend } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { importFiles } from '../../src/transfer/commands.ts';
import { protobufSignal } from '../../src/transfer/otlp-file.ts';
import { TransferSink } from '../../src/transfer/sink.ts';
import { encodeLogs, encodeTraces } from '../helpers/otlp-proto.ts';
import { tempDir } from '../helpers/tmp.ts';

const silent = pino({ level: 'silent' });

let sink: TransferSink | undefined;
afterEach(async () => {
  await sink?.shutdown();
  sink = undefined;
});

function framed(messages: Uint8Array[]): Buffer {
  return Buffer.concat(messages.flatMap((m) => {
    const size = Buffer.alloc(4);
    size.writeUInt32BE(m.length);
    return [size, Buffer.from(m)];
  }));
}

describe('import of length-delimited protobuf whose first scope is empty', () => {
  it('imports the items of the later scopes', async () => {
    const config = loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': join(tempDir(), 'th.db'), 'workers.threads': '1', 'writer.flushIntervalMs': '20' } });
    const metrics = createMetrics();
    sink = new TransferSink(config, await createBackend(config, { logger: silent, metrics }), metrics, silent);
    await sink.start();
    const service = 'scopes-' + randomUUID();
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: service } }] };
    const traceId = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
    const traces = encodeTraces({
      resourceSpans: [{ resource, scopeSpans: [{ scope: { name: 'idle' } }, { scope: { name: 'http' }, spans: [{ traceId, spanId: Buffer.from('0102030405060708', 'hex'), name: 'op', kind: 2, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' }] }] }],
    });
    const logs = encodeLogs({
      resourceLogs: [{ resource, scopeLogs: [{ scope: { name: 'idle' } }, { scope: { name: 'app' }, logRecords: [{ timeUnixNano: '1700000000000000000', severityNumber: 9, body: { stringValue: 'hi' } }] }] }],
    });
    expect(protobufSignal(traces)).toBe('traces');
    expect(protobufSignal(logs)).toBe('logs');
    const file = join(tempDir(), 'collector.bin');
    writeFileSync(file, framed([traces, logs]));
    const r = await importFiles(sink, { files: [file], onError: 'skip', quiet: true, maxMessageBytes: 1 << 20 });
    expect(r).toMatchObject({ spans: 1, logs: 1, problems: 0 });
    expect(await sink.backend.getTrace(DEFAULT_TENANT, traceId.toString('hex'))).toHaveLength(1);
    expect(await sink.backend.searchLogs(DEFAULT_TENANT, { service, limit: 10 })).toHaveLength(1);
  });
});
