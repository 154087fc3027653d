// The logs view when the read API cuts a log search to its byte bound (a sixteenth of the heap's
// old generation, see query/server.ts): the answer's `warnings` say records were left out, and
// the page must say so too, or a user reads a partial list as every matching record.
import { describe, expect, it } from 'vitest';
import { launchChromium, uiPage } from '../helpers/browser.ts';
import { getJson } from '../helpers/collector.ts';
import { encodeLogs } from '../helpers/otlp-proto.ts';
import { spawnCollector } from '../helpers/process.ts';

const BODY = 'x'.repeat(100_000);

describe('web UI: a log search cut to the byte bound', () => {
  it('the logs view says the list was cut, not only how many records it shows', async () => {
    // A 96 MB heap: searches are cut at about 6 MB of records, 60 of these.
    const c = await spawnCollector({ 'storage.backend': 'memory', 'delivery.ack': 'queued', 'limits.memorySoftBytes': '0', 'query.enabled': 'true', 'query.listen': '127.0.0.1:0' }, 20_000, ['--max-old-space-size=96']);
    const queryUrl = `http://127.0.0.1:${/"port":(\d+),"msg":"read API listening"/.exec(c.output())![1]}`;
    const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'big-logs' } }] };
    const now = BigInt(Date.now()) * 1_000_000n;
    for (let i = 0; i < 3; i++) {
      const logRecords = Array.from({ length: 40 }, (_, k) => ({ timeUnixNano: String(now + BigInt(i * 40 + k)), body: { stringValue: `${i}/${k}/${BODY}` } }));
      const res = await fetch(c.httpUrl + '/v1/logs', { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords }] }] }) });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
    }
    const deadline = Date.now() + 10_000;
    const newest = async () => (await getJson(queryUrl, '/v1/logs?limit=1')).body.resourceLogs?.[0]?.scopeLogs[0].logRecords[0].body.stringValue as string | undefined;
    while (!(await newest())?.startsWith('2/39/') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
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
});
