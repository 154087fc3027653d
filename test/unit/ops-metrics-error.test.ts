// /metrics when a metric's collection throws: 500 without the exception's text (README, Answers:
// error bodies never carry an internal exception message), which goes to the log instead.
import { Gauge } from 'prom-client';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { OpsServer } from '../../src/telemetry/ops.ts';

describe('operations endpoints: a metric whose collection fails', () => {
  it('answers 500 without the exception text, and logs it', async () => {
    const metrics = createMetrics();
    new Gauge({
      name: 'test_failing_gauge',
      help: 'a gauge whose collection throws',
      registers: [metrics.registry],
      collect() {
        throw new Error('ECONNREFUSED 10.0.0.7:5432 user=tracehouse');
      },
    });
    const lines: string[] = [];
    const logger = pino({ level: 'error' }, { write: (l: string) => void lines.push(l) });
    const ops = new OpsServer('127.0.0.1:0', metrics, { notReadyReason: () => Promise.resolve(null) }, logger);
    await ops.start();
    try {
      const res = await fetch(`http://127.0.0.1:${ops.boundPort}/metrics`);
      expect(res.status).toBe(500);
      const body = await res.text();
      expect(body).not.toContain('ECONNREFUSED');
      expect(JSON.parse(body)).toEqual({ error: 'metrics collection failed; see the collector log' });
      expect(lines.join('')).toContain('ECONNREFUSED 10.0.0.7:5432');
    } finally {
      await ops.shutdown();
    }
  });
});
