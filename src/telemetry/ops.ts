// Operations endpoints (8888): /metrics for Prometheus, /healthz (alive), /readyz (backend
// reachable and the write queue has room).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpService, sendJson } from '../common/http.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export interface Readiness {
  /** Null when ready, else why not. */
  notReadyReason(): Promise<string | null>;
}

/** The operations HTTP server. */
export class OpsServer {
  private readonly http: HttpService;
  private readonly metrics: Metrics;
  private readonly readiness: Readiness;

  constructor(listen: string, metrics: Metrics, readiness: Readiness, logger: Logger) {
    this.metrics = metrics;
    this.readiness = readiness;
    this.http = new HttpService({ name: 'operations endpoints', listen, shutdownGraceMs: 2000 }, logger, (req, res) => this.route(req, res));
  }

  get boundPort(): number {
    return this.http.boundPort;
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      this.metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
          res.end(text);
        },
        (err: Error) => sendJson(res, 500, { error: err.message }),
      );
    } else if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
    } else if (path === '/readyz') {
      this.readiness.notReadyReason().then(
        (reason) => (reason === null ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready', reason })),
        (err: Error) => sendJson(res, 503, { status: 'not ready', reason: err.message }),
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
