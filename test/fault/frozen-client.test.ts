// SIGTERM ends the collector within shutdown.timeoutMs (the README: it writes out what it has
// accepted and exits 0) also when an OTLP/gRPC client stops responding: a frozen or vanished host,
// here a client process stopped with SIGSTOP, whose kernel keeps the TCP connection while nothing
// answers the server's GOAWAY and FIN. Before, the gRPC receiver's stop waited for that client to
// close its side, for ever, and the supervisor's SIGKILL came instead of the drain.
import { spawn } from 'node:child_process';
import { expect, it, onTestFinished } from 'vitest';
import { spawnCollector } from '../helpers/process.ts';

const TIMEOUT_MS = 5000;

/** A client process holding one HTTP/2 connection to the gRPC port, with `calls` Export calls that sent part of their message, then stopped. */
async function frozenClient(grpcPort: number, calls: number): Promise<void> {
  const script = `
    const http2 = require('node:http2');
    const s = http2.connect('http://127.0.0.1:${grpcPort}');
    s.on('error', () => {});
    s.on('connect', () => {
      for (let i = 0; i < ${calls}; i++) {
        const st = s.request({ ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'content-type': 'application/grpc', te: 'trailers' });
        st.on('error', () => {});
        const prefix = Buffer.alloc(5); prefix.writeUInt32BE(1000, 1);
        st.write(Buffer.concat([prefix, Buffer.alloc(100)]));
      }
      setTimeout(() => console.log('ready'), 300);
    });
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  onTestFinished(() => {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  });
  await new Promise<void>((resolve) => child.stdout!.on('data', (d) => String(d).includes('ready') && resolve()));
  child.kill('SIGSTOP');
}

for (const calls of [0, 1]) {
  it(`exits 0 within shutdown.timeoutMs after SIGTERM while a frozen gRPC client holds a connection (${calls} calls half sent)`, async () => {
    const c = await spawnCollector({ 'receiver.grpc.enabled': 'true', 'receiver.grpc.listen': '127.0.0.1:0', 'storage.backend': 'memory', 'shutdown.timeoutMs': String(TIMEOUT_MS) });
    const grpcPort = Number(/"port":(\d+),"msg":"OTLP\/gRPC receiver listening"/.exec(c.output())![1]);
    await frozenClient(grpcPort, calls);
    const t0 = Date.now();
    c.child.kill('SIGTERM');
    const code = await Promise.race([c.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 30_000))]);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(TIMEOUT_MS + 1000);
  }, 60_000);
}
