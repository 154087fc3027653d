// A real collector process (`node src/cli.ts`) for the fault suite, and an OTLP/HTTP load that
// remembers exactly which spans and log records were acknowledged.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { onTestFinished } from 'vitest';
import { eventually } from './collector.ts';
import { encodeLogs, encodeTraces } from './otlp-proto.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { READS } from '../../src/storage/sqlite/reads.ts';
import { openReadOnly } from '../../src/storage/sqlite/store.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

export interface CollectorChild {
  child: ChildProcess;
  httpUrl: string;
  opsUrl: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves to the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/** Spawns `node src/cli.ts` with these options on ephemeral loopback ports (and `nodeArgs` for node itself); resolves once it logged 'tracehouse started'. */
export async function spawnCollector(flags: Record<string, string>, startTimeoutMs = 20_000, nodeArgs: string[] = []): Promise<CollectorChild> {
  const args = Object.entries({
    'receiver.grpc.enabled': 'false',
    'receiver.http.listen': '127.0.0.1:0',
    'query.enabled': 'false',
    'ops.listen': '127.0.0.1:0',
    'workers.threads': '1',
    ...flags,
  }).map(([k, v]) => `--${k}=${v}`);
  const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Never leave a collector behind, whatever fails.
  const reap = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', reap);
  onTestFinished(reap);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // 'close' comes once its output is read to the end too ('exit' may come before the last of it).
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  // An exit ends the wait at once: thrown inside eventually() it was only remembered, and the
  // failed start said so after the whole startTimeoutMs.
  const ports = await eventually(async () => {
    if (child.exitCode !== null) return { exitCode: child.exitCode };
    if (!out.includes('tracehouse started')) return undefined;
    const http = /"port":(\d+),"msg":"OTLP\/HTTP receiver listening"/.exec(out);
    const ops = /"port":(\d+),"msg":"operations endpoints listening"/.exec(out);
    return http && ops ? { http: Number(http[1]), ops: Number(ops[1]) } : undefined;
  }, startTimeoutMs, 'collector start');
  if ('exitCode' in ports) {
    await closed;
    throw new Error(`collector exited with ${ports.exitCode}: ${out}`);
  }
  return { child, httpUrl: `http://127.0.0.1:${ports.http}`, opsUrl: `http://127.0.0.1:${ports.ops}`, output: () => out, exited };
}

/** What a load run saw acknowledged (HTTP 200 with no rejected items). */
export interface Acked {
  /** Trace ids (hex) of acknowledged span requests, each holding spansPerRequest spans. */
  traces: string[];
  /** Log bodies of acknowledged log records. */
  logs: string[];
  /** Requests answered 503 / 429 (refused as retryable; not retried here). */
  refused: number;
  /** Requests that got no answer (connection lost: the process died). */
  unanswered: number;
}

export interface LoadOptions {
  concurrency: number;
  spansPerRequest: number;
  logsPerRequest: number;
  /** A tag put in service.name so one test's rows are told apart. */
  service: string;
}

/** Sends span and log requests from `concurrency` loops until stop() is called; resolves what was acknowledged. */
export function startLoad(url: string, o: LoadOptions): { stop(): Promise<Acked>; acked: Acked } {
  const acked: Acked = { traces: [], logs: [], refused: 0, unanswered: 0 };
  let running = true;
  const resource = { attributes: [{ key: 'service.name', value: { stringValue: o.service } }] };
  const post = async (path: string, body: Uint8Array): Promise<number | undefined> => {
    try {
      const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body, signal: AbortSignal.timeout(15_000) });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return undefined;
    }
  };
  const loop = async (n: number): Promise<void> => {
    for (let i = 0; running; i++) {
      const traceId = randomBytes(16);
      const now = BigInt(Date.now()) * 1_000_000n;
      const spans = Array.from({ length: o.spansPerRequest }, (_, k) => ({ traceId, spanId: randomBytes(8), name: `op-${k}`, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n) }));
      const tStatus = await post('/v1/traces', encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans }] }] }));
      if (tStatus === 200) acked.traces.push(traceId.toString('hex'));
      else if (tStatus === undefined) acked.unanswered++;
      else acked.refused++;
      const bodies = Array.from({ length: o.logsPerRequest }, (_, k) => `${o.service}/${n}/${i}/${k}`);
      const logRecords = bodies.map((b) => ({ timeUnixNano: String(now), body: { stringValue: b } }));
      const lStatus = await post('/v1/logs', encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords }] }] }));
      if (lStatus === 200) acked.logs.push(...bodies);
      else if (lStatus === undefined) acked.unanswered++;
      else acked.refused++;
      if (tStatus === undefined && lStatus === undefined) await new Promise((r) => setTimeout(r, 20));
    }
  };
  const loops = Array.from({ length: o.concurrency }, (_, n) => loop(n));
  return {
    acked,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return acked;
    },
  };
}

/** What a SQLite file holds of one service: spans per trace id, and how often each log body is stored. */
export function storedInSqlite(path: string, service: string): { spansByTrace: Map<string, number>; logCopies: Map<string, number> } {
  const db = openReadOnly(path);
  try {
    const spansByTrace = new Map<string, number>();
    // Spans and bodies are inside the stored records: read them as the read API does, page by page.
    for (let after: string | undefined, done = false; !done; ) {
      const page = READS.scanSpans(db, [DEFAULT_TENANT, { service, limit: 1000, ...(after === undefined ? {} : { after }) }]);
      for (const row of page.rows) spansByTrace.set(row.traceId, (spansByTrace.get(row.traceId) ?? 0) + 1);
      ({ next: after, done } = page);
    }
    const logCopies = new Map<string, number>();
    for (let after: string | undefined, done = false; !done; ) {
      const page = READS.scanLogs(db, [DEFAULT_TENANT, { service, limit: 1000, ...(after === undefined ? {} : { after }) }]);
      for (const row of page.rows) {
        const body = 'stringValue' in row.body ? row.body.stringValue : JSON.stringify(row.body);
        logCopies.set(body, (logCopies.get(body) ?? 0) + 1);
      }
      ({ next: after, done } = page);
    }
    return { spansByTrace, logCopies };
  } finally {
    db.close();
  }
}
