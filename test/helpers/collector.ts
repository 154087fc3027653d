// Starts a real collector on loopback ports chosen by the OS, for integration and e2e tests.
import { join } from 'node:path';
import { pino } from 'pino';
import { Collector, type CollectorOptions } from '../../src/app.ts';
import { loadConfig } from '../../src/config/index.ts';
import { tempDir } from './tmp.ts';

export interface TestCollector {
  collector: Collector;
  /** host:port of the OTLP/gRPC receiver. */
  grpcAddress: string;
  /** http://127.0.0.1:port of the OTLP/HTTP receiver. */
  httpUrl: string;
  queryUrl: string;
  opsUrl: string;
  /** Shuts the collector down; resolves to the accepted rows it had to drop. */
  stop(): Promise<number>;
}

/** Starts a collector with the given option overrides (dotted keys) on ephemeral loopback ports. */
export async function startCollector(flags: Record<string, string> = {}, opts: CollectorOptions = {}): Promise<TestCollector> {
  const config = loadConfig({
    flags: {
      'receiver.grpc.listen': '127.0.0.1:0',
      'receiver.http.listen': '127.0.0.1:0',
      'query.listen': '127.0.0.1:0',
      'ops.listen': '127.0.0.1:0',
      'storage.backend': 'memory',
      'workers.threads': '1',
      'writer.flushIntervalMs': '20',
      ...(flags['storage.backend'] === 'sqlite' && !flags['storage.sqlite.path'] ? { 'storage.sqlite.path': join(tempDir(), 'tracehouse.db') } : {}),
      // Durable acknowledgements, the default of every store that keeps data across a restart,
      // also on the memory store these tests use (whose own default is queued), so the tests go
      // through the write-ahead log as deployments do.
      'delivery.ack': 'durable',
      // The log follows the SQLite file; with other stores it would land in ./data of the repo,
      // so tests give it a temp dir.
      ...(flags['storage.backend'] !== 'sqlite' && !flags['delivery.walDir'] ? { 'delivery.walDir': join(tempDir(), 'wal') } : {}),
      ...flags,
    },
  });
  const logger = opts.logger ?? pino({ level: process.env['TRACEHOUSE_TEST_LOG'] ?? 'silent' });
  const collector = await Collector.create(config, { ...opts, logger });
  await collector.start();
  return {
    collector,
    grpcAddress: `127.0.0.1:${collector.grpc?.boundPort ?? 0}`,
    httpUrl: `http://127.0.0.1:${collector.http?.boundPort ?? 0}`,
    queryUrl: `http://127.0.0.1:${collector.query?.boundPort ?? 0}`,
    opsUrl: `http://127.0.0.1:${collector.ops.boundPort}`,
    stop: () => collector.shutdown(),
  };
}

/** Polls fn until it returns a value other than undefined, or fails after timeoutMs. */
export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** GETs a read API path and returns status and parsed JSON. */
export async function getJson(base: string, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Reads a metric's value (sum over matching label sets) from /metrics. */
export async function metricValue(opsUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(opsUrl + '/metrics')).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = Object.fromEntries((m[3] ?? '').split(',').filter(Boolean).map((p) => { const i = p.indexOf('='); return [p.slice(0, i), JSON.parse(p.slice(i + 1))]; }));
    if (Object.entries(labels).every(([k, v]) => ls[k] === v)) sum += Number(m[4]);
  }
  return sum;
}
