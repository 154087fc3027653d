// Small node:http plumbing shared by the HTTP servers (read API, operations, OTLP/HTTP).
import type { Server, ServerResponse } from 'node:http';
import { parseListen } from '../config/index.ts';

/** Listens on "host:port" and resolves to the bound port (useful with port 0 in tests). */
export async function listenHttp(server: Server, addr: string): Promise<number> {
  const { host, port } = parseListen(addr);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as { port: number }).port;
}

/** Closes a server: idle connections at once, busy ones after graceMs (a slow client cannot hold shutdown). */
export async function closeHttp(server: Server, graceMs = 2000): Promise<void> {
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), graceMs);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  clearTimeout(force);
}

/** Sends a JSON body with its length. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
