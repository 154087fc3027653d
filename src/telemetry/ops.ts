// Operations endpoints (8888): /metrics for Prometheus, /healthz (alive), /readyz (backend
// reachable and the write queue has room).
import { createServer, type Server } from 'node:http';
import { closeHttp, listenHttp, sendJson } from '../common/http.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export interface Readiness {
  /** Null when ready, else why not. */
  notReadyReason(): Promise<string | null>;
}

/** The operations HTTP server. */
export class OpsServer {
  private server: Server | undefined;
  private readonly listen: string;
  private readonly metrics: Metrics;
  private readonly readiness: Readiness;
  private readonly logger: Logger;
  boundPort = 0;

  constructor(listen: string, metrics: Metrics, readiness: Readiness, logger: Logger) {
    this.listen = listen;
    this.metrics = metrics;
    this.readiness = readiness;
    this.logger = logger;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => {
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
    });
    this.boundPort = await listenHttp(server, this.listen);
    this.server = server;
    this.logger.info({ listen: this.listen, port: this.boundPort }, 'operations endpoints listening');
  }

  async shutdown(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await closeHttp(server);
  }
}
