// The example configurations (deploy/examples) are started as their headers say
// (`node bin/tracehouse.js --config deploy/examples/postgres.yaml`) by an ordinary user, and by
// the container image's UID 1000, whose only writable directory is its data directory. A
// walDir no such user may create stops the collector at start (EACCES). Run as root, the test
// takes UID 1000 for the collector (with a copy of the node binary it may execute).
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';

const EXAMPLES = join(import.meta.dirname, '../../deploy/examples');
const CLI = join(import.meta.dirname, '../../src/cli.ts');
const UID = 1000;
const root = process.getuid?.() === 0;

describe.skipIf(process.platform === 'win32')('example configurations started by an unprivileged user', () => {
  it('open their write-ahead log in a directory such a user may create', { timeout: 60_000 }, async () => {
    const home = tempDir();
    chmodSync(home, 0o755);
    let node = process.execPath;
    if (root) {
      node = join(home, 'node');
      copyFileSync(process.execPath, node);
      chmodSync(node, 0o755);
    }
    const cwd = join(home, 'work');
    // An ordinary user's working directory (the container image's /app/data is its like).
    mkdirSync(cwd);
    if (root) chownSync(cwd, UID, UID);
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
    for (const f of files) {
      // No store is reachable (port 1): a start that got past the log waits for the store, and is stopped then.
      const child = spawn(
        node,
        [CLI, 'start', '--config', join(EXAMPLES, f), '--storage.postgres.url=postgres://127.0.0.1:1/x', '--storage.clickhouse.urls=http://127.0.0.1:1', '--storage.startWaitMs=60000',
          '--receiver.grpc.listen=127.0.0.1:0', '--receiver.http.listen=127.0.0.1:0', '--query.listen=127.0.0.1:0', '--ops.listen=127.0.0.1:0'],
        { cwd, ...(root ? { uid: UID, gid: UID } : {}), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && child.exitCode === null && !/storage not reachable yet|tracehouse started/.test(out)) await new Promise((r) => setTimeout(r, 100));
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      expect(out, f).not.toMatch(/cannot open the write-ahead log/);
      expect(out, f).toMatch(/storage not reachable yet|tracehouse started/);
    }
  });
});
