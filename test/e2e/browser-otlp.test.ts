// Real user monitoring: a page on another origin than the collector (another port) sends spans and
// log records with the real OpenTelemetry browser exporters (fetch with keepalive, so through a CORS
// preflight) and with navigator.sendBeacon, in headless Chromium, to a collector with
// receiver.http.corsAllowedOrigins set. Each test is bounded to a few seconds.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Rum, RumSetup } from '../fixtures/browser-rum/page.ts';
import { launchChromium } from '../helpers/browser.ts';
import { eventually, getJson, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { bundleRumScript, serveRumPage, type RumSite } from '../helpers/rum-page.ts';
import { tempDir } from '../helpers/tmp.ts';

// Run in the page by page.evaluate.
declare const rum: Rum;
declare const navigator: { sendBeacon(url: string, body: unknown): boolean };
declare const Blob: new (parts: string[], o: { type: string }) => unknown;

let site: RumSite;
let browser: Browser;

beforeAll(async () => {
  site = await serveRumPage(await bundleRumScript());
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await site?.close();
});

/** Runs body on a fresh page of the site, its exporters set up; the page is closed after. */
async function onPage(setup: RumSetup, body: (page: Page) => Promise<void>): Promise<void> {
  const page = await browser.newPage();
  try {
    await page.goto(site.origin + '/', { waitUntil: 'load' });
    await page.evaluate((s) => rum.setup(s), setup);
    await body(page);
  } finally {
    await page.close();
  }
}

async function storedSpanNames(c: TestCollector, traceId: string): Promise<string[]> {
  const r = await getJson(c.queryUrl, `/v1/traces/${traceId}`);
  return r.body?.resourceSpans?.flatMap((rs: { scopeSpans: { spans: { name: string }[] }[] }) => rs.scopeSpans.flatMap((s) => s.spans.map((sp) => sp.name))) ?? [];
}

/** The span names stored for a trace, once there are any (within 5 s). */
const storedOnce = (c: TestCollector, traceId: string): Promise<string[]> =>
  eventually(async () => {
    const names = await storedSpanNames(c, traceId);
    return names.length > 0 ? names : undefined;
  }, 5000, `spans of ${traceId}`);

/** OTLP/JSON of one span, as a hand-written RUM script beacons it. */
function spanJson(traceId: string, name: string): string {
  const now = BigInt(Date.now()) * 1_000_000n;
  const span = { traceId, spanId: randomBytes(8).toString('hex'), name, kind: 1, startTimeUnixNano: now.toString(), endTimeUnixNano: (now + 1000n).toString() };
  return JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'web' } }] }, scopeSpans: [{ spans: [span] }] }] });
}

const refused = (c: TestCollector, reason: string) => metricValue(c.opsUrl, 'tracehouse_receiver_refused_requests_total', { transport: 'http', reason });

describe('a page on an allowed origin', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector({ 'receiver.http.corsAllowedOrigins': site.origin });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('exports a span and a log record with the browser exporters, through the preflight', async () => {
    await onPage({ base: c.httpUrl, service: 'web' }, async (page) => {
      const span = await page.evaluate(() => rum.span('click'));
      expect(span).toEqual({ traceId: span.traceId, ok: true });
      expect(await storedOnce(c, span.traceId)).toEqual(['click']);
      expect(await page.evaluate(() => rum.log('page loaded'))).toEqual({ ok: true });
      await eventually(async () => {
        const r = await getJson(c.queryUrl, '/v1/logs?service=web');
        return JSON.stringify(r.body).includes('page loaded') ? true : undefined;
      }, 5000, 'the log record');
    });
  });

  it('sends what is batched when the page goes away (the batch processor flushes when the page is hidden)', async () => {
    await onPage({ base: c.httpUrl, service: 'web' }, async (page) => {
      const traceId = await page.evaluate(() => rum.pendingSpan('leaving'));
      await page.goto(site.origin + '/away', { waitUntil: 'load' });
      expect(await storedOnce(c, traceId)).toEqual(['leaving']);
    });
  });

  it('stores an OTLP/JSON beacon (navigator.sendBeacon of an application/json Blob, sent with credentials)', async () => {
    await onPage({ base: c.httpUrl, service: 'web' }, async (page) => {
      const traceId = randomBytes(16).toString('hex');
      const queued = await page.evaluate((url, body) => navigator.sendBeacon(url, new Blob([body], { type: 'application/json' })), `${c.httpUrl}/v1/traces`, spanJson(traceId, 'beacon'));
      expect(queued).toBe(true);
      expect(await storedOnce(c, traceId)).toEqual(['beacon']);
    });
  });

  it('refuses a beacon of a string (text/plain) with 415, counted: the page never learns it', async () => {
    await onPage({ base: c.httpUrl, service: 'web' }, async (page) => {
      const before = await refused(c, 'unsupported_media_type');
      const traceId = randomBytes(16).toString('hex');
      expect(await page.evaluate((url, body) => navigator.sendBeacon(url, body), `${c.httpUrl}/v1/traces`, spanJson(traceId, 'text'))).toBe(true);
      await eventually(async () => ((await refused(c, 'unsupported_media_type')) === before + 1 ? true : undefined), 5000, 'the 415 counted');
      expect(await storedSpanNames(c, traceId)).toEqual([]);
    });
  });
});

describe('a page on an allowed origin, the collector behind tokens', () => {
  const TOKEN = 'rum-ingest-' + randomBytes(12).toString('hex');
  let c: TestCollector;
  beforeAll(async () => {
    const file = join(tempDir('tracehouse-rum-auth-'), 'tokens.yaml');
    writeFileSync(file, `tokens:\n  - token: "${TOKEN}"\n    tenant: default\n    scopes: [ingest, read]\n`);
    c = await startCollector({ 'receiver.http.corsAllowedOrigins': site.origin, 'auth.tokensFile': file });
  });
  afterAll(async () => {
    await c?.stop();
  });

  async function stored(traceId: string): Promise<string[]> {
    return eventually(async () => {
      const r = await fetch(`${c.queryUrl}/v1/traces/${traceId}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const text = await r.text();
      return r.status === 200 ? (JSON.parse(text).resourceSpans.flatMap((rs: { scopeSpans: { spans: { name: string }[] }[] }) => rs.scopeSpans.flatMap((s) => s.spans.map((sp) => sp.name))) as string[]) : undefined;
    }, 5000, `spans of ${traceId}`);
  }

  it('stores what the exporter sends with an Authorization bearer token (allowed by the preflight)', async () => {
    await onPage({ base: c.httpUrl, service: 'web', headers: { Authorization: `Bearer ${TOKEN}` } }, async (page) => {
      const span = await page.evaluate(() => rum.span('with token'));
      expect(span.ok).toBe(true);
      expect(await stored(span.traceId)).toEqual(['with token']);
    });
  });

  it('answers an export without a token 401, which the exporter sees and does not retry', async () => {
    await onPage({ base: c.httpUrl, service: 'web' }, async (page) => {
      const before = await refused(c, 'unauthenticated');
      const span = await page.evaluate(() => rum.span('no token'));
      expect(span.ok).toBe(false);
      expect(span.error).toMatch(/non-retryable status 401/);
      expect(await refused(c, 'unauthenticated')).toBe(before + 1);
    });
  });
});

describe('a page on an origin not in receiver.http.corsAllowedOrigins', () => {
  let c: TestCollector;
  const lines: { msg: string; origin?: string }[] = [];
  beforeAll(async () => {
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    c = await startCollector({ 'receiver.http.corsAllowedOrigins': 'https://app.example.com' }, { logger });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("refuses the exporter's preflight, which the exporter sees as a network error; counted and logged, nothing stored", async () => {
    const before = await refused(c, 'origin_not_allowed');
    await onPage({ base: c.httpUrl, service: 'web', timeoutMillis: 1500 }, async (page) => {
      const span = await page.evaluate(() => rum.span('elsewhere'));
      expect(span.ok).toBe(false);
      expect(span.error).toMatch(/Failed to fetch/);
      // The exporter retries a network error until its timeout: each attempt's preflight is refused.
      expect(await refused(c, 'origin_not_allowed')).toBeGreaterThan(before);
      expect(await storedSpanNames(c, span.traceId)).toEqual([]);
      const line = lines.find((l) => l.origin === site.origin);
      expect(line?.msg).toMatch(/receiver\.http\.corsAllowedOrigins/);
    });
  });
});
