// The logs view when the read API cuts a log search to its byte bound (a sixteenth of the heap's
// old generation, see query/server.ts): the answer's `warnings` say records were left out, and
// the page must say so too, or a user reads a partial list as every matching record.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BIG_LOG_BODY, sendBigLogs } from '../helpers/big-logs.ts';
import { launchChromium, uiPage } from '../helpers/browser.ts';
import { getJson } from '../helpers/collector.ts';
import { encodeLogs, encodeTraces } from '../helpers/otlp-proto.ts';
import { spawnCollector } from '../helpers/process.ts';

declare const document: any;

describe('web UI: a log search cut to the byte bound', () => {
  it('the logs view says the list was cut, not only how many records it shows', async () => {
    // A 96 MB heap: searches are cut at about 6 MB of records, 60 of these.
    const c = await spawnCollector({ 'storage.backend': 'memory', 'delivery.ack': 'queued', 'limits.memorySoftBytes': '0', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0' }, 20_000, ['--max-old-space-size=96']);
    const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
    await sendBigLogs(c, queryUrl, 3);
    // The read API cuts this search and says so.
    expect((await getJson(queryUrl, '/v1/logs?limit=1000')).body.warnings).toEqual([expect.stringMatching(/cut/)]);

    const browser = await launchChromium();
    try {
      const page = await uiPage(browser);
      await page.goto(`${queryUrl}/logs?lookback=all&limit=1000`, { waitUntil: 'domcontentloaded' });
      await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
      const shown = await page.$$eval('.log-row', (els) => els.length);
      expect(shown).toBeGreaterThan(0);
      expect(shown).toBeLessThan(120);
      // Said above the list, as a cut trace is on the trace page.
      const warnings = await page.$$eval('.results .warning', (els: any[]) => els.map((e) => e.innerText as string));
      expect(warnings).toEqual([expect.stringMatching(/^log search cut: showing the \d+ newest matching records/)]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it("an early span's details still show its log record when the trace's later, larger records fill the read's byte bound", async () => {
    const c = await spawnCollector({ 'storage.backend': 'memory', 'delivery.ack': 'queued', 'limits.memorySoftBytes': '0', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0' }, 20_000, ['--max-old-space-size=96']);
    const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'big-job' } }] };
    const now = BigInt(Date.now()) * 1_000_000n;
    const traceId = randomBytes(16);
    const [root, early] = [randomBytes(8), randomBytes(8)];
    const spans = [
      { traceId, spanId: root, name: 'batch job', kind: 1, startTimeUnixNano: now, endTimeUnixNano: now + 200_000_000n },
      { traceId, spanId: early, parentSpanId: root, name: 'load input', kind: 1, startTimeUnixNano: now + 1_000_000n, endTimeUnixNano: now + 2_000_000n },
    ];
    const sent = await fetch(c.httpUrl + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeTraces({ resourceSpans: [{ resource, scopeSpans: [{ spans }] }] }) });
    await sent.arrayBuffer();
    expect(sent.status).toBe(200);
    // One small record of the early span, then 80 of 100 KB of the root's: about 8 MB, past the bound.
    const batches = [[{ timeUnixNano: now + 1_500_000n, body: { stringValue: 'input loaded' }, traceId, spanId: early }]];
    for (let i = 0; i < 2; i++) batches.push(Array.from({ length: 40 }, (_, k) => ({ timeUnixNano: now + 5_000_000n + BigInt(i * 40 + k), body: { stringValue: `${i}/${k}/${BIG_LOG_BODY}` }, traceId, spanId: root })));
    for (const logRecords of batches) {
      const res = await fetch(c.httpUrl + '/v1/logs', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords }] }] }) });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
    }
    const hexId = traceId.toString('hex');
    const deadline = Date.now() + 10_000;
    const newest = async () => (await getJson(queryUrl, `/v1/logs?traceId=${hexId}&limit=1`)).body.resourceLogs?.[0]?.scopeLogs[0].logRecords[0].body.stringValue as string | undefined;
    while (!(await newest())?.startsWith('1/39/') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // The trace's records as the page asks for them: cut, and without the early span's.
    const all = (await getJson(queryUrl, `/v1/logs?traceId=${hexId}&limit=1000`)).body;
    expect(all.warnings).toEqual([expect.stringMatching(/cut/)]);

    const browser = await launchChromium();
    try {
      const page = await uiPage(browser);
      await page.goto(`${queryUrl}/trace/${hexId}`, { waitUntil: 'domcontentloaded' });
      await page.waitForSelector('#app[data-ready="true"]', { timeout: 15_000 });
      await page.click(`.row[data-span-id="${early.toString('hex')}"]`);
      await page.waitForFunction(() => !document.querySelector('.span-logs')?.textContent?.includes('Loading'), { timeout: 10_000 });
      expect(await page.$eval('.span-logs', (e: any) => e.innerText as string)).toContain('input loaded');
    } finally {
      await browser.close();
    }
  }, 60_000);
});
