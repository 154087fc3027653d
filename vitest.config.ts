import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// The suite starts node hundreds of times (the command line, collectors, their worker threads):
// Node's compile cache spares each one compiling the same modules again (about 0.15 s a start).
// Set here, before the test processes start, it reaches every process they spawn.
process.env['NODE_COMPILE_CACHE'] ??= join(import.meta.dirname, 'node_modules', '.cache', 'node-compile');

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start servers and databases, and wait on timers and child processes about
    // a third of the time (the two cores ~65 % busy with two forks): three forks on two cores ran
    // the suite in 565 s against 624 s with two (2026-12-07, back to back; ~10 s of it the
    // table tests' cheaper check).
    pool: 'forks',
    maxWorkers: 3,
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/helpers/cleanup.ts'],
  },
});
