// The once-a-minute log line of refused bearer tokens: its count is of the reason it names. An
// operator reading "reason: malformed, refused: 101" looks for a client sending a broken header,
// when 100 of them were a revoked (unknown) token.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Authenticator } from '../../src/security/auth.ts';
import { createSecurityMetrics } from '../../src/security/metrics.ts';
import { TokenStore } from '../../src/security/tokens.ts';
import { flushRecurringLogs } from '../../src/telemetry/logger.ts';
import { tempDir } from '../helpers/tmp.ts';

const stores: TokenStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.shutdown();
});

describe('refused bearer tokens in the log', () => {
  it('counts each reason in the lines that name it', async () => {
    const file = join(tempDir(), 'tokens.yaml');
    writeFileSync(file, 'tokens:\n  - token: "a-long-random-secret-0123"\n    tenant: acme\n    scopes: [ingest]\n');
    const lines: { reason: string; refused: number }[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write: (chunk: Buffer, _enc, cb) => (lines.push(JSON.parse(chunk.toString())), cb()) }));
    const tokens = new TokenStore(file, 60_000, logger);
    stores.push(tokens);
    const registry = new Registry();
    const auth = new Authenticator('http', tokens, createSecurityMetrics(registry), logger);

    for (let i = 0; i < 5; i++) expect(auth.check('Bearer revoked-token-0123456789', 'ingest').kind).not.toBe('allowed');
    expect(auth.check('Basic dXNlcjpwYXNz', 'ingest').kind).not.toBe('allowed');
    flushRecurringLogs();
    await new Promise((r) => setImmediate(r));

    const logged: Record<string, number> = {};
    for (const l of lines) logged[l.reason] = (logged[l.reason] ?? 0) + l.refused;
    // As the counter has them.
    const counted: Record<string, number> = {};
    for (const v of (await registry.getSingleMetric('tracehouse_auth_refused_requests_total')!.get()).values) if (v.value > 0) counted[String(v.labels['reason'])] = v.value;
    expect(counted).toEqual({ unknown: 5, malformed: 1 });
    expect(logged).toEqual(counted);
  });
});
