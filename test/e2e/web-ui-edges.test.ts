// The web UI in headless Chromium (Debian's, through puppeteer-core) against the data and the
// hands a user brings: skewed clocks, parent cycles, deep and wide traces, quoted tags, a slow
// store, the keyboard, and a token pasted with characters no header can carry.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type HTTPRequest, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, memoryStoreUi } from '../helpers/browser.ts';
import { eventually, startCollector, type TestCollector } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

declare const document: any;

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const str = (key: string, v: string) => ({ key, value: { stringValue: v } });
const now = BigInt(Date.now()) * 1_000_000n;
const span = (traceId: string, spanId: string, parentSpanId: string, name: string, startNs: bigint, durNs: bigint, extra: Record<string, unknown> = {}) => ({
  traceId, spanId, parentSpanId, name, kind: 1, startTimeUnixNano: String(startNs), endTimeUnixNano: String(startNs + durNs), ...extra,
});

/**
 * A trace of a root span and n - 1 children named `step 1` to `step n-1`, a millisecond apart and
 * half a millisecond long each; extra(i): a child's other fields.
 */
function flatTrace(traceId: string, n: number, rootName: string, rootNs: bigint, extra: (i: number) => Record<string, unknown> = () => ({})): ReturnType<typeof span>[] {
  const root = hex(8);
  const spans = [span(traceId, root, '', rootName, now, rootNs)];
  for (let i = 1; i < n; i++) spans.push(span(traceId, hex(8), root, `step ${i}`, now + BigInt(i) * 1_000_000n, 500_000n, extra(i)));
  return spans;
}

async function send(c: TestCollector, service: string, spans: ReturnType<typeof span>[], token?: string): Promise<void> {
  const body = { resourceSpans: [{ resource: { attributes: [str('service.name', service)] }, scopeSpans: [{ scope: { name: 'ui-edges' }, spans }] }] };
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  expect((await fetch(c.httpUrl + '/v1/traces', { method: 'POST', body: JSON.stringify(body), headers })).status).toBe(200);
  for (const traceId of new Set(spans.map((s) => s.traceId))) {
    const n = spans.filter((s) => s.traceId === traceId).length;
    await eventually(async () => {
      const r = await fetch(`${c.queryUrl}/v1/traces/${traceId}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      if (r.status !== 200) return undefined;
      const d = (await r.json()) as any;
      return d.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)).length >= n ? true : undefined;
    });
  }
}


describe('web UI: odd data and odd hands', () => {
  let c: TestCollector;
  let page: Page;
  const ready = memoryStoreUi((ui) => ({ c, page } = ui));

  it('clock skew: an event stamped 1.5 ms before its span starts reads as a duration, not raw nanoseconds', async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    await send(c, 'ui-skew', [span(traceId, spanId, '', 'skewed', now, 5_000_000n, { events: [{ timeUnixNano: String(now - 1_500_000n), name: 'early.event', attributes: [] }] })]);
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${spanId}"]`);
    await page.waitForFunction(() => document.querySelector('.details')?.textContent?.includes('early.event'));
    const text = await page.$eval('.events li', (e) => e.textContent ?? '');
    expect(text).not.toContain('1500000 ns');
    expect(text).toContain('1.50 ms');
  });

  it('clock skew: a span whose end is stamped before its start still has its bar inside the time axis', async () => {
    const traceId = hex(16);
    const [root, late] = [hex(8), hex(8)];
    await send(c, 'ui-negative', [
      span(traceId, root, '', 'root', now, 10_000_000n),
      // Ends 5 ms before it starts (a skewed clock), starting after every other span ends.
      { ...span(traceId, late, root, 'skewed child', now + 20_000_000n, 0n), endTimeUnixNano: String(now + 15_000_000n) },
    ]);
    await ready(`/trace/${traceId}`);
    const box = await page.$eval(`.row[data-span-id="${late}"]`, (r: any) => {
      const lane = r.querySelector('.lane').getBoundingClientRect();
      const bar = r.querySelector('.bar').getBoundingClientRect();
      return { laneLeft: lane.left, laneRight: lane.right, barLeft: bar.left, barRight: bar.right };
    });
    expect(box.barLeft).toBeGreaterThanOrEqual(box.laneLeft);
    expect(box.barRight).toBeLessThanOrEqual(box.laneRight + 1);
  });

  it('clock skew: a span whose end is stamped before its start says so in its details, not a plain "0 ns"', async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    await send(c, 'ui-negative-details', [{ ...span(traceId, spanId, '', 'skewed', now, 0n), endTimeUnixNano: String(now - 5_000_000n) }]);
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${spanId}"]`);
    await page.waitForFunction((want: string) => document.querySelector('.details .facts')?.textContent?.includes(want), {}, spanId);
    const duration = await page.$$eval('.details .facts dt', (dts: any[]) => dts.find((d) => d.textContent === 'Duration').nextElementSibling.textContent);
    expect(duration).toContain('5.00 ms before');
  });

  it('a span whose end was never stamped (0) says so, not that its clock is decades skewed', async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    await send(c, 'ui-unended-details', [{ ...span(traceId, spanId, '', 'unended', now, 0n), endTimeUnixNano: '0' }]);
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${spanId}"]`);
    await page.waitForFunction((want: string) => document.querySelector('.details .facts')?.textContent?.includes(want), {}, spanId);
    const duration = await page.$$eval('.details .facts dt', (dts: any[]) => dts.find((d) => d.textContent === 'Duration').nextElementSibling.textContent);
    expect(duration).not.toContain('clock skew');
    expect(duration).toContain('no end time');
  });

  it('a span cut out of a parent cycle does not claim its stored parent is "not stored"', async () => {
    const traceId = hex(16);
    const [a, b] = [hex(8), hex(8)];
    await send(c, 'ui-cycle', [span(traceId, a, b, 'a', now, 2_000_000n), span(traceId, b, a, 'b', now + 1000n, 1_000_000n)]);
    await ready(`/trace/${traceId}`);
    for (const id of [a, b]) {
      await page.click(`.row[data-span-id="${id}"]`);
      await page.waitForFunction((want: string) => document.querySelector('.details .facts')?.textContent?.includes(want), {}, id);
      const parent = await page.$$eval('.details .facts dt', (dts: any[]) => dts.find((d) => d.textContent === 'Parent').nextElementSibling.textContent);
      expect(parent).not.toContain('not stored');
    }
  });

  it('span details: a multi-line attribute (an exception event\'s stack trace, an SQL statement) or status message is shown with its line breaks', async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    const stack = 'java.lang.IllegalStateException: closed\n\tat com.shop.Cart.add(Cart.java:42)\n\tat com.shop.Api.post(Api.java:7)';
    const sql = 'SELECT id\nFROM orders\nWHERE id = ?';
    await send(c, 'ui-multiline-attrs', [span(traceId, spanId, '', 'query', now, 1_000_000n, {
      attributes: [str('db.statement', sql)],
      status: { code: 2, message: 'closed\nat Cart.add' },
      events: [{ timeUnixNano: String(now + 1000n), name: 'exception', attributes: [str('exception.stacktrace', stack)] }],
    })]);
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${spanId}"]`);
    await page.waitForSelector('.details .events table.kv td');
    // innerText is the text as laid out: the lines a user reads.
    expect(await page.$eval('.details .events table.kv td', (e: any) => e.innerText)).toBe(stack);
    expect(await page.$eval('.details > table.kv td', (e: any) => e.innerText)).toBe(sql);
    expect(await page.$$eval('.details .facts dt', (dts: any[]) => dts.find((d) => d.textContent === 'Status').nextElementSibling.innerText)).toBe('error: closed\nat Cart.add');
  });

  it('span details: a long message, a stack trace\'s line and the start\'s offset wrap between words, not inside one', async () => {
    const traceId = hex(16);
    const root = hex(8);
    const spanId = hex(8);
    const line = 'PaymentError: card declined by the issuing bank: insufficient funds on the account';
    await send(c, 'ui-wrap-words', [span(traceId, root, '', 'checkout', now, 200_000_000n), span(traceId, spanId, root, 'charge', now + 125_000_000n, 1_000_000n, {
      events: [{ timeUnixNano: String(now + 125_500_000n), name: 'exception', attributes: [str('exception.stacktrace', `${line}\n    at charge (pay.js:40:34)`)] }],
    })]);
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${spanId}"]`);
    await page.waitForSelector('.details .events table.kv td');
    // The words drawn on more than one line: a word broken in two ("decline" / "d:").
    const broken = (sel: string) =>
      page.$eval(sel, (el: any) => {
        const doc = el.ownerDocument;
        const walker = doc.createTreeWalker(el, 4);
        const out: string[] = [];
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          for (const m of (n.textContent as string).matchAll(/\S+/g)) {
            const r = doc.createRange();
            r.setStart(n, m.index);
            r.setEnd(n, m.index + m[0].length);
            const tops = new Set([...r.getClientRects()].map((b: any) => Math.round(b.top)));
            if (tops.size > 1) out.push(m[0]);
          }
        }
        return out;
      });
    expect(await broken('.details .events table.kv td')).toEqual([]);
    expect(await page.$$eval('.details .facts dt', (dts: any[]) => dts.find((d) => d.textContent === 'Start').nextElementSibling.textContent)).toContain('(+125.00 ms)');
    expect(await broken('.details .facts dd:nth-of-type(5)')).toEqual([]);
  });

  it('span details: what the sender dropped (SDK attribute, event and link limits) and the scope\'s attributes are shown, as the Jaeger API names them', async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    const body = {
      resourceSpans: [{
        resource: { attributes: [str('service.name', 'ui-dropped')], droppedAttributesCount: 2 },
        scopeSpans: [{
          scope: { name: 'io.shop.cart', version: '1.2', attributes: [str('library.flavour', 'vanilla')] },
          spans: [span(traceId, spanId, '', 'add to cart', now, 1_000_000n, {
            attributes: [str('cart.id', '42')], droppedAttributesCount: 72,
            events: [{ timeUnixNano: String(now + 1000n), name: 'retry', attributes: [], droppedAttributesCount: 3 }], droppedEventsCount: 128,
            droppedLinksCount: 5,
          })],
        }],
      }],
    };
    expect((await fetch(c.httpUrl + '/v1/traces', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })).status).toBe(200);
    await eventually(async () => ((await fetch(`${c.queryUrl}/v1/traces/${traceId}`)).status === 200 ? true : undefined));
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${spanId}"]`);
    await page.waitForFunction(() => document.querySelector('.details')?.textContent?.includes('add to cart'));
    const text: string = await page.$eval('.details', (e: any) => e.innerText);
    expect(text).toMatch(/Attributes \(1, 72 dropped by the sender\)/i);
    expect(text).toMatch(/Events \(1, 128 dropped by the sender\)/i);
    expect(text).toMatch(/Links \(0, 5 dropped by the sender\)/i);
    expect(text).toContain('3 attributes dropped by the sender');
    expect(text).toMatch(/Resource \(2 attributes dropped by the sender\)/i);
    expect(text).toContain('library.flavour');
    expect(text).toContain('vanilla');
  });

  it('a window made taller shows the waterfall rows that come into view, not blank space', async () => {
    const traceId = hex(16);
    const root = hex(8);
    await send(c, 'ui-resize', [span(traceId, root, '', 'root', now, 100_000_000n), ...Array.from({ length: 99 }, (_, i) => span(traceId, hex(8), root, `child-${i}`, now + BigInt(i + 1) * 1000n, 1_000_000n))]);
    await ready(`/trace/${traceId}`);
    try {
      await page.setViewport({ width: 1280, height: 1800 });
      const look = (v: any) => {
        const shown = new Set([...v.querySelectorAll('.row')].map((r: any) => Number(r.dataset.index)));
        const inView = Math.ceil(v.clientHeight / 24);
        return { inView, missing: Array.from({ length: inView }, (_, i) => i).filter((i) => !shown.has(i)) };
      };
      // The page paints the new rows on the frame after its ResizeObserver fires; a loaded machine
      // can take longer than the fixed 300 ms this waited. Wait (up to 10 s) for a taller view with
      // every row in it painted, then look once more: rows never painted still fail below.
      await page
        .waitForFunction(`(${look.toString()})(document.querySelector('.rows')).inView > 60 && (${look.toString()})(document.querySelector('.rows')).missing.length === 0`, { timeout: 10_000 })
        .catch(() => undefined);
      const view = await page.$eval('.rows', look);
      expect(view.inView).toBeGreaterThan(60);
      expect(view.missing).toEqual([]);
    } finally {
      await page.setViewport({ width: 1280, height: 800 });
    }
  });

  it('many services: every service of a trace gets its own colour (the OpenTelemetry demo\'s checkout trace)', async () => {
    const traceId = hex(16);
    const root = hex(8);
    // Services of the demo's checkout; cart and fraud-detection, accounting and orders hash to the same hue.
    const services = ['frontend', 'checkout', 'cart', 'payment', 'currency', 'shipping', 'email', 'accounting', 'orders', 'fraud-detection'];
    await send(c, services[0]!, [span(traceId, root, '', 'POST /api/checkout', now, 50_000_000n)]);
    for (const [i, svc] of services.slice(1).entries()) await send(c, svc, [span(traceId, hex(8), root, `${svc}-call`, now + BigInt(i + 1) * 1_000_000n, 1_000_000n)]);
    await eventually(async () => {
      const d = (await (await fetch(`${c.queryUrl}/v1/traces/${traceId}`)).json()) as any;
      return d.resourceSpans.length === services.length ? true : undefined;
    });
    await ready(`/trace/${traceId}`);
    const hues = await page.$$eval('.legend li', (lis: any[]) => lis.map((li) => [li.textContent, Number(li.style.getPropertyValue('--hue'))]));
    expect(hues.map(([s]) => s).sort()).toEqual([...services].sort());
    // Hues closer than 15 degrees read as one colour.
    const close: string[] = [];
    for (const [i, [a, ha]] of hues.entries()) {
      for (const [b, hb] of hues.slice(i + 1)) {
        const d = Math.abs(Number(ha) - Number(hb)) % 360;
        if (Math.min(d, 360 - d) < 15) close.push(`${a}/${b}`);
      }
    }
    expect(close).toEqual([]);
    const rowHues = await page.$$eval('.row', (rows: any[]) => rows.map((r) => [r.querySelector('.svc').textContent, Number(r.style.getPropertyValue('--hue'))]));
    for (const [svc, hue] of rowHues) expect(hue, svc).toBe(Object.fromEntries(hues)[svc]);
  });

  it('200 services: the legend does not push the waterfall below the first screen', async () => {
    const traceId = hex(16);
    const root = hex(8);
    const resourceSpans = Array.from({ length: 200 }, (_, i) => ({
      resource: { attributes: [str('service.name', `inventory-service-${i}`)] },
      scopeSpans: [{ scope: { name: 'ui-edges' }, spans: [i === 0 ? span(traceId, root, '', 'fan-out', now, 10_000_000n) : span(traceId, hex(8), root, `call-${i}`, now + BigInt(i) * 10_000n, 1_000_000n)] }],
    }));
    expect((await fetch(c.httpUrl + '/v1/traces', { method: 'POST', body: JSON.stringify({ resourceSpans }), headers: { 'content-type': 'application/json' } })).status).toBe(200);
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/traces/${traceId}`)).json()) as any).resourceSpans?.length === 200 ? true : undefined));
    await ready(`/trace/${traceId}`);
    // At least ten rows of the span tree in view on an 800 px screen, as with a few services.
    const top = await page.$eval('.rows', (e: any) => e.getBoundingClientRect().top);
    expect(800 - top).toBeGreaterThan(10 * 24);
  });

  it('a span that names itself as its parent does not claim its parent is "not stored"', async () => {
    const traceId = hex(16);
    const self = hex(8);
    await send(c, 'ui-self-parent', [span(traceId, self, self, 'own parent', now, 1_000_000n)]);
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${self}"]`);
    await page.waitForFunction((want: string) => document.querySelector('.details .facts')?.textContent?.includes(want), {}, self);
    const parent = await page.$$eval('.details .facts dt', (dts: any[]) => dts.find((d) => d.textContent === 'Parent').nextElementSibling.textContent);
    expect(parent).not.toContain('not stored');
    expect(parent).toContain('cycle');
  });

  it('a span under a parent cycle stays nested under its stored parent, not cut out as a root of the cycle', async () => {
    const traceId = hex(16);
    const [root, child, a, b] = [hex(8), hex(8), hex(8), hex(8)];
    // The child's service is listed first (its root starts first); its parent a is in a cycle with b.
    await send(c, 'ui-under-cycle-x', [span(traceId, root, '', 'x root', now, 5_000_000n), span(traceId, child, a, 'under a', now + 3_000_000n, 1_000_000n)]);
    await send(c, 'ui-under-cycle-y', [span(traceId, a, b, 'a', now + 1_000_000n, 3_000_000n), span(traceId, b, a, 'b', now + 2_000_000n, 1_000_000n)]);
    await eventually(async () => {
      const d = (await (await fetch(`${c.queryUrl}/v1/traces/${traceId}`)).json()) as any;
      return d.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)).length === 4 ? true : undefined;
    });
    await ready(`/trace/${traceId}`);
    const level = (id: string) => page.$eval(`.row[data-span-id="${id}"]`, (r: any) => Number(r.getAttribute('aria-level')));
    expect(await level(child)).toBe((await level(a)) + 1);
    await page.click(`.row[data-span-id="${child}"]`);
    await page.waitForFunction((want: string) => document.querySelector('.details .facts')?.textContent?.includes(want), {}, child);
    const parent = await page.$$eval('.details .facts dt', (dts: any[]) => dts.find((d) => d.textContent === 'Parent').nextElementSibling.textContent);
    expect(parent).toBe(a);
  });

  it('a mistyped trace link shows the UI\'s error, not the server\'s raw JSON', async () => {
    for (const id of ['a'.repeat(33), 'not-a-trace']) {
      await page.goto(`${c.queryUrl}/trace/${id}`, { waitUntil: 'domcontentloaded' });
      await page.waitForSelector('#app .error', { timeout: 15_000 });
      expect(await page.$eval('#app .error', (e) => e.textContent ?? ''), id).toMatch(/400/);
      expect(await page.$('.top'), id).not.toBeNull();
    }
  });

  it('a one-span trace says "1 span · 1 service"', async () => {
    const traceId = hex(16);
    await send(c, 'ui-one', [span(traceId, hex(8), '', 'only', now, 1_000_000n)]);
    await ready(`/trace/${traceId}`);
    const meta = await page.$eval('.trace-head .meta', (e) => e.textContent ?? '');
    expect(meta).toContain(' · 1 span · 1 service · ');
  });

  it('a deep trace (40 nested spans): every row still shows its span name in the name column', async () => {
    const traceId = hex(16);
    const ids = Array.from({ length: 40 }, () => hex(8));
    await send(c, 'ui-deep', ids.map((id, i) => span(traceId, id, i === 0 ? '' : ids[i - 1]!, `call-${i}`, now + BigInt(i) * 1000n, 1_000_000n - BigInt(i) * 1000n)));
    await ready(`/trace/${traceId}`);
    const hidden = await page.$$eval('.row', (rows: any[]) =>
      rows
        .filter((r) => {
          const name = r.querySelector('.name').getBoundingClientRect();
          const op = r.querySelector('.op').getBoundingClientRect();
          return op.left >= name.right - 20; // not even 20 px of the name in view
        })
        .map((r) => r.querySelector('.op').textContent),
    );
    expect(hidden).toEqual([]);
  });

  it('a search result with a long unbroken root span name stays inside the page', async () => {
    const traceId = hex(16);
    await send(c, 'ui-long', [span(traceId, hex(8), '', 'GET /' + 'segment/'.repeat(60) + '?q=' + 'x'.repeat(200), now, 1_000_000n)]);
    await ready('/search?service=ui-long&lookback=1h');
    const overflow = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    expect(overflow.scroll).toBeLessThanOrEqual(overflow.client);
    await ready(`/trace/${traceId}`);
    const overflow2 = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    expect(overflow2.scroll).toBeLessThanOrEqual(overflow2.client);
  });

  it('a long unbroken service name, log body and attribute stay inside the page, on the trace page and in the logs view', async () => {
    const service = 'svc-' + 'a1b2c3d4'.repeat(30);
    const traceId = hex(16);
    const spanId = hex(8);
    await send(c, service, [span(traceId, spanId, '', 'op', now, 1_000_000n)]);
    const record = { timeUnixNano: String(now), severityNumber: 9, severityText: 'INFO', body: { stringValue: 'token=' + 'Q'.repeat(400) }, attributes: [str('payload', 'Z'.repeat(400))], traceId, spanId };
    const r = await fetch(`${c.httpUrl}/v1/logs`, { method: 'POST', body: JSON.stringify({ resourceLogs: [{ resource: { attributes: [str('service.name', service)] }, scopeLogs: [{ logRecords: [record] }] }] }), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/logs?traceId=${traceId}`)).json()) as any).resourceLogs.length > 0 ? true : undefined));
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await ready(`/trace/${traceId}`);
    expect(await overflow(), 'trace page').toBeLessThanOrEqual(0);
    await ready(`/logs?traceId=${traceId}&lookback=all`);
    expect(await page.$$eval('.log-row', (els) => els.length)).toBe(1);
    expect(await overflow(), 'logs view').toBeLessThanOrEqual(0);
  });

  it('in a narrow window (a phone) the logs view stays inside the window: its table scrolls sideways on its own', async () => {
    const traceId = hex(16);
    const record = { timeUnixNano: String(now), severityNumber: 17, severityText: 'ERROR', body: { stringValue: 'charge failed: card declined' }, attributes: [str('payment.id', 'pay-1')], traceId, spanId: hex(8) };
    const r = await fetch(`${c.httpUrl}/v1/logs`, { method: 'POST', body: JSON.stringify({ resourceLogs: [{ resource: { attributes: [str('service.name', 'payment-service')] }, scopeLogs: [{ logRecords: [record] }] }] }), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/logs?traceId=${traceId}`)).json()) as any).resourceLogs.length > 0 ? true : undefined));
    await page.setViewport({ width: 390, height: 800 });
    try {
      await ready(`/logs?traceId=${traceId}&lookback=all`);
      expect(await page.$$eval('.log-row', (els) => els.length)).toBe(1);
      // The page (its header, the form) as wide as the window; not the table's 650 px.
      expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    } finally {
      await page.setViewport({ width: 1280, height: 800 });
    }
  });

  it('a log row beside a long message keeps its severity and trace link on one line each', async () => {
    const traceId = hex(16);
    const words = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' ');
    const record = { timeUnixNano: String(now), severityNumber: 13, severityText: 'WARNING', body: { stringValue: `request failed: ${words}` }, attributes: [str('http.url', 'https://example.com/' + 'segment/'.repeat(30))], traceId, spanId: hex(8) };
    const r = await fetch(`${c.httpUrl}/v1/logs`, { method: 'POST', body: JSON.stringify({ resourceLogs: [{ resource: { attributes: [str('service.name', 'checkout')] }, scopeLogs: [{ logRecords: [record] }] }] }), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/logs?traceId=${traceId}`)).json()) as any).resourceLogs.length > 0 ? true : undefined));
    await ready(`/logs?traceId=${traceId}&lookback=all`);
    // Each cell's text as drawn: the number of line boxes its words take.
    const lines = await page.$$eval('.log-row td', (els: any[]) =>
      els.map((e) => {
        const range = document.createRange();
        range.selectNodeContents(e);
        const line = parseFloat((globalThis as any).getComputedStyle(e).lineHeight) || 15;
        return Math.round(range.getBoundingClientRect().height / line);
      }),
    );
    // Time, severity, service, body, attributes, trace: the severity word and the trace link unbroken.
    expect(lines[1], 'severity').toBe(1);
    expect(lines[2], 'service').toBe(1);
    expect(lines[5], 'trace link').toBe(1);
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
  });

  it('a 100 KB span name (a whole SQL batch as the name) does not push the waterfall off the screen', async () => {
    const traceId = hex(16);
    await send(c, 'ui-huge-name', [span(traceId, hex(8), '', 'INSERT INTO t VALUES ' + '(1,2),'.repeat(17_000), now, 1_000_000n)]);
    await ready(`/trace/${traceId}`);
    // The span tree starts within the first screen (800 px high), as for a short name.
    expect(await page.$eval('.rows', (e: any) => e.getBoundingClientRect().top)).toBeLessThan(400);
    // The span's details show its facts (service, ids, duration) near the top of their pane, the name above them.
    await page.click('.row');
    await page.waitForSelector('.details .facts');
    const { pane, facts } = await page.evaluate(() => ({ pane: document.querySelector('.details').getBoundingClientRect().top, facts: document.querySelector('.details .facts').getBoundingClientRect().top }));
    expect(facts - pane).toBeLessThan(300);
  });

  it('search: a result whose root span has a 100 KB name does not push the other results off the screen', async () => {
    const [huge, small] = [hex(16), hex(16)];
    await send(c, 'ui-huge-search', [span(huge, hex(8), '', 'INSERT INTO t VALUES ' + '(1,2),'.repeat(17_000), now + 1_000n, 1_000_000n), span(small, hex(8), '', 'GET /health', now, 1_000_000n)]);
    await ready('/search?service=ui-huge-search&lookback=1h');
    expect(await page.$$eval('.trace-result', (els) => els.length)).toBe(2);
    // Newest first: the short one second, still on the first screen.
    expect(await page.$eval(`.trace-result[data-trace-id="${small}"]`, (e: any) => e.getBoundingClientRect().top)).toBeLessThan(800);
  });

  it('a duration just under a unit reads in the larger unit (1.00 s, not 1000.00 ms)', async () => {
    const traceId = hex(16);
    const root = hex(8);
    await send(c, 'ui-round', [span(traceId, root, '', 'almost a second', now, 999_999_000n), span(traceId, hex(8), root, 'almost a millisecond', now, 999_996n)]);
    await ready(`/trace/${traceId}`);
    expect(await page.$$eval('.row .bar-label', (els) => els.map((e) => e.textContent))).toEqual(['1.00 s', '1.00 ms']);
    expect(await page.$eval('.trace-head .meta', (e) => e.textContent)).toContain(' · 1.00 s · ');
  });

  it('a trace spanning days reads in days and hours, minutes in minutes and seconds (not 345600.00 s)', async () => {
    const traceId = hex(16);
    const root = hex(8);
    const day = 86_400_000_000_000n;
    await send(c, 'ui-days', [span(traceId, root, '', 'nightly batch', now - 4n * day, 4n * day), span(traceId, hex(8), root, 'step', now - 90_000_000_000n, 90_000_000_000n)]);
    await ready(`/trace/${traceId}`);
    expect(await page.$eval('.trace-head .meta', (e) => e.textContent)).toContain(' · 4d 0h · ');
    expect(await page.$$eval('.tick', (els) => els.map((e) => e.textContent))).toEqual(['0 ns', '1d 0h', '2d 0h', '3d 0h', '4d 0h']);
    expect(await page.$$eval('.row .bar-label', (els) => els.map((e) => e.textContent))).toEqual(['4d 0h', '1m 30s']);
  });

  it('tags: a value with a space can be searched, quoted', async () => {
    const traceId = hex(16);
    await send(c, 'ui-tags', [span(traceId, hex(8), '', 'lookup', now, 1_000_000n, { attributes: [str('customer.name', 'Ada Lovelace')] })]);
    await ready(`/search?service=ui-tags&lookback=1h&tags=${encodeURIComponent('customer.name="Ada Lovelace"')}`);
    expect(await page.$('.results .error')).toBeNull();
    expect(await page.$$eval('.trace-result', (els) => els.map((e) => e.getAttribute('data-trace-id')))).toEqual([traceId]);
  });

  it('operations: switching service twice quickly lists only the last service’s operations', async () => {
    await send(c, 'ui-ops-a', [span(hex(16), hex(8), '', 'op-of-a', now, 1_000_000n)]);
    await send(c, 'ui-ops-b', [span(hex(16), hex(8), '', 'op-of-b', now, 1_000_000n)]);
    await ready('/search?lookback=1h');
    await page.setRequestInterception(true);
    // The first service's operations come back late (a slow store), after the second's.
    const slow = (r: HTTPRequest) => {
      if (r.url().includes('/api/services/ui-ops-a/operations')) setTimeout(() => void r.continue(), 500);
      else void r.continue();
    };
    let lateAnswered = false;
    const finished = (r: HTTPRequest) => void (r.url().includes('/api/services/ui-ops-a/operations') && (lateAnswered = true));
    page.on('request', slow);
    page.on('requestfinished', finished);
    page.on('requestfailed', finished);
    try {
      await page.select('select[name=service]', 'ui-ops-a');
      await page.select('select[name=service]', 'ui-ops-b');
      // Not a fixed 1.5 s: on a loaded machine the second service's operations could still be on
      // their way. Wait for them, and for the late answer to have arrived, before looking.
      await page.waitForFunction(`[...document.querySelectorAll('select[name=name] option')].some((o) => o.textContent === 'op-of-b')`, { timeout: 10_000 }).catch(() => undefined);
      await eventually(async () => (lateAnswered ? true : undefined), 10_000, 'the late answer arrived');
      await new Promise((r) => setTimeout(r, 300));
      const ops = await page.$$eval('select[name=name] option', (os) => os.map((o) => o.textContent));
      expect(ops).toEqual(['All operations', 'op-of-b']);
    } finally {
      page.off('request', slow);
      page.off('requestfinished', finished);
      page.off('requestfailed', finished);
      await page.setRequestInterception(false);
    }
  });

  it('a span link opens the linked trace at the linked span, selected and in view, not at the trace\'s top', async () => {
    const target = hex(16);
    // 300 spans: the linked one, the 250th, is far below the first screen of rows.
    const spans = flatTrace(target, 300, 'batch', 400_000_000n);
    await send(c, 'ui-link-target', spans);
    const linked = spans[250]!.spanId;
    const from = hex(16);
    const job = hex(8);
    await send(c, 'ui-link-source', [span(from, job, '', 'retry job', now, 1_000_000n, { links: [{ traceId: target, spanId: linked, attributes: [] }] })]);
    await ready(`/trace/${from}`);
    await page.click(`.row[data-span-id="${job}"]`);
    await page.waitForSelector('.details .links a');
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('.details .links a')]);
    await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
    const shown = await page.evaluate(() => {
      const tree = document.querySelector('.rows').getBoundingClientRect();
      const row = document.querySelector('.row.selected');
      const box = row?.getBoundingClientRect();
      return { selected: row?.getAttribute('data-span-id'), inView: box ? box.top >= tree.top && box.bottom <= tree.bottom : false, details: document.querySelector('.details h2')?.textContent };
    });
    expect(shown).toEqual({ selected: linked, inView: true, details: 'step 250' });
    // A link to a span the trace does not hold says so, rather than leaving the reader to look for it.
    await ready(`/trace/${target}?span=${hex(8)}`);
    expect(await page.$eval('.trace-head', (e) => e.textContent)).toContain('not stored in this trace');
  });

  it('a clicked span is named in the address: a reload or a copied link opens the trace at it', async () => {
    const traceId = hex(16);
    const spans = flatTrace(traceId, 300, 'batch', 400_000_000n);
    await send(c, 'ui-span-address', spans);
    await ready(`/trace/${traceId}`);
    const picked = spans[12]!.spanId;
    await page.click(`.row[data-span-id="${picked}"]`);
    await page.waitForFunction(() => document.querySelector('.details h2')?.textContent === 'step 12');
    expect(new URL(page.url()).search).toBe(`?span=${picked}`);
    // Selected by keyboard too: the address follows.
    await page.keyboard.press('ArrowDown');
    expect(new URL(page.url()).search).toBe(`?span=${spans[13]!.spanId}`);
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.reload()]);
    await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
    expect(await page.$eval('.row.selected', (e) => e.getAttribute('data-span-id'))).toBe(spans[13]!.spanId);
    expect(await page.$eval('.details h2', (e) => e.textContent)).toBe('step 13');
  });

  it('a big trace\'s error count takes the reader to each span with an error in turn, also one under a collapsed span', async () => {
    const traceId = hex(16);
    const spans = flatTrace(traceId, 400, 'batch', 500_000_000n, (i) => (i === 150 || i === 350 ? { status: { code: 2, message: 'boom' } } : {}));
    const root = spans[0]!.spanId;
    await send(c, 'ui-next-error', spans);
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${root}"] button.toggle`);
    const selected = () =>
      page.evaluate(() => {
        const tree = document.querySelector('.rows').getBoundingClientRect();
        const box = document.querySelector('.row.selected')?.getBoundingClientRect();
        return { name: document.querySelector('.row.selected .op')?.textContent, inView: box ? box.top >= tree.top && box.bottom <= tree.bottom : false };
      });
    const visited = [];
    for (let i = 0; i < 3; i++) {
      await page.click('.trace-head .error-badge');
      visited.push(await selected());
    }
    expect(visited).toEqual([{ name: 'step 150', inView: true }, { name: 'step 350', inView: true }, { name: 'step 150', inView: true }]);
  });

  it('in a narrow window (a phone, a split screen) a clicked span\'s details show on the screen, not below it', async () => {
    const traceId = hex(16);
    const spans = flatTrace(traceId, 40, 'GET /checkout', 50_000_000n);
    await send(c, 'ui-narrow-details', spans);
    await page.setViewport({ width: 390, height: 800 });
    try {
      await ready(`/trace/${traceId}`);
      await page.click(`.row[data-span-id="${spans[3]!.spanId}"]`);
      await page.waitForFunction(() => document.querySelector('.details h2')?.textContent === 'step 3');
      // Where the details' heading is, in the window as it is (nothing scrolled by the reader).
      const top = await page.$eval('.details h2', (e) => e.getBoundingClientRect().bottom);
      expect(top).toBeLessThanOrEqual(800);
    } finally {
      await page.setViewport({ width: 1280, height: 800 });
    }
  });

  it('in a narrow window each span in the tree shows some of its operation name, not only its service\'s', async () => {
    const traceId = hex(16);
    const [a, b, d] = [hex(8), hex(8), hex(8)];
    await send(c, 'payment-service-eu', [span(traceId, a, '', 'POST /api/checkout', now, 5_000_000n), span(traceId, b, a, 'PlaceOrder', now + 1000n, 4_000_000n), span(traceId, d, b, 'Charge card', now + 2000n, 3_000_000n)]);
    await page.setViewport({ width: 390, height: 800 });
    try {
      await ready(`/trace/${traceId}`);
      // How much of each operation name is drawn inside its row's name cell.
      const shown = await page.$$eval('.row .name', (cells: any[]) => cells.map((cell) => {
        const op = cell.querySelector('.op');
        return { op: op.textContent, px: Math.round(Math.min(cell.getBoundingClientRect().right, op.getBoundingClientRect().right) - op.getBoundingClientRect().left) };
      }));
      for (const s of shown) expect(s.px, s.op).toBeGreaterThanOrEqual(40);
    } finally {
      await page.setViewport({ width: 1280, height: 800 });
    }
  });

  it('a read that gets no answer (the collector stopped or restarting) says so, not only the browser\'s "Failed to fetch"', async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    await send(c, 'ui-no-answer', [span(traceId, spanId, '', 'checkout', now, 1_000_000n)]);
    await ready(`/trace/${traceId}`);
    await page.setRequestInterception(true);
    const refuse = (r: HTTPRequest) => void (r.url().includes('/v1/logs') ? r.abort('connectionrefused') : r.continue());
    page.on('request', refuse);
    try {
      await page.click(`.row[data-span-id="${spanId}"]`);
      await page.waitForSelector('.span-logs .error');
      expect(await page.$eval('.span-logs .error', (e) => e.textContent)).toMatch(/No answer from Tracehouse at 127\.0\.0\.1:\d+: it may be stopped or restarting/);
    } finally {
      page.off('request', refuse);
      await page.setRequestInterception(false);
    }
  });

  it('a trace\'s page is titled by its root service and operation, so tabs and the history menu tell traces apart', async () => {
    const traceId = hex(16);
    await send(c, 'ui-title', [span(traceId, hex(8), '', 'POST /api/checkout', now, 1_000_000n)]);
    await ready(`/trace/${traceId}`);
    expect(await page.title()).toBe(`ui-title: POST /api/checkout · trace ${traceId.slice(0, 8)}… · Tracehouse`);
  });

  it('search and logs pages are titled by what they ask for, so tabs and the history menu tell searches apart', async () => {
    await ready(`/search?service=ui-title&name=${encodeURIComponent('POST /api/checkout')}&lookback=1h`);
    expect(await page.title()).toBe('Search traces: ui-title · POST /api/checkout · Tracehouse');
    await ready('/search');
    expect(await page.title()).toBe('Search traces · Tracehouse');
    await ready(`/logs?service=ui-title&minSeverity=13&traceId=${'ab'.repeat(16)}`);
    expect(await page.title()).toBe(`Logs: ui-title · WARN and above · ${'ab'.repeat(16)} · Tracehouse`);
  });

  it('keyboard: the span tree can be walked and a span opened without a mouse', async () => {
    const traceId = hex(16);
    const [a, b] = [hex(8), hex(8)];
    await send(c, 'ui-keys', [span(traceId, a, '', 'root', now, 2_000_000n), span(traceId, b, a, 'child', now + 1000n, 1_000_000n)]);
    await ready(`/trace/${traceId}`);
    await page.focus('.rows');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await new Promise((r) => setTimeout(r, 300));
    expect(await page.$eval('.details', (e) => e.querySelector('h2')?.textContent ?? '')).toBe('child');
  });

  it('keyboard: after a span is collapsed with the mouse, the arrow keys still walk the tree, and Tab does not stop at every toggle', async () => {
    const traceId = hex(16);
    const ids = [hex(8), hex(8), hex(8), hex(8)];
    await send(c, 'ui-toggle', [span(traceId, ids[0]!, '', 'root-op', now, 4_000_000n), span(traceId, ids[1]!, ids[0]!, 'mid-op', now + 1000n, 2_000_000n), span(traceId, ids[2]!, ids[1]!, 'leaf-op', now + 2000n, 1_000_000n), span(traceId, ids[3]!, ids[0]!, 'second-op', now + 3_000_000n, 500_000n)]);
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${ids[1]}"] button.toggle`);
    expect(await page.$$eval('.row .op', (els) => els.map((e) => e.textContent))).toEqual(['root-op', 'mid-op', 'second-op']);
    await page.keyboard.press('ArrowDown');
    await new Promise((r) => setTimeout(r, 200));
    expect(await page.$eval('.details', (e) => e.querySelector('h2')?.textContent ?? '')).toBe('root-op');
    // From the tree, Tab leaves it (the toggles are reached by the left and right keys).
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement.closest('.rows') === null)).toBe(true);
  });

  it('keyboard: left goes from a leaf (or a collapsed span) to its parent, right from an expanded span to its first child', async () => {
    const traceId = hex(16);
    const ids = [hex(8), hex(8), hex(8), hex(8)];
    await send(c, 'ui-tree-keys', [span(traceId, ids[0]!, '', 'root-op', now, 4_000_000n), span(traceId, ids[1]!, ids[0]!, 'mid-op', now + 1000n, 2_000_000n), span(traceId, ids[2]!, ids[1]!, 'leaf-op', now + 2000n, 1_000_000n), span(traceId, ids[3]!, ids[0]!, 'second-op', now + 3_000_000n, 500_000n)]);
    await ready(`/trace/${traceId}?span=${ids[2]}`);
    await page.focus('.rows');
    const at = () => page.$eval('.row.selected .op', (e) => e.textContent);
    const shown = () => page.$$eval('.row .op', (els) => els.map((e) => e.textContent));
    expect(await at()).toBe('leaf-op');
    await page.keyboard.press('ArrowLeft');
    expect(await at()).toBe('mid-op');
    await page.keyboard.press('ArrowLeft');
    expect([await at(), await shown()]).toEqual(['mid-op', ['root-op', 'mid-op', 'second-op']]);
    await page.keyboard.press('ArrowLeft');
    expect(await at()).toBe('root-op');
    await page.keyboard.press('ArrowRight');
    expect(await at()).toBe('mid-op');
    await page.keyboard.press('ArrowRight');
    expect([await at(), await shown()]).toEqual(['mid-op', ['root-op', 'mid-op', 'leaf-op', 'second-op']]);
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    expect(await at()).toBe('leaf-op');
    await new Promise((r) => setTimeout(r, 200));
    expect(await page.$eval('.details h2', (e) => e.textContent)).toBe('leaf-op');
  });

  it('keyboard: Enter takes the focus to the selected span\'s details, and Shift+Tab back to the tree', async () => {
    const traceId = hex(16);
    const [a, b] = [hex(8), hex(8)];
    await send(c, 'ui-enter', [span(traceId, a, '', 'root', now, 2_000_000n), span(traceId, b, a, 'child', now + 1000n, 1_000_000n, { attributes: [str('http.route', '/cart')] })]);
    await ready(`/trace/${traceId}?span=${b}`);
    await page.focus('.rows');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => ({ details: !!document.activeElement.closest('.details'), text: document.activeElement.textContent }))).toEqual({ details: true, text: 'child' });
    await page.keyboard.down('Shift');
    await page.keyboard.press('Tab');
    await page.keyboard.up('Shift');
    expect(await page.evaluate(() => document.activeElement.matches('.rows'))).toBe(true);
  });

  it('keyboard: the span tree, reached with Tab, shows that it has the focus', async () => {
    const traceId = hex(16);
    await send(c, 'ui-focus-ring', [span(traceId, hex(8), '', 'root-op', now, 2_000_000n)]);
    await ready(`/trace/${traceId}`);
    // Tab from the top of the page (the header's links, the trace's logs link) to the tree.
    for (let i = 0; i < 10 && !(await page.evaluate(() => document.activeElement?.matches('.rows'))); i++) await page.keyboard.press('Tab');
    const ring = await page.evaluate(() => {
      const el = document.activeElement;
      const style = el.ownerDocument.defaultView.getComputedStyle(el);
      return { tree: el.matches('.rows'), outline: style.outlineStyle, width: style.outlineWidth, shadow: style.boxShadow };
    });
    expect(ring.tree).toBe(true);
    // An outline or a ring drawn as a shadow: either way something a sighted keyboard user sees.
    expect(ring.outline !== 'none' && ring.width !== '0px' || ring.shadow !== 'none', JSON.stringify(ring)).toBe(true);
  });

  it('keyboard: Page Down, Page Up, End and Home move the selection through a long tree, not only the view', async () => {
    const traceId = hex(16);
    const spans = flatTrace(traceId, 300, 'step 0', 400_000_000n);
    await send(c, 'ui-page-keys', spans);
    await ready(`/trace/${traceId}`);
    await page.focus('.rows');
    const selected = () =>
      page.evaluate(() => {
        const tree = document.querySelector('.rows').getBoundingClientRect();
        const row = document.querySelector('.row.selected');
        const box = row?.getBoundingClientRect();
        return { index: Number(row?.getAttribute('data-index') ?? -1), inView: box ? box.top >= tree.top - 1 && box.bottom <= tree.bottom + 1 : false };
      });
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('PageDown');
    const down = await selected();
    expect(down.index).toBeGreaterThan(10);
    expect(down.inView).toBe(true);
    await page.keyboard.press('End');
    expect(await selected()).toEqual({ index: 299, inView: true });
    await page.keyboard.press('PageUp');
    const up = await selected();
    expect(up.index).toBeLessThan(290);
    expect(up.inView).toBe(true);
    await page.keyboard.press('Home');
    expect(await selected()).toEqual({ index: 0, inView: true });
    expect(await page.$eval('.details h2', (e) => e.textContent)).toBe('step 0');
  });

  it('keyboard: a screen reader is told which span the arrow keys moved to, and whether it is expanded', async () => {
    const traceId = hex(16);
    const [a, b] = [hex(8), hex(8)];
    await send(c, 'ui-aria', [span(traceId, a, '', 'root-op', now, 2_000_000n), span(traceId, b, a, 'child-op', now + 1000n, 1_000_000n)]);
    await ready(`/trace/${traceId}`);
    await page.focus('.rows');
    // The item the focused tree points to (aria-activedescendant), as a screen reader reads it.
    const focused = () =>
      page.$eval('.rows', (tree: any) => {
        const item = tree.ownerDocument.getElementById(tree.getAttribute('aria-activedescendant') ?? '');
        if (!item) return { role: tree.getAttribute('role'), name: tree.getAttribute('aria-label') };
        const flag = (a: string) => (item.hasAttribute(a) ? item.getAttribute(a) === 'true' : undefined);
        return { role: item.getAttribute('role'), name: item.textContent as string, selected: flag('aria-selected'), expanded: flag('aria-expanded') };
      });
    await page.keyboard.press('ArrowDown');
    expect(await focused()).toMatchObject({ role: 'treeitem', name: expect.stringContaining('root-op'), selected: true, expanded: true });
    await page.keyboard.press('ArrowDown');
    expect(await focused()).toMatchObject({ role: 'treeitem', name: expect.stringContaining('child-op'), selected: true });
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowLeft');
    expect(await focused()).toMatchObject({ role: 'treeitem', name: expect.stringContaining('root-op'), expanded: false });
  });
});

describe('web UI: tokens', () => {
  let c: TestCollector;
  let browser: Browser;
  const TOKEN = 'acme-token-' + hex(8);

  beforeAll(async () => {
    const file = join(tempDir('tracehouse-ui-edges-'), 'tokens.yaml');
    writeFileSync(file, `tokens:\n  - token: "${TOKEN}"\n    tenant: acme\n    scopes: [ingest, read]\n`);
    c = await startCollector({ 'auth.tokensFile': file });
    await send(c, 'acme-shop', [span(hex(16), hex(8), '', 'op', now, 1000n)], TOKEN);
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await c?.stop();
  });

  it('a mistyped token with a character no HTTP header can carry does not lock the tab out', async () => {
    const page = await browser.newPage();
    const answers = ['tök€n “pasted”', TOKEN];
    const prompts: string[] = [];
    page.on('dialog', (d) => {
      prompts.push(d.message());
      void d.accept(answers.shift() ?? '');
    });
    await page.goto(c.queryUrl + '/', { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#app[data-ready="true"], #app .error', { timeout: 15_000 });
    if (await page.$('#app .error')) {
      // The page gave up: a reload should ask again.
      await page.reload({ waitUntil: 'domcontentloaded' });
      await page.waitForSelector('#app[data-ready="true"], #app .error', { timeout: 15_000 });
    }
    const error = await page.$eval('#app', (e) => e.querySelector('.error')?.textContent ?? '');
    const services = await page.$$eval('select[name=service] option', (os) => os.map((o) => o.textContent));
    expect({ error, prompts: prompts.length, services }).toEqual({ error: '', prompts: 2, services: ['All services', 'acme-shop'] });
    await page.close();
  });
});

describe('web UI: a trace with more log records than one read returns (query.maxLimit)', () => {
  let c: TestCollector;
  let browser: Browser;

  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'memory', 'query.maxLimit': '5' });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await c?.stop();
  });

  /**
   * A trace of two spans starting at `at`, the early one with one log record and the root with
   * five more (past query.maxLimit): the early span's details show its record. `window` is the
   * start and end of a read that finds the early record, as the read API takes them.
   */
  const earlySpanShowsItsLog = async (service: string, at: bigint, window: readonly [string, string]): Promise<void> => {
    const traceId = hex(16);
    const [root, early] = [hex(8), hex(8)];
    await send(c, service, [span(traceId, root, '', 'batch job', at, 10_000_000n), span(traceId, early, root, 'load input', at + 1_000_000n, 1_000_000n)]);
    const log = (spanId: string, t: bigint, body: string) => ({ timeUnixNano: String(t), severityNumber: 9, severityText: 'INFO', body: { stringValue: body }, traceId, spanId });
    const records = [log(early, at + 1_500_000n, 'input loaded'), ...[5, 6, 7, 8, 9].map((ms) => log(root, at + BigInt(ms) * 1_000_000n, `step ${ms}`))];
    const r = await fetch(`${c.httpUrl}/v1/logs`, { method: 'POST', body: JSON.stringify({ resourceLogs: [{ resource: { attributes: [str('service.name', service)] }, scopeLogs: [{ logRecords: records }] }] }), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    await eventually(async () => {
      const d = (await (await fetch(`${c.queryUrl}/v1/logs?traceId=${traceId}&start=${window[0]}&end=${window[1]}`)).json()) as any;
      return d.resourceLogs.length > 0 ? true : undefined;
    });
    const page = await browser.newPage();
    await page.goto(`${c.queryUrl}/trace/${traceId}`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
    await page.click(`.row[data-span-id="${early}"]`);
    await page.waitForFunction(() => !document.querySelector('.span-logs')?.textContent?.includes('Loading'));
    expect(await page.$eval('.span-logs', (e: any) => e.innerText)).toContain('input loaded');
    await page.close();
  };

  it('an early span still shows its log record, not "No log records for this span", when later spans logged more than the limit', async () => {
    await earlySpanShowsItsLog('ui-many-logs', now, [String(now + 1_000_000n), String(now + 2_000_000n)]);
  });

  it('the same for a trace whose clock said 1970 (its times as numbers would be refused as seconds given by mistake)', async () => {
    await earlySpanShowsItsLog('ui-many-logs-1970', 1_000_000_000n, ['1970-01-01T00:00:01.001Z', '1970-01-01T00:00:01.002Z']);
  });
});

describe('web UI: a trace cut to query.maxSpansPerTrace', () => {
  let c: TestCollector;
  let browser: Browser;

  beforeAll(async () => {
    c = await startCollector({ 'storage.backend': 'memory', 'query.maxSpansPerTrace': '2' });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await c?.stop();
  });

  it('a span whose parent was cut from the answer (stamped later by a skewed clock) does not claim the parent is "not stored"', async () => {
    const traceId = hex(16);
    const root = hex(8);
    const child = hex(8);
    // The root's clock runs late: the read keeps the two earliest spans, the children.
    const spans = [span(traceId, root, '', 'root', now + 10_000_000n, 5_000_000n), span(traceId, child, root, 'child-a', now, 1_000_000n), span(traceId, hex(8), root, 'child-b', now + 1_000_000n, 1_000_000n)];
    const body = { resourceSpans: [{ resource: { attributes: [str('service.name', 'ui-cut-parent')] }, scopeSpans: [{ scope: { name: 'ui-edges' }, spans }] }] };
    expect((await fetch(c.httpUrl + '/v1/traces', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })).status).toBe(200);
    await eventually(async () => ((((await (await fetch(`${c.queryUrl}/v1/traces/${traceId}`)).json()) as any).warnings?.length ?? 0) > 0 ? true : undefined));
    const page = await browser.newPage();
    try {
      await page.goto(`${c.queryUrl}/trace/${traceId}`, { waitUntil: 'domcontentloaded' });
      await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
      expect(await page.$eval('.warning', (e) => e.textContent)).toContain('query.maxSpansPerTrace');
      await page.click(`.row[data-span-id="${child}"]`);
      await page.waitForFunction((want: string) => document.querySelector('.details .facts')?.textContent?.includes(want), {}, child);
      const parent = await page.$$eval('.details .facts dt', (dts: any[]) => dts.find((d) => d.textContent === 'Parent').nextElementSibling.textContent);
      expect(parent).toContain(root);
      expect(parent).not.toContain('not stored');
      expect(parent).toContain('not among the spans shown');
    } finally {
      await page.close();
    }
  });
});
