// A chunked OTLP/HTTP body whose framing is malformed (a chunk size that is not hex) is cut by
// Node's HTTP parser, which answers 400. It was counted as client_aborted, a client that went
// away mid-body, though it was there and heard the 400: an alert on exporters timing out or
// disconnecting fired for a client sending broken bodies. It is counted as undecodable, once.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';

/** Sends raw bytes; resolves to the answer's status line once the server closes. */
function send(url: string, data: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => socket.write(data));
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => resolve(answer.split('\r\n')[0] ?? ''));
  });
}

describe('OTLP/HTTP: a chunked body with malformed framing', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(async () => {
    await c?.stop();
  });
  const refused = (reason?: string) => metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'http', ...(reason ? { reason } : {}) });

  it('is answered 400 and counted as undecodable, not client_aborted', async () => {
    const line = await send(c.httpUrl, 'POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nZZ\r\n');
    expect(line).toBe('HTTP/1.1 400 Bad Request');
    await eventually(async () => ((await refused()) === 1 ? true : undefined), 5000, 'one refusal');
    await new Promise((r) => setTimeout(r, 200));
    expect(await refused('undecodable')).toBe(1);
    expect(await refused('client_aborted')).toBe(0);
    expect(await refused()).toBe(1);
  });
});
