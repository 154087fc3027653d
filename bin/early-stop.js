// Loaded by bin/tracehouse.js with --import, before src/cli.ts and the modules it loads (a second
// or more; several on a busy node): a stop signal in that time is heard and kept for cli.ts, which
// takes it over (takeEarlyStops). Without a handler a SIGTERM killed the process, and in a
// container, where the collector is PID 1 and a signal without a handler is ignored, it was lost:
// the collector started, served, and was killed at the grace period's end. Plain JavaScript, no
// imports: it runs before Node's TypeScript support is loaded.
const heard = [];
const listeners = new Map();
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  const listener = () => heard.push(signal);
  listeners.set(signal, listener);
  process.on(signal, listener);
}
globalThis[Symbol.for('tracehouse.earlyStops')] = () => {
  for (const [signal, listener] of listeners) process.off(signal, listener);
  listeners.clear();
  return heard.splice(0);
};
