#!/usr/bin/env node
// The package's command. Plain JavaScript on purpose: it must run on any Node.js, so that an old
// one gets a sentence saying what to do instead of ERR_UNKNOWN_FILE_EXTENSION from a .ts import.
// Only built-in modules are imported before the version check.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REQUIRED_MAJOR = 24;
const major = Number(process.versions.node.split('.')[0]);

if (!(major >= REQUIRED_MAJOR)) {
  process.stderr.write(
    `Tracehouse needs Node.js ${REQUIRED_MAJOR} or newer; this is v${process.versions.node} (${process.execPath}).\n` +
      `Install Node.js ${REQUIRED_MAJOR} (for example \`nvm install\` in the repository, which reads .nvmrc,\n` +
      `or use the container image) and run tracehouse again.\n`,
  );
  process.exit(1);
}

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
// Hears a stop signal from Node's start, before cli.ts and its modules are loaded (early-stop.js).
const early = ['--import', new URL('./early-stop.js', import.meta.url).href];

// V8 heap settings for a collector (docs/performance.md, "The main heap's floor"). With the
// usual main heap of a collector writing to SQLite, PostgreSQL or ClickHouse (~25 MB live), V8
// finds its old generation close enough to its limit to start a full collection every ~140 ms
// whatever little was allocated (70-90 a 10 s run at the maximum rate); below 128 MB of old
// generation it starts none until the allocation limit asks. Measured: a fifth less CPU per span
// into SQLite, ~40 MB more peak RSS. A value given on the command line wins. The flags live in
// heap-flags.json, which the bench's null receiver is started with too (the same stack, the same
// heap settings).
const HEAP_FLAGS = JSON.parse(readFileSync(new URL('./heap-flags.json', import.meta.url), 'utf8'));
const heapFlags = HEAP_FLAGS.filter((f) => !process.execArgv.some((a) => a.startsWith(f.slice(0, f.indexOf('=') + 1))));

// execve replaces this process with `node src/cli.ts …`: same PID, no child, so SIGTERM from a
// supervisor reaches the collector's own handler (which drains the write queue), and cli.ts is
// the entry module, which is what makes it run (import.meta.main). A plain dynamic import would
// load cli.ts without starting it.
try {
  process.execve(process.execPath, [process.execPath, ...heapFlags, ...process.execArgv, ...early, cli, ...process.argv.slice(2)], process.env);
} catch (err) {
  // Platforms without execve (Windows): run it as a child and pass the signals on.
  if (!err || err.code !== 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM') throw err;
  const child = spawn(process.execPath, [...heapFlags, ...process.execArgv, ...early, cli, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
