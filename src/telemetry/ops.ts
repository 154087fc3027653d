// Operations endpoints (8888): /metrics for Prometheus, /healthz (alive), /readyz (backend
// reachable and the write queue has room).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpService, sendJson, targetPath } from '../common/http.ts';
import { OPEN, type Authenticator } from '../security/auth.ts';
import type { TlsCertificates } from '../security/tls.ts';
import { wwwAuthenticate } from '../security/tokens.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export interface Readiness {
  /** Null when ready, else why not. */
  notReadyReason(): Promise<string | null>;
}

/** How the operations port is protected: TLS, and whether /metrics needs a read token. */
export interface OpsSecurity {
  tls?: TlsCertificates | undefined;
  /** Set when ops.requireAuth: /metrics needs a token with the read scope. */
  metricsAuth?: Authenticator | undefined;
  /** Host names answered on a loopback listener besides localhost and IP addresses (ops.allowedHosts). */
  allowedHosts?: readonly string[];
}

/** The operations HTTP server. */
export class OpsServer {
  private readonly http: HttpService;
  private readonly metrics: Metrics;
  private readonly readiness: Readiness;
  private readonly metricsAuth: Authenticator;
  private readonly logger: Logger;

  constructor(listen: string, metrics: Metrics, readiness: Readiness, logger: Logger, security: OpsSecurity = {}) {
    this.logger = logger;
    this.metrics = metrics;
    this.readiness = readiness;
    this.metricsAuth = security.metricsAuth ?? OPEN;
    this.http = new HttpService({ name: 'operations endpoints', listen, shutdownGraceMs: 2000, tls: security.tls, hosts: { allowed: security.allowedHosts ?? [], option: 'ops.allowedHosts' } }, logger, (req, res) => this.route(req, res));
  }

  get boundPort(): number {
    return this.http.boundPort;
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    // The absolute form (GET http://host:8888/metrics) too: a forwarding proxy may pass a scrape or probe on.
    const path = targetPath(req.url ?? '/');
    if (path === '/metrics') {
      // Probes (/healthz, /readyz) stay open: a kubelet has no token.
      const who = this.metricsAuth.check(req.headers.authorization, 'read');
      if (who.kind === 'unauthenticated') return sendJson(res, 401, { error: 'a valid bearer token is required (Authorization: Bearer <token>)' }, { 'www-authenticate': wwwAuthenticate(who) });
      if (who.kind === 'forbidden') return sendJson(res, 403, { error: 'the bearer token does not have the read scope' });
      this.metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
          res.end(text);
        },
        // Its message stays in the log, as every listener's internal errors do (README, Answers).
        (err: Error) => {
          this.logger.error({ err: err.message }, 'metrics collection failed');
          sendJson(res, 500, { error: 'metrics collection failed; see the collector log' });
        },
      );
    } else if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
    } else if (path === '/readyz') {
      this.readiness.notReadyReason().then(
        (reason) => (reason === null ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready', reason })),
        // Its message is not for a port anyone may reach (the store's health is caught and logged before).
        () => sendJson(res, 503, { status: 'not ready', reason: 'readiness check failed' }),
      );
    } else {
      sendJson(res, 404, { error: `no route ${path}` });
    }
  }

  start(): Promise<void> {
    return this.http.start();
  }

  shutdown(): Promise<void> {
    return this.http.shutdown();
  }
}
