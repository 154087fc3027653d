// The receivers log refusals at most once a minute (the counters have each one), but that minute
// was shared by every reason: a client over its connection limit refused a moment before the
// queue filled hid "refusing requests: the write queue is full" for a minute, the line an operator
// looks for first. Each reason now has its own minute.
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { encodeTraces, RawOtlpClient } from '../helpers/otlp-proto.ts';

describe('refusal log lines', () => {
  it('come once a minute for each reason, not once for all of them', async () => {
    const { logger, lines } = capturedLogger();
    const c = await startCollector({ 'receiver.http.maxConnectionsPerClient': '2', 'writer.maxQueueBytes': '2048', 'writer.flushIntervalMs': '60000' }, { logger });
    // From 127.0.0.2: a client of its own, so the exports below from 127.0.0.1 are not over its limit.
    const port = Number(new URL(c.httpUrl).port);
    const sockets = [0, 1, 2].map(() => connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' }));
    try {
      for (const s of sockets) s.on('error', () => undefined);
      await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'connections_per_client' })) > 0 ? true : undefined), 5000, 'a connection refused');
      for (const s of sockets) s.destroy();
      // Rows that wait a minute to be flushed fill the 2048-byte queue; the next request is refused.
      const span = { traceId: randomBytes(16), spanId: randomBytes(8), name: 'x'.repeat(3000), startTimeUnixNano: 1, endTimeUnixNano: 2 };
      const body = encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
      const post = () => fetch(c.httpUrl + '/v1/traces', { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
      expect((await post()).status).toBe(200);
      // Refused before its body is read, so the connection closes after the 503: the client may see the close first.
      await post().catch(() => undefined);
      expect(await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { reason: 'queue_full' })).toBe(1);
      const refusing = lines().filter((l) => l.msg.startsWith('refusing requests')).map((l) => l['reason']);
      expect(refusing).toEqual(['connections_per_client', 'queue_full']);
    } finally {
      for (const s of sockets) s.destroy();
      await c.stop();
    }
  });

  it('count the refusals of the transport they name (gRPC\'s are not logged as OTLP/HTTP\'s)', async () => {
    const { logger, lines } = capturedLogger();
    const c = await startCollector({ 'writer.maxQueueBytes': '2048', 'writer.flushIntervalMs': '60000' }, { logger });
    const client = new RawOtlpClient(c.grpcAddress);
    try {
      const span = { traceId: randomBytes(16), spanId: randomBytes(8), name: 'x'.repeat(3000), startTimeUnixNano: 1, endTimeUnixNano: 2 };
      const body = encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
      const post = () => fetch(c.httpUrl + '/v1/traces', { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf' } });
      expect((await post()).status).toBe(200);
      // Two gRPC exporters refused, then one OTLP/HTTP one, within the minute.
      for (let i = 0; i < 2; i++) expect((await client.traces(body)).error).not.toBeNull();
      await post().catch(() => undefined);
      const counted = { grpc: await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'grpc', reason: 'queue_full' }), http: await metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'http', reason: 'queue_full' }) };
      expect(counted).toEqual({ grpc: 2, http: 1 });
    } finally {
      client.close();
      // The stop writes the lines kept for the end of the minute.
      await c.stop();
    }
    const logged: Record<string, number> = {};
    for (const l of lines().filter((l) => l.msg.startsWith('refusing requests') && l['reason'] === 'queue_full')) logged[String(l['transport'])] = (logged[String(l['transport'])] ?? 0) + Number(l['refused']);
    expect(logged).toEqual({ grpc: 2, http: 1 });
  });
});
