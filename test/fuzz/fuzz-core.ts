// Seeded mutation fuzzing of the OTLP receivers, shared by test/fuzz/otlp.fuzz.test.ts (a few
// hundred cases in `npm test`) and scripts/fuzz.ts (as many as a duration allows). Valid requests
// are damaged the way a broken or hostile client would (bit flips, truncation, inflated length
// prefixes, overlong varints, foreign wire types, repeated slices, deep nesting, JSON values of
// the wrong kind) and sent over OTLP/gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON. Every answer
// must be a client-fault answer or success: a 5xx, an UNAVAILABLE/INTERNAL/UNKNOWN, a reset
// connection or no answer at all is a finding, and so is an error body that carries a
// JavaScript exception message instead of a reason.
import { request } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { RawOtlpClient, encodeLogs, encodeTraces } from '../helpers/otlp-proto.ts';
import type { Signal } from '../../src/model/signal.ts';
import { prng } from '../helpers/prng.ts';

export type Transport = 'grpc' | 'http-proto' | 'http-json';


type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

const hex = (r: Rand, bytes: number) => Array.from({ length: bytes }, () => int(r, 256).toString(16).padStart(2, '0')).join('');
const kv = (key: string, value: Record<string, unknown>) => ({ key, value });

function anyValues() {
  return [
    kv('s', { stringValue: 'text' }),
    kv('b', { boolValue: true }),
    kv('i', { intValue: '-9223372036854775808' }),
    kv('d', { doubleValue: 1.5 }),
    kv('bytes', { bytesValue: Buffer.from([0, 1, 2, 255]) }),
    kv('arr', { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '7' }] } }),
    kv('map', { kvlistValue: { values: [kv('inner', { kvlistValue: { values: [kv('leaf', { boolValue: false })] } })] } }),
  ];
}

/** A valid, varied ExportTraceServiceRequest (protobufjs object form) with n spans. */
function traceObject(r: Rand, n: number) {
  const traceId = Buffer.from(hex(r, 16), 'hex');
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId,
    spanId: Buffer.from(hex(r, 8), 'hex'),
    ...(i > 0 ? { parentSpanId: Buffer.from(hex(r, 8), 'hex') } : {}),
    name: `op-${i}`,
    kind: 1 + (i % 5),
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000123456789',
    attributes: anyValues(),
    events: [{ timeUnixNano: '1700000000000000001', name: 'ev', attributes: [kv('k', { stringValue: 'v' })] }],
    links: [{ traceId: Buffer.from(hex(r, 16), 'hex'), spanId: Buffer.from(hex(r, 8), 'hex'), attributes: [kv('l', { intValue: '1' })] }],
    status: { code: 2, message: 'boom' },
  }));
  return { resourceSpans: [{ resource: { attributes: [kv('service.name', { stringValue: 'fuzz' })] }, scopeSpans: [{ scope: { name: 'fuzz-scope', version: '1' }, spans }] }] };
}

function logsObject(r: Rand, n: number) {
  const records = Array.from({ length: n }, (_, i) => ({
    timeUnixNano: '1700000000000000000',
    observedTimeUnixNano: '1700000000000000001',
    severityNumber: 1 + (i % 24),
    severityText: 'INFO',
    body: { kvlistValue: { values: anyValues() } },
    attributes: anyValues(),
    traceId: Buffer.from(hex(r, 16), 'hex'),
    spanId: Buffer.from(hex(r, 8), 'hex'),
    flags: 1,
  }));
  return { resourceLogs: [{ resource: { attributes: [kv('service.name', { stringValue: 'fuzz' })] }, scopeLogs: [{ scope: { name: 'fuzz-scope' }, logRecords: records }] }] };
}

// OTLP/JSON: ids in hex, int64 as strings, enums as numbers (the spec's JSON mapping).
function toJson(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.length === 4 ? v.toString('base64') : v.toString('hex');
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v;
}

/** A valid request body of the signal in the transport's encoding. */
export function validBody(r: Rand, transport: Transport, signal: Signal, n = 3): Buffer {
  const obj = signal === 'traces' ? traceObject(r, n) : logsObject(r, n);
  if (transport === 'http-json') return Buffer.from(JSON.stringify(toJson(obj)));
  return Buffer.from(signal === 'traces' ? encodeTraces(obj) : encodeLogs(obj));
}

function varint(n: bigint): number[] {
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return out;
}

/** Offsets of plausible length-delimited fields (tag with wire type 2 followed by a varint length that fits). */
function lengthPrefixes(b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < b.length; i++) {
    if ((b[i]! & 7) === 2 && b[i]! >> 3 > 0 && b[i]! < 0x80 && b[i + 1]! < 0x80 && i + 2 + b[i + 1]! <= b.length) out.push(i + 1);
  }
  return out;
}

// Written by hand because protobufjs refuses to build objects nested this deep.
function ld(field: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(varint(BigInt((field << 3) | 2))), Buffer.from(varint(BigInt(body.length))), body]);
}

/** Protobuf bytes of an AnyValue nested depth levels deep (arrays and kvlists alternating) around an int64 leaf. */
function deepAnyValue(depth: number): Buffer {
  let v: Buffer = Buffer.from([0x18, ...varint((1n << 63n) - 1n)]); // int_value = 3
  for (let i = 0; i < depth; i++) {
    v = i % 2 === 0 ? ld(5, ld(1, v)) : ld(6, ld(1, Buffer.concat([ld(1, Buffer.from('k')), ld(2, v)])));
  }
  return v;
}

/** A request with one span (or log record) whose attribute "deep" is nested depth levels, next to a valid one. */
function deepRequest(signal: Signal, depth: number, r: Rand): Buffer {
  const keyValue = Buffer.concat([ld(1, Buffer.from('deep')), ld(2, deepAnyValue(depth))]);
  const attr = ld(9, keyValue);
  const fixed64 = (field: number, n: bigint) => {
    const b = Buffer.alloc(9);
    b[0] = (field << 3) | 1;
    b.writeBigUInt64LE(n, 1);
    return b;
  };
  if (signal === 'traces') {
    const span = (name: string, extra: Buffer) => ld(2, Buffer.concat([ld(1, Buffer.from(hex(r, 16), 'hex')), ld(2, Buffer.from(hex(r, 8), 'hex')), ld(5, Buffer.from(name)), fixed64(7, 1700000000000000000n), fixed64(8, 1700000000000000001n), extra]));
    return ld(1, ld(2, Buffer.concat([span('deep', attr), span('kept', Buffer.alloc(0))])));
  }
  const logAttr = ld(6, keyValue);
  const rec = (extra: Buffer) => ld(2, Buffer.concat([fixed64(1, 1700000000000000000n), extra]));
  return ld(1, ld(2, Buffer.concat([rec(logAttr), rec(Buffer.alloc(0))])));
}

const MAX_REPEAT_BYTES = 256 * 1024;

/** Damages a protobuf body; returns the new bytes and what was done. */
export function mutateProto(r: Rand, b: Buffer, signal: Signal): { body: Buffer; mutation: string } {
  const kind = int(r, 10);
  const out = Buffer.from(b);
  switch (kind) {
    case 0: {
      const n = 1 + int(r, 8);
      for (let i = 0; i < n; i++) out[int(r, out.length)]! ^= 1 << int(r, 8);
      return { body: out, mutation: `flip ${n} bits` };
    }
    case 1: {
      const at = int(r, b.length);
      return { body: out.subarray(0, at), mutation: `truncate at ${at}` };
    }
    case 2: {
      const at = int(r, b.length);
      const n = 1 + int(r, 16);
      for (let i = 0; i < n && at + i < out.length; i++) out[at + i] = int(r, 256);
      return { body: out, mutation: `overwrite ${n} bytes at ${at}` };
    }
    case 3: {
      const prefixes = lengthPrefixes(b);
      if (prefixes.length === 0) return { body: out, mutation: 'none' };
      const at = pick(r, prefixes);
      const inflated = pick(r, [BigInt(b[at]! + 1 + int(r, 64)), 1n << 31n, (1n << 32n) - 1n, (1n << 63n) - 1n, (1n << 64n) - 1n]);
      return { body: Buffer.concat([b.subarray(0, at), Buffer.from(varint(inflated)), b.subarray(at + 1)]), mutation: `length prefix at ${at} inflated to ${inflated}` };
    }
    case 4: {
      const at = int(r, b.length);
      return { body: Buffer.concat([b.subarray(0, at), Buffer.from([0x08, ...Array(10).fill(0xff), 0x01]), b.subarray(at)]), mutation: `overlong varint inserted at ${at}` };
    }
    case 5: {
      const prefixes = lengthPrefixes(b);
      if (prefixes.length === 0) return { body: out, mutation: 'none' };
      const at = pick(r, prefixes) - 1;
      const wt = pick(r, [0, 1, 3, 4, 5, 6, 7]);
      out[at] = (out[at]! & ~7) | wt;
      return { body: out, mutation: `wire type of tag at ${at} set to ${wt}` };
    }
    case 6: {
      const at = int(r, b.length);
      const len = 1 + int(r, Math.min(64, b.length - at));
      const times = 1 + int(r, 2000);
      const slice = b.subarray(at, at + len);
      const rep = Buffer.concat(Array(Math.max(1, Math.min(times, Math.floor(MAX_REPEAT_BYTES / len)))).fill(slice));
      return { body: Buffer.concat([b.subarray(0, at), rep, b.subarray(at)]), mutation: `slice ${at}+${len} repeated` };
    }
    case 7: {
      const depth = pick(r, [99, 100, 101, 150, 1000, 5000]);
      const body = deepRequest(signal, depth, r);
      return { body: Buffer.from(body), mutation: `AnyValue nested ${depth} deep` };
    }
    case 8: {
      const n = 1 + int(r, 64);
      const bytes = Buffer.from(Array.from({ length: n }, () => int(r, 256)));
      const at = int(r, b.length + 1);
      return { body: Buffer.concat([b.subarray(0, at), bytes, b.subarray(at)]), mutation: `${n} random bytes inserted at ${at}` };
    }
    default:
      return { body: Buffer.from(Array.from({ length: int(r, 512) }, () => int(r, 256))), mutation: 'random bytes' };
  }
}

const JSON_TOKENS = ['{', '}', '[', ']', '"', ',', ':', 'null', 'true', '1e400', '-0', '99999999999999999999999', '"\\ud800"', '"\\u0000"', '\u0000', '\\', 'NaN'];
const WRONG_VALUES: unknown[] = [null, true, -1, 1.5, 1e308, '', 'x', 'ZZZZ', '00', [], {}, [1, 2], { a: 1 }, 'AAAAAAAAAAAAAAAAAAAAAA==', '18446744073709551616', '-9223372036854775809', 99999999999999999999, 'SPAN_KIND_SERVER', '__proto__'];

type JsonNode = Record<string, unknown> | unknown[];

function nodes(v: unknown, out: { parent: JsonNode; key: string | number }[], depth = 0): void {
  if (depth > 40 || v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      out.push({ parent: v, key: i });
      nodes(x, out, depth + 1);
    });
  } else {
    for (const [k, x] of Object.entries(v)) {
      out.push({ parent: v as Record<string, unknown>, key: k });
      nodes(x, out, depth + 1);
    }
  }
}

/** A JSON text of an AnyValue nested depth deep ending in a literal (written as text: big integers stay literal). */
function deepJsonValue(depth: number, leaf: string): string {
  let s = leaf;
  for (let i = 0; i < depth; i++) s = i % 2 === 0 ? `{"arrayValue":{"values":[${s}]}}` : `{"kvlistValue":{"values":[{"key":"k","value":${s}}]}}`;
  return s;
}

/** Damages an OTLP/JSON body, as text or as structure. */
export function mutateJson(r: Rand, b: Buffer, signal: Signal): { body: Buffer; mutation: string } {
  const text = b.toString('utf8');
  const kind = int(r, 8);
  switch (kind) {
    case 0: {
      const at = int(r, text.length);
      return { body: Buffer.from(text.slice(0, at)), mutation: `truncate at ${at}` };
    }
    case 1: {
      const at = int(r, text.length);
      const tok = pick(r, JSON_TOKENS);
      return { body: Buffer.from(text.slice(0, at) + tok + text.slice(at)), mutation: `insert ${JSON.stringify(tok)} at ${at}` };
    }
    case 2: {
      const out = Buffer.from(b);
      const n = 1 + int(r, 4);
      for (let i = 0; i < n; i++) out[int(r, out.length)]! ^= 1 << int(r, 8);
      return { body: out, mutation: `flip ${n} bits` };
    }
    case 3:
    case 4: {
      const doc = JSON.parse(text) as unknown;
      const all: { parent: JsonNode; key: string | number }[] = [];
      nodes(doc, all);
      const n = 1 + int(r, 3);
      const what: string[] = [];
      for (let i = 0; i < n; i++) {
        const { parent, key } = pick(r, all);
        const v = pick(r, WRONG_VALUES);
        (parent as Record<string | number, unknown>)[key] = v;
        what.push(`${key}=${JSON.stringify(v)}`);
      }
      return { body: Buffer.from(JSON.stringify(doc)), mutation: `values replaced: ${what.join(', ')}` };
    }
    case 5: {
      // Deep AnyValue with a big integer literal inside: the known JSON.parse recursion case.
      const depth = pick(r, [99, 100, 101, 500, 3000, 10000, 50000, 200000]);
      const leaf = pick(r, ['{"intValue":123456789012345678901234567890}', '{"intValue":"9223372036854775807"}', '{"stringValue":"x"}', '{"doubleValue":1e400}']);
      const doc = JSON.parse(validBody(r, 'http-json', signal, 2).toString()) as Record<string, unknown>;
      const marker = '"__DEEP__"';
      const attrs = signal === 'traces'
        ? ((doc['resourceSpans'] as Record<string, unknown[]>[])[0]!['scopeSpans']![0] as Record<string, Record<string, unknown[]>[]>)['spans']![0]!['attributes']!
        : ((doc['resourceLogs'] as Record<string, unknown[]>[])[0]!['scopeLogs']![0] as Record<string, Record<string, unknown[]>[]>)['logRecords']![0]!['attributes']!;
      attrs.push({ key: 'deep', value: '__DEEP__' });
      let json = JSON.stringify(doc).replace(marker, deepJsonValue(depth, leaf));
      // Timestamps as JSON numbers beyond 2^53 make the decoder parse again with exact integers.
      const numbers = r() < 0.5;
      if (numbers) json = json.replace(/"(start|end|observed)?(T|t)imeUnixNano":"(\d+)"/g, '"$1$2imeUnixNano":$3');
      return { body: Buffer.from(json), mutation: `AnyValue nested ${depth} deep, leaf ${leaf}${numbers ? ', timestamps as numbers' : ''}` };
    }
    case 6: {
      // Deeply nested raw JSON where the decoder expects a message.
      const depth = pick(r, [1000, 10000, 100000]);
      return { body: Buffer.from('['.repeat(depth) + ']'.repeat(depth)), mutation: `bare array nesting ${depth}` };
    }
    default: {
      const doc = JSON.parse(text) as unknown;
      const all: { parent: JsonNode; key: string | number }[] = [];
      nodes(doc, all);
      const { parent } = pick(r, all);
      if (!Array.isArray(parent)) {
        (parent as Record<string, unknown>)['__proto__'] = { polluted: true };
        (parent as Record<string, unknown>)['constructor'] = 'x';
        (parent as Record<string, unknown>)["'; DROP TABLE spans; --"] = 1;
      }
      return { body: Buffer.from(JSON.stringify(doc)), mutation: 'hostile keys added' };
    }
  }
}

/** What the collector answered. */
export interface Answer {
  /** HTTP status, or the gRPC status code name. */
  code: string;
  message: string;
}

/** Why an answer is wrong for a client fault, or undefined when it is acceptable. */
export function judge(transport: Transport, a: Answer): string | undefined {
  if (a.code === 'NO_ANSWER') return `no answer: ${a.message}`;
  if (transport === 'grpc') {
    if (!['OK', 'INVALID_ARGUMENT', 'RESOURCE_EXHAUSTED'].includes(a.code)) return `gRPC ${a.code}: ${a.message}`;
  } else if (!['200', '400', '413', '415'].includes(a.code)) {
    return `HTTP ${a.code}: ${a.message}`;
  }
  // An answer that quotes a JavaScript exception says nothing useful and shows internals.
  if (/Maximum call stack|Cannot read propert|is not a function|is not defined|RangeError|TypeError|undefined|\[object Object\]|BigInt/.test(a.message)) return `internal message in the answer: ${a.message}`;
  return undefined;
}

/** Sends bodies to one collector over the three transports. */
export class Sender {
  private readonly grpcClient: RawOtlpClient;
  private readonly httpUrl: URL;
  private readonly timeoutMs: number;

  constructor(grpcAddress: string, httpUrl: string, timeoutMs = 10_000) {
    this.grpcClient = new RawOtlpClient(grpcAddress, { 'grpc.max_send_message_length': 128 * 1024 * 1024 });
    this.httpUrl = new URL(httpUrl);
    this.timeoutMs = timeoutMs;
  }

  async send(transport: Transport, signal: Signal, body: Buffer): Promise<Answer> {
    if (transport === 'grpc') {
      const md = new grpc.Metadata();
      const call = signal === 'traces' ? this.grpcClient.traces(body, md) : this.grpcClient.logs(body, md);
      const res = await Promise.race([call, new Promise<undefined>((r) => setTimeout(() => r(undefined), this.timeoutMs).unref())]);
      if (res === undefined) return { code: 'NO_ANSWER', message: `no gRPC answer within ${this.timeoutMs} ms` };
      if (res.error === null) return { code: 'OK', message: '' };
      return { code: grpc.status[res.error.code] ?? String(res.error.code), message: res.error.details };
    }
    return new Promise<Answer>((resolve) => {
      const req = request(
        {
          host: this.httpUrl.hostname,
          port: this.httpUrl.port,
          method: 'POST',
          path: `/v1/${signal}`,
          headers: { 'content-type': transport === 'http-json' ? 'application/json' : 'application/x-protobuf', 'content-length': body.length },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            // The error text of JSON bodies; for protobuf bodies the printable runs do.
            resolve({ code: String(res.statusCode), message: text.replace(/[^\x20-\x7e]+/g, ' ').slice(0, 500) });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no HTTP answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => resolve({ code: 'NO_ANSWER', message: err.message }));
      req.end(body);
    });
  }

  close(): void {
    this.grpcClient.close();
  }
}

/** One fuzz case that was answered wrongly. */
export interface Finding {
  transport: Transport;
  signal: Signal;
  mutation: string;
  problem: string;
  body: Buffer;
}

export interface FuzzRun {
  cases: number;
  byCode: Record<string, number>;
  findings: Finding[];
}

/** Runs seeded cases until maxCases or deadline (ms since epoch), whichever comes first. */
export async function fuzz(sender: Sender, opts: { seed: number; maxCases: number; deadline?: number; concurrency?: number }): Promise<FuzzRun> {
  const r = prng(opts.seed);
  const run: FuzzRun = { cases: 0, byCode: {}, findings: [] };
  const transports: Transport[] = ['grpc', 'http-proto', 'http-json'];
  const signals: Signal[] = ['traces', 'logs'];
  // Cases are generated in order from the one PRNG, so a seed replays exactly whatever the concurrency.
  const next = (): { transport: Transport; signal: Signal; body: Buffer; mutation: string } | undefined => {
    if (run.cases >= opts.maxCases || (opts.deadline !== undefined && Date.now() > opts.deadline)) return undefined;
    run.cases++;
    const transport = pick(r, transports);
    const signal = pick(r, signals);
    const valid = validBody(r, transport, signal, 1 + int(r, 4));
    const m = transport === 'http-json' ? mutateJson(r, valid, signal) : mutateProto(r, valid, signal);
    return { transport, signal, ...m };
  };
  const worker = async () => {
    for (let c = next(); c !== undefined; c = next()) {
      const a = await sender.send(c.transport, c.signal, c.body);
      const key = `${c.transport} ${a.code}`;
      run.byCode[key] = (run.byCode[key] ?? 0) + 1;
      const problem = judge(c.transport, a);
      if (problem !== undefined) run.findings.push({ transport: c.transport, signal: c.signal, mutation: c.mutation, problem, body: c.body });
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  return run;
}
