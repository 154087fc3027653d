// The shipped alerts against what a real collector exports in the scenario an alert names: the
// collector is driven into it, /metrics is scraped, and the scraped values, held for the alert's
// `for:`, are handed to `promtool test rules` with deploy/prometheus/alerts.yaml.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as stringifyYaml } from 'yaml';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { RawOtlpClient, encodeTraces } from '../helpers/otlp-proto.ts';
import { createTestDatabase, startEmbeddedPostgres, type EmbeddedServer } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/tmp.ts';

const ALERTS = new URL('../../deploy/prometheus/alerts.yaml', import.meta.url).pathname;
const PROMTOOL = existsSync(join(homedir(), 'go/bin/promtool')) ? join(homedir(), 'go/bin/promtool') : 'promtool';
const KiB = 1024;
const MiB = 1024 * KiB;

/** Runs one promtool alert test: the series (each held or grown over 20 minutes) and the alerts expected at eval. */
function alertFires(series: { series: string; values: string }[], alertname: string, at: string, expected: { exp_labels: Record<string, string>; exp_annotations: Record<string, string> }[]): { ok: boolean; out: string } {
  const file = join(tempDir(), `${alertname}.test.yaml`);
  writeFileSync(file, stringifyYaml({ rule_files: [ALERTS], evaluation_interval: '1m', tests: [{ interval: '1m', input_series: series, alert_rule_test: [{ eval_time: at, alertname, exp_alerts: expected }] }] }));
  const r = spawnSync(PROMTOOL, ['test', 'rules', file], { encoding: 'utf8', timeout: 60_000 });
  return { ok: r.status === 0, out: r.stdout + r.stderr };
}

/** An export of `n` spans of ~1.2 KB each (service "alert"), as protobuf. */
function paddedRequest(n: number): Uint8Array {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spans = Array.from({ length: n }, (_, i) => ({ traceId: randomBytes(16), spanId: randomBytes(8), name: `op-${i}`, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n), attributes: [{ key: 'pad', value: { stringValue: 'x'.repeat(1200) } }] }));
  return encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'alert' } }] }, scopeSpans: [{ spans }] }] });
}

/** A series selector of the scraped instance these scenarios hand to promtool. */
function sel(name: string, labels: Record<string, string> = {}): string {
  return `${name}{${Object.entries({ instance: 'a:8888', job: 'tracehouse', ...labels }).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
}

/**
 * A collector on a PostgreSQL server of its own, which a scenario stops (two write connections,
 * writes given up after 2 s, a stop bounded to 2 s), and a gRPC client to it: started before the
 * describe's tests, stopped after them (the store still down: the stop gives up on the queue, or
 * leaves its rows in the write-ahead log).
 */
function onOwnPostgres(database: string, flags: Record<string, string>): { server: EmbeddedServer; c: TestCollector; client: RawOtlpClient } {
  const setup = {} as { server: EmbeddedServer; c: TestCollector; client: RawOtlpClient };
  beforeAll(async () => {
    setup.server = await startEmbeddedPostgres();
    const url = await createTestDatabase(database, setup.server.url);
    setup.c = await startCollector({ 'storage.backend': 'postgres', 'storage.postgres.url': url, 'storage.postgres.poolSize': '2', 'writer.writeTimeoutMs': '2000', 'shutdown.timeoutMs': '2000', ...flags });
    setup.client = new RawOtlpClient(setup.c.grpcAddress);
  }, 120_000);
  afterAll(async () => {
    setup.client?.close();
    await setup.c?.stop();
    await setup.server?.destroy();
  });
  return setup;
}

describe('TracehouseQueueFull on a stalled store', () => {
  // The default queue (256 MiB) and 4 MiB OTLP/JSON requests (each reserves eight times its
  // bytes before it is decoded), or 8 MiB protobuf batches of a gateway (four times, PostgreSQL's
  // rows), scaled down 16 times: a request's charge is an eighth of the queue.
  const setup = onOwnPostgres('alert_queue_full', { 'writer.maxQueueBytes': String(16 * MiB) });

  it('fires once the queue refuses exports for lack of room, though a request\'s charge stops it short of 95%', async () => {
    const { server, c, client } = setup;
    const request = () => paddedRequest(400);
    const body = request();
    expect(body.byteLength).toBeGreaterThan(450 * KiB);
    expect(body.byteLength).toBeLessThan(600 * KiB);
    await server.stop();
    await eventually(async () => ((await getJson(c.opsUrl, '/readyz')).status === 503 ? true : undefined), 15_000, 'not ready');
    let refused = 0;
    for (let i = 0; i < 200 && refused < 5; i++) if ((await client.traces(request())).error !== null) refused++;
    expect(refused).toBe(5);
    const refusals = await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'queue_full' });
    const size = await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes');
    const capacity = await metricValue(c.opsUrl, 'tracehouse_queue_capacity_bytes');
    expect(refusals).toBeGreaterThanOrEqual(5);
    // Every further export is refused, yet the queue is not over 95%: the next request's charge does not fit.
    expect(size / capacity).toBeLessThan(0.95);
    expect(size / capacity).toBeGreaterThan(0.5);

    const r = alertFires(
      [
        { series: sel('tracehouse_queue_size_bytes'), values: `${size}x20` },
        { series: sel('tracehouse_queue_capacity_bytes'), values: `${capacity}x20` },
        // The exporters retry while the store is down: refused at the rate seen here, each minute.
        { series: sel('tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'queue_full' }), values: `0+${refusals}x20` },
      ],
      'TracehouseQueueFull',
      '10m',
      [{ exp_labels: { severity: 'critical', instance: 'a:8888' }, exp_annotations: { summary: 'Tracehouse write queue full on a:8888: exports are being refused', description: 'The queue cannot take new exports (over 95% of writer.maxQueueBytes, or too full for the requests that arrive): they get UNAVAILABLE / 503 with Retry-After.' } }],
    );
    expect(r.out).toContain('SUCCESS');
    expect(r.ok).toBe(true);
  }, 90_000);
});

describe('TracehouseWalFilling on a store that takes no writes', () => {
  // A 1 MiB log (the smallest 4 × receiver.maxMessageBytes allows) and the default queue: the
  // log fills long before the queue does.
  const setup = onOwnPostgres('alert_wal_filling', { 'delivery.ack': 'durable', 'delivery.walDir': join(tempDir(), 'wal'), 'delivery.walMaxBytes': String(1 * MiB), 'delivery.walSegmentBytes': String(64 * KiB), 'receiver.maxMessageBytes': String(256 * KiB) });

  it('exports the log\'s capacity, and fires once the log passes 80% of it, before exports are refused as wal_full', async () => {
    const { server, c, client } = setup;
    const request = () => paddedRequest(20);
    const held = (bytes: number, capacity: number) => [
      { series: sel('tracehouse_wal_bytes'), values: `${bytes}x20` },
      { series: sel('tracehouse_wal_capacity_bytes'), values: `${capacity}x20` },
    ];
    expect(await metricValue(c.opsUrl, 'tracehouse_wal_capacity_bytes')).toBe(MiB);

    // Healthy: the store takes the rows and the log lets them go; no alert.
    for (let i = 0; i < 5; i++) expect((await client.traces(request())).error).toBeNull();
    // Each counts as a request received and taken (the other side of TracehouseRefusingRequests' share).
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_requests_total', { transport: 'grpc' })).toBe(5);
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_wal_pending_entries')) === 0 ? true : undefined), 15_000, 'the log drained');
    const healthy = await metricValue(c.opsUrl, 'tracehouse_wal_bytes');
    expect(healthy / MiB).toBeLessThan(0.8);
    const quiet = alertFires(held(healthy, MiB), 'TracehouseWalFilling', '10m', []);
    expect(quiet.out).toContain('SUCCESS');

    // The store goes away: the log keeps every acknowledged export until it is full.
    await server.stop();
    let full: string | undefined;
    for (let i = 0; i < 200 && full === undefined; i++) {
      const r = await client.traces(request());
      if (r.error !== null) full = String(r.error);
    }
    expect(full).toBeDefined();
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'wal_full' })).toBeGreaterThanOrEqual(1);
    const bytes = await metricValue(c.opsUrl, 'tracehouse_wal_bytes');
    const capacity = await metricValue(c.opsUrl, 'tracehouse_wal_capacity_bytes');
    expect(capacity).toBe(MiB);
    expect(bytes / capacity).toBeGreaterThan(0.8);
    expect(bytes).toBeLessThanOrEqual(capacity);

    const pct = `${Math.round((bytes / capacity) * 10000) / 100}`;
    const r = alertFires(held(bytes, capacity), 'TracehouseWalFilling', '10m', [
      {
        exp_labels: { severity: 'warning', instance: 'a:8888' },
        exp_annotations: {
          summary: `Tracehouse write-ahead log ${pct}% full on a:8888`,
          description: 'The write-ahead log holds rows the store has not taken (an outage, or writes slower than the data arriving) and is over 80% of delivery.walMaxBytes. When full, the receivers answer UNAVAILABLE / 503 (wal_full) and exporters retry or drop; nothing accepted is lost. Check TracehouseWritesFailing and tracehouse_writer_failed_batches_total; to outlast a longer outage raise delivery.walMaxBytes (and the volume under delivery.walDir).',
        },
      },
    ]);
    expect(r.out).toContain('SUCCESS');
    expect(r.ok).toBe(true);
  }, 90_000);
});
