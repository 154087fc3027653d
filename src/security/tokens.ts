// Bearer tokens → tenants. The tokens file (auth.tokensFile) lists who may send (ingest) and who
// may read, and which tenant their data belongs to:
//
//   tokens:
//     - token: "…"             # or tokenSha256: "<64 hex>", so the file need not hold the secret
//       tenant: acme
//       scopes: [ingest, read]
//
// Only SHA-256 digests are kept in memory. A presented token is hashed and looked up by digest,
// then confirmed with timingSafeEqual: the time taken does not depend on how much of a secret
// matched. Tokens are never logged, and no error message quotes one (YAML syntax errors are
// reported by line and column only, since the parser's excerpt could hold a token).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { YAMLParseError } from 'yaml';
import { ConfigError, parseYamlQuietly } from '../config/index.ts';
import { TENANT_NAME } from '../model/tenant.ts';
import type { Logger } from '../telemetry/logger.ts';
import { FileWatch } from './watch.ts';

export const SCOPES = ['ingest', 'read'] as const;
export type Scope = (typeof SCOPES)[number];

export { DEFAULT_TENANT } from '../model/tenant.ts';

/** What a request may do: allowed (with its tenant), not authenticated (401), or not allowed this scope (403). */
export type AuthResult =
  | { kind: 'allowed'; tenant: string; scopes: readonly Scope[] }
  | { kind: 'unauthenticated'; reason: 'missing' | 'malformed' | 'unknown' }
  | { kind: 'forbidden'; tenant: string; scope: Scope };

interface Entry {
  digest: Buffer;
  tenant: string;
  scopes: readonly Scope[];
}

const HEX64 = /^[0-9a-fA-F]{64}$/;
const MIN_TOKEN_CHARS = 16;
const MAX_TOKEN_CHARS = 4096;
const FIELDS = new Set(['token', 'tokenSha256', 'tenant', 'scopes']);

/** A tokens file that cannot be used; the message names the entry and field, never a token. */
export class TokensFileError extends Error {
  override readonly name = 'TokensFileError';
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * Whether an unknown key could be a token written as a key (`- <token>: acme`, a token → tenant
 * map as other collectors' files have it): as long as a token may be. Such a key is named by its
 * length only, as the message goes to the log and, at start-up, to stderr; a misspelt field
 * (`scope`, `tennant`) is shorter and is quoted.
 */
function mayBeToken(key: string): boolean {
  return key.length >= MIN_TOKEN_CHARS;
}

/** Parses and validates a tokens file's text into entries keyed by hex digest. Throws TokensFileError. */
export function parseTokens(text: string): Map<string, Entry> {
  let doc: unknown;
  try {
    doc = parseYamlQuietly(text, 'tokens file');
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const at = err.linePos?.[0];
      throw new TokensFileError(`not valid YAML${at ? ` at line ${at.line}, column ${at.col}` : ''} (${err.code})`);
    }
    throw new TokensFileError('not valid YAML');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new TokensFileError('expected a mapping with a "tokens" list');
  const top = doc as Record<string, unknown>;
  for (const k of Object.keys(top)) {
    if (k === 'tokens') continue;
    throw new TokensFileError(mayBeToken(k) ? `an unknown key of ${k.length} characters (not shown: it may be a token; expected only "tokens")` : `${k}: unknown key (expected only "tokens")`);
  }
  const list = top['tokens'];
  if (!Array.isArray(list)) throw new TokensFileError('tokens: expected a list');
  if (list.length === 0) throw new TokensFileError('tokens: empty; every request would be refused');
  const out = new Map<string, Entry>();
  const where = new Map<string, number>();
  list.forEach((item: unknown, i) => {
    const at = `tokens[${i}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new TokensFileError(`${at}: expected a mapping with token or tokenSha256, tenant and scopes`);
    const e = item as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (FIELDS.has(k)) continue;
      throw new TokensFileError(mayBeToken(k) ? `${at}: an unknown field of ${k.length} characters (not shown: it may be a token; expected token or tokenSha256, tenant, scopes)` : `${at}.${k}: unknown field (expected token or tokenSha256, tenant, scopes)`);
    }
    const hasToken = e['token'] !== undefined;
    const hasDigest = e['tokenSha256'] !== undefined;
    if (hasToken === hasDigest) throw new TokensFileError(`${at}: set exactly one of token and tokenSha256`);
    let digest: Buffer;
    if (hasToken) {
      const t = e['token'];
      if (typeof t !== 'string') throw new TokensFileError(`${at}.token: expected a string`);
      if (t.length < MIN_TOKEN_CHARS) throw new TokensFileError(`${at}.token: shorter than ${MIN_TOKEN_CHARS} characters`);
      if (t.length > MAX_TOKEN_CHARS) throw new TokensFileError(`${at}.token: longer than ${MAX_TOKEN_CHARS} characters`);
      if (/\s/.test(t)) throw new TokensFileError(`${at}.token: contains whitespace, which an Authorization header cannot carry`);
      // Node reads a header's bytes as one character each: a client's UTF-8 of ä arrives as Ã¤, and
      // the token never matches (RFC 6750's bearer tokens are ASCII).
      if (/[^\x21-\x7e]/.test(t)) throw new TokensFileError(`${at}.token: contains characters outside printable ASCII, which no client's Authorization header delivers as written (openssl rand -hex 32 makes one that fits)`);
      digest = sha256(t);
    } else {
      const d = e['tokenSha256'];
      if (typeof d !== 'string' || !HEX64.test(d)) throw new TokensFileError(`${at}.tokenSha256: expected 64 hexadecimal characters (sha256sum of the token)`);
      digest = Buffer.from(d, 'hex');
    }
    const tenant = e['tenant'];
    // tenant: 1042 (a customer number) is a YAML number, and 0042 would read as 42: quoting is the only safe reading.
    if (typeof tenant === 'number') throw new TokensFileError(`${at}.tenant: YAML reads ${tenant} as a number; quote it as written (tenant: "…") so it is read as a name`);
    if (typeof tenant !== 'string' || !TENANT_NAME.test(tenant)) {
      throw new TokensFileError(`${at}.tenant: expected 1 to 63 letters, digits, '_', '.' or '-' starting with a letter or digit${typeof tenant === 'string' ? `, got ${JSON.stringify(tenant.slice(0, 80))}` : ''}`);
    }
    const scopes = e['scopes'];
    if (!Array.isArray(scopes) || scopes.length === 0) throw new TokensFileError(`${at}.scopes: expected a non-empty list of ${SCOPES.join(', ')}`);
    for (const s of scopes) {
      if (!SCOPES.includes(s as Scope)) throw new TokensFileError(`${at}.scopes: unknown scope ${JSON.stringify(String(s).slice(0, 80))} (known: ${SCOPES.join(', ')})`);
    }
    const hex = digest.toString('hex');
    const prev = where.get(hex);
    if (prev !== undefined) throw new TokensFileError(`${at}: the same token as tokens[${prev}]`);
    where.set(hex, i);
    out.set(hex, { digest, tenant, scopes: Object.freeze([...new Set(scopes as Scope[])]) });
  });
  return out;
}

/** Extracts the token of an `Authorization: Bearer <token>` value, or undefined when it is not one. */
export function bearerToken(header: string): string | undefined {
  const m = /^[Bb][Ee][Aa][Rr][Ee][Rr] +([^\s]{1,4096}) *$/.exec(header);
  return m?.[1];
}

/** The tokens of auth.tokensFile, reloaded when the file changes; answers who a request is. */
export class TokenStore {
  private entries: Map<string, Entry>;
  private readonly file: string;
  private readonly logger: Logger;
  private readonly onReload: (result: 'applied' | 'failed') => void;
  private readonly watch: FileWatch;
  /**
   * SHA-256 of the file's text in use, to tell a change from a rewrite of the same text: the text
   * itself holds the tokens written in clear, which the store never keeps (only their digests).
   */
  private lastTextDigest: string;
  private lastFailure = '';

  /** Loads the file at start-up; a missing or invalid file throws ConfigError naming auth.tokensFile, the path and the entry. */
  constructor(file: string, reloadCheckIntervalMs: number, logger: Logger, onReload: (result: 'applied' | 'failed') => void = () => {}) {
    this.file = file;
    this.logger = logger;
    this.onReload = onReload;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`invalid configuration: auth.tokensFile = ${JSON.stringify(file)}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    this.lastTextDigest = sha256(text).toString('hex');
    try {
      this.entries = parseTokens(text);
    } catch (err) {
      throw new ConfigError(`invalid configuration: auth.tokensFile = ${JSON.stringify(file)}: ${(err as Error).message}`);
    }
    this.watch = new FileWatch([file], reloadCheckIntervalMs, () => this.reload());
  }

  /** Number of tokens currently accepted. */
  get size(): number {
    return this.entries.size;
  }

  /** Who an Authorization header value is, and whether it may use scope. */
  authorize(authorization: string | undefined, scope: Scope): AuthResult {
    if (authorization === undefined || authorization === '') return { kind: 'unauthenticated', reason: 'missing' };
    const token = bearerToken(authorization);
    if (token === undefined) return { kind: 'unauthenticated', reason: 'malformed' };
    const digest = sha256(token);
    const entry = this.entries.get(digest.toString('hex'));
    // The map is keyed by the digest, not the secret; the equal-time check confirms the match.
    if (entry === undefined || !timingSafeEqual(entry.digest, digest)) return { kind: 'unauthenticated', reason: 'unknown' };
    if (!entry.scopes.includes(scope)) return { kind: 'forbidden', tenant: entry.tenant, scope };
    return { kind: 'allowed', tenant: entry.tenant, scopes: entry.scopes };
  }

  start(): void {
    this.watch.start();
  }

  shutdown(): void {
    this.watch.shutdown();
  }

  /** Re-reads the file; an unreadable or invalid one keeps the previous tokens and is logged once. */
  reload(): void {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      return this.failed(`cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    // Back to the tokens in use (a bad edit reverted): the next bad edit is news again.
    const textDigest = sha256(text).toString('hex');
    if (textDigest === this.lastTextDigest) {
      this.lastFailure = '';
      return;
    }
    let next: Map<string, Entry>;
    try {
      next = parseTokens(text);
    } catch (err) {
      return this.failed((err as Error).message);
    }
    this.entries = next;
    this.lastTextDigest = textDigest;
    this.lastFailure = '';
    this.onReload('applied');
    this.logger.info({ file: this.file, tokens: next.size }, 'tokens file reloaded');
  }

  private failed(problem: string): void {
    this.onReload('failed');
    if (problem === this.lastFailure) return;
    this.lastFailure = problem;
    this.logger.warn({ file: this.file, problem }, 'tokens file changed but cannot be used; keeping the previous tokens');
  }
}

/** The WWW-Authenticate value of a 401 (RFC 6750): invalid_token when a token was sent but not accepted. */
export function wwwAuthenticate(result: Extract<AuthResult, { kind: 'unauthenticated' }>): string {
  return result.reason === 'missing' ? 'Bearer realm="tracehouse"' : 'Bearer realm="tracehouse", error="invalid_token"';
}
