// Debian's Chromium driven by puppeteer-core, for the web UI's browser tests: never a browser
// that downloads itself (TRACEHOUSE_CHROMIUM names another binary).
import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

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
