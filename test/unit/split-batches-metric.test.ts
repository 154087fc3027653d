// tracehouse_storage_split_batches_total is how an operator sees whether batches are still being
// split after the one logged warning. A counter that first appears at 1 is no increase to
// Prometheus (increase() and rate() need an earlier sample): the first split batch, and an alert
// on `increase(...) > 0`, went unseen. It starts at 0 for each signal, as the other counters do.
import { expect, it } from 'vitest';
import { createMetrics } from '../../src/telemetry/metrics.ts';

it('tracehouse_storage_split_batches_total is exposed at 0 for each signal before any split', async () => {
  const text = await createMetrics().registry.metrics();
  expect(text).toContain('tracehouse_storage_split_batches_total{signal="traces"} 0');
  expect(text).toContain('tracehouse_storage_split_batches_total{signal="logs"} 0');
});
