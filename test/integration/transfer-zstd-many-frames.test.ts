// A .zst file is one or more zstd frames (RFC 8878 3.1), and an operator's file may hold many:
// `pzstd` writes a frame per chunk of its input, and a nightly export appended to one file
// (`tracehouse export --out - | zstd >> backups.zst`) adds a frame a night. The HTTP receiver's
// bound on frames in a body (input built to burn CPU) is not one for an import file.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zstdCompressSync } from 'node:zlib';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { DEFAULT_TENANT } from '../../src/model/tenant.ts';
import { createBackend } from '../../src/storage/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { importFiles } from '../../src/transfer/commands.ts';
import { TransferSink } from '../../src/transfer/sink.ts';
import { tempDir } from '../helpers/tmp.ts';

const silent = pino({ level: 'silent' });

let sink: TransferSink | undefined;
afterEach(async () => {
  await sink?.shutdown();
  sink = undefined;
});

describe('import of a zstd file of more than 1,024 frames', () => {
  it('reads every frame, not the first 1,024 and an error', async () => {
    const config = loadConfig({ flags: { 'storage.backend': 'sqlite', 'storage.sqlite.path': join(tempDir(), 'th.db'), 'workers.threads': '1', 'writer.flushIntervalMs': '20' } });
    const metrics = createMetrics();
    sink = new TransferSink(config, await createBackend(config, { logger: silent, metrics }), metrics, silent);
    await sink.start();
    const service = 'nightly-' + randomUUID();
    const nights = 1500;
    const frames = Array.from({ length: nights }, (_, i) => {
      const record = { timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i)), severityNumber: 9, body: { stringValue: `night ${i}` } };
      const line = JSON.stringify({ resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeLogs: [{ scope: { name: 'backup' }, logRecords: [record] }] }] });
      return zstdCompressSync(Buffer.from(line + '\n'));
    });
    const file = join(tempDir(), 'backups.jsonl.zst');
    writeFileSync(file, Buffer.concat(frames));
    const r = await importFiles(sink, { files: [file], onError: 'skip', quiet: true, maxMessageBytes: 1 << 20 });
    expect(r).toMatchObject({ logs: nights, problems: 0 });
    expect(await sink.backend.searchLogs(DEFAULT_TENANT, { service, limit: 2 * nights })).toHaveLength(nights);
  });
});
