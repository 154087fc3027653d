// storage.sqlite.path names the file every connection of the store opens: the write thread's and
// each read thread's. A path that gives each connection a database of its own (':memory:', or ''
// for SQLite's private temporary file) would let writes succeed into the write thread's database
// that no read ever sees, and with delivery.ack = durable the write-ahead log would let go of
// them: the store refuses it at start.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { makeTrace, writeSpans } from '../helpers/rows.ts';

describe('sqlite storage.sqlite.path', () => {
  // SQLite's URI filenames (node:sqlite opens them) name in-memory databases too: a private one per connection.
  for (const path of [':memory:', '', 'file::memory:', 'file:th.db?mode=memory']) {
    it(`refuses ${JSON.stringify(path)} at start, naming the option, instead of storing what no read finds`, async () => {
      const config = loadConfig({ flags: { 'storage.sqlite.path': path } });
      const b = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
      let started = true;
      try {
        await b.start();
      } catch (err) {
        started = false;
        // A configuration error: exit 2 with its message, as the options' own checks do.
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as Error).message).toMatch(/storage\.sqlite\.path/);
      }
      if (started) {
        // What it would do: acknowledge the write, then find nothing (or fail every read).
        const trace = makeTrace(2);
        await writeSpans(b, trace);
        const read = await b.getTrace('default', trace[0]!.traceId).then((s) => s.length, (err: Error) => err.message);
        await b.shutdown();
        expect.fail(`started on ${JSON.stringify(path)}: a write succeeded, then reading it back gave ${JSON.stringify(read)}`);
      }
    });
  }
});
