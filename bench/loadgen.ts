// The load generator, run in a process of its own (forked by runLoadgen) so its CPU never counts
// against the receiver it measures. It sends pre-encoded OTLP export requests over gRPC or
// OTLP/HTTP, either closed-loop (N requests always in flight: the maximum rate) or open-loop at
// a fixed item rate, for a fixed duration, and reports what was acknowledged, refused and how
// long each export took.
//
// Protocol with the parent (IPC): parent → {type:'config'}; child builds its requests and
// answers {type:'ready'}; parent samples its counters and sends {type:'start'}; child answers
// {type:'result'} and exits.
import * as grpc from '@grpc/grpc-js';
import { fork } from 'node:child_process';
import { randomInt } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { latencySummary, type LatencySummary } from './stats.ts';
import { loadTraffic, stampTimes, stampTraceIds, type BenchSignal, type TrafficRequest, type TrafficSpec } from './traffic.ts';

export type LoadMode =
  /** Closed loop: `concurrency` requests in flight at all times. */
  | { kind: 'max'; concurrency: number }
  /** Open loop: items offered at this rate whatever the answers; at most maxInFlight outstanding (sends beyond are skipped and counted). */
  | { kind: 'rate'; itemsPerSecond: number; maxInFlight: number };

export interface LoadgenConfig {
  transport: 'grpc' | 'http';
  /** host:port for gRPC, http://host:port for OTLP/HTTP. */
  target: string;
  signal: BenchSignal;
  traffic: TrafficSpec;
  /** Where built requests are cached between processes (optional). */
  cacheDir?: string;
  durationMs: number;
  mode: LoadMode;
  /** gRPC channels (separate HTTP/2 connections) the requests are spread over. */
  connections: number;
  /** A closed-loop slot whose request was refused waits this long before its next send, as an exporter honouring Retry-After would (shortened). */
  refusedPauseMs: number;
  /** Per-request deadline. */
  timeoutMs: number;
  /** Each send's times moved so its newest is the moment of sending (stampTimes), as a deployment's exporters send; otherwise the built times are replayed. */
  currentTimes?: boolean;
}

export interface LoadgenResult {
  /** First send to last answer, seconds. */
  durationS: number;
  /** Items the schedule asked for (open loop), or sent (closed loop). */
  offeredItems: number;
  sentRequests: number;
  sentItems: number;
  okRequests: number;
  /** Items acknowledged as stored (OK answers minus partial-success rejections). */
  okItems: number;
  /** Items an OK answer reported as rejected (partial success). */
  rejectedItems: number;
  /** UNAVAILABLE / RESOURCE_EXHAUSTED (gRPC), 503 / 429 (HTTP). */
  refusedRequests: number;
  refusedItems: number;
  /** Any other failure (deadline, connection, 4xx/5xx): outcome unknown to the sender. */
  errorRequests: number;
  errorItems: number;
  errorsByCode: Record<string, number>;
  refusedByCode: Record<string, number>;
  /** Open loop only: scheduled sends dropped because maxInFlight requests were outstanding. */
  skippedRequests: number;
  skippedItems: number;
  /** Latency of OK exports in ms; open loop measures from the scheduled send time. */
  latencyMs: LatencySummary;
  /** CPU the load generator itself used while sending (user+system seconds). */
  loadgenCpuS: number;
}

type Outcome = { kind: 'ok'; rejected: number } | { kind: 'refused'; code: string } | { kind: 'error'; code: string };

type Sender = (body: Buffer) => Promise<Outcome>;

// ---------------------------------------------------------------------------------------------
// Response parsing: only partial_success.rejected_{spans,log_records} is of interest.

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    const byte = buf[pos++];
    if (byte === undefined) return [v, pos];
    v += (byte & 0x7f) * mul;
    if (byte < 0x80) return [v, pos];
    mul *= 128;
  }
}

/** rejected count of an Export*ServiceResponse (0 when absent). */
export function rejectedOf(buf: Uint8Array | undefined): number {
  if (!buf || buf.byteLength === 0) return 0;
  let pos = 0;
  while (pos < buf.byteLength) {
    let tag;
    [tag, pos] = readVarint(buf, pos);
    const wire = tag & 7;
    if (wire === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      if (tag >>> 3 === 1) {
        const end = pos + len;
        while (pos < end) {
          let t2;
          [t2, pos] = readVarint(buf, pos);
          if ((t2 & 7) === 0) {
            let v;
            [v, pos] = readVarint(buf, pos);
            if (t2 >>> 3 === 1) return v;
          } else if ((t2 & 7) === 2) {
            let l2;
            [l2, pos] = readVarint(buf, pos);
            pos += l2;
          } else return 0;
        }
        return 0;
      }
      pos += len;
    } else if (wire === 0) [, pos] = readVarint(buf, pos);
    else return 0;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Transports

const identity = (b: Buffer): Buffer => b;

function grpcSender(cfg: LoadgenConfig): { send: Sender; close(): void } {
  const path = cfg.signal === 'traces' ? '/opentelemetry.proto.collector.trace.v1.TraceService/Export' : '/opentelemetry.proto.collector.logs.v1.LogsService/Export';
  const clients: grpc.Client[] = [];
  for (let c = 0; c < cfg.connections; c++) {
    clients.push(
      new grpc.Client(cfg.target, grpc.credentials.createInsecure(), {
        // A private subchannel pool per client: each is its own HTTP/2 connection.
        'grpc.use_local_subchannel_pool': 1,
        'grpc.max_send_message_length': -1,
        'grpc.max_receive_message_length': -1,
      }),
    );
  }
  let next = 0;
  const send: Sender = (body) =>
    new Promise((resolve) => {
      const client = clients[next++ % clients.length]!;
      client.makeUnaryRequest(path, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + cfg.timeoutMs }, (err, res) => {
        if (!err) return resolve({ kind: 'ok', rejected: rejectedOf(res) });
        const code = grpc.status[err.code] ?? String(err.code);
        if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.RESOURCE_EXHAUSTED) resolve({ kind: 'refused', code });
        else resolve({ kind: 'error', code });
      });
    });
  return { send, close: () => clients.forEach((c) => c.close()) };
}

function httpSender(cfg: LoadgenConfig, maxSockets: number): { send: Sender; close(): void } {
  const url = new URL(cfg.signal === 'traces' ? '/v1/traces' : '/v1/logs', cfg.target);
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const send: Sender = (body) =>
    new Promise((resolve) => {
      const req = http.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/x-protobuf', 'content-length': body.byteLength },
          timeout: cfg.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status === 200) resolve({ kind: 'ok', rejected: rejectedOf(Buffer.concat(chunks)) });
            else if (status === 503 || status === 429) resolve({ kind: 'refused', code: `HTTP_${status}` });
            else resolve({ kind: 'error', code: `HTTP_${status}` });
          });
          res.on('error', () => resolve({ kind: 'error', code: 'response_error' }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ kind: 'error', code: err.code ?? err.message }));
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}

// ---------------------------------------------------------------------------------------------
// The run

class Tally {
  offeredItems = 0;
  sentRequests = 0;
  sentItems = 0;
  okRequests = 0;
  okItems = 0;
  rejectedItems = 0;
  refusedRequests = 0;
  refusedItems = 0;
  errorRequests = 0;
  errorItems = 0;
  skippedRequests = 0;
  skippedItems = 0;
  errorsByCode: Record<string, number> = {};
  refusedByCode: Record<string, number> = {};
  private lat = new Float64Array(1 << 14);
  private nLat = 0;

  record(items: number, out: Outcome, latencyMs: number): void {
    switch (out.kind) {
      case 'ok':
        this.okRequests++;
        this.okItems += items - out.rejected;
        this.rejectedItems += out.rejected;
        if (this.nLat === this.lat.length) {
          const bigger = new Float64Array(this.lat.length * 2);
          bigger.set(this.lat);
          this.lat = bigger;
        }
        this.lat[this.nLat++] = latencyMs;
        break;
      case 'refused':
        this.refusedRequests++;
        this.refusedItems += items;
        this.refusedByCode[out.code] = (this.refusedByCode[out.code] ?? 0) + 1;
        break;
      case 'error':
        this.errorRequests++;
        this.errorItems += items;
        this.errorsByCode[out.code] = (this.errorsByCode[out.code] ?? 0) + 1;
        break;
    }
  }

  latencies(): Float64Array {
    return this.lat.subarray(0, this.nLat);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs the configured load in this process and returns the tally. */
export async function generateLoad(cfg: LoadgenConfig, requests: readonly TrafficRequest[], onReady?: () => Promise<void>): Promise<LoadgenResult> {
  const maxSockets = cfg.mode.kind === 'max' ? cfg.mode.concurrency : cfg.mode.maxInFlight;
  const transport = cfg.transport === 'grpc' ? grpcSender(cfg) : httpSender(cfg, maxSockets);
  const runId = randomInt(1, 0x7fffffff);
  let sendNo = 0;
  let nextReq = 0;
  const tally = new Tally();
  let inFlight = 0;
  let lastAnswer = 0;

  const sendOne = async (scheduledAt: number): Promise<Outcome> => {
    const req = requests[nextReq++ % requests.length]!;
    const body = stampTraceIds(req, runId, sendNo++);
    if (cfg.currentTimes) stampTimes(body, req, BigInt(Date.now()) * 1_000_000n);
    tally.sentRequests++;
    tally.sentItems += req.items;
    inFlight++;
    const out = await transport.send(body);
    inFlight--;
    lastAnswer = performance.now();
    tally.record(req.items, out, lastAnswer - scheduledAt);
    return out;
  };

  // Warm-up: open the connections (and the receiver's lazy paths) outside the measured window.
  await Promise.all(Array.from({ length: Math.max(1, cfg.connections) }, () => transport.send(Buffer.alloc(0))));

  if (onReady) await onReady();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + cfg.durationMs;

  if (cfg.mode.kind === 'max') {
    const slot = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const req = requests[nextReq % requests.length]!;
        tally.offeredItems += req.items;
        const out = await sendOne(performance.now());
        if (out.kind !== 'ok') await sleep(cfg.refusedPauseMs);
      }
    };
    await Promise.all(Array.from({ length: cfg.mode.concurrency }, slot));
  } else {
    const { itemsPerSecond, maxInFlight } = cfg.mode;
    const pending = new Set<Promise<Outcome>>();
    let due = t0;
    while (due < deadline) {
      const now = performance.now();
      if (now < due) {
        await sleep(Math.max(0, Math.floor(due - now)));
        continue;
      }
      const req = requests[nextReq % requests.length]!;
      tally.offeredItems += req.items;
      if (inFlight >= maxInFlight) {
        nextReq++;
        tally.skippedRequests++;
        tally.skippedItems += req.items;
      } else {
        const p = sendOne(due);
        pending.add(p);
        void p.then(() => pending.delete(p));
      }
      due += (req.items / itemsPerSecond) * 1000;
    }
    await Promise.all(pending);
  }
  const cpu = process.cpuUsage(cpu0);
  transport.close();
  const { errorsByCode, refusedByCode, ...counts } = tally;
  return {
    durationS: (Math.max(lastAnswer, deadline) - t0) / 1000,
    offeredItems: counts.offeredItems,
    sentRequests: counts.sentRequests,
    sentItems: counts.sentItems,
    okRequests: counts.okRequests,
    okItems: counts.okItems,
    rejectedItems: counts.rejectedItems,
    refusedRequests: counts.refusedRequests,
    refusedItems: counts.refusedItems,
    errorRequests: counts.errorRequests,
    errorItems: counts.errorItems,
    errorsByCode,
    refusedByCode,
    skippedRequests: counts.skippedRequests,
    skippedItems: counts.skippedItems,
    latencyMs: latencySummary(tally.latencies()),
    loadgenCpuS: (cpu.user + cpu.system) / 1e6,
  };
}

// ---------------------------------------------------------------------------------------------
// Parent side

export interface LoadgenHandle {
  /** Resolves once the child has built its requests and connected. */
  ready: Promise<void>;
  /** Starts the measured run; resolves with the child's result. */
  start(): Promise<LoadgenResult>;
  kill(): void;
}

/** Forks bench/loadgen.ts with this configuration. */
export function forkLoadgen(cfg: LoadgenConfig): LoadgenHandle {
  const child = fork(fileURLToPath(import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  let onReady!: () => void;
  let onResult!: (r: LoadgenResult) => void;
  let onFail!: (e: Error) => void;
  const ready = new Promise<void>((res) => (onReady = res));
  const result = new Promise<LoadgenResult>((res, rej) => {
    onResult = res;
    onFail = rej;
  });
  let done = false;
  child.on('message', (m: { type: string; result?: LoadgenResult; error?: string }) => {
    if (m.type === 'ready') onReady();
    else if (m.type === 'result') {
      done = true;
      onResult(m.result!);
    } else if (m.type === 'error') {
      done = true;
      onFail(new Error(`load generator failed: ${m.error}`));
    }
  });
  child.on('exit', (code) => {
    if (!done) onFail(new Error(`load generator exited with ${code} before reporting`));
  });
  // A failure before 'ready' must reject whoever waits for ready too.
  const readyOrFail = Promise.race([ready, result.then(() => undefined)]);
  child.send({ type: 'config', config: cfg });
  return {
    ready: readyOrFail,
    start() {
      child.send({ type: 'start' });
      return result;
    },
    kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Child side

if (import.meta.main) {
  process.once('message', (m: { type: string; config: LoadgenConfig }) => {
    const cfg = m.config;
    const requests = loadTraffic(cfg.traffic, cfg.cacheDir);
    let go!: () => void;
    const started = new Promise<void>((r) => (go = r));
    process.on('message', (msg: { type: string }) => {
      if (msg.type === 'start') go();
    });
    generateLoad(cfg, requests, async () => {
      process.send!({ type: 'ready' });
      await started;
    }).then(
      (result) => process.send!({ type: 'result', result }, () => process.exit(0)),
      (err: Error) => process.send!({ type: 'error', error: err.stack ?? err.message }, () => process.exit(1)),
    );
  });
}
