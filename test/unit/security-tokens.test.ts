// The tokens file: validation naming entry and field (never the token), lookup of Authorization
// values, reload on change with the previous set kept when the new file is bad.
import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/config/index.ts';
import { bearerToken, parseTokens, TokensFileError, TokenStore, wwwAuthenticate } from '../../src/security/tokens.ts';
import { eventually } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

const ACME = 'acme-secret-token-0123456789';
const GLOBEX = 'globex-reader-token-abcdefghij';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function capturingLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

function tokensFile(text: string): string {
  const f = join(tempDir(), 'tokens.yaml');
  writeFileSync(f, text);
  return f;
}

const GOOD = `tokens:
  - token: "${ACME}"
    tenant: acme
    scopes: [ingest, read]
  - tokenSha256: "${sha(GLOBEX)}"
    tenant: globex
    scopes: [read]
`;

const stores: TokenStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.shutdown();
});

describe('parseTokens', () => {
  it('accepts tokens in clear and as SHA-256 digests', () => {
    const m = parseTokens(GOOD);
    expect(m.size).toBe(2);
    expect(m.get(sha(ACME))).toMatchObject({ tenant: 'acme', scopes: ['ingest', 'read'] });
    expect(m.get(sha(GLOBEX))).toMatchObject({ tenant: 'globex', scopes: ['read'] });
  });

  it.each([
    ['tokens: []', /^tokens: empty/],
    ['tokens: {}', /^tokens: expected a list/],
    ['tokenz: []', /^tokenz: unknown key/],
    ['- a', /expected a mapping/],
    [`tokens:\n  - tenant: a\n    scopes: [read]`, /^tokens\[0\]: set exactly one of token and tokenSha256/],
    [`tokens:\n  - token: "${ACME}"\n    tokenSha256: "${sha(ACME)}"\n    tenant: a\n    scopes: [read]`, /^tokens\[0\]: set exactly one/],
    [`tokens:\n  - token: "${ACME}"\n    tenant: a\n    scopes: [read]\n  - token: short-secret\n    tenant: b\n    scopes: [read]`, /^tokens\[1\]\.token: shorter than 16 characters$/],
    // Header bytes arrive as one character each: a non-ASCII token sent by curl or an SDK as UTF-8 would never match.
    [`tokens:\n  - token: "pässwort-geheim-0123"\n    tenant: a\n    scopes: [read]`, /^tokens\[0\]\.token: contains characters outside printable ASCII/],
    [`tokens:\n  - token: 12345678901234567890\n    tenant: a\n    scopes: [read]`, /^tokens\[0\]\.token: expected a string$/],
    [`tokens:\n  - tokenSha256: "abc"\n    tenant: a\n    scopes: [read]`, /^tokens\[0\]\.tokenSha256: expected 64 hexadecimal/],
    [`tokens:\n  - token: "${ACME}"\n    tenant: "a b"\n    scopes: [read]`, /^tokens\[0\]\.tenant: expected 1 to 63/],
    [`tokens:\n  - token: "${ACME}"\n    scopes: [read]`, /^tokens\[0\]\.tenant:/],
    // A tenant of digits (a customer number) is a YAML number unquoted: said so, not "expected digits".
    [`tokens:\n  - token: "${ACME}"\n    tenant: 1042\n    scopes: [read]`, /^tokens\[0\]\.tenant: YAML reads 1042 as a number; quote it/],
    [`tokens:\n  - token: "${ACME}"\n    tenant: a\n    scopes: [write]`, /^tokens\[0\]\.scopes: unknown scope "write"/],
    [`tokens:\n  - token: "${ACME}"\n    tenant: a\n    scopes: []`, /^tokens\[0\]\.scopes: expected a non-empty list/],
    [`tokens:\n  - token: "${ACME}"\n    tenant: a\n    scope: [read]`, /^tokens\[0\]\.scope: unknown field/],
    // A token written as a key (a token: tenant map, as other collectors' files have it) is not
    // quoted back: the message goes to the log and to stderr at start-up.
    [`tokens:\n  - "${ACME}": acme`, /^tokens\[0\]: an unknown field of 28 characters \(not shown: it may be a token; expected token or tokenSha256, tenant, scopes\)$/],
    [`"${ACME}":\n  tenant: acme`, /^an unknown key of 28 characters \(not shown: it may be a token; expected only "tokens"\)$/],
    [`tokens:\n  - token: "${ACME}"\n    tenant: a\n    scopes: [read]\n  - tokenSha256: "${sha(ACME)}"\n    tenant: b\n    scopes: [ingest]`, /^tokens\[1\]: the same token as tokens\[0\]/],
  ])('refuses %j naming the entry and field', (text, message) => {
    let err: unknown;
    try {
      parseTokens(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TokensFileError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain(ACME);
  });

  it('reports a YAML syntax error by position, without quoting the line that may hold a token', () => {
    const text = `tokens:\n  - token: "${ACME}\n    tenant: [acme\n`;
    expect(() => parseTokens(text)).toThrow(/^not valid YAML at line \d+, column \d+ \(\w+\)$/);
    try {
      parseTokens(text);
    } catch (e) {
      expect((e as Error).message).not.toContain('acme-secret');
    }
  });

  it('reports a YAML warning (a tag it does not know) by position, without printing the line that holds a token', () => {
    const emitted: string[] = [];
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation((w: string | Error) => void emitted.push(String(w instanceof Error ? w.message : w)));
    try {
      const m = parseTokens(`tokens:\n  - token: !plain ${ACME}\n    tenant: acme\n    scopes: [ingest]\n`);
      expect(m.size).toBe(1);
    } finally {
      spy.mockRestore();
    }
    expect(emitted.length).toBeGreaterThan(0);
    for (const w of emitted) expect(w).not.toContain('acme-secret');
  });
});

describe('bearerToken', () => {
  it('takes the token of a Bearer value, whatever the scheme case', () => {
    expect(bearerToken(`Bearer ${ACME}`)).toBe(ACME);
    expect(bearerToken(`bearer ${ACME}`)).toBe(ACME);
    expect(bearerToken(`Basic ${ACME}`)).toBeUndefined();
    expect(bearerToken('Bearer')).toBeUndefined();
    expect(bearerToken(`Bearer ${ACME} extra`)).toBeUndefined();
  });
});

describe('TokenStore', () => {
  function store(file: string, intervalMs = 60_000) {
    const { logger, lines } = capturingLogger();
    const s = new TokenStore(file, intervalMs, logger);
    stores.push(s);
    return { s, lines };
  }

  it('answers allowed with the tenant, unauthenticated, or forbidden for the scope', () => {
    const { s } = store(tokensFile(GOOD));
    expect(s.authorize(`Bearer ${ACME}`, 'ingest')).toEqual({ kind: 'allowed', tenant: 'acme', scopes: ['ingest', 'read'] });
    expect(s.authorize(`Bearer ${GLOBEX}`, 'read')).toEqual({ kind: 'allowed', tenant: 'globex', scopes: ['read'] });
    expect(s.authorize(`Bearer ${GLOBEX}`, 'ingest')).toEqual({ kind: 'forbidden', tenant: 'globex', scope: 'ingest' });
    expect(s.authorize(undefined, 'read')).toEqual({ kind: 'unauthenticated', reason: 'missing' });
    expect(s.authorize(`Basic ${ACME}`, 'read')).toEqual({ kind: 'unauthenticated', reason: 'malformed' });
    expect(s.authorize(`Bearer ${ACME}x`, 'read')).toEqual({ kind: 'unauthenticated', reason: 'unknown' });
    // The digest is what the file may hold; it is not itself a token.
    expect(s.authorize(`Bearer ${sha(GLOBEX)}`, 'read')).toEqual({ kind: 'unauthenticated', reason: 'unknown' });
    expect(wwwAuthenticate({ kind: 'unauthenticated', reason: 'missing' })).toBe('Bearer realm="tracehouse"');
    expect(wwwAuthenticate({ kind: 'unauthenticated', reason: 'unknown' })).toContain('error="invalid_token"');
  });

  it('stops start-up naming auth.tokensFile, the path and the entry, never the token', () => {
    const { logger } = capturingLogger();
    const missing = join(tempDir(), 'none.yaml');
    expect(() => new TokenStore(missing, 1000, logger)).toThrow(ConfigError);
    expect(() => new TokenStore(missing, 1000, logger)).toThrow(`auth.tokensFile = ${JSON.stringify(missing)}: cannot read the file (ENOENT)`);
    const bad = tokensFile(`tokens:\n  - token: "${ACME}"\n    tenant: acme\n    scopes: [admin]\n`);
    expect(() => new TokenStore(bad, 1000, logger)).toThrow(/auth\.tokensFile = ".*tokens\.yaml": tokens\[0\]\.scopes: unknown scope "admin"/);
  });

  it('reloads when the file is replaced, and keeps the previous tokens when the new file is bad, logging once', async () => {
    const file = tokensFile(GOOD);
    const { s, lines } = store(file);
    s.start();
    const NEW = 'initech-new-token-0123456789';
    const next = file + '.tmp';
    writeFileSync(next, `tokens:\n  - token: "${NEW}"\n    tenant: initech\n    scopes: [ingest]\n`);
    renameSync(next, file);
    await eventually(async () => (s.authorize(`Bearer ${NEW}`, 'ingest').kind === 'allowed' ? true : undefined), 5000, 'the reload');
    expect(s.authorize(`Bearer ${ACME}`, 'ingest')).toMatchObject({ kind: 'unauthenticated' });

    writeFileSync(file, `tokens:\n  - token: "${ACME}"\n    tenant: "bad tenant"\n    scopes: [read]\n`);
    s.reload();
    s.reload();
    expect(s.authorize(`Bearer ${NEW}`, 'ingest')).toMatchObject({ kind: 'allowed', tenant: 'initech' });
    const warnings = lines.filter((l) => l.includes('keeping the previous tokens'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('tokens[0].tenant');
    // No log line ever carries a token.
    for (const l of lines) for (const t of [ACME, GLOBEX, NEW]) expect(l).not.toContain(t);
  });

  it('holds no token in clear, only SHA-256 digests, before and after a reload (README, Security)', () => {
    // Every string the store reaches through its own fields (the logger aside): a heap or core
    // dump of the collector must not hand over the tokens of a file that lists them in clear.
    const reachable = (root: object): string[] => {
      const out: string[] = [];
      const seen = new Set<unknown>();
      const walk = (v: unknown, depth: number): void => {
        if (typeof v === 'string') return void out.push(v);
        if (v === null || typeof v !== 'object' || seen.has(v) || depth > 8 || Buffer.isBuffer(v)) return;
        seen.add(v);
        if (v instanceof Map) {
          for (const [k, x] of v) {
            walk(k, depth + 1);
            walk(x, depth + 1);
          }
        }
        else if (v instanceof Set) for (const x of v) walk(x, depth + 1);
        else for (const [k, x] of Object.entries(v)) if (k !== 'logger') walk(x, depth + 1);
      };
      walk(root, 0);
      return out;
    };
    const file = tokensFile(GOOD);
    const { s } = store(file);
    expect(s.authorize(`Bearer ${ACME}`, 'read').kind).toBe('allowed');
    for (const text of reachable(s)) expect(text).not.toContain(ACME);
    const NEW = 'initech-new-token-0123456789';
    writeFileSync(file, `tokens:\n  - token: "${NEW}"\n    tenant: initech\n    scopes: [ingest]\n`);
    s.reload();
    expect(s.authorize(`Bearer ${NEW}`, 'ingest').kind).toBe('allowed');
    for (const text of reachable(s)) expect(text).not.toContain(NEW);
  });
});
