// A client over receiver.http.maxConnectionsPerClient (a fleet behind one NAT address or a mesh
// sidecar, whose connections all come from one address) has its further connections closed as
// they open: the exports on them are refused, as surely as a 503. They were logged once a minute
// and counted nowhere, so the dashboard's "Refused requests/s" and TracehouseRefusingRequests
// showed nothing while exporters failed. Each is counted in tracehouse_receiver_refused_requests_total
// under its own reason.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';

describe('OTLP/HTTP: connections over the per-client limit', () => {
  let c: TestCollector;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    c = await startCollector({ 'receiver.http.maxConnectionsPerClient': '2' });
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await c?.stop();
  });

  it('are counted as refused requests, reason connections_per_client', async () => {
    const port = Number(new URL(c.httpUrl).port);
    const open = () =>
      new Promise<{ closed: Promise<void> }>((resolve, reject) => {
        const s = connect(port, '127.0.0.1');
        sockets.push(s);
        const closed = new Promise<void>((r) => s.once('close', () => r()));
        s.once('connect', () => resolve({ closed }));
        s.once('error', () => undefined);
        setTimeout(() => reject(new Error('no connection')), 2000).unref();
      });
    await open();
    await open();
    const third = await open();
    await third.closed;
    const counted = await eventually(async () => {
      const n = await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'http', reason: 'connections_per_client' });
      return n > 0 ? n : undefined;
    }, 2000, 'the closed connection counted').catch(() => 0);
    expect(counted).toBe(1);
  });
});
