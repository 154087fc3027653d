// The web UI's search page and logs view in headless Chromium (Debian's, through puppeteer-core)
// against values as services really store them: names with stray whitespace and line breaks,
// services that send only logs, multi-line log bodies, long unbroken names.
import { randomBytes } from 'node:crypto';
import { type HTTPRequest, type Page } from 'puppeteer-core';
import { describe, expect, it } from 'vitest';
import { memoryStoreUi, postOtlpJson } from '../helpers/browser.ts';
import { eventually, type TestCollector } from '../helpers/collector.ts';

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const str = (key: string, v: string) => ({ key, value: { stringValue: v } });
const now = BigInt(Date.now()) * 1_000_000n;

const post = postOtlpJson;

async function sendSpan(c: TestCollector, service: string, name: string): Promise<string> {
  const traceId = hex(16);
  const span = { traceId, spanId: hex(8), name, kind: 3, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1_000_000n) };
  await post(c, 'traces', { resourceSpans: [{ resource: { attributes: [str('service.name', service)] }, scopeSpans: [{ spans: [span] }] }] });
  await eventually(async () => ((await fetch(`${c.queryUrl}/v1/traces/${traceId}`)).status === 200 ? true : undefined));
  return traceId;
}

async function sendLog(c: TestCollector, service: string, body: unknown): Promise<void> {
  const log = { timeUnixNano: String(now), severityNumber: 9, severityText: 'INFO', body };
  await post(c, 'logs', { resourceLogs: [{ resource: { attributes: [str('service.name', service)] }, scopeLogs: [{ logRecords: [log] }] }] });
  await eventually(async () => {
    const d = (await (await fetch(`${c.queryUrl}/v1/logs?service=${encodeURIComponent(service)}`)).json()) as any;
    return d.resourceLogs.length > 0 ? true : undefined;
  });
}

describe('web UI: search page and logs view', () => {
  let c: TestCollector;
  let page: Page;
  const ready = memoryStoreUi((ui) => ({ c, page } = ui));
  const submit = async () => {
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('form.filters button[type=submit]')]);
    await page.waitForSelector('#app[data-ready="true"], #app .error', { timeout: 15_000 });
  };

  it('search: an operation picked from the list finds its trace when its name ends in a space or spans lines', async () => {
    const names = ['GET /users ', 'SELECT id\nFROM users'];
    const ids = new Map<string, string>();
    for (const name of names) ids.set(name, await sendSpan(c, 'ui-names', name));
    for (const name of names) {
      await ready('/search?service=ui-names&lookback=1h');
      await page.select('select[name=name]', name);
      await submit();
      const found = await page.$$eval('.trace-result', (els: any[]) => els.map((e) => e.getAttribute('data-trace-id')));
      expect(found, JSON.stringify(name)).toEqual([ids.get(name)]);
    }
  });

  it('search and logs: a window of the past (From … to …, in UTC) finds what happened then, and a Jaeger UI link\'s custom range is that window', async () => {
    const day = 86_400_000_000_000n;
    const then = now - 3n * day;
    const ids = { then: hex(16), today: hex(16) };
    const spans = [
      { traceId: ids.then, spanId: hex(8), name: 'incident', kind: 2, startTimeUnixNano: String(then), endTimeUnixNano: String(then + 1_000_000n) },
      { traceId: ids.today, spanId: hex(8), name: 'today', kind: 2, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1_000_000n) },
    ];
    await post(c, 'traces', { resourceSpans: [{ resource: { attributes: [str('service.name', 'ui-window')] }, scopeSpans: [{ spans }] }] });
    const logRecords = [then, now].map((t) => ({ timeUnixNano: String(t), severityNumber: 9, body: { stringValue: t === then ? 'during the incident' : 'today' } }));
    await post(c, 'logs', { resourceLogs: [{ resource: { attributes: [str('service.name', 'ui-window')] }, scopeLogs: [{ logRecords }] }] });
    await eventually(async () => ((await fetch(`${c.queryUrl}/v1/traces/${ids.then}`)).status === 200 ? true : undefined));
    const utc = (ns: bigint) => new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19);
    const found = () => page.$$eval('.trace-result', (els: any[]) => els.map((e) => e.getAttribute('data-trace-id')));

    // Through the form: the range's fields appear when it is chosen, and the link carries them.
    await ready('/search?service=ui-window&lookback=1h');
    expect(await page.$eval('input[name=start]', (e: any) => e.closest('.field').hidden)).toBe(true);
    await page.select('select[name=lookback]', 'custom');
    expect(await page.$eval('input[name=start]', (e: any) => e.closest('.field').hidden)).toBe(false);
    await page.$eval('input[name=start]', (e: any, v: string) => (e.value = v), utc(then - day / 24n));
    await page.$eval('input[name=end]', (e: any, v: string) => (e.value = v), utc(then + day / 24n));
    await submit();
    expect(await found()).toEqual([ids.then]);
    expect(await page.$eval('input[name=start]', (e: any) => e.value)).toBe(utc(then - day / 24n));

    // A Jaeger UI link: lookback=custom with start and end in microseconds.
    const us = (ns: bigint) => String(ns / 1000n);
    await ready(`/search?service=ui-window&lookback=custom&start=${us(then - day / 24n)}&end=${us(then + day / 24n)}`);
    expect(await found()).toEqual([ids.then]);
    await ready(`/search?service=ui-window&lookback=custom&start=garbage`);
    expect(await page.$eval('.results .error', (e: any) => e.textContent)).toBe("From 'garbage': expected a date and time in UTC, as 2026-12-08T14:30:00");
    await ready(`/search?service=ui-window&lookback=custom&start=${utc(then + day / 24n)}&end=${utc(then - day / 24n)}`);
    expect(await page.$eval('.results .error', (e: any) => e.textContent)).toBe(`From '${utc(then + day / 24n)}' is after To '${utc(then - day / 24n)}'`);

    await ready(`/logs?service=ui-window&lookback=custom&start=${utc(then - day / 24n)}&end=${utc(then + day / 24n)}`);
    expect(await page.$$eval('.log-row .body', (els: any[]) => els.map((e) => e.textContent))).toEqual(['during the incident']);
    await ready(`/logs?service=ui-window&lookback=custom&start=${us(then - day / 24n)}&end=${us(then + day / 24n)}`);
    expect(await page.$$eval('.log-row .body', (els: any[]) => els.map((e) => e.textContent))).toEqual(['during the incident']);
    expect(await page.$eval('.results .count', (e: any) => e.textContent)).toBe(`1 log record up to ${new Date(Number((then + day / 24n) / 1_000_000n)).toISOString().replace('T', ' ').replace('Z', ' UTC')}, newest first`);
  });

  it('logs: a window of the past paged with "Older records" keeps its To, and "Newest records" goes back to the window\'s newest, not to now', async () => {
    const hour = 3_600_000_000_000n;
    const then = now - 50n * hour;
    const times = [then - 2n * 60_000_000_000n, then - 60_000_000_000n, then, now];
    const logRecords = times.map((t, i) => ({ timeUnixNano: String(t), severityNumber: 9, body: { stringValue: i === 3 ? 'today' : `then ${i}` } }));
    await post(c, 'logs', { resourceLogs: [{ resource: { attributes: [str('service.name', 'ui-window-pages')] }, scopeLogs: [{ logRecords }] }] });
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/logs?service=ui-window-pages`)).json()) as any).resourceLogs.length > 0 ? true : undefined));
    const utc = (ns: bigint) => new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19);
    const bodies = () => page.$$eval('.log-row .body', (els: any[]) => els.map((e) => e.textContent));
    const follow = async (sel: string) => {
      await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click(sel)]);
      await page.waitForSelector('#app[data-ready="true"], #app .error', { timeout: 15_000 });
    };

    await ready(`/logs?service=ui-window-pages&lookback=custom&start=${utc(then - hour)}&end=${utc(then + hour)}&limit=2`);
    expect(await bodies()).toEqual(['then 2', 'then 1']);
    // The first page of the window is its newest: no link leads out of it.
    expect(await page.$('.pages a.newest')).toBeNull();
    await follow('.pages a.older');
    expect(await bodies()).toEqual(['then 1', 'then 0']);
    // The form still shows the window asked for.
    expect(await page.$eval('input[name=end]', (e: any) => e.value)).toBe(utc(then + hour));
    await follow('.pages a.newest');
    expect(await bodies()).toEqual(['then 2', 'then 1']);
  });

  it('logs: a service that sends only logs (no spans) can be chosen in the logs view', async () => {
    await sendLog(c, 'ui-logs-only', { stringValue: 'a log of a service without traces' });
    await ready('/logs?lookback=1h');
    await page.focus('form.filters [name=service]');
    await page.keyboard.type('ui-logs-only');
    await submit();
    expect(new URL(page.url()).searchParams.get('service')).toBe('ui-logs-only');
    expect(await page.$$eval('.log-row .body', (els: any[]) => els.map((e) => e.textContent))).toEqual(['a log of a service without traces']);
  });

  it('logs: a service whose name ends in a space finds its logs, as the search page finds its traces', async () => {
    const service = 'ui-logs-trailing ';
    await sendLog(c, service, { stringValue: 'a log of a service named with a trailing space' });
    await ready(`/logs?service=${encodeURIComponent(service)}&lookback=1h`);
    expect(await page.$eval('form.filters [name=service]', (e: any) => e.value)).toBe(service);
    expect(await page.$$eval('.log-row .body', (els: any[]) => els.map((e) => e.textContent))).toEqual(['a log of a service named with a trailing space']);
  });

  it('logs: a 64-bit trace id as the Jaeger API and Grafana show it (16 digits) finds the trace\'s logs, as the trace page takes it', async () => {
    const short = hex(8);
    const traceId = '0'.repeat(16) + short;
    const log = { timeUnixNano: String(now), severityNumber: 9, traceId, spanId: hex(8), body: { stringValue: 'a log of a 64-bit trace' } };
    await post(c, 'logs', { resourceLogs: [{ resource: { attributes: [str('service.name', 'ui-jaeger-ids')] }, scopeLogs: [{ logRecords: [log] }] }] });
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/logs?traceId=${traceId}`)).json()) as any).resourceLogs.length > 0 ? true : undefined));
    await ready(`/logs?traceId=${short}&lookback=all`);
    expect(await page.$eval('form.filters [name=traceId]', (e: any) => e.checkValidity())).toBe(true);
    expect(await page.$$eval('.log-row .body', (els: any[]) => els.map((e) => e.textContent))).toEqual(['a log of a 64-bit trace']);
    // Pasted with the spaces around it that a copy from a table or a log line brings: the form
    // takes it (the page trims it), the browser does not refuse to submit it.
    expect(await page.$eval('form.filters [name=traceId]', (e: any, v: string) => ((e.value = v), e.checkValidity()), ` ${short}\t`)).toBe(true);
  });

  it('logs: a multi-line body (a stack trace) is shown with its line breaks and tabs', async () => {
    const trace = 'java.lang.IllegalStateException: closed\n\tat com.shop.Cart.add(Cart.java:42)\n\tat com.shop.Api.post(Api.java:7)';
    await sendLog(c, 'ui-multiline', { stringValue: trace });
    await ready('/logs?service=ui-multiline&lookback=1h');
    // innerText is the text as laid out: the lines a user reads.
    expect(await page.$eval('.log-row .body', (e: any) => e.innerText)).toBe(trace);
  });

  it('logs: an event record (an event name, no body) shows its event name, not the word null', async () => {
    const log = { timeUnixNano: String(now), severityNumber: 9, eventName: 'session.start', attributes: [str('user.id', 'u-7')] };
    await post(c, 'logs', { resourceLogs: [{ resource: { attributes: [str('service.name', 'ui-events')] }, scopeLogs: [{ logRecords: [log] }] }] });
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/logs?service=ui-events`)).json()) as any).resourceLogs.length > 0 ? true : undefined));
    await ready('/logs?service=ui-events&lookback=1h');
    expect(await page.$eval('.log-row .body', (e: any) => e.textContent)).toBe('session.start');
  });

  it('trace page: a span\'s log records show an event record\'s event name (not null) and a multi-line body\'s lines, as the logs view does', async () => {
    const traceId = hex(16);
    const spanId = hex(8);
    const span = { traceId, spanId, name: 'checkout', kind: 2, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1_000_000n) };
    await post(c, 'traces', { resourceSpans: [{ resource: { attributes: [str('service.name', 'ui-span-logs')] }, scopeSpans: [{ spans: [span] }] }] });
    const stack = 'java.lang.IllegalStateException: closed\n\tat com.shop.Cart.add(Cart.java:42)';
    const logs = [
      { timeUnixNano: String(now + 1000n), severityNumber: 9, traceId, spanId, eventName: 'session.start', attributes: [str('user.id', 'u-7')] },
      { timeUnixNano: String(now + 2000n), severityNumber: 17, traceId, spanId, body: { stringValue: stack } },
    ];
    await post(c, 'logs', { resourceLogs: [{ resource: { attributes: [str('service.name', 'ui-span-logs')] }, scopeLogs: [{ logRecords: logs }] }] });
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/logs?traceId=${traceId}`)).json()) as any).resourceLogs.length > 0 ? true : undefined));
    await eventually(async () => ((await fetch(`${c.queryUrl}/v1/traces/${traceId}`)).status === 200 ? true : undefined));
    await ready(`/trace/${traceId}`);
    await page.click(`.row[data-span-id="${spanId}"]`);
    await page.waitForSelector('.span-log-list');
    const bodies = await page.$$eval('.span-log-list .body', (els: any[]) => els.map((e) => e.innerText));
    expect([...bodies].sort()).toEqual([stack, 'session.start'].sort());
  });

  it('logs: a record\'s trace link opens the trace at the record\'s span, selected with its logs', async () => {
    const traceId = hex(16);
    const root = hex(8);
    const spans = [{ traceId, spanId: root, name: 'batch', kind: 2, startTimeUnixNano: String(now), endTimeUnixNano: String(now + 300_000_000n) }];
    for (let i = 1; i < 200; i++) spans.push({ traceId, spanId: hex(8), parentSpanId: root, name: `step ${i}`, kind: 1, startTimeUnixNano: String(now + BigInt(i) * 1_000_000n), endTimeUnixNano: String(now + BigInt(i) * 1_000_000n + 500_000n) } as any);
    const spanId = spans[180]!.spanId;
    await post(c, 'traces', { resourceSpans: [{ resource: { attributes: [str('service.name', 'ui-log-to-span')] }, scopeSpans: [{ spans }] }] });
    const log = { timeUnixNano: String(now + 180_000_000n), severityNumber: 17, traceId, spanId, body: { stringValue: 'step 180 failed' } };
    await post(c, 'logs', { resourceLogs: [{ resource: { attributes: [str('service.name', 'ui-log-to-span')] }, scopeLogs: [{ logRecords: [log] }] }] });
    await eventually(async () => (((await (await fetch(`${c.queryUrl}/v1/logs?traceId=${traceId}`)).json()) as any).resourceLogs.length > 0 ? true : undefined));
    await eventually(async () => ((await fetch(`${c.queryUrl}/v1/traces/${traceId}`)).status === 200 ? true : undefined));
    await ready(`/logs?service=ui-log-to-span&lookback=1h`);
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('.log-row a')]);
    await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
    expect(await page.$eval('.row.selected', (e: any) => e.getAttribute('data-span-id'))).toBe(spanId);
    await page.waitForSelector('.span-log-list');
    expect(await page.$eval('.span-log-list .body', (e: any) => e.textContent)).toBe('step 180 failed');
  });

  it('logs: a slow log search says it is searching, as the trace search does, instead of a blank page', async () => {
    await page.setRequestInterception(true);
    let held: HTTPRequest | undefined;
    const hold = (r: HTTPRequest) => {
      if (r.url().includes('/v1/logs')) held = r;
      else void r.continue();
    };
    page.on('request', hold);
    try {
      await page.goto(c.queryUrl + '/logs?lookback=1h', { waitUntil: 'domcontentloaded' });
      await page.waitForSelector('form.filters');
      await eventually(async () => (held ? true : undefined), 10_000, 'the page asking for logs').catch(() => undefined);
      expect(held, 'the page asked for logs').toBeDefined();
      expect(await page.$eval('.results', (e: any) => e.textContent)).toMatch(/Searching/);
      await held!.continue();
      await page.waitForSelector('#app[data-ready="true"]');
    } finally {
      page.off('request', hold);
      await page.setRequestInterception(false);
    }
  });

  /**
   * Sends one log record of `service` at each of `times` (bodies `${label} i`), waits until all are
   * stored, opens the logs view two records a page and follows its older-records links: the bodies
   * seen on the pages, sorted.
   */
  const pagedThrough = async (service: string, label: string, times: readonly bigint[], lookback = '1h'): Promise<string[]> => {
    const logRecords = times.map((t, i) => ({ timeUnixNano: String(t), severityNumber: 9, severityText: 'INFO', body: { stringValue: `${label} ${i}` } }));
    await post(c, 'logs', { resourceLogs: [{ resource: { attributes: [str('service.name', service)] }, scopeLogs: [{ logRecords }] }] });
    await eventually(async () => {
      const d = (await (await fetch(`${c.queryUrl}/v1/logs?service=${service}&limit=10`)).json()) as any;
      return d.resourceLogs.flatMap((r: any) => r.scopeLogs.flatMap((s: any) => s.logRecords)).length === times.length ? true : undefined;
    });
    await ready(`/logs?service=${service}&lookback=${lookback}&limit=2`);
    const seen = new Set<string>();
    for (let pages = 0; pages < 10; pages++) {
      for (const b of await page.$$eval('.log-row .body', (els: any[]) => els.map((e) => e.textContent as string))) seen.add(b);
      const older = await page.$('a.older');
      if (!older) break;
      await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), older.click()]);
      await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
    }
    return [...seen].sort();
  };

  it('logs: records past the limit (or the byte bound) can be reached, page after page, also ones sharing a timestamp at a page\'s edge', async () => {
    // Milliseconds apart, as most loggers stamp them; two in the same millisecond at the first page's edge.
    const ms = 1_000_000n;
    const times = [now, now - ms, now - ms, now - 2n * ms, now - 3n * ms];
    expect(await pagedThrough('ui-paged', 'record', times)).toEqual(times.map((_, i) => `record ${i}`));
    // A page that holds every match offers no older page, and shows nothing in its place.
    await ready('/logs?service=ui-paged&lookback=1h&limit=10');
    expect(await page.$('a.older')).toBeNull();
    // The count and the table (in its sideways-scrolling box), nothing after them.
    expect(await page.$eval('.results', (e: any) => [...e.childNodes].map((n: any) => n.nodeName + (n.firstChild?.nodeName === 'TABLE' ? '>TABLE' : '')))).toEqual(['P', 'DIV>TABLE']);
  });

  it('logs: more records sharing one time than a page holds are all reached, none skipped at the page\'s edge', async () => {
    // A burst in one millisecond (a stack trace logged line by line): three records at t, more than a page of 2.
    const ms = 1_000_000n;
    const times = [now, now - ms, now - ms, now - ms, now - 2n * ms];
    expect(await pagedThrough('ui-burst', 'burst', times)).toEqual(times.map((_, i) => `burst ${i}`));
  });

  it('logs: records stamped before 2000 (a device whose clock was never set) are paged through too', async () => {
    // 1970 plus an uptime: as a number of nanoseconds the read API takes such an end for seconds given by mistake.
    const ms = 1_000_000n;
    const boot = 300_000_000_000n;
    const times = [boot, boot - ms, boot - 2n * ms, boot - 3n * ms];
    expect(await pagedThrough('ui-unset-clock', 'uptime', times, 'all')).toEqual(times.map((_, i) => `uptime ${i}`));
    expect(await page.$eval('.results', (e: any) => e.textContent)).not.toMatch(/400/);
  });

  it('logs: a record sent with a severity number and no severity text shows the severity by name, not a bare number', async () => {
    const logRecords = [17, 10, 0].map((n) => ({ timeUnixNano: String(now), severityNumber: n, body: { stringValue: `sev ${n}` } }));
    await post(c, 'logs', { resourceLogs: [{ resource: { attributes: [str('service.name', 'ui-sev-numbers')] }, scopeLogs: [{ logRecords }] }] });
    await eventually(async () => {
      const d = (await (await fetch(`${c.queryUrl}/v1/logs?service=ui-sev-numbers`)).json()) as any;
      return d.resourceLogs.flatMap((r: any) => r.scopeLogs.flatMap((s: any) => s.logRecords)).length === 3 ? true : undefined;
    });
    await ready('/logs?service=ui-sev-numbers&lookback=1h');
    const shown = Object.fromEntries(await page.$$eval('.log-row', (rows: any[]) => rows.map((r) => [r.querySelector('.body').textContent, r.querySelector('.sev-text').textContent])));
    expect(shown).toEqual({ 'sev 17': 'ERROR', 'sev 10': 'INFO2', 'sev 0': '' });
  });

  it('logs: the records are searched and shown when the list of services (only the service field\'s suggestions) fails to load', async () => {
    await sendLog(c, 'ui-no-suggestions', { stringValue: 'still shown' });
    await page.setRequestInterception(true);
    const fail = (r: HTTPRequest) => {
      if (new URL(r.url()).pathname === '/api/services') void r.respond({ status: 503, contentType: 'application/json', body: JSON.stringify({ data: null, errors: [{ code: 503, msg: 'storage unavailable; retry later' }] }) });
      else void r.continue();
    };
    page.on('request', fail);
    try {
      await ready('/logs?service=ui-no-suggestions&lookback=1h');
      expect(await page.$$eval('.log-row .body', (els: any[]) => els.map((e) => e.textContent))).toEqual(['still shown']);
    } finally {
      page.off('request', fail);
      await page.setRequestInterception(false);
    }
  });

  it('search: a link\'s search is run and its filters kept when the list of services fails to load, which the page says', async () => {
    const traceId = await sendSpan(c, 'ui-no-list', 'op-of-no-list');
    await page.setRequestInterception(true);
    const fail = (r: HTTPRequest) => {
      if (new URL(r.url()).pathname === '/api/services') void r.respond({ status: 503, contentType: 'application/json', body: JSON.stringify({ data: null, errors: [{ code: 503, msg: 'storage unavailable; retry later' }] }) });
      else void r.continue();
    };
    page.on('request', fail);
    try {
      await ready('/search?service=ui-no-list&name=op-of-no-list&lookback=1h');
      expect(await page.$$eval('.trace-result', (els: any[]) => els.map((e) => e.getAttribute('data-trace-id')))).toEqual([traceId]);
      expect(await page.$eval('select[name=service]', (s: any) => s.value)).toBe('ui-no-list');
      expect(await page.$eval('select[name=name]', (s: any) => s.value)).toBe('op-of-no-list');
      expect(await page.$eval('.results', (e: any) => e.querySelector('.error')?.textContent ?? '')).toMatch(/services.*503: storage unavailable/);
    } finally {
      page.off('request', fail);
      await page.setRequestInterception(false);
    }
  });

  it('logs: a link with a severity the list lacks (1: TRACE and above) shows the severity it filters by', async () => {
    await ready('/logs?minSeverity=1&lookback=1h');
    const shown = await page.$eval('select[name=minSeverity]', (s: any) => ({ value: s.value, text: s.selectedOptions[0]?.textContent }));
    expect(shown.value).toBe('1');
    expect(shown.text).not.toBe('Any severity');
  });

  it('search: a link to a service with no stored spans says which service found nothing, not "All services"', async () => {
    await sendSpan(c, 'ui-renamed-to', 'op');
    await ready('/search?service=ui-renamed-from&lookback=1h');
    expect(await page.$eval('.results', (e: any) => e.textContent)).toContain('No traces match.');
    expect(await page.$eval('select[name=service]', (s: any) => s.value)).toBe('ui-renamed-from');
  });

  it('search: a link to an operation with no stored spans says which operation found nothing, not "All operations"', async () => {
    await sendSpan(c, 'ui-op-renamed', 'op-new');
    for (const link of ['/search?service=ui-op-renamed&name=op-old&lookback=1h', '/search?name=op-old&lookback=1h']) {
      await ready(link);
      expect(await page.$eval('.results', (e: any) => e.textContent), link).toContain('No traces match.');
      expect(await page.$eval('select[name=name]', (s: any) => s.value), link).toBe('op-old');
    }
  });

  it('search: a late failure of a service no longer picked does not replace the results with its error', async () => {
    await sendSpan(c, 'ui-slow-a', 'op-a');
    await sendSpan(c, 'ui-fast-b', 'op-b');
    await ready('/search?lookback=1h');
    const before = await page.$$eval('.trace-result', (els: any[]) => els.length);
    expect(before).toBeGreaterThan(0);
    await page.setRequestInterception(true);
    // The first service's operations fail late (a store timing out), after the second's arrived.
    let lateAnswered = false;
    const slow = (r: HTTPRequest) => {
      if (r.url().includes('/api/services/ui-slow-a/operations')) setTimeout(() => void r.respond({ status: 503, contentType: 'application/json', body: JSON.stringify({ data: null, errors: [{ code: 503, msg: 'storage unavailable; retry later' }] }) }).then(() => (lateAnswered = true)), 500);
      else void r.continue();
    };
    page.on('request', slow);
    try {
      await page.select('select[name=service]', 'ui-slow-a');
      await page.select('select[name=service]', 'ui-fast-b');
      // Not a fixed 1 s: on a loaded machine the second service's operations could still be on
      // their way. Wait for them, and for the late failure to have been answered, before looking.
      await page.waitForFunction(`[...document.querySelectorAll('select[name=name] option')].some((o) => o.textContent === 'op-b')`, { timeout: 10_000 }).catch(() => undefined);
      await eventually(async () => (lateAnswered ? true : undefined), 10_000, 'the late failure answered');
      await new Promise((r) => setTimeout(r, 300));
      expect(await page.$eval('.results', (e: any) => e.querySelector('.error')?.textContent ?? '')).toBe('');
      expect(await page.$$eval('.trace-result', (els: any[]) => els.length)).toBe(before);
      expect(await page.$$eval('select[name=name] option', (os: any[]) => os.map((o) => o.textContent))).toEqual(['All operations', 'op-b']);
    } finally {
      page.off('request', slow);
      await page.setRequestInterception(false);
    }
  });

  it('trace page: a right-to-left service name does not reorder the span name shown after it, in the title and in the span tree', async () => {
    for (const service of ['\u202Eui-override-trace', 'חנות 3']) {
      const traceId = await sendSpan(c, service, 'GET /cart');
      await ready(`/trace/${traceId}`);
      // Where the span name's first and last letters are drawn: left to right as it reads.
      const order = await page.evaluate(() => {
        const doc = (globalThis as any).document;
        const measure = (node: any, from: number) => {
          const at = (i: number) => {
            const r = doc.createRange();
            r.setStart(node, i);
            r.setEnd(node, i + 1);
            return r.getBoundingClientRect().left;
          };
          return { first: at(from), last: at(from + 'GET /cart'.length - 1) };
        };
        const textNodes = (el: any): any[] => [...el.childNodes].flatMap((n: any) => (n.nodeType === 3 ? [n] : textNodes(n)));
        const inTitle = textNodes(doc.querySelector('h1')).find((n: any) => n.textContent.includes('GET /cart'));
        const inTree = textNodes(doc.querySelector('.row .name .op')).find((n: any) => n.textContent.includes('GET /cart'));
        return { title: measure(inTitle, inTitle.textContent.indexOf('GET /cart')), tree: measure(inTree, inTree.textContent.indexOf('GET /cart')) };
      });
      expect(order.title.first, `title, ${JSON.stringify(service)}`).toBeLessThan(order.title.last);
      expect(order.tree.first, `span tree, ${JSON.stringify(service)}`).toBeLessThan(order.tree.last);
    }
  });

  it('search: a right-to-left service name does not reorder the span name shown after it', async () => {
    for (const service of ['\u202Eui-override', 'חנות 2']) {
      await sendSpan(c, service, 'GET /cart');
      await ready(`/search?service=${encodeURIComponent(service)}&lookback=1h`);
      // Where the span name's first and last letters are drawn: left to right as it reads.
      const order = await page.$eval('.trace-result .title', (t: any) => {
        const node = t.lastChild;
        const at = (i: number) => {
          const r = t.ownerDocument.createRange();
          r.setStart(node, i);
          r.setEnd(node, i + 1);
          return r.getBoundingClientRect().left;
        };
        return { text: node.textContent, first: at(0), last: at(node.textContent.length - 1) };
      });
      expect(order.text).toBe('GET /cart');
      expect(order.first, JSON.stringify(service)).toBeLessThan(order.last);
    }
  });

  it('search: in a narrow window (a phone, a split screen) each result still reads its service and operation on a line, not a letter a line', async () => {
    await sendSpan(c, 'ui-narrow-frontend', 'GET /api/products');
    await page.setViewport({ width: 390, height: 800 });
    try {
      await ready('/search?service=ui-narrow-frontend&lookback=1h');
      const title = await page.$eval('.trace-result .title', (t: any) => {
        const r = t.getBoundingClientRect();
        const lineHeight = parseFloat(t.ownerDocument.defaultView.getComputedStyle(t).lineHeight);
        return { text: t.textContent, width: r.width, lines: Math.round(r.height / lineHeight), shown: t.scrollHeight <= t.clientHeight };
      });
      expect(title.text).toBe('ui-narrow-frontend: GET /api/products');
      // The whole title fits in its (at most three) lines, at most two here, and the page width holds it.
      expect(title.shown).toBe(true);
      expect(title.lines).toBeLessThanOrEqual(2);
      expect(title.width).toBeGreaterThan(250);
    } finally {
      await page.setViewport({ width: 1280, height: 800 });
    }
  });
});
