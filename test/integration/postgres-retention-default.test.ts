// Retention deletes the old rows of the default partition (rows that arrived outside the window
// of day partitions: an import of old data, a client with a wrong clock) in one DELETE, under the
// writes' statement timeout. When there were more than that timeout could delete, retention
// failed on every run, the default partition kept growing, and the trace index and operations
// (cleaned after it) were never cleaned either.
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend as backend } from '../helpers/postgres-store.ts';

const DAY_NS = 86_400_000_000_000n;
const today = (): number => Math.floor(Date.now() / 86_400_000);

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

describe('postgres: retention of a large default partition', () => {
  let url: string;
  const ROWS = 300_000;
  const old = BigInt(today() - 30) * DAY_NS;

  beforeAll(async () => {
    url = await createTestDatabase('pgretdefault');
    const first = backend(url, { 'storage.postgres.retentionDays': '0' });
    await first.start();
    await first.shutdown();
    // Old spans (a month back: outside the window, so in the default partition) and their traces.
    await query(url, `INSERT INTO tracehouse.spans (start_time_unix_nano, trace_id, span_id, parent_span_id, trace_state, flags, name, kind,
        end_time_unix_nano, duration_nano, status_code, status_message, service_name, resource, scope, attributes, attr_tokens,
        dropped_attributes_count, events, dropped_events_count, links, dropped_links_count)
      SELECT ${old} + g, int8send(g) || int8send(g), int8send(g), '\\x'::bytea, '', 0, 'op', 1, ${old} + g + 10, 10, 0, '', 'svc',
        '{}', '{}', '[]', '{}', 0, '[]', 0, '[]', 0 FROM generate_series(1, ${ROWS}) g`);
    await query(url, `INSERT INTO tracehouse.trace_index (trace_id, first_start_unix_nano, last_start_unix_nano)
      SELECT int8send(g) || int8send(g), ${old} + g, ${old} + g FROM generate_series(1, ${ROWS}) g`);
  }, 120_000);

  it('deletes them all even when that takes longer than statementTimeoutMs', { timeout: 120_000 }, async () => {
    const store = backend(url, { 'storage.postgres.retentionDays': '7', 'storage.postgres.statementTimeoutMs': '50' });
    await store.start();
    await store.shutdown();
    const [left] = await query<{ spans: string; traces: string }>(url, `SELECT
      (SELECT count(*) FROM tracehouse.spans_default WHERE start_time_unix_nano < ${old + 10n * DAY_NS}) AS spans,
      (SELECT count(*) FROM tracehouse.trace_index WHERE last_start_unix_nano < ${old + 10n * DAY_NS}) AS traces`);
    expect(left).toEqual({ spans: '0', traces: '0' });
  });
});
