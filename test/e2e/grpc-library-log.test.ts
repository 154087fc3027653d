// grpc-js's own log lines reach the collector's JSON log, and a client cannot make it write one
// per call: a header name gRPC does not allow was written to stderr as plain text, with its value,
// for every call that carried it.
import { connect } from 'node:http2';
import { expect, it } from 'vitest';
import { spawnCollector } from '../helpers/process.ts';

/** One Export call with an empty message and a header grpc-js leaves out of the metadata; resolves to its grpc-status. */
function exportWithBadHeader(grpcUrl: string, value: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const session = connect(grpcUrl);
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      'content-type': 'application/grpc',
      te: 'trailers',
      'x!token': value,
    });
    let status: string | undefined;
    const note = (h: Record<string, unknown>): void => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
    };
    stream.on('response', note);
    stream.on('trailers', note);
    stream.on('error', reject);
    stream.resume();
    stream.on('close', () => {
      session.close();
      resolve(status);
    });
    stream.end(Buffer.alloc(5));
  });
}

it('a call header that is no gRPC metadata name is logged as JSON, without its value, at most once a minute with the calls counted', async () => {
  const grpcListen = '127.0.0.1:26951';
  const c = await spawnCollector({ 'storage.backend': 'memory', 'receiver.grpc.enabled': 'true', 'receiver.grpc.listen': grpcListen });
  for (let i = 0; i < 5; i++) expect(await exportWithBadHeader(`http://${grpcListen}`, `secret-${i}`)).toBe('0');
  c.child.kill('SIGTERM');
  expect(await c.exited).toBe(0);

  const lines = c.output().split('\n').filter((l) => l.trim() !== '');
  // Every line is the collector's JSON (grpc-js's own console lines began 'E ').
  for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
  expect(c.output()).not.toContain('secret-');
  const told = lines.map((l) => JSON.parse(l) as { header?: string; calls?: number }).filter((l) => l.header === 'x!token');
  expect(told.length).toBeGreaterThanOrEqual(1);
  expect(told.length).toBeLessThanOrEqual(2);
  // The stop writes out the minute's held count: every call is counted.
  expect(told.reduce((n, l) => n + (l.calls ?? 0), 0)).toBe(5);
});
