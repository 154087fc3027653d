// Scenario: "store what arrived" for the memory and SQLite stores (issue #10), against
// transcoding to JSON lines. Both in one thread, thread CPU time, median of interleaved rounds,
// on the bench's standard trace requests.
//
//   ingest, JSON lines (what runs): transcodeTracesProto, wire bytes → row lines.
//   ingest, store what arrived: each span kept as its own protobuf bytes plus its indexed
//     columns, resource and scope once per group. Its validating scan is bounded above here by
//     decodeTracesProto (which also builds row objects), plus copying each span's bytes.
//   read, JSON lines (what runs): spanFromJson of every stored document (getTrace, attribute search).
//   read, store what arrived: every span decoded from a one-span request made of its stored
//     resource, scope and span bytes (decodeTracesProto).
//
//   node bench/store-arrived.ts
import { decodeTracesProto } from '../src/pipeline/decode/index.ts';
import { WireReader } from '../src/pipeline/decode/wire.ts';
import { transcodeTracesProto } from '../src/pipeline/transcode/rowjson/proto.ts';
import { chunkLineRefs, docText, spanFromJson, type SpanHeader } from '../src/storage/rowjson.ts';
import { median } from './stats.ts';
import { defaultSpec, loadTraffic, trafficSummary } from './traffic.ts';

const LIMITS = { maxNestingDepth: 100 };
const ROUNDS = 11;

function threadCpuUs(): number {
  const u = process.threadCpuUsage();
  return u.user + u.system;
}

/** A length-delimited field: tag byte(s) + varint length + bytes. */
function field(tag: number, body: Uint8Array): Uint8Array {
  const len: number[] = [];
  let n = body.length;
  while (n >= 0x80) {
    len.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  len.push(n);
  const out = new Uint8Array(1 + len.length + body.length);
  out[0] = tag;
  out.set(len, 1);
  out.set(body, 1 + len.length);
  return out;
}

/** Every span of a request as (resource field bytes, scope field bytes, span bytes), as a store would keep them. */
function splitSpans(bytes: Uint8Array): { resource: Uint8Array; scope: Uint8Array; span: Uint8Array }[] {
  const out: { resource: Uint8Array; scope: Uint8Array; span: Uint8Array }[] = [];
  const r = new WireReader(bytes);
  while (r.pos < r.len) {
    r.tag();
    const rsEnd = r.lenEnd();
    let resource: Uint8Array = new Uint8Array(0);
    const spans: { scope: Uint8Array; span: Uint8Array }[] = [];
    while (r.pos < rsEnd) {
      const t = r.tag();
      if (t === 10) resource = field(10, r.bytes());
      else if (t === 18) {
        const ssEnd = r.lenEnd();
        let scope: Uint8Array = new Uint8Array(0);
        const here: Uint8Array[] = [];
        while (r.pos < ssEnd) {
          const t2 = r.tag();
          if (t2 === 10) scope = field(10, r.bytes());
          else if (t2 === 18) here.push(r.bytes());
          else r.skip(t2);
        }
        for (const span of here) spans.push({ scope, span });
      } else r.skip(t);
    }
    for (const s of spans) out.push({ resource, ...s });
  }
  return out;
}

const requests = loadTraffic(defaultSpec('traces'));
const items = trafficSummary(requests).items;
const stored = requests.flatMap((q) => splitSpans(q.bytes));
const docs = requests.flatMap((q) => [...chunkLineRefs<SpanHeader>(transcodeTracesProto(q.bytes, LIMITS).chunks.map((c) => c.data))].map(docText));
if (stored.length !== items || docs.length !== items) throw new Error('span count mismatch');

let sink = 0;
const contenders: [string, () => void][] = [
  ['ingest, JSON lines (transcode)', () => {
    for (const q of requests) sink += transcodeTracesProto(q.bytes, LIMITS).accepted;
  }],
  ['ingest, store what arrived (upper bound: row decoder + span byte copies)', () => {
    for (const q of requests) {
      sink += decodeTracesProto(q.bytes, LIMITS).rows.length;
      for (const s of splitSpans(q.bytes)) sink += s.span.slice().length;
    }
  }],
  ['read, JSON lines (spanFromJson per span)', () => {
    for (const d of docs) sink += spanFromJson(d).attributes.length;
  }],
  ['read, store what arrived (decode a one-span request per span)', () => {
    for (const s of stored) {
      const req = field(10, Buffer.concat([s.resource, field(18, Buffer.concat([s.scope, field(18, s.span)]))]));
      sink += decodeTracesProto(req, LIMITS).rows[0]!.attributes.length;
    }
  }],
];

for (const [, fn] of contenders) fn();
const samples: number[][] = contenders.map(() => []);
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < contenders.length; k++) {
    const i = (k + round) % contenders.length;
    const t0 = threadCpuUs();
    contenders[i]![1]();
    samples[i]!.push(threadCpuUs() - t0);
  }
}
console.log(`${items} spans in ${requests.length} requests, ${ROUNDS} rounds, CPU µs per span (median):`);
contenders.forEach(([name], i) => console.log(`  ${(median(samples[i]!) / items).toFixed(2).padStart(6)}  ${name}`));
if (sink === -1) console.log(sink);
