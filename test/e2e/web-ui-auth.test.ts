// The web UI with auth.tokensFile set, in headless Chromium: the page loads without a token, asks
// for a read token on its first 401, and then shows only that token's tenant's services.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.ts';
import { eventually, startCollector, type TestCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { tempDir } from '../helpers/tmp.ts';

// Functions passed to page.evaluate run in the browser.
declare const document: { querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> };

const ACME = 'acme-token-' + randomBytes(8).toString('hex');
const GLOBEX = 'globex-token-' + randomBytes(8).toString('hex');
const INGEST_ONLY = 'ingest-token-' + randomBytes(8).toString('hex');

async function send(c: TestCollector, token: string, service: string): Promise<void> {
  const now = BigInt(Date.now()) * 1_000_000n;
  const body = encodeTraces({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [{ spans: [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'op', startTimeUnixNano: now.toString(), endTimeUnixNano: (now + 1000n).toString() }] }],
      },
    ],
  });
  const r = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${token}` } });
  expect(r.status).toBe(200);
}

describe('web UI behind tokens', () => {
  let c: TestCollector;
  let browser: Browser;

  beforeAll(async () => {
    const file = join(tempDir('tracehouse-ui-auth-'), 'tokens.yaml');
    writeFileSync(file, `tokens:\n  - token: "${ACME}"\n    tenant: acme\n    scopes: [ingest, read]\n  - token: "${GLOBEX}"\n    tenant: globex\n    scopes: [ingest, read]\n  - token: "${INGEST_ONLY}"\n    tenant: acme\n    scopes: [ingest]\n`);
    c = await startCollector({ 'auth.tokensFile': file });
    await send(c, ACME, 'acme-shop');
    await send(c, GLOBEX, 'globex-shop');
    await eventually(async () => {
      const r = await fetch(`${c.queryUrl}/api/services`, { headers: { authorization: `Bearer ${ACME}` } });
      return ((await r.json()) as { data: string[] }).data.includes('acme-shop') ? true : undefined;
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await c?.stop();
  });

  it("asks for a read token once and lists only that tenant's services", async () => {
    const page = await browser.newPage();
    const prompts: string[] = [];
    page.on('dialog', (d) => {
      prompts.push(d.message());
      void d.accept(ACME);
    });
    await page.goto(c.queryUrl + '/', { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
    const services = await page.evaluate(() => Array.from(document.querySelectorAll('select[name=service] option'), (o) => o.textContent));
    expect(services).toContain('acme-shop');
    expect(services).not.toContain('globex-shop');
    // Later calls in the tab reuse the token: no second prompt.
    await page.goto(c.queryUrl + '/logs', { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
    expect(prompts).toEqual(['This Tracehouse needs a read token:']);
    await page.close();
  });

  it('says how to give a token after its prompt was dismissed, not only the API\'s Authorization header', async () => {
    const page = await browser.newPage();
    page.on('dialog', (d) => void d.dismiss());
    await page.goto(c.queryUrl + '/', { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#app .error', { timeout: 15_000 });
    const shown = await page.evaluate(() => Array.from(document.querySelectorAll('#app .error'), (e) => e.textContent ?? '').join(' '));
    expect(shown).toMatch(/read token/);
    expect(shown).toMatch(/reload the page/i);
    await page.close();
  });

  it('asks again after a token without the read scope, instead of keeping it for the tab', async () => {
    const page = await browser.newPage();
    const answers = [INGEST_ONLY, ACME];
    const prompts: string[] = [];
    page.on('dialog', (d) => {
      prompts.push(d.message());
      void d.accept(answers.shift() ?? '');
    });
    await page.goto(c.queryUrl + '/', { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
    expect(await page.evaluate(() => Array.from(document.querySelectorAll('select[name=service] option'), (o) => o.textContent))).toContain('acme-shop');
    expect(prompts).toEqual(['This Tracehouse needs a read token:', 'That token does not have the read scope. Read token:']);
    await page.close();
  });

  it('takes a token pasted with its "Bearer ", or as the whole header, from a curl line', async () => {
    for (const pasted of [`  Bearer ${GLOBEX} `, `Authorization: Bearer ${GLOBEX}`]) {
      const page = await browser.newPage();
      const prompts: string[] = [];
      page.on('dialog', (d) => {
        prompts.push(d.message());
        void d.accept(prompts.length === 1 ? pasted : '');
      });
      await page.goto(c.queryUrl + '/', { waitUntil: 'domcontentloaded' });
      await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
      expect(await page.evaluate(() => Array.from(document.querySelectorAll('select[name=service] option'), (o) => o.textContent)), pasted).toContain('globex-shop');
      expect(prompts, pasted).toEqual(['This Tracehouse needs a read token:']);
      await page.close();
    }
  });
});
