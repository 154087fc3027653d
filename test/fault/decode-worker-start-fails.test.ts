// A decode worker that cannot start (the process at its open-files limit: "Worker initialization
// failure: EMFILE"; or at its thread limit). Piscina starts no other worker after one failed to
// start, and says so with an 'error' event on the pool: unheard, that event ended the process;
// heard, the requests queued for the worker waited for ever and every later one was refused as
// "every decode worker is busy". Run in a child process, whose open-files limit is lowered with
// prlimit and filled, so the test runner's own descriptors are left alone.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasPrlimit } from '../helpers/os.ts';
import { tempDir } from '../helpers/tmp.ts';

const src = (p: string) => new URL(`../../${p}`, import.meta.url).pathname;

const SCRIPT = `
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { DecodePool } from ${JSON.stringify(src('src/pipeline/pool.ts'))};
import { encodeTraces } from ${JSON.stringify(src('test/helpers/otlp-proto.ts'))};

const body = () => encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2), name: 'a', startTimeUnixNano: '1', endTimeUnixNano: '2' }] }] }] });
const within = (p, ms, what) => {
  let timer;
  const late = new Promise((r) => (timer = setTimeout(() => r(what + ': no answer in ' + ms + ' ms'), ms)));
  return Promise.race([p.then((o) => o.kind, (e) => 'refused: ' + e.message), late]).finally(() => clearTimeout(timer));
};
const pool = new DecodePool({ threads: 1, maxPendingTasks: 8, maxNestingDepth: 100 }, { name: 'otlp', options: {} });
await pool.start();
console.log('first', await within(pool.decode('traces', 'protobuf', body()), 10000, 'first'));
// Every descriptor the process may open is taken, then the worker goes (as one that died would).
const limit = readdirSync('/proc/self/fd').length + 8;
execFileSync('prlimit', ['--pid=' + process.pid, '--nofile=' + limit + ':']);
const held = [];
for (;;) { try { held.push(openSync('/dev/null', 'r')); } catch { break; } }
await pool['pool'].threads[0].terminate();
const during = pool.decode('traces', 'protobuf', body());
await new Promise((r) => setTimeout(r, 500));
for (const fd of held) closeSync(fd);
console.log('during', await within(during, 4000, 'during'));
console.log('after', await within(pool.decode('traces', 'protobuf', body()), 4000, 'after'));
await pool.shutdown();
`;

describe.skipIf(!hasPrlimit)('a decode worker that cannot start', () => {
  it('neither ends the process nor leaves requests waiting for ever: the pool starts its workers again', async () => {
    const dir = tempDir('fault-worker-start-');
    const script = join(dir, 'run.mjs');
    writeFileSync(script, SCRIPT);
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, out).toBe(0);
    expect(out).toContain('first ok');
    // The request queued while no worker could start is answered (refused as retryable is fine).
    expect(out).toMatch(/during (ok|refused)/);
    expect(out).toContain('after ok');
  }, 30_000);
});
