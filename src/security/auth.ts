// Who a request is, for the listeners: one place that turns an Authorization header into a tenant
// (or a refusal) and counts refusals by listener and bounded reason, never by token or tenant.
import type { SecurityMetrics } from './metrics.ts';
import { DEFAULT_TENANT } from '../model/tenant.ts';
import { type AuthResult, type Scope, type TokenStore } from './tokens.ts';

/** The listeners that check tokens, as the `listener` label of tracehouse_auth_refused_requests_total. */
export type AuthListener = 'grpc' | 'http' | 'query' | 'ops';

/** Authorizes requests of one listener; without a token store every request is the default tenant. */
export class Authenticator {
  private readonly tokens: TokenStore | undefined;
  private readonly metrics: SecurityMetrics | undefined;
  private readonly listener: AuthListener;

  constructor(listener: AuthListener, tokens: TokenStore | undefined, metrics: SecurityMetrics | undefined) {
    this.listener = listener;
    this.tokens = tokens;
    this.metrics = metrics;
  }

  /** True when requests must carry a token (auth.tokensFile is set). */
  get enabled(): boolean {
    return this.tokens !== undefined;
  }

  /** Checks an Authorization value for scope; refusals are counted. */
  check(authorization: string | undefined, scope: Scope): AuthResult {
    if (!this.tokens) return { kind: 'allowed', tenant: DEFAULT_TENANT, scopes: ['ingest', 'read'] };
    const r = this.tokens.authorize(authorization, scope);
    if (r.kind !== 'allowed') this.metrics?.refusedAuth.inc({ listener: this.listener, reason: r.kind === 'forbidden' ? 'forbidden' : r.reason });
    return r;
  }
}

/** An Authenticator that lets everything through as the default tenant (no auth.tokensFile; tests). */
export const OPEN = new Authenticator('http', undefined, undefined);
