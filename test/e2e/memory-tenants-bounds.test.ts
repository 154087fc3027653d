// The memory store's bounds (storage.memory.maxSpans, maxLogs, maxBytes) are the store's, not a
// tenant's: rows are evicted oldest first whoever sent them, so one tenant's flood evicts every
// other tenant's stored rows. README says so (Tenants); this pins it through the real collector.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, metricValue, startCollector, type TestCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { tempDir } from '../helpers/tmp.ts';

const TOKENS = { quiet: 'quiet-' + randomBytes(8).toString('hex'), loud: 'loud-' + randomBytes(8).toString('hex') };

function trace(spans: number): { traceId: string; body: Uint8Array } {
  const traceId = randomBytes(16);
  const body = encodeTraces({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
      scopeSpans: [{ scope: { name: 's' }, spans: Array.from({ length: spans }, (_, i) => ({ traceId, spanId: randomBytes(8), name: 'op', startTimeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i)), endTimeUnixNano: String(1_700_000_000_000_001_000n + BigInt(i)) })) }],
    }],
  });
  return { traceId: traceId.toString('hex'), body };
}

describe('memory store: bounds shared by every tenant', () => {
  let c: TestCollector;
  beforeAll(async () => {
    const file = join(tempDir(), 'tokens.yaml');
    writeFileSync(file, `tokens:\n  - token: "${TOKENS.quiet}"\n    tenant: quiet\n    scopes: [ingest, read]\n  - token: "${TOKENS.loud}"\n    tenant: loud\n    scopes: [ingest, read]\n`);
    c = await startCollector({ 'auth.tokensFile': file, 'storage.memory.maxSpans': '100', 'delivery.ack': 'stored' });
  });
  afterAll(async () => c?.stop());

  const post = async (token: string, body: Uint8Array) => {
    const res = await fetch(`${c.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${token}` }, body });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
  };
  const read = async (token: string, traceId: string) => (await fetch(`${c.queryUrl}/v1/traces/${traceId}`, { headers: { authorization: `Bearer ${token}` } })).status;

  it("evicts a quiet tenant's trace when another tenant sends more than maxSpans, and counts it", async () => {
    const quiet = trace(10);
    await post(TOKENS.quiet, quiet.body);
    expect(await read(TOKENS.quiet, quiet.traceId)).toBe(200);
    const loud = trace(100);
    await post(TOKENS.loud, loud.body);
    expect(await read(TOKENS.loud, loud.traceId)).toBe(200);
    expect(await read(TOKENS.quiet, quiet.traceId)).toBe(404);
    await eventually(async () => ((await metricValue(c.opsUrl, 'tracehouse_storage_evicted_rows_total', { signal: 'traces' })) === 10 ? true : undefined));
  });
});
