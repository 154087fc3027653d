// A read API client that goes away before its answer, and one that times its answer: what the
// tests of abandoned reads (read-abandoned-*.test.ts) need from the network side.
import { request } from 'node:http';

/** Sends a GET and closes the connection after ms, before any answer. */
export function getAndLeave(port: number, path: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.end();
    setTimeout(() => req.destroy(), ms);
  });
}

/** A GET's status and how long its whole answer took, given up after timeoutMs. */
export async function timedGet(port: number, path: string, timeoutMs: number): Promise<{ status: number; ms: number }> {
  const t = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t };
}
