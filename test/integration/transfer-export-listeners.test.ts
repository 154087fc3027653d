// An export writes one line per page and waits for the file (or its compressor) to take each line
// that fills its buffer. Each such wait added an 'error' listener that stayed after the 'drain' it
// waited for: an export of a few dozen large pages printed "MaxListenersExceededWarning: Possible
// EventEmitter memory leak detected" (with --quiet too), and one listener per wait was kept for
// the whole export, a large backup's memory growing with its pages.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createBackend } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { exportStore } from '../../src/transfer/commands.ts';
import { makeSpan, writeSpans } from '../helpers/rows.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('export of many large pages', () => {
  it.each(['backup.jsonl', 'backup.jsonl.gz'])('leaves no listener behind per line that waited for the file (%s)', async (name) => {
    const backend = await createBackend(loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': join(tempDir(), 'a.db') } }), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
    await backend.start();
    onTestFinished(() => backend.shutdown());
    const service = 'big-' + randomUUID();
    // Each span's line is larger than a stream's buffer (64 KiB), so every write waits for 'drain'.
    const spans = Array.from({ length: 30 }, (_, i) => makeSpan({ serviceName: service, attributes: [{ key: 'payload', value: { stringValue: `${i}`.padEnd(100 << 10, 'x') } }] }));
    await writeSpans(backend, spans);
    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    onTestFinished(() => void process.off('warning', onWarning));
    const file = join(tempDir(), name);
    const r = await exportStore(backend, { out: file, tenant: DEFAULT_TENANT, signals: ['traces'], service, pageRows: 1, quiet: true });
    await new Promise((resolve) => setTimeout(resolve, 50)); // warnings are emitted on a later tick
    expect(r.spans).toBe(30);
    const text = name.endsWith('.gz') ? gunzipSync(readFileSync(file)).toString() : readFileSync(file, 'utf8');
    expect(text.trim().split('\n')).toHaveLength(30);
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
  });
});
