// An idle collector (platform teams run one beside every service, most of them receiving nothing
// most of the time) should leave its CPU alone. prom-client's event-loop sampler woke the main
// thread every 10 ms: 100 context switches a second and ~0.4 s of CPU a minute with nothing sent.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { metricValue } from '../helpers/collector.ts';
import { spawnCollector } from '../helpers/process.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';

/** Context switches (voluntary and not) of a process's main thread so far. */
function switches(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return [...status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

describe('an idle collector', () => {
  it.runIf(process.platform === 'linux')('wakes its main thread a few times a second, not a hundred', async () => {
    const c = await spawnCollector({ 'storage.backend': 'memory' });
    const pid = c.child.pid!;
    await new Promise((r) => setTimeout(r, 1000)); // start-up's last work
    const before = switches(pid);
    await new Promise((r) => setTimeout(r, 3000));
    const perSecond = (switches(pid) - before) / 3;
    // Left: the 10 Hz lag sampler, the memory check and readiness poll (1 Hz each).
    expect(perSecond).toBeLessThan(25);
    // The lag gauges are still exported (their values depend on the machine's load: not checked here).
    expect(await metricValue(c.opsUrl, 'nodejs_eventloop_lag_p50_seconds')).toBeGreaterThanOrEqual(0);
    c.child.kill('SIGTERM');
    await c.exited;
  });

  it('still reports a blocked event loop in nodejs_eventloop_lag_max_seconds', async () => {
    const m = createMetrics();
    await m.registry.metrics(); // from here on
    await new Promise((r) => setTimeout(r, 150));
    const until = Date.now() + 300;
    while (Date.now() < until); // the main thread blocked for 300 ms
    await new Promise((r) => setTimeout(r, 150));
    const text = await m.registry.metrics();
    const max = Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1]);
    expect(max).toBeGreaterThan(0.15);
    // Seconds, not milliseconds (a loaded machine may add to the 300 ms).
    expect(max).toBeLessThan(5);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \S+$/m);
  });
});
