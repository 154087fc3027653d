// Who a request is, for the listeners: one place that turns an Authorization header into a tenant
// (or a refusal) and counts refusals by listener and bounded reason, never by token or tenant.
import { RecurringLogs, type Logger } from '../telemetry/logger.ts';
import type { SecurityMetrics } from './metrics.ts';
import { DEFAULT_TENANT } from '../model/tenant.ts';
import { type AuthResult, type Scope, type TokenStore } from './tokens.ts';

/** The listeners that check tokens, as the `listener` label of tracehouse_auth_refused_requests_total. */
export type AuthListener = 'grpc' | 'http' | 'query' | 'ops';

/** Why a request is refused, as the `reason` label of tracehouse_auth_refused_requests_total. */
const REFUSAL_REASONS = ['missing', 'malformed', 'unknown', 'forbidden'] as const;

/** Authorizes requests of one listener; without a token store every request is the default tenant. */
export class Authenticator {
  private readonly tokens: TokenStore | undefined;
  private readonly metrics: SecurityMetrics | undefined;
  private readonly listener: AuthListener;
  private readonly logger: Logger | undefined;
  /** One per reason: a line's count is of the reason it names (a shared one said "malformed" for a minute of unknown tokens). */
  private readonly refusals = new RecurringLogs<(typeof REFUSAL_REASONS)[number]>();

  constructor(listener: AuthListener, tokens: TokenStore | undefined, metrics: SecurityMetrics | undefined, logger?: Logger) {
    this.listener = listener;
    this.tokens = tokens;
    this.metrics = metrics;
    this.logger = logger;
    // Its refusals' series start at 0 (as the collector's other counters do): a series born at 1
    // shows no increase, so the first refused token would be missed.
    if (tokens) for (const reason of REFUSAL_REASONS) metrics?.refusedAuth.inc({ listener, reason }, 0);
  }

  /** True when requests must carry a token (auth.tokensFile is set). */
  get enabled(): boolean {
    return this.tokens !== undefined;
  }

  /** Checks an Authorization value for scope; refusals are counted. */
  check(authorization: string | undefined, scope: Scope): AuthResult {
    if (!this.tokens) return { kind: 'allowed', tenant: DEFAULT_TENANT, scopes: ['ingest', 'read'] };
    const r = this.tokens.authorize(authorization, scope);
    if (r.kind !== 'allowed') this.refused(r.kind === 'forbidden' ? 'forbidden' : r.reason);
    return r;
  }

  /** Counts a refusal; says so in the log at most once a minute, with the count (never the token). */
  private refused(reason: (typeof REFUSAL_REASONS)[number]): void {
    this.metrics?.refusedAuth.inc({ listener: this.listener, reason });
    if (!this.logger) return;
    const logger = this.logger;
    this.refusals.log(reason, (refused) => logger.warn({ listener: this.listener, reason, refused }, 'refusing requests without a valid bearer token (see tracehouse_auth_refused_requests_total)'));
  }
}

/** An Authenticator that lets everything through as the default tenant (no auth.tokensFile; tests). */
export const OPEN = new Authenticator('http', undefined, undefined);
