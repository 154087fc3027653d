// The SQLite file deleted (or moved away, or replaced by a `mv`) under a running collector: a
// clean-up script's `rm data/tracehouse.db`, log rotation pointed at the wrong file. SQLite keeps
// writing into the file it has open, which no path names any more: the collector acknowledged
// every export, /readyz said ready, it logged nothing, and at the next start the path held an
// empty store (every row written since the removal gone). Now each write first checks that the
// path still names the open file: it is refused (retryable, so `durable` keeps the rows in its
// write-ahead log for the next start) naming storage.sqlite.path, and readiness goes with it.
import { copyFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/collector.ts';
import { encodeLogs } from '../helpers/otlp-proto.ts';
import { spawnCollector, storedInSqlite } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const SERVICE = 'file-removed';

async function postLogs(url: string, bodies: string[]): Promise<number> {
  const resource = { attributes: [{ key: 'service.name', value: { stringValue: SERVICE } }] };
  const now = String(BigInt(Date.now()) * 1_000_000n);
  const body = encodeLogs({ resourceLogs: [{ resource, scopeLogs: [{ logRecords: bodies.map((b) => ({ timeUnixNano: now, body: { stringValue: b } })) }] }] });
  const res = await fetch(`${url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body, signal: AbortSignal.timeout(10_000) });
  await res.arrayBuffer();
  return res.status;
}

/** A collector on a new SQLite file with delivery.ack = durable, its first record ('before') stored. */
async function withOneRecord(prefix: string) {
  const db = join(tempDir(prefix), 'tracehouse.db');
  const flags = { 'storage.sqlite.path': db, 'delivery.ack': 'durable', 'writer.flushIntervalMs': '50', 'shutdown.timeoutMs': '2000' };
  const a = await spawnCollector(flags);
  expect(await postLogs(a.httpUrl, ['before'])).toBe(200);
  await storedOnce(db, 'before', 'first record stored');
  return { db, flags, a };
}

/** Waits until the record of `body` is in the file, once. */
const storedOnce = (db: string, body: string, what: string) =>
  eventually(async () => (storedInSqlite(db, SERVICE).logCopies.get(body) === 1 ? true : undefined), 5_000, what);

/** Waits until a line of the collector's output matches. */
const logged = (c: { output(): string }, line: RegExp, what: string) => eventually(async () => (line.test(c.output()) ? true : undefined), 5_000, what);

/** Waits until /readyz answers 503. */
const notReady = (c: { opsUrl: string }) => eventually(async () => ((await fetch(`${c.opsUrl}/readyz`)).status === 503 ? true : undefined), 5_000, 'not ready');

describe('the SQLite file removed under a running collector', () => {
  it.each([
    ['deleted (rm)', (db: string) => rmSync(db)],
    ['moved away (mv)', (db: string) => renameSync(db, `${db}.old`)],
    ['replaced by a copy (cp then mv over it)', (db: string) => (copyFileSync(db, `${db}.copy`), renameSync(`${db}.copy`, db))],
  ])('%s: writes are refused naming storage.sqlite.path, not ready, and a restart stores what durable kept', async (_, remove) => {
    const { db, flags, a } = await withOneRecord('sqlite-removed-');
    remove(db);
    // Accepted into the write-ahead log (durable), but never stored into the unlinked file.
    expect(await postLogs(a.httpUrl, ['after'])).toBe(200);
    await logged(a, /storage\.sqlite\.path = \\?"[^"]*tracehouse\.db\\?": the file .*no longer/, 'the refusal logged');
    await notReady(a);
    a.child.kill('SIGTERM');
    await a.exited;
    // The next start makes a new file at the path and writes what the log kept into it.
    const b = await spawnCollector(flags);
    await storedOnce(db, 'after', 'kept record stored after restart');
    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(0);
  }, 60_000);
});

describe("the SQLite file's -wal file deleted under a running collector", () => {
  // `rm data/tracehouse.db-wal` (the file grows while a read holds it, and the README tells of
  // deleting it with the collector stopped). SQLite goes on with the -wal it has open, which no
  // path names: the commits since its last checkpoint, and every commit after, were only there.
  // Acknowledged (durable: the log let go of them once committed), ready, nothing logged, and a
  // kill lost them all.
  it('moves what only the open -wal held into the store\'s file, refuses writes naming it, and a kill then a restart loses nothing', async () => {
    const { db, flags, a } = await withOneRecord('sqlite-wal-removed-');
    rmSync(`${db}-wal`);
    expect(await postLogs(a.httpUrl, ['after'])).toBe(200);
    await logged(a, /its -wal file .*no longer/, 'the refusal logged');
    await notReady(a);
    a.child.kill('SIGKILL');
    await a.exited;
    const b = await spawnCollector(flags);
    await storedOnce(db, 'after', 'kept record stored after restart');
    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    const { logCopies } = storedInSqlite(db, SERVICE);
    expect([logCopies.get('before'), logCopies.get('after')]).toEqual([1, 1]);
  }, 60_000);
});

describe("the SQLite file's -wal file deleted under an idle collector", () => {
  // The same removal with no write after it: only a refused write checkpointed what the deleted
  // -wal held, so with nothing more sent the commits since the last checkpoint stayed only in a
  // file no path names, though /readyz said (detail) they were checkpointed; acknowledged under
  // durable (the log let go of them once committed), a kill then lost them.
  it('moves what only the open -wal held into the store\'s file without waiting for a write, and a kill then a restart loses nothing', async () => {
    const { db, flags, a } = await withOneRecord('sqlite-wal-removed-idle-');
    rmSync(`${db}-wal`);
    await notReady(a);
    // The readiness poll that noticed it has the write thread move what the deleted -wal held into the store's file.
    await logged(a, /-wal file deleted under the collector held is checkpointed/, 'the checkpoint logged');
    a.child.kill('SIGKILL');
    await a.exited;
    const b = await spawnCollector(flags);
    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    expect(storedInSqlite(db, SERVICE).logCopies.get('before')).toBe(1);
  }, 60_000);
});
