// The built-in web UI on the read port: one page shell for every UI path, plus a script and a
// stylesheet, all made from files in this folder when the server starts. Nothing comes from a
// CDN or is fetched at run time, and the pages talk only to this server's read API.
//
// The browser code is plain TypeScript (browser/app.ts), turned into JavaScript with Node's own
// module.stripTypeScriptTypes: no bundler, no build step, nothing to install beyond
// `npm install`, and the browser runs exactly the code we wrote minus its types (the file uses
// erasable syntax only, which its tsconfig enforces). It runs once per process, in a few ms.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { stripTypeScriptTypes } from 'node:module';

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Locks the pages to this origin: no inline script or style, no framing, no third parties. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const PAGE = /^\/(?:|search|logs|trace\/[^/]{1,200})$/;
/** A page's path with trailing slashes (a link typed or pasted so, `/search/`): sent to the page. */
const PAGE_SLASHED = /^(\/(?:search|logs|trace\/[^/]{1,200}))\/+$/;

/** A content-hashed asset name of any build (the hash: 12 base64url characters of its SHA-256). */
const ANY_BUILD_ASSET = /^\/ui\/(app\.[\w-]{12}\.js|style\.[\w-]{12}\.css)$/;

function asset(body: string | Buffer, type: string): Asset {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  return { body: buf, type, etag: `"${createHash('sha256').update(buf).digest('base64url').slice(0, 22)}"` };
}

function read(name: string): string {
  return readFileSync(new URL(`./browser/${name}`, import.meta.url), 'utf8');
}

/** TypeScript → JavaScript by erasing types; the experimental-API warning is silenced as it says nothing about this input. */
function stripTypes(source: string): string {
  const emit = process.emitWarning;
  process.emitWarning = (() => {}) as typeof process.emitWarning;
  try {
    return stripTypeScriptTypes(source, { mode: 'strip' });
  } finally {
    process.emitWarning = emit;
  }
}

/** Serves the web UI; answers only the paths it owns (see owns()). */
export class WebUi {
  private readonly shell: Asset;
  /** Content-hashed names: cached for a year, a new build gets new names. */
  private readonly assets = new Map<string, Asset>();
  private readonly script: Asset;
  private readonly style: Asset;

  constructor(opts: { maxLimit: number }) {
    const js = asset(stripTypes(read('app.ts')), 'text/javascript; charset=utf-8');
    const css = asset(read('style.css'), 'text/css; charset=utf-8');
    const jsPath = `/ui/app.${js.etag.slice(1, 13)}.js`;
    const cssPath = `/ui/style.${css.etag.slice(1, 13)}.css`;
    this.assets.set(jsPath, js);
    this.assets.set(cssPath, css);
    this.script = js;
    this.style = css;
    const html = read('index.html').replace('%SCRIPT%', jsPath).replace('%STYLE%', cssPath).replace('%MAX_LIMIT%', String(opts.maxLimit));
    this.shell = asset(html, 'text/html; charset=utf-8');
  }

  /** True for the paths the UI serves: its pages and its assets. */
  owns(path: string): boolean {
    return PAGE.test(path) || PAGE_SLASHED.test(path) || path.startsWith('/ui/');
  }

  /** Answers a GET/HEAD of a UI path. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end(`method ${req.method} not allowed\n`);
      return;
    }
    const slashed = PAGE_SLASHED.exec(path)?.[1];
    if (slashed !== undefined) {
      // The page's own path, its query kept; not the read API's 404 (or 401 behind tokens).
      const query = req.url?.indexOf('?') ?? -1;
      res.writeHead(301, { ...SECURITY_HEADERS, location: slashed + (query < 0 ? '' : req.url!.slice(query)), 'content-type': 'text/plain; charset=utf-8' });
      res.end();
      return;
    }
    // Another build's name: the shell came from a pod of another version (a rolling update, behind
    // a Service or an Ingress that spreads requests over the pods) and this one is asked for its
    // assets. This build's are answered, not cached under that name (no-cache): a 404 left the
    // page blank at every load that the two requests took to different pods.
    const other = this.assets.has(path) ? undefined : ANY_BUILD_ASSET.exec(path)?.[1];
    const found = PAGE.test(path) ? this.shell : (this.assets.get(path) ?? (other === undefined ? undefined : other.startsWith('app.') ? this.script : this.style));
    if (!found) {
      res.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
      res.end(`no UI file ${path}\n`);
      return;
    }
    // The shell revalidates (it names the current assets); assets never change under a name (their own).
    const cache = found === this.shell || other !== undefined ? 'no-cache' : 'public, max-age=31536000, immutable';
    const headers = { ...SECURITY_HEADERS, 'content-type': found.type, 'cache-control': cache, etag: found.etag };
    if (req.headers['if-none-match'] === found.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': found.body.length });
    res.end(req.method === 'HEAD' ? undefined : found.body);
  }
}
