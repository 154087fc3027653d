// Scenario: decoding in one thread. Our decoder (decodeTracesProto / decodeLogsProto: protobuf
// straight to validated, normalized rows) against the baseline of what @grpc/proto-loader does
// for a grpc-js service (protobufjs reflection: Type.decode then toObject with longs and bytes
// as strings), on the same requests the load generator sends. Also shown: protobufjs decode
// without toObject, and our decode followed by the row encoding the memory and SQLite backends
// use (the whole worker task for those backends).
//
// Times are this thread's CPU time (process.threadCpuUsage), not wall time, so other load on the
// machine inflates them far less; each figure is the median over rounds that interleave the
// contenders.
//
// Then, per backend format (memory and SQLite as arrived, PostgreSQL COPY, ClickHouse RowBinary),
// signal and traffic shape (the standard requests, and 100 items per request as SDKs send), the
// whole worker task: the row path (decode to row objects, then the backend's RowEncoder: the
// baseline) against the RequestEncoder the worker runs now (a transcoder where the format has
// one, otherwise the same row path).
//
//   node bench/decode.ts [--quick] [--encode-only] [--formats=<part of a format name, e.g. clickhouse>]
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { decodeLogsProto, decodeTracesProto } from '../src/pipeline/decode/index.ts';
import { PROTO_DIR } from '../src/receiver/otlp-messages.ts';
import type { DecodeLimits } from '../src/pipeline/decode/common.ts';
import { fromRowEncoder, type RequestEncoder } from '../src/pipeline/transcode/encoder.ts';
import { loadRequestEncoder } from '../src/pipeline/transcode/registry.ts';
import type { LogRow, SpanRow } from '../src/model/rows.ts';
import { loadRowEncoder, type EncoderSpec } from '../src/storage/encoders.ts';
import { createEncoder } from '../src/storage/rowjson.ts';
import { median } from './stats.ts';
import { defaultSpec, loadTraffic, smallSpec, trafficSummary, type BenchSignal, type TrafficRequest } from './traffic.ts';

export interface DecodeContender {
  name: string;
  /** µs of CPU per item (span or log record), median of rounds. */
  usPerItem: number;
  /** Request bytes per CPU second. */
  mbPerS: number;
}

export interface DecodeSignalFigures {
  signal: BenchSignal;
  requests: number;
  items: number;
  bytes: number;
  rounds: number;
  contenders: DecodeContender[];
  /** protobufjs (decode + toObject) µs/item ÷ ours: above 1 means ours is faster. */
  speedupVsProtoLoader: number;
}

/** One backend format, signal and traffic shape: the worker task, row path against what the worker runs. */
export interface EncodePathFigures {
  format: string;
  signal: BenchSignal;
  traffic: string;
  requests: number;
  items: number;
  rounds: number;
  /** µs of CPU per item, median of rounds: decode to rows + RowEncoder (baseline). */
  rowPathUsPerItem: number;
  /** µs of CPU per item, median of rounds: the worker's RequestEncoder. */
  workerUsPerItem: number;
  /** rowPath ÷ worker: above 1 means the worker's path is faster. */
  speedup: number;
}

export interface DecodeFigures {
  options: string;
  signals: DecodeSignalFigures[];
  encode?: EncodePathFigures[];
}

const LIMITS = { maxNestingDepth: 100 };

/** The options our receiver would give proto-loader, plus bytes as strings (what a JSON-ready object needs). */
const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, longs: String, enums: Number, bytes: String, defaults: false, includeDirs: [PROTO_DIR] };

function protoLoaderDeserializer(signal: BenchSignal): (b: Buffer) => unknown {
  const file = signal === 'traces' ? 'opentelemetry/proto/collector/trace/v1/trace_service.proto' : 'opentelemetry/proto/collector/logs/v1/logs_service.proto';
  const name = signal === 'traces' ? 'opentelemetry.proto.collector.trace.v1.TraceService' : 'opentelemetry.proto.collector.logs.v1.LogsService';
  const def = protoLoader.loadSync(file, LOADER_OPTIONS);
  const svc = def[name] as unknown as Record<string, protoLoader.MethodDefinition<unknown, unknown>>;
  return svc['Export']!.requestDeserialize;
}

function protobufType(signal: BenchSignal): protobuf.Type {
  const root = new protobuf.Root();
  root.resolvePath = (_o, target) => (target.startsWith('/') ? target : PROTO_DIR + target);
  root.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'opentelemetry/proto/collector/logs/v1/logs_service.proto'], { keepCase: false });
  return root.lookupType(signal === 'traces' ? 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest' : 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
}

function threadCpuMs(): number {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
}

// Results are kept here so the optimizer cannot drop the work.
let sink = 0;

function contenders(signal: BenchSignal): { name: string; fn: (r: TrafficRequest) => void }[] {
  const deserialize = protoLoaderDeserializer(signal);
  const type = protobufType(signal);
  const encoder = createEncoder();
  const ours = signal === 'traces' ? decodeTracesProto : decodeLogsProto;
  return [
    {
      name: 'ours: decode + normalize (decode' + (signal === 'traces' ? 'Traces' : 'Logs') + 'Proto)',
      fn: (r) => {
        const out = ours(r.bytes, LIMITS);
        if (out.rows.length !== r.items) throw new Error(`decoder returned ${out.rows.length} rows for ${r.items} items`);
        sink += out.rows.length;
      },
    },
    {
      name: 'baseline: @grpc/proto-loader deserialize (protobufjs Type.decode + toObject)',
      fn: (r) => {
        sink += deserialize(Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength)) ? 1 : 0;
      },
    },
    {
      name: 'protobufjs Type.decode only (message objects, no toObject)',
      fn: (r) => {
        sink += type.decode(r.bytes) ? 1 : 0;
      },
    },
    {
      name: 'ours + row-line encoding (the row path of memory and SQLite before they kept what arrived)',
      fn: (r) => {
        if (signal === 'traces') sink += encoder.encodeSpans(decodeTracesProto(r.bytes, LIMITS).rows).length;
        else sink += encoder.encodeLogs(decodeLogsProto(r.bytes, LIMITS).rows).length;
      },
    },
  ];
}

/** Measures every contender on one signal's requests. */
export function benchDecodeSignal(signal: BenchSignal, requests: readonly TrafficRequest[], rounds: number): DecodeSignalFigures {
  const sum = trafficSummary(requests);
  const cs = contenders(signal);
  const pass = (fn: (r: TrafficRequest) => void) => {
    for (const r of requests) fn(r);
  };
  // Warm-up: every contender compiled and its caches filled before anything is timed.
  for (let w = 0; w < 2; w++) for (const c of cs) pass(c.fn);
  const samples: number[][] = cs.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < cs.length; k++) {
      // Rotate the order each round so no contender always runs right after another's garbage.
      const idx = (k + round) % cs.length;
      const t0 = threadCpuMs();
      pass(cs[idx]!.fn);
      samples[idx]!.push(threadCpuMs() - t0);
    }
  }
  const out: DecodeContender[] = cs.map((c, k) => {
    const ms = median(samples[k]!);
    return { name: c.name, usPerItem: (ms * 1000) / sum.items, mbPerS: sum.bytes / 1e6 / (ms / 1000) };
  });
  return { signal, requests: sum.requests, items: sum.items, bytes: sum.bytes, rounds, contenders: out, speedupVsProtoLoader: out[1]!.usPerItem / out[0]!.usPerItem };
}

/**
 * The backend formats the worker encodes for, as the backends name them. The baseline is the row
 * path (decode to rows, then the row encoder) of `rowPath`, the format's own unless given: for
 * memory and SQLite, the row lines they stored before they kept what arrived.
 */
const FORMATS: { name: string; spec: EncoderSpec; rowPath?: EncoderSpec }[] = [
  { name: 'memory and SQLite: OTLP as arrived (baseline: row path to JSON lines)', spec: { name: 'otlp', options: {} }, rowPath: { name: 'rowjson', options: {} } },
  { name: 'PostgreSQL COPY binary', spec: { name: 'postgres', options: { format: 'binary' } } },
  { name: 'ClickHouse RowBinary', spec: { name: 'clickhouse', options: { partitions: 1 } } },
  { name: 'ClickHouse RowBinary, 4 shards', spec: { name: 'clickhouse', options: { partitions: 4 } } },
];

async function rowPathEncoder(spec: EncoderSpec, limits: DecodeLimits): Promise<RequestEncoder> {
  return fromRowEncoder(await loadRowEncoder(spec), limits);
}

/** The same requests as OTLP/JSON (lowerCamelCase, int64 as strings, hex ids), built from their decoded rows. */
export function asOtlpJson(signal: BenchSignal, requests: readonly TrafficRequest[]): TrafficRequest[] {
  const text = new TextEncoder();
  return requests.map((q) => {
    const rows: (SpanRow | LogRow)[] = signal === 'traces' ? decodeTracesProto(q.bytes, LIMITS).rows : decodeLogsProto(q.bytes, LIMITS).rows;
    const groups = new Map<object, Map<object, unknown[]>>();
    for (const r of rows) {
      const scopes = groups.get(r.resource) ?? new Map<object, unknown[]>();
      groups.set(r.resource, scopes);
      const items = scopes.get(r.scope) ?? [];
      scopes.set(r.scope, items);
      if ('name' in r) {
        items.push({
          traceId: r.traceId, spanId: r.spanId, parentSpanId: r.parentSpanId, traceState: r.traceState, flags: r.flags, name: r.name, kind: r.kind,
          startTimeUnixNano: String(r.startTimeUnixNano), endTimeUnixNano: String(r.endTimeUnixNano), attributes: r.attributes, droppedAttributesCount: r.droppedAttributesCount,
          events: r.events.map((e) => ({ ...e, timeUnixNano: String(e.timeUnixNano) })), droppedEventsCount: r.droppedEventsCount, links: r.links, droppedLinksCount: r.droppedLinksCount,
          status: { code: r.statusCode, message: r.statusMessage },
        });
      } else {
        items.push({
          timeUnixNano: String(r.timeUnixNano), observedTimeUnixNano: String(r.observedTimeUnixNano), traceId: r.traceId, spanId: r.spanId, flags: r.flags,
          severityNumber: r.severityNumber, severityText: r.severityText, body: r.body, eventName: r.eventName, attributes: r.attributes, droppedAttributesCount: r.droppedAttributesCount,
        });
      }
    }
    const [top, mid, leaf] = signal === 'traces' ? ['resourceSpans', 'scopeSpans', 'spans'] : ['resourceLogs', 'scopeLogs', 'logRecords'];
    const doc = { [top]: [...groups].map(([resource, scopes]) => ({ resource, [mid]: [...scopes].map(([scope, items]) => ({ scope, [leaf]: items })) })) };
    return { bytes: text.encode(JSON.stringify(doc)), items: rows.length, traceIdOffsets: new Uint32Array(0), timeOffsets: new Uint32Array(0), newestNs: 0n };
  });
}

/** Row path against the worker's encoder on one request set, interleaved rounds, thread CPU. */
async function benchEncodePath(format: (typeof FORMATS)[number], signal: BenchSignal, traffic: string, requests: readonly TrafficRequest[], rounds: number, wire: 'protobuf' | 'json' = 'protobuf'): Promise<EncodePathFigures> {
  const sum = trafficSummary(requests);
  const encoders = [await rowPathEncoder(format.rowPath ?? format.spec, LIMITS), await loadRequestEncoder(format.spec, LIMITS)];
  const pass = (enc: RequestEncoder) => {
    let n = 0;
    for (const r of requests) n += enc.encode(signal, wire, r.bytes).accepted;
    if (n !== sum.items) throw new Error(`${format.name}: ${n} items accepted of ${sum.items}`);
    sink += n;
  };
  for (let w = 0; w < 2; w++) for (const e of encoders) pass(e);
  const samples: number[][] = [[], []];
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < 2; k++) {
      const idx = (k + round) % 2;
      const t0 = threadCpuMs();
      pass(encoders[idx]!);
      samples[idx]!.push(threadCpuMs() - t0);
    }
  }
  const [rowMs, workerMs] = samples.map((s) => median(s)) as [number, number];
  return {
    format: format.name,
    signal,
    traffic,
    requests: sum.requests,
    items: sum.items,
    rounds,
    rowPathUsPerItem: (rowMs * 1000) / sum.items,
    workerUsPerItem: (workerMs * 1000) / sum.items,
    speedup: rowMs / workerMs,
  };
}

/** The decode scenario for traces and logs. */
export async function run(opts: { quick?: boolean; cacheDir?: string; only?: 'encode'; formats?: string } = {}): Promise<DecodeFigures> {
  const rounds = opts.quick ? 5 : 15;
  const signals: DecodeSignalFigures[] = [];
  const encode: EncodePathFigures[] = [];
  for (const signal of ['traces', 'logs'] as const) {
    const requests = loadTraffic(defaultSpec(signal), opts.cacheDir);
    if (opts.only !== 'encode') signals.push(benchDecodeSignal(signal, requests, rounds));
    const small = loadTraffic(smallSpec(signal), opts.cacheDir);
    for (const format of FORMATS) {
      if (opts.formats !== undefined && !format.name.toLowerCase().includes(opts.formats.toLowerCase())) continue;
      encode.push(await benchEncodePath(format, signal, 'standard (100–1000 per request)', requests, rounds));
      encode.push(await benchEncodePath(format, signal, 'small (100 per request)', small, rounds));
    }
    if (opts.formats === undefined) for (const format of FORMATS.slice(0, 2)) encode.push(await benchEncodePath(format, signal, 'standard, sent as OTLP/JSON', asOtlpJson(signal, requests), rounds, 'json'));
  }
  if (sink === -1) console.log(sink);
  return { options: `proto-loader options ${JSON.stringify({ ...LOADER_OPTIONS, longs: 'String', bytes: 'String', includeDirs: undefined })}`, signals, encode };
}

if (import.meta.main) {
  const formats = process.argv.find((a) => a.startsWith('--formats='))?.slice('--formats='.length);
  const figures = await run({ quick: process.argv.includes('--quick'), ...(process.argv.includes('--encode-only') ? { only: 'encode' as const } : {}), ...(formats !== undefined ? { formats } : {}) });
  console.log(JSON.stringify(figures, null, 2));
  console.error('format | signal | traffic | row path µs/item | worker µs/item | speed-up');
  for (const e of figures.encode ?? []) console.error(`${e.format} | ${e.signal} | ${e.traffic} | ${e.rowPathUsPerItem.toFixed(2)} | ${e.workerUsPerItem.toFixed(2)} | ${e.speedup.toFixed(2)}x`);
}
