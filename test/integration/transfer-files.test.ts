// Import of files as they come: the OpenTelemetry Collector's file-exporter output (JSON lines,
// length-delimited protobuf, per-message zstd), and broken files: a garbage line, a truncated
// .gz, --on-error stop. Into a real SQLite store through the real decode workers and writer.
import { randomUUID } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { constants as zlibConstants, gunzipSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { pino } from 'pino';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import type { ScanQuery } from '../../src/storage/backend.ts';
import { createBackend } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { exportStore, importFiles, type ImportOptions } from '../../src/transfer/commands.ts';
import { TransferSink } from '../../src/transfer/sink.ts';
import { encodeLogs, encodeTraces } from '../helpers/otlp-proto.ts';
import { canonical, makeLog, makeTrace, writeLogs, writeSpans } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';

const FIXTURE = new URL('../fixtures/collector-fileexporter-json.jsonl', import.meta.url).pathname;
const silent = pino({ level: 'silent' });

/** Collects what a transfer writes to its terminal. */
function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { stream: w as unknown as NodeJS.WriteStream, text: () => out };
}

let sinks: TransferSink[] = [];
afterEach(async () => {
  await Promise.all(sinks.map((s) => s.shutdown()));
  sinks = [];
});

async function sqliteSink(path = join(tempDir(), 'th.db'), tenant = DEFAULT_TENANT): Promise<TransferSink> {
  const config = loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': path, 'workers.threads': '1', 'writer.flushIntervalMs': '20' } });
  const metrics = createMetrics();
  const sink = new TransferSink(config, await createBackend(config, { logger: silent, metrics }), metrics, silent, tenant);
  await sink.start();
  sinks.push(sink);
  return sink;
}

function opts(files: string[], o: Partial<ImportOptions> = {}): ImportOptions {
  return { files, onError: 'skip', quiet: true, maxMessageBytes: 1 << 20, ...o };
}

/** A length-delimited file as the Collector writes with format proto: 4-byte big-endian size, then the message. */
function framed(messages: Uint8Array[]): Buffer {
  return Buffer.concat(messages.flatMap((m) => {
    const size = Buffer.alloc(4);
    size.writeUInt32BE(m.length);
    return [size, Buffer.from(m)];
  }));
}

/** An ExportMetricsServiceRequest as in opentelemetry-proto's metrics.proto (the fields a test sets). */
const metricsProto = protobuf.parse(`syntax = "proto3";
  message KeyValue { string key = 1; AnyValue value = 2; }
  message AnyValue { string string_value = 1; }
  message Resource { repeated KeyValue attributes = 1; }
  message Scope { string name = 1; }
  message NumberDataPoint { fixed64 time_unix_nano = 3; sfixed64 as_int = 6; }
  message Gauge { repeated NumberDataPoint data_points = 1; }
  message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
  message HistogramDataPoint { fixed64 time_unix_nano = 3; fixed64 count = 4; repeated fixed64 bucket_counts = 6; repeated double explicit_bounds = 7; }
  message Histogram { repeated HistogramDataPoint data_points = 1; int32 aggregation_temporality = 2; }
  message Buckets { sint32 offset = 1; repeated uint64 bucket_counts = 2; }
  message ExponentialHistogramDataPoint { fixed64 time_unix_nano = 3; fixed64 count = 4; sint32 scale = 6; Buckets positive = 8; }
  message ExponentialHistogram { repeated ExponentialHistogramDataPoint data_points = 1; int32 aggregation_temporality = 2; }
  message ValueAtQuantile { double quantile = 1; double value = 2; }
  message SummaryDataPoint { fixed64 time_unix_nano = 3; fixed64 count = 4; double sum = 5; repeated ValueAtQuantile quantile_values = 6; }
  message Summary { repeated SummaryDataPoint data_points = 1; }
  message Metric { string name = 1; string description = 2; string unit = 3; Gauge gauge = 5; Sum sum = 7; Histogram histogram = 9;
    ExponentialHistogram exponential_histogram = 10; Summary summary = 11; repeated KeyValue metadata = 12; }
  message ScopeMetrics { Scope scope = 1; repeated Metric metrics = 2; }
  message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
  message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }`).root.lookupType('ExportMetricsServiceRequest');

describe('import of the Collector file exporter format', () => {
  it('imports its JSON lines field for field and reports the metrics line it cannot store', async () => {
    const sink = await sqliteSink();
    const term = capture();
    const r = await importFiles(sink, opts([FIXTURE], { stream: term.stream }));
    expect(r).toMatchObject({ spans: 2, logs: 2, problems: 1 });
    expect(term.text()).toContain(`${FIXTURE}:2: skipped: metrics are not stored`);
    const spans = await sink.backend.getTrace(DEFAULT_TENANT, '5b8efff798038103d269b633813fc60c');
    const root = spans.find((s) => s.spanId === 'eee19b7ec3c1b174')!;
    expect(canonical(root)).toMatchObject({
      name: 'POST /cart',
      kind: 2,
      startTimeUnixNano: '1544712660000000000',
      serviceName: 'checkout',
      statusCode: 2,
      statusMessage: 'payment declined',
      droppedAttributesCount: 1,
      droppedEventsCount: 2,
      droppedLinksCount: 3,
      links: [{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', attributes: [{ key: 'cause', value: { stringValue: 'retry' } }] }],
      events: [{ timeUnixNano: '1544712660500000000', name: 'cache.miss' }],
    });
    expect(root.attributes).toContainEqual({ key: 'big', value: { intValue: '9007199254740993' } });
    expect(root.attributes).toContainEqual({ key: 'payload', value: { bytesValue: 'AAEC/w==' } });
    expect(root.resource.schemaUrl).toBe('https://opentelemetry.io/schemas/1.21.0');
    const logs = await sink.backend.searchLogs(DEFAULT_TENANT, { service: 'checkout', limit: 10 });
    expect(logs.map((l) => l.severityNumber).sort()).toEqual([17, 9]);
  });

  it('imports length-delimited protobuf, plain and with each message zstd-compressed (the exporter\'s legacy compression)', async () => {
    const sink = await sqliteSink();
    const service = 'proto-' + randomUUID();
    const traceId = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
    const traces = encodeTraces({
      resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ spans: [{ traceId, spanId: Buffer.from('0102030405060708', 'hex'), name: 'op', kind: 2, startTimeUnixNano: 1_700_000_000_000_000_000n.toString(), endTimeUnixNano: 1_700_000_000_100_000_000n.toString() }] }] }],
    });
    const logs = encodeLogs({
      resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeLogs: [{ logRecords: [{ timeUnixNano: 1_700_000_000_000_000_000n.toString(), severityNumber: 9, body: { stringValue: 'hi' } }] }] }],
    });
    const dir = tempDir();
    writeFileSync(join(dir, 'plain.bin'), framed([traces, logs]));
    writeFileSync(join(dir, 'zstd.bin'), framed([zstdCompressSync(traces), zstdCompressSync(logs)]));
    const r = await importFiles(sink, opts([join(dir, 'plain.bin'), join(dir, 'zstd.bin')]));
    expect(r).toMatchObject({ spans: 2, logs: 2, problems: 0 });
    // The second file holds the same requests: stored once.
    expect(await sink.backend.getTrace(DEFAULT_TENANT, traceId.toString('hex'))).toHaveLength(1);
    expect(await sink.backend.searchLogs(DEFAULT_TENANT, { service, limit: 10 })).toHaveLength(1);
  });

  it('reports the metrics of a protobuf file as metrics and stores none of them as a span', async () => {
    // A Collector whose file exporter (format: proto) serves its metrics pipeline too writes
    // ExportMetricsServiceRequests between the traces and logs. A gauge named with 16 bytes and
    // described with 8 read as a span (name and description as trace and span id) and was stored.
    const service = 'metrics-' + randomUUID();
    const metricsOf = (metric: Record<string, unknown>) =>
      metricsProto.encode(metricsProto.fromObject({ resourceMetrics: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeMetrics: [{ scope: { name: 'process' }, metrics: [metric] }] }] })).finish();
    const point = { timeUnixNano: '1700000000000000000', asInt: '3' };
    const gauge = metricsOf({ name: 'process.cpu.time', description: 'CPU time', unit: 's', gauge: { dataPoints: [point] } });
    const sum = metricsOf({ name: 'http.requests', sum: { dataPoints: [point], aggregationTemporality: 2, isMonotonic: true } });
    const traceId = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
    const traces = encodeTraces({
      resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ spans: [{ traceId, spanId: Buffer.from('0102030405060708', 'hex'), name: 'op', kind: 2, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' }] }] }],
    });
    const logs = encodeLogs({
      resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeLogs: [{ logRecords: [{ timeUnixNano: '1700000000000000000', severityNumber: 9, body: { stringValue: 'hi' } }] }] }],
    });
    const file = join(tempDir(), 'all-signals.bin');
    writeFileSync(file, framed([traces, gauge, sum, logs]));
    const sink = await sqliteSink();
    const term = capture();
    const r = await importFiles(sink, opts([file], { stream: term.stream }));
    expect(term.text()).toContain(`${file}:2: skipped: metrics are not stored`);
    expect(term.text()).toContain(`${file}:3: skipped: metrics are not stored`);
    expect(r).toMatchObject({ spans: 1, logs: 1, problems: 2 });
    // The store holds the one span, not a span of the gauge (trace id: its name's bytes).
    expect((await sink.backend.scanSpans(DEFAULT_TENANT, { limit: 10 })).rows.map((s) => s.traceId)).toEqual([traceId.toString('hex')]);
  });

  it('stores a minimal span of a protobuf file (ids, name, one attribute) and skips a metric of each data kind', async () => {
    // proto3 leaves out zero fields: a span with no kind, times, parent, links, status or flags is
    // its ids, name and attributes, all length-delimited as a Metric's fields are. It was taken
    // for a metric and skipped. Each metric is named with 16 bytes and described with 8, the
    // sizes of a trace id and a span id.
    const service = 'minimal-' + randomUUID();
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: service } }] };
    const traceId = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
    const spanId = Buffer.from('a1b2c3d4e5f60718', 'hex');
    const minimal = encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans: [{ traceId, spanId, name: 'op', attributes: [{ key: 'k', value: { stringValue: 'v' } }] }] }] }] });
    const metricsOf = (metric: Record<string, unknown>) =>
      metricsProto.encode(metricsProto.fromObject({ resourceMetrics: [{ resource, scopeMetrics: [{ scope: { name: 'm' }, metrics: [{ name: 'process.cpu.time', description: 'CPU time', ...metric }] }] }] })).finish();
    const t = '1700000000000000000';
    const point = { timeUnixNano: t, asInt: '3' };
    const metrics = [
      metricsOf({ gauge: { dataPoints: [point] } }),
      metricsOf({ sum: { dataPoints: [point], aggregationTemporality: 2, isMonotonic: true } }),
      metricsOf({ histogram: { dataPoints: [{ timeUnixNano: t, count: '2', bucketCounts: ['1', '1'], explicitBounds: [5] }] } }),
      metricsOf({ exponentialHistogram: { dataPoints: [{ timeUnixNano: t, count: '2', scale: 1, positive: { offset: 0, bucketCounts: ['2'] } }] } }),
      metricsOf({ summary: { dataPoints: [{ timeUnixNano: t, count: '2', sum: 4, quantileValues: [{ quantile: 0.5, value: 2 }] }] } }),
      metricsOf({ unit: 's', gauge: { dataPoints: [point] }, metadata: [{ key: 'k', value: { stringValue: 'v' } }] }),
    ];
    const file = join(tempDir(), 'minimal-span.bin');
    writeFileSync(file, framed([minimal, ...metrics]));
    const sink = await sqliteSink();
    const term = capture();
    const r = await importFiles(sink, opts([file], { stream: term.stream }));
    for (let n = 2; n <= 1 + metrics.length; n++) expect(term.text()).toContain(`${file}:${n}: skipped: metrics are not stored`);
    expect(term.text()).not.toContain(`${file}:1:`);
    expect(r).toMatchObject({ spans: 1, problems: metrics.length });
    const spans = await sink.backend.getTrace(DEFAULT_TENANT, traceId.toString('hex'));
    expect(spans.map((s) => ({ spanId: s.spanId, name: s.name, serviceName: s.serviceName, attributes: s.attributes }))).toEqual([
      { spanId: spanId.toString('hex'), name: 'op', serviceName: service, attributes: [{ key: 'k', value: { stringValue: 'v' } }] },
    ]);
    expect((await sink.backend.scanSpans(DEFAULT_TENANT, { limit: 10 })).rows).toHaveLength(1);
  });

  it('imports a protobuf message whose first resource is 123 bytes long (its length byte reads as "{")', async () => {
    const sink = await sqliteSink();
    const traceId = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
    // The message starts 0x0a (field 1, a newline as text) and its length: 123 is "{" as text.
    const request = (service: string) =>
      encodeTraces({
        resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ spans: [{ traceId, spanId: Buffer.from('0102030405060708', 'hex'), name: 'op', kind: 2, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' }] }] }],
      });
    let service = 'p';
    while (request(service)[1] !== 0x7b) service += 'p';
    const file = join(tempDir(), 'first-resource-123.bin');
    writeFileSync(file, framed([request(service)]));
    const term = capture();
    const r = await importFiles(sink, opts([file], { stream: term.stream }));
    expect(term.text()).toBe('');
    expect(r).toMatchObject({ spans: 1, problems: 0 });
    expect(await sink.backend.getTrace(DEFAULT_TENANT, traceId.toString('hex'))).toHaveLength(1);
  });
});

describe('import of a zstd file of several frames', () => {
  it('reads every frame (a file of concatenated .zst parts), not only the first', async () => {
    const sink = await sqliteSink();
    const lines = readFileSync(FIXTURE, 'utf8').split('\n').filter(Boolean);
    const dir = tempDir();
    // Each line a frame of its own, as `cat a.zst b.zst` or a zstd writer flushing per line makes.
    writeFileSync(join(dir, 'frames.jsonl.zst'), Buffer.concat(lines.map((l) => zstdCompressSync(Buffer.from(l + '\n')))));
    expect(await importFiles(sink, opts([join(dir, 'frames.jsonl.zst')]))).toMatchObject({ spans: 2, logs: 2, problems: 1 });
  });

  it('reads a file pzstd wrote: each frame after a skippable frame holding its size', async () => {
    const sink = await sqliteSink();
    const lines = readFileSync(FIXTURE, 'utf8').split('\n').filter(Boolean);
    // RFC 8878, 3.1.2: magic 0x184D2A50 (little-endian), a 4-byte size, then that many bytes to skip.
    const skippable = (payload: Buffer) => {
      const head = Buffer.alloc(8);
      head.writeUInt32LE(0x184d2a50, 0);
      head.writeUInt32LE(payload.length, 4);
      return Buffer.concat([head, payload]);
    };
    const parts = lines.flatMap((l) => {
      const frame = zstdCompressSync(Buffer.from(l + '\n'));
      const size = Buffer.alloc(4);
      size.writeUInt32LE(frame.length);
      return [skippable(size), frame];
    });
    const file = join(tempDir(), 'pzstd.jsonl.zst');
    writeFileSync(file, Buffer.concat(parts));
    const term = capture();
    expect(await importFiles(sink, opts([file], { stream: term.stream }))).toMatchObject({ spans: 2, logs: 2, problems: 1 });
    expect(term.text()).toContain(`${file}:2: skipped: metrics are not stored`);
  });
});

describe('import into tenants', () => {
  it('imports the same file into a second tenant whole, logs included, and a second time into either without duplicates', async () => {
    const path = join(tempDir(), 'th.db');
    for (const tenant of ['team-a', 'team-b', 'team-a']) {
      const sink = await sqliteSink(path, tenant);
      expect(await importFiles(sink, opts([FIXTURE]))).toMatchObject({ spans: 2, logs: 2, problems: 1 });
      await sink.shutdown();
      sinks = sinks.filter((s) => s !== sink);
    }
    const reader = await sqliteSink(path);
    for (const tenant of ['team-a', 'team-b']) {
      expect(await reader.backend.getTrace(tenant, '5b8efff798038103d269b633813fc60c'), tenant).toHaveLength(2);
      const logs = await reader.backend.searchLogs(tenant, { service: 'checkout', limit: 10 });
      expect(logs.map((l) => l.severityNumber).sort(), tenant).toEqual([17, 9]);
    }
  });
});

describe('restore of a backup of large rows', () => {
  it('restores a span the collector took as protobuf within receiver.maxMessageBytes, whose JSON is longer than that', async () => {
    const maxMessageBytes = 1 << 20;
    const service = 'big-' + randomUUID();
    const traceId = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
    // 900 KiB of bytes: the request is under 1 MiB as protobuf, the span 1.2 MiB as OTLP/JSON (base64).
    const request = encodeTraces({
      resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ spans: [{ traceId, spanId: Buffer.from('0102030405060708', 'hex'), name: 'upload', kind: 2, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000', attributes: [{ key: 'payload', value: { bytesValue: Buffer.alloc(900 << 10, 7) } }] }] }] }],
    });
    expect(request.length).toBeLessThan(maxMessageBytes);
    const dir = tempDir();
    writeFileSync(join(dir, 'in.bin'), framed([request]));
    const source = await sqliteSink();
    expect(await importFiles(source, opts([join(dir, 'in.bin')], { maxMessageBytes }))).toMatchObject({ spans: 1, problems: 0 });

    const backup = join(dir, 'backup.jsonl');
    await exportStore(source.backend, { out: backup, tenant: DEFAULT_TENANT, signals: ['traces'], quiet: true, maxLineBytes: maxMessageBytes });
    const target = await sqliteSink();
    const term = capture();
    const r = await importFiles(target, opts([backup], { maxMessageBytes, stream: term.stream }));
    expect(term.text()).toBe('');
    expect(r).toMatchObject({ spans: 1, problems: 0 });
    const [span] = await target.backend.getTrace(DEFAULT_TENANT, traceId.toString('hex'));
    expect(span?.attributes).toEqual([{ key: 'payload', value: { bytesValue: Buffer.alloc(900 << 10, 7).toString('base64') } }]);
  });
});

describe('import of broken files', () => {
  it('reports a garbage line with its file and line number and imports the others', async () => {
    const sink = await sqliteSink();
    const lines = readFileSync(FIXTURE, 'utf8').split('\n');
    const file = join(tempDir(), 'bad-garbage-line.jsonl');
    writeFileSync(file, [lines[0], '{"resourceSpans": [ this is not json', lines[2], ''].join('\n'));
    const term = capture();
    const r = await importFiles(sink, opts([file], { stream: term.stream }));
    expect(r).toMatchObject({ spans: 2, logs: 2, problems: 1, stopped: false });
    expect(term.text()).toMatch(new RegExp(`${file}:2: not imported: .+`));
  });

  it('imports lines of many read chunks and skips one over the limit, plain and gzip, keeping the lines around them', async () => {
    const lines = readFileSync(FIXTURE, 'utf8').split('\n');
    const big = (service: string, bytes: number) => {
      const line = JSON.parse(lines[0]!);
      line.resourceSpans[0].resource.attributes.push({ key: 'padding', value: { stringValue: 'x'.repeat(bytes) } });
      line.resourceSpans[0].resource.attributes.find((a: { key: string }) => a.key === 'service.name').value.stringValue = service;
      return JSON.stringify(line);
    };
    const service = 'long-' + randomUUID();
    // 700 KiB (about eleven 64 KiB reads) under the 1 MiB limit (4 × maxMessageBytes of 256 KiB), 1.5 MiB over it.
    const text = [lines[2], big(service, 700 << 10), big('too-long', 1536 << 10), lines[2], ''].join('\n');
    for (const [name, bytes] of [['long.jsonl', Buffer.from(text)], ['long.jsonl.gz', gzipSync(text)]] as const) {
      const sink = await sqliteSink();
      const file = join(tempDir(), name);
      writeFileSync(file, bytes);
      const term = capture();
      const r = await importFiles(sink, opts([file], { stream: term.stream, maxMessageBytes: 256 << 10 }));
      expect(r, name).toMatchObject({ spans: 2, logs: 4, problems: 1 });
      expect(term.text()).toContain(`${file}:3: skipped: line longer than ${1 << 20} bytes`);
      const [found] = await sink.backend.searchTraces(DEFAULT_TENANT, { service, limit: 10 });
      expect(found?.spanCount, name).toBe(2);
    }
  });

  it('skips a line over 4 × receiver.maxMessageBytes that arrives in one read, as one that spans reads', async () => {
    const lines = readFileSync(FIXTURE, 'utf8').split('\n');
    const line = JSON.parse(lines[0]!);
    line.resourceSpans[0].resource.attributes.push({ key: 'padding', value: { stringValue: 'x'.repeat(6000) } });
    line.resourceSpans[0].resource.attributes.find((a: { key: string }) => a.key === 'service.name').value.stringValue = 'too-long-' + randomUUID();
    // About 7 KiB: over the 4 KiB limit of maxMessageBytes 1024, well inside one 64 KiB read.
    const sink = await sqliteSink();
    const file = join(tempDir(), 'short-read.jsonl');
    writeFileSync(file, [lines[2], JSON.stringify(line), lines[2], ''].join('\n'));
    const term = capture();
    const r = await importFiles(sink, opts([file], { stream: term.stream, maxMessageBytes: 1024 }));
    expect(term.text()).toContain(`${file}:2: skipped: line longer than 4096 bytes`);
    expect(r).toMatchObject({ spans: 0, logs: 4, problems: 1 });
  });

  it('stops at the first problem with --on-error stop', async () => {
    const sink = await sqliteSink();
    const lines = readFileSync(FIXTURE, 'utf8').split('\n');
    const file = join(tempDir(), 'bad-garbage-line.jsonl');
    writeFileSync(file, [lines[0], 'garbage', lines[2], lines[2], ''].join('\n'));
    const term = capture();
    const r = await importFiles(sink, opts([file], { onError: 'stop', stream: term.stream }));
    expect(r).toMatchObject({ spans: 2, logs: 0, problems: 1, stopped: true });
    expect(term.text()).toContain(`${file}:2: skipped: not an OTLP/JSON traces or logs request`);
  });

  it('with --on-error stop imports nothing after a line the decoder refuses', async () => {
    const sink = await sqliteSink();
    const lines = readFileSync(FIXTURE, 'utf8').split('\n');
    const file = join(tempDir(), 'bad-json-line.jsonl');
    // Line 2 looks like a traces request until it is parsed; lines 3 to 5 hold two log records each.
    writeFileSync(file, [lines[0], '{"resourceSpans": [ this is not json', lines[2], lines[2], lines[2], ''].join('\n'));
    const term = capture();
    const r = await importFiles(sink, opts([file], { onError: 'stop', stream: term.stream }));
    expect(term.text()).toMatch(new RegExp(`${file}:2: not imported: `));
    expect(r).toMatchObject({ spans: 2, logs: 0, problems: 1, stopped: true });
    expect(await sink.backend.searchLogs(DEFAULT_TENANT, { service: 'checkout', limit: 10 })).toHaveLength(0);
  });

  it('reports a truncated .gz after importing what came before it, without crashing', async () => {
    const source = await sqliteSink();
    const service = 'gz-' + randomUUID();
    await writeSpans(source.backend, Array.from({ length: 40 }, () => makeTrace(5, { serviceName: service })).flat());
    await writeLogs(source.backend, [makeLog({ serviceName: service })]);
    const file = join(tempDir(), 'whole.jsonl.gz');
    await exportStore(source.backend, { out: file, tenant: DEFAULT_TENANT, signals: ['traces', 'logs'], service, pageRows: 10, quiet: true });
    const whole = readFileSync(file);
    const cut = join(tempDir(), 'bad-truncated.jsonl.gz');
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));

    const target = await sqliteSink();
    const term = capture();
    const r = await importFiles(target, opts([cut], { stream: term.stream }));
    expect(r.problems).toBe(1);
    expect(term.text()).toContain(`${cut}: after message`);
    expect(term.text()).toContain('truncated');
    expect(r.spans).toBeLessThan(200);

    // The whole file then imports everything, the part already imported once.
    const again = await importFiles(target, opts([file]));
    expect(again).toMatchObject({ spans: 200, logs: 1, problems: 0 });
    const ids = new Set((await target.backend.scanSpans(DEFAULT_TENANT, { service, limit: 1000 })).rows.map((s) => s.spanId));
    expect(ids.size).toBe(200);
    expect((await target.backend.scanSpans(DEFAULT_TENANT, { service, limit: 1000 })).rows).toHaveLength(200);
  });

  it('imports every whole line a truncated .gz still holds, as gunzip reads them, before saying it ends early', async () => {
    const source = await sqliteSink();
    const service = 'gz-' + randomUUID();
    await writeSpans(source.backend, Array.from({ length: 40 }, () => makeTrace(5, { serviceName: service })).flat());
    const file = join(tempDir(), 'whole.jsonl.gz');
    await exportStore(source.backend, { out: file, tenant: DEFAULT_TENANT, signals: ['traces'], service, pageRows: 5, quiet: true });
    const whole = readFileSync(file);
    // Cut inside its last deflate block: every line but the last is still there.
    const cut = join(tempDir(), 'cut-late.jsonl.gz');
    writeFileSync(cut, whole.subarray(0, whole.length - 12));
    const held = gunzipSync(readFileSync(cut), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString();
    const wholeLines = held.slice(0, held.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
    const spans = wholeLines.reduce((n, l) => n + JSON.parse(l).resourceSpans[0].scopeSpans[0].spans.length, 0);
    expect(spans).toBeGreaterThanOrEqual(190);

    const term = capture();
    const r = await importFiles(await sqliteSink(), opts([cut], { stream: term.stream }));
    expect(term.text()).toContain(`${cut}: after message ${wholeLines.length}: compressed data ends early (truncated file)`);
    expect(r.spans).toBe(spans);
  });

  it('says a .gz is truncated even after more problems than it prints one by one (a shared file exporter\'s metrics lines)', async () => {
    // A Collector file exporter serving a metrics pipeline too, copied while it wrote: 40 metrics
    // lines, each reported, and the file cut short.
    const text = Array.from({ length: 40 }, () => readFileSync(FIXTURE, 'utf8')).join('');
    const whole = gzipSync(text);
    const cut = join(tempDir(), 'shared-truncated.jsonl.gz');
    // Short of its last bytes: the lines repeat, so all but the last decompress.
    writeFileSync(cut, whole.subarray(0, whole.length - 12));

    const term = capture();
    const r = await importFiles(await sqliteSink(), opts([cut], { stream: term.stream }));
    expect(term.text()).toMatch(new RegExp(`${cut}: after message \\d+: compressed data ends early \\(truncated file\\)`));
    expect(r.problems).toBeGreaterThan(20);
  });

  it('skips a length-delimited message over the limit and imports the messages after it', async () => {
    const sink = await sqliteSink();
    const service = 'framed-big-' + randomUUID();
    const traceId = Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: service } }] };
    const span = (id: string, attributes: unknown[] = []) => ({ traceId, spanId: Buffer.from(id, 'hex'), name: 'op', kind: 2, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000', attributes });
    const small = encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans: [span('0102030405060708')] }] }] });
    const big = encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans: [span('1112131415161718', [{ key: 'payload', value: { stringValue: 'x'.repeat(300 << 10) } }])] }] }] });
    const logs = encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords: [{ timeUnixNano: '1700000000000000000', severityNumber: 9, body: { stringValue: 'after' } }] }] }] });
    const file = join(tempDir(), 'framed-big.bin');
    writeFileSync(file, framed([small, big, logs]));
    const term = capture();
    const r = await importFiles(sink, opts([file], { stream: term.stream, maxMessageBytes: 256 << 10 }));
    expect(r).toMatchObject({ spans: 1, logs: 1, problems: 1 });
    expect(term.text()).toContain(`${file}:2: skipped: message of ${big.length} bytes, more than the ${256 << 10} allowed`);
    expect(await sink.backend.searchLogs(DEFAULT_TENANT, { service, limit: 10 })).toHaveLength(1);
  });

  it('reports a file that is not there, and a gzip file of garbage', async () => {
    const sink = await sqliteSink();
    const gz = join(tempDir(), 'bad-garbage.jsonl.gz');
    writeFileSync(gz, gzipSync(Buffer.from('not otlp\n\n{"neither":1}\n')));
    const term = capture();
    const r = await importFiles(sink, opts([join(tempDir(), 'missing.jsonl'), gz], { stream: term.stream }));
    expect(r.problems).toBe(3);
    expect(term.text()).toContain('missing.jsonl: cannot read');
    expect(term.text()).toContain(`${gz}:1: skipped`);
    expect(term.text()).toContain(`${gz}:3: skipped`);
  });
});

describe('export into a file that cannot be written', () => {
  /** What an export of a few spans into this path comes to: resolved, rejected (and why), or still waiting after 5 s. */
  async function exportInto(out: string): Promise<string> {
    const b = await createBackend(loadConfig({ flags: { 'storage.backend': 'memory' } }), { logger: silent, metrics: createMetrics() });
    await b.start();
    try {
      await writeSpans(b, makeTrace(3));
      const done = exportStore(b, { out, tenant: DEFAULT_TENANT, signals: ['traces'], quiet: true, stream: capture().stream }).then(
        () => 'resolved',
        (err: Error) => `rejected: ${err.message}`,
      );
      return await Promise.race([done, new Promise<string>((r) => setTimeout(() => r('still waiting'), 5000))]);
    } finally {
      await b.shutdown();
    }
  }

  it.each(['full.jsonl', 'full.jsonl.gz', 'full.jsonl.zst'])('fails with ENOSPC on a full disk naming the file, neither waiting for ever nor reporting success (%s)', async (name) => {
    const out = join(tempDir(), name);
    symlinkSync('/dev/full', out);
    // Node's write errors name no file ("ENOSPC: no space left on device, write"): the message
    // says which one, as a script's log shows nothing else.
    expect(await exportInto(out)).toBe(`rejected: cannot write ${out}: ENOSPC: no space left on device, write`);
  });

  it('leaves the previous file whole, and no partial one, when an export fails midway', async () => {
    const b = await createBackend(loadConfig({ flags: { 'storage.backend': 'memory' } }), { logger: silent, metrics: createMetrics() });
    await b.start();
    try {
      await writeSpans(b, Array.from({ length: 5 }, () => makeTrace(2)).flat());
      const dir = tempDir();
      for (const name of ['backup.jsonl', 'backup.jsonl.gz']) {
        const out = join(dir, name);
        writeFileSync(out, 'the previous backup\n');
        // The store goes away after the first page.
        const failing = { ...b, scanSpans: (tenant: string, q: ScanQuery) => (q.after === undefined ? b.scanSpans(tenant, q) : Promise.reject(new Error('store went away'))) };
        await expect(exportStore(failing, { out, tenant: DEFAULT_TENANT, signals: ['traces'], quiet: true, pageRows: 2, stream: capture().stream })).rejects.toThrow('store went away');
        expect(readFileSync(out, 'utf8')).toBe('the previous backup\n');
        expect(readdirSync(dir).sort()).toEqual(['backup.jsonl', 'backup.jsonl.gz'].filter((n) => n <= name));
        // A whole export replaces it.
        await exportStore(b, { out, tenant: DEFAULT_TENANT, signals: ['traces'], quiet: true, stream: capture().stream });
        expect(readFileSync(out).length).toBeGreaterThan(100);
        expect(readdirSync(dir).sort()).toEqual(['backup.jsonl', 'backup.jsonl.gz'].filter((n) => n <= name));
      }
    } finally {
      await b.shutdown();
    }
  });

  it('keeps the permissions of the backup it replaces (a private backup stays private)', async () => {
    const b = await createBackend(loadConfig({ flags: { 'storage.backend': 'memory' } }), { logger: silent, metrics: createMetrics() });
    await b.start();
    try {
      await writeSpans(b, makeTrace(3));
      const out = join(tempDir(), 'private.jsonl.gz');
      writeFileSync(out, 'the previous backup\n', { mode: 0o600 });
      chmodSync(out, 0o600);
      await exportStore(b, { out, tenant: DEFAULT_TENANT, signals: ['traces'], quiet: true, stream: capture().stream });
      expect(readFileSync(out).length).toBeGreaterThan(20);
      expect((statSync(out).mode & 0o777).toString(8)).toBe('600');
    } finally {
      await b.shutdown();
    }
  });

  it('fails naming the path when the compressed file cannot be opened', async () => {
    expect(await exportInto(join(tempDir(), 'no-such-dir', 'backup.jsonl.gz'))).toMatch(/^rejected: --out ".*\/no-such-dir\/backup\.jsonl\.gz": directory ".*\/no-such-dir" does not exist$/);
  });
});
