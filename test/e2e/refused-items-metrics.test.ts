// The refused spans and log records counters as Prometheus scrapes them: every reason the README
// lists for them (invalid items, and the items of decoded requests refused whole) is exported at 0
// before its first event, as the other counters are (src/telemetry/metrics.ts). A series born at
// its first value shows no increase to rate()/increase(): the first request refused for a full
// write-ahead log, or the rows a store refused for good, would be missing from the
// TracehouseRefusingSpans alert and the dashboard's "Refused items/s by reason".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type TestCollector } from '../helpers/collector.ts';

// README, Operations and metrics: the reasons of tracehouse_receiver_refused_spans_total.
const REASONS = ['invalid_item', 'wal_full', 'wal_unavailable', 'too_large', 'not_stored', 'rejected_by_store', 'shutting_down'];

describe('refused items counters before their first event', () => {
  let c: TestCollector;
  let lines: string[];
  beforeAll(async () => {
    c = await startCollector();
    lines = (await (await fetch(`${c.opsUrl}/metrics`)).text()).split('\n');
  });
  afterAll(() => c?.stop());

  it('are exported at 0 for every reason and transport', () => {
    const missing: string[] = [];
    for (const metric of ['tracehouse_receiver_refused_spans_total', 'tracehouse_receiver_refused_log_records_total']) {
      for (const transport of ['grpc', 'http']) {
        for (const reason of REASONS) {
          const series = `${metric}{transport="${transport}",reason="${reason}"}`;
          if (!lines.includes(`${series} 0`)) missing.push(series);
        }
      }
    }
    expect(missing).toEqual([]);
  });
});
