// Bodies still arriving count against writer.maxQueueBytes: concurrent uploads cannot together
// outgrow the budget before any of them is queued.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';

describe('OTLP/HTTP body budget', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'writer.maxQueueBytes': '8192', 'receiver.http.bodyTimeoutMs': '5000' });
  });
  afterAll(async () => c?.stop());

  it('refuses a second upload with 503 while the first, declared to fill the budget, is still arriving', async () => {
    const url = new URL(c.httpUrl + '/v1/traces');
    // First upload: declares 6000 bytes, sends 10, then stalls.
    const slow = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'content-length': 6000 } });
    slow.on('error', () => {});
    slow.write(Buffer.alloc(10));
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes')) >= 6000 ? true : undefined), 5000, 'reservation');

    const second = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array(4000) });
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).not.toBeNull();
    // In OTLP/JSON the google.rpc.Status carries the same RetryInfo as the protobuf body.
    const json = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resourceSpans: [] }).padEnd(4000, ' ') });
    expect(json.status).toBe(503);
    expect(await json.json()).toEqual({ code: 14, message: 'the write queue is full', details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '1s' }] });

    // The stalled upload is abandoned: its reservation is given back.
    slow.destroy();
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_queue_size_bytes')) === 0 ? true : undefined), 5000, 'reservation released');
    const third = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array(0) });
    expect(third.status).toBe(200);
  });
});
