// The read API's latency histogram before its first request of a kind: README (Operations and
// metrics) promises every known label set at 0, so an alert on rate() or increase() of the 4xx or
// 5xx answers of a route sees the first failure (a series born at 1 shows an increase of 0).
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { READ_ROUTES, ReadMetrics, readRoute } from '../../src/query/metrics.ts';

describe('ReadMetrics', () => {
  it('exports each route with each answer class it can count at 0', async () => {
    const registry = new Registry();
    new ReadMetrics(registry);
    const text = await registry.getSingleMetricAsString('tracehouse_query_request_duration_seconds');
    for (const route of READ_ROUTES) {
      for (const code of ['2xx', '4xx', '5xx', 'abandoned']) {
        expect(text).toContain(`tracehouse_query_request_duration_seconds_count{route="${route}",code="${code}"} 0`);
      }
    }
  });

  it('counts the web UI\'s pages under ui, a page\'s path with a trailing slash (redirected to it) too', () => {
    for (const path of ['/', '/search', '/logs', '/trace/abc', '/ui/app.x.js', '/search/', '/logs//', '/trace/abc/']) expect([path, readRoute(path)]).toEqual([path, 'ui']);
    for (const path of ['/searches', '/logs/x', '/favicon.ico']) expect([path, readRoute(path)]).toEqual([path, 'other']);
  });
});
