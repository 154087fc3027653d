// A ClickHouse scan's cursor outlives the process that made it: `tracehouse copy` saves it in its
// checkpoint and a later run goes on from it, maybe in another time zone (the in-process chdb takes
// the process's TZ; a server's timezone may change between runs). The log records' key must not
// depend on the server's time zone, or the records of the cursor's time are skipped or copied twice.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);
const dir = tempDir('tracehouse-chdb-tz-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const at = (p: string) => JSON.stringify(new URL(p, import.meta.url).href);

/** One step on the chdb store in `dir`, in a process of its own in time zone `tz`; returns what it prints. */
async function step(tz: string, body: string): Promise<string> {
  const script = `
import { pino } from 'pino';
import { loadConfig } from ${at('../../src/config/index.ts')};
import { clickhouseOptions } from ${at('../../src/storage/index.ts')};
import { createClickhouseBackend } from ${at('../../src/storage/clickhouse/index.ts')};
import { createMetrics } from ${at('../../src/telemetry/metrics.ts')};
import { makeLog, writeLogs } from ${at('../helpers/rows.ts')};
const config = loadConfig({ flags: { 'storage.backend': 'clickhouse', 'storage.clickhouse.urls': ${JSON.stringify(`chdb://${dir}?database=scantz`)} } });
const b = createClickhouseBackend(clickhouseOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
await b.start();
${body}
await b.shutdown();
`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TZ: tz }, timeout: 30_000 });
  return stdout.trim();
}

it('goes on with a log scan in another time zone, passing each record of the cursor time once', async () => {
  const severities = Array.from({ length: 20 }, (_, i) => i + 1);
  // Records of one time (and one observed time), told apart by severity only; the first page in Los Angeles.
  const first = JSON.parse(
    await step(
      'America/Los_Angeles',
      `const t = 1650000000000000000n;
await writeLogs(b, ${JSON.stringify(severities)}.map((severityNumber) => makeLog({ serviceName: 'scan-tz', timeUnixNano: t, observedTimeUnixNano: t + 10n, severityNumber, traceId: '', spanId: '' })));
const p = await b.scanLogs('default', { service: 'scan-tz', limit: 5 });
console.log(JSON.stringify({ got: p.rows.map((r) => r.severityNumber), next: p.next }));`,
    ),
  ) as { got: number[]; next: string };
  expect(first.got).toHaveLength(5);
  // The rest in Tokyo, from the first page's cursor.
  const rest = JSON.parse(
    await step(
      'Asia/Tokyo',
      `const got = [];
let after = ${JSON.stringify(first.next)};
for (let page = 0; page < 20; page++) {
  const p = await b.scanLogs('default', { service: 'scan-tz', limit: 5, after });
  got.push(...p.rows.map((r) => r.severityNumber));
  if (p.done) break;
  after = p.next;
}
console.log(JSON.stringify(got));`,
    ),
  ) as number[];
  expect([...first.got, ...rest].sort((x, y) => x - y)).toEqual(severities);
});
