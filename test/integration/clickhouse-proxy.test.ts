// The ClickHouse adapter over HTTP through what stands between a collector and the server in
// production: a reverse proxy (nginx's client_max_body_size answering 413 with its HTML page).
// chdb runs in this process with no HTTP server of its own, so a listener of the helpers serves
// ClickHouse's HTTP interface over it (serveChdbOverHttp) and each test puts its own proxy in front.
import type { ClickHouseClient } from '@clickhouse/client';
import { execFile } from 'node:child_process';
import { request, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT as TENANT } from '../../src/model/tenant.ts';
import { Writer } from '../../src/pipeline/writer.ts';
import type { StorageBackend, WriteResult } from '../../src/storage/backend.ts';
import { createClickhouseBackend } from '../../src/storage/clickhouse/index.ts';
import { loadRowEncoder } from '../../src/storage/encoders.ts';
import { clickhouseOptions } from '../../src/storage/index.ts';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.ts';
import { chdbBackend, chdbClient, removeChdbDir, select, uniqueDatabase } from '../helpers/clickhouse.ts';
import { serveChdbOverHttp, type ChdbHttp } from '../helpers/clickhouse-http.ts';
import { CLI } from '../helpers/cli.ts';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { makeLog } from '../helpers/rows.ts';

const NGINX_413 = '<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

const NGINX_502 = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

/**
 * A reverse proxy in front of `upstream` that refuses a request body over `maxBody` bytes as nginx
 * does (413 and its HTML page, the rest of the body read and discarded: lingering close).
 */
async function bodyLimitProxy(upstream: string, maxBody: number): Promise<{ url: string; server: Server; refused: () => number; badGateway: (after: number) => void }> {
  let refused = 0;
  /** Inserts to pass before one is answered 502 (-1: none). */
  let badGatewayAfter = -1;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.byteLength;
      if (over) return;
      if (size > maxBody) {
        over = true;
        refused++;
        res.writeHead(413, { 'Content-Type': 'text/html', Server: 'nginx' });
        res.end(NGINX_413);
        return;
      }
      parts.push(c);
    });
    req.on('end', () => {
      if (over) return;
      if (badGatewayAfter >= 0 && (req.url ?? '').includes('query=INSERT') && badGatewayAfter-- === 0) {
        res.writeHead(502, { 'Content-Type': 'text/html', Server: 'nginx' });
        return void res.end(NGINX_502);
      }
      // The body goes on whole, with its length (not chunked as it came).
      const headers = { ...req.headers };
      delete headers['transfer-encoding'];
      const up = request(upstream + (req.url ?? '/'), { method: req.method, headers: { ...headers, 'content-length': String(size) } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(Buffer.concat(parts));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, refused: () => refused, badGateway: (n) => void (badGatewayAfter = n) };
}

/** A proxy answering nginx's 502 page (its upstream not up yet) until `up()`, then passing requests on. */
async function gatewayProxy(upstream: string): Promise<{ url: string; server: Server; up: () => void; down: () => void; badGateways: () => number; queries: () => number }> {
  let down = true;
  let badGateways = 0;
  let queries = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      if (down) {
        badGateways++;
        if (!(req.url ?? '').startsWith('/ping')) queries++;
        res.writeHead(502, { 'Content-Type': 'text/html', Server: 'nginx' });
        return void res.end(NGINX_502);
      }
      const headers = { ...req.headers };
      delete headers['transfer-encoding'];
      const body = Buffer.concat(parts);
      const up = request(upstream + (req.url ?? '/'), { method: req.method, headers: { ...headers, 'content-length': String(body.length) } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, up: () => void (down = false), down: () => void (down = true), badGateways: () => badGateways, queries: () => queries };
}

let client: ClickHouseClient;
let chdbHttp: ChdbHttp;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  client = await chdbClient();
  chdbHttp = await serveChdbOverHttp(client);
});

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  await chdbHttp.close();
  await client.close();
  removeChdbDir();
});

/** A database migrated on chdb, and a ClickHouse backend reaching it over HTTP at `url`. */
async function httpBackend(url: string, metrics: Metrics, logger = pino({ level: 'silent' })): Promise<{ b: StorageBackend; db: string }> {
  const db = uniqueDatabase('proxy');
  const made = await chdbBackend([db]);
  await made.shutdown();
  const config = loadConfig({ flags: { 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': `${url}/?database=${db}`, 'storage.clickhouse.autoMigrate': 'false', 'storage.clickhouse.requestTimeoutMs': '5000' } });
  const b = createClickhouseBackend(clickhouseOptions(config), { logger, metrics });
  await b.start();
  closers.push(() => b.shutdown());
  return { b, db };
}

const metricSum = async (metrics: Metrics, name: string, match = ''): Promise<number> =>
  (await metrics.registry.getSingleMetricAsString(name))
    .split('\n')
    .filter((l) => !l.startsWith('#') && l.includes(match))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);

describe('clickhouse behind a proxy with a body limit (nginx client_max_body_size)', () => {
  it('stores a batch the proxy refuses as too large in smaller inserts, and drops (counted, logged once) only a row too large alone', async () => {
    const proxy = await bodyLimitProxy(chdbHttp.url, 32 * 1024);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    const metrics = createMetrics();
    const { logger, lines } = capturedLogger();
    const { b, db } = await httpBackend(proxy.url, metrics, logger);
    const encoder = await loadRowEncoder(b.encoder);
    const small = Array.from({ length: 60 }, (_, i) => makeLog({ serviceName: 'small', body: { stringValue: `${i} ${'x'.repeat(1000)}` } }));
    const big = makeLog({ serviceName: 'big', body: { stringValue: 'y'.repeat(40 * 1024) } });
    // Two requests' chunks in one batch: the big record among the small ones of the second.
    const chunks = [...encoder.encodeLogs(small.slice(0, 30)), ...encoder.encodeLogs([...small.slice(30, 45), big, ...small.slice(45)])];
    const writer = new Writer(b, { maxBatchRows: 1000, flushIntervalMs: 5, maxInFlightBatches: 1, maxQueueBytes: 64 << 20, retryInitialMs: 5, retryMaxMs: 20, retryMaxElapsedMs: 3000, writeTimeoutMs: 5000 }, metrics, logger);
    const bytes = chunks.reduce((n, c) => n + c.data.byteLength, 0);
    const delivered = writer.reserve(bytes)!.commit('logs', chunks, TENANT);
    await writer.drain();
    expect(await delivered).toEqual({ delivered: true, refusedRows: 0, storedRows: 61 });
    expect(proxy.refused()).toBeGreaterThan(0);
    // Every small record stored once, none of them cut or repeated.
    expect((await select(client, `SELECT ServiceName, count(), uniqExact(Body) FROM ${db}.otel_logs GROUP BY ServiceName`)).map((r) => r.map(String))).toEqual([['small', '60', '60']]);
    expect(await metricSum(metrics, 'tracehouse_writer_written_rows_total', 'signal="logs"')).toBe(60);
    expect(await metricSum(metrics, 'tracehouse_writer_dropped_rows_total', 'reason="permanent_error"')).toBe(1);
    expect(await metricSum(metrics, 'tracehouse_writer_dropped_rows_total', 'reason="retries_exhausted"')).toBe(0);
    // The one warning is for the first such batch; the counter shows an operator whether they go on.
    expect(await metricSum(metrics, 'tracehouse_storage_split_batches_total', 'signal="logs"')).toBe(1);
    const dropLines = lines().filter((l) => /drop/i.test(l.msg));
    expect(dropLines).toHaveLength(1);
    expect(JSON.stringify(dropLines[0])).toMatch(/413/);
    expect(JSON.stringify(dropLines[0])).toMatch(/client_max_body_size/);
    await writer.shutdown(1000);
  });

  it('stores each part once when the batch is retried after some of its parts were stored', async () => {
    const proxy = await bodyLimitProxy(chdbHttp.url, 16 * 1024);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    const metrics = createMetrics();
    const { logger, lines } = capturedLogger();
    const { b, db } = await httpBackend(proxy.url, metrics, logger);
    const encoder = await loadRowEncoder(b.encoder);
    const logs = Array.from({ length: 40 }, (_, i) => makeLog({ serviceName: 'parts', body: { stringValue: `${i} ${'z'.repeat(1000)}` } }));
    const chunks = encoder.encodeLogs(logs);
    const batch = { signal: 'logs' as const, partition: 0, tenant: TENANT, rows: 40, bytes: chunks.reduce((n, c) => n + c.data.byteLength, 0), chunks: chunks.map((c) => c.data), batchId: 'retried-batch' };
    // The first part passes, the second meets a proxy whose upstream is away (nginx's 502 page).
    proxy.badGateway(1);
    const failed = await b.write(batch);
    expect(failed.kind).toBe('retryable');
    // The proxy's page is named by its status and title, not logged as an HTML page.
    expect(failed.kind === 'retryable' && failed.error.message).toMatch(/^HTTP 502 from http:\/\/127\.0\.0\.1:\d+\/\?database=\w+, not from ClickHouse: 502 Bad Gateway$/);
    expect(Number((await select(client, `SELECT count() FROM ${db}.otel_logs`))[0]![0])).toBeGreaterThan(0);
    const stored = await b.write(batch);
    expect(stored.kind === 'success' && stored.dropped).toBeFalsy();
    expect(stored.kind).toBe('success');
    expect((await select(client, `SELECT count(), uniqExact(Body) FROM ${db}.otel_logs`)).map((r) => r.map(String))).toEqual([['40', '40']]);
    expect(lines().filter((l) => /split/.test(l.msg))).toHaveLength(1);
    // One batch split, whatever the attempts it took: the counter tells an operator whether batches
    // are still being split, not how often one was retried.
    expect(await metricSum(metrics, 'tracehouse_storage_split_batches_total', 'signal="logs"')).toBe(1);
  });
  it('stores the other requests\' rows of a batch too large for the proxy that a CONSTRAINT refuses a row of, each once', async () => {
    // The batch is refused as too large first, then one of its parts for a row a CONSTRAINT of the
    // user's refuses (469, permanent): the whole batch was dropped, the parts inserted before it
    // stored all the same and counted as dropped, the parts after it lost.
    const proxy = await bodyLimitProxy(chdbHttp.url, 16 * 1024);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    const metrics = createMetrics();
    const { b, db } = await httpBackend(proxy.url, metrics);
    await client.command({ query: `ALTER TABLE ${db}.otel_logs ADD CONSTRAINT no_poison CHECK Body NOT LIKE '%poison%'` });
    const encoder = await loadRowEncoder(b.encoder);
    const request = (name: string, n: number, poisonAt = -1) =>
      encoder.encodeLogs(Array.from({ length: n }, (_, i) => makeLog({ serviceName: name, body: { stringValue: `${i === poisonAt ? 'poison' : 'fine'} ${name} ${i} ${'w'.repeat(1000)}` } })))[0]!.data;
    const chunks = [request('a', 12), request('b', 12, 7), request('c', 12), request('d', 12)];
    const batch = { signal: 'logs' as const, partition: 0, tenant: TENANT, rows: 48, bytes: chunks.reduce((n, c) => n + c.byteLength, 0), chunks, batchId: 'too-large-and-refused' };
    const outcome = (r: WriteResult) => (r.kind === 'success' ? { kind: r.kind, chunks: r.dropped?.chunks, rows: r.dropped?.rows } : { kind: r.kind, error: r.error.message });
    for (let attempt = 0; attempt < 2; attempt++) {
      expect(outcome(await b.write(batch))).toEqual({ kind: 'success', chunks: [1], rows: 1 });
      expect(proxy.refused()).toBeGreaterThan(0);
      // Every other request's records stored once (a resend of the batch stores nothing twice); the refused one not.
      expect((await select(client, `SELECT ServiceName, count(), uniqExact(Body), countIf(Body LIKE 'poison%') FROM ${db}.otel_logs GROUP BY ServiceName ORDER BY ServiceName`)).map((r) => r.map(String))).toEqual([
        ['a', '12', '12', '0'],
        ['b', '11', '11', '0'],
        ['c', '12', '12', '0'],
        ['d', '12', '12', '0'],
      ]);
    }
  });
  it('leaves out a row too large alone and a row a CONSTRAINT refuses in one batch split for the proxy, naming both requests', async () => {
    const proxy = await bodyLimitProxy(chdbHttp.url, 16 * 1024);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    const { b, db } = await httpBackend(proxy.url, createMetrics());
    await client.command({ query: `ALTER TABLE ${db}.otel_logs ADD CONSTRAINT no_poison CHECK Body NOT LIKE '%poison%'` });
    const encoder = await loadRowEncoder(b.encoder);
    const request = (name: string, n: number, body: (i: number) => string) =>
      encoder.encodeLogs(Array.from({ length: n }, (_, i) => makeLog({ serviceName: name, body: { stringValue: `${body(i)} ${name} ${i}` } })))[0]!.data;
    const fine = (i: number) => `fine ${'w'.repeat(1000)} ${i}`;
    const chunks = [request('a', 8, fine), request('b', 8, (i) => (i === 3 ? `big ${'x'.repeat(20_000)}` : fine(i))), request('c', 8, fine), request('d', 8, (i) => (i === 5 ? 'poison' : fine(i))), request('e', 8, fine)];
    const batch = { signal: 'logs' as const, partition: 0, tenant: TENANT, rows: 40, bytes: chunks.reduce((n, c) => n + c.byteLength, 0), chunks, batchId: 'too-large-row-and-refused-row' };
    const r = await b.write(batch);
    expect(r.kind === 'success' && { chunks: r.dropped?.chunks, rows: r.dropped?.rows }).toEqual({ chunks: [1, 3], rows: 2 });
    expect(r.kind === 'success' && r.dropped?.error.message).toMatch(/1 log record row\(s\) of up to \d+ bytes each are too large alone.*; 1 log record row\(s\) refused for good/);
    expect((await select(client, `SELECT ServiceName, count() FROM ${db}.otel_logs GROUP BY ServiceName ORDER BY ServiceName`)).map((r) => r.map(String))).toEqual([['a', '8'], ['b', '7'], ['c', '8'], ['d', '7'], ['e', '8']]);
  });
  it('leaves the rest of a split batch out untried once 256 of its parts were refused, and refuses for good one whose every row is refused', { timeout: 60_000 }, async () => {
    const proxy = await bodyLimitProxy(chdbHttp.url, 16 * 1024);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    const { b, db } = await httpBackend(proxy.url, createMetrics());
    await client.command({ query: `ALTER TABLE ${db}.otel_logs ADD CONSTRAINT no_poison CHECK Body NOT LIKE '%poison%'` });
    const encoder = await loadRowEncoder(b.encoder);
    const one = (name: string, body: string) => encoder.encodeLogs([makeLog({ serviceName: name, body: { stringValue: `${body} ${name} ${'w'.repeat(1000)}` } })])[0]!.data;
    // 200 one-record requests, every other one refused: some 300 refused parts unbounded (every
    // part of two rows or more holds one).
    const n = 200;
    const chunks = Array.from({ length: n }, (_, i) => one(`s${String(i).padStart(3, '0')}`, i % 2 === 1 ? 'poison' : 'fine'));
    const batch = { signal: 'logs' as const, partition: 0, tenant: TENANT, rows: n, bytes: chunks.reduce((k, c) => k + c.byteLength, 0), chunks, batchId: 'many-refused' };
    const r = await b.write(batch);
    if (r.kind !== 'success' || !r.dropped) throw new Error(`not a success leaving rows out: ${JSON.stringify(r)}`);
    expect(r.dropped.error.message).toMatch(/row\(s\) of the batch not tried again once 256 parts of it were refused/);
    const stored = (await select(client, `SELECT ServiceName FROM ${db}.otel_logs ORDER BY ServiceName`)).map((row) => String(row[0]));
    // Each request is stored or named as left out, never both; every refused one is named.
    expect(r.dropped.rows).toBe(n - stored.length);
    expect([...r.dropped.chunks, ...stored.map((s) => Number(s.slice(1)))].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
    for (let i = 1; i < n; i += 2) expect(r.dropped.chunks).toContain(i);
    expect(stored.length).toBeGreaterThan(0);
    // Every row refused: refused for good, as a batch refused whole is.
    const all = Array.from({ length: 40 }, (_, i) => one(`p${i}`, 'poison'));
    const r2 = await b.write({ ...batch, rows: 40, bytes: all.reduce((n, c) => n + c.byteLength, 0), chunks: all, batchId: 'all-refused' });
    expect(r2.kind).toBe('permanent');
  });
});

describe('clickhouse behind a proxy whose upstream is not up yet (502)', () => {
  it('waits for it at start (storage.startWaitMs) as for a server not reached, with autoMigrate on or off', async () => {
    for (const autoMigrate of ['true', 'false']) {
      const db = uniqueDatabase('gw');
      if (autoMigrate === 'false') await (await chdbBackend([db])).shutdown();
      const proxy = await gatewayProxy(chdbHttp.url);
      closers.push(() => new Promise((r) => proxy.server.close(r)));
      const t0 = Date.now();
      setTimeout(proxy.up, 800);
      const c = await startCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': `${proxy.url}/?database=${db}`, 'storage.clickhouse.autoMigrate': autoMigrate, 'storage.startWaitMs': '10000' });
      closers.push(() => c.stop());
      expect(Date.now() - t0, autoMigrate).toBeGreaterThanOrEqual(700);
    }
  }, 30_000);

  it('has `tracehouse migrate` wait for it too', async () => {
    const db = uniqueDatabase('gw');
    const proxy = await gatewayProxy(chdbHttp.url);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    // Up once the command has been answered 502 (its start takes a second or more).
    const poll = setInterval(() => proxy.badGateways() > 0 && proxy.up(), 50);
    closers.push(async () => clearInterval(poll));
    // Exits 0 (execFile rejects otherwise, with the command's output).
    await promisify(execFile)(process.execPath, [CLI, 'migrate', '--storage.backend=clickhouse', `--storage.clickhouse.urls=${proxy.url}/?database=${db}`, '--storage.startWaitMs=10000'], {
      env: { ...process.env, TRACEHOUSE_CONFIG: '' },
    });
    // Migrated: a collector that applies no migration of its own starts on it.
    const c = await startCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': `${proxy.url}/?database=${db}`, 'storage.clickhouse.autoMigrate': 'false' });
    await c.stop();
  }, 30_000);

  it('names the proxy\'s answer when the wait ends, not a schema to migrate', async () => {
    const db = uniqueDatabase('gw');
    await (await chdbBackend([db])).shutdown();
    const proxy = await gatewayProxy(chdbHttp.url);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    for (const autoMigrate of ['true', 'false']) {
      const started = startCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': `${proxy.url}/?database=${db}`, 'storage.clickhouse.autoMigrate': autoMigrate, 'storage.startWaitMs': '300' });
      await expect(started, autoMigrate).rejects.toThrow(/HTTP 502 from http:\/\/127\.0\.0\.1:\d+\/\?database=\w+, not from ClickHouse: 502 Bad Gateway/);
    }
  }, 30_000);

  it('says what the proxy answered when the store goes unhealthy, not its whole HTML page', async () => {
    const db = uniqueDatabase('gw');
    const proxy = await gatewayProxy(chdbHttp.url);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    proxy.up();
    const { logger, lines } = capturedLogger();
    const c = await startCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': `${proxy.url}/?database=${db}`, 'storage.statsIntervalMs': '0' }, { logger });
    closers.push(() => c.stop());
    proxy.down();
    const res = await fetch(`${c.opsUrl}/readyz`);
    expect(res.status).toBe(503);
    const unhealthy = await eventually(async () => lines().find((l) => l.msg === 'storage unhealthy'), 5000, 'the unhealthy line');
    expect(String(unhealthy['detail'])).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?database=\w+: not ClickHouse's answer: 502 Bad Gateway$/);
    // A ping, not a query: a poll a second would fill ClickHouse's query log.
    expect(proxy.queries()).toBe(0);
  }, 30_000);
});


/**
 * A server that has sent its headers (200, progress: send_progress_in_http_headers, set in a
 * user's profile to keep a load balancer's idle timeout from cutting long inserts) before the
 * insert failed: ClickHouse can then tell the failure in the body only, after the progress.
 */
async function progressHeadersProxy(upstream: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const headers = { ...req.headers };
      delete headers['transfer-encoding'];
      const body = Buffer.concat(parts);
      const up = request(upstream + (req.url ?? '/'), { method: req.method, headers: { ...headers, 'content-length': String(body.length) } }, (r) => {
        const failedInsert = (req.url ?? '').includes('query=INSERT') && (r.statusCode ?? 500) >= 300;
        if (!failedInsert) {
          res.writeHead(r.statusCode ?? 502, r.headers);
          return void r.pipe(res);
        }
        res.writeHead(200, { 'X-ClickHouse-Progress': '{"read_rows":"0","read_bytes":"0","written_rows":"0","written_bytes":"0","total_rows_to_read":"0"}', 'Content-Type': 'text/plain; charset=UTF-8' });
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('clickhouse answering an insert 200 before it failed (progress headers sent)', () => {
  it('takes the exception in the body as the failure it is, not as rows stored', async () => {
    const proxy = await progressHeadersProxy(chdbHttp.url);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    const { b, db } = await httpBackend(proxy.url, createMetrics());
    const encoder = await loadRowEncoder(b.encoder);
    const chunks = encoder.encodeLogs([makeLog({ serviceName: 'cut' }), makeLog({ serviceName: 'cut' })]);
    const data = chunks.map((c) => c.data);
    // The last row cut short: ClickHouse refuses the insert (CANNOT_READ_ALL_DATA), stores nothing.
    data[data.length - 1] = data[data.length - 1]!.subarray(0, data[data.length - 1]!.length - 3);
    const result = await b.write({ signal: 'logs', partition: 0, tenant: TENANT, rows: 2, bytes: data.reduce((n, c) => n + c.byteLength, 0), chunks: data, batchId: 'cut-batch' });
    expect(Number((await select(client, `SELECT count() FROM ${db}.otel_logs`))[0]![0])).toBe(0);
    // Refused for good (its code kept), as the same answer with a 500 status is.
    expect(result.kind).toBe('permanent');
    expect(result.kind !== 'success' && result.error.message).toMatch(/Cannot read all data/);
    // A good batch through the same proxy is still stored.
    const good = encoder.encodeLogs([makeLog({ serviceName: 'whole' })]).map((c) => c.data);
    expect((await b.write({ signal: 'logs', partition: 0, tenant: TENANT, rows: 1, bytes: good.reduce((n, c) => n + c.byteLength, 0), chunks: good, batchId: 'good-batch' })).kind).toBe('success');
    expect(Number((await select(client, `SELECT count() FROM ${db}.otel_logs`))[0]![0])).toBe(1);
  });
});

describe('clickhouse behind a proxy with a body limit, delivery.ack = stored', () => {
  it('does not acknowledge a request whose record was too large alone for the proxy (refused as not retryable)', async () => {
    const db = uniqueDatabase('ack');
    await (await chdbBackend([db])).shutdown();
    const proxy = await bodyLimitProxy(chdbHttp.url, 16 * 1024);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    const c = await startCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': `${proxy.url}/?database=${db}`, 'storage.clickhouse.autoMigrate': 'false', 'delivery.ack': 'stored' });
    closers.push(() => c.stop());
    const send = (service: string, body: string) =>
      fetch(`${c.httpUrl}/v1/logs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeLogs: [{ logRecords: [{ timeUnixNano: String(BigInt(Date.now()) * 1_000_000n), body: { stringValue: body } }] }] }] }),
      });
    const big = await send('big', 'y'.repeat(40 * 1024));
    await big.text();
    expect(proxy.refused()).toBeGreaterThan(0);
    expect(Number((await select(client, `SELECT count() FROM ${db}.otel_logs`))[0]![0])).toBe(0);
    // Acknowledged (200) it would be a record the client lets go and no store holds.
    expect(big.status).toBe(500);
    const small = await send('small', 'fits');
    await small.text();
    expect(small.status).toBe(200);
    expect((await select(client, `SELECT ServiceName FROM ${db}.otel_logs`)).map((r) => r[0])).toEqual(['small']);
  }, 30_000);

  it('answers a request one of whose records alone was too large for the proxy as a partial success naming that record', async () => {
    // The store kept the request's two small records and left out the big one (split for the
    // proxy, row by row): the client was answered 500 for all three, told not to resend what the
    // store had not kept, and the counts said three refused while two were written.
    const db = uniqueDatabase('ackpart');
    await (await chdbBackend([db])).shutdown();
    const proxy = await bodyLimitProxy(chdbHttp.url, 16 * 1024);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    const c = await startCollector({ 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': `${proxy.url}/?database=${db}`, 'storage.clickhouse.autoMigrate': 'false', 'delivery.ack': 'stored' });
    closers.push(() => c.stop());
    const now = String(BigInt(Date.now()) * 1_000_000n);
    const bodies = ['fits 1', 'y'.repeat(40 * 1024), 'fits 2'];
    const res = await fetch(`${c.httpUrl}/v1/logs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'mixed' } }] }, scopeLogs: [{ logRecords: bodies.map((b) => ({ timeUnixNano: now, body: { stringValue: b } })) }] }] }),
    });
    const body = (await res.json()) as { partialSuccess?: { rejectedLogRecords?: string; errorMessage?: string } };
    expect(proxy.refused()).toBeGreaterThan(0);
    expect((await select(client, `SELECT Body FROM ${db}.otel_logs ORDER BY Body`)).map((r) => r[0])).toEqual(['fits 1', 'fits 2']);
    expect(res.status).toBe(200);
    expect(body.partialSuccess?.rejectedLogRecords).toBe('1');
    expect(body.partialSuccess?.errorMessage).toMatch(/refused for good by the store/);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_accepted_log_records_total')).toBe(2);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_log_records_total', { reason: 'rejected_by_store' })).toBe(1);
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total', { signal: 'logs' })).toBe(2);
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total', { signal: 'logs', reason: 'permanent_error' })).toBe(1);
  }, 30_000);

  it('acknowledges a request stored whole whose batch also held another request\'s record too large alone', async () => {
    const proxy = await bodyLimitProxy(chdbHttp.url, 16 * 1024);
    closers.push(() => new Promise((r) => proxy.server.close(r)));
    const metrics = createMetrics();
    const { logger } = capturedLogger();
    const { b, db } = await httpBackend(proxy.url, metrics, logger);
    const encoder = await loadRowEncoder(b.encoder);
    const writer = new Writer(b, { maxBatchRows: 1000, flushIntervalMs: 5, maxInFlightBatches: 1, maxQueueBytes: 64 << 20, retryInitialMs: 5, retryMaxMs: 20, retryMaxElapsedMs: 3000, writeTimeoutMs: 5000, refusedWhenGivenUp: true }, metrics, logger);
    const request = (logs: ReturnType<typeof makeLog>[]) => {
      const chunks = encoder.encodeLogs(logs);
      return writer.reserve(chunks.reduce((n, c) => n + c.data.byteLength, 0))!.commit('logs', chunks, TENANT);
    };
    // Two requests in one batch: three small records, and one too large alone for the proxy.
    const small = request(Array.from({ length: 3 }, (_, i) => makeLog({ serviceName: 'small', body: { stringValue: `small ${i}` } })));
    const big = request([makeLog({ serviceName: 'big', body: { stringValue: 'y'.repeat(40 * 1024) } })]);
    await writer.drain();
    expect(proxy.refused()).toBeGreaterThan(0);
    expect((await select(client, `SELECT ServiceName, count() FROM ${db}.otel_logs GROUP BY ServiceName`)).map((r) => r.map(String))).toEqual([['small', '3']]);
    // Its records are stored: refused as retryable, its client would send them again, stored twice.
    expect(await small).toEqual({ delivered: true, refusedRows: 0, storedRows: 3 });
    // The record no store holds is refused for good, counted dropped once.
    expect(await big).toEqual({ delivered: 'permanent_error', refusedRows: 1, storedRows: 0 });
    expect(await metricSum(metrics, 'tracehouse_writer_dropped_rows_total', 'reason="permanent_error"')).toBe(1);
    await writer.shutdown(1000);
  });
});
