// Scenario: large read answers beside ingest. A collector (child process, --tree's code) holds
// --traces traces of --spans spans; --readers clients read them again and again through the
// Jaeger API (/api/traces?service=…&limit=…) while one client sends a one-span OTLP/HTTP export
// every 50 ms. Prints the collector's own event-loop delay (nodejs_eventloop_lag_p99_seconds and
// _max_seconds from /metrics, scraped each second) and the exports' latency. Not part of
// `npm run bench` (about half a minute).
//
//   node bench/read-lag.ts [--store=sqlite|memory] [--traces=20] [--spans=2500] [--readers=12] [--seconds=15] [--tree=<checkout>] [--port=21060]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliFlag } from './harness.ts';

const store = cliFlag('store') ?? 'sqlite';
const TRACES = Number(cliFlag('traces') ?? 20);
const SPANS = Number(cliFlag('spans') ?? 2500);
const READERS = Number(cliFlag('readers') ?? 12);
const SECONDS = Number(cliFlag('seconds') ?? 15);
const tree = cliFlag('tree') ?? fileURLToPath(new URL('..', import.meta.url));
const port = Number(cliFlag('port') ?? 21060);
const [grpc, http, query, ops] = [port, port + 1, port + 2, port + 3];
const dir = mkdtempSync(join(tmpdir(), 'read-lag-'));
const child = spawn(process.execPath, [join(tree, 'src/cli.ts'), 'start', `--storage.backend=${store}`, `--storage.sqlite.path=${join(dir, 'th.db')}`, `--storage.memory.maxSpans=${TRACES * SPANS * 2}`, `--receiver.grpc.listen=127.0.0.1:${grpc}`, `--receiver.http.listen=127.0.0.1:${http}`, `--query.listen=127.0.0.1:${query}`, `--ops.listen=127.0.0.1:${ops}`, '--log.level=warn'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
try {
  for (let i = 0; ; i++) {
    if (i > 200) throw new Error('collector did not start');
    try {
      if ((await fetch(`http://127.0.0.1:${ops}/readyz`)).ok) break;
    } catch {}
    await sleep(100);
  }
  const now = BigInt(Date.now()) * 1_000_000n;
  const kv = (key: string, v: string) => ({ key, value: { stringValue: v } });
  const body = (spans: object[], service = 'load') => JSON.stringify({ resourceSpans: [{ resource: { attributes: [kv('service.name', service), kv('host.name', 'bench-host')] }, scopeSpans: [{ scope: { name: 'bench' }, spans }] }] });
  const span = (traceId: string, i: number) => ({ traceId, spanId: randomBytes(8).toString('hex'), parentSpanId: i === 0 ? '' : '0000000000000001', name: `op ${i % 20}`, kind: 2, startTimeUnixNano: String(now + BigInt(i) * 1000n), endTimeUnixNano: String(now + BigInt(i) * 1000n + 500_000n), attributes: [kv('http.route', `/api/items/${i % 50}`), kv('http.method', 'GET'), { key: 'http.status_code', value: { intValue: '200' } }], events: [{ name: 'ev', timeUnixNano: String(now + BigInt(i) * 1000n + 10n), attributes: [kv('k', 'v')] }], status: { code: 0 } });
  const post = (b: string) => fetch(`http://127.0.0.1:${http}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b });
  for (let t = 0; t < TRACES; t++) {
    const traceId = randomBytes(16).toString('hex');
    for (let b = 0; b < SPANS; b += 500) {
      const r = await post(body(Array.from({ length: Math.min(500, SPANS - b) }, (_, i) => span(traceId, b + i))));
      if (!r.ok) throw new Error(`load export: ${r.status} ${await r.text()}`);
    }
  }
  const url = `http://127.0.0.1:${query}/api/traces?service=load&limit=${TRACES}&lookback=2h`;
  for (let i = 0; ; i++) {
    const got = (await (await fetch(url)).json()) as { data: { spans: unknown[] }[] };
    if (got.data.reduce((n, t) => n + t.spans.length, 0) === TRACES * SPANS) break;
    if (i > 100) throw new Error('traces not stored');
    await sleep(200);
  }
  const metric = async (): Promise<Record<string, number>> => {
    const text = await (await fetch(`http://127.0.0.1:${ops}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^(nodejs_eventloop_lag_(?:p99|max)_seconds) (\S+)$/gm)) out[m[1]!] = Number(m[2]);
    return out;
  };
  await metric();
  let running = true;
  let reads = 0;
  let bytes = 0;
  const readers = Array.from({ length: READERS }, async () => {
    while (running) {
      const r = await fetch(url);
      bytes += (await r.arrayBuffer()).byteLength;
      reads++;
    }
  });
  const latencies: number[] = [];
  const exporter = (async () => {
    let i = 0;
    while (running) {
      const t0 = performance.now();
      const r = await post(body([span(randomBytes(16).toString('hex'), i++)], 'probe'));
      await r.arrayBuffer();
      latencies.push(performance.now() - t0);
      await sleep(Math.max(0, 50 - (performance.now() - t0)));
    }
  })();
  const p99s: number[] = [];
  const maxes: number[] = [];
  for (let s = 0; s < SECONDS; s++) {
    await sleep(1000);
    const m = await metric();
    p99s.push(m.nodejs_eventloop_lag_p99_seconds! * 1000);
    maxes.push(m.nodejs_eventloop_lag_max_seconds! * 1000);
  }
  running = false;
  await Promise.all([...readers, exporter]);
  const q = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))]!;
  const f = (n: number) => n.toFixed(0);
  console.log(`${store}, ${TRACES} traces of ${SPANS} spans, ${READERS} readers, ${SECONDS} s: ${reads} reads (${(bytes / reads / 1e6).toFixed(1)} MB each)`);
  console.log(`event-loop delay per 1 s scrape: p99 median ${f(q(p99s, 0.5))} ms, worst p99 ${f(Math.max(...p99s))} ms, max ${f(Math.max(...maxes))} ms`);
  console.log(`OTLP/HTTP export latency (${latencies.length}): median ${f(q(latencies, 0.5))} ms, p99 ${f(q(latencies, 0.99))} ms, max ${f(Math.max(...latencies))} ms`);
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
