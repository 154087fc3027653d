// Debian's Chromium driven by puppeteer-core, for the web UI's browser tests: never a browser
// that downloads itself (TRACEHOUSE_CHROMIUM names another binary).
import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { startCollector, type TestCollector } from './collector.ts';

export const CHROMIUM = process.env['TRACEHOUSE_CHROMIUM'] ?? '/usr/bin/chromium';

/** Headless Chromium; fails saying how to get it when it is missing. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set TRACEHOUSE_CHROMIUM)`);
  return puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** A page of the size the tests and the README's screenshots are made at. */
export async function uiPage(browser: Browser): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  return page;
}

/**
 * A collector on the memory store and a Chromium page, started before a describe's tests and
 * stopped after them (its beforeAll and afterAll); set hands them to the describe. Returns
 * ready(path): the page at a UI path once the app says it is ready.
 */
export function memoryStoreUi(set: (ui: { c: TestCollector; page: Page }) => void): (path: string) => Promise<void> {
  let c: TestCollector | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'memory' });
    browser = await launchChromium();
    page = await uiPage(browser);
    set({ c, page });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await c?.stop();
  });
  return async (path) => {
    await page!.goto(c!.queryUrl + path, { waitUntil: 'domcontentloaded' });
    await page!.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
  };
}

/** Posts an OTLP/JSON request to the collector's OTLP/HTTP receiver, which must take it whole. */
export async function postOtlpJson(c: TestCollector, signal: 'traces' | 'logs', body: unknown): Promise<void> {
  const r = await fetch(`${c.httpUrl}/v1/${signal}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  expect(r.status).toBe(200);
}
