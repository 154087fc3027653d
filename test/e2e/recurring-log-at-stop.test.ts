// A burst of recurring events (here requests refused for want of a valid token) logs its first
// event at once and the rest when the minute ends. A collector stopped within that minute (the
// rolling restart that follows a wrong tokens file) never wrote the rest: the log said
// "refused: 1" for a burst of 20. The stop now writes the lines still waiting for their minute.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { startCollector } from '../helpers/collector.ts';
import { capturedLogger } from '../helpers/logger.ts';
import { tempDir } from '../helpers/tmp.ts';

it('a stop within the minute writes the recurring lines waiting for its end, with their counts', async () => {
  const file = join(tempDir(), 'tokens.yaml');
  writeFileSync(file, 'tokens:\n  - token: "0123456789abcdef0123456789abcdef"\n    tenant: t\n    scopes: [ingest, read]\n');
  const { logger, lines } = capturedLogger();
  const c = await startCollector({ 'auth.tokensFile': file, 'receiver.grpc.enabled': 'false', 'query.enabled': 'false' }, { logger });
  const BURST = 20;
  try {
    for (let i = 0; i < BURST; i++) {
      const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' }, body: '{}' });
      expect(res.status).toBe(401);
    }
  } finally {
    await c.stop();
  }
  const refusals = lines().filter((l) => l.msg.startsWith('refusing requests without a valid bearer token'));
  expect(refusals.reduce((n, l) => n + Number(l['refused']), 0), JSON.stringify(refusals)).toBe(BURST);
  // Written before the stop's last line, not after it.
  const all = lines();
  expect(all.findIndex((l) => l.msg.startsWith('refusing requests without') && Number(l['refused']) > 1)).toBeLessThan(all.findIndex((l) => l.msg === 'tracehouse stopped'));
});
