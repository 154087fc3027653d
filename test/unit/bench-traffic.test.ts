// The bench traffic's stamping (bench/traffic.ts): a request sent "now" (stampTimes) keeps its
// spans' and log records' shape — every time moved by the same amount, its newest at the moment
// given — and nothing but the times changes; each send's trace ids (stampTraceIds) are new, keep
// a trace's spans together, and are spread as random ids are, not sorted by send. A request set
// cached on disk is read back only from the same inputs: the generator, every module it runs
// (however deep), the .proto files it encodes with and protobufjs; building one removes the sets
// of the same spec cached under other inputs, and nothing else.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildTraffic, GENERATOR_INPUTS, inputsKey, loadTraffic, localModules, stampTimes, stampTraceIds, type BenchSignal } from '../../bench/traffic.ts';
import { LogsRequest, TraceRequest } from '../helpers/otlp-build.ts';

interface Decoded {
  times: bigint[];
  rest: unknown;
}

/** Every time of a request (spans, their events; log records' time and observed time), and the request with them blanked. */
function decode(signal: BenchSignal, bytes: Uint8Array): Decoded {
  const type = signal === 'traces' ? TraceRequest : LogsRequest;
  const obj = type.toObject(type.decode(bytes), { longs: String, bytes: String, defaults: true }) as Record<string, { [k: string]: { [k: string]: Record<string, unknown>[] }[] }[]>;
  const times: bigint[] = [];
  const take = (o: Record<string, unknown>, keys: string[]) => {
    for (const k of keys) {
      times.push(BigInt(o[k] as string));
      o[k] = '';
    }
  };
  for (const rs of obj[signal === 'traces' ? 'resourceSpans' : 'resourceLogs']!) {
    for (const ss of rs[signal === 'traces' ? 'scopeSpans' : 'scopeLogs']!) {
      for (const item of ss[signal === 'traces' ? 'spans' : 'logRecords']!) {
        if (signal === 'logs') take(item, ['timeUnixNano', 'observedTimeUnixNano']);
        else {
          take(item, ['startTimeUnixNano', 'endTimeUnixNano']);
          for (const e of item.events as Record<string, unknown>[]) take(e, ['timeUnixNano']);
        }
      }
    }
  }
  return { times, rest: obj };
}

describe.each(['traces', 'logs'] as const)('bench traffic, %s sent with current times', (signal) => {
  it('moves every time by one amount, the newest to the moment of sending, and changes nothing else', () => {
    const requests = buildTraffic({ signal, requests: 3, seed: 5, minItems: 20, maxItems: 40 });
    const at = 1_800_000_000_123_456_789n;
    for (const [i, req] of requests.entries()) {
      const replayed = stampTraceIds(req, 1, i);
      const sent = stampTraceIds(req, 1, i);
      stampTimes(sent, req, at);
      const before = decode(signal, replayed);
      const after = decode(signal, sent);
      expect(after.rest).toEqual(before.rest);
      expect(after.times.length).toBe(before.times.length);
      // Events and spans alike: one shift for the whole request.
      expect(after.times.length).toBeGreaterThan(req.items);
      const shift = at - before.times.reduce((a, b) => (b > a ? b : a));
      expect(after.times).toEqual(before.times.map((t) => t + shift));
      expect(after.times.reduce((a, b) => (b > a ? b : a))).toBe(at);
    }
  });
});

describe('bench traffic, trace ids stamped per send', () => {
  it('are new on every send, keep the spans of a trace together, and are not in the order of the sends', () => {
    const [req] = buildTraffic({ signal: 'traces', requests: 1, seed: 5, minItems: 40, maxItems: 40 });
    const idsOf = (bytes: Uint8Array): string[] => {
      const obj = TraceRequest.toObject(TraceRequest.decode(bytes), { bytes: String }) as { resourceSpans: { scopeSpans: { spans: { traceId: string }[] }[] }[] };
      return obj.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((sp) => Buffer.from(sp.traceId, 'base64').toString('hex'))));
    };
    const original = idsOf(req!.bytes);
    expect(new Set(original).size).toBeGreaterThan(1);
    expect(new Set(original).size).toBeLessThan(original.length);
    const seen = new Set<string>();
    const firsts: string[] = [];
    for (let send = 0; send < 200; send++) {
      const ids = idsOf(stampTraceIds(req!, 7, send));
      expect(ids).toHaveLength(original.length);
      // Spans that shared a trace id still do, and no others.
      for (let i = 0; i < ids.length; i++) expect(ids.map((id) => id === ids[i])).toEqual(original.map((id) => id === original[i]));
      for (const id of new Set(ids)) {
        expect(seen.has(id)).toBe(false);
        seen.add(id);
      }
      firsts.push(ids[0]!);
    }
    // One trace's id from send to send goes up about as often as down: an index of trace ids takes
    // them all over, not at its end.
    let up = 0;
    for (let k = 1; k < firsts.length; k++) if (firsts[k]! > firsts[k - 1]!) up++;
    expect(up).toBeGreaterThan(60);
    expect(up).toBeLessThan(140);
  });
});

describe('bench traffic, cached on disk', () => {
  it('is read back as built, under a name only the same inputs read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tracehouse-traffic-'));
    try {
      const spec = { signal: 'traces' as const, requests: 3, seed: 5, minItems: 2, maxItems: 4 };
      const built = loadTraffic(spec, dir);
      expect(loadTraffic(spec, dir).map((r) => Buffer.from(r.bytes))).toEqual(built.map((r) => Buffer.from(r.bytes)));
      const names = readdirSync(dir);
      expect(names).toHaveLength(2);
      for (const name of names) expect(name).toContain(inputsKey(GENERATOR_INPUTS));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('removes the sets of the same spec cached under other inputs when it builds one, and nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tracehouse-traffic-stale-'));
    try {
      const spec = { signal: 'traces' as const, requests: 3, seed: 5, minItems: 2, maxItems: 4 };
      // Sets of this spec an older generator (another key, another day, the old "v2" names) left.
      const stale = ['traces-r3-s5-2-4-d20790-0123456789ab.bin', 'traces-r3-s5-2-4-d20790-0123456789ab.json', 'traces-r3-s5-2-4-d20793-v2.bin', 'traces-r3-s5-2-4-d20793-v2.json'];
      // Other specs' sets, another builder's temporary file, and files the cache did not write.
      const kept = ['traces-r3-s5-2-40-d20790-0123456789ab.bin', 'logs-r3-s5-2-4-d20790-0123456789ab.bin', 'traces-r3-s5-2-4-d20790-0123456789ab.bin.4242.tmp', 'traces-r3-s5-2-4-notes.txt', 'README'];
      for (const name of [...stale, ...kept]) writeFileSync(join(dir, name), 'x');
      loadTraffic(spec, dir);
      const names = readdirSync(dir).sort();
      expect(names.filter((n) => n.includes(inputsKey(GENERATOR_INPUTS)))).toHaveLength(2);
      expect(names.filter((n) => !n.includes(inputsKey(GENERATOR_INPUTS)))).toEqual([...kept].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('counts as inputs the modules the generator runs, the .proto files it encodes with and protobufjs', () => {
    const repo = fileURLToPath(new URL('../../', import.meta.url));
    const inputs = GENERATOR_INPUTS.map((f) => (f.startsWith(repo) ? f.slice(repo.length) : f));
    expect(inputs).toEqual(
      expect.arrayContaining([
        'bench/traffic.ts',
        // Imported by traffic.ts (PROTO_DIR, fmix32), and what those import in turn.
        'src/receiver/otlp-messages.ts',
        'src/storage/sqlite/terms.ts',
        'src/pipeline/decode/wire.ts',
        // Loaded by the generator, and what those import in turn.
        'proto/opentelemetry/proto/collector/trace/v1/trace_service.proto',
        'proto/opentelemetry/proto/collector/logs/v1/logs_service.proto',
        'proto/opentelemetry/proto/trace/v1/trace.proto',
        'proto/opentelemetry/proto/logs/v1/logs.proto',
        'proto/opentelemetry/proto/common/v1/common.proto',
        'proto/opentelemetry/proto/resource/v1/resource.proto',
      ]),
    );
    expect(inputs.some((f) => f.endsWith('/protobufjs/package.json'))).toBe(true);
    // A type-only import runs nothing.
    expect(inputs).not.toContain('src/model/signal.ts');
  });

  it('is keyed to the content of every module the generator imports, however deep', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tracehouse-traffic-inputs-'));
    try {
      mkdirSync(join(dir, 'bench'));
      mkdirSync(join(dir, 'lib'));
      writeFileSync(join(dir, 'bench', 'gen.ts'), "import {\n  mid,\n  type Shape,\n} from './mid.ts';\nimport type { Only } from '../lib/types.ts';\nexport const x = mid;\n");
      writeFileSync(join(dir, 'bench', 'mid.ts'), "export { deep as mid } from '../lib/deep.ts';\nexport const lazy = () => import('../lib/lazy.ts');\n");
      writeFileSync(join(dir, 'lib', 'deep.ts'), 'export const deep = 1;\n');
      writeFileSync(join(dir, 'lib', 'lazy.ts'), 'export const lazy = 1;\n');
      writeFileSync(join(dir, 'lib', 'types.ts'), 'export type Only = number;\n');
      const modules = localModules(join(dir, 'bench', 'gen.ts'));
      expect(modules.map((f) => f.slice(dir.length + 1))).toEqual(['bench/gen.ts', 'bench/mid.ts', 'lib/deep.ts', 'lib/lazy.ts']);
      const before = inputsKey(modules);
      expect(inputsKey(localModules(join(dir, 'bench', 'gen.ts')))).toBe(before);
      // A module two imports away changes: so does the key (a cache named by the old one is not read).
      writeFileSync(join(dir, 'lib', 'deep.ts'), 'export const deep = 2;\n');
      expect(inputsKey(localModules(join(dir, 'bench', 'gen.ts')))).not.toBe(before);
      // Contents moved from one file to the next are other inputs too.
      writeFileSync(join(dir, 'lib', 'deep.ts'), 'export const deep = 1;\n');
      expect(inputsKey(modules)).toBe(before);
      writeFileSync(join(dir, 'lib', 'deep.ts'), 'export const deep = 1;\nexport const lazy = 1;\n');
      writeFileSync(join(dir, 'lib', 'lazy.ts'), '');
      expect(inputsKey(modules)).not.toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
