// storage.sqlite.path names the file every connection of the store opens: the write thread's and
// each read thread's. A path that gives each connection a database of its own (':memory:', or ''
// for SQLite's private temporary file) would let writes succeed into the write thread's database
// that no read ever sees, and with delivery.ack = durable the write-ahead log would let go of
// them: the store refuses it at start.
import { existsSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { sqliteOptions } from '../../src/storage/index.ts';
import { createSqliteBackend } from '../../src/storage/sqlite/index.ts';
import { SqliteStore, openDatabase } from '../../src/storage/sqlite/store.ts';
import { createEncoder } from '../../src/pipeline/transcode/otlp/rows.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { eventually, getJson, startCollector } from '../helpers/collector.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { makeTrace, writeSpans } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * A SQLite store started on `path`, or undefined when start-up refused it as a configuration error
 * naming the option (exit 2 with its message, as the options' own checks do).
 */
async function startedUnlessRefused(path: string): Promise<ReturnType<typeof createSqliteBackend> | undefined> {
  const config = loadConfig({ flags: { 'storage.sqlite.path': path } });
  const b = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  try {
    await b.start();
    return b;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/storage\.sqlite\.path/);
    return undefined;
  }
}

describe('sqlite storage.sqlite.path', () => {
  // SQLite's URI filenames (node:sqlite opens them) name in-memory databases too: a private one per connection.
  for (const path of [':memory:', '', 'file::memory:', 'file:th.db?mode=memory']) {
    it(`refuses ${JSON.stringify(path)} at start, naming the option, instead of storing what no read finds`, async () => {
      const b = await startedUnlessRefused(path);
      if (b) {
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

// A URI filename naming a file (file:/dir/th.db, file:/dir/th.db?cache=private) is a file like
// any, which the store opens; but its directory was made, and the write-ahead log's default
// directory put, under the URI's dirname (a directory named "file:…" under the working
// directory; start-up failed, exit 1), and the trace index's file was the URI with -traces after
// its query ("no such cache mode: shared-traces", exit 1). The chart passes such a path on.
describe('sqlite storage.sqlite.path as a URI filename', () => {
  for (const query of ['', '?cache=private']) {
    it(`starts with the default log, stores and reads back: file:DIR/data/th.db${query}, data not there yet`, async () => {
      const dir = join(tempDir('sqlite-uri-'), 'data');
      const stray = join(process.cwd(), 'file:');
      const strayBefore = existsSync(stray);
      const c = await startCollector({ 'storage.backend': 'sqlite', 'storage.sqlite.path': `file:${dir}/th.db${query}` }).finally(() => {
        if (!strayBefore) rmSync(stray, { recursive: true, force: true });
      });
      onTestFinished(async () => void (await c.stop()));
      const traceId = randomBytes(16);
      const res = await fetch(c.httpUrl + '/v1/traces', {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf' },
        body: encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'uri' } }] }, scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8), name: 'op', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }] }] }] }),
      });
      expect(res.status).toBe(200);
      // Acknowledged once in the log: stored a moment later.
      await eventually(async () => ((await getJson(c.queryUrl, `/v1/traces/${traceId.toString('hex')}`)).status === 200 ? true : undefined), 10_000, 'the span read back');
      // The log and the trace index beside the file the URI names, nothing under the working directory.
      expect(existsSync(join(dir, 'wal'))).toBe(true);
      expect(existsSync(join(dir, 'th.db-traces'))).toBe(true);
      expect(strayBefore || !existsSync(stray)).toBe(true);
    });
  }
});

describe('sqlite storage metrics of a URI filename', () => {
  it('measures the files the URI names, not 0 bytes (file:DIR/th.db?cache=private)', async () => {
    const dir = tempDir('sqlite-uri-stats-');
    const config = loadConfig({ flags: { 'storage.sqlite.path': `file:${dir}/th.db?cache=private` } });
    const b = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await b.start();
    onTestFinished(async () => void (await b.shutdown()));
    await writeSpans(b, makeTrace(3));
    const files = Object.fromEntries((await b.stats!()).files!.map((f) => [f.file, f.bytes]));
    expect(files['main']).toBeGreaterThan(0);
    expect(files['traces']).toBeGreaterThan(0);
  });
});

// cache=shared puts every connection of the process on one page cache with table-level locks:
// a read meeting the write thread's open transaction fails at once ("database table is locked",
// SQLITE_LOCKED, which no busy_timeout waits out), where WAL mode lets it read the last commit.
describe('sqlite storage.sqlite.path with cache=shared', () => {
  it('is refused at start, naming the option, instead of failing reads that meet a write', async () => {
    const dir = tempDir('sqlite-uri-shared-');
    const path = `file:${dir}/th.db?cache=shared`;
    const b = await startedUnlessRefused(path);
    if (b) {
      const trace = makeTrace(2);
      await writeSpans(b, trace);
      // A write transaction open on the file, as the write thread's is while it commits a batch.
      const w = new DatabaseSync(path);
      w.exec('BEGIN IMMEDIATE; DELETE FROM span_runs');
      const read = await b.getTrace('default', trace[0]!.traceId).then((s) => s.length, (err: Error) => err.message);
      w.exec('ROLLBACK');
      w.close();
      await b.shutdown();
      expect(read).toBe(2);
    }
  });
});

// The read threads open the file read-only, which SQLite refuses for a URI asking for more
// ("access mode not allowed: rwc"): with mode=rwc (SQLite's default spelled out) or mode=rw
// the store started and took every write, and every read failed.
describe('sqlite storage.sqlite.path with mode=rw or mode=rwc', () => {
  for (const mode of ['rwc', 'rw']) {
    it(`reads back what it stored: file:DIR/th.db?mode=${mode}`, async () => {
      const dir = tempDir('sqlite-uri-mode-');
      // mode=rw opens an existing file only: made by a first start with the plain path.
      if (mode === 'rw') {
        const first = createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.sqlite.path': `${dir}/th.db` } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
        await first.start();
        await first.shutdown();
      }
      const config = loadConfig({ flags: { 'storage.sqlite.path': `file:${dir}/th.db?mode=${mode}` } });
      const b = createSqliteBackend(sqliteOptions(config), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
      await b.start();
      onTestFinished(async () => void (await b.shutdown()));
      const trace = makeTrace(2);
      await writeSpans(b, trace);
      expect(await b.getTrace('default', trace[0]!.traceId).then((s) => s.length, (err: Error) => err.message)).toBe(2);
    });
  }
});

// A path SQLite cannot open as a store (a directory: `./data/` for `./data/th.db`, a file under
// a file, a file that is no database) stopped start-up with SQLite's or the file system's words
// alone ("start-up failed: unable to open database file"), naming neither the option nor the
// path, unlike every other setting start-up refuses.
describe('sqlite storage.sqlite.path that cannot be opened', () => {
  const cases: Array<[string, (dir: string) => string]> = [
    ['a directory', (dir) => `${dir}/`],
    ['a file under a file', (dir) => {
      writeFileSync(join(dir, 'plain'), 'x');
      return join(dir, 'plain', 'th.db');
    }],
    ['a file that is no database', (dir) => {
      writeFileSync(join(dir, 'notes.txt'), 'not a database, just some text long enough to fill a header page '.repeat(20));
      return join(dir, 'notes.txt');
    }],
  ];
  for (const [what, make] of cases) {
    it(`is refused at start naming the option and the path: ${what}`, async () => {
      const path = make(tempDir('sqlite-unopenable-'));
      const b = await startedUnlessRefused(path);
      if (b) {
        await b.shutdown();
        expect.fail(`started on ${JSON.stringify(path)}`);
      }
      const err = await createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.sqlite.path': path } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() })
        .start()
        .then(() => undefined, (e: Error) => e);
      expect(err?.message).toContain(JSON.stringify(path));
    });
  }
});

// A store's file cut short or half written (a `cp` of it taken while a checkpoint wrote it, a copy
// that ran out of room): SQLite opens it and the first statement that meets a missing page fails
// with "database disk image is malformed". Start-up said only "start-up failed: database disk image
// is malformed", naming neither the option nor the file (a collector may have several). It now
// names both, and what can be done.
describe('sqlite storage.sqlite.path naming a damaged store', () => {
  it('is refused at start naming the option and the path', async () => {
    const path = join(tempDir('sqlite-damaged-'), 'th.db');
    const db = openDatabase(path);
    const spans = Array.from({ length: 40 }, () => makeTrace(50, { attributes: [{ key: 'pad', value: { stringValue: randomBytes(600).toString('hex') } }] })).flat();
    expect(new SqliteStore(db).writeSpans(createEncoder({}).encodeSpans(spans).map((c) => c.data)).kind).toBe('success');
    db.close();
    truncateSync(path, Math.floor(statSync(path).size / 2 / 32768) * 32768);
    const err = await createSqliteBackend(sqliteOptions(loadConfig({ flags: { 'storage.sqlite.path': path } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() })
      .start()
      .then(() => undefined, (e: Error) => e);
    expect(err?.message).toContain(`storage.sqlite.path = ${JSON.stringify(path)}`);
    expect(err?.message).toMatch(/malformed/);
  });
});
