// Scenario: the memory a decode worker's task takes at its peak, per byte of the request, for
// OTLP/protobuf against OTLP/JSON (the bench traffic's requests joined into one large request,
// and the same spans or log records as OTLP/JSON). Each case runs in a process of its own that
// runs the store's worker encoder once on one of the traffic's requests (compiling it), reads the
// body from a file and then runs the encoder on it; the figure is the
// growth of its peak RSS (VmHWM) over its RSS before the call, over the body's size. It is what
// Ingest's charges against writer.maxQueueBytes while a request decodes rest on: an OTLP/JSON
// request's (JSON_DECODE_CHARGE) and an OTLP/protobuf one's (STORE_BYTES_PER_REQUEST_BYTE of the
// store's encoder). Not part of `npm run bench` (a minute). --shards gives the ClickHouse encoder
// that many shards (the traffic's traces spread over them).
//
//   node bench/json-memory.ts [--mib=8,32] [--encoder=otlp|postgres|clickhouse] [--shards=1]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { OtlpFormat } from '../src/pipeline/pool.ts';
import { loadRequestEncoder } from '../src/pipeline/transcode/registry.ts';
import { asOtlpJson } from './decode.ts';
import { cliFlag, memory, transcoderSpec } from './harness.ts';
import { DEFAULT_CACHE_DIR } from './ingest.ts';
import { defaultSpec, loadTraffic, trafficRequest, type BenchSignal, type TrafficRequest } from './traffic.ts';

const MiB = 2 ** 20;

/** One request of at least `bytes` of protobuf: the traffic's requests joined (repeated fields of concatenated messages append). */
function joinedRequest(signal: BenchSignal, bytes: number): TrafficRequest {
  const parts: Uint8Array[] = [];
  let size = 0;
  let items = 0;
  for (let seed = 6; size < bytes; seed++) {
    for (const r of loadTraffic(defaultSpec(signal, 24, seed), DEFAULT_CACHE_DIR)) {
      if (size >= bytes) break;
      parts.push(r.bytes);
      size += r.bytes.byteLength;
      items += r.items;
    }
  }
  return trafficRequest(signal, Buffer.concat(parts), items);
}

/** The request's items as OTLP/JSON. */
const asJson = (signal: BenchSignal, req: TrafficRequest): Uint8Array => asOtlpJson(signal, [req])[0]!.bytes;

if (cliFlag('child') !== undefined) {
  // One measurement: the body from its file, the encoder loaded and warmed on a small request first.
  const [signal, format, file, encoderName, shards] = cliFlag('child')!.split(',') as [BenchSignal, OtlpFormat, string, string, string];
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const encoder = await loadRequestEncoder(transcoderSpec(encoderName, Number(shards))!, { maxNestingDepth: 100 });
  encoder.encode(signal, format, readFileSync(`${file}.warm`));
  const body = readFileSync(file);
  gc();
  const before = memory(process.pid);
  const out = encoder.encode(signal, format, body);
  const grown = memory(process.pid).peakRssBytes - Math.max(before.peakRssBytes, before.rssBytes);
  console.log(JSON.stringify({ accepted: out.accepted, grownBytes: grown }));
} else {
  const sizes = (cliFlag('mib') ?? '8,32').split(',').map(Number);
  const encoderName = cliFlag('encoder') ?? 'otlp';
  const shards = cliFlag('shards') ?? '1';
  // Checked here, before any child runs.
  if (transcoderSpec(encoderName, Number(shards)) === undefined) throw new Error(`--encoder must be otlp, postgres or clickhouse, not ${JSON.stringify(encoderName)}`);
  const dir = mkdtempSync(join(tmpdir(), 'tracehouse-bench-json-memory-'));
  try {
    console.log(`encoder ${encoderName}${encoderName === 'clickhouse' ? `, ${shards} shard(s)` : ''}: peak RSS growth of one worker task over its body`);
    console.log('signal | body MiB | items | protobuf: growth MiB (× body) | OTLP/JSON of the same items: body MiB, growth MiB (× body)');
    for (const signal of ['traces', 'logs'] as const) {
      for (const mib of sizes) {
        // The protobuf body is mib MiB; the JSON of the same items is larger (about 2.5 times).
        const request = joinedRequest(signal, mib * MiB);
        const { bytes: body, items } = request;
        const json = asJson(signal, request);
        const warm = joinedRequest(signal, 1);
        const measure = (format: OtlpFormat, bytes: Uint8Array): { accepted: number; grownBytes: number } => {
          const file = join(dir, `${signal}-${mib}.${format}`);
          writeFileSync(file, bytes);
          writeFileSync(`${file}.warm`, format === 'json' ? asJson(signal, warm) : warm.bytes);
          const text = execFileSync(process.execPath, [import.meta.filename, `--child=${signal},${format},${file},${encoderName},${shards}`], { encoding: 'utf8' });
          return JSON.parse(text.trim().split('\n').pop()!) as { accepted: number; grownBytes: number };
        };
        const p = measure('protobuf', body);
        const j = measure('json', json);
        if (p.accepted !== items || j.accepted !== items) throw new Error(`accepted ${p.accepted} / ${j.accepted} of ${items} items`);
        const row = (bytes: number, grown: number) => `${(grown / MiB).toFixed(0)} (${(grown / bytes).toFixed(1)}×)`;
        console.log(`${signal} | ${(body.byteLength / MiB).toFixed(1)} | ${items} | ${row(body.byteLength, p.grownBytes)} | ${(json.byteLength / MiB).toFixed(1)}, ${row(json.byteLength, j.grownBytes)}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
