// delivery.ack = durable in-process: an acknowledged export is in the write-ahead log (fsynced)
// until stored, the tracehouse_wal_* metrics say so, a full log answers 503 / UNAVAILABLE with a
// retry hint (never drops), and queued mode never touches the log's directory.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { walDir } from '../../src/app.ts';
import { gated, memoryBackend } from '../helpers/backends.ts';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { tempDir } from '../helpers/tmp.ts';

function exportBody(spans: number, pad = 0): Uint8Array {
  const traceId = randomBytes(16);
  return encodeTraces({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'durable' } }] },
      scopeSpans: [{ spans: Array.from({ length: spans }, (_, i) => ({ traceId, spanId: randomBytes(8), name: `op-${i}`, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000', attributes: pad ? [{ key: 'pad', value: { stringValue: 'x'.repeat(pad) } }] : [] })) }],
    }],
  });
}

const post = (url: string, body: Uint8Array) => fetch(url + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });

describe('delivery.ack = durable', () => {
  it('is the default of the stores that keep data across a restart; the memory store defaults to queued unless asked', () => {
    for (const backend of ['sqlite', 'postgres', 'clickhouse']) expect(loadConfig({ flags: { 'storage.backend': backend } })['delivery.ack']).toBe('durable');
    expect(loadConfig({})['delivery.ack']).toBe('durable');
    expect(loadConfig({ flags: { 'storage.backend': 'memory' } })['delivery.ack']).toBe('queued');
    expect(loadConfig({ flags: { 'storage.backend': 'memory', 'delivery.ack': 'durable' } })['delivery.ack']).toBe('durable');
    expect(loadConfig({ env: { TRACEHOUSE_STORAGE_BACKEND: 'memory', TRACEHOUSE_DELIVERY_ACK: 'durable' } })['delivery.ack']).toBe('durable');
    expect(loadConfig({ flags: { 'storage.backend': 'memory', 'delivery.ack': 'stored' } })['delivery.ack']).toBe('stored');
    const file = join(tempDir(), 'tracehouse.yaml');
    writeFileSync(file, 'storage:\n  backend: memory\ndelivery:\n  ack: durable\n');
    expect(loadConfig({ file })['delivery.ack']).toBe('durable');
    writeFileSync(file, 'storage:\n  backend: memory\n');
    expect(loadConfig({ file })['delivery.ack']).toBe('queued');
  });

  it('fsyncs each acknowledged export and empties the log once stored', async () => {
    const dir = join(tempDir(), 'wal');
    const c = await startCollector({ 'delivery.walDir': dir });
    onTestFinished(async () => void (await c.stop()));
    const res = await post(c.httpUrl, exportBody(10));
    expect(res.status).toBe(200);
    expect(await metricValue(c.opsUrl, 'tracehouse_wal_fsyncs_total')).toBeGreaterThanOrEqual(1);
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total')) === 10 ? true : undefined));
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_wal_pending_entries')) === 0 ? true : undefined));
    expect(await metricValue(c.opsUrl, 'tracehouse_wal_bytes')).toBeGreaterThan(0);
    expect(existsSync(dir)).toBe(true);
  });

  it('answers 503 with Retry-After (wal_full) when the log is full, and accepts again once the store drains it', async () => {
    const gate = gated(await memoryBackend());
    const c = await startCollector(
      { 'delivery.walDir': join(tempDir(), 'wal'), 'delivery.walMaxBytes': String(1 << 20), 'delivery.walSegmentBytes': String(64 << 10), 'receiver.maxMessageBytes': String(256 << 10) },
      { backend: gate.backend },
    );
    onTestFinished(async () => void (await c.stop()));
    gate.close();
    let accepted = 0;
    let full: Response | undefined;
    for (let i = 0; i < 200 && !full; i++) {
      const res = await post(c.httpUrl, exportBody(50, 400));
      await res.arrayBuffer();
      if (res.status === 200) accepted += 50;
      else full = res;
    }
    expect(full?.status).toBe(503);
    expect(Number(full?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'wal_full' })).toBe(1);
    expect(accepted).toBeGreaterThan(0);
    gate.open();
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_writer_written_rows_total')) === accepted ? true : undefined), 10_000, 'the log drained into the store');
    await eventually(async () => ((await post(c.httpUrl, exportBody(50, 400))).status === 200 ? true : undefined), 10_000, 'accepting again');
    expect(await metricValue(c.opsUrl, 'tracehouse_writer_dropped_rows_total')).toBe(0);
  });

  it('refuses a request whose rows could never fit in the log as too large, not as a full log to retry forever', async () => {
    const c = await startCollector({ 'delivery.walDir': join(tempDir(), 'wal'), 'delivery.walMaxBytes': String(1 << 20), 'delivery.walSegmentBytes': String(64 << 10), 'receiver.maxMessageBytes': String(256 << 10) });
    onTestFinished(async () => void (await c.stop()));
    // 60 KB of resource over 40 scopes: a request of about 60 KB whose rows take a few MiB in the
    // store (each scope's rows carry the resource), more than the whole log may hold.
    const traceId = randomBytes(16);
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'durable' } }, { key: 'big', value: { stringValue: 'r'.repeat(60_000) } }] };
    const scopeSpans = Array.from({ length: 40 }, (_, i) => ({ scope: { name: `s${i}` }, spans: [{ traceId, spanId: randomBytes(8), name: `op-${i}`, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }] }));
    const body = encodeTraces({ resourceSpans: [{ resource, scopeSpans }] });
    expect(body.byteLength).toBeLessThan(256 << 10);
    const res = await post(c.httpUrl, body);
    await res.arrayBuffer();
    expect(await metricValue(c.opsUrl, 'tracehouse_wal_bytes')).toBeLessThan(1 << 19);
    expect(res.status).toBe(413);
    // A request that fits is taken at once: the log was never full.
    expect((await post(c.httpUrl, exportBody(10))).status).toBe(200);
  });

  it('says why a request whose rows could never fit in the log is too large: the log, not receiver.maxMessageBytes', async () => {
    const c = await startCollector({ 'delivery.walDir': join(tempDir(), 'wal'), 'delivery.walMaxBytes': String(1 << 20), 'delivery.walSegmentBytes': String(64 << 10), 'receiver.maxMessageBytes': String(256 << 10) });
    onTestFinished(async () => void (await c.stop()));
    const traceId = randomBytes(16).toString('hex');
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'durable' } }, { key: 'big', value: { stringValue: 'r'.repeat(60_000) } }] };
    const scopeSpans = Array.from({ length: 40 }, (_, i) => ({ scope: { name: `s${i}` }, spans: [{ traceId, spanId: randomBytes(8).toString('hex'), name: `op-${i}`, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }] }));
    const body = JSON.stringify({ resourceSpans: [{ resource, scopeSpans }] });
    // Well within receiver.maxMessageBytes: "over the size limit" would send the operator to the wrong setting.
    expect(body.length).toBeLessThan(256 << 10);
    const res = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { message: string }).message).toContain('delivery.walMaxBytes');
  });

  it('queued mode never creates the log', async () => {
    const dir = join(tempDir(), 'wal');
    const c = await startCollector({ 'delivery.ack': 'queued', 'delivery.walDir': dir });
    expect((await post(c.httpUrl, exportBody(5))).status).toBe(200);
    expect(await c.stop()).toBe(0);
    expect(existsSync(dir)).toBe(false);
  });

  it('puts the log beside the SQLite file unless delivery.walDir says otherwise', () => {
    expect(walDir(loadConfig({ flags: { 'storage.sqlite.path': '/var/lib/tracehouse/th.db' } }))).toBe('/var/lib/tracehouse/wal');
    expect(walDir(loadConfig({ flags: { 'delivery.walDir': '/wal' } }))).toBe('/wal');
  });

  it('refuses to start with a walMaxBytes under 4 x receiver.maxMessageBytes, naming both', () => {
    const bad = () => loadConfig({ flags: { 'delivery.walMaxBytes': String(64 << 20), 'receiver.maxMessageBytes': String(32 << 20) } });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/delivery\.walMaxBytes = 67108864 \(from flag --delivery\.walMaxBytes\).*receiver\.maxMessageBytes \(33554432\)/);
    expect(() => loadConfig({ flags: { 'delivery.ack': 'queued', 'delivery.walMaxBytes': String(64 << 20), 'receiver.maxMessageBytes': String(32 << 20) } })).not.toThrow();
  });
});
