// A storage write or a decode slower than the old top buckets (10 s and 1 s) landed only in +Inf,
// so histogram_quantile() could not tell a store slowing towards writer.writeTimeoutMs (30 s) from
// one at 11 s, nor a 3 s decode of a large request from a 60 s one.
import { describe, expect, it } from 'vitest';
import { createMetrics, initWriterMetrics } from '../../src/telemetry/metrics.ts';

function bucket(text: string, name: string, le: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}_bucket{`) && l.includes(`le="${le}"`));
  if (!line) throw new Error(`no ${name} bucket le="${le}" in:\n${text}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('histogram buckets', () => {
  it('place a write near the write timeout and a slow decode in buckets of their own', async () => {
    const m = createMetrics();
    m.batchDuration.observe({ backend: 'postgres', signal: 'traces' }, 25);
    m.batchDuration.observe({ backend: 'postgres', signal: 'traces' }, 50);
    m.decodeDuration.observe({ signal: 'traces' }, 3);
    const writes = await m.registry.getSingleMetricAsString('tracehouse_writer_batch_duration_seconds');
    expect(bucket(writes, 'tracehouse_writer_batch_duration_seconds', '10')).toBe(0);
    expect(bucket(writes, 'tracehouse_writer_batch_duration_seconds', '30')).toBe(1);
    expect(bucket(writes, 'tracehouse_writer_batch_duration_seconds', '60')).toBe(2);
    const decodes = await m.registry.getSingleMetricAsString('tracehouse_worker_decode_duration_seconds');
    expect(bucket(decodes, 'tracehouse_worker_decode_duration_seconds', '1')).toBe(0);
    expect(bucket(decodes, 'tracehouse_worker_decode_duration_seconds', '5')).toBe(1);
  });

  it('start at 0 for every known label set, as the README says of every series', async () => {
    // A series born at its first observation shows no increase() for it: a dashboard's write or
    // decode rate missed the first one, and absent() said nothing was ever measured.
    const m = createMetrics();
    initWriterMetrics(m, 'sqlite');
    const writes = await m.registry.getSingleMetricAsString('tracehouse_writer_batch_duration_seconds');
    const decodes = await m.registry.getSingleMetricAsString('tracehouse_worker_decode_duration_seconds');
    for (const signal of ['traces', 'logs']) {
      expect(writes).toContain(`tracehouse_writer_batch_duration_seconds_count{backend="sqlite",signal="${signal}"} 0`);
      expect(decodes).toContain(`tracehouse_worker_decode_duration_seconds_count{signal="${signal}"} 0`);
    }
  });
});
