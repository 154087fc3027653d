// The collector at its open-files limit (RLIMIT_NOFILE, lowered on the running process with
// prlimit): clients holding every descriptor it may open must not end the process, and once they
// go it accepts and stores again.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/collector.ts';
import { hasPrlimit } from '../helpers/os.ts';
import { spawnCollector, startLoad, storedInSqlite } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

/** Opens `limit` connections to the port, so that the collector holds every descriptor it may open; resolves the sockets. */
async function exhaust(pid: number, port: number, limit: number): Promise<Socket[]> {
  const socks: Socket[] = [];
  for (let i = 0; i < limit; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    socks.push(s);
  }
  // Every descriptor the collector may open is taken (the connections over it wait in the backlog).
  await eventually(async () => (readdirSync(`/proc/${pid}/fd`).length >= limit - 1 ? true : undefined), 5_000, 'descriptors taken');
  return socks;
}

/** Log lines whose message starts with `msg`. */
function linesSaying(output: string, msg: string): number {
  return output.split('\n').filter((l) => l.includes(`"msg":"${msg}`)).length;
}

describe.skipIf(!hasPrlimit)('at the open-files limit', () => {
  it('keeps running while clients hold every descriptor, and stores again once they go', async () => {
    const dir = tempDir('fault-fd-');
    const db = join(dir, 'th.db');
    const c = await spawnCollector({ 'storage.sqlite.path': db, 'limits.memoryCheckIntervalMs': '50', 'delivery.walSegmentBytes': '65536', 'delivery.walMaxBytes': '67108864', 'receiver.maxMessageBytes': '4194304' });
    const pid = c.child.pid!;
    const port = Number(new URL(c.httpUrl).port);
    const load = startLoad(c.httpUrl, { concurrency: 4, spansPerRequest: 40, logsPerRequest: 10, service: 'fd' });
    await eventually(async () => (load.acked.traces.length >= 20 ? true : undefined), 10_000, 'load acknowledged');
    const limit = readdirSync(`/proc/${pid}/fd`).length + 40;
    execFileSync('prlimit', [`--pid=${pid}`, `--nofile=${limit}:${limit}`]);
    const socks = await exhaust(pid, port, limit);
    // Long enough for the memory limiter (every 50 ms here) and the log's segment starts to meet EMFILE.
    await new Promise((r) => setTimeout(r, 1500));
    for (const s of socks) s.destroy();
    await new Promise((r) => setTimeout(r, 500));
    expect(c.child.exitCode, c.output().slice(-3000)).toBeNull();
    const after = load.acked.traces.length;
    await eventually(async () => (load.acked.traces.length >= after + 20 ? true : undefined), 10_000, 'load acknowledged after');
    const acked = await load.stop();
    await eventually(async () => {
      const { spansByTrace } = storedInSqlite(db, 'fd');
      return acked.traces.every((t) => spansByTrace.get(t) === 40) ? true : undefined;
    }, 10_000, 'acknowledged spans stored');
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);
    // Each run of failures is said once, and its end once, not each attempt (hundreds a second):
    // descriptors come and go at the limit, so there may be a few such runs.
    const out = c.output();
    expect(linesSaying(out, 'write-ahead log: could not start a new segment')).toBeLessThanOrEqual(linesSaying(out, 'write-ahead log: started a new segment again') + 1);
    expect(linesSaying(out, 'sqlite write thread stopped')).toBeLessThanOrEqual(linesSaying(out, 'sqlite write thread answering again') + 1);
  }, 40_000);
});
