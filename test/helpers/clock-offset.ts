// Preloaded into a spawned collector (node --import) to move its clock: Date.now() reads
// TRACEHOUSE_TEST_CLOCK_OFFSET_MS milliseconds ahead (or behind), so a test can put UTC midnight
// (day partitions, retention) a few seconds into the process's life.
const offset = Number(process.env['TRACEHOUSE_TEST_CLOCK_OFFSET_MS'] ?? 0);
const now = Date.now.bind(Date);
Date.now = () => now() + offset;
