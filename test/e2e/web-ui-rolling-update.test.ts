// The web UI behind a Service or an Ingress over pods of two versions (a rolling update, or one
// stuck half way): the page shell comes from one pod and its script and stylesheet, requested
// apart, from another. Their names are content-hashed, so the other version's pod knew neither
// and answered 404: the page stayed at "Loading…" (or unstyled) for every load whose requests the
// balancer spread. The other version is a copy of the sources whose browser code differs.
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startCollector, type TestCollector } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

/** The script and stylesheet a page shell names. */
async function assetsOf(queryUrl: string): Promise<{ js: string; css: string }> {
  const html = await (await fetch(queryUrl + '/')).text();
  return { js: /src="(\/ui\/app\.[\w-]+\.js)"/.exec(html)![1]!, css: /href="(\/ui\/style\.[\w-]+\.css)"/.exec(html)![1]! };
}

describe('web UI over pods of two versions', () => {
  let current: TestCollector;
  let other: { url: string; stop(): Promise<void>; output(): string };

  beforeAll(async () => {
    current = await startCollector();
    // Another build: the same sources with a browser script changed (a comment is enough to change its hash).
    const dir = tempDir('tracehouse-other-build-');
    for (const p of ['src', 'proto', 'package.json']) cpSync(join(ROOT, p), join(dir, p), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    appendFileSync(join(dir, 'src/query/ui/browser/app.ts'), '\n// another build\n');
    appendFileSync(join(dir, 'src/query/ui/browser/style.css'), '\n/* another build */\n');
    const child = spawn(process.execPath, [join(dir, 'src/cli.ts'), '--storage.backend=memory', '--receiver.grpc.enabled=false', '--receiver.http.enabled=false', '--query.listen=127.0.0.1:0', '--ops.listen=127.0.0.1:0', '--workers.threads=1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const port = await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`the other build exited: ${out}`);
      return /"port":(\d+),"msg":"read API listening"/.exec(out)?.[1];
    }, 20_000, 'the other build listening');
    other = {
      url: `http://127.0.0.1:${port}`,
      output: () => out,
      stop: async () => {
        if (child.exitCode === null) child.kill('SIGTERM');
        await exited;
      },
    };
  }, 60_000);

  afterAll(async () => {
    await other?.stop();
    await current?.stop();
  });

  it("answers the script and stylesheet another version's page names, uncached under that name", async () => {
    const mine = await assetsOf(current.queryUrl);
    const theirs = await assetsOf(other.url);
    expect(theirs.js).not.toBe(mine.js);
    expect(theirs.css).not.toBe(mine.css);
    // Both ways: the page from either pod, its files from the other.
    for (const [page, pod] of [[theirs, current.queryUrl], [mine, other.url]] as const) {
      const script = await fetch(pod + page.js);
      expect(script.status).toBe(200);
      expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      // Not kept for a year under a name whose content it is not.
      expect(script.headers.get('cache-control')).toBe('no-cache');
      expect(await script.text()).toContain("document.getElementById('app')");
      const style = await fetch(pod + page.css);
      expect(style.status).toBe(200);
      expect(style.headers.get('content-type')).toBe('text/css; charset=utf-8');
      expect(style.headers.get('cache-control')).toBe('no-cache');
    }
    // Its own names are still cached for good, and other paths under /ui/ are still 404.
    expect((await fetch(current.queryUrl + mine.js)).headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await fetch(current.queryUrl + '/ui/app.nothing.js')).status).toBe(404);
    expect((await fetch(current.queryUrl + '/ui/app.0123456789ab.css')).status).toBe(404);
  });
});
