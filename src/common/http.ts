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

/** Closes a server, letting requests in flight finish. */
export async function closeHttp(server: Server): Promise<void> {
  server.closeIdleConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Sends a JSON body with its length. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
