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
//   node bench/decode.ts [--quick]
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { decodeLogsProto, decodeTracesProto } from '../src/pipeline/decode/index.ts';
import { PROTO_DIR } from '../src/receiver/otlp-messages.ts';
import { createEncoder } from '../src/storage/rowjson.ts';
import { median } from './stats.ts';
import { defaultSpec, loadTraffic, trafficSummary, type BenchSignal, type TrafficRequest } from './traffic.ts';

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

export interface DecodeFigures {
  options: string;
  signals: DecodeSignalFigures[];
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
      name: 'ours + row encoding for memory/SQLite (the whole worker task)',
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

/** The decode scenario for traces and logs. */
export async function run(opts: { quick?: boolean; cacheDir?: string } = {}): Promise<DecodeFigures> {
  const rounds = opts.quick ? 5 : 15;
  const signals: DecodeSignalFigures[] = [];
  for (const signal of ['traces', 'logs'] as const) {
    const requests = loadTraffic(defaultSpec(signal), opts.cacheDir);
    signals.push(benchDecodeSignal(signal, requests, rounds));
  }
  if (sink === -1) console.log(sink);
  return { options: `proto-loader options ${JSON.stringify({ ...LOADER_OPTIONS, longs: 'String', bytes: 'String', includeDirs: undefined })}`, signals };
}

if (import.meta.main) {
  const figures = await run({ quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(figures, null, 2));
}
