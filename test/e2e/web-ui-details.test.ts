// The web UI in headless Chromium (Debian's, through puppeteer-core): what the span details and
// the logs view show of what was stored, against the README's word for it.
import { randomBytes } from 'node:crypto';
import { type Page } from 'puppeteer-core';
import { describe, expect, it } from 'vitest';
import { memoryStoreUi, postOtlpJson } from '../helpers/browser.ts';
import { eventually, type TestCollector } from '../helpers/collector.ts';

declare const document: any;

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const str = (key: string, v: string) => ({ key, value: { stringValue: v } });
const now = BigInt(Date.now()) * 1_000_000n;

const post = postOtlpJson;

describe('web UI: span details and log rows', () => {
  let c: TestCollector;
  let page: Page;
  const ready = memoryStoreUi((ui) => ({ c, page } = ui));

  it("span details: the scope's dropped attributes are counted, as the resource's are (README: how many of each the sender dropped)", async () => {
    const traceId = hex(16);
    const [a, b] = [hex(8), hex(8)];
    const span = (spanId: string, name: string) => ({ traceId, spanId, name, kind: 1, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1_000_000n) });
    await post(c, 'traces', {
      resourceSpans: [{
        resource: { attributes: [str('service.name', 'ui-scope-dropped')] },
        scopeSpans: [
          // One scope with attributes and some dropped, one whose every attribute was dropped.
          { scope: { name: 'io.shop.cart', version: '1.2', attributes: [str('library.flavour', 'vanilla')], droppedAttributesCount: 4 }, spans: [span(a, 'with some')] },
          { scope: { name: 'io.shop.pay', droppedAttributesCount: 7 }, spans: [span(b, 'with none left')] },
        ],
      }],
    });
    await eventually(async () => {
      const r = await fetch(`${c.queryUrl}/v1/traces/${traceId}`);
      if (r.status !== 200) return undefined;
      const d = (await r.json()) as any;
      return d.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)).length === 2 ? true : undefined;
    });
    await ready(`/trace/${traceId}`);
    for (const [id, name, want] of [[a, 'with some', /scope attributes \(1, 4 dropped by the sender\)/i], [b, 'with none left', /scope attributes \(0, 7 dropped by the sender\)/i]] as const) {
      await page.click(`.row[data-span-id="${id}"]`);
      await page.waitForFunction((n: string) => document.querySelector('.details h2')?.textContent === n, {}, name);
      const text: string = await page.$eval('.details', (e: any) => e.innerText);
      expect(text, name).toMatch(want);
    }
  });

  it('span details: a span of 20,000 attributes and 20,000 events (OTLP/JSON has no SDK limit) draws 200 of each, says how many more, and draws the rest on asking', async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    const many = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => str(`${prefix}.${i}`, `v${i}`));
    const events = Array.from({ length: 20_000 }, (_, i) => ({ timeUnixNano: String(now + BigInt(i)), name: `tick ${i}`, attributes: i === 0 ? many(1_000, 'first') : [str('i', String(i))] }));
    const links = Array.from({ length: 500 }, () => ({ traceId: hex(16), spanId: hex(8) }));
    await post(c, 'traces', {
      resourceSpans: [{
        resource: { attributes: [str('service.name', 'ui-huge-span'), ...many(999, 'host.label')] },
        scopeSpans: [{ scope: { name: 'bulk' }, spans: [{ traceId, spanId, name: 'huge', kind: 1, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1_000_000_000n), attributes: many(20_000, 'attr'), events, links }] }],
      }],
    });
    await eventually(async () => ((await fetch(`${c.queryUrl}/v1/traces/${traceId}`)).status === 200 ? true : undefined));
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${spanId}"]`);
    await page.waitForFunction(() => document.querySelector('.details h2')?.textContent === 'huge', { timeout: 30_000 });
    // Each list of the pane: its drawn entries, and the line after it saying what is not drawn.
    const lists = () => page.evaluate(() => {
      const d = document.querySelector('.details');
      const after = (el: any) => (el.nextElementSibling?.classList.contains('more') ? el.nextElementSibling.textContent : '');
      const [attrs, resource] = [...d.querySelectorAll(':scope > table.kv')];
      const events = d.querySelector(':scope > ol.events');
      const links = d.querySelector(':scope > ul.links');
      const firstEvent = events.querySelector(':scope > li > table.kv');
      return {
        attributes: [attrs.rows.length, after(attrs)],
        events: [events.children.length, after(events)],
        firstEvent: [firstEvent.rows.length, after(firstEvent)],
        links: [links.children.length, after(links)],
        resource: [resource.rows.length, after(resource)],
        drawn: d.querySelectorAll('tr, li').length,
      };
    });
    const first = await lists();
    expect(first.attributes).toEqual([200, expect.stringContaining('19800 more attributes')]);
    expect(first.events).toEqual([200, expect.stringContaining('19800 more events')]);
    expect(first.firstEvent).toEqual([200, expect.stringContaining('800 more attributes')]);
    expect(first.links).toEqual([200, expect.stringContaining('300 more links')]);
    expect(first.resource).toEqual([200, expect.stringContaining('800 more attributes')]);
    // The whole pane: 200 entries a list (199 events of one attribute each), not 62,000.
    expect(first.drawn).toBeLessThan(1_500);
    // The headings still count every entry.
    const text: string = await page.$eval('.details', (e: any) => e.innerText);
    expect(text).toMatch(/Attributes \(20000\)/i);
    expect(text).toMatch(/Events \(20000\)/i);

    const click = (list: string, label: RegExp) => page.evaluate((sel: string, re: string) => {
      const more = document.querySelector(sel).nextElementSibling;
      [...more.querySelectorAll('button')].find((b: any) => new RegExp(re).test(b.textContent)).click();
    }, list, label.source);
    await click('.details > table.kv', /^Show 200 more$/);
    expect((await lists()).attributes).toEqual([400, expect.stringContaining('19600 more attributes')]);
    await click('.details > table.kv', /^Show all/);
    const all = await lists();
    expect(all.attributes).toEqual([20_000, '']);
    // The last attribute sent is drawn, in its order.
    expect(await page.$eval('.details > table.kv', (t: any) => t.rows[19_999].textContent)).toBe('attr.19999v19999');
    await click('.details > ol.events', /^Show all/);
    expect((await lists()).events).toEqual([20_000, '']);
    // Drawn as "Show 200 more" 99 times would draw them: every event's one attribute, none cut to
    // "1 attribute not shown" (the first event's 800 of 1,000 remain to ask for).
    expect(await page.$$eval('.details > ol.events > li > .more', (ms: any[]) => ms.map((m) => m.textContent.split('.')[0]))).toEqual(['800 more attributes not shown']);
    expect(await page.$eval('.details > ol.events > li:last-child > table.kv', (t: any) => t.textContent)).toBe('i19999');
    await click('.details > ul.links', /^Show 200 more$/);
    expect((await lists()).links).toEqual([400, expect.stringContaining('100 more links')]);
    // The last step draws what is left: one button, no "Show all" beside it.
    expect(await page.$$eval('.details > ul.links + .more button', (bs: any[]) => bs.map((b) => b.textContent))).toEqual(['Show 100 more']);
    await click('.details > ul.links', /^Show 100 more$/);
    expect((await lists()).links).toEqual([500, '']);
  }, 60_000);

  it("span details: a span of 200 events and 200 links of 200 attributes each draws at most 2,000 rows on opening, says every count, and draws any event's attributes on asking", async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    const many = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => str(`${prefix}.${i}`, `v${i}`));
    const events = Array.from({ length: 200 }, (_, i) => ({ timeUnixNano: String(now + BigInt(i)), name: `tick ${i}`, attributes: many(200, `e${i}`) }));
    const links = Array.from({ length: 200 }, (_, i) => ({ traceId: hex(16), spanId: hex(8), attributes: many(200, `l${i}`) }));
    await post(c, 'traces', {
      resourceSpans: [{
        resource: { attributes: [str('service.name', 'ui-nested-span'), ...many(199, 'host.label')] },
        scopeSpans: [{ scope: { name: 'bulk', attributes: many(200, 'scope') }, spans: [{ traceId, spanId, name: 'nested', kind: 1, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1_000_000n), attributes: many(200, 'attr'), events, links }] }],
      }],
    });
    await eventually(async () => ((await fetch(`${c.queryUrl}/v1/traces/${traceId}`)).status === 200 ? true : undefined));
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${spanId}"]`);
    await page.waitForFunction(() => document.querySelector('.details h2')?.textContent === 'nested', { timeout: 30_000 });
    // Per event (or link): the attribute rows drawn, and the count its "not shown" line gives.
    const nested = (list: string) => page.evaluate((sel: string) => [...document.querySelectorAll(`.details > ${sel} > li`)].map((li: any) => {
      const table = li.querySelector(':scope > table.kv');
      const more = table.nextElementSibling?.classList.contains('more') ? table.nextElementSibling.textContent : '';
      return { rows: table.rows.length, notShown: Number(/(\d+) (?:more )?attributes? not shown/.exec(more)?.[1] ?? 0) };
    }), list);
    // Every list stays bounded at 200 entries; the nested ones share a bound too (200 × 200 here each).
    expect(await page.evaluate(() => document.querySelectorAll('.details tr, .details li').length)).toBeLessThanOrEqual(2_000);
    for (const list of ['ol.events', 'ul.links']) {
      const drawn = await nested(list);
      expect(drawn, list).toHaveLength(200);
      // Each one's count is said: drawn and not shown make its 200.
      for (const [i, e] of drawn.entries()) expect(e.rows + e.notShown, `${list} ${i}`).toBe(200);
      // The first ones are drawn whole, as a span's few events are.
      expect(drawn[0], list).toEqual({ rows: 200, notShown: 0 });
    }
    // The last event's attributes, drawn on asking.
    const last = '.details > ol.events > li:last-child';
    expect(await page.$eval(`${last} > table.kv`, (t: any) => t.rows.length)).toBe(0);
    await page.$eval(`${last} > .more button`, (b: any) => b.click());
    expect(await page.$eval(`${last} > table.kv`, (t: any) => t.rows.length)).toBe(200);
    expect(await page.$eval(`${last} > table.kv`, (t: any) => t.rows[199].textContent)).toBe('e199.199v199');
    expect(await page.$$(`${last} > .more`)).toHaveLength(0);
  }, 60_000);

  it('logs: a 64-bit trace id (Jaeger, Zipkin) links with its own digits, not the zeros every such id starts with', async () => {
    const ids = [hex(8), hex(8)];
    const logRecords = ids.map((short, i) => ({ timeUnixNano: String(now + BigInt(i)), severityNumber: 9, traceId: '0'.repeat(16) + short, spanId: hex(8), body: { stringValue: `log ${i}` } }));
    await post(c, 'logs', { resourceLogs: [{ resource: { attributes: [str('service.name', 'ui-64-bit-logs')] }, scopeLogs: [{ logRecords }] }] });
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/logs?service=ui-64-bit-logs`)).json()) as any).resourceLogs.length > 0 ? true : undefined));
    await ready('/logs?service=ui-64-bit-logs&lookback=1h');
    const shown: string[] = await page.$$eval('.log-row td:last-child a', (els: any[]) => els.map((e) => e.textContent));
    expect(shown).toHaveLength(2);
    // Newest first: log 1, then log 0; each shows the start of the id as Jaeger writes it.
    expect(shown).toEqual([`${ids[1]!.slice(0, 8)}…`, `${ids[0]!.slice(0, 8)}…`]);
  });

  it("span details: the span's log records show their attributes, as the logs view does", async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    await post(c, 'traces', { resourceSpans: [{ resource: { attributes: [str('service.name', 'ui-span-log-attrs')] }, scopeSpans: [{ spans: [{ traceId, spanId, name: 'checkout', kind: 2, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 5_000_000n) }] }] }] });
    await post(c, 'logs', {
      resourceLogs: [{
        resource: { attributes: [str('service.name', 'ui-span-log-attrs')] },
        scopeLogs: [{ logRecords: [
          { timeUnixNano: String(now + 1_000_000n), severityNumber: 17, traceId, spanId, body: { stringValue: 'card declined' }, attributes: [str('payment.provider', 'acme-pay'), { key: 'retry', value: { intValue: '2' } }] },
          { timeUnixNano: String(now + 2_000_000n), severityNumber: 9, traceId, spanId, body: { stringValue: 'gave up' } },
        ] }],
      }],
    });
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/logs?service=ui-span-log-attrs`)).json()) as any).resourceLogs?.[0]?.scopeLogs?.[0]?.logRecords?.length === 2 ? true : undefined));
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${spanId}"]`);
    await page.waitForFunction(() => document.querySelectorAll('.span-log-list li').length === 2);
    const items: string[] = await page.$$eval('.span-log-list li', (els: any[]) => els.map((e) => e.innerText));
    expect(items.find((t) => t.includes('card declined'))).toContain('payment.provider=acme-pay retry=2');
    expect(items.find((t) => t.includes('gave up'))).not.toContain('=');
    // Timed as the span's events are, from the span's start; the wall-clock time on hover.
    const times = await page.$$eval('.span-log-list time', (els: any[]) => els.map((e) => [e.textContent, e.title]));
    expect(times.map(([t]) => t).sort()).toEqual(['+1.00 ms', '+2.00 ms']);
    for (const [, title] of times) expect(title).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/);
  });

  it("span details: a log record of the span stamped with no time at all says so, not an offset of minus decades", async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    await post(c, 'traces', { resourceSpans: [{ resource: { attributes: [str('service.name', 'ui-timeless-log')] }, scopeSpans: [{ spans: [{ traceId, spanId, name: 'checkout', kind: 2, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 5_000_000n) }] }] }] });
    await post(c, 'logs', { resourceLogs: [{ resource: { attributes: [str('service.name', 'ui-timeless-log')] }, scopeLogs: [{ logRecords: [{ severityNumber: 9, traceId, spanId, body: { stringValue: 'no clock' } }] }] }] });
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/logs?traceId=${traceId}`)).json()) as any).resourceLogs?.length > 0 ? true : undefined));
    await ready(`/trace/${traceId}?span=${spanId}`);
    await page.waitForFunction(() => document.querySelectorAll('.span-log-list li').length === 1);
    expect(await page.$eval('.span-log-list time', (e: any) => e.textContent)).toBe('no time');
  });

  it("span details: the span's flags (sampled, remote parent) and W3C trace state are shown, and a link's", async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    const linked = { traceId: hex(16), spanId: hex(8), traceState: 'congo=lZWRzIHRoNhcm5hbCBwbGVhc3VyZS4', flags: 0x301 };
    const sent = { traceId, spanId, name: 'consume', kind: 5, traceState: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE', flags: 0x301, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1_000_000n), links: [linked] };
    const plain = { traceId, spanId: hex(8), parentSpanId: spanId, name: 'plain', kind: 1, startTimeUnixNano: String(now + 1000n), endTimeUnixNano: String(now + 2000n) };
    await post(c, 'traces', { resourceSpans: [{ resource: { attributes: [str('service.name', 'ui-trace-state')] }, scopeSpans: [{ spans: [sent, plain] }] }] });
    await eventually(async () => ((await fetch(`${c.queryUrl}/v1/traces/${traceId}`)).status === 200 ? true : undefined));
    await ready(`/trace/${traceId}?span=${spanId}`);
    await page.waitForFunction(() => document.querySelector('.details h2')?.textContent === 'consume');
    const facts = await page.$$eval('.details dl.facts dt', (els: any[]) => Object.fromEntries(els.map((e) => [e.textContent, e.nextElementSibling.textContent])));
    expect(facts).toMatchObject({ Flags: 'sampled, parent remote (0x301)', 'Trace state': sent.traceState });
    expect(await page.$eval('.details ul.links li', (e: any) => e.innerText)).toContain(`sampled, remote (0x301) trace state ${linked.traceState}`);
    // A span without either says nothing of them.
    await page.click(`.row[data-span-id="${plain.spanId}"]`);
    await page.waitForFunction(() => document.querySelector('.details h2')?.textContent === 'plain');
    const plainFacts = await page.$$eval('.details dl.facts dt', (els: any[]) => els.map((e) => e.textContent));
    expect(plainFacts).not.toContain('Flags');
    expect(plainFacts).not.toContain('Trace state');
  });
});
