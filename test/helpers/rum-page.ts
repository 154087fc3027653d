// A web page on an origin of its own (another port than the collector's) whose script is the real
// OpenTelemetry browser exporters (test/fixtures/browser-rum/page.ts), bundled by Vite from the
// packages' browser builds, as a web application ships them.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { build } from 'vite';

const ENTRY = join(import.meta.dirname, '..', 'fixtures', 'browser-rum', 'page.ts');

/** The page's script, bundled for the browser. */
export async function bundleRumScript(): Promise<string> {
  const out = await build({
    configFile: false,
    logLevel: 'silent',
    root: join(import.meta.dirname, '..', '..'),
    build: { write: false, minify: false, emptyOutDir: false, rollupOptions: { input: ENTRY, output: { format: 'iife', entryFileNames: 'rum.js' } } },
  });
  const outputs = Array.isArray(out) ? out : [out];
  for (const o of outputs) {
    if (!('output' in o)) continue;
    for (const chunk of o.output) if (chunk.type === 'chunk' && chunk.fileName === 'rum.js') return chunk.code;
  }
  throw new Error('vite produced no rum.js');
}

export interface RumSite {
  /** http://127.0.0.1:port, the page's origin. */
  origin: string;
  close(): Promise<void>;
}

/** Serves the page (/) and its script on a port of the OS's choosing. */
export async function serveRumPage(script: string): Promise<RumSite> {
  const html = '<!doctype html><html><head><title>rum</title><script src="/rum.js"></script></head><body><a id="away" href="/away">away</a></body></html>';
  const server: Server = createServer((req, res) => {
    const [type, body] = req.url === '/rum.js' ? ['text/javascript', script] : ['text/html', req.url === '/away' ? '<!doctype html><title>away</title>' : html];
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
