// Read latency per API for /metrics. The route label is a fixed name chosen from the path's
// shape, never the path itself: trace ids and service names in paths are unbounded input.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Gauge, Histogram, type Registry } from 'prom-client';
import { answerCut } from './json-stream.ts';

/** The read API's routes as the latency histogram names them. */
export const READ_ROUTES = [
  'otlp_trace',
  'otlp_search_traces',
  'otlp_search_logs',
  'jaeger_services',
  'jaeger_operations',
  'jaeger_traces',
  'jaeger_trace',
  'jaeger_dependencies',
  'jaeger_v3_services',
  'jaeger_v3_operations',
  'jaeger_v3_traces',
  'jaeger_v3_trace',
  'jaeger_v3_trace_summaries',
  'jaeger_other',
  'ui',
  'other',
] as const;
export type ReadRoute = (typeof READ_ROUTES)[number];

/**
 * A request target as the read API routes it: leading slashes collapsed (a client's base URL
 * ending in "/" makes "//api/…", which URL would read as a host named "api").
 */
export function routedTarget(target: string): string {
  return target.replace(/^\/{2,}/, '/');
}

/**
 * The path a request target is routed by, as the read API's router reads it (a URL against a
 * base): an absolute-form target (RFC 9112 3.2.2, `GET http://host/api/services`) is its path,
 * dot segments are resolved. A target that is no URL is left as it is (answered 400).
 */
export function routedPath(target: string): string {
  const t = routedTarget(target);
  try {
    return new URL(t, 'http://localhost').pathname;
  } catch {
    return t.split('?')[0]!;
  }
}

/** The bounded route name of a read API path. */
export function readRoute(path: string): ReadRoute {
  if (path === '/v1/traces') return 'otlp_search_traces';
  if (path === '/v1/logs') return 'otlp_search_logs';
  if (path.startsWith('/v1/traces/')) return 'otlp_trace';
  if (path === '/api/v3/services') return 'jaeger_v3_services';
  if (path === '/api/v3/operations') return 'jaeger_v3_operations';
  if (path === '/api/v3/traces') return 'jaeger_v3_traces';
  if (path === '/api/v3/trace-summaries') return 'jaeger_v3_trace_summaries';
  if (/^\/api\/v3\/traces\/[^/]+$/.test(path)) return 'jaeger_v3_trace';
  if (path === '/api/services') return 'jaeger_services';
  if (path === '/api/operations' || /^\/api\/services\/[^/]+\/operations$/.test(path)) return 'jaeger_operations';
  if (path === '/api/traces') return 'jaeger_traces';
  if (/^\/api\/traces\/[^/]+$/.test(path)) return 'jaeger_trace';
  if (path === '/api/dependencies') return 'jaeger_dependencies';
  if (path.startsWith('/api/')) return 'jaeger_other';
  // A page's path with trailing slashes is the UI's too (redirected to the page).
  if (path === '/' || path.startsWith('/ui/') || path.startsWith('/trace/') || /^\/(?:search|logs)\/*$/.test(path)) return 'ui';
  return 'other';
}

/** Observes each read API request's duration, from arrival to the last byte handed to the socket. */
export class ReadMetrics {
  private readonly duration: Histogram<'route' | 'code'>;

  /** `waiting`: the reads waiting their turn (query.maxConcurrentReads), read at scrape time. */
  constructor(registry: Registry, waiting: () => number = () => 0) {
    new Gauge({
      name: 'tracehouse_query_waiting_reads',
      help: 'Read API reads (traces, Jaeger searches, log searches) waiting for one of query.maxConcurrentReads turns; their wait counts in tracehouse_query_request_duration_seconds',
      registers: [registry],
      collect() {
        this.set(waiting());
      },
    });
    this.duration = new Histogram({
      name: 'tracehouse_query_request_duration_seconds',
      help: 'Read API request duration by route and status class (2xx, 4xx, 5xx; an answer cut by a failure after its headers: 5xx), or abandoned: the connection closed before the answer was all sent (the client left, or took nothing of it for 30 s)',
      labelNames: ['route', 'code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    // The classes an alert watches start at 0 for every route, so rate() and increase() of a
    // route's 4xx or 5xx see the first one (3xx is only the UI's: 304 Not Modified, a page's redirect).
    for (const route of READ_ROUTES) for (const code of ['2xx', '4xx', '5xx', 'abandoned']) this.duration.zero({ route, code });
  }

  /**
   * Starts timing a request; the observation is made when its response finishes (or its connection
   * closes first). An answer not all sent is no success, whatever status was set or sent: one cut
   * by a failure after its headers is 5xx (the server failed it), one whose connection closed first
   * is `abandoned` (the client left, before its headers or mid-answer, or took nothing of it for
   * QueryOptions.writeStallMs; or the collector stopped first), as nginx's 499.
   */
  track(req: IncomingMessage, res: ServerResponse): void {
    const t = performance.now();
    const route = readRoute(routedPath(req.url ?? '/'));
    res.once('close', () => {
      const code = res.writableFinished ? `${Math.min(5, Math.max(1, Math.floor(res.statusCode / 100)))}xx` : answerCut(res) === 'failed' ? '5xx' : 'abandoned';
      this.duration.observe({ route, code }, (performance.now() - t) / 1000);
    });
  }
}
